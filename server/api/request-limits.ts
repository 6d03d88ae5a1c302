/**
 * Per-request entry limits. Every request is handled on the one event loop that serves all
 * clients, so the work one request may ask for, and the size of its response, is bounded by
 * the number of entries it may carry (the frame size alone allows millions: a 64 MiB
 * ListOffsets of 3 million partitions). Limits count entries as sent, duplicates included.
 *
 * Invariants:
 * - Every limit here is in SPEC.md with its API; a request over one is refused as a whole,
 *   before any of it is acted on, with the request-level MALFORMED_REQUEST (SPEC §5.3) and a
 *   message naming the API, the field, the count and the limit.
 * - Handlers that loop over up to a limit's worth of entries yield to the event loop every
 *   ENTRIES_PER_TURN_MAX entries, so other clients are served in between.
 */
import { ErrorCode, SluiceError } from '../../protocol/errors.ts';

/** Partition entries of one ListOffsets, all topics together. */
export const LIST_OFFSETS_PARTITIONS_MAX = 10_000;
/** Partition entries of one OffsetCommit, all topics together. */
export const OFFSET_COMMIT_PARTITIONS_MAX = 10_000;
/** Partition entries of one OffsetFetch, all topics together (topics nil: every committed one). */
export const OFFSET_FETCH_PARTITIONS_MAX = 10_000;
/**
 * Group ids of one DescribeGroups. A group of 1000 members over 10000 partitions describes in
 * ~180 KB, so 50 of them stay well within the 16 MiB control section a client decodes (SPEC §4.1).
 */
export const DESCRIBE_GROUPS_GROUP_IDS_MAX = 50;
/** Group ids of one DeleteGroups. */
export const DELETE_GROUPS_GROUP_IDS_MAX = 1000;
/** subscribedTopicNames of one ConsumerGroupHeartbeat. */
export const HEARTBEAT_TOPIC_NAMES_MAX = 10_000;
/** Partition entries of one ConsumerGroupHeartbeat's ownedPartitions, all topics together. */
export const HEARTBEAT_OWNED_PARTITIONS_MAX = 10_000;
/**
 * Partition entries of one WriteTxnMarkers, all markers together (a marker or topic without
 * partitions counting as one); the coordinator's marker sender puts at most as many in a request.
 */
export const WRITE_TXN_MARKERS_PARTITIONS_MAX = 10_000;
/** Entries of one ListDelayed (its limit) and offsets of one CancelDelayed (SPEC §6.25, §6.26; defined with their schemas). */
export { LIST_DELAYED_LIMIT_MAX } from '../../protocol/apis/list-delayed.ts';
export { CANCEL_DELAYED_OFFSETS_MAX } from '../../protocol/apis/cancel-delayed.ts';
/** Entries a handler processes before it lets the event loop serve others. */
export const ENTRIES_PER_TURN_MAX = 1000;

/** Refuses the request when count > max. */
export function checkEntries(api: string, field: string, count: number, max: number): void {
  if (count > max) {
    throw new SluiceError(ErrorCode.MALFORMED_REQUEST, `${api} carries ${count} ${field}; at most ${max} per request (split it)`);
  }
}

/**
 * Partition entries of a [{ topic, partitions: [...] }] list, all topics together; a topic
 * listed with no partitions counts as one (it still costs a response entry).
 */
export function partitionEntries(topics: ReadonlyArray<{ partitions: readonly unknown[] }> | null | undefined): number {
  let n = 0;
  if (topics) for (const t of topics) n += Math.max(1, t.partitions.length);
  return n;
}

/** Lets the event loop run pending I/O and timers before the caller continues. */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
