/**
 * `sluice` client commands: topic, produce, consume, group, dlq, delayed, archive, health. bin/sluice.mjs routes every subcommand
 * except `broker` and `bench` here. Each command group lives in its own file; this one only
 * dispatches, prints errors (one line, on stderr) and sets the exit code (1 on any error).
 */
import { readFileSync } from 'node:fs';
import { SluiceError } from '../../protocol/errors.ts';
import { ConnectionError } from '../connection.ts';
import { UsageError } from './args.ts';
import { archiveCommand, archiveHelp } from './archive.ts';
import { clusterCommand, clusterHelp } from './cluster.ts';
import { consumeCommand, consumeHelp } from './consume.ts';
import { delayedCommand, delayedHelp } from './delayed.ts';
import { dlqCommand, dlqHelp } from './dlq.ts';
import { groupCommand, groupHelp } from './group.ts';
import { healthCommand, healthHelp } from './health.ts';
import { processIo, type Io } from './io.ts';
import { produceCommand, produceHelp } from './produce.ts';
import { topicCommand, topicHelp } from './topic.ts';
import { applySecurityFlags, securityHelp } from './security-flags.ts';
import { userCommand, userHelp } from './user.ts';
import { aclCommand, aclHelp } from './acl.ts';

export const mainHelp = `Usage: sluice COMMAND [options]

Commands:
  broker                 run a broker (sluice broker --help)
  topic create|list|describe|alter|delete
                         manage topics (sluice topic --help)
  produce TOPIC          send stdin lines as messages (sluice produce --help)
  consume TOPIC          print messages to stdout, alone or in a consumer group
                         (sluice consume --help)
  group list|describe|reset-offsets|delete
                         manage consumer groups (sluice group --help)
  dlq list|replay        inspect and replay a group's dead-lettered messages
                         (sluice dlq --help)
  delayed list|cancel    list and cancel pending delayed messages
                         (sluice delayed --help)
  archive status [TOPIC] tiered storage: archived ranges, uploader lag, errors
                         (sluice archive --help)
  bench produce|consume|e2e|rebalance|tags|delayed|archive|workload|plot
                         measure throughput and latency (sluice bench --help)
  health                 exit 0 when a broker answers (sluice health --help)
  cluster describe|rebalance|drain
                         brokers, controller, and each partition's leader, replicas and
                         ISR; spread replicas over the brokers; empty a broker
                         (sluice cluster --help)
  user create|delete|list
                         manage SASL users in the metadata store (sluice user --help)
  acl add|remove|list    manage ACLs in the metadata store (sluice acl --help)
  version                print the version (also --version, -V)

Every client command takes --bootstrap H:P[,H:P...]; without it, $SLUICE_BOOTSTRAP, else
127.0.0.1:9292. SLUICE_DEBUG=1 adds stack traces to unexpected errors.

${securityHelp}`;

const commands: Record<string, { run: (argv: string[], io: Io) => Promise<number>; help: string }> = {
  topic: { run: topicCommand, help: topicHelp },
  produce: { run: produceCommand, help: produceHelp },
  consume: { run: consumeCommand, help: consumeHelp },
  group: { run: groupCommand, help: groupHelp },
  dlq: { run: dlqCommand, help: dlqHelp },
  delayed: { run: delayedCommand, help: delayedHelp },
  archive: { run: archiveCommand, help: archiveHelp },
  health: { run: healthCommand, help: healthHelp },
  cluster: { run: clusterCommand, help: clusterHelp },
  user: { run: userCommand, help: userHelp },
  acl: { run: aclCommand, help: aclHelp },
};

/** The version in package.json (the one `npm pack` ships). */
export function version(): string {
  return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}

/** Runs one command; returns the exit code. Never throws. */
export async function run(argv: string[], io: Io): Promise<number> {
  const [name, ...rest] = argv;
  if (name === 'version' || name === '--version' || name === '-V') {
    io.out(`sluice ${version()}\n`);
    return 0;
  }
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    const topicName = name === 'help' ? rest[0] : undefined;
    io.out(topicName && commands[topicName] ? commands[topicName].help : mainHelp);
    return name === undefined ? 1 : 0;
  }
  const cmd = commands[name];
  if (!cmd) {
    io.err(`sluice: unknown command ${JSON.stringify(name)}\n\n${mainHelp}`);
    return 1;
  }
  try {
    return await cmd.run(applySecurityFlags(rest, process.env), io);
  } catch (e) {
    io.err(formatError(name, e));
    return 1;
  }
}

export function formatError(command: string, e: unknown): string {
  if (e instanceof UsageError) return `sluice ${command}: ${e.message}\n(see sluice ${command} --help)\n`;
  if (e instanceof SluiceError || e instanceof ConnectionError) return `sluice ${command}: ${e.message}\n`;
  const err = e as Error;
  return `sluice ${command}: ${err?.message ?? String(e)}\n${process.env.SLUICE_DEBUG ? `${err?.stack}\n` : ''}`;
}

/** Entry point from bin/sluice.mjs. Exits the process once stdout and stderr are drained. */
export async function main(argv: string[]): Promise<void> {
  const code = await run(argv, processIo());
  await exitWhenDrained(code);
}

/** Exits with code after pending stdout/stderr writes complete (process.exit would drop them). */
export async function exitWhenDrained(code: number): Promise<never> {
  await Promise.all([drain(process.stdout), drain(process.stderr)]);
  process.exit(code);
}

function drain(s: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => {
    if (s.destroyed || s.writableLength === 0) return resolve();
    s.write('', () => resolve());
    s.once('error', () => resolve());
  });
}
