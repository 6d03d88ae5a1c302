/**
 * `sluice consume TOPIC`: prints messages, one per line. Output is written per poll() as one
 * chunk and honours stdout backpressure, so `| head` and slow pipes work; a closed pipe
 * (EPIPE) or SIGINT/SIGTERM ends the command cleanly with exit code 0.
 * With --group the messages come from a GroupConsumer (the group assigns the partitions and
 * the consumer commits what was printed, at least once by default, or as --delivery says);
 * without, from a Consumer reading the partitions by hand. --isolation (and --delivery
 * exactly-once) choose read_committed: only committed transactions are printed.
 * --tags / --tag-expression filter on the broker by the messages' tags (SPEC §6.7); the
 * position (and a group's committed offsets) move past the messages that do not match.
 */
import { Cluster } from '../cluster.ts';
import { Consumer, type IsolationLevel, type Message, type OffsetSpec } from '../consumer.ts';
import type { DeliveryMode } from '../group/delivery-session.ts';
import { resolveTagExpression } from '../fetch-engine.ts';
import { DEFAULT_BOOTSTRAP, bootstrapOf, UsageError, bool, int, parseArgs, positionals, str, type FlagSpecs } from './args.ts';
import type { Io } from './io.ts';

export const consumeHelp = `Usage: sluice consume TOPIC [options]

Prints each message of TOPIC on its own line: the value as UTF-8 (null prints as "null").
Without --partition every partition is read. Starts at the end of each partition (new
messages only) unless --from-beginning or --offset says otherwise. Runs until
--max-messages, --idle-timeout-ms, Ctrl-C or a closed output pipe.

With --group G the command joins consumer group G: the group shares TOPIC's partitions
among its members, and each partition starts at G's committed offset. The offsets of
printed messages are committed as it goes and on exit (at least once: after a crash
some messages may print again). A partition G has no offset for starts at the end,
or at the beginning with --from-beginning. --partition and --offset cannot be used
with --group.

Transactions: with --isolation read_committed only records of committed transactions
are printed (read_uncommitted, the default, prints those of open and aborted ones
too). Transaction markers are never printed.

Tags: --tags a,b prints only messages tagged a or b; --tag-expression EXPR
takes a full expression: tags, ||, &&, !, parentheses, e.g. 'order.created &&
!region:us'. The broker filters; a group's committed offsets still move past the
messages that do not match.

--delivery (with --group) chooses when offsets are committed:
  at-least-once  (default) after printing: a crash may print some messages again
  at-most-once   before printing: a crash may skip messages, never print one twice
  exactly-once   read_committed, and offsets committed after printing. The terminal is
                 not part of a transaction, so a crash may still print messages again;
                 exactly-once pipelines use a transactional producer (see README).

Options:
  --bootstrap H:P        broker address(es), comma-separated (default ${DEFAULT_BOOTSTRAP})
  --group G              consume as a member of consumer group G
  --from-beginning       start at the earliest retained message (with --group: where
                         the group has no committed offset)
  --partition N          read only partition N
  --offset O             with --partition: start at offset O (a number, earliest or latest)
  --max-messages N       exit after N messages
  --idle-timeout-ms T    exit when no message arrived for T ms
  --print-key            print key<TAB>value
  --print-offset         prefix each line with partition:offset<TAB>
  --print-tags           prefix each line with the message's tags, comma-separated, and a TAB
  --tags T1,T2           only messages with any of these tags (filtered on the broker)
  --tag-expression EXPR  only messages whose tags match EXPR (not with --tags)
  --isolation L          read_uncommitted (default) or read_committed
  --delivery D           with --group: at-least-once (default), at-most-once or
                         exactly-once (implies --isolation read_committed)
  --help                 show this help
`;

const flags: FlagSpecs = {
  bootstrap: { type: 'string' },
  group: { type: 'string' },
  'from-beginning': { type: 'boolean' },
  partition: { type: 'int', min: 0 },
  offset: { type: 'string' },
  'max-messages': { type: 'int', min: 1 },
  'idle-timeout-ms': { type: 'int', min: 1 },
  'print-key': { type: 'boolean' },
  'print-offset': { type: 'boolean' },
  'print-tags': { type: 'boolean' },
  tags: { type: 'string' },
  'tag-expression': { type: 'string' },
  isolation: { type: 'string' },
  delivery: { type: 'string' },
  help: { type: 'boolean' },
};

