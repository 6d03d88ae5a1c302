/**
 * The broker's Prometheus metrics: one prom-client Registry per broker (never the library's
 * global one, so brokers in one process, as in tests, do not mix), with
 * - what the hot paths record into plain numbers and prom-client children made once: per-topic
 *   traffic (topic-traffic.ts, from the produce and fetch handlers), requests per API
 *   (api/request-metrics.ts, around the router), log flush latency (each flush cycle);
 * - what is read only at scrape time, by collectors next to what they measure:
 *   replication (cluster/replication-metrics.ts), consumer-group lag (group/lag-metrics.ts),
 *   and here the purgatories, connections and event-loop delay;
 * - the process metrics of prom-client's collectDefaultMetrics (CPU, memory, GC, handles,
 *   event-loop lag), under their usual names (process_*, nodejs_*).
 * README "Metrics and logs" lists every metric; names follow Prometheus conventions: the
 * `sluice_` prefix, base units in the name (`_seconds`, `_bytes`), `_total` for counters.
 *
 * Invariants: every label's values are bounded (APIs: the known keys plus "unknown"; topics:
 * topic-traffic.ts's bound; lag: LAG_SERIES_MAX); a collector never changes broker state.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { RequestMetrics } from '../api/request-metrics.ts';
import { registerReplicationMetrics, type ReplicationSource } from '../cluster/replication-metrics.ts';
import { registerLagMetrics, type LagSource } from '../group/lag-metrics.ts';
import type { EventLoopDelaySnapshot } from './event-loop-delay.ts';
import { registerCounters, type CountersSource } from './counters-source.ts';
import { TopicTraffic } from './topic-traffic.ts';

/** Seconds; an fdatasync takes from tens of microseconds (page cache, tmpfs) to seconds (a busy disk). */
export const FLUSH_LATENCY_BUCKETS_SECONDS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/** What the scrape-time collectors read; functions, because the broker's parts exist only once it has started. */
export interface BrokerMetricsSources {
  connections(): number;
  /** Fetches parked waiting for data (DelayedFetches.parkedCount). */
  parkedFetches(): number;
  eventLoopDelay(): EventLoopDelaySnapshot;
  topicExists(topic: string): boolean;
  replication: ReplicationSource;
  lag: LagSource;
}

export class BrokerMetrics {
  readonly registry = new Registry();
  /** Recorded by the produce and fetch handlers (BrokerContext.traffic). */
  readonly traffic = new TopicTraffic();
  /** Wraps the router (Broker.serve). */
  readonly requests: RequestMetrics;
  private readonly flushLatency: Histogram;

  constructor(sources: BrokerMetricsSources) {
    const registry = this.registry;
    collectDefaultMetrics({ register: registry });
    this.requests = new RequestMetrics(registry);
    this.flushLatency = new Histogram({ name: 'sluice_log_flush_duration_seconds', help: 'Duration of a partition log flush cycle (fdatasync of the segments written since the previous one, then their index files)', buckets: FLUSH_LATENCY_BUCKETS_SECONDS, registers: [registry] });
    const traffic = this.traffic;
    const trafficCounter = (name: string, help: string, field: 'bytesIn' | 'messagesIn' | 'bytesOut' | 'messagesOut', forget: boolean) =>
      new Counter({
        name,
        help,
        labelNames: ['topic'],
        registers: [registry],
        collect() {
          // Deleted topics leave the export (the first of the four collectors prunes).
          if (forget) traffic.forgetMissing((t) => sources.topicExists(t));
          this.reset();
          for (const [topic, c] of traffic.entries()) this.inc({ topic }, c[field]);
        },
      });
    trafficCounter('sluice_topic_bytes_in_total', 'Record-set bytes produced to the topic (appended by this broker as leader; retries of a stored batch excluded)', 'bytesIn', true);
    trafficCounter('sluice_topic_messages_in_total', 'Records produced to the topic (from the batch headers)', 'messagesIn', false);
    trafficCounter('sluice_topic_bytes_out_total', 'Record-set bytes fetched from the topic by consumers (follower fetches excluded)', 'bytesOut', false);
    trafficCounter('sluice_topic_messages_out_total', 'Records in the batches fetched from the topic by consumers (from the batch headers)', 'messagesOut', false);
    new Gauge({
      name: 'sluice_fetch_purgatory_size',
      help: 'Fetches parked waiting for data (long polling), consumers and followers',
      registers: [registry],
      collect() {
        this.set(sources.parkedFetches());
      },
    });
    new Gauge({
      name: 'sluice_connections_active',
      help: 'Open client connections (broker-to-broker fetch connections included)',
      registers: [registry],
      collect() {
        this.set(sources.connections());
      },
    });
    new Gauge({
      name: 'sluice_event_loop_delay_seconds',
      help: 'Event-loop delay of the broker process over the last complete 10 s window: quantile 0.5, 0.99 and 1 (max)',
      labelNames: ['quantile'],
      registers: [registry],
      collect() {
        const w = sources.eventLoopDelay().lastWindow;
        this.set({ quantile: '0.5' }, w.p50Ms / 1000);
        this.set({ quantile: '0.99' }, w.p99Ms / 1000);
        this.set({ quantile: '1' }, w.maxMs / 1000);
      },
    });
    new Counter({
      name: 'sluice_event_loop_stalls_total',
      help: 'Windows in which the event loop was blocked at least --event-loop-stall-warn-ms',
      registers: [registry],
      collect() {
        this.reset();
        this.inc(sources.eventLoopDelay().stallsTotal);
      },
    });
    registerReplicationMetrics(registry, sources.replication);
    registerLagMetrics(registry, sources.lag);
  }

  /** Called by every partition log after each flush cycle (LogManagerOptions.onFlushCycle). */
  readonly observeFlush = (durationMs: number): void => {
    this.flushLatency.observe(durationMs / 1000);
  };

  /**
   * Exports a counters object (counters-source.ts). The place for ArchiveStats (issue 11,
   * tiered storage) once it lands: the broker calls
   * `metrics.addCounters({ prefix: 'sluice_archive_', help: {...}, read: () => archive.stats })`.
   */
  addCounters<K extends string>(source: CountersSource<K>): void {
    registerCounters(this.registry, source);
  }

  /** The exposition text of every metric (what GET /metrics answers). */
  scrape(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
