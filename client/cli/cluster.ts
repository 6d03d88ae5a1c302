/**
 * `sluice cluster describe`: brokers, the controller, and per partition its leader, leader
 * epoch, replicas and in-sync replicas, tab-separated with header lines like the other
 * commands. Partitions with no leader or fewer in-sync replicas than replicas are the ones an
 * operator looks for, so they are marked (OFFLINE, UNDER-REPLICATED).
 */
import type { MetadataResponse } from '../../protocol/apis/metadata.ts';
import { Admin } from '../admin.ts';

/** The broker-owned committed-offsets topic (SPEC.md §7.4); Metadata lists it only by name. */
const OFFSETS_TOPIC = '__consumer_offsets';
import { DEFAULT_BOOTSTRAP, bootstrapOf, UsageError, bool, int, parseArgs, positionals, str, type FlagSpecs, type Parsed } from './args.ts';
import type { Io } from './io.ts';
import { planReassignment } from './reassignment-plan.ts';

/** Every topic, the broker-owned ones too: draining a broker must move those as well. */
async function clusterMetadata(admin: Admin): Promise<MetadataResponse> {
  const md = await admin.metadata(null);
  const internal = await admin.metadata([OFFSETS_TOPIC]);
  return { ...md, topics: [...md.topics, ...internal.topics.filter((t) => t.errorCode === 0)] };
}

async function moveReplicas(admin: Admin, sub: 'rebalance' | 'drain', p: Parsed, io: Io): Promise<number> {
  const drainId = int(p, 'broker');
  if (sub === 'drain' && drainId === undefined) throw new UsageError('cluster drain needs --broker N');
  if (sub === 'rebalance' && drainId !== undefined) throw new UsageError('--broker goes with cluster drain');
  const md = await clusterMetadata(admin);
  const partitions = md.topics.flatMap((t) => t.partitions.map((x) => ({ topic: t.topic, partition: x.partition, replicas: x.replicas })));
  const brokers = md.brokers.map((b) => b.nodeId);
  const moves = planReassignment(partitions, brokers, new Set(drainId === undefined ? [] : [drainId]));
  for (const m of moves) {
    const before = partitions.find((x) => x.topic === m.topic && x.partition === m.partition)!.replicas;
    io.out(`${m.topic}\t${m.partition}\t${before.join(',')} -> ${m.replicas.join(',')}\n`);
  }
  if (moves.length === 0) {
    io.out('Nothing to move.\n');
    return 0;
  }
  if (bool(p, 'dry-run')) return 0;
  await admin.reassignPartitions(moves, int(p, 'throttle-bytes-per-sec', 0));
  io.out(`Started ${moves.length} move${moves.length === 1 ? '' : 's'}.\n`);
  const waitMs = int(p, 'wait-ms', 0);
  if (waitMs > 0) {
    const deadline = Date.now() + waitMs;
    for (;;) {
      const now = await clusterMetadata(admin);
      const pending = moves.filter((m) => {
        const cur = now.topics.find((t) => t.topic === m.topic)?.partitions.find((x) => x.partition === m.partition);
        return !cur || cur.replicas.join(',') !== m.replicas.join(',');
      });
      if (pending.length === 0) break;
      if (Date.now() > deadline) {
        io.err(`${pending.length} move${pending.length === 1 ? '' : 's'} still in progress after ${waitMs} ms\n`);
        return 1;
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    io.out('All moves finished.\n');
  }
  return 0;
}

export const clusterHelp = `Usage: sluice cluster describe|rebalance|drain [options]

Subcommands:
  describe               the cluster id and controller, one line per live broker (Id, Host,
                         Port), and one line per partition of every topic: Topic, Partition,
                         Leader, LeaderEpoch, Replicas, Isr, Status (OK, UNDER-REPLICATED when
                         some replica is out of sync, OFFLINE when there is no leader)
  rebalance              spread replicas evenly over the live brokers (e.g. after adding one),
                         moving as few as possible; prints each move
  drain --broker N       move every replica off broker N (before removing it)

Options:
  --bootstrap H:P        broker address(es), comma-separated (default ${DEFAULT_BOOTSTRAP})
  --throttle-bytes-per-sec N
                         rebalance/drain: limit each new replica's catch-up (default 0: none)
  --dry-run              rebalance/drain: print the plan, change nothing
  --wait-ms T            rebalance/drain: wait up to T ms for the moves to finish (default 0)
  --help                 show this help

A move adds the new replicas first; the old ones are dropped only once the new ones are in
sync, so the partition keeps its replication factor throughout.
`;

const flags: FlagSpecs = {
  bootstrap: { type: 'string' },
  help: { type: 'boolean' },
  broker: { type: 'int', min: 0 },
  'throttle-bytes-per-sec': { type: 'int', min: 0 },
  'dry-run': { type: 'boolean' },
  'wait-ms': { type: 'int', min: 0 },
};

export async function clusterCommand(argv: string[], io: Io): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === 'help') {
    io.out(clusterHelp);
    return sub === undefined ? 1 : 0;
  }
  const p = parseArgs(rest, flags);
  if (p.flags.has('help')) {
    io.out(clusterHelp);
    return 0;
  }
  if (sub !== 'describe' && sub !== 'rebalance' && sub !== 'drain') throw new UsageError(`unknown subcommand ${JSON.stringify(sub)}: describe, rebalance or drain`);
  positionals(p, [], `sluice cluster ${sub}`);
  const admin = new Admin({ bootstrap: bootstrapOf(p) });
  try {
    if (sub !== 'describe') return await moveReplicas(admin, sub, p, io);
    const md = await clusterMetadata(admin);
    const lines = [`ClusterId: ${md.clusterId}\tController: ${md.controllerId}`, 'Id\tHost\tPort'];
    for (const b of md.brokers) lines.push(`${b.nodeId}\t${b.host}\t${b.port}`);
    lines.push('Topic\tPartition\tLeader\tLeaderEpoch\tReplicas\tIsr\tStatus');
    for (const t of [...md.topics].sort((a, b) => (a.topic < b.topic ? -1 : 1))) {
      for (const part of t.partitions) {
        const status = part.leader < 0 ? 'OFFLINE' : part.isr.length < part.replicas.length ? 'UNDER-REPLICATED' : 'OK';
        lines.push([t.topic, part.partition, part.leader, part.leaderEpoch, part.replicas.join(','), part.isr.join(','), status].join('\t'));
      }
    }
    io.out(`${lines.join('\n')}\n`);
    return 0;
  } finally {
    await admin.close();
  }
}
