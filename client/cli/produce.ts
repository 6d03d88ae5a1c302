/**
 * `sluice produce TOPIC`: one message per stdin line, flushed at EOF. Sends are pipelined
 * (up to IN_FLIGHT_MAX unacknowledged) so a large file streams at producer speed.
 *
 * Failures: the producer retries each message (backoff, metadata refresh, dead bootstrap
 * brokers skipped) until --delivery-timeout-ms has passed; only then, or on a non-retriable
 * error, does a message count as failed. While messages wait, a progress line goes to stderr
 * every --progress-interval-ms ("N sent, M pending, retrying: <reason>"); at the end, if
 * anything was retried or failed, a summary. Exit code 1 only if some message failed.
 * Once a message has run out of delivery time, no more input is read (the rest of it would
 * only wait out the same timeout, IN_FLIGHT_MAX lines at a time): the messages already read
 * finish or fail, the summary says input was left unread, and the exit code is 1.
 *
 * Delivery (--delivery, producer-delivery.ts): at-least-once by default, with the idempotent
 * producer (acks all): each partition's lines land in input order and once, across retries
 * and leader changes. at-most-once: acks 1, no retries. exactly-once (needs
 * --transactional-id, which alone also selects it): the whole input is one transaction,
 * committed at end of input; a read_committed consumer sees all of it or, if the command
 * fails or is killed, none of it.
 * Tags (SPEC §8.7): --tag T (repeatable) tags every message; --tags-separator SEP reads each
 * line's own tags from its start (`a,b<SEP>rest`), added to the --tag ones. Consumers can
 * filter on them at the broker (`sluice consume --tags`).
 * Order: an idempotent producer keeps order with 5 requests in flight; without idempotence
 * the producer runs with maxInFlight 1 (a retry after a lost acknowledgement may then
 * duplicate: at least once).
 * Delayed delivery (--delay D, --deliver-at T; SPEC §8.8): each line becomes visible at (the
 * time it was read + D), or at T; the delayed message ids (for `sluice delayed cancel`) go to
 * stdout, one line per id.
 */
import readline from 'node:readline';
import { ErrorCode, SluiceError } from '../../protocol/errors.ts';
import { parseDuration, parseInstant } from '../delivery-time.ts';
import { IDEMPOTENT_IN_FLIGHT_MAX, resolveDelivery } from '../producer-delivery.ts';
import { Producer, ProducerConfigError, type DeliveryGuarantee, type RecordMetadata } from '../producer.ts';
import { canonicalTags } from '../../protocol/tags.ts';
import { DEFAULT_BOOTSTRAP, bootstrapOf, UsageError, bool, int, parseAcks, parseArgs, positionals, str, strs, type FlagSpecs } from './args.ts';
import type { Io } from './io.ts';

/** Kafka's delivery.timeout.ms default. */
const DELIVERY_TIMEOUT_MS_DEFAULT = 120_000;
const PROGRESS_INTERVAL_MS_DEFAULT = 5_000;
/** Upper bound of one request's wait (Kafka's request.timeout.ms default); less if the delivery timeout is shorter. */
const REQUEST_TIMEOUT_MS_MAX = 30_000;

