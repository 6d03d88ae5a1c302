/**
 * `sluice broker`: reads its settings (flags over SLUICE_* environment over defaults, one
 * table in config/broker-config.ts), starts a broker, and stops it cleanly on SIGTERM or SIGINT.
 * Prints `sluice broker listening on HOST:PORT` on stdout once it accepts connections.
 */
import { Broker } from './broker.ts';
import { BrokerConfigError, brokerHelp, parseBrokerConfig, type BrokerConfig } from './config/broker-config.ts';
import { DataDirLockedError } from './data-dir-lock.ts';
import { describeStartupError } from './startup-error.ts';
import { setLogFormat, setLogLevel } from './logger.ts';

export async function main(argv: string[]): Promise<void> {
  let parsed: BrokerConfig | 'help';
  try {
    parsed = parseBrokerConfig(argv.slice(1), process.env);
  } catch (e) {
    if (!(e instanceof BrokerConfigError)) throw e;
    process.stderr.write(`sluice broker: ${e.message}\n`);
    process.exit(2);
  }
  if (parsed === 'help') {
    process.stdout.write(brokerHelp());
    process.exit(0);
  }
  const config = parsed;
  setLogLevel(config.logLevel);
  setLogFormat(config.logFormat);
  const broker = new Broker(config);
  let port: number;
  try {
    port = await broker.start();
  } catch (e) {
    // A data dir in use, a port taken, a bad host, an unwritable data dir: an operator's
    // mistake, not a bug, so one line naming it (SLUICE_DEBUG=1 adds the stack).
    const known = e instanceof DataDirLockedError ? e.message : describeStartupError(e, config);
    const detail = known !== null ? `${known}${process.env.SLUICE_DEBUG ? `\n${(e as Error).stack}` : ''}` : ((e as Error).stack ?? e);
    process.stderr.write(`sluice broker: failed to start: ${detail}\n`);
    process.exit(1);
  }
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
  // Last, once the handlers above are in place: whoever waits for this line may send SIGTERM at
  // once, and before process.on('SIGTERM') that would kill the process without a clean stop.
  process.stdout.write(`sluice broker listening on ${config.host}:${port}\n`);
}
