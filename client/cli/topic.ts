/**
 * `sluice topic create|list|describe|alter|delete`: topic lifecycle through the Admin client.
 * describe marks the configs that are defaults: a value equal to the default of §7.2 (the
 * table in server/log/log-config.ts, which the broker applies) prints "(default)"; a value set
 * on the topic equal to its default is indistinguishable and is marked as well.
 */
import { DEFAULT_LOG_CONFIG, topicConfigToStrings } from '../../server/log/log-config.ts';
import { ErrorCode, SluiceError } from '../../protocol/errors.ts';
import { Admin } from '../admin.ts';
import { DEFAULT_BOOTSTRAP, bootstrapOf, UsageError, bool, int, parseArgs, parseConfigs, positionals, str, strs, type FlagSpecs } from './args.ts';
import type { Io } from './io.ts';

export const topicHelp = `Usage: sluice topic SUBCOMMAND [options]

Subcommands:
  create NAME [--partitions N] [--replication-factor R] [--config key=value]... [--if-not-exists]
                         create a topic (default 1 partition; replication factor: the
                         broker default, min(3, live brokers)); --config may repeat;
                         --if-not-exists: an existing topic is not an error (left as it is)
  list [--names]         print every topic with its partition count and replication
                         factor (--names: only the names, one per line)
  describe NAME          print the topic's replication factor, its configs (defaults
                         marked "(default)") and, per partition, its log start and end
                         offsets, messages (end - start: transaction markers and
                         offsets removed by compaction count too), size, segment count,
                         leader, replicas and in-sync replicas, then the totals
  alter NAME [--partitions N] [--config key=value]... [--delete-config key]...
                         --partitions: raise the partition count to N (it can never be
                         lowered; keys then map to other partitions, and consumer groups
                         are assigned the new partitions); --config: set config overrides
                         (keys as for create), applied at once on every broker;
                         --delete-config: back to the default
  delete NAME [--if-exists]
                         delete a topic and all its data; --if-exists: a missing topic
                         is not an error

Options:
  --bootstrap H:P        broker address(es), comma-separated (default ${DEFAULT_BOOTSTRAP})
  --help                 show this help
`;

const common: FlagSpecs = { bootstrap: { type: 'string' }, help: { type: 'boolean' } };
const createFlags: FlagSpecs = { ...common, partitions: { type: 'int', min: 1 }, 'replication-factor': { type: 'int', min: 1 }, config: { type: 'string', multiple: true }, 'if-not-exists': { type: 'boolean' } };
const alterFlags: FlagSpecs = { ...common, partitions: { type: 'int', min: 1 }, config: { type: 'string', multiple: true }, 'delete-config': { type: 'string', multiple: true } };
const listFlags: FlagSpecs = { ...common, names: { type: 'boolean' } };
const deleteFlags: FlagSpecs = { ...common, 'if-exists': { type: 'boolean' } };
const FLAGS_OF: Record<string, FlagSpecs> = { create: createFlags, alter: alterFlags, list: listFlags, delete: deleteFlags };

