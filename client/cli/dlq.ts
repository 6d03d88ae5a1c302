/**
 * `sluice dlq list|replay --group G --topic T`: inspects and replays the dead-letter topic
 * `<G>.<T>.dlq` that the retry runner fills. Both read it with a plain Consumer (every
 * partition assigned by hand, no group) from the start, or from the first offset asked for,
 * up to the log end as it was when the command started, so they always terminate: a read
 * that makes no progress for READ_STALL_MS_MAX fails instead of hanging.
 *
 * Topic and header names come from group/retry-policy.ts, where the retry runner takes them too.
 */
import { Buffer } from 'node:buffer';
import { HEADER_TAGS, type RecordHeader } from '../../protocol/record-batch.ts';
import { Admin } from '../admin.ts';
import { Consumer, type Message } from '../consumer.ts';
import { Producer } from '../producer.ts';
import {
  HEADER_ATTEMPT,
  HEADER_FAILURE_REASON,
  HEADER_ORIGINAL_OFFSET,
  HEADER_ORIGINAL_PARTITION,
  HEADER_ORIGINAL_TOPIC,
  dlqTopicName,
} from '../group/retry-policy.ts';
import { DEFAULT_BOOTSTRAP, bootstrapOf, UsageError, bool, int, parseArgs, positionals, str, strs, type FlagSpecs } from './args.ts';
import type { Io } from './io.ts';

export const dlqHelp = `Usage: sluice dlq SUBCOMMAND --group G --topic T [options]

The messages group G gave up on for topic T are in the topic G.T.dlq.

Subcommands:
  list [--max-messages N]
      Reads G.T.dlq from the beginning up to its current end and prints one line per
      message, with these tab-separated fields:
        DLQ_PARTITION:DLQ_OFFSET  ATTEMPTS  ORIGINAL_TOPIC  ORIGINAL_PARTITION
        ORIGINAL_OFFSET  REASON  KEY  VALUE
      DLQ_PARTITION:DLQ_OFFSET is where the message sits in G.T.dlq (what replay --offset
      takes). ATTEMPTS, ORIGINAL_* and REASON are the headers sluice-attempt,
      sluice-original-topic, -partition, -offset and sluice-failure-reason ("-" when the
      header is missing). KEY and VALUE print as UTF-8, a null one as "null". A backslash,
      tab, newline or carriage return inside REASON, KEY or VALUE is written as \\\\, \\t,
      \\n, \\r, so every message is one line.
  replay (--offset [P:]N ... | --all)
      Re-produces the selected messages to their original topic (header
      sluice-original-topic) with their key, value and headers, except the sluice-*
      headers (their tags, sluice-tags, are kept), plus sluice-replayed-from: G.T.dlq:P:N. They are partitioned by key like any
      new message (keyless ones: sticky). The DLQ itself is left as it is. Prints how many
      messages were replayed; exits 1 if any could not be (no original topic, an offset
      not in the DLQ, a failed send).
      --offset P:N selects offset N of DLQ partition P; a bare N means partition 0 and is
      only accepted when the DLQ has one partition. May repeat.

Options:
  --group G              the consumer group (required)
  --topic T              the topic the group consumed (required)
  --bootstrap H:P        broker address(es), comma-separated (default ${DEFAULT_BOOTSTRAP})
  --help                 show this help
`;

const common: FlagSpecs = { bootstrap: { type: 'string' }, group: { type: 'string' }, topic: { type: 'string' }, help: { type: 'boolean' } };
const listFlags: FlagSpecs = { ...common, 'max-messages': { type: 'int', min: 1 } };
const replayFlags: FlagSpecs = { ...common, offset: { type: 'string', multiple: true }, all: { type: 'boolean' } };

/** Added to each replayed message: `<dlq topic>:<partition>:<offset>` it was replayed from. */
export const HEADER_REPLAYED_FROM = 'sluice-replayed-from';
/** Headers with this prefix belong to the retry machinery and are not replayed. */
const SLUICE_HEADER_PREFIX = 'sluice-';

/** Longest a DLQ read may go without a message while partitions are still behind their end. */
const READ_STALL_MS_MAX = 15_000;
const POLL_MS = 500;
/** Unacknowledged replay sends at once. */
const REPLAY_IN_FLIGHT_MAX = 10_000;
/** Per-message errors printed before the rest are only counted. */
const ERRORS_PRINTED_MAX = 20;

