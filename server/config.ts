/** Broker settings, with units in their names, and the command-line flags that set them. */
import { DEFAULT_PORT } from '../protocol/frame.ts';
import type { CoordinatorConfig } from './group/group-coordinator.ts';

export { DEFAULT_PORT };

export interface BrokerConfig {
  brokerId: number;
  dataDir: string;
  host: string;
  port: number;
  /** Host and port put in Metadata; defaults to host (127.0.0.1 when host is a wildcard) and port. */
  advertisedHost: string;
  advertisedPort: number;
  maxFrameBytes: number;
  pipelinedRequestsMax: number;
  /** Unsent response bytes per connection (finished responses + socket buffer) before the broker stops reading it. */
  writeBufferBytesMax: number;
  /** Largest total of record bytes in one Fetch response, whatever its maxBytes (one batch is always allowed). */
  fetchResponseBytesMax: number;
  /** Bytes held in half-received request frames, all connections together, before reading pauses. */
  partialFrameBytesTotalMax: number;
  /** A started request frame must be complete within this long (or another frame completes meanwhile). */
  partialFrameTimeoutMs: number;
  /** Open client connections; the broker closes any beyond it at once. */
  connectionsMax: number;
  /** Longest a Fetch may wait for data, whatever the client asks. */
  fetchWaitMsMax: number;
  retentionCheckIntervalMs: number;
  partitionsMax: number;
  shutdownGraceMs: number;
  /** Group coordinator overrides (timeouts, limits); defaults in group-coordinator.ts. */
  coordinator: Partial<CoordinatorConfig>;
  /** etcd://host:port[,host:port…] for cluster mode; null for the embedded single-broker store. */
  metadataUrl: string | null;
  /** A broker whose registration is not renewed for this long is dead to the cluster. */
  brokerSessionTtlSeconds: number;
  /** A follower that has not caught up with the leader's log end for this long leaves the ISR. */
  replicaLagTimeMaxMs: number;
  /** Long-poll wait of a follower's fetch. */
  replicaFetchWaitMsMax: number;
  /** Replication factor of __consumer_offsets; the controller creates it once this many brokers are live (1 on a single broker). */
  offsetsTopicReplicationFactor: number;
  /** An event-loop delay at least this long is logged as a stall (server/observability/event-loop-delay.ts). */
  eventLoopStallWarnMs: number;
}


export function defaultBrokerConfig(overrides: Partial<BrokerConfig> = {}): BrokerConfig {
  const host = overrides.host ?? '127.0.0.1';
  const port = overrides.port ?? DEFAULT_PORT;
  const wildcard = host === '0.0.0.0' || host === '::';
  return {
    brokerId: 0,
    dataDir: './data',
    maxFrameBytes: 64 * 1024 * 1024,
    pipelinedRequestsMax: 256,
    writeBufferBytesMax: 64 * 1024 * 1024,
    fetchResponseBytesMax: 55 * 1024 * 1024,
    partialFrameBytesTotalMax: 256 * 1024 * 1024,
    partialFrameTimeoutMs: 60_000,
    connectionsMax: 4096,
    fetchWaitMsMax: 30_000,
    retentionCheckIntervalMs: 60_000,
    partitionsMax: 10_000,
    shutdownGraceMs: 5_000,
    coordinator: {},
    metadataUrl: null,
    brokerSessionTtlSeconds: 6,
    replicaLagTimeMaxMs: 10_000,
    replicaFetchWaitMsMax: 500,
    offsetsTopicReplicationFactor: 3,
    eventLoopStallWarnMs: 1000,
    ...overrides,
    host,
    port,
    advertisedHost: overrides.advertisedHost ?? (wildcard ? '127.0.0.1' : host),
    advertisedPort: overrides.advertisedPort ?? port,
  };
}