export async function topicCommand(argv: string[], io: Io): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === 'help') {
    io.out(topicHelp);
    return sub === undefined ? 1 : 0;
  }
  const p = parseArgs(rest, FLAGS_OF[sub] ?? common);
  if (p.flags.has('help')) {
    io.out(topicHelp);
    return 0;
  }
  const bootstrap = bootstrapOf(p);
  let action: (admin: Admin) => Promise<void>;
  switch (sub) {
    case 'create': {
      const [name] = positionals(p, ['NAME'], 'sluice topic create NAME [--partitions N] [--config key=value]...');
      const partitions = int(p, 'partitions', 1);
      const replicationFactor = int(p, 'replication-factor', -1);
      const configs = parseConfigs(strs(p, 'config'));
      const ifNotExists = bool(p, 'if-not-exists');
      action = async (admin) => {
        try {
          await admin.createTopics([{ topic: name!, partitions, replicationFactor, configs }]);
        } catch (e) {
          if (ifNotExists && e instanceof SluiceError && e.code === ErrorCode.TOPIC_ALREADY_EXISTS) {
            io.out(`Topic ${name} already exists.\n`);
            return;
          }
          throw e;
        }
        io.out(`Created topic ${name} with ${partitions} partition${partitions === 1 ? '' : 's'}.\n`);
      };
      break;
    }
    case 'list':
      positionals(p, [], 'sluice topic list');
      action = async (admin) => {
        if (bool(p, 'names')) {
          io.out((await admin.listTopics()).map((n) => `${n}\n`).join(''));
          return;
        }
        const md = await admin.metadata(null);
        const rows = md.topics.filter((t) => t.errorCode === 0).sort((a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : 0));
        io.out(['Topic\tPartitions\tReplicationFactor', ...rows.map((t) => `${t.topic}\t${t.partitions.length}\t${replicationFactor(t.partitions)}`)].join('\n') + '\n');
      };
      break;
    case 'describe': {
      const [name] = positionals(p, ['NAME'], 'sluice topic describe NAME');
      action = async (admin) => {
        const d = await admin.describeTopicAtLeaders(name!);
        const md = (await admin.metadata([name!])).topics.find((t) => t.topic === name);
        const placement = new Map((md?.partitions ?? []).map((x) => [x.partition, x]));
        const defaults = topicConfigToStrings(DEFAULT_LOG_CONFIG);
        const lines = [`Topic: ${d.topic}\tPartitions: ${d.partitions.length}\tReplicationFactor: ${replicationFactor(md?.partitions ?? [])}`, 'Configs:'];
        for (const k of Object.keys(d.configs).sort()) lines.push(`  ${k}=${d.configs[k]}${defaults[k] === d.configs[k] ? ' (default)' : ''}`);
        lines.push('Partition\tLogStartOffset\tLogEndOffset\tMessages\tSizeBytes\tSegments\tLeader\tReplicas\tIsr');
        const total = { messages: 0, sizeBytes: 0, segments: 0 };
        for (const part of d.partitions) {
          const known = part.logEndOffset >= 0 && part.logStartOffset >= 0;
          const messages = known ? part.logEndOffset - part.logStartOffset : -1;
          if (known) {
            total.messages += messages;
            total.sizeBytes += part.sizeBytes;
            total.segments += part.segments;
          }
          const pl = placement.get(part.partition);
          lines.push(`${part.partition}\t${part.logStartOffset}\t${part.logEndOffset}\t${known ? messages : '-'}\t${part.sizeBytes}\t${part.segments}\t${pl && pl.leader >= 0 ? pl.leader : '-'}\t${pl ? pl.replicas.join(',') : '-'}\t${pl ? pl.isr.join(',') : '-'}`);
        }
        lines.push(`Total\t-\t-\t${total.messages}\t${total.sizeBytes}\t${total.segments}`);
        io.out(lines.join('\n') + '\n');
      };
      break;
    }
    case 'alter': {
      const usage = 'sluice topic alter NAME [--partitions N] [--config key=value]... [--delete-config key]...';
      const [name] = positionals(p, ['NAME'], usage);
      const partitions = int(p, 'partitions');
      const set = parseConfigs(strs(p, 'config'));
      const remove = strs(p, 'delete-config');
      if (partitions === undefined && Object.keys(set).length === 0 && remove.length === 0) throw new UsageError(`nothing to change: give --partitions, --config or --delete-config; usage: ${usage}`);
      action = async (admin) => {
        if (Object.keys(set).length > 0 || remove.length > 0) {
          await admin.alterTopicConfigs(name!, set, remove);
          const changes = [...Object.entries(set).map(([k, v]) => `${k}=${v}`), ...remove.map((k) => `${k} (default)`)];
          io.out(`Topic ${name}: ${changes.join(', ')}.\n`);
        }
        if (partitions !== undefined) {
          await admin.createPartitions(name!, partitions);
          io.out(`Topic ${name} now has ${partitions} partition${partitions === 1 ? '' : 's'}.\n`);
        }
      };
      break;
    }
    case 'delete': {
      const [name] = positionals(p, ['NAME'], 'sluice topic delete NAME');
      const ifExists = bool(p, 'if-exists');
      action = async (admin) => {
        try {
          await admin.deleteTopics([name!]);
        } catch (e) {
          if (ifExists && e instanceof SluiceError && e.code === ErrorCode.UNKNOWN_TOPIC_OR_PARTITION) {
            io.out(`Topic ${name} does not exist.\n`);
            return;
          }
          throw e;
        }
        io.out(`Deleted topic ${name}.\n`);
      };
      break;
    }
    default:
      throw new UsageError(`unknown subcommand ${JSON.stringify(sub)}: create, list, describe, alter or delete`);
  }
  const admin = new Admin({ bootstrap, clientId: 'sluice-cli-admin' });
  try {
    await action(admin);
  } finally {
    await admin.close();
  }
  return 0;
}

/** The largest replica count among the partitions (they differ only while replicas move). */
function replicationFactor(partitions: ReadonlyArray<{ replicas: readonly number[] }>): number {
  return partitions.reduce((m, p) => Math.max(m, p.replicas.length), 0);
}
