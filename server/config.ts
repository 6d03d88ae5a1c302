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
  writeBufferBytesMax: number;
  /** Longest a Fetch may wait for data, whatever the client asks. */
  fetchWaitMsMax: number;
  retentionCheckIntervalMs: number;
  partitionsMax: number;
  shutdownGraceMs: number;
  /** Group coordinator overrides (timeouts, limits); defaults in group-coordinator.ts. */
  coordinator: Partial<CoordinatorConfig>;
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
    fetchWaitMsMax: 30_000,
    retentionCheckIntervalMs: 60_000,
    partitionsMax: 10_000,
    shutdownGraceMs: 5_000,
    coordinator: {},
    ...overrides,
    host,
    port,
    advertisedHost: overrides.advertisedHost ?? (wildcard ? '127.0.0.1' : host),
    advertisedPort: overrides.advertisedPort ?? port,
  };
}
