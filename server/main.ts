/**
 * `sluice broker`: parses flags, starts a broker, and stops it cleanly on SIGTERM or SIGINT.
 * Prints `sluice broker listening on HOST:PORT` on stdout once it accepts connections.
 */
import { Broker } from './broker.ts';
import { DEFAULT_PORT, defaultBrokerConfig, type BrokerConfig } from './config.ts';
import { DataDirLockedError } from './data-dir-lock.ts';

const USAGE = `usage: sluice broker [--data-dir DIR] [--host H] [--port P] [--broker-id N]
                     [--metadata etcd://H:P[,H:P...]] [--advertised-host H] [--advertised-port P]
                     [--max-frame-bytes N] [--broker-session-ttl-seconds S]
                     [--replica-lag-time-max-ms T] [--offsets-topic-replication-factor N]
                     [--fetch-response-bytes-max N] [--write-buffer-bytes-max N]
                     [--partial-frame-bytes-total-max N] [--partial-frame-timeout-ms T]
                     [--connections-max N] [--groups-max N]
                     [--event-loop-stall-warn-ms T]

  --data-dir DIR          where partition logs and metadata live (default ./data)
  --host H                address to listen on (default 127.0.0.1; 0.0.0.0 for every interface)
  --port P                TCP port (default ${DEFAULT_PORT}; 0 picks a free one)
  --broker-id N           this broker's id in metadata (default 0)
  --advertised-host H     host clients are told to connect to (default: --host, or 127.0.0.1 for a wildcard)
  --advertised-port P     port clients are told to connect to (default: the bound port)
  --max-frame-bytes N     largest request accepted (default 67108864)
  --metadata URL          cluster mode: etcd://host:port[,host:port...] of the etcd cluster that
                          holds membership, controller election and metadata (default: embedded,
                          a single broker with its metadata in the data dir)
  --broker-session-ttl-seconds S
                          the broker is dead to the cluster S seconds after its last lease
                          renewal (default 6)
  --replica-lag-time-max-ms T
                          a follower that has not caught up for T ms leaves the ISR (default 10000)
  --offsets-topic-replication-factor N
                          replicas of __consumer_offsets in a cluster; created once N brokers are
                          live (default 3)
  --fetch-response-bytes-max N
                          most record bytes in one Fetch response, whatever its maxBytes; one
                          batch is always returned even if larger (default 57671680, 55 MiB)
  --write-buffer-bytes-max N
                          unsent response bytes per connection before the broker stops reading
                          its requests until the client reads (default 67108864)
  --partial-frame-bytes-total-max N
                          bytes of half-received request frames, all connections together,
                          before connections sending more pause (default 268435456)
  --partial-frame-timeout-ms T
                          a connection whose started request frame is not complete within T ms
                          (and completes no other frame meanwhile) gets REQUEST_TIMED_OUT and is
                          closed (default 60000)
  --connections-max N     open client connections; more are closed at once (default 4096)
  --groups-max N          consumer groups this broker coordinates; a new one beyond gets
                          GROUP_MAX_SIZE_REACHED (default 10000)
  --event-loop-stall-warn-ms T
                          log a warning when the event loop was blocked for T ms or more
                          (default 1000)
`;

