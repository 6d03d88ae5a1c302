/**
 * `sluice group list|describe|reset-offsets|delete`: consumer-group administration through
 * the Admin client. Output is tab-separated with a header line, as `topic describe`; a value
 * that does not exist (no committed offset, no owner) prints as "-".
 */
import type { DescribedGroup, TopicPartitions } from '../../protocol/apis/index.ts';
import { Admin, type ResetTarget } from '../admin.ts';
import { DEFAULT_BOOTSTRAP, bootstrapOf, UsageError, bool, parseArgs, positionals, str, type FlagSpecs } from './args.ts';
import type { Io } from './io.ts';

export const groupHelp = `Usage: sluice group SUBCOMMAND [options]

Subcommands:
  list                   print every group: GroupId, State, Members
  describe GROUP         print the group's state, epoch and assignor; per member its id,
                         client id, host, epoch and assigned partitions; per partition of
                         the topics it subscribes to or has committed offsets for: the
                         committed offset, log end offset, lag and owning member; then
                         the total lag per topic and of the group (partitions without a
                         committed offset count as 0)
  reset-offsets GROUP --topic T (--to-earliest | --to-latest | --to-offset N | --to-datetime ISO)
                         set the group's committed offsets for every partition of T and
                         print them; --to-offset is clamped to each partition's retained
                         range; --to-datetime takes the first message at or after the time
                         (ISO 8601, e.g. 2024-05-01T12:00:00Z; without a zone: local time).
                         Only while the group has no members (NON_EMPTY_GROUP otherwise)
  delete GROUP           delete an empty group and its committed offsets

Options:
  --bootstrap H:P        broker address(es), comma-separated (default ${DEFAULT_BOOTSTRAP})
  --help                 show this help
`;

const common: FlagSpecs = { bootstrap: { type: 'string' }, help: { type: 'boolean' } };
const resetFlags: FlagSpecs = {
  ...common,
  topic: { type: 'string' },
  'to-earliest': { type: 'boolean' },
  'to-latest': { type: 'boolean' },
  'to-offset': { type: 'int', min: 0 },
  'to-datetime': { type: 'string' },
};

const RESET_USAGE = 'sluice group reset-offsets GROUP --topic T (--to-earliest | --to-latest | --to-offset N | --to-datetime ISO)';

export async function groupCommand(argv: string[], io: Io): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === 'help') {
    io.out(groupHelp);
    return sub === undefined ? 1 : 0;
  }
  const p = parseArgs(rest, sub === 'reset-offsets' ? resetFlags : common);
  if (p.flags.has('help')) {
    io.out(groupHelp);
    return 0;
  }
  const bootstrap = bootstrapOf(p);
  let action: (admin: Admin) => Promise<void>;
  switch (sub) {
    case 'list':
      positionals(p, [], 'sluice group list');
      action = async (admin) => {
        const groups = await admin.listGroups();
        io.out(['GroupId\tState\tMembers', ...groups.map((g) => `${g.groupId}\t${g.state}\t${g.members}`)].join('\n') + '\n');
      };
      break;
    case 'describe': {
      const [id] = positionals(p, ['GROUP'], 'sluice group describe GROUP');
      action = async (admin) => {
        const [g] = await admin.describeGroups([id!]);
        const lag = await admin.groupLag(id!, g);
        io.out(describeText(g!, lag));
      };
      break;
    }
    case 'reset-offsets': {
      const [id] = positionals(p, ['GROUP'], RESET_USAGE);
      const topic = str(p, 'topic');
      if (topic === undefined) throw new UsageError(`--topic is required; usage: ${RESET_USAGE}`);
      const to = resetTarget(p);
      action = async (admin) => {
        const offsets = await admin.resetOffsets(id!, topic, to);
        io.out(['Topic\tPartition\tNewOffset', ...offsets.map((o) => `${o.topic}\t${o.partition}\t${o.offset}`)].join('\n') + '\n');
      };
      break;
    }
    case 'delete': {
      const [id] = positionals(p, ['GROUP'], 'sluice group delete GROUP');
      action = async (admin) => {
        await admin.deleteGroups([id!]);
        io.out(`Deleted group ${id}.\n`);
      };
      break;
    }
    default:
      throw new UsageError(`unknown subcommand ${JSON.stringify(sub)}: list, describe, reset-offsets or delete`);
  }
  const admin = new Admin({ bootstrap, clientId: 'sluice-cli-admin' });
  try {
    await action(admin);
  } finally {
    await admin.close();
  }
  return 0;
}

