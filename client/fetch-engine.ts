/**
 * The fetch engine behind Consumer (consumer.ts) and GroupConsumer (group/consumer.ts): keeps
 * the assigned partitions' positions, pipelines Fetch requests to their leaders, buffers and
 * validates the responses, resets offsets, and hands records out through poll().
 *
 * Model (the same as Kafka's KafkaConsumer fetcher):
 * - Each assigned partition has a `position`: the offset of the next message poll() returns.
 *   It only moves when poll() hands messages to the caller, or on seek()/reset.
 * - Each partition also has a `fetchOffset`: where the next Fetch request starts. It runs ahead
 *   of `position` by whatever is buffered, because the next Fetch is sent as soon as a
 *   response arrives (pipelining) while the application is still processing earlier data.
 * - Every seek, reset or corruption bumps the partition's `epoch`; buffered data and in-flight
 *   responses carry the epoch they were fetched under and are dropped when it no longer
 *   matches, so a prefetch can never deliver data from before a seek.
 * - `position` moves past a record only when poll() hands it out (or on seek/reset): data
 *   that is dropped (stale epoch, corrupt, unassigned, paused) never advances it.
 * - Partitions added by one assign()/addPartitions() call join the assignment together, with
 *   known positions: none is fetched while another's start offset is still being looked up.
 * - Transactions (SPEC §6.7): control batches are never handed out, and under read_committed
 *   neither are the transactional batches of the aborted transactions a Fetch response lists.
 *   Both are decided from batch headers alone (no record is decoded for it), and poll() moves
 *   the position past such batches like past delivered ones, so a poll that hands out nothing
 *   still makes progress; skippedInLastPoll() tells a group member where it moved.
 *
 * - Tag filtering (SPEC §6.7): with a tag expression, the broker returns only matching batches
 *   and each partition's nextFetchOffset; fetching continues there, and once poll() has walked
 *   a response's batches it moves the position to that offset (noting it as skipped, so a
 *   group commits past the skipped messages), also for a response with no records.
 *
 * Bounds: at most one Fetch in flight per leader broker, and at most
 * BUFFERED_FETCHES_PER_LEADER_MAX responses buffered per leader; a Fetch response is at most
 * maxBytes (plus one batch per partition, which the broker always returns whole).
 *
 * The engine does not own its Cluster: the facade that created it closes that (a group
 * consumer shares one Cluster between the engine, its coordinator and its runner).
 * Groups plug in above this: the coordinator decides the assignment, which arrives here
 * through addPartitions()/unassign(); pause()/resume() hold back one partition (retry topics
 * not yet due).
 *
 * Not safe for concurrent poll() calls: one poll at a time.
 */
import { ApiKey } from '../protocol/api-keys.ts';
import { READ_COMMITTED, READ_UNCOMMITTED, type AbortedTransaction, type FetchRequest, type FetchResponse, type FetchTopic } from '../protocol/apis/fetch.ts';
import { EARLIEST_TIMESTAMP, LATEST_TIMESTAMP } from '../protocol/apis/list-offsets.ts';
import type { ListOffsetsRequest, ListOffsetsResponse } from '../protocol/apis/list-offsets.ts';
import { ErrorCode, SluiceError } from '../protocol/errors.ts';
import {
  ATTR_CONTROL,
  ATTR_TRANSACTIONAL,
  BATCH_HEADER_BYTES,
  BATCH_LOG_OVERHEAD,
  MAGIC,
  Off,
  baseOffsetAt,
  batchSizeAt,
  decodeRecords,
  lastOffsetAt,
  newBatchInfo,
  producerIdAt,
  readInt32,
  validateBatch,
  type RecordHeader,
} from '../protocol/record-batch.ts';
import { TagExpression } from '../protocol/tag-expression.ts';
import { tagsOfHeaders } from '../protocol/tags.ts';
import type { Cluster } from './cluster.ts';
import { WakeSignal } from './wake-signal.ts';
import type { Connection } from './connection.ts';

export type OffsetSpec = number | 'earliest' | 'latest';
export type AutoOffsetReset = 'earliest' | 'latest' | 'none';
/**
 * Which records a consumer sees (SPEC §6.7). 'read_uncommitted': everything below the high
 * watermark, records of open and aborted transactions included. 'read_committed': only below
 * the last stable offset, without the records of aborted transactions. Control batches
 * (transaction markers) are never handed out at either level.
 */
export type IsolationLevel = 'read_committed' | 'read_uncommitted';

export interface TopicPartitionOffset {
  topic: string;
  partition: number;
  /** Default: the autoOffsetReset policy. */
  offset?: OffsetSpec;
}

/** One consumed record. key, value and header values are views into the received response. */
export interface Message {
  topic: string;
  partition: number;
  offset: number;
  timestamp: number;
  key: Buffer | null;
  value: Buffer | null;
  headers: RecordHeader[];
  /**
   * The record's tags (its `sluice-tags` header, SPEC §8.7); [] when it has none. Always set
   * on messages the consumer decodes (optional only so hand-built messages need not carry it).
   */
  tags?: string[];
}

/** Tags of an untagged record: one shared, frozen empty array. */
const NO_TAGS: string[] = Object.freeze([]) as unknown as string[];

/** One validated record batch as received, for callers that decode themselves (pollBatches). */
export interface RawBatch {
  topic: string;
  partition: number;
  /** The whole batch, a view into the received response. */
  bytes: Buffer;
  baseOffset: number;
  lastOffset: number;
  recordCount: number;
  /** Records with an offset below this were delivered before (or skipped by a seek): ignore them. */
  firstOffset: number;
}

const BUFFERED_FETCHES_PER_LEADER_MAX = 2;
const MiB = 1024 * 1024;
const EMPTY = Buffer.alloc(0);