export const produceHelp = `Usage: sluice produce TOPIC [options]

Reads stdin and sends one message per line (without the line ending) to TOPIC;
flushes and exits at end of input. A message that cannot be delivered (broker
down, no leader) is retried until the delivery timeout; progress is reported on
stderr meanwhile. Errors go to stderr; the exit code is 1 if any message failed.

Options:
  --bootstrap H:P        broker address(es), comma-separated (default ${DEFAULT_BOOTSTRAP});
                         unreachable ones are skipped
  --delivery MODE        at-most-once | at-least-once | exactly-once (default
                         at-least-once; exactly-once when --transactional-id is given)
  --acks 0|1|all         acknowledgement level (default all; 1 with at-most-once)
  --idempotent, --no-idempotent
                         producer ids and sequence numbers, so retries never
                         duplicate or reorder (default on unless at-most-once or
                         --acks 0|1)
  --transactional-id ID  send the whole input as one transaction, committed at
                         end of input (exactly-once)
  --key-separator SEP    split each line at the first SEP into key and value
                         (a line without SEP is an error and is skipped)
  --key K                key of every message (not with --key-separator)
  --header K=V           a header on every message (repeatable; V may be empty)
  --timestamp T          timestamp of every message: ISO 8601 with a zone or ms since
                         the epoch (default: the time it is sent)
  --format F             text (default): a line is the value (with the separators
                         above); json: a line is a JSON object {"value", "key",
                         "headers" ({k: v} or [[k, v], ...]), "partition", "timestamp"
                         (ms or ISO)}, each but value optional; a value or key that is
                         not a string is sent as its JSON text; blank lines are skipped
  --verbose              print where each message landed on stdout:
                         line N<TAB>partition P<TAB>offset O
  --partition N          send every message to partition N (default: by key, or
                         sticky partitioning for keyless messages)
  --tag T                tag every message with T (repeatable); a tag is 1-64
                         characters of A-Z a-z 0-9 . _ : / - (at most 16 per message)
  --tags-separator SEP   each line starts with its own tags, comma-separated
                         (possibly none), then SEP: "a,b|rest" with SEP "|"; the
                         rest is the message (split by --key-separator if given);
                         a line without SEP or with a bad tag is an error and is skipped
                         (lines with different tags go in different batches: their
                         order in a partition is kept per tag set only)
  --delay D              deliver each message D after it is read, not before
                         (D: a number with a unit ms, s, m, h or d, e.g. 30m, 2h,
                         500ms; 0 allowed; at most 400d); prints each delayed
                         message id on stdout as ID<TAB>DELIVER-AT (ID is
                         TOPIC/PARTITION/OFFSET, for sluice delayed cancel; lines
                         sent in one batch share an id and are cancelled together)
  --deliver-at T         deliver every message at time T (ISO 8601 with a zone,
                         e.g. 2026-12-01T10:00:00Z, or ms since the epoch; a time
                         in the past delivers at once); prints ids as --delay
  --delivery-timeout-ms T  give up on a message T ms after it was read, retries
                         included (default ${DELIVERY_TIMEOUT_MS_DEFAULT})
  --progress-interval-ms T  report progress on stderr every T ms while messages
                         are pending (default ${PROGRESS_INTERVAL_MS_DEFAULT}; 0: never)
  --help                 show this help
`;

const flags: FlagSpecs = {
  bootstrap: { type: 'string' },
  acks: { type: 'string' },
  delivery: { type: 'string' },
  idempotent: { type: 'boolean' },
  'no-idempotent': { type: 'boolean' },
  'transactional-id': { type: 'string' },
  'key-separator': { type: 'string' },
  key: { type: 'string' },
  header: { type: 'string', multiple: true },
  timestamp: { type: 'string' },
  format: { type: 'string' },
  verbose: { type: 'boolean' },
  tag: { type: 'string', multiple: true },
  'tags-separator': { type: 'string' },
  partition: { type: 'int', min: 0 },
  delay: { type: 'string' },
  'deliver-at': { type: 'string' },
  'delivery-timeout-ms': { type: 'int', min: 1 },
  'progress-interval-ms': { type: 'int', min: 0 },
  help: { type: 'boolean' },
};

/** Unacknowledged sends allowed at once; bounds memory on huge inputs. */
const IN_FLIGHT_MAX = 20_000;
/** Per-line errors printed before the rest are only counted. */
const ERRORS_PRINTED_MAX = 20;
/** Bound on a reason quoted in a progress line or the summary. */
const REASON_CHARS_MAX = 300;

function clip(s: string): string {
  return s.length > REASON_CHARS_MAX ? `${s.slice(0, REASON_CHARS_MAX)}…` : s;
}

