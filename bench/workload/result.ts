/**
 * The result of a workload run (what --json prints and --out writes, what `bench plot` reads)
 * and its one-line summary. Rates are over the test phase only (after warm-up, before the
 * drain); latency histograms cover the test phase and the drain that follows it.
 */
import type { LatencySummaryMs } from './histogram.ts';
import type { Phase } from './ipc.ts';
import type { Workload } from './spec.ts';

export const RESULT_FORMAT = 'sluice-workload-result/1';

/** One tick's interval: rates over it, backlog and latency percentiles of what it saw. */
export interface Snapshot {
  /** Seconds since the producers started, at the end of the interval. */
  t: number;
  phase: Phase;
  publishRate: number;
  consumeRate: number;
  backlog: number;
  publishP50Ms: number;
  publishP99Ms: number;
  e2eP50Ms: number;
  e2eP99Ms: number;
  e2eP999Ms: number;
}

export interface WorkloadResult {
  format: typeof RESULT_FORMAT;
  workload: Workload;
  driver: string;
  /** A label for plots and tables: the workload name and the driver. */
  label: string;
  startedAt: string;
  topics: string[];
  testSeconds: number;
  publishRate: number;
  publishMBps: number;
  consumeRate: number;
  consumeMBps: number;
  /** Messages acknowledged × subscriptions − messages received, at the end of the test phase. */
  backlog: number;
  /** Over the whole run (warm-up and drain included). */
  sent: number;
  acked: number;
  /** acked × subscriptions per topic: what the consumers should receive. */
  expected: number;
  received: number;
  /** Whether the drain ended with every acknowledged message received. */
  complete: boolean;
  publishLatencyMs: LatencySummaryMs;
  endToEndLatencyMs: LatencySummaryMs;
  snapshots: Snapshot[];
}

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');

export function summaryLine(r: WorkloadResult): string {
  return (
    `${r.label}: pub ${fmt(r.publishRate)} msg/s ${r.publishMBps.toFixed(1)} MB/s | cons ${fmt(r.consumeRate)} msg/s ${r.consumeMBps.toFixed(1)} MB/s | backlog ${fmt(r.backlog)} | ` +
    `pub lat p50 ${r.publishLatencyMs.p50} p99 ${r.publishLatencyMs.p99} ms | e2e p50 ${r.endToEndLatencyMs.p50} p99 ${r.endToEndLatencyMs.p99} p99.9 ${r.endToEndLatencyMs.p999} max ${r.endToEndLatencyMs.max} ms | ` +
    `${fmt(r.received)}/${fmt(r.expected)} received${r.complete ? '' : ' (INCOMPLETE)'}`
  );
}

export function isWorkloadResult(v: unknown): v is WorkloadResult {
  return typeof v === 'object' && v !== null && (v as { format?: unknown }).format === RESULT_FORMAT && Array.isArray((v as { snapshots?: unknown }).snapshots);
}
