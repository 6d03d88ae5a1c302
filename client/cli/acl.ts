/**
 * `sluice acl add|remove|list` (SPEC §2.7): ACL entries in the metadata store, written
 * directly like `sluice user` (server/security/credential-store.ts says why): --data-dir for a
 * single broker, --metadata etcd://... for a cluster. Brokers pick changes up within
 * --acl-refresh-interval-ms.
 */
import { AclFormatError, checkAclEntry, CLUSTER_NAME, formatAcl, OPERATIONS, type AclEntry } from '../../server/security/acl.ts';
import { openAclStore } from '../../server/security/acl-store.ts';
import { bool, parseArgs, str, strs, UsageError, type FlagSpecs } from './args.ts';
import type { Io } from './io.ts';

export const aclHelp = `Usage: sluice acl add|remove --principal User:NAME RESOURCE --operation OP... [--deny] WHERE
       sluice acl list [--principal User:NAME] WHERE

With --authentication sasl a broker denies every operation no ACL allows (super users aside).
A deny beats any allow. read, write, delete and alter each imply describe.

  --principal User:NAME  the user (User:* for every user)
  RESOURCE, one of:
    --topic NAME         a topic (* for every topic)
    --group NAME         a consumer group (* for every group)
    --cluster            the cluster (ListGroups, DescribeTopics of all topics, reassignments)
    --prefixed           NAME is a prefix: every topic or group whose name starts with it
  --operation OP         ${OPERATIONS.join(', ')} (repeatable)
  --deny                 a deny entry (default: allow)

WHERE is the broker's metadata store:
  --data-dir DIR         a single broker's data dir (on the broker's machine)
  --metadata URL         a cluster's etcd, etcd://host:port[,host:port...]
  (or SLUICE_DATA_DIR / SLUICE_METADATA_URL)

Example: let alice consume orders in group billing
  sluice acl add --principal User:alice --topic orders --operation read --data-dir ./data
  sluice acl add --principal User:alice --group billing --operation read --data-dir ./data
`;

const flags: FlagSpecs = {
  'data-dir': { type: 'string' },
  metadata: { type: 'string' },
  principal: { type: 'string' },
  topic: { type: 'string' },
  group: { type: 'string' },
  cluster: { type: 'boolean' },
  prefixed: { type: 'boolean' },
  operation: { type: 'string', multiple: true },
  deny: { type: 'boolean' },
  help: { type: 'boolean' },
};

function entriesOf(p: ReturnType<typeof parseArgs>): AclEntry[] {
  const principal = str(p, 'principal');
  if (!principal) throw new UsageError('--principal User:NAME is required');
  const topic = str(p, 'topic');
  const group = str(p, 'group');
  const cluster = bool(p, 'cluster');
  if ([topic !== undefined, group !== undefined, cluster].filter(Boolean).length !== 1) throw new UsageError('name one resource: --topic NAME, --group NAME or --cluster');
  if (cluster && bool(p, 'prefixed')) throw new UsageError('--prefixed applies to --topic and --group');
  const ops = strs(p, 'operation');
  if (ops.length === 0) throw new UsageError(`--operation is required (${OPERATIONS.join(', ')})`);
  return ops.map((operation) => {
    try {
      return checkAclEntry({
        principal,
        resourceType: cluster ? 'cluster' : topic !== undefined ? 'topic' : 'group',
        patternType: bool(p, 'prefixed') ? 'prefixed' : 'literal',
        name: cluster ? CLUSTER_NAME : (topic ?? group)!,
        operation,
        permission: bool(p, 'deny') ? 'deny' : 'allow',
      });
    } catch (e) {
      if (e instanceof AclFormatError) throw new UsageError(e.message);
      throw e;
    }
  });
}

export async function aclCommand(argv: string[], io: Io): Promise<number> {
  const p = parseArgs(argv, flags);
  const sub = p.positionals.shift();
  if (bool(p, 'help') || sub === undefined) {
    io.out(aclHelp);
    return sub === undefined && !bool(p, 'help') ? 1 : 0;
  }
  if (p.positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(p.positionals[0])}`);
  const metadataUrl = str(p, 'metadata') ?? (process.env.SLUICE_METADATA_URL || undefined);
  const dataDir = str(p, 'data-dir') ?? (process.env.SLUICE_DATA_DIR || undefined);
  if (!metadataUrl && !dataDir) throw new UsageError('say where the ACLs live: --data-dir DIR (single broker) or --metadata etcd://... (cluster)');
  if (metadataUrl && !metadataUrl.startsWith('etcd://')) throw new UsageError(`--metadata takes etcd://host:port[,...], not ${JSON.stringify(metadataUrl)}`);
  if (sub !== 'add' && sub !== 'remove' && sub !== 'list') throw new UsageError(`unknown subcommand ${JSON.stringify(sub)}; use add, remove or list`);
  const entries = sub === 'list' ? [] : entriesOf(p);
  const store = openAclStore({ metadataUrl: metadataUrl ?? null, dataDir: dataDir ?? '' });
  try {
    if (sub === 'list') {
      const principal = str(p, 'principal');
      const { acls, invalid } = await store.list();
      for (const e of acls) if (!principal || e.principal === principal) io.out(`${formatAcl(e)}\n`);
      if (invalid > 0) io.err(`sluice acl: ${invalid} invalid entries in the store were skipped\n`);
      return 0;
    }
    let missing = 0;
    for (const e of entries) {
      const changed = sub === 'add' ? await store.add(e) : await store.remove(e);
      io.out(`${sub === 'add' ? (changed ? 'added  ' : 'exists ') : changed ? 'removed' : 'absent '} ${formatAcl(e)}\n`);
      if (sub === 'remove' && !changed) missing++;
    }
    return missing > 0 ? 1 : 0;
  } finally {
    await store.close();
  }
}
