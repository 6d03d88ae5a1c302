/**
 * Requests per API as metrics: a count, a count of the ones answered with a request-level
 * error (header errorCode, or a handler that threw), and a latency histogram, from the moment
 * the router gets the decoded header to the moment the handler's answer is ready (for a Fetch
 * this includes its long-poll wait, as Kafka's TotalTimeMs does; the socket write is not
 * included). It wraps the router: with metrics off the router runs unwrapped.
 *
 * Invariants: the label `api` takes one value per API key this broker knows, plus "unknown"
 * for any other key a client sends, so series stay bounded whatever clients send; each
 * request is counted exactly once, when it completes (also when it fails).
 */
import { Counter, Histogram, type Registry } from 'prom-client';
import { apiNames } from '../../protocol/api-keys.ts';
import type { RequestHeader } from '../../protocol/header.ts';
import { NO_REPLY, type HandlerResult } from '../network/reply.ts';

/** Seconds; from sub-millisecond Metadata to Fetch long polls (30 s by default at most). */
export const REQUEST_LATENCY_BUCKETS_SECONDS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

type Route<A extends unknown[]> = (header: RequestHeader, ...rest: A) => Promise<HandlerResult> | HandlerResult;

interface ApiSeries {
  requests: { inc(): void };
  errors: { inc(): void };
  latency: { observe(seconds: number): void };
}

/** `produce`, `fetch`, `consumer_group_heartbeat`... from the API key names of protocol/api-keys.ts. */
export function apiLabel(apiKey: number): string {
  const name = apiNames[apiKey];
  return name === undefined ? 'unknown' : name.toLowerCase();
}

export class RequestMetrics {
  /** By API key; index -1 is not used: unknown keys share `unknown`. */
  private readonly byKey = new Map<number, ApiSeries>();
  private readonly unknown: ApiSeries;

  constructor(registry: Registry) {
    const requests = new Counter({ name: 'sluice_requests_total', help: 'Requests completed, by API', labelNames: ['api'], registers: [registry] });
    const errors = new Counter({ name: 'sluice_request_errors_total', help: 'Requests answered with a request-level error code (or that failed in the handler), by API', labelNames: ['api'], registers: [registry] });
    const latency = new Histogram({ name: 'sluice_request_duration_seconds', help: 'Time from a decoded request header to the ready answer (a Fetch includes its long-poll wait), by API', labelNames: ['api'], buckets: REQUEST_LATENCY_BUCKETS_SECONDS, registers: [registry] });
    // Children made once: the per-request cost is an array-free map lookup and three updates.
    const series = (api: string): ApiSeries => ({ requests: requests.labels(api), errors: errors.labels(api), latency: latency.labels(api) });
    for (const key of Object.keys(apiNames)) this.byKey.set(Number(key), series(apiLabel(Number(key))));
    this.unknown = series('unknown');
  }

  /** The router, counting and timing every request it handles. */
  instrument<A extends unknown[]>(route: Route<A>): Route<A> {
    return (header, ...rest) => {
      const s = this.byKey.get(header.apiKey) ?? this.unknown;
      const startedAt = performance.now();
      let pending: Promise<HandlerResult> | HandlerResult;
      try {
        pending = route(header, ...rest);
      } catch (e) {
        done(s, startedAt, true);
        throw e;
      }
      if (!(pending instanceof Promise)) {
        done(s, startedAt, isError(pending));
        return pending;
      }
      return pending.then(
        (r) => {
          done(s, startedAt, isError(r));
          return r;
        },
        (e: unknown) => {
          done(s, startedAt, true);
          throw e;
        },
      );
    };
  }
}

function isError(r: HandlerResult): boolean {
  return r !== NO_REPLY && (r.errorCode ?? 0) !== 0;
}

function done(s: ApiSeries, startedAt: number, error: boolean): void {
  s.requests.inc();
  if (error) s.errors.inc();
  s.latency.observe((performance.now() - startedAt) / 1000);
}