export async function dlqCommand(argv: string[], io: Io): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === 'help') {
    io.out(dlqHelp);
    return sub === undefined ? 1 : 0;
  }
  if (sub !== 'list' && sub !== 'replay') throw new UsageError(`unknown subcommand ${JSON.stringify(sub)}: list or replay`);
  const p = parseArgs(rest, sub === 'list' ? listFlags : replayFlags);
  if (p.flags.has('help')) {
    io.out(dlqHelp);
    return 0;
  }
  const usage = sub === 'list' ? 'sluice dlq list --group G --topic T [--max-messages N]' : 'sluice dlq replay --group G --topic T (--offset [P:]N ... | --all)';
  positionals(p, [], usage);
  const group = str(p, 'group');
  const topic = str(p, 'topic');
  if (group === undefined || topic === undefined) throw new UsageError(`--group and --topic are required; usage: ${usage}`);
  const bootstrap = bootstrapOf(p);
  const dlq = dlqTopicName(group, topic);
  if (sub === 'list') return list(bootstrap, dlq, int(p, 'max-messages', Infinity), io);
  const all = bool(p, 'all');
  const offsets = strs(p, 'offset');
  if (all === (offsets.length > 0)) throw new UsageError(`give --all or one or more --offset; usage: ${usage}`);
  return replay(bootstrap, dlq, all ? 'all' : offsets.map(parseDlqOffset), io);
}

// ---- list ----

async function list(bootstrap: string, dlq: string, maxMessages: number, io: Io): Promise<number> {
  let count = 0;
  let stopped = false;
  const onOutError = (e: NodeJS.ErrnoException): void => {
    if (e.code !== 'EPIPE') io.err(`sluice dlq: stdout: ${e.message}\n`);
    stopped = true;
  };
  io.stdout.on('error', onOutError);
  const layout = await dlqLayout(bootstrap, dlq);
  await readRanges(bootstrap, dlq, [...layout].map(([partition, r]) => ({ partition, from: r.start, until: r.end })), (m) => {
    io.out(listLine(m));
    count++;
    return !stopped && count < maxMessages;
  });
  io.err(`Listed ${count} message${count === 1 ? '' : 's'} of ${dlq}\n`);
  return 0;
}

function listLine(m: Message): string {
  const h = (name: string): string => headerString(m.headers, name) ?? '-';
  const reason = headerString(m.headers, HEADER_FAILURE_REASON);
  return [
    `${m.partition}:${m.offset}`,
    h(HEADER_ATTEMPT),
    h(HEADER_ORIGINAL_TOPIC),
    h(HEADER_ORIGINAL_PARTITION),
    h(HEADER_ORIGINAL_OFFSET),
    reason === null ? '-' : escapeField(reason),
    m.key === null ? 'null' : escapeField(m.key.toString('utf8')),
    m.value === null ? 'null' : escapeField(m.value.toString('utf8')),
  ].join('\t') + '\n';
}

/** Backslash, tab, newline and carriage return as two-character escapes: one message, one line. */
export function escapeField(s: string): string {
  return s.replace(/[\\\t\n\r]/g, (c) => (c === '\\' ? '\\\\' : c === '\t' ? '\\t' : c === '\n' ? '\\n' : '\\r'));
}

// ---- replay ----

interface DlqOffset {
  /** null: a bare offset, partition 0 of a one-partition DLQ. */
  partition: number | null;
  offset: number;
}

function parseDlqOffset(raw: string): DlqOffset {
  const m = /^(?:(\d+):)?(\d+)$/.exec(raw);
  const partition = m?.[1] !== undefined ? Number(m[1]) : null;
  const offset = m ? Number(m[2]) : NaN;
  if (!m || !Number.isSafeInteger(offset) || (partition !== null && !Number.isSafeInteger(partition))) {
    throw new UsageError(`--offset wants N or PARTITION:N (non-negative integers), not ${JSON.stringify(raw)}`);
  }
  return { partition, offset };
}

async function replay(bootstrap: string, dlq: string, selection: 'all' | DlqOffset[], io: Io): Promise<number> {
  const layout = await dlqLayout(bootstrap, dlq);
  let failed = 0;
  const report = (msg: string): void => {
    failed++;
    if (failed <= ERRORS_PRINTED_MAX) io.err(`sluice dlq: ${msg}\n`);
    else if (failed === ERRORS_PRINTED_MAX + 1) io.err('sluice dlq: more errors; only counting from now on\n');
  };

  // What to read: everything, or per partition the span of the offsets asked for.
  let ranges: Range[];
  let wanted: Set<string> | null = null;
  if (selection === 'all') {
    ranges = [...layout].map(([partition, r]) => ({ partition, from: r.start, until: r.end }));
  } else {
    wanted = new Set();
    const span = new Map<number, { min: number; max: number }>();
    for (const o of selection) {
      if (o.partition === null && layout.size !== 1) throw new UsageError(`${dlq} has ${layout.size} partitions: give --offset PARTITION:${o.offset}`);
      const partition = o.partition ?? 0;
      if (!layout.has(partition)) throw new UsageError(`${dlq} has no partition ${partition}`);
      wanted.add(`${partition}:${o.offset}`);
      const s = span.get(partition);
      span.set(partition, s ? { min: Math.min(s.min, o.offset), max: Math.max(s.max, o.offset) } : { min: o.offset, max: o.offset });
    }
    ranges = [...span].map(([partition, s]) => ({ partition, from: Math.max(s.min, layout.get(partition)!.start), until: Math.min(s.max + 1, layout.get(partition)!.end) }));
  }

  const producer = new Producer({ bootstrap, acks: 'all', clientId: 'sluice-cli-dlq' });
  let replayed = 0;
  const inFlight = new Set<Promise<unknown>>();
  try {
    await readRanges(bootstrap, dlq, ranges, async (m) => {
      const at = `${m.partition}:${m.offset}`;
      if (wanted !== null && !wanted.delete(at)) return true;
      const target = headerString(m.headers, HEADER_ORIGINAL_TOPIC);
      if (target === null || target === '') {
        report(`${dlq} message ${at} has no ${HEADER_ORIGINAL_TOPIC} header; not replayed`);
        return true;
      }
      const sendP = producer.send(replayRecord(m, dlq, target)).then(
        () => {
          replayed++;
        },
        (e: Error) => report(`${dlq} message ${at} to ${target}: ${e.message}`),
      );
      inFlight.add(sendP);
      void sendP.finally(() => inFlight.delete(sendP));
      if (inFlight.size >= REPLAY_IN_FLIGHT_MAX) await Promise.race(inFlight);
      return true;
    });
    await producer.flush();
    await Promise.all(inFlight);
  } finally {
    await producer.close();
  }
  if (wanted !== null) for (const at of [...wanted].sort()) report(`${dlq} has no message at ${at}`);
  io.out(`Replayed ${replayed} message${replayed === 1 ? '' : 's'} from ${dlq}.\n`);
  return failed > 0 ? 1 : 0;
}

