/**
 * Retry topics and dead-letter topics: names, headers and where a failed message goes next.
 * Pure functions, no I/O; GroupRunner (runner.ts) does the producing and consuming.
 *
 * Naming (predictable, so operators and tools can find them):
 * - retry topic n:       `<group>.<topic>.retry-<n>`, n = 1 .. delaysMs.length
 * - dead-letter topic:   `<group>.<topic>.dlq`
 * where `<topic>` is always the ORIGINAL topic (the one the message was first consumed
 * from), so a message travels `orders` → `g.orders.retry-1` → `g.orders.retry-2` → `g.orders.dlq`.
 * Retry and DLQ topics have the source topic's partition count, and a failed message is
 * republished to the same partition number it was read from (order per key is kept as far
 * as retrying allows).
 *
 * Headers a republished message carries, in addition to its own original headers (values are
 * UTF-8 decimal strings, except the topic and reason):
 * - `sluice-attempt`              the attempt the message is due for next: 1 on the first
 *                                 retry topic, 2 on the second, …; in the DLQ, the number of
 *                                 failed attempts (delaysMs.length + 1).
 * - `sluice-original-topic`       topic of the FIRST failure (the main topic)
 * - `sluice-original-partition`   partition of the first failure
 * - `sluice-original-offset`      offset of the first failure
 * - `sluice-first-failure-ms`     wall-clock time of the first failure, ms since the epoch
 * - `sluice-failure-reason`       the LATEST failure's reason (error message or nack reason),
 *                                 at most FAILURE_REASON_CHARS_MAX characters
 * - `sluice-due-ms`               earliest time the message may be handled again (ms since
 *                                 the epoch); absent in the DLQ
 * - `sluice-deliver-at-ms`        the same time as a delivery time (SPEC §8.8), written by the
 *                                 producer (the runner sends with deliverAt = due time, when
 *                                 it is in the future): the broker releases the message then
 * Earlier `sluice-*` headers are replaced, never duplicated; other headers pass through in order.
 * Except `sluice-tags` (SPEC §8.7): the message's tags are kept as they are, so consumers of
 * the retry topics and the DLQ that filter by tags (the runner's own do) still see it.
 */
import { Buffer } from 'node:buffer';
import { HEADER_TAGS, type RecordHeader } from '../../protocol/record-batch.ts';

export const HEADER_ATTEMPT = 'sluice-attempt';
export const HEADER_ORIGINAL_TOPIC = 'sluice-original-topic';
export const HEADER_ORIGINAL_PARTITION = 'sluice-original-partition';
export const HEADER_ORIGINAL_OFFSET = 'sluice-original-offset';
export const HEADER_FIRST_FAILURE_MS = 'sluice-first-failure-ms';
export const HEADER_FAILURE_REASON = 'sluice-failure-reason';
export const HEADER_DUE_MS = 'sluice-due-ms';
const HEADER_PREFIX = 'sluice-';

/** Bound on the failure-reason header (a stack trace could be megabytes). */
export const FAILURE_REASON_CHARS_MAX = 1000;
/** Bound on the number of retry topics per source topic. */
export const RETRY_TOPICS_MAX = 100;
const TOPIC_NAME_CHARS_MAX = 249;
const TOPIC_NAME_RE = /^[a-zA-Z0-9._-]+$/;

export interface RetryPolicy {
  /** Delay before attempt n+1 (n = 1..length): one retry topic per entry. [] sends failures straight to the DLQ. */
  delaysMs: readonly number[];
}

/** What a message's retry headers say (null fields: header absent or not a number). */
export interface RetryInfo {
  attempt: number;
  originalTopic: string;
  originalPartition: number;
  originalOffset: number;
  firstFailureMs: number;
  reason: string | null;
  dueMs: number | null;
}

/** Where a failed message goes and what it carries. */
export interface Republish {
  topic: string;
  partition: number;
  headers: RecordHeader[];
  /** Attempt number written into the headers. */
  attempt: number;
  /** null for the DLQ. */
  dueMs: number | null;
  deadLetter: boolean;
}

export function validateRetryPolicy(p: RetryPolicy): void {
  if (!Array.isArray(p.delaysMs)) throw new TypeError('retry.delaysMs must be an array of delays in ms');
  if (p.delaysMs.length > RETRY_TOPICS_MAX) throw new RangeError(`retry.delaysMs has ${p.delaysMs.length} entries; at most ${RETRY_TOPICS_MAX}`);
  for (const d of p.delaysMs) {
    if (!Number.isSafeInteger(d) || d < 0) throw new TypeError(`retry delays must be integers >= 0 ms, not ${String(d)}`);
  }
}

function checkTopicName(name: string): string {
  if (name.length > TOPIC_NAME_CHARS_MAX || !TOPIC_NAME_RE.test(name)) {
    throw new TypeError(`retry/DLQ topic name ${JSON.stringify(name)} is not a valid topic name (1-${TOPIC_NAME_CHARS_MAX} of [a-zA-Z0-9._-]): choose a shorter or plainer group id or topic`);
  }
  return name;
}

/** `<group>.<topic>.retry-<n>`, n >= 1. */
export function retryTopicName(groupId: string, topic: string, n: number): string {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`retry topic number must be >= 1, not ${n}`);
  return checkTopicName(`${groupId}.${topic}.retry-${n}`);
}

/** `<group>.<topic>.dlq`. */
export function dlqTopicName(groupId: string, topic: string): string {
  return checkTopicName(`${groupId}.${topic}.dlq`);
}

