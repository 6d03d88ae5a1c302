/**
 * `sluice user create|delete|list`: SASL users (SPEC §2.6). Writes the credential store
 * directly, not through a broker (server/security/credential-store.ts says why): the data
 * dir's users.json for a single broker (--data-dir, same machine), etcd for a cluster
 * (--metadata etcd://...). Passwords are turned into SCRAM-SHA-256 credentials here (salt,
 * iterations, StoredKey, ServerKey); the password itself is stored nowhere.
 */
import { makeCredential, SCRAM_ITERATIONS_DEFAULT, SCRAM_ITERATIONS_MAX, SCRAM_ITERATIONS_MIN, ScramFormatError } from '../../protocol/sasl/scram.ts';
import { openCredentialStore, type CredentialStore } from '../../server/security/credential-store.ts';
import { bool, int, parseArgs, positionals, str, UsageError, type FlagSpecs } from './args.ts';
import type { Io } from './io.ts';

export const userHelp = `Usage: sluice user create NAME [--password-stdin] [--iterations N] [--replace] WHERE
       sluice user delete NAME WHERE
       sluice user list WHERE

Manages the users brokers authenticate with SASL (SCRAM-SHA-256, PLAIN). A user takes effect on
the next connection; no restart. The store is written directly, so the first user can be made
before any broker runs with --authentication sasl.

WHERE is the broker's metadata store:
  --data-dir DIR         a single broker's data dir (run on the broker's machine)
  --metadata URL         a cluster's etcd, etcd://host:port[,host:port...]
  (or SLUICE_DATA_DIR / SLUICE_METADATA_URL, as the broker reads them)

Options of create:
  --password-stdin       read the password from the first line of stdin; otherwise it is
                         taken from SLUICE_USER_PASSWORD (never a flag: ps would show it)
  --iterations N         PBKDF2 iterations of the SCRAM credential (default ${SCRAM_ITERATIONS_DEFAULT}, ${SCRAM_ITERATIONS_MIN}..${SCRAM_ITERATIONS_MAX})
  --replace              change the password of an existing user (without it, an existing
                         user is an error)
`;

const flags: FlagSpecs = {
  'data-dir': { type: 'string' },
  metadata: { type: 'string' },
  'password-stdin': { type: 'boolean' },
  iterations: { type: 'int', min: SCRAM_ITERATIONS_MIN },
  replace: { type: 'boolean' },
  help: { type: 'boolean' },
};

async function readFirstLine(io: Io): Promise<string> {
  let text = '';
  for await (const chunk of io.stdin) {
    text += String(chunk);
    if (text.includes('\n') || text.length > 4096) break;
  }
  return text.split(/\r?\n/)[0]!;
}

export async function userCommand(argv: string[], io: Io): Promise<number> {
  const p = parseArgs(argv, flags);
  const sub = p.positionals.shift();
  if (bool(p, 'help') || sub === undefined) {
    io.out(userHelp);
    return sub === undefined && !bool(p, 'help') ? 1 : 0;
  }
  const metadataUrl = str(p, 'metadata') ?? (process.env.SLUICE_METADATA_URL || undefined);
  const dataDir = str(p, 'data-dir') ?? (process.env.SLUICE_DATA_DIR || undefined);
  if (!metadataUrl && !dataDir) throw new UsageError('say where the users live: --data-dir DIR (single broker) or --metadata etcd://... (cluster)');
  if (metadataUrl && !metadataUrl.startsWith('etcd://')) throw new UsageError(`--metadata takes etcd://host:port[,...], not ${JSON.stringify(metadataUrl)}`);
  if (sub !== 'create' && sub !== 'delete' && sub !== 'list') throw new UsageError(`unknown subcommand ${JSON.stringify(sub)}; use create, delete or list`);
  let name = '';
  if (sub === 'list') positionals(p, [], 'sluice user list WHERE');
  else [name] = positionals(p, ['NAME'], `sluice user ${sub} NAME WHERE`) as [string];
  let password = '';
  if (sub === 'create') {
    password = bool(p, 'password-stdin') ? await readFirstLine(io) : (process.env.SLUICE_USER_PASSWORD ?? '');
    if (!password) throw new UsageError('no password: give it on stdin with --password-stdin, or in SLUICE_USER_PASSWORD');
  }
  const store: CredentialStore = await openCredentialStore({ metadataUrl: metadataUrl ?? null, dataDir: dataDir ?? '' });
  try {
    if (sub === 'list') {
      for (const u of await store.list()) io.out(`${u}\n`);
      return 0;
    }
    if (sub === 'delete') {
      if (!(await store.delete(name))) {
        io.err(`sluice user: no user ${JSON.stringify(name)}\n`);
        return 1;
      }
      io.out(`deleted user ${name}\n`);
      return 0;
    }
    const credential = await makeCredential(password, int(p, 'iterations', SCRAM_ITERATIONS_DEFAULT));
    let created: boolean;
    try {
      created = await store.put(name, credential, bool(p, 'replace'));
    } catch (e) {
      if (e instanceof ScramFormatError) throw new UsageError(`user name: ${e.message}`);
      throw e;
    }
    if (!created) {
      io.err(`sluice user: user ${JSON.stringify(name)} already exists (--replace changes its password)\n`);
      return 1;
    }
    io.out(`${bool(p, 'replace') ? 'set' : 'created'} user ${name} (SCRAM-SHA-256, ${credential.iterations} iterations)\n`);
    return 0;
  } finally {
    await store.close();
  }
}
