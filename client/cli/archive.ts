/**
 * `sluice archive status [TOPIC]`: tiered storage (SPEC §7.10) as the brokers see it, through
 * Admin.describeArchive (DescribeArchive, SPEC §6.27, asked of every broker; each partition's
 * figures from its leader).
 *
 * Output: per broker one line with its store and counters, then one tab-separated line per
 * partition of each archived topic (or of TOPIC). Exit code 1 when a partition reports an
 * upload error (the store is unreachable, ...), so scripts can alert on it.
 */
import { Admin, type ArchiveDescription } from '../admin.ts';
import { DEFAULT_BOOTSTRAP, UsageError, bool, parseArgs, str, type FlagSpecs } from './args.ts';
import type { Io } from './io.ts';

export const archiveHelp = `Usage: sluice archive status [TOPIC] [--all] [--json]

Tiered storage: old segments of topics with archive.enable=true move to the
brokers' archive store (--archive-dir or --archive-s3-bucket).

status [TOPIC]
    First, per broker:
      broker ID  store KIND DESCRIPTION  uploaded BYTES in N segments, F failures,
      D deleted by retention, read BYTES (R failures)
    Then one line per partition, tab-separated:
      TOPIC  PARTITION  LOCAL  ARCHIVED  ARCHIVED-BYTES  SEGMENTS  LAG-BYTES  LAG-SEGMENTS  ERROR
    LOCAL and ARCHIVED are offset ranges [start, end) ("-" when empty); LAG is
    what is sealed below the high watermark and not archived yet; ERROR the
    uploader's last error ("-" when none). Without TOPIC: every topic with
    archive.enable=true (--all: every topic). Exits 1 when a partition has an error.
    --json prints Admin.describeArchive's object instead.

Options:
  --bootstrap H:P        broker address(es), comma-separated (default ${DEFAULT_BOOTSTRAP})
  --help                 show this help
`;

const flags: FlagSpecs = { bootstrap: { type: 'string' }, help: { type: 'boolean' }, json: { type: 'boolean' }, all: { type: 'boolean' } };

export async function archiveCommand(argv: string[], io: Io): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === 'help') {
    io.out(archiveHelp);
    return sub === undefined ? 1 : 0;
  }
  if (sub !== 'status') throw new UsageError(`unknown subcommand ${JSON.stringify(sub)}: status`);
  const p = parseArgs(rest, flags);
  if (p.flags.has('help')) {
    io.out(archiveHelp);
    return 0;
  }
  if (p.positionals.length > 1) throw new UsageError('usage: sluice archive status [TOPIC] [--all] [--json]');
  const topic = p.positionals[0];
  const admin = new Admin({ bootstrap: str(p, 'bootstrap', DEFAULT_BOOTSTRAP), clientId: 'sluice-cli-archive' });
  try {
    const d = await admin.describeArchive(topic === undefined ? null : [topic]);
    if (topic === undefined && !bool(p, 'all')) d.topics = d.topics.filter((t) => t.archiveEnabled);
    if (bool(p, 'json')) {
      io.out(JSON.stringify(d, null, 2) + '\n');
    } else {
      io.out(formatStatus(d));
    }
    return d.topics.some((t) => t.partitions.some((x) => x.lastError !== '')) ? 1 : 0;
  } finally {
    await admin.close();
  }
}

const range = (start: number, end: number) => (start < 0 || end <= start ? '-' : `[${start}, ${end})`);

export function formatStatus(d: ArchiveDescription): string {
  const lines: string[] = [];
  for (const b of d.brokers) {
    const c = b.counters;
    const store = b.storeKind === '' ? 'none' : `${b.storeKind} ${b.storeDescription}`;
    lines.push(`broker ${b.brokerId}  store ${store}  uploaded ${c.bytesUploaded} bytes in ${c.segmentsUploaded} segments, ${c.uploadFailures} failures, ${c.segmentsDeleted} deleted by retention, read ${c.bytesRead} bytes (${c.readFailures} failures)`);
  }
  for (const t of d.topics) {
    for (const x of t.partitions) {
      lines.push([t.topic, x.partition, range(x.localStartOffset, x.localEndOffset), range(x.archiveStartOffset, x.archiveEndOffset), x.archivedBytes, x.archivedSegments, x.lagBytes, x.lagSegments, x.lastError === '' ? '-' : x.lastError.replace(/\s+/g, ' ')].join('\t'));
    }
  }
  return lines.join('\n') + '\n';
}