function parseArgs(argv: string[]): Partial<BrokerConfig> {
  const out: Partial<BrokerConfig> = {};
  const num = (flag: string, v: string | undefined): number => {
    const n = Number(v);
    if (v === undefined || !Number.isInteger(n) || n < 0) throw new Error(`${flag} needs a non-negative integer, got ${JSON.stringify(v)}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const value = argv[i + 1];
    switch (flag) {
      case '--data-dir': out.dataDir = value; i++; break;
      case '--host': out.host = value; i++; break;
      case '--port': out.port = num(flag, value); i++; break;
      case '--broker-id': out.brokerId = num(flag, value); i++; break;
      case '--advertised-host': out.advertisedHost = value; i++; break;
      case '--advertised-port': out.advertisedPort = num(flag, value); i++; break;
      case '--max-frame-bytes': out.maxFrameBytes = num(flag, value); i++; break;
      case '--metadata':
        if (!value?.startsWith('etcd://')) throw new Error(`--metadata takes etcd://host:port[,host:port...], got ${JSON.stringify(value)}`);
        out.metadataUrl = value;
        i++;
        break;
      case '--broker-session-ttl-seconds': out.brokerSessionTtlSeconds = num(flag, value); i++; break;
      case '--replica-lag-time-max-ms': out.replicaLagTimeMaxMs = num(flag, value); i++; break;
      case '--offsets-topic-replication-factor': out.offsetsTopicReplicationFactor = num(flag, value); i++; break;
      case '--fetch-response-bytes-max': out.fetchResponseBytesMax = num(flag, value); i++; break;
      case '--write-buffer-bytes-max': out.writeBufferBytesMax = num(flag, value); i++; break;
      case '--partial-frame-bytes-total-max': out.partialFrameBytesTotalMax = num(flag, value); i++; break;
      case '--partial-frame-timeout-ms': out.partialFrameTimeoutMs = num(flag, value); i++; break;
      case '--connections-max': out.connectionsMax = num(flag, value); i++; break;
      case '--groups-max': out.coordinator = { ...out.coordinator, groupsMax: num(flag, value) }; i++; break;
      case '--event-loop-stall-warn-ms':
        out.eventLoopStallWarnMs = num(flag, value);
        if (out.eventLoopStallWarnMs === 0) throw new Error(`${flag} must be at least 1`);
        i++;
        break;
      case '-h': case '--help': process.stdout.write(USAGE); process.exit(0);
      default: throw new Error(`unknown flag ${flag}\n${USAGE}`);
    }
    if (value === undefined) throw new Error(`${flag} needs a value`);
  }
  return out;
}

export async function main(argv: string[]): Promise<void> {
  let overrides: Partial<BrokerConfig>;
  try {
    overrides = parseArgs(argv.slice(1));
  } catch (e) {
    process.stderr.write(`sluice broker: ${(e as Error).message}\n`);
    process.exit(2);
  }
  const config = defaultBrokerConfig(overrides);
  const broker = new Broker(config);
  let port: number;
  try {
    port = await broker.start();
  } catch (e) {
    // A data dir in use is an operator's mistake, not a bug: one line naming the holder.
    const detail = e instanceof DataDirLockedError ? e.message : ((e as Error).stack ?? e);
    process.stderr.write(`sluice broker: failed to start: ${detail}\n`);
    process.exit(1);
  }
  process.stdout.write(`sluice broker listening on ${config.host}:${port}\n`);
  let signals = 0;
  const onSignal = (sig: string) => {
    if (++signals > 1) {
      broker.log.warn('second signal, exiting without a clean stop', { signal: sig });
      process.exit(1);
    }
    broker.stop().then(
      () => process.exit(0),
      (e) => {
        broker.log.error('unclean stop', { error: e as Error });
        process.exit(1);
      },
    );
  };
  // A closed stdout or stderr (a pipe whose reader left) must not turn every log line into an
  // error that is itself logged: the broker keeps running and simply stops printing.
  process.stdout.on('error', () => {});
  process.stderr.on('error', () => {});
  // Every client-facing path catches its own errors; anything reaching here is a bug. Log it
  // loudly rather than take down every other client's connection with it.
  process.on('uncaughtException', (e) => broker.log.error('uncaught exception', { error: e, stack: e.stack ?? '' }));
  process.on('unhandledRejection', (e) => broker.log.error('unhandled rejection', { error: e as Error, stack: (e as Error)?.stack ?? '' }));
  // Diagnostics: SIGUSR2 logs the process's memory, after a full GC when node runs with
  // --expose-gc, e.g. to check that a closed connection's buffers were released.
  process.on('SIGUSR2', () => {
    (globalThis as { gc?: () => void }).gc?.();
    const m = process.memoryUsage();
    broker.log.info('memory', { rssBytes: m.rss, heapUsedBytes: m.heapUsed, externalBytes: m.external, arrayBuffersBytes: m.arrayBuffers });
  });
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));
}
