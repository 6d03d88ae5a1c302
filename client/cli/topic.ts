/** `sluice topic create|list|describe|alter|delete`: topic lifecycle through the Admin client. */
import { Admin } from '../admin.ts';
import { DEFAULT_BOOTSTRAP, bootstrapOf, UsageError, int, parseArgs, parseConfigs, positionals, str, strs, type FlagSpecs } from './args.ts';
import type { Io } from './io.ts';

export const topicHelp = `Usage: sluice topic SUBCOMMAND [options]

Subcommands:
  create NAME [--partitions N] [--replication-factor R] [--config key=value]...
                         create a topic (default 1 partition; replication factor: the
                         broker default, min(3, live brokers)); --config may repeat
  list                   print every topic name, one per line
  describe NAME          print the topic's config and, per partition, its log start
                         and end offsets, size and segment count
  alter NAME --partitions N
                         raise the partition count to N (it can never be lowered; keys
                         then map to other partitions, and consumer groups are assigned
                         the new partitions)
  delete NAME            delete a topic and all its data

Options:
  --bootstrap H:P        broker address(es), comma-separated (default ${DEFAULT_BOOTSTRAP})
  --help                 show this help
`;

const common: FlagSpecs = { bootstrap: { type: 'string' }, help: { type: 'boolean' } };
const createFlags: FlagSpecs = { ...common, partitions: { type: 'int', min: 1 }, 'replication-factor': { type: 'int', min: 1 }, config: { type: 'string', multiple: true } };
const alterFlags: FlagSpecs = { ...common, partitions: { type: 'int', min: 1 } };

export async function topicCommand(argv: string[], io: Io): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === 'help') {
    io.out(topicHelp);
    return sub === undefined ? 1 : 0;
  }
  const p = parseArgs(rest, sub === 'create' ? createFlags : sub === 'alter' ? alterFlags : common);
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
      action = async (admin) => {
        await admin.createTopics([{ topic: name!, partitions, replicationFactor, configs }]);
        io.out(`Created topic ${name} with ${partitions} partition${partitions === 1 ? '' : 's'}.\n`);
      };
      break;
    }
    case 'list':
      positionals(p, [], 'sluice topic list');
      action = async (admin) => {
        const names = await admin.listTopics();
        io.out(names.map((n) => `${n}\n`).join(''));
      };
      break;
    case 'describe': {
      const [name] = positionals(p, ['NAME'], 'sluice topic describe NAME');
      action = async (admin) => {
        const [d] = await admin.describeTopics([name!]);
        if (!d) throw new Error(`the broker did not describe topic ${name}`);
        const lines = [`Topic: ${d.topic}\tPartitions: ${d.partitions.length}`, 'Configs:'];
        for (const k of Object.keys(d.configs).sort()) lines.push(`  ${k}=${d.configs[k]}`);
        lines.push('Partition\tLogStartOffset\tLogEndOffset\tSizeBytes\tSegments');
        for (const part of [...d.partitions].sort((a, b) => a.partition - b.partition)) {
          lines.push(`${part.partition}\t${part.logStartOffset}\t${part.logEndOffset}\t${part.sizeBytes}\t${part.segments}`);
        }
        io.out(lines.join('\n') + '\n');
      };
      break;
    }
    case 'alter': {
      const [name] = positionals(p, ['NAME'], 'sluice topic alter NAME --partitions N');
      const partitions = int(p, 'partitions');
      if (partitions === undefined) throw new UsageError('--partitions is required; usage: sluice topic alter NAME --partitions N');
      action = async (admin) => {
        await admin.createPartitions(name!, partitions);
        io.out(`Topic ${name} now has ${partitions} partition${partitions === 1 ? '' : 's'}.\n`);
      };
      break;
    }
    case 'delete': {
      const [name] = positionals(p, ['NAME'], 'sluice topic delete NAME');
      action = async (admin) => {
        await admin.deleteTopics([name!]);
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