export async function produceCommand(argv: string[], io: Io): Promise<number> {
  const p = parseArgs(argv, flags);
  if (p.flags.has('help')) {
    io.out(produceHelp);
    return 0;
  }
  const [topic] = positionals(p, ['TOPIC'], 'sluice produce TOPIC [options]');
  const acksFlag = str(p, 'acks');
  const acks = acksFlag === undefined ? undefined : parseAcks(acksFlag);
  const transactionalId = str(p, 'transactional-id');
  const deliveryFlag = str(p, 'delivery') ?? (transactionalId !== undefined ? 'exactly-once' : undefined);
  if (deliveryFlag !== undefined && !['at-most-once', 'at-least-once', 'exactly-once'].includes(deliveryFlag)) {
    throw new UsageError(`--delivery must be at-most-once, at-least-once or exactly-once, got ${JSON.stringify(deliveryFlag)}`);
  }
  if (bool(p, 'idempotent') && bool(p, 'no-idempotent')) throw new UsageError('--idempotent and --no-idempotent exclude each other');
  const idempotent = bool(p, 'idempotent') ? true : bool(p, 'no-idempotent') ? false : undefined;
  const sep = str(p, 'key-separator');
  if (sep === '') throw new UsageError('--key-separator must not be empty');
  const partition = int(p, 'partition');
  const fixedTags = strs(p, 'tag');
  try {
    canonicalTags(fixedTags);
  } catch (e) {
    throw new UsageError(`--tag: ${(e as Error).message}`);
  }
  const tagsSep = str(p, 'tags-separator');
  if (tagsSep === '') throw new UsageError('--tags-separator must not be empty');
  const delayFlag = str(p, 'delay');
  const deliverAtFlag = str(p, 'deliver-at');
  if (delayFlag !== undefined && deliverAtFlag !== undefined) throw new UsageError('--delay and --deliver-at exclude each other');
  let delayMs: number | undefined;
  let deliverAt: number | undefined;
  try {
    if (delayFlag !== undefined) delayMs = parseDuration(delayFlag);
    if (deliverAtFlag !== undefined) deliverAt = parseInstant(deliverAtFlag);
  } catch (e) {
    throw new UsageError(`--${delayFlag !== undefined ? 'delay' : 'deliver-at'}: ${(e as Error).message}`);
  }
  const delayed = delayMs !== undefined || deliverAt !== undefined;
  if (delayed && transactionalId !== undefined) throw new UsageError('--delay / --deliver-at cannot be used with --transactional-id: delayed messages are not transactional');
  if (delayed && deliveryFlag === 'exactly-once') throw new UsageError('--delay / --deliver-at cannot be used with --delivery exactly-once: delayed messages are not transactional');
  /** The last id printed per partition: a batch's records share one, and complete together. */
  const lastIdOf = new Map<number, string>();
  const printId = (m: RecordMetadata): void => {
    if (m.delayedId === undefined || lastIdOf.get(m.partition) === m.delayedId) return;
    lastIdOf.set(m.partition, m.delayedId);
    io.out(`${m.delayedId}\t${new Date(m.deliverAtMs!).toISOString()}\n`);
  };
  const fixedKey = str(p, 'key');
  if (fixedKey !== undefined && sep !== undefined) throw new UsageError('--key and --key-separator exclude each other');
  const fixedHeaders = strs(p, 'header').map((kv) => {
    const i = kv.indexOf('=');
    if (i <= 0) throw new UsageError(`--header wants key=value, not ${JSON.stringify(kv)}`);
    return { key: kv.slice(0, i), value: kv.slice(i + 1) };
  });
  const timestampFlag = str(p, 'timestamp');
  let fixedTimestamp: number | undefined;
  try {
    if (timestampFlag !== undefined) fixedTimestamp = parseInstant(timestampFlag);
  } catch (e) {
    throw new UsageError(`--timestamp: ${(e as Error).message}`);
  }
  const inputFormat = str(p, 'format', 'text');
  if (inputFormat !== 'text' && inputFormat !== 'json') throw new UsageError(`--format must be text or json, not ${JSON.stringify(inputFormat)}`);
  if (inputFormat === 'json' && (sep !== undefined || tagsSep !== undefined)) throw new UsageError('--format json reads key and value from each object: --key-separator and --tags-separator do not apply');
  const verbose = bool(p, 'verbose');
  const deliveryTimeoutMs = int(p, 'delivery-timeout-ms', DELIVERY_TIMEOUT_MS_DEFAULT);
  const progressIntervalMs = int(p, 'progress-interval-ms', PROGRESS_INTERVAL_MS_DEFAULT);

  const options = {
    bootstrap: bootstrapOf(p),
    ...(acks !== undefined ? { acks } : {}),
    ...(deliveryFlag !== undefined ? { delivery: deliveryFlag as DeliveryGuarantee } : {}),
    ...(idempotent !== undefined ? { idempotent } : {}),
    ...(transactionalId !== undefined ? { transactionalId } : {}),
    profile: 'throughput' as const,
    clientId: 'sluice-cli-producer',
    deliveryTimeoutMs,
    requestTimeoutMs: Math.min(REQUEST_TIMEOUT_MS_MAX, deliveryTimeoutMs),
  };
  let producer: Producer;
  try {
    // Without idempotence, one request per partition at a time keeps lines in order across
    // retries; the idempotent producer keeps it with 5 (the broker refuses gaps).
    const { idempotent: willBeIdempotent } = resolveDelivery({ ...options, profileMaxInFlight: IDEMPOTENT_IN_FLIGHT_MAX });
    producer = new Producer({ ...options, maxInFlight: willBeIdempotent ? IDEMPOTENT_IN_FLIGHT_MAX : 1 });
  } catch (e) {
    if (e instanceof ProducerConfigError) throw new UsageError(e.message);
    throw e;
  }
  const startedMs = Date.now();
  let failed = 0;
  let sent = 0;
  let read = 0;
  let firstError: string | null = null;
  let progressShown = false;
  /** Set when a message ran out of delivery time: stop reading input. */
  let timedOut = false;
  /** The first input line not read (0: all input was read). */
  let unreadFromLine = 0;
  const inFlight = new Set<Promise<unknown>>();
  const report = (msg: string): void => {
    failed++;
    firstError ??= msg;
    if (failed <= ERRORS_PRINTED_MAX) io.err(`sluice produce: ${msg}\n`);
    else if (failed === ERRORS_PRINTED_MAX + 1) io.err('sluice produce: more errors; only counting from now on\n');
  };
  let lastProgressMs = Date.now();
  const progress = (): void => {
    const now = Date.now();
    const pending = read - sent - failed;
    if (pending <= 0) return;
    const status = producer.retryStatus();
    // Quote the reason only if the producer retried since the previous report.
    const retrying = status.lastReason !== null && status.lastAtMs >= lastProgressMs ? `, retrying: ${clip(status.lastReason)}` : '';
    lastProgressMs = now;
    progressShown = true;
    io.err(`sluice produce: ${sent} sent, ${pending} pending${failed > 0 ? `, ${failed} failed` : ''}${retrying}\n`);
  };
  const timer = progressIntervalMs > 0 ? setInterval(progress, progressIntervalMs) : null;
  try {
    const rl = readline.createInterface({ input: io.stdin, crlfDelay: Infinity, terminal: false });
    let lineNo = 0;
    for await (const line of rl) {
      if (timedOut) {
        io.err(`sluice produce: a message ran out of delivery time; stopped reading input at line ${lineNo + 1}, the rest is not sent\n`);
        unreadFromLine = lineNo + 1;
        rl.close();
        break;
      }
      lineNo++;
      let key: string | null = fixedKey ?? null;
      let value = line;
      /** --format json: the object's value (null allowed); text lines use value. */
      let jsonValue: string | null | undefined;
      let tags = fixedTags;
      let headers: Array<{ key: string; value: string | null }> = fixedHeaders;
      let timestamp = fixedTimestamp;
      let linePartition = partition;
      if (inputFormat === 'json') {
        if (line.trim() === '') continue;
        let parsed: JsonLine;
        try {
          parsed = parseJsonLine(line);
        } catch (e) {
          report(`line ${lineNo}: ${(e as Error).message}; skipped`);
          continue;
        }
        jsonValue = parsed.value;
        if (parsed.key !== undefined) key = parsed.key;
        if (parsed.headers.length > 0) headers = [...fixedHeaders, ...parsed.headers];
        if (parsed.timestamp !== undefined) timestamp = parsed.timestamp;
        if (parsed.partition !== undefined) linePartition = parsed.partition;
      }
      if (tagsSep !== undefined) {
        const i = value.indexOf(tagsSep);
        if (i < 0) {
          report(`line ${lineNo}: no tags separator ${JSON.stringify(tagsSep)}; skipped`);
          continue;
        }
        const own = value.slice(0, i).split(',').map((t) => t.trim()).filter((t) => t !== '');
        try {
          tags = canonicalTags([...fixedTags, ...own]);
        } catch (e) {
          report(`line ${lineNo}: ${(e as Error).message}; skipped`);
          continue;
        }
        value = value.slice(i + tagsSep.length);
      }
      if (sep !== undefined) {
        const i = value.indexOf(sep);
        if (i < 0) {
          report(`line ${lineNo}: no key separator ${JSON.stringify(sep)}; skipped`);
          continue;
        }
        key = value.slice(0, i);
        value = value.slice(i + sep.length);
      }
      const n = lineNo;
      read++;
      const sendP = producer
        .send({ topic, key, value: jsonValue !== undefined ? jsonValue : value, ...(linePartition !== undefined ? { partition: linePartition } : {}), ...(headers.length > 0 ? { headers } : {}), ...(timestamp !== undefined ? { timestamp } : {}), ...(tags.length > 0 ? { tags } : {}), ...(delayMs !== undefined ? { delayMs } : {}), ...(deliverAt !== undefined ? { deliverAt } : {}) })
        .then(
          (m) => {
            sent++;
            if (delayed) printId(m);
            if (verbose) io.out(`line ${n}\tpartition ${m.partition}\toffset ${m.offset}\n`);
          },
          (e: Error) => {
            if (e instanceof SluiceError && e.code === ErrorCode.REQUEST_TIMED_OUT) timedOut = true;
            report(`line ${n}: ${e.message}`);
          },
        );
      inFlight.add(sendP);
      void sendP.finally(() => inFlight.delete(sendP));
      if (inFlight.size >= IN_FLIGHT_MAX) await Promise.race(inFlight);
    }
    await producer.flush();
    await Promise.all(inFlight);
  } finally {
    if (timer !== null) clearInterval(timer);
    await producer.close();
  }
  const retries = producer.retryStatus().retries;
  if (failed > 0 || retries > 0 || progressShown || unreadFromLine > 0) {
    const secs = ((Date.now() - startedMs) / 1000).toFixed(1);
    const why = failed > 0 && firstError !== null ? `; first error: ${clip(firstError)}` : '';
    const unread = unreadFromLine > 0 ? `; input from line ${unreadFromLine} on not read` : '';
    io.err(`sluice produce: done in ${secs} s: ${sent} sent, ${failed} failed, ${retries} retries${why}${unread}\n`);
  }
  return failed > 0 || unreadFromLine > 0 ? 1 : 0;
}

