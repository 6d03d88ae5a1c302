/**
 * `sluice broker`: parses flags, starts a broker, and stops it cleanly on SIGTERM or SIGINT.
 * Prints `sluice broker listening on HOST:PORT` on stdout once it accepts connections.
 */
import { Broker } from './broker.ts';
import { DEFAULT_PORT, defaultBrokerConfig, type BrokerConfig } from './config.ts';

const USAGE = `usage: sluice broker [--data-dir DIR] [--host H] [--port P] [--broker-id N]
                     [--advertised-host H] [--advertised-port P] [--max-frame-bytes N]

  --data-dir DIR          where partition logs and metadata live (default ./data)
  --host H                address to listen on (default 127.0.0.1; 0.0.0.0 for every interface)
  --port P                TCP port (default ${DEFAULT_PORT}; 0 picks a free one)
  --broker-id N           this broker's id in metadata (default 0)
  --advertised-host H     host clients are told to connect to (default: --host, or 127.0.0.1 for a wildcard)
  --advertised-port P     port clients are told to connect to (default: the bound port)
  --max-frame-bytes N     largest request accepted (default 67108864)
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
    process.stderr.write(`sluice broker: failed to start: ${(e as Error).stack ?? e}\n`);
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
  // Every client-facing path catches its own errors; anything reaching here is a bug. Log it
  // loudly rather than take down every other client's connection with it.
  process.on('uncaughtException', (e) => broker.log.error('uncaught exception', { error: e, stack: e.stack ?? '' }));
  process.on('unhandledRejection', (e) => broker.log.error('unhandled rejection', { error: e as Error, stack: (e as Error)?.stack ?? '' }));
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));
}
