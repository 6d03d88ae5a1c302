/**
 * Requests per API as metrics: a count, a count of the ones answered with a request-level
 * error (header errorCode, or a handler that threw), and a latency histogram, from the moment
 * the router gets the decoded header to the moment the handler's answer is ready (for a Fetch
 * this includes its long-poll wait, as Kafka's TotalTimeMs does; the socket write is not
 * included). It wraps the router: with metrics off the router runs unwrapped.
 *
 * Per request: one array index, a bucket search over 15 bounds and three additions to plain
 * numbers (about 20-50 ns). prom-client's labelled children validate and hash their labels
 * on every update (about 0.7 µs a request, measured), so the numbers live here and are turned
 * into exposition lines only at scrape time, by a metric object registered in the registry.
 *
 * Invariants: the label `api` takes one value per API key this broker knows, plus "unknown"
 * for any other key a client sends, so series stay bounded whatever clients send; each
 * request is counted exactly once, when it completes (also when it fails); bucket counts are
 * kept per bucket and exported cumulative, as Prometheus wants.
 */
import { Counter, type Registry } from 'prom-client';
import { apiNames } from '../../protocol/api-keys.ts';
import type { RequestHeader } from '../../protocol/header.ts';
import { NO_REPLY, type HandlerResult } from '../network/reply.ts';

/** Seconds; from sub-millisecond Metadata to Fetch long polls (30 s by default at most). */
export const REQUEST_LATENCY_BUCKETS_SECONDS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const BOUNDS_MS = REQUEST_LATENCY_BUCKETS_SECONDS.map((s) => s * 1000);
const HISTOGRAM = 'sluice_request_duration_seconds';

type Route<A extends unknown[]> = (header: RequestHeader, ...rest: A) => Promise<HandlerResult> | HandlerResult;

/** One API's numbers. */
class ApiStats {
  requests = 0;
  errors = 0;
  sumMs = 0;
  /** Per bucket (not cumulative); the last one is +Inf. */
  readonly buckets = new Float64Array(BOUNDS_MS.length + 1);
  constructor(readonly api: string) {}

  done(startedAt: number, error: boolean): void {
    const ms = performance.now() - startedAt;
    this.requests++;
    if (error) this.errors++;
    this.sumMs += ms;
    let i = 0;
    while (i < BOUNDS_MS.length && ms > BOUNDS_MS[i]!) i++;
    this.buckets[i]!++;
  }
}

/** `produce`, `fetch`, `consumer_group_heartbeat`... from the API key names of protocol/api-keys.ts. */
export function apiLabel(apiKey: number): string {
  const name = apiNames[apiKey];
  return name === undefined ? 'unknown' : name.toLowerCase();
}

interface MetricValue {
  metricName: string;
  labels: Record<string, string>;
  value: number;
}

export class RequestMetrics {
  /** Indexed by API key; holes and keys past the end mean `unknown`. */
  private readonly byKey: ApiStats[] = [];
  private readonly unknown = new ApiStats('unknown');

  constructor(registry: Registry) {
    for (const key of Object.keys(apiNames)) this.byKey[Number(key)] = new ApiStats(apiLabel(Number(key)));
    const all = () => [...this.byKey.filter((s) => s !== undefined), this.unknown];
    const counter = (name: string, help: string, field: 'requests' | 'errors') =>
      new Counter({
        name,
        help,
        labelNames: ['api'],
        registers: [registry],
        collect() {
          this.reset();
          for (const s of all()) if (s.requests > 0) this.inc({ api: s.api }, s[field]);
        },
      });
    counter('sluice_requests_total', 'Requests completed, by API', 'requests');
    counter('sluice_request_errors_total', 'Requests answered with a request-level error code (or that failed in the handler), by API', 'errors');
    // A histogram prom-client formats from these values (its Registry takes any object with
    // name and get(); the shape is that of its own Histogram.get()).
    const help = 'Time from a decoded request header to the ready answer (a Fetch includes its long-poll wait), by API';
    registry.registerMetric({
      name: HISTOGRAM,
      help,
      type: 'histogram',
      aggregator: 'sum',
      get: async () => {
        const values: MetricValue[] = [];
        for (const s of all()) {
          if (s.requests === 0) continue;
          let cumulative = 0;
          REQUEST_LATENCY_BUCKETS_SECONDS.forEach((le, i) => {
            cumulative += s.buckets[i]!;
            values.push({ metricName: `${HISTOGRAM}_bucket`, labels: { le: String(le), api: s.api }, value: cumulative });
          });
          values.push({ metricName: `${HISTOGRAM}_bucket`, labels: { le: '+Inf', api: s.api }, value: s.requests });
          values.push({ metricName: `${HISTOGRAM}_sum`, labels: { api: s.api }, value: s.sumMs / 1000 });
          values.push({ metricName: `${HISTOGRAM}_count`, labels: { api: s.api }, value: s.requests });
        }
        return { name: HISTOGRAM, help, type: 'histogram', aggregator: 'sum', values };
      },
    } as unknown as Parameters<Registry['registerMetric']>[0]);
  }

  /** The router, counting and timing every request it handles. */
  instrument<A extends unknown[]>(route: Route<A>): Route<A> {
    return (header, ...rest) => {
      const s = this.byKey[header.apiKey] ?? this.unknown;
      const startedAt = performance.now();
      let pending: Promise<HandlerResult> | HandlerResult;
      try {
        pending = route(header, ...rest);
      } catch (e) {
        s.done(startedAt, true);
        throw e;
      }
      if (!(pending instanceof Promise)) {
        s.done(startedAt, isError(pending));
        return pending;
      }
      return pending.then(
        (r) => {
          s.done(startedAt, isError(r));
          return r;
        },
        (e: unknown) => {
          s.done(startedAt, true);
          throw e;
        },
      );
    };
  }
}

function isError(r: HandlerResult): boolean {
  return r !== NO_REPLY && (r.errorCode ?? 0) !== 0;
}