interface JsonLine {
  value: string | null;
  key?: string | null;
  headers: Array<{ key: string; value: string | null }>;
  partition?: number;
  timestamp?: number;
}

const JSON_LINE_FIELDS = new Set(['value', 'key', 'headers', 'partition', 'timestamp']);

/** A string stays itself, null stays null, anything else is sent as its JSON text. */
function jsonText(v: unknown): string | null {
  return v === null ? null : typeof v === 'string' ? v : JSON.stringify(v);
}

/** One --format json input line; throws a message naming what is wrong. */
function parseJsonLine(line: string): JsonLine {
  let o: unknown;
  try {
    o = JSON.parse(line);
  } catch {
    throw new Error('not a JSON object');
  }
  if (typeof o !== 'object' || o === null || Array.isArray(o)) throw new Error('not a JSON object');
  const r = o as Record<string, unknown>;
  for (const k of Object.keys(r)) if (!JSON_LINE_FIELDS.has(k)) throw new Error(`unknown field ${JSON.stringify(k)} (fields: value, key, headers, partition, timestamp)`);
  if (!('value' in r)) throw new Error('no "value" field');
  const out: JsonLine = { value: jsonText(r.value), headers: [] };
  if ('key' in r) out.key = jsonText(r.key);
  if (r.headers !== undefined) {
    const h = r.headers;
    const pairs: Array<[unknown, unknown]> = Array.isArray(h) ? (h as unknown[]).map((x) => (Array.isArray(x) && x.length === 2 ? [x[0], x[1]] : [undefined, undefined])) : typeof h === 'object' && h !== null ? Object.entries(h) : [[undefined, undefined]];
    for (const [k, v] of pairs) {
      if (typeof k !== 'string' || !(typeof v === 'string' || v === null)) throw new Error('"headers" must be {"k": "v" | null} or [["k", "v" | null], ...]');
      out.headers.push({ key: k, value: v });
    }
  }
  if (r.partition !== undefined) {
    if (!Number.isSafeInteger(r.partition) || (r.partition as number) < 0) throw new Error('"partition" must be a non-negative integer');
    out.partition = r.partition as number;
  }
  if (r.timestamp !== undefined) {
    if (typeof r.timestamp === 'number') {
      if (!Number.isSafeInteger(r.timestamp) || r.timestamp < 0) throw new Error('"timestamp" must be ms since the epoch or an ISO 8601 time');
      out.timestamp = r.timestamp;
    } else if (typeof r.timestamp === 'string') out.timestamp = parseInstant(r.timestamp);
    else throw new Error('"timestamp" must be ms since the epoch or an ISO 8601 time');
  }
  return out;
}
