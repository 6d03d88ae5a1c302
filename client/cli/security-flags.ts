/**
 * TLS and SASL for every client command (SPEC §2.5, §2.6): flags any command accepts, taken
 * out of argv before the command parses its own, with SLUICE_* environment fallbacks, and
 * applied process-wide (setConnectionDefaults) so that every connection any command opens,
 * through any client class, is secured the same way.
 *
 *   --tls                     TLS, verifying the broker against the system's roots
 *   --tls-ca FILE             TLS, verifying the broker against this CA (implies --tls)
 *   --tls-cert FILE, --tls-key FILE   client certificate (implies --tls)
 *   --tls-servername NAME     name the broker's certificate must carry (default: the host)
 *   --sasl-mechanism M        SCRAM-SHA-256 (default) or PLAIN
 *   --sasl-username U         authenticate as U (SASL)
 *   --sasl-password P         its password; better SLUICE_SASL_PASSWORD, which ps does not show
 */
import { readFileSync } from 'node:fs';
import { setConnectionDefaults, type ConnectionOptions } from '../connection.ts';
import { UsageError } from './args.ts';

export const securityHelp = `Security (every client command; each flag also as SLUICE_<FLAG> in the environment):
  --tls                  connect with TLS, verifying the broker against the system's CAs
  --tls-ca FILE          connect with TLS, verifying the broker against this PEM CA
  --tls-cert FILE        client certificate (PEM), with --tls-key, for --tls-client-auth brokers
  --tls-key FILE         private key of --tls-cert
  --tls-servername NAME  name the broker's certificate must carry (default: the host dialled)
  --sasl-username USER   authenticate with SASL as USER
  --sasl-password PASS   its password (prefer SLUICE_SASL_PASSWORD: ps shows flags)
  --sasl-mechanism M     SCRAM-SHA-256 (default) or PLAIN (only over TLS)
`;

const VALUED = ['tls-ca', 'tls-cert', 'tls-key', 'tls-servername', 'sasl-mechanism', 'sasl-username', 'sasl-password'] as const;
type Valued = (typeof VALUED)[number];

/** Removes the security flags from argv; returns the rest and the options they (and the environment) give. */
export function takeSecurityFlags(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): { rest: string[]; security: Pick<ConnectionOptions, 'tls' | 'sasl'> } {
  const rest: string[] = [];
  const given = new Map<string, string>();
  let tlsFlag = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      rest.push(...argv.slice(i));
      break;
    }
    if (a === '--tls') {
      tlsFlag = true;
      continue;
    }
    const eq = a.indexOf('=');
    const name = a.startsWith('--') ? (eq > 0 ? a.slice(2, eq) : a.slice(2)) : '';
    if (!(VALUED as readonly string[]).includes(name)) {
      rest.push(a);
      continue;
    }
    const value = eq > 0 ? a.slice(eq + 1) : argv[++i];
    if (value === undefined) throw new UsageError(`--${name} needs a value`);
    if (given.has(name)) throw new UsageError(`--${name} given more than once`);
    given.set(name, value);
  }
  const get = (n: Valued): string | undefined => given.get(n) ?? (env[`SLUICE_${n.toUpperCase().replaceAll('-', '_')}`] || undefined);
  const read = (n: Valued): Buffer | undefined => {
    const path = get(n);
    if (path === undefined) return undefined;
    try {
      return readFileSync(path);
    } catch (e) {
      throw new UsageError(`--${n} ${path}: ${(e as Error).message}`);
    }
  };
  const security: Pick<ConnectionOptions, 'tls' | 'sasl'> = {};
  const ca = read('tls-ca');
  const cert = read('tls-cert');
  const key = read('tls-key');
  const servername = get('tls-servername');
  if (Boolean(cert) !== Boolean(key)) throw new UsageError('--tls-cert and --tls-key go together');
  if (tlsFlag || env.SLUICE_TLS === '1' || env.SLUICE_TLS === 'true' || ca || cert || servername) {
    security.tls = { ...(ca ? { ca } : {}), ...(cert ? { cert } : {}), ...(key ? { key } : {}), ...(servername ? { servername } : {}) };
  }
  const username = get('sasl-username');
  const password = get('sasl-password');
  const mechanism = get('sasl-mechanism') ?? 'SCRAM-SHA-256';
  if (mechanism !== 'SCRAM-SHA-256' && mechanism !== 'PLAIN') throw new UsageError(`--sasl-mechanism must be SCRAM-SHA-256 or PLAIN, not ${JSON.stringify(mechanism)}`);
  if (username !== undefined) {
    if (password === undefined) throw new UsageError('--sasl-username needs a password: --sasl-password or SLUICE_SASL_PASSWORD');
    security.sasl = { mechanism, username, password };
  } else if (given.has('sasl-password') || given.has('sasl-mechanism')) {
    throw new UsageError('--sasl-password and --sasl-mechanism need --sasl-username');
  }
  return { rest, security };
}

/** Applies the security flags to every connection this process opens. */
export function applySecurityFlags(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): string[] {
  const { rest, security } = takeSecurityFlags(argv, env);
  setConnectionDefaults(security);
  return rest;
}
