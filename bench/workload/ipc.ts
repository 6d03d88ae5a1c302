/**
 * The messages between the workload driver and its worker processes (Node IPC channel).
 * The driver ticks; each worker answers every tick with what happened since the previous one
 * (counts and histograms are deltas, so the driver's sums and merges are exact), then takes on
 * the tick's phase. Producers send only in 'warmup' and 'test'.
 */
import type { DriverName, ConsumerConfig, ProducerConfig } from './peers/peer.ts';
import type { KeyDistributor } from './spec.ts';

export type Phase = 'idle' | 'warmup' | 'test' | 'drain';

export type WorkerConfig =
  | { role: 'producer'; driver: DriverName; clients: ProducerConfig[]; messageSize: number; keyDistributor: KeyDistributor; ratePerClientMsgsPerSec: number }
  | { role: 'consumer'; driver: DriverName; clients: ConsumerConfig[] }
  | { role: 'idle'; address: string; connections: number };

export type ToWorker = { t: 'tick'; seq: number; phase: Phase } | { t: 'exit' };

export interface WorkerStats {
  t: 'stats';
  seq: number;
  sent: number;
  acked: number;
  received: number;
  /** Messages sent and not yet acknowledged (producers), at the tick. */
  inFlight: number;
  /** Partitions the consumers own now. */
  owned: number;
  /** Encoded histograms (histogram.ts) of publish and end-to-end latency; '' when empty. */
  publishLatency: string;
  endToEndLatency: string;
}

export type FromWorker = { t: 'ready' } | WorkerStats | { t: 'error'; message: string };
