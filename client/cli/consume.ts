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
 *
 * Where to start (without --group): --offset N | earliest | latest | -N (the last N of each
 * partition), --from-time (ListOffsets by timestamp); resolved per partition before the
 * first fetch. --exit-at-end stops once every partition read has been fetched up to its end
 * (the high watermark, or the last stable offset with read_committed) as of the latest fetch.
 * Output (format.ts): text (with optional key, offset, timestamp, headers, tags columns),
 * json (one object per line), or a kcat-style template.
 *
 * Failures with --group are reported, never an exit 0 with "0 messages": the topic is looked
 * up first (a dead broker or a missing topic fails at once), and a member that has not
 * heard from its coordinator for --join-timeout-ms (not joined yet, or contact lost) exits 1
 * with the coordinator's last answer (COORDINATOR_NOT_AVAILABLE when the offsets topic
 * cannot be placed, or the connection error).
 */
import { Admin } from '../admin.ts';
import { Cluster } from '../cluster.ts';
import { parseDuration, parseInstant } from '../delivery-time.ts';
import { Consumer, type IsolationLevel, type Message, type OffsetSpec } from '../consumer.ts';
import type { DeliveryMode } from '../group/delivery-session.ts';
import { resolveTagExpression } from '../fetch-engine.ts';
import { DEFAULT_BOOTSTRAP, bootstrapOf, UsageError, bool, int, parseArgs, positionals, str, type FlagSpecs } from './args.ts';
import { formatMessages, parseOutputFormat } from './format.ts';
import type { Io } from './io.ts';

/** How long a group member may go without a successful heartbeat (joining or later) by default. */
const JOIN_TIMEOUT_MS_DEFAULT = 30_000;
/** How long a member cut off from its coordinator waits for its close (leave, commit) before the command exits. */
const UNREACHABLE_CLOSE_WAIT_MS = 1000;