export async function consumeCommand(argv: string[], io: Io): Promise<number> {
  const p = parseArgs(argv, flags);
  if (p.flags.has('help')) {
    io.out(consumeHelp);
    return 0;
  }
  const [topic] = positionals(p, ['TOPIC'], 'sluice consume TOPIC [options]');
  const bootstrap = bootstrapOf(p);
  const fromBeginning = bool(p, 'from-beginning');
  const partition = int(p, 'partition');
  const offsetRaw = str(p, 'offset');
  const maxMessages = int(p, 'max-messages', Infinity);
  const idleTimeoutMs = int(p, 'idle-timeout-ms');
  const printKey = bool(p, 'print-key');
  const printOffset = bool(p, 'print-offset');
  const printTags = bool(p, 'print-tags');
  const tagsRaw = str(p, 'tags');
  const tagExpressionRaw = str(p, 'tag-expression');
  if (tagsRaw !== undefined && tagExpressionRaw !== undefined) throw new UsageError('--tags and --tag-expression exclude each other');
  let filter: { tagExpression?: string } = {};
  try {
    const tagExpression = resolveTagExpression({ tags: tagsRaw?.split(',').map((t) => t.trim()), tagExpression: tagExpressionRaw });
    if (tagExpression !== null) filter = { tagExpression };
  } catch (e) {
    throw new UsageError(`${tagsRaw !== undefined ? '--tags' : '--tag-expression'}: ${(e as Error).message}`);
  }
  const group = str(p, 'group');
  if (group !== undefined && (partition !== undefined || offsetRaw !== undefined)) {
    throw new UsageError('--partition and --offset cannot be used with --group: the group assigns the partitions and starts at its committed offsets');
  }
  if (group === '') throw new UsageError('--group must not be empty');
  if (offsetRaw !== undefined && partition === undefined) throw new UsageError('--offset needs --partition');
  if (offsetRaw !== undefined && fromBeginning) throw new UsageError('--offset and --from-beginning exclude each other');
  const start: OffsetSpec = offsetRaw !== undefined ? parseOffset(offsetRaw) : fromBeginning ? 'earliest' : 'latest';
  const deliveryRaw = str(p, 'delivery');
  if (deliveryRaw !== undefined && group === undefined) {
    throw new UsageError('--delivery needs --group: without a group nothing is committed (use --isolation read_committed to print only committed transactions)');
  }
  const delivery = parseDelivery(deliveryRaw ?? 'at-least-once');
  const isolationRaw = str(p, 'isolation');
  const isolation = parseIsolation(isolationRaw ?? (delivery === 'exactly-once' ? 'read_committed' : 'read_uncommitted'));
  if (delivery === 'exactly-once' && isolation !== 'read_committed') throw new UsageError('--delivery exactly-once reads read_committed: drop --isolation read_uncommitted');

  const consumer =
    group !== undefined ? await groupSource(bootstrap, group, topic!, fromBeginning, delivery, isolation, io, filter) : await manualSource(bootstrap, topic!, partition, start, fromBeginning, isolation, filter);
  let stopped = false;
  const stop = (): void => {
    stopped = true;
    void consumer.close();
  };
  const out = io.stdout;
  const onOutError = (e: NodeJS.ErrnoException): void => {
    if (e.code !== 'EPIPE') io.err(`sluice consume: stdout: ${e.message}\n`);
    stop();
  };
  out.on('error', onOutError);
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  let count = 0;
  try {
    await consumer.start();
    let lastMessageAt = Date.now();
    while (!stopped && count < maxMessages) {
      let wait = 500;
      if (idleTimeoutMs !== undefined) {
        const left = idleTimeoutMs - (Date.now() - lastMessageAt);
        if (left <= 0) break;
        wait = Math.min(wait, left);
      }
      const batch = await consumer.poll(wait);
      if (stopped) break;
      if (batch.length === 0) continue;
      lastMessageAt = Date.now();
      const take = Math.min(batch.length, maxMessages - count);
      count += take;
      consumer.printed(batch, take);
      const text = format(batch, take, printKey, printOffset, printTags);
      if (!out.write(text)) await drainOrStop(out, () => stopped);
    }
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    await consumer.close();
    // Leave the listener: a write still queued may fail with EPIPE after we return.
  }
  io.err(`Processed a total of ${count} messages\n`);
  return 0;
}

/** What the loop reads from: a hand-assigned Consumer or a GroupConsumer. */
interface Source {
  start(): Promise<void>;
  poll(timeoutMs: number): Promise<Message[]>;
  /** The first n messages of the batch poll() returned were written out. */
  printed(batch: readonly Message[], n: number): void;
  /** Idempotent; safe while a poll() is pending. */
  close(): Promise<void>;
}

async function manualSource(bootstrap: string, topic: string, partition: number | undefined, start: OffsetSpec, fromBeginning: boolean, isolation: IsolationLevel, filter: { tagExpression?: string }): Promise<Source> {
  const partitions = partition !== undefined ? [partition] : await partitionsOf(bootstrap, topic);
  const consumer = new Consumer({ bootstrap, clientId: 'sluice-cli-consumer', autoOffsetReset: fromBeginning ? 'earliest' : 'latest', isolation, ...filter });
  return {
    start: () => consumer.assign(partitions.map((p) => ({ topic, partition: p, offset: start }))),
    poll: (timeoutMs) => consumer.poll(timeoutMs),
    printed: () => {},
    close: () => consumer.close(),
  };
}