/** Consumer-side state of one assigned partition. */
class PartitionState {
  readonly key: string;
  position = 0;
  fetchOffset = 0;
  epoch = 0;
  leader = -1;
  highWatermark = -1;
  lastStableOffset = -1;
  logStartOffset = -1;
  /** A reset (ListOffsets) is running or queued; no fetching until it completes. */
  resetting: 'earliest' | 'latest' | null = null;
  /** Set by OFFSET_OUT_OF_RANGE under autoOffsetReset 'none': no fetching until seek(). */
  needsSeek = false;
  /** An error to throw from the next poll(). */
  error: Error | null = null;
  /** Set by pause(): no fetching and nothing returned until resume(). */
  paused = false;
  /**
   * Not fetched again before this time (ms): the leader answered this partition alone with a
   * retriable error that a Metadata refresh does not cure (ARCHIVE_UNAVAILABLE, SPEC §6.7), so
   * the same offset is asked again after retryBackoffMs, the other partitions meanwhile not.
   */
  retryAtMs = 0;

  constructor(readonly topic: string, readonly partition: number) {
    this.key = partitionKey(topic, partition);
  }

  get fetchable(): boolean {
    return this.resetting === null && !this.needsSeek && !this.paused && this.leader >= 0;
  }

  /** Moves both cursors and invalidates everything buffered or in flight. */
  moveTo(offset: number): void {
    this.position = offset;
    this.fetchOffset = offset;
    this.epoch++;
    this.needsSeek = false;
    this.resetting = null;
    this.retryAtMs = 0;
  }
}

/** One partition's records from one Fetch response, consumed batch by batch. */
interface CompletedFetch {
  state: PartitionState;
  epoch: number;
  response: BufferedResponse;
  data: Buffer;
  pos: number;
  /** read_committed: the response's aborted transactions by firstOffset, not yet reached by the walk; null when none. */
  aborted: AbortedTransaction[] | null;
  /** Index of the next entry of `aborted` to reach. */
  abortedNext: number;
  /** Producers whose aborted transaction the walk is inside (SPEC §6.7); null until one is. At most aborted.length entries. */
  abortedProducers: Set<number> | null;
  /** Filtered fetch: the response's nextFetchOffset, where the position goes once data is walked; -1 otherwise. */
  skipTo: number;
}

/** How far a poll moved a partition's position past batches it did not hand out (control, aborted). */
export interface SkippedTo {
  topic: string;
  partition: number;
  /** The position after the skipped batches. */
  next: number;
}

/** One buffered Fetch response; counts against its leader's buffer until all its partitions are consumed. */
interface BufferedResponse {
  leader: LeaderState;
  partitionsLeft: number;
}

interface LeaderState {
  inFlight: boolean;
  buffered: number;
  backoffUntil: number;
}

function partitionKey(topic: string, partition: number): string {
  return `${topic}\u0000${partition}`;
}

/** The fetch engine's options (ConsumerOptions without the connection ones). */
export interface FetchOptions {
  /** Longest time the broker holds a Fetch waiting for minBytes. Default 500. */
  maxWaitMs?: number;
  /** Bytes the broker waits for before answering a Fetch. Default 1. */
  minBytes?: number;
  /** Bound on one Fetch response (soft: each partition's first batch is always whole). Default 50 MiB. */
  maxBytes?: number;
  /** Bound on one partition's data in a Fetch response (soft, as maxBytes). Default 8 MiB. */
  partitionMaxBytes?: number;
  /** Verify every received batch with validateBatch (CRC-32C and record framing). Default true. */
  checkCrcs?: boolean;
  /**
   * Where to start when a partition has no valid position: on assign() without an offset,
   * and when the broker answers OFFSET_OUT_OF_RANGE (the position fell below the log start
   * after retention, or is past the log end).
   * - 'latest' (default, as in Kafka): the log end; only messages produced from now on.
   * - 'earliest': the log start; everything still retained.
   * - 'none': poll() throws SluiceError(OFFSET_OUT_OF_RANGE) and the partition stays
   *   stopped until seek(); assign() without an offset throws.
   */
  autoOffsetReset?: AutoOffsetReset;
  /** Soft cap on messages one poll() returns (whole batches are decoded). Default 5,000: a poll's messages then die young, which keeps GC cheap. */
  maxPollRecords?: number;
  /** Pause before re-fetching from a leader after an error. Default 100. */
  retryBackoffMs?: number;
  /** Timeout of non-Fetch requests; a Fetch gets this plus maxWaitMs. Default 30,000. */
  requestTimeoutMs?: number;
  /** 'read_uncommitted' (default, as in Kafka) or 'read_committed': see IsolationLevel. */
  isolation?: IsolationLevel;
  /** Only messages with any of these tags (SPEC §6.7), filtered on the broker. Not with tagExpression. */
  tags?: readonly string[] | null;
  /** Only messages whose tags match this expression, e.g. `a || b && !c` (SPEC §6.7). Not with tags. */
  tagExpression?: string | null;
}

/** FetchOptions with the defaults applied, checked. */
export type FetchSettings = Readonly<Required<FetchOptions>>;

/** Applies the defaults and checks the options; throws TypeError for a bad one. */
export function resolveFetchSettings(options: FetchOptions): FetchSettings {
  const maxWaitMs = positiveInt(options.maxWaitMs ?? 500, 'maxWaitMs', 0);
  const minBytes = positiveInt(options.minBytes ?? 1, 'minBytes', 0);
  const maxBytes = positiveInt(options.maxBytes ?? 50 * MiB, 'maxBytes', 1);
  const partitionMaxBytes = positiveInt(options.partitionMaxBytes ?? 8 * MiB, 'partitionMaxBytes', 1);
  const checkCrcs = options.checkCrcs ?? true;
  const autoOffsetReset = options.autoOffsetReset ?? 'latest';
  if (!['earliest', 'latest', 'none'].includes(autoOffsetReset)) throw new TypeError(`autoOffsetReset must be earliest, latest or none, not ${String(autoOffsetReset)}`);
  const maxPollRecords = positiveInt(options.maxPollRecords ?? 5_000, 'maxPollRecords', 1);
  const retryBackoffMs = positiveInt(options.retryBackoffMs ?? 100, 'retryBackoffMs', 0);
  const requestTimeoutMs = positiveInt(options.requestTimeoutMs ?? 30_000, 'requestTimeoutMs', 1);
  const isolation = options.isolation ?? 'read_uncommitted';
  if (isolation !== 'read_committed' && isolation !== 'read_uncommitted') throw new TypeError(`isolation must be read_committed or read_uncommitted, not ${String(isolation)}`);
  const tagExpression = resolveTagExpression(options);
  return { maxWaitMs, minBytes, maxBytes, partitionMaxBytes, checkCrcs, autoOffsetReset, maxPollRecords, retryBackoffMs, requestTimeoutMs, isolation, tags: null, tagExpression };
}