export const consumeHelp = `Usage: sluice consume TOPIC [options]

Prints each message of TOPIC on its own line: the value as UTF-8 (null prints as "null").
Without --partition every partition is read. Starts at the end of each partition (new
messages only) unless --from-beginning, --offset or --from-time says otherwise. Runs until
--max-messages, --idle-timeout-ms, --exit-at-end, Ctrl-C or a closed output pipe.

Output formats (--format):
  text      (default) the value; --print-key, --print-offset, --print-timestamp,
            --print-headers and --print-tags add TAB-separated columns before it
  json      one JSON object per line: {"topic","partition","offset","timestamp" (ms),
            "key","value" (UTF-8 strings or null),"headers" ({key: value}; a key
            repeated in one message: its values in an array)}
  TEMPLATE  anything with a %, as kcat -f: %t topic, %p partition, %o offset,
            %T timestamp (ms), %k key, %s value, %K key bytes, %S value bytes,
            %h headers (k=v,k2=v2), %%; \n \t \\ escapes. No newline is added:
            end the template with \n

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
  --offset O             start at offset O: a number, earliest, latest, or -N for the
                         last N messages of each partition read
  --from-time T          start at the first message at or after T: ISO 8601 with a zone
                         (2026-05-01T12:00:00Z), ms since the epoch, or -DURATION ago
                         (-1h, -30m, -2d)
  --exit-at-end          exit once every partition read is consumed up to its end
  --format F             text (default), json or a template (see above)
  --print-timestamp      prefix each line with the message's timestamp (ISO 8601) and a TAB
  --print-headers        prefix each line with its headers (k=v,k2=v2) and a TAB
  --join-timeout-ms T    with --group: exit 1 when the group coordinator has not answered
                         for T ms, joining or later (default ${JOIN_TIMEOUT_MS_DEFAULT})
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
  'from-time': { type: 'string' },
  'exit-at-end': { type: 'boolean' },
  format: { type: 'string' },
  'print-timestamp': { type: 'boolean' },
  'print-headers': { type: 'boolean' },
  'join-timeout-ms': { type: 'int', min: 1 },
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
  const fromTimeRaw = str(p, 'from-time');
  if (group !== undefined && (partition !== undefined || offsetRaw !== undefined || fromTimeRaw !== undefined)) {
    throw new UsageError('--partition, --offset and --from-time cannot be used with --group: the group assigns the partitions and starts at its committed offsets (see sluice group reset-offsets)');
  }
  if (group === '') throw new UsageError('--group must not be empty');
  if ([offsetRaw !== undefined, fromBeginning, fromTimeRaw !== undefined].filter(Boolean).length > 1) throw new UsageError('--offset, --from-beginning and --from-time exclude each other');
  const start: StartSpec = offsetRaw !== undefined ? parseOffset(offsetRaw) : fromTimeRaw !== undefined ? { timeMs: parseFromTime(fromTimeRaw) } : fromBeginning ? 'earliest' : 'latest';
  const exitAtEnd = bool(p, 'exit-at-end');
  const outputFormat = parseOutputFormat(str(p, 'format', 'text'));
  const printTimestamp = bool(p, 'print-timestamp');
  const printHeaders = bool(p, 'print-headers');
  if (outputFormat.kind !== 'text' && (printKey || printOffset || printTags || printTimestamp || printHeaders)) {
    throw new UsageError('--print-* options go with --format text; json and templates choose their own fields');
  }
  const joinTimeoutMs = int(p, 'join-timeout-ms', JOIN_TIMEOUT_MS_DEFAULT);
  if (p.flags.has('join-timeout-ms') && group === undefined) throw new UsageError('--join-timeout-ms needs --group');
  const deliveryRaw = str(p, 'delivery');
  if (deliveryRaw !== undefined && group === undefined) {
    throw new UsageError('--delivery needs --group: without a group nothing is committed (use --isolation read_committed to print only committed transactions)');
  }
  const delivery = parseDelivery(deliveryRaw ?? 'at-least-once');
  const isolationRaw = str(p, 'isolation');
  const isolation = parseIsolation(isolationRaw ?? (delivery === 'exactly-once' ? 'read_committed' : 'read_uncommitted'));
  if (delivery === 'exactly-once' && isolation !== 'read_committed') throw new UsageError('--delivery exactly-once reads read_committed: drop --isolation read_uncommitted');

  const consumer =
    group !== undefined ? await groupSource(bootstrap, group, topic!, fromBeginning, delivery, isolation, io, filter, joinTimeoutMs) : await manualSource(bootstrap, topic!, partition, start, fromBeginning, isolation, filter);
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
      consumer.check();
      if (exitAtEnd && consumer.atEnd()) break;
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
      const text = formatMessages(batch, take, outputFormat, { printKey, printOffset, printTags, printTimestamp, printHeaders });
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
  /** Every partition read is consumed up to its end as of the latest fetch. */
  atEnd(): boolean;
  /** Throws when the source has failed for good (a group member cut off from its coordinator). */
  check(): void;
  /** Idempotent; safe while a poll() is pending. */
  close(): Promise<void>;
}

async function manualSource(bootstrap: string, topic: string, partition: number | undefined, start: StartSpec, fromBeginning: boolean, isolation: IsolationLevel, filter: { tagExpression?: string }): Promise<Source> {
  const partitions = partition !== undefined ? [partition] : await partitionsOf(bootstrap, topic);
  const offsets = await startOffsets(bootstrap, topic, partitions, start);
  const consumer = new Consumer({ bootstrap, clientId: 'sluice-cli-consumer', autoOffsetReset: fromBeginning ? 'earliest' : 'latest', isolation, ...filter });
  const endOf = (p: number): number => (isolation === 'read_committed' ? consumer.lastStableOffset(topic, p) : consumer.highWatermark(topic, p));
  return {
    start: () => consumer.assign(partitions.map((p, i) => ({ topic, partition: p, offset: offsets[i]! }))),
    poll: (timeoutMs) => consumer.poll(timeoutMs),
    printed: () => {},
    atEnd: () => partitions.every((p) => endOf(p) >= 0 && consumer.position(topic, p) >= endOf(p)),
    check: () => {},
    close: () => consumer.close(),
  };
}

/** Where to start: an OffsetSpec, the last N of each partition, or a time. */
type StartSpec = OffsetSpec | { lastN: number } | { timeMs: number };

/** Each partition's start as an OffsetSpec; last N and times are looked up with ListOffsets. */
async function startOffsets(bootstrap: string, topic: string, partitions: readonly number[], start: StartSpec): Promise<OffsetSpec[]> {
  if (typeof start !== 'object') return partitions.map(() => start);
  const admin = new Admin({ bootstrap, clientId: 'sluice-cli-consumer' });
  try {
    return await Promise.all(
      partitions.map(async (p) => {
        if ('timeMs' in start) return admin.listOffsets(topic, p, start.timeMs);
        const [first, end] = await Promise.all([admin.listOffsets(topic, p, 'earliest'), admin.listOffsets(topic, p, 'latest')]);
        return Math.max(first, end - start.lastN);
      }),
    );
  } finally {
    await admin.close();
  }
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
async function groupSource(bootstrap: string, groupId: string, topic: string, fromBeginning: boolean, delivery: DeliveryMode, isolation: IsolationLevel, io: Io, filter: { tagExpression?: string }, joinTimeoutMs: number): Promise<Source> {
  // The topic first: a dead broker or a missing topic is an error now, not an endless join.
  await partitionsOf(bootstrap, topic);
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
  const startedMs = Date.now();
  let unreachable = false;
  return {
    start: async () => {},
    poll: (timeoutMs) => consumer.poll(timeoutMs),
    printed: (batch, n) => {
      for (let i = 0; i < n; i++) printedNext.set(batch[i]!.partition, batch[i]!.offset + 1);
    },
    atEnd: () => {
      const owned = consumer.assignment().filter((tp) => tp.topic === topic);
      return owned.length > 0 && owned.every((tp) => consumer.endOffset(topic, tp.partition) >= 0 && consumer.position(topic, tp.partition) >= consumer.endOffset(topic, tp.partition));
    },
    check: () => {
      const h = consumer.coordinatorStatus();
      const since = h.lastOkMs ?? startedMs;
      if (Date.now() - since <= joinTimeoutMs) return;
      const why = h.lastError ? `: ${h.lastError.message}` : '';
      // Cut off: a commit now could only fail, after its own timeouts.
      unreachable = true;
      throw new GroupUnreachableError(
        h.lastOkMs === null
          ? `could not join group ${groupId} within ${joinTimeoutMs} ms${why}`
          : `lost contact with the coordinator of group ${groupId} for more than ${joinTimeoutMs} ms${why}`,
      );
    },
    close: () =>
      (closing ??= (async () => {
        if (!unreachable) {
          await commitPrinted();
          await consumer.close();
          return;
        }
        // Its leave and final commit would each wait out their timeouts against a dead
        // coordinator: give them a moment, then let the command exit with the error.
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([consumer.close(), new Promise((r) => (timer = setTimeout(r, UNREACHABLE_CLOSE_WAIT_MS)))]);
        clearTimeout(timer);
      })()),
  };
}

function parseDelivery(raw: string): DeliveryMode {
  if (raw === 'at-least-once' || raw === 'at-most-once' || raw === 'exactly-once') return raw;
  throw new UsageError(`--delivery must be at-least-once, at-most-once or exactly-once, not ${JSON.stringify(raw)}`);
}

function parseIsolation(raw: string): IsolationLevel {
  if (raw === 'read_committed' || raw === 'read_uncommitted') return raw;
  throw new UsageError(`--isolation must be read_committed or read_uncommitted, not ${JSON.stringify(raw)}`);
}

function parseOffset(raw: string): StartSpec {
  if (raw === 'earliest' || raw === 'latest') return raw;
  if (/^\d+$/.test(raw) && Number.isSafeInteger(Number(raw))) return Number(raw);
  if (/^-\d+$/.test(raw) && Number.isSafeInteger(Number(raw)) && Number(raw) < 0) return { lastN: -Number(raw) };
  throw new UsageError(`--offset must be an offset, earliest, latest or -N (the last N messages), not ${JSON.stringify(raw)}`);
}

/** --from-time: an instant, or -DURATION before now. */
function parseFromTime(raw: string): number {
  try {
    if (raw.startsWith('-')) return Date.now() - parseDuration(raw.slice(1));
    return parseInstant(raw);
  } catch (e) {
    throw new UsageError(`--from-time: ${(e as Error).message}`);
  }
}

/** A group member cut off from its coordinator: printed as one line, exit code 1. */
export class GroupUnreachableError extends Error {}

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