/**
 * A group member. At least once (and exactly-once, which for a terminal only adds
 * read_committed: printing cannot join a transaction): the next poll() marks the previous
 * batch consumed (and auto-commit commits it); the last batch is committed on close as far
 * as it was printed, for partitions this member still owns: --max-messages may stop in the
 * middle of a batch, and its unprinted rest must stay for the group to read. At most once:
 * every batch is committed before it is printed, and nothing is committed on close (that
 * could move the offset back and print messages twice).
 */
async function groupSource(bootstrap: string, groupId: string, topic: string, fromBeginning: boolean, delivery: DeliveryMode, isolation: IsolationLevel, io: Io, filter: { tagExpression?: string }): Promise<Source> {
  // Loaded only here: plain consume does not pay for the group machinery.
  const { GroupConsumer } = await import('../group/consumer.ts');
  const consumer = new GroupConsumer({
    bootstrap,
    groupId,
    clientId: 'sluice-cli-consumer',
    topics: [topic],
    autoOffsetReset: fromBeginning ? 'earliest' : 'latest',
    delivery: delivery === 'at-most-once' ? 'at-most-once' : 'at-least-once',
    isolation,
    ...filter,
    // A partition handed to another member must not get our stale offset at close.
    onAssignmentChange: (e) => {
      for (const tp of e.revoked) if (tp.topic === topic) printedNext.delete(tp.partition);
    },
  });
  const printedNext = new Map<number, number>();
  let closing: Promise<void> | null = null;
  const commitPrinted = async (): Promise<void> => {
    if (delivery === 'at-most-once') return;
    const offsets = consumer
      .assignment()
      .filter((tp) => tp.topic === topic && printedNext.has(tp.partition))
      .map((tp) => ({ topic, partition: tp.partition, offset: printedNext.get(tp.partition)! }));
    if (offsets.length === 0) return;
    try {
      await consumer.commitOffsets(offsets);
    } catch (e) {
      io.err(`sluice consume: could not commit the offsets of group ${groupId}; the last messages may be delivered again: ${(e as Error).message}\n`);
    }
  };
  return {
    start: async () => {},
    poll: (timeoutMs) => consumer.poll(timeoutMs),
    printed: (batch, n) => {
      for (let i = 0; i < n; i++) printedNext.set(batch[i]!.partition, batch[i]!.offset + 1);
    },
    close: () =>
      (closing ??= (async () => {
        await commitPrinted();
        await consumer.close();
      })()),
  };
}

function format(batch: Message[], n: number, printKey: boolean, printOffset: boolean, printTags: boolean): string {
  const lines: string[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const m = batch[i]!;
    let line = m.value === null ? 'null' : m.value.toString('utf8');
    if (printKey) line = `${m.key === null ? 'null' : m.key.toString('utf8')}\t${line}`;
    if (printTags) line = `${(m.tags ?? []).join(',')}\t${line}`;
    if (printOffset) line = `${m.partition}:${m.offset}\t${line}`;
    lines[i] = line;
  }
  return lines.join('\n') + '\n';
}

function parseDelivery(raw: string): DeliveryMode {
  if (raw === 'at-least-once' || raw === 'at-most-once' || raw === 'exactly-once') return raw;
  throw new UsageError(`--delivery must be at-least-once, at-most-once or exactly-once, not ${JSON.stringify(raw)}`);
}

function parseIsolation(raw: string): IsolationLevel {
  if (raw === 'read_committed' || raw === 'read_uncommitted') return raw;
  throw new UsageError(`--isolation must be read_committed or read_uncommitted, not ${JSON.stringify(raw)}`);
}

function parseOffset(raw: string): OffsetSpec {
  if (raw === 'earliest' || raw === 'latest') return raw;
  if (/^\d+$/.test(raw) && Number.isSafeInteger(Number(raw))) return Number(raw);
  throw new UsageError(`--offset must be a non-negative integer, earliest or latest, not ${JSON.stringify(raw)}`);
}

async function partitionsOf(bootstrap: string, topic: string): Promise<number[]> {
  const cluster = new Cluster({ bootstrap, clientId: 'sluice-cli-consumer' });
  try {
    const md = await cluster.topic(topic);
    return md.partitions.map((p) => p.partition).sort((a, b) => a - b);
  } finally {
    cluster.close();
  }
}

function drainOrStop(out: NodeJS.WritableStream, stopped: () => boolean): Promise<void> {
  return new Promise((resolve) => {
    const timer = setInterval(() => {
      if (stopped()) done();
    }, 100);
    const done = (): void => {
      clearInterval(timer);
      out.off('drain', done);
      resolve();
    };
    out.once('drain', done);
  });
}