/**
 * What replaying DLQ message `m` sends to `target` (its sluice-original-topic): its key, value
 * and headers without the sluice-* ones (tags kept: a replayed message reaches the same
 * filtered consumers as the original), plus sluice-replayed-from. Shared with the web console.
 */
export function replayRecord(m: Message, dlq: string, target: string): { topic: string; key: Buffer | null; value: Buffer | null; headers: Array<{ key: string; value: Uint8Array | null }> } {
  const headers = m.headers.filter((h) => !h.key.startsWith(SLUICE_HEADER_PREFIX) || h.key === HEADER_TAGS).map((h) => ({ key: h.key, value: h.value }));
  headers.push({ key: HEADER_REPLAYED_FROM, value: Buffer.from(`${dlq}:${m.partition}:${m.offset}`, 'utf8') });
  return { topic: target, key: m.key, value: m.value, headers };
}

// ---- reading ----

interface Range {
  partition: number;
  from: number;
  /** Exclusive. */
  until: number;
}

/** Each partition's retained range [start, end) now. Throws UNKNOWN_TOPIC_OR_PARTITION when the DLQ does not exist. */
async function dlqLayout(bootstrap: string, dlq: string): Promise<Map<number, { start: number; end: number }>> {
  const admin = new Admin({ bootstrap, clientId: 'sluice-cli-dlq' });
  try {
    const md = await admin.cluster.topic(dlq);
    const partitions = md.partitions.map((p) => p.partition).sort((a, b) => a - b);
    const spans = await Promise.all(partitions.map(async (p) => ({ start: await admin.listOffsets(dlq, p, 'earliest'), end: await admin.listOffsets(dlq, p, 'latest') })));
    return new Map(partitions.map((p, i) => [p, spans[i]!]));
  } finally {
    await admin.close();
  }
}

/**
 * Reads [from, until) of each partition in order, calling each() per message until it
 * returns false. Offsets missing from the log (retention, a dropped corrupt batch) are
 * skipped. Fails when no message arrives for READ_STALL_MS_MAX while some partition is
 * still short of `until`.
 */
async function readRanges(bootstrap: string, topic: string, ranges: readonly Range[], each: (m: Message) => boolean | Promise<boolean>): Promise<void> {
  const live = ranges.filter((r) => r.from < r.until);
  if (live.length === 0) return;
  const until = new Map(live.map((r) => [r.partition, r.until]));
  const consumer = new Consumer({ bootstrap, clientId: 'sluice-cli-dlq', autoOffsetReset: 'earliest' });
  try {
    await consumer.assign(live.map((r) => ({ topic, partition: r.partition, offset: r.from })));
    let progressAt = Date.now();
    for (;;) {
      const behind = live.filter((r) => consumer.position(topic, r.partition) < r.until);
      if (behind.length === 0) return;
      if (Date.now() - progressAt > READ_STALL_MS_MAX) {
        const where = behind.map((r) => `${r.partition} at ${consumer.position(topic, r.partition)} of ${r.until}`).join(', ');
        throw new Error(`reading ${topic} made no progress for ${READ_STALL_MS_MAX} ms (partition ${where})`);
      }
      const batch = await consumer.poll(POLL_MS);
      if (batch.length > 0) progressAt = Date.now();
      for (const m of batch) {
        if (m.offset >= until.get(m.partition)!) continue;
        if (!(await each(m))) return;
      }
    }
  } finally {
    await consumer.close();
  }
}

export function headerString(headers: readonly RecordHeader[], name: string): string | null {
  for (const h of headers) if (h.key === name) return h.value === null ? null : Buffer.from(h.value.buffer, h.value.byteOffset, h.value.byteLength).toString('utf8');
  return null;
}