/**
 * The expression the broker gets for the tags / tagExpression options, checked here so a bad
 * one fails at construction with the broker's error (SluiceError INVALID_TAG_EXPRESSION); null: unfiltered.
 */
export function resolveTagExpression(options: { tags?: readonly string[] | null; tagExpression?: string | null }): string | null {
  const { tags, tagExpression } = options;
  if (tags != null && tagExpression != null) throw new TypeError('give tags or tagExpression, not both');
  if (tags != null) return TagExpression.anyOf(tags).source;
  if (tagExpression != null) return TagExpression.parse(tagExpression).source;
  return null;
}

export class FetchEngine {
  private readonly assigned = new Map<string, PartitionState>();
  private readonly completed: CompletedFetch[] = [];
  private readonly leaders = new Map<number, LeaderState>();
  private readonly batchInfo = newBatchInfo();
  private metadataRefresh: Promise<void> | null = null;
  private backoffTimer: NodeJS.Timeout | null = null;
  private readonly dataArrived = new WakeSignal();
  private closed = false;
  private polling = false;
  private readonly readCommitted: boolean;
  /**
   * Filled by each poll (see skippedInLastPoll). Bounded by what one poll walks (the buffered
   * responses, BUFFERED_FETCHES_PER_LEADER_MAX per leader): one entry per run of hidden batches.
   */
  private skipped: SkippedTo[] = [];

  constructor(private readonly cluster: Cluster, readonly settings: FetchSettings) {
    this.readCommitted = settings.isolation === 'read_committed';
  }

  /**
   * Replaces the assignment. Partitions assigned before and listed again without an offset
   * keep their position; others start at `offset`, or per autoOffsetReset when it is omitted.
   * 'earliest'/'latest' are resolved with ListOffsets before this resolves; new partitions
   * are fetched only once all their lookups answered, and if one fails (thrown) none of the
   * new partitions is added. Throws UNKNOWN_TOPIC_OR_PARTITION for a partition the cluster
   * does not have.
   */
  async assign(partitions: TopicPartitionOffset[]): Promise<void> {
    await this.applyAssignment(partitions, true);
  }

  /**
   * Adds partitions to the assignment, leaving the others untouched (for GroupConsumer, whose
   * coordinator hands out partitions incrementally). Offsets as for assign().
   */
  async addPartitions(partitions: TopicPartitionOffset[]): Promise<void> {
    await this.applyAssignment(partitions, false);
  }

  /**
   * Removes partitions from the assignment at once (synchronously): nothing more of them is
   * fetched or returned by poll(). Partitions not assigned are ignored.
   */
  unassign(partitions: ReadonlyArray<{ topic: string; partition: number }>): void {
    const next = new Map(this.assigned);
    for (const tp of partitions) next.delete(partitionKey(tp.topic, tp.partition));
    this.setAssignment(next);
  }

  /**
   * Stops fetching an assigned partition and drops what is buffered for it; poll() returns
   * nothing of it until resume(). Its position stays where it is. Unassigned: ignored.
   */
  pause(topic: string, partition: number): void {
    const state = this.assigned.get(partitionKey(topic, partition));
    if (!state || state.paused) return;
    state.paused = true;
    state.epoch++;
    state.fetchOffset = state.position;
    this.dropCompleted(state);
  }

  /** Undoes pause(); fetching continues from the position. Unassigned or not paused: ignored. */
  resume(topic: string, partition: number): void {
    const state = this.assigned.get(partitionKey(topic, partition));
    if (!state || !state.paused) return;
    state.paused = false;
    this.pump();
  }

  /** Whether the partition is assigned and paused. */
  isPaused(topic: string, partition: number): boolean {
    return this.assigned.get(partitionKey(topic, partition))?.paused ?? false;
  }