/** Every retry topic of one source topic, in order, then its DLQ. */
export function retryTopicsFor(groupId: string, topic: string, policy: RetryPolicy): { retry: string[]; dlq: string } {
  const retry: string[] = [];
  for (let n = 1; n <= policy.delaysMs.length; n++) retry.push(retryTopicName(groupId, topic, n));
  return { retry, dlq: dlqTopicName(groupId, topic) };
}

/** The source topic and number of a retry topic of this group, or null for any other topic. */
export function parseRetryTopic(groupId: string, topic: string): { sourceTopic: string; n: number } | null {
  const prefix = `${groupId}.`;
  if (!topic.startsWith(prefix)) return null;
  const m = /^(.+)\.retry-(\d+)$/.exec(topic.slice(prefix.length));
  if (!m) return null;
  return { sourceTopic: m[1]!, n: Number(m[2]) };
}

const utf8 = new TextDecoder();

function headerString(headers: readonly RecordHeader[], key: string): string | null {
  // The last occurrence wins, as for Kafka's Headers.lastHeader.
  for (let i = headers.length - 1; i >= 0; i--) {
    const h = headers[i]!;
    if (h.key === key) return h.value === null ? null : utf8.decode(h.value);
  }
  return null;
}

function headerInt(headers: readonly RecordHeader[], key: string): number | null {
  const s = headerString(headers, key);
  if (s === null || !/^-?\d+$/.test(s)) return null;
  const n = Number(s);
  return Number.isSafeInteger(n) ? n : null;
}

/** The retry headers of a message, or null when it carries no (valid) `sluice-attempt`. */
export function readRetryInfo(headers: readonly RecordHeader[]): RetryInfo | null {
  const attempt = headerInt(headers, HEADER_ATTEMPT);
  const originalTopic = headerString(headers, HEADER_ORIGINAL_TOPIC);
  const originalPartition = headerInt(headers, HEADER_ORIGINAL_PARTITION);
  const originalOffset = headerInt(headers, HEADER_ORIGINAL_OFFSET);
  const firstFailureMs = headerInt(headers, HEADER_FIRST_FAILURE_MS);
  if (attempt === null || attempt < 1 || originalTopic === null || originalPartition === null || originalOffset === null || firstFailureMs === null) return null;
  return {
    attempt,
    originalTopic,
    originalPartition,
    originalOffset,
    firstFailureMs,
    reason: headerString(headers, HEADER_FAILURE_REASON),
    dueMs: headerInt(headers, HEADER_DUE_MS),
  };
}

/** When a message read from a retry topic may be handled: its `sluice-due-ms`, or 0 (now). */
export function dueTimeMs(headers: readonly RecordHeader[]): number {
  return headerInt(headers, HEADER_DUE_MS) ?? 0;
}

/** Message text of a thrown value, bounded. */
export function failureReason(e: unknown): string {
  const s = e instanceof Error ? `${e.name}: ${e.message}` : typeof e === 'string' ? e : String(e);
  return s.length > FAILURE_REASON_CHARS_MAX ? s.slice(0, FAILURE_REASON_CHARS_MAX) : s;
}

/**
 * Where a message that failed goes next. `source` is the message as consumed (from the main
 * topic or from one of this group's retry topics). The next attempt number is the message's
 * `sluice-attempt` + 1 (0 when absent): attempts 1..delaysMs.length go to retry topic
 * <attempt>, due delaysMs[attempt-1] after nowMs; beyond that the DLQ.
 */
export function nextDestination(
  groupId: string,
  policy: RetryPolicy,
  source: { topic: string; partition: number; offset: number; headers: readonly RecordHeader[] },
  reason: string,
  nowMs: number,
): Republish {
  const prev = readRetryInfo(source.headers);
  // A message from a retry topic without valid headers (produced there by hand) starts over.
  const origin = prev ?? { attempt: 0, originalTopic: source.topic, originalPartition: source.partition, originalOffset: source.offset, firstFailureMs: nowMs };
  const attempt = origin.attempt + 1;
  const deadLetter = attempt > policy.delaysMs.length;
  const dueMs = deadLetter ? null : nowMs + policy.delaysMs[attempt - 1]!;
  const topic = deadLetter ? dlqTopicName(groupId, origin.originalTopic) : retryTopicName(groupId, origin.originalTopic, attempt);
  const enc = (s: string): Uint8Array => Buffer.from(s, 'utf8');
  const headers: RecordHeader[] = source.headers.filter((h) => !h.key.startsWith(HEADER_PREFIX) || h.key === HEADER_TAGS);
  headers.push(
    { key: HEADER_ATTEMPT, value: enc(String(attempt)) },
    { key: HEADER_ORIGINAL_TOPIC, value: enc(origin.originalTopic) },
    { key: HEADER_ORIGINAL_PARTITION, value: enc(String(origin.originalPartition)) },
    { key: HEADER_ORIGINAL_OFFSET, value: enc(String(origin.originalOffset)) },
    { key: HEADER_FIRST_FAILURE_MS, value: enc(String(origin.firstFailureMs)) },
    { key: HEADER_FAILURE_REASON, value: enc(reason.length > FAILURE_REASON_CHARS_MAX ? reason.slice(0, FAILURE_REASON_CHARS_MAX) : reason) },
  );
  if (dueMs !== null) headers.push({ key: HEADER_DUE_MS, value: enc(String(dueMs)) });
  return { topic, partition: source.partition, headers, attempt, dueMs, deadLetter };
}
