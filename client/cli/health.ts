/**
 * `sluice health`: exits 0 when a broker accepts a connection and answers ApiVersions within
 * the timeout, 1 otherwise. The Docker HEALTHCHECK runs it; a TCP connect alone would call a
 * broker healthy whose request handling is wedged.
 *
 * Which broker: --bootstrap, else SLUICE_BOOTSTRAP, else the address the broker configuration
 * in this environment listens on (SLUICE_HOST / SLUICE_PORT through the broker's own config
 * table, a wildcard host checked on 127.0.0.1). With --broker-pid PID the configuration is
 * read from that process instead (its command line after `broker` and its environment, as
 * parseBrokerConfig reads them), so the image's healthcheck follows `docker run IMAGE broker
 * --port 9000` as well as `-e SLUICE_PORT=9000`: the check can never look at another port
 * than the broker it checks.
 */
import { readFileSync } from 'node:fs';
import { ApiKey } from '../../protocol/api-keys.ts';
import type { ApiVersionsResponse } from '../../protocol/apis/api-versions.ts';
import { parseBootstrap } from '../cluster.ts';
import { Connection } from '../connection.ts';
import { BOOTSTRAP_ENV, UsageError, int, parseArgs, positionals, str, type FlagSpecs } from './args.ts';
import type { Io } from './io.ts';

export const healthHelp = `Usage: sluice health [--bootstrap H:P | --broker-pid PID] [--timeout-ms T]

Exits 0 when the broker answers ApiVersions within T ms (default 3000), 1 otherwise.

Which broker is checked: --bootstrap; else $${BOOTSTRAP_ENV}; else the address a broker
started in this environment listens on (SLUICE_HOST and SLUICE_PORT, defaults
127.0.0.1:9292; a wildcard host such as 0.0.0.0 is checked on 127.0.0.1).

Options:
  --bootstrap H:P        broker address; the first one is checked
  --broker-pid PID       read the address from the configuration of the sluice broker
                         running as process PID (its flags and SLUICE_* environment, via
                         /proc on Linux; if PID is no sluice broker, this environment's);
                         the Docker image's healthcheck uses PID 1
  --timeout-ms T         how long to wait for the answer
  --help                 show this help
`;

const flags: FlagSpecs = { bootstrap: { type: 'string' }, 'broker-pid': { type: 'int', min: 1 }, 'timeout-ms': { type: 'int', min: 1 }, help: { type: 'boolean' } };

export async function healthCommand(argv: string[], io: Io): Promise<number> {
  const p = parseArgs(argv, flags);
  if (p.flags.has('help')) {
    io.out(healthHelp);
    return 0;
  }
  positionals(p, [], 'sluice health');
  const pid = int(p, 'broker-pid');
  const given = str(p, 'bootstrap');
  if (pid !== undefined && given !== undefined) throw new UsageError('--bootstrap and --broker-pid exclude each other');
  const fromPid = pid !== undefined ? brokerProcessConfig(pid) : null;
  if (typeof fromPid === 'string') io.err(`sluice health: ${fromPid}; checking the address configured in this environment\n`);
  const { host, port } =
    given !== undefined
      ? parseBootstrap(given)[0]!
      : Array.isArray(fromPid)
        ? await brokerAddress(...fromPid)
        : process.env[BOOTSTRAP_ENV]
          ? parseBootstrap(process.env[BOOTSTRAP_ENV]!)[0]!
          : await brokerAddress([], process.env);
  const timeoutMs = int(p, 'timeout-ms', 3000);
  const conn = await Connection.connect(host, port, { connectTimeoutMs: timeoutMs, requestTimeoutMs: timeoutMs, clientId: 'sluice-health' });
  try {
    const r = await conn.send<ApiVersionsResponse>(ApiKey.API_VERSIONS, {});
    io.out(`ok: broker ${r.control.brokerVersion} at ${host}:${port}\n`);
    return 0;
  } finally {
    conn.close();
  }
}

/** Where a broker configured by these flags and environment listens, as seen from this host. */
async function brokerAddress(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): Promise<{ host: string; port: number }> {
  // Loaded only here: the other client commands need none of the broker's modules.
  const { parseBrokerConfig, BrokerConfigError } = await import('../../server/config/broker-config.ts');
  let c;
  try {
    c = parseBrokerConfig(argv, env);
  } catch (e) {
    if (e instanceof BrokerConfigError) throw new UsageError(`the broker configuration is not valid: ${e.message}`);
    throw e;
  }
  if (c === 'help') throw new UsageError('the broker was started with --help');
  if (c.port === 0) throw new UsageError('the broker configuration picks a free port (port 0): give --bootstrap');
  const wildcard = c.host === '0.0.0.0' || c.host === '::' || c.host === '';
  return { host: wildcard ? '127.0.0.1' : c.host, port: c.port };
}

/**
 * The flags after `broker` and the environment of process pid, from /proc; or why not (a
 * container started with --init has tini as PID 1: the caller then falls back to its own
 * environment, which in the image is the broker's too).
 */
function brokerProcessConfig(pid: number): [string[], Record<string, string>] | string {
  let cmdline: string[];
  let environ: string[];
  try {
    cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    environ = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
  } catch (e) {
    return `cannot read the command line of process ${pid} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`;
  }
  if (cmdline.at(-1) === '') cmdline.pop();
  // node …/sluice.mjs broker [flags]: the first `broker` after the script.
  const script = cmdline.findIndex((a) => /(^|\/)(sluice(\.mjs)?|cli\.ts)$/.test(a));
  const at = script < 0 ? -1 : cmdline.indexOf('broker', script + 1);
  if (at < 0) return `process ${pid} is not a sluice broker (${JSON.stringify(cmdline.join(' ').slice(0, 200))})`;
  const env: Record<string, string> = {};
  for (const kv of environ) {
    const i = kv.indexOf('=');
    if (i > 0) env[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return [cmdline.slice(at + 1), env];
}