  private async applyAssignment(partitions: TopicPartitionOffset[], replace: boolean): Promise<void> {
    this.assertOpen();
    const next = new Map<string, PartitionState>();
    /** Already assigned partitions re-listed with 'earliest'/'latest': reset in place. */
    const toResolve: Array<{ state: PartitionState; spec: 'earliest' | 'latest' }> = [];
    /** Already assigned partitions given a numeric offset. */
    const toMove: Array<{ state: PartitionState; offset: number }> = [];
    /** New partitions without an offset: looked up before any of them is fetched. */
    const toLookUp: Array<{ state: PartitionState; spec: 'earliest' | 'latest' }> = [];
    for (const tp of partitions) {
      if (typeof tp.topic !== 'string' || !Number.isInteger(tp.partition) || tp.partition < 0) {
        throw new TypeError(`bad topic partition ${JSON.stringify(tp)}`);
      }
      const key = partitionKey(tp.topic, tp.partition);
      if (next.has(key)) throw new TypeError(`${tp.topic}/${tp.partition} is listed twice`);
      let md = await this.cluster.topic(tp.topic);
      // A partition added since the metadata was cached: look once more before giving up.
      if (!md.partitions.some((p) => p.partition === tp.partition)) md = await this.cluster.topic(tp.topic, true);
      const pmd = md.partitions.find((p) => p.partition === tp.partition);
      if (!pmd) throw new SluiceError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `${tp.topic} has no partition ${tp.partition}`);
      const old = this.assigned.get(key);
      const state = old ?? new PartitionState(tp.topic, tp.partition);
      state.leader = pmd.leader;
      next.set(key, state);
      const spec = tp.offset ?? (old ? null : this.defaultOffsetSpec(tp.topic, tp.partition));
      if (spec === null) continue;
      if (typeof spec === 'number') {
        if (!Number.isSafeInteger(spec) || spec < 0) throw new TypeError(`offset must be a non-negative integer, 'earliest' or 'latest', not ${spec}`);
        if (old) toMove.push({ state, offset: spec });
        else state.moveTo(spec);
      } else if (old) {
        toResolve.push({ state, spec });
      } else {
        toLookUp.push({ state, spec });
      }
    }
    // New partitions join the assignment only once ALL their start offsets are known. Were
    // each made fetchable as its own lookup returned, a partition whose leader answered first
    // would be fetched (its position moving past what poll() hands out) while another
    // partition's leader is still slow; a caller that only accepts records once the whole
    // call resolved (GroupConsumer) would then commit past records nobody received. A failed
    // lookup leaves the new partitions out entirely, so a retry starts clean.
    await Promise.all(toLookUp.map(async ({ state, spec }) => state.moveTo(await this.listOffset(state.topic, state.partition, spec))));
    this.assertOpen();
    // Assigned partitions change only now, so a failed call above left them untouched.
    for (const { state, offset } of toMove) state.moveTo(offset);
    for (const { state, spec } of toResolve) {
      state.epoch++;
      state.resetting = spec;
    }
    if (!replace) {
      // Merged into the assignment as it is now: it may have changed during the lookups above.
      for (const [key, state] of this.assigned) if (!next.has(key)) next.set(key, state);
    }
    this.setAssignment(next);
    await Promise.all(toResolve.map(({ state, spec }) => this.resetOffset(state, spec, true)));
    this.pump();
  }

  /** Whether the partition is in the assignment. */
  isAssigned(topic: string, partition: number): boolean {
    return this.assigned.has(partitionKey(topic, partition));
  }

  /** The current assignment with each partition's position (next offset poll() returns). */
  assignment(): Array<{ topic: string; partition: number; position: number }> {
    return [...this.assigned.values()].map((s) => ({ topic: s.topic, partition: s.partition, position: s.position }));
  }

  /**
   * Moves the position of an assigned partition. A number takes effect on the next poll();
   * 'earliest'/'latest' are resolved with ListOffsets before the partition is fetched again.
   * Buffered and in-flight data for the partition is discarded.
   */
  seek(topic: string, partition: number, offset: OffsetSpec): void {
    this.assertOpen();
    const state = this.assigned.get(partitionKey(topic, partition));
    if (!state) throw new Error(`${topic}/${partition} is not assigned`);
    if (typeof offset === 'number') {
      if (!Number.isSafeInteger(offset) || offset < 0) throw new TypeError(`offset must be a non-negative integer, not ${offset}`);
      state.moveTo(offset);
    } else if (offset === 'earliest' || offset === 'latest') {
      state.epoch++;
      state.needsSeek = false;
      state.resetting = offset;
      state.error = null;
      void this.resetOffset(state, offset, false);
    } else {
      throw new TypeError(`offset must be a number, 'earliest' or 'latest', not ${String(offset)}`);
    }
    this.dropCompleted(state);
    this.pump();
  }

  /** Offset of the next message poll() returns for the partition. */
  position(topic: string, partition: number): number {
    const state = this.assigned.get(partitionKey(topic, partition));
    if (!state) throw new Error(`${topic}/${partition} is not assigned`);
    return state.position;
  }

  /** The partition's high watermark as of the last Fetch response (-1 before the first). */
  highWatermark(topic: string, partition: number): number {
    return this.assigned.get(partitionKey(topic, partition))?.highWatermark ?? -1;
  }

  /** The partition's last stable offset (SPEC §7.7) as of the last Fetch response (-1 before the first). */
  lastStableOffset(topic: string, partition: number): number {
    return this.assigned.get(partitionKey(topic, partition))?.lastStableOffset ?? -1;
  }

  /**
   * The end of what this consumer can read of the partition, as of the last Fetch response:
   * the last stable offset under read_committed, else the high watermark (-1 before the
   * first response). Lag is endOffset - position.
   */
  endOffset(topic: string, partition: number): number {
    return this.readCommitted ? this.lastStableOffset(topic, partition) : this.highWatermark(topic, partition);
  }

  /**
   * Where the last poll() or pollBatches() moved positions past batches it did not hand out
   * (control batches; aborted transactions under read_committed): for each partition, the
   * furthest such position (usually one entry per partition; a partition may appear again
   * when the walk went to another one in between). A group member counts those offsets as
   * delivered, so its commits and lag move past transaction markers. Valid until the next poll.
   */
  skippedInLastPoll(): readonly SkippedTo[] {
    return this.skipped;
  }

  /**
   * Returns the next messages: what is buffered, or else waits up to timeoutMs (default
   * maxWaitMs) for a Fetch response and returns [] when none brings data. Messages of one
   * partition come in offset order, each exactly once unless seek() moves back.
   * Throws the first pending partition error (CORRUPT_MESSAGE, OFFSET_OUT_OF_RANGE under
   * autoOffsetReset 'none', ...) when no messages are ready to return.
   */
  async poll(timeoutMs = this.settings.maxWaitMs): Promise<Message[]> {
    const out: Message[] = [];
    await this.collect(timeoutMs, (cf, pos, _size, firstOffset) => this.decodeBatch(cf, pos, firstOffset, out), () => out.length);
    return out;
  }

  /**
   * As poll(), but returns the validated batches undecoded (views into the responses), for
   * callers that decode records themselves. Positions advance past the returned batches.
   */
  async pollBatches(timeoutMs = this.settings.maxWaitMs): Promise<RawBatch[]> {
    const out: RawBatch[] = [];
    let records = 0;
    await this.collect(
      timeoutMs,
      (cf, pos, size, firstOffset) => {
        const count = readInt32(cf.data, pos + Off.recordCount);
        out.push({
          topic: cf.state.topic,
          partition: cf.state.partition,
          bytes: cf.data.subarray(pos, pos + size),
          baseOffset: baseOffsetAt(cf.data, pos),
          lastOffset: lastOffsetAt(cf.data, pos),
          recordCount: count,
          firstOffset,
        });
        records += count;
      },
      () => records,
    );
    return out;
  }

  /** Stops fetching (the Cluster is its owner's to close); a pending poll() returns []. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.backoffTimer) clearTimeout(this.backoffTimer);
    this.backoffTimer = null;
    this.completed.length = 0;
    this.assigned.clear();
    this.dataArrived.wake();
  }

  // ---- internals ----

  private defaultOffsetSpec(topic: string, partition: number): 'earliest' | 'latest' {
    if (this.settings.autoOffsetReset === 'none') {
      throw new SluiceError(ErrorCode.OFFSET_OUT_OF_RANGE, `${topic}/${partition} was assigned without an offset and autoOffsetReset is 'none'`);
    }
    return this.settings.autoOffsetReset;
  }

  /** The single place the assignment changes (assign, addPartitions, unassign). */
  private setAssignment(next: Map<string, PartitionState>): void {
    for (const [key, state] of this.assigned) {
      if (!next.has(key)) {
        state.epoch++;
        this.dropCompleted(state);
      }
    }
    this.assigned.clear();
    for (const [key, state] of next) this.assigned.set(key, state);
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('consumer is closed');
  }

  /**
   * Shared body of poll() and pollBatches(): waits for data if needed, then walks buffered
   * batches, validating each and skipping ones wholly before the position, calling take()
   * for each batch to deliver and advancing the position past it.
   */
  private async collect(
    timeoutMs: number,
    take: (cf: CompletedFetch, pos: number, size: number, firstOffset: number) => void,
    taken: () => number,
  ): Promise<void> {
    this.assertOpen();
    if (this.polling) throw new Error('poll() is already running: call it again after it resolves');
    if (this.assigned.size === 0) throw new Error('no partitions assigned: call assign() first');
    this.polling = true;
    if (this.skipped.length > 0) this.skipped = [];
    try {
      this.throwPendingError();
      this.pump();
      if (this.completed.length === 0 && timeoutMs > 0) {
        await this.dataArrived.wait(timeoutMs);
        if (this.closed) return;
        if (this.completed.length === 0) this.throwPendingError();
      }
      while (this.completed.length > 0 && taken() < this.settings.maxPollRecords) {
        const cf = this.completed[0]!;
        if (cf.epoch !== cf.state.epoch || cf.pos >= cf.data.length) {
          // A filtered response walked whole: what the broker skipped counts as consumed.
          if (cf.skipTo > cf.state.position && cf.epoch === cf.state.epoch) {
            cf.state.position = cf.skipTo;
            this.noteSkipped(cf.state, cf.skipTo);
          }
          this.shiftCompleted();
          continue;
        }
        const data = cf.data;
        const pos = cf.pos;
        const remaining = data.length - pos;
        if (remaining < BATCH_LOG_OVERHEAD || batchSizeAt(data, pos) > remaining) {
          if (pos > 0) {
            // A truncated trailing batch is not an error: the rest comes with the next Fetch.
            this.shiftCompleted();
            continue;
          }
        }
        const problem = this.checkBatch(data, pos);
        if (problem !== null) {
          this.failPartition(cf.state, new SluiceError(problem.code, `${cf.state.topic}/${cf.state.partition} batch at offset ${cf.state.position}: ${problem.detail}`));
          if (taken() > 0) break;
          this.throwPendingError();
        }
        const size = batchSizeAt(data, pos);
        cf.pos = pos + size;
        const lastOffset = lastOffsetAt(data, pos);
        const state = cf.state;
        // One header byte decides for a plain batch; only transactional ones look further.
        if ((data[pos + Off.attributes + 1]! & (ATTR_TRANSACTIONAL | ATTR_CONTROL)) !== 0 && this.isHidden(cf, data, pos, lastOffset)) {
          if (lastOffset >= state.position) {
            state.position = lastOffset + 1;
            this.noteSkipped(state, lastOffset + 1);
          }
          continue;
        }
        if (lastOffset >= state.position) {
          const epoch = state.epoch;
          take(cf, pos, size, state.position);
          // take() fails the partition (epoch bump) when the batch cannot be decoded: nothing
          // of it was handed out, so the position must stay before it.
          if (state.epoch === epoch) state.position = lastOffset + 1;
        }
      }
    } finally {
      this.polling = false;
    }
    this.pump();
  }

  /**
   * Whether a transactional batch (attribute bit 4 or 5) is kept from the application: a
   * control batch always; under read_committed, a batch of a producer whose aborted
   * transaction the walk is inside (SPEC §6.7). Header fields only. Called for every such
   * batch in offset order, also below the position, so the aborted-producer set is right.
   */
  private isHidden(cf: CompletedFetch, data: Buffer, pos: number, lastOffset: number): boolean {
    const control = (data[pos + Off.attributes + 1]! & ATTR_CONTROL) !== 0;
    if (!this.readCommitted) return control;
    const producerId = producerIdAt(data, pos);
    const aborted = cf.aborted;
    if (aborted !== null) {
      // Enter every aborted transaction that starts at or before this batch's last offset.
      while (cf.abortedNext < aborted.length && aborted[cf.abortedNext]!.firstOffset <= lastOffset) {
        (cf.abortedProducers ??= new Set()).add(aborted[cf.abortedNext]!.producerId);
        cf.abortedNext++;
      }
    }
    const set = cf.abortedProducers;
    if (control) {
      // The producer's next transaction marker (control and transactional bits, SPEC §8.6) after an
      // aborted transaction's start is its abort marker; a delayed-delivery control batch (control
      // bit only, types 2-4) is not a marker and ends nothing.
      if ((data[pos + Off.attributes + 1]! & ATTR_TRANSACTIONAL) !== 0) set?.delete(producerId);
      return true;
    }
    return set !== null && set.has(producerId);
  }

  /** Records that a poll moved the position to `next` past batches it did not hand out. */
  private noteSkipped(state: PartitionState, next: number): void {
    const last = this.skipped.at(-1);
    if (last !== undefined && last.partition === state.partition && last.topic === state.topic) last.next = next;
    else this.skipped.push({ topic: state.topic, partition: state.partition, next });
  }

  /** Checks one batch; null when it may be decoded. */
  private checkBatch(data: Buffer, pos: number): { code: ErrorCode; detail: string } | null {
    if (this.settings.checkCrcs) {
      const code = validateBatch(data, pos, data.length, this.batchInfo, true);
      return code === ErrorCode.NONE ? null : { code, detail: this.batchInfo.problem };
    }
    // Without CRC checks only the framing decodeRecords relies on is checked.
    const remaining = data.length - pos;
    if (remaining < BATCH_HEADER_BYTES) return { code: ErrorCode.CORRUPT_MESSAGE, detail: 'batch shorter than its header' };
    const size = batchSizeAt(data, pos);
    if (size < BATCH_HEADER_BYTES || size > remaining) return { code: ErrorCode.CORRUPT_MESSAGE, detail: `batch size ${size} does not fit ${remaining} bytes` };
    if (data[pos + Off.magic] !== MAGIC) return { code: ErrorCode.CORRUPT_MESSAGE, detail: `magic ${data[pos + Off.magic]}` };
    if ((data[pos + Off.attributes + 1]! & 7) !== 0) return { code: ErrorCode.UNSUPPORTED_COMPRESSION, detail: 'compressed batch' };
    return null;
  }

  private decodeBatch(cf: CompletedFetch, pos: number, firstOffset: number, out: Message[]): void {
    const topic = cf.state.topic;
    const partition = cf.state.partition;
    const start = out.length;
    // Every record of a batch has the same tags (SPEC §8.7, checked by validateBatch): parsed
    // once per batch, one frozen array shared by its messages.
    let batchTags: string[] | null = null;
    const tagsOf = (headers: RecordHeader[]): string[] => (batchTags ??= Object.freeze(tagsOfHeaders(headers)) as string[]);
    try {
      // Each record becomes its Message in one object literal (one shape, no second object).
      decodeRecords(cf.data, pos, out, (offset, timestamp, key, value, headers): Message => ({ topic, partition, offset, timestamp, key: key as Buffer | null, value: value as Buffer | null, headers, tags: headers.length === 0 ? NO_TAGS : tagsOf(headers) }));
    } catch (e) {
      // Only reachable with checkCrcs off: validateBatch walks the same framing.
      out.length = start;
      this.failPartition(cf.state, new SluiceError(ErrorCode.CORRUPT_MESSAGE, `${topic}/${partition}: ${(e as Error).message}`));
      return;
    }
    // The batch may begin before the fetch offset; offsets can have gaps after compaction.
    let skip = 0;
    while (start + skip < out.length && out[start + skip]!.offset < firstOffset) skip++;
    if (skip > 0) out.splice(start, skip);
  }

  private throwPendingError(): void {
    for (const state of this.assigned.values()) {
      if (state.error) {
        const e = state.error;
        state.error = null;
        throw e;
      }
    }
  }

  /** Drops a partition's buffered data, rewinds fetching to its position, and records err. */
  private failPartition(state: PartitionState, err: Error): void {
    state.error = err;
    state.epoch++;
    state.fetchOffset = state.position;
    this.dropCompleted(state);
  }

  private dropCompleted(state: PartitionState): void {
    for (let i = this.completed.length - 1; i >= 0; i--) {
      const cf = this.completed[i]!;
      if (cf.state !== state) continue;
      this.completed.splice(i, 1);
      this.release(cf);
    }
  }

  private shiftCompleted(): void {
    this.release(this.completed.shift()!);
  }

  private release(cf: CompletedFetch): void {
    const r = cf.response;
    if (--r.partitionsLeft === 0) r.leader.buffered--;
  }

  private leaderState(nodeId: number): LeaderState {
    let l = this.leaders.get(nodeId);
    if (!l) {
      l = { inFlight: false, buffered: 0, backoffUntil: 0 };
      this.leaders.set(nodeId, l);
    }
    return l;
  }

  /** Sends a Fetch to every leader that has fetchable partitions, nothing in flight and room to buffer. */
  private pump(): void {
    if (this.closed) return;
    const byLeader = new Map<number, PartitionState[]>();
    const now = Date.now();
    let earliestRetry = Infinity;
    for (const state of this.assigned.values()) {
      if (!state.fetchable) continue;
      if (state.retryAtMs > now) {
        earliestRetry = Math.min(earliestRetry, state.retryAtMs);
        continue;
      }
      let list = byLeader.get(state.leader);
      if (!list) byLeader.set(state.leader, (list = []));
      list.push(state);
    }
    for (const [nodeId, states] of byLeader) {
      const l = this.leaderState(nodeId);
      if (l.inFlight || l.buffered >= BUFFERED_FETCHES_PER_LEADER_MAX) continue;
      if (l.backoffUntil > now) {
        earliestRetry = Math.min(earliestRetry, l.backoffUntil);
        continue;
      }
      this.sendFetch(nodeId, l, states);
    }
    if (earliestRetry < Infinity && !this.backoffTimer) {
      this.backoffTimer = setTimeout(() => {
        this.backoffTimer = null;
        this.pump();
      }, Math.max(1, earliestRetry - now));
    }
  }

  private sendFetch(nodeId: number, l: LeaderState, states: PartitionState[]): void {
    l.inFlight = true;
    const topics = new Map<string, FetchTopic>();
    const sent = new Map<string, { state: PartitionState; epoch: number; fetchOffset: number }>();
    for (const s of states) {
      let t = topics.get(s.topic);
      if (!t) topics.set(s.topic, (t = { topic: s.topic, partitions: [] }));
      t.partitions.push({ partition: s.partition, fetchOffset: s.fetchOffset, partitionMaxBytes: this.settings.partitionMaxBytes });
      sent.set(s.key, { state: s, epoch: s.epoch, fetchOffset: s.fetchOffset });
    }
    const req: FetchRequest = {
      isolationLevel: this.readCommitted ? READ_COMMITTED : READ_UNCOMMITTED,
      maxWaitMs: this.settings.maxWaitMs,
      minBytes: this.settings.minBytes,
      maxBytes: this.settings.maxBytes,
      topics: [...topics.values()],
    };
    // Only when filtering: an unfiltered request is exactly what it was before tags.
    if (this.settings.tagExpression !== null) req.tagExpression = this.settings.tagExpression;
    const run = async (): Promise<void> => {
      let conn: Connection;
      try {
        conn = await this.cluster.connectionToNode(nodeId);
      } catch (e) {
        this.onFetchFailure(nodeId, l, e as Error);
        return;
      }
      try {
        const res = await conn.send<FetchResponse>(ApiKey.FETCH, req, [], true, this.settings.requestTimeoutMs + this.settings.maxWaitMs);
        l.inFlight = false;
        this.onFetchResponse(nodeId, l, res.control, res.data, sent);
      } catch (e) {
        this.onFetchFailure(nodeId, l, e as Error);
      }
    };
    void run();
  }

  private onFetchFailure(nodeId: number, l: LeaderState, err: Error): void {
    l.inFlight = false;
    if (this.closed) return;
    l.backoffUntil = Date.now() + this.settings.retryBackoffMs;
    if (err instanceof SluiceError && !err.retriable && err.code !== ErrorCode.REQUEST_TIMED_OUT) {
      // A request-level refusal (malformed, unsupported) will not go away by retrying quietly.
      for (const s of this.assigned.values()) if (s.leader === nodeId) s.error = err;
      this.dataArrived.wake();
    }
    this.refreshLeaders();
  }

  private onFetchResponse(
    nodeId: number,
    l: LeaderState,
    res: FetchResponse,
    data: Buffer,
    sent: Map<string, { state: PartitionState; epoch: number; fetchOffset: number }>,
  ): void {
    if (this.closed) return;
    let dataPos = 0;
    let gotData = false;
    const response: BufferedResponse = { leader: l, partitionsLeft: 0 };
    let needMetadata = false;
    for (const t of res.topics) {
      for (const p of t.partitions) {
        const start = dataPos;
        dataPos += p.recordsBytes;
        if (dataPos > data.length) {
          this.onFetchFailure(nodeId, l, new SluiceError(ErrorCode.CORRUPT_MESSAGE, `Fetch response data section is ${data.length} bytes, control claims more`));
          return;
        }
        const req = sent.get(partitionKey(t.topic, p.partition));
        if (!req) continue;
        const state = req.state;
        // Stale: the partition was seeked, reset or unassigned while the Fetch was in flight.
        if (this.assigned.get(state.key) !== state || state.epoch !== req.epoch || state.fetchOffset !== req.fetchOffset) continue;
        switch (p.errorCode) {
          case ErrorCode.NONE: {
            state.highWatermark = p.highWatermark;
            state.lastStableOffset = p.lastStableOffset;
            state.logStartOffset = p.logStartOffset;
            // Filtered: continue after what the broker examined (-1/absent: unfiltered).
            const skipTo = p.nextFetchOffset ?? -1;
            if (p.recordsBytes === 0) {
              if (skipTo > state.fetchOffset) {
                state.fetchOffset = skipTo;
                this.pushCompleted(state, response, EMPTY, null, skipTo);
                gotData = true;
              }
              break;
            }
            const slice = data.subarray(start, start + p.recordsBytes);
            const aborted = this.readCommitted ? abortedByFirstOffset(p.abortedTransactions) : null;
            const last = lastCompleteOffset(slice);
            if (last < state.fetchOffset) {
              // Nothing whole and new: hand it to poll() only if it may be corrupt, so the error surfaces there.
              if (last === -1) {
                this.pushCompleted(state, response, slice, aborted);
                gotData = true;
              }
              break;
            }
            // Past the last batch, whatever it is (a control batch, an aborted one): SPEC §6.7.
            state.fetchOffset = Math.max(last + 1, skipTo);
            this.pushCompleted(state, response, slice, aborted, skipTo);
            gotData = true;
            break;
          }
          case ErrorCode.OFFSET_OUT_OF_RANGE:
            state.highWatermark = p.highWatermark;
            state.lastStableOffset = p.lastStableOffset;
            state.logStartOffset = p.logStartOffset;
            this.onOutOfRange(state);
            gotData = true;
            break;
          case ErrorCode.ARCHIVE_UNAVAILABLE:
            // The offset is archived and the store is down or slow (SPEC §6.7, §7.10): the data
            // exists, so neither reset nor fail; ask for the same offset again after a backoff.
            state.highWatermark = p.highWatermark;
            state.lastStableOffset = p.lastStableOffset;
            state.logStartOffset = p.logStartOffset;
            state.retryAtMs = Date.now() + this.settings.retryBackoffMs;
            break;
          case ErrorCode.NOT_LEADER:
          case ErrorCode.UNKNOWN_TOPIC_OR_PARTITION:
          case ErrorCode.BROKER_SHUTTING_DOWN:
          case ErrorCode.STORAGE_ERROR:
          case ErrorCode.REQUEST_TIMED_OUT:
            needMetadata = true;
            break;
          default:
            state.error = new SluiceError(p.errorCode as ErrorCode, `fetch ${t.topic}/${p.partition} at offset ${req.fetchOffset}`);
            gotData = true;
        }
      }
    }
    if (needMetadata) {
      l.backoffUntil = Date.now() + this.settings.retryBackoffMs;
      this.refreshLeaders();
    }
    if (gotData) this.dataArrived.wake();
    this.pump();
  }

  private pushCompleted(state: PartitionState, response: BufferedResponse, data: Buffer, aborted: AbortedTransaction[] | null, skipTo = -1): void {
    this.completed.push({ state, epoch: state.epoch, response, data, pos: 0, aborted, abortedNext: 0, abortedProducers: null, skipTo });
    if (response.partitionsLeft++ === 0) response.leader.buffered++;
  }

  private onOutOfRange(state: PartitionState): void {
    const offset = state.fetchOffset;
    if (this.settings.autoOffsetReset === 'none') {
      state.needsSeek = true;
      state.epoch++;
      this.dropCompleted(state);
      state.error = new SluiceError(
        ErrorCode.OFFSET_OUT_OF_RANGE,
        `${state.topic}/${state.partition} offset ${offset} is outside [${state.logStartOffset}, ${state.highWatermark}] and autoOffsetReset is 'none': seek() to continue`,
      );
      return;
    }
    state.epoch++;
    state.resetting = this.settings.autoOffsetReset;
    this.dropCompleted(state);
    void this.resetOffset(state, this.settings.autoOffsetReset, false);
  }

  /**
   * Resolves 'earliest'/'latest' with ListOffsets and moves the partition there, unless it was
   * seeked again meanwhile. With rethrow false (background resets) a failure is recorded on the
   * partition and retried after a backoff when retriable.
   */
  private async resetOffset(state: PartitionState, spec: 'earliest' | 'latest', rethrow: boolean): Promise<void> {
    const epoch = state.epoch;
    try {
      const offset = await this.listOffset(state.topic, state.partition, spec);
      if (state.epoch !== epoch || this.closed) return;
      state.moveTo(offset);
    } catch (e) {
      if (state.epoch !== epoch || this.closed) return;
      const err = e as Error;
      if (rethrow) {
        state.resetting = null;
        state.needsSeek = true;
        throw err;
      }
      if (err instanceof SluiceError && !err.retriable) {
        state.resetting = null;
        state.needsSeek = true;
        state.error = err;
        this.dataArrived.wake();
        return;
      }
      await sleep(this.settings.retryBackoffMs);
      if (state.epoch === epoch && !this.closed) {
        this.refreshLeaders();
        return this.resetOffset(state, spec, false);
      }
      return;
    }
    this.dataArrived.wake();
    this.pump();
  }

  private async listOffset(topic: string, partition: number, spec: 'earliest' | 'latest'): Promise<number> {
    try {
      const conn = await this.cluster.leaderConnection(topic, partition);
      // read_committed: 'latest' is the last stable offset (SPEC §6.8), where such a consumer's reading ends.
      const req: ListOffsetsRequest = {
        isolationLevel: this.readCommitted ? READ_COMMITTED : READ_UNCOMMITTED,
        topics: [{ topic, partitions: [{ partition, timestamp: spec === 'earliest' ? EARLIEST_TIMESTAMP : LATEST_TIMESTAMP }] }],
      };
      const res = await conn.send<ListOffsetsResponse>(ApiKey.LIST_OFFSETS, req);
      const p = res.control.topics.find((t) => t.topic === topic)?.partitions.find((x) => x.partition === partition);
      if (!p) throw new SluiceError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `ListOffsets returned nothing for ${topic}/${partition}`);
      if (p.errorCode !== ErrorCode.NONE) throw new SluiceError(p.errorCode as ErrorCode, `ListOffsets ${topic}/${partition} ${spec}`);
      return p.offset;
    } catch (e) {
      // The leader may have moved or died (NOT_LEADER, timeout, connection refused): refresh
      // the topic's metadata before failing, so the caller's retry asks the new leader
      // instead of the cached one again and again.
      if (!(e instanceof SluiceError) || e.retriable) await this.cluster.topic(topic, true).catch(() => {});
      throw e;
    }
  }

  /** Refreshes metadata for the assigned topics and updates leaders (one refresh at a time). */
  private refreshLeaders(): void {
    if (this.metadataRefresh || this.closed) return;
    const topics = [...new Set([...this.assigned.values()].map((s) => s.topic))];
    if (topics.length === 0) return;
    this.metadataRefresh = (async () => {
      try {
        const md = await this.cluster.refreshMetadata(topics);
        for (const state of this.assigned.values()) {
          const t = md.topics.find((x) => x.topic === state.topic);
          const p = t?.partitions.find((x) => x.partition === state.partition);
          state.leader = p && t!.errorCode === ErrorCode.NONE ? p.leader : -1;
        }
      } catch {
        // Fetches retry after their backoff and trigger another refresh.
      } finally {
        this.metadataRefresh = null;
      }
      const unknown = [...this.assigned.values()].some((s) => s.leader < 0);
      if (unknown && !this.closed) setTimeout(() => this.refreshLeaders(), this.settings.retryBackoffMs);
      this.pump();
    })();
  }
}

/**
 * A response's aborted transactions in firstOffset order (the broker sends them oldest
 * first; sorted here only if it did not), or null when there are none (the common case).
 */
function abortedByFirstOffset(list: AbortedTransaction[]): AbortedTransaction[] | null {
  if (list.length === 0) return null;
  for (let i = 1; i < list.length; i++) {
    if (list[i]!.firstOffset < list[i - 1]!.firstOffset) return [...list].sort((a, b) => a.firstOffset - b.firstOffset);
  }
  return list;
}

/** Last offset of the last whole batch in a record set, or -1 when it holds no whole batch. */
function lastCompleteOffset(data: Buffer): number {
  let pos = 0;
  let last = -1;
  while (data.length - pos >= BATCH_HEADER_BYTES) {
    const size = batchSizeAt(data, pos);
    if (size < BATCH_HEADER_BYTES || size > data.length - pos) break;
    last = lastOffsetAt(data, pos);
    pos += size;
  }
  return last;
}

function positiveInt(v: number, name: string, min: number): number {
  if (!Number.isSafeInteger(v) || v < min) throw new TypeError(`${name} must be an integer >= ${min}, not ${v}`);
  return v;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
