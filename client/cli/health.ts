/**
 * `sluice health`: exits 0 when a broker accepts a connection and answers ApiVersions within
 * the timeout, 1 otherwise. The Docker HEALTHCHECK runs it; a TCP connect alone would call a
 * broker healthy whose request handling is wedged.
 */
import { ApiKey } from '../../protocol/api-keys.ts';
import type { ApiVersionsResponse } from '../../protocol/apis/api-versions.ts';
import { parseBootstrap } from '../cluster.ts';
import { Connection } from '../connection.ts';
import { DEFAULT_BOOTSTRAP, int, parseArgs, positionals, str, type FlagSpecs } from './args.ts';
import type { Io } from './io.ts';

export const healthHelp = `Usage: sluice health [--bootstrap H:P] [--timeout-ms T]

Exits 0 when the broker answers ApiVersions within T ms (default 3000), 1 otherwise.

Options:
  --bootstrap H:P        broker address (default ${DEFAULT_BOOTSTRAP}); the first one is checked
  --timeout-ms T         how long to wait for the answer
  --help                 show this help
`;

const flags: FlagSpecs = { bootstrap: { type: 'string' }, 'timeout-ms': { type: 'int', min: 1 }, help: { type: 'boolean' } };

export async function healthCommand(argv: string[], io: Io): Promise<number> {
  const p = parseArgs(argv, flags);
  if (p.flags.has('help')) {
    io.out(healthHelp);
    return 0;
  }
  positionals(p, [], 'sluice health');
  const { host, port } = parseBootstrap(str(p, 'bootstrap', DEFAULT_BOOTSTRAP))[0]!;
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