/** Exactly one --to-* flag, as a ResetTarget. */
function resetTarget(p: ReturnType<typeof parseArgs>): ResetTarget {
  const given = ['to-earliest', 'to-latest', 'to-offset', 'to-datetime'].filter((f) => p.flags.has(f));
  if (given.length !== 1) {
    throw new UsageError(`${given.length === 0 ? 'one of' : 'only one of'} --to-earliest, --to-latest, --to-offset, --to-datetime is needed; usage: ${RESET_USAGE}`);
  }
  if (bool(p, 'to-earliest')) return { earliest: true };
  if (bool(p, 'to-latest')) return { latest: true };
  const offset = p.flags.get('to-offset');
  if (offset) return { offset: offset[0] as number };
  const raw = str(p, 'to-datetime')!;
  const ms = /^\d{4}-\d{2}-\d{2}/.test(raw) ? Date.parse(raw) : NaN;
  if (!Number.isFinite(ms) || ms < 0) throw new UsageError(`--to-datetime wants an ISO 8601 time such as 2024-05-01T12:00:00Z, not ${JSON.stringify(raw)}`);
  return { datetime: new Date(ms) };
}

function describeText(g: DescribedGroup, lag: Awaited<ReturnType<Admin['groupLag']>>): string {
  const lines = [
    `Group: ${g.groupId}\tState: ${g.state}\tEpoch: ${g.groupEpoch}\tAssignmentEpoch: ${g.assignmentEpoch}\tAssignor: ${g.assignor}`,
    `Members: ${g.members.length}`,
  ];
  if (g.members.length > 0) {
    lines.push('MemberId\tClientId\tHost\tEpoch\tAssigned');
    for (const m of [...g.members].sort((a, b) => (a.memberId < b.memberId ? -1 : 1))) {
      lines.push(`${m.memberId}\t${m.clientId}\t${m.clientHost}\t${m.memberEpoch}\t${formatAssignment(m.assignment)}`);
    }
  }
  lines.push('Topic\tPartition\tCommittedOffset\tLogEndOffset\tLag\tOwner');
  const byTopic = new Map<string, number>();
  for (const r of lag) {
    lines.push(`${r.topic}\t${r.partition}\t${dash(r.committedOffset)}\t${dash(r.logEndOffset)}\t${r.lag ?? '-'}\t${r.owner ?? '-'}`);
    byTopic.set(r.topic, (byTopic.get(r.topic) ?? 0) + (r.lag ?? 0));
  }
  // Totals: partitions without a committed offset (lag "-") count as 0.
  lines.push('Topic\tTotalLag');
  for (const [topic, total] of [...byTopic].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))) lines.push(`${topic}\t${total}`);
  lines.push(`Total lag: ${[...byTopic.values()].reduce((a, b) => a + b, 0)}`);
  return lines.join('\n') + '\n';
}

/** "orders:0,1 audit:0", topics sorted; "-" for nothing. */
function formatAssignment(a: readonly TopicPartitions[]): string {
  const parts = [...a]
    .filter((t) => t.partitions.length > 0)
    .sort((x, y) => (x.topic < y.topic ? -1 : x.topic > y.topic ? 1 : 0))
    .map((t) => `${t.topic}:${[...t.partitions].sort((x, y) => x - y).join(',')}`);
  return parts.length > 0 ? parts.join(' ') : '-';
}

function dash(n: number): string {
  return n < 0 ? '-' : String(n);
}
