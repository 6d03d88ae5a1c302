/**
 * PartitionLog: the log of one partition, a directory of segments. This is the file to follow
 * for the append path (validate, assign offsets, roll, write), and the coordination of
 * everything else that touches the segments: reads, flushes, retention, compaction hand-off,
 * truncation, the high watermark and the leader epoch cache. The mechanisms live beside it:
 * log-loader.ts opens and recovers the directory, log-reader.ts serves reads (index lookup,
 * one read, cut at whole batches), log-flusher.ts decides when data becomes durable (group
 * commit), log-cleaner.ts compacts; batch-cursor.ts is how all of them walk batches, and
 * log-io.ts is the file-system seam under them.
 *
 * Invariants:
 * - segments is sorted by base offset and never empty; the last one is the active segment,
 *   the only one appended to. The array is replaced, never mutated, so a read that is
 *   awaiting I/O keeps a consistent view.
 * - logStartOffset is the first segment's base offset (retention deletes whole segments);
 *   logEndOffset is the next offset to assign: offsets are contiguous, except where recovery
 *   dropped a corrupt batch (reads then continue at the next intact batch).
 * - A segment that is not active was fsynced, and then its indexes persisted, by the flush
 *   cycle that followed its roll; until then the flusher holds it as dirty.
 * - Group commit, one flush cycle at a time: see log-flusher.ts.
 * - After an fsync failure the log refuses appends and flushes (STORAGE_ERROR) until the
 *   broker restarts and recovers it: after a failed fsync the page cache may have dropped the
 *   dirty pages, so retrying and reporting success could lie. A breached invariant (a bug,
 *   server/assert.ts) does the same: the log goes offline for writes and the InvariantError
 *   is rethrown, never logged and ignored.
 * - Asserted: each append moves the log end forward (offsets strictly increase); the high
 *   watermark never passes the log end; the epoch cache's epochs and start offsets strictly
 *   increase (leader-epoch-cache.ts).
 * - Single-threaded by construction (one event loop); append is synchronous, so appends never
 *   interleave. Reads and flushes are async and run alongside appends.
 * - Compacted logs (log-cleaner.ts): at most one compaction runs at a time. It swaps a segment
 *   only when no flush cycle is running and the segment is sealed, so a cycle never persists
 *   the old segment's indexes over the new ones. Compaction leaves gaps in the offsets (and
 *   may remove a whole segment other than the first); reads skip them like recovery gaps.
 *   A read whose segment was swapped or removed while it waited retries on the new array.
 *
 * Replication (the replica manager drives it; this file only keeps the log-level state):
 * - Leader epochs: append(..., { leaderEpoch }) stamps partitionLeaderEpoch into every batch
 *   (outside the CRC, like baseOffset); appendAsFollower keeps the leader's stamps. Either way
 *   the epoch cache (leader-epoch-cache.ts, `leader-epoch-checkpoint`) is updated and persisted
 *   before the batches are written, and only after truncation removed batches. Without a
 *   leaderEpoch, append leaves the producer's -1, which the cache does not track: a log that
 *   is never given an epoch behaves exactly as before replication.
 * - logEndOffset only moves back through truncateTo / truncateFullyAndStartAt, which wait for
 *   any flush cycle to end and abort any compaction first, so no cycle or cleaner works from
 *   offsets that are gone. Both replace the segments array, and a segment that is cut bumps its
 *   truncationCount, so a read in flight across them retries rather than returning cut bytes.
 *   A crash part way leaves a shorter log (segments are deleted newest first, the directory
 *   fsynced, then the last kept one cut), never one with a hole.
 * - High watermark: with `replicated` off (the default, a single broker) it is the log end.
 *   With it on, it is state the replica manager moves forward (updateHighWatermark); only
 *   truncation lowers it, and it never passes the log end. `replication-offset-checkpoint`
 *   holds it across restarts, written lazily: on flush(), at close, and at most every
 *   HIGH_WATERMARK_CHECKPOINT_INTERVAL_MS from maybeFlush when it moved; at open it is
 *   clamped into [logStartOffset, logEndOffset]. A stale value only hides committed data
 *   until the leader moves it again; it never exposes uncommitted data.
 * - read() serves batches below maxOffset only, the high watermark unless the caller says
 *   otherwise (followers read up to the log end). Retention deletes only segments wholly
 *   below the high watermark, and compaction only cleans below the last stable offset.
 *
 * Producers and transactions (SPEC §7.7; producer-state.ts, producer-snapshot.ts, txn-index.ts):
 * - The producer state is derived from the stored batches alone: append checks and then
 *   applies (after the write succeeded: all or nothing), appendAsFollower and appendControl
 *   apply, open and truncation rebuild (latest snapshot at or below the log end, then a replay
 *   of the headers after it). A record set without producer batches costs one branch.
 * - A duplicate (AppendResult.duplicate) writes nothing and carries the original offsets.
 * - lastStableOffset <= highWatermark; `aborted` is sorted by marker offset and mirrors the
 *   segments' .txnindex files (each entry in its marker's segment); retention and truncation
 *   drop entries with their segments.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ErrorCode, SluiceError } from '../../protocol/errors.ts';
import { InvariantError, rethrowInvariant } from '../assert.ts';
import type { Logger } from '../logger.ts';
import { BatchCursor } from './batch-cursor.ts';
import { writeCheckpoint, writeCheckpointSync } from './checkpoint-file.ts';
import { fsyncDirSync } from './durable-file.ts';
import type { FileHandleCache } from './file-handle-cache.ts';
import { LEADER_EPOCH_MAX, LeaderEpochCache, type EpochEndOffset, type EpochEntry } from './leader-epoch-cache.ts';
import { cleanLog, emptyCompactionResult, firstKeylessOffset, type CleanableLog, type CleanerLimits, type CompactionResult } from './log-cleaner.ts';
import { compacts, deletes, effectiveLocalRetentionBytes, effectiveLocalRetentionMs, type LogConfig } from './log-config.ts';
import { LogFlusher } from './log-flusher.ts';
import { emptyLogFiles, HIGH_WATERMARK_CHECKPOINT_FILE, HIGH_WATERMARK_CHECKPOINT_VERSION, loadPartitionLog, type PartitionLogOpenOptions } from './log-loader.ts';
import { readLogFiltered } from './filtered-reader.ts';
import { offsetForTimestamp, readLog, segmentIndexFor, type ReadableLog, type ReadOptions, type ReadResult, type TimestampLookup } from './log-reader.ts';
import { validateAndAssignOffsets, validateReplicatedRecordSet } from './log-validator.ts';
import { ATTR_TRANSACTIONAL, BATCH_HEADER_BYTES, batchSizeAt, buildControlBatch, isControlAt, isTransactionalAt, NO_PRODUCER_ID, Off, readInt32, readInt64, writeInt32, writeInt64, type TxnMarker } from '../../protocol/record-batch.ts';
import { readScheduled, type ScheduledEntry } from '../../protocol/delayed-batch.ts';
import { batchHeaderAt, ProducerState, type AppendOrigin, type BatchHeader, type CompletedTxn, type ProducerStateConfig } from './producer-state.ts';
import { FileBatchCursor } from './batch-cursor.ts';
import { LogSegment } from './segment.ts';
import { ACTIVE_TAG_INDEX_ENTRIES_MAX } from './tag-index.ts';
import { deleteSnapshotsAbove, deleteSnapshotsBelow, latestSnapshot, writeSnapshotSync } from './producer-snapshot.ts';
import { appendTxnIndexSync, readTxnIndexSync, writeTxnIndexSync, type AbortedTxn } from './txn-index.ts';
import { DEFAULT_DELAY_CONFIG, type DelayConfig } from '../delay/delay-config.ts';
import { isDelayControlAt, PendingDelays } from '../delay/pending-delays.ts';
import { scheduleDelayed } from '../delay/schedule.ts';
import { SegmentDelays } from '../delay/segment-delays.ts';
import { SortedRun } from '../delay/sorted-run.ts';

export { HIGH_WATERMARK_CHECKPOINT_FILE } from './log-loader.ts';
export type { PartitionLogOpenOptions } from './log-loader.ts';
export type { ReadOptions, ReadResult, TimestampLookup } from './log-reader.ts';

/** readWrapperSync reads this much past the index interval, so a wrapper usually comes in the first read. */
const WRAPPER_READ_SLACK_BYTES = 1024;
/** Relative offsets are uint32 in both indexes. */
const SEGMENT_OFFSETS_MAX = 0xffff_ffff;
/** maybeFlush persists a moved high watermark at most this often (Kafka's replica.high.watermark.checkpoint.interval.ms). */
export const HIGH_WATERMARK_CHECKPOINT_INTERVAL_MS = 5000;

/** A sealed segment the archive may upload (PartitionLog.archiveCandidates). */
export interface ArchiveCandidate {
  segment: LogSegment;
  baseOffset: number;
  /** The next segment's baseOffset - 1. */
  lastOffset: number;
  sizeBytes: number;
  largestTimestampMs: number;
  truncationCount: number;
}

export interface AppendOptions {
  /**
   * The leader's epoch, 0..2^31-1: stamped into every batch's partitionLeaderEpoch and
   * recorded in the epoch cache. Refused (FENCED_LEADER_EPOCH) when older than the latest
   * epoch of the log. Omitted: batches keep the producer's value (-1) and the cache is untouched.
   */
  leaderEpoch?: number;
  /**
   * Who appends (SPEC §6.6): 'client' batches get every producer check; 'coordinator' ones
   * (the group coordinator writing a transaction's offsets) skip the sequence checks but are
   * still fenced by epoch and still open the producer's transaction. Default 'client'.
   */
  origin?: AppendOrigin;
  /**
   * Leader, 'client' origin: called for each transactional batch that would begin its
   * producer's transaction on this partition (none open there now), after the producer
   * checks; throws SluiceError to refuse the record set. The transaction coordinator's check
   * that the partition was added (AddPartitionsToTxn): a transaction no coordinator knows of
   * would never get its marker and would hold the last stable offset back for good.
   */
  verifyTxnStart?: (producerId: number, producerEpoch: number) => void;
}

export interface FollowerAppendResult {
  /** Base offset of the first batch, as the leader assigned it. */
  firstOffset: number;
  lastOffset: number;
}

export interface AppendResult {
  baseOffset: number;
  lastOffset: number;
  /** The broker's clock when the batches were written. */
  logAppendTimeMs: number;
  /**
   * True when the record set was one batch the producer state already had (a retry): nothing
   * was written and baseOffset/lastOffset are where it was stored the first time.
   */
  duplicate?: boolean;
  /** Batches stored as SCHEDULED wrappers (delayed delivery, SPEC §8.8); absent when none. */
  wrapped?: number;
}

type State = 'open' | 'closing' | 'closed' | 'deleted';

/** An aborted-transaction index entry in memory, with the lowest first offset any later abort can have. */
interface IndexedAbort extends AbortedTxn {
  openFloor: number;
}

/** The headers of the producer batches of a validated record set, in order. */
function producerHeaders(recordSet: Uint8Array): BatchHeader[] {
  const out: BatchHeader[] = [];
  const c = new BatchCursor();
  for (c.reset(recordSet); !c.done; c.advance()) {
    if (readInt64(recordSet, c.at + Off.producerId) !== NO_PRODUCER_ID) out.push(batchHeaderAt(recordSet, c.at));
  }
  return out;
}

export class PartitionLog {
  readonly dir: string;
  private cfg: LogConfig;
  readonly logger: Logger;
  private readonly files: FileHandleCache | undefined;
  private segments: readonly LogSegment[];
  private endOffset: number;
  private state: State = 'open';
  private readonly flusher: LogFlusher;
  /** This log as log-reader.ts sees it; built once, so a read allocates no view. */
  private readonly readable: ReadableLog;

  // Replication state (see the top of this file).
  private readonly epochs: LeaderEpochCache;
  private isReplicated = false;
  /** The high watermark while replicated; follows endOffset while not, so turning replication on keeps it. */
  private hw: number;
  private hwCheckpointed: number;
  private hwCheckpointedAtMs = -Infinity;
  /** Checkpoint writes one after another: they share a temp file. Never rejects. */
  private hwWrites: Promise<void> = Promise.resolve();
  /** Truncations waiting for a flush cycle or compaction to end; compaction stays off meanwhile. */
  private truncating = 0;

  // Compaction state: the running run, and when another one could find work without appends.
  private compaction: Promise<CompactionResult> | null = null;
  private compactedAtEnd = -1;
  private compactedAtHighWatermark = -1;
  private compactAgainAtMs = Infinity;

  /** Producers that wrote to this partition (producer-state.ts); rebuilt at open and after truncation. */
  readonly producers: ProducerState;
  /**
   * Aborted transactions whose marker is still in the log, by marker offset (lastOffset); the
   * segments' .txnindex files hold the same entries, each in its marker's segment.
   */
  private aborted: IndexedAbort[] = [];
  /** Offset of the newest snapshot written or loaded, -1 when none (so an idle log is not snapshotted again at every close). */
  private snapshotOffset = -1;
  /** While replaying at open or after truncation: aborts are collected, the files reconciled afterwards. */
  private replaying = false;
  /**
   * Delayed delivery (SPEC §7.9): the pending wrappers, cancels and frontier this log holds;
   * rebuilt at open and after truncation, updated by every append that writes delay batches.
   */
  readonly delays = new PendingDelays();
  readonly delayConfig: DelayConfig;
  /** The active segment's delayed-delivery content, written as its sidecar when it rolls. */
  private activeDelays = new SegmentDelays();
  /**
   * Tiered storage (SPEC §7.10): the committed archive end (the partition's archive state
   * endOffset, set by server/archive/partition-archive.ts). With archive.enable a segment is
   * deleted locally only when it is wholly below it; 0 until the archive state is known, so a
   * broker that cannot reach its store keeps every segment.
   */
  archivedEndOffset = 0;

  private constructor(dir: string, config: LogConfig, logger: Logger, files: FileHandleCache | undefined, segments: LogSegment[], epochs: LeaderEpochCache, highWatermark: number, producerConfig: ProducerStateConfig | undefined, delayConfig: DelayConfig | undefined) {
    this.dir = dir;
    this.delayConfig = delayConfig ?? DEFAULT_DELAY_CONFIG;
    this.files = files;
    this.cfg = config;
    this.logger = logger;
    this.segments = segments;
    this.endOffset = segments[segments.length - 1]!.nextOffset;
    // Whatever open() found is on disk: recovery fsynced what it scanned, a clean close flushed.
    this.flusher = new LogFlusher({ dir, logger, logEndOffset: () => this.endOffset, activeSegment: () => this.active, isDeleted: () => this.state === 'deleted' }, this.endOffset);
    this.readable = {
      dir,
      segments: () => this.segments,
      logEndOffset: () => this.endOffset,
      highWatermark: () => this.highWatermark,
      indexIntervalBytes: () => this.cfg.indexIntervalBytes,
      checkReadable: () => this.checkReadable(),
    };
    this.epochs = epochs;
    this.hw = highWatermark;
    this.hwCheckpointed = highWatermark;
    this.producers = new ProducerState(producerConfig);
  }

  /**
   * The files of an empty log at offset 0, exactly as open() would leave them: an empty first
   * segment, an empty leader epoch checkpoint and a high watermark of 0. LogManager writes them
   * (asynchronously, many partitions at once) into a new directory, so that opening it later
   * writes nothing and waits for no fsync. (An epoch entry at offset 0 would not do: open()
   * drops entries at or past the log end.)
   */
  static emptyLogFiles(): Array<{ name: string; bytes: Buffer }> {
    return emptyLogFiles();
  }

  /** Opens (or creates) the partition directory (log-loader.ts). Synchronous: it runs before the broker serves. */
  static open(dir: string, config: LogConfig, opts: PartitionLogOpenOptions): PartitionLog {
    const { segments, epochs, highWatermark } = loadPartitionLog(dir, config, opts);
    const log = new PartitionLog(dir, config, opts.logger, opts.files, segments, epochs, highWatermark, opts.producerState, opts.delay);
    if (opts.onFlushCycle) log.flusher.onCycle = opts.onFlushCycle;
    log.rebuildProducerState();
    log.rebuildDelays();
    opts.logger.debug('partition log opened', { dir, segments: segments.length, logStartOffset: log.logStartOffset, logEndOffset: log.logEndOffset, latestEpoch: epochs.latestEpoch(), highWatermark });
    return log;
  }

  get config(): LogConfig {
    return this.cfg;
  }

  /** New settings apply from the next append, roll, read or retention check. */
  setConfig(config: LogConfig): void {
    this.cfg = config;
    this.compactedAtEnd = -1; // delete.retention.ms or the lag may have changed
  }

  get logStartOffset(): number {
    return this.segments[0]!.baseOffset;
  }

  /** The next offset to assign. */
  get logEndOffset(): number {
    return this.endOffset;
  }

  /** The end of committed data: the log end unless `replicated` (see the top of this file). */
  get highWatermark(): number {
    return this.isReplicated ? this.hw : this.endOffset;
  }

  /** Whether the replica manager drives the high watermark of this log; off by default. */
  get replicated(): boolean {
    return this.isReplicated;
  }

  /**
   * On: the high watermark stays where it is (the checkpoint's value right after open, the
   * log end if appends happened while off) and moves only through updateHighWatermark.
   * Off: it is the log end again.
   */
  set replicated(on: boolean) {
    this.isReplicated = on;
    if (!on) this.hw = this.endOffset;
  }

  /**
   * Moves the high watermark forward to min(offset, logEndOffset); never back (only
   * truncation lowers it). Returns the high watermark. Without `replicated` it stays the log
   * end and this changes nothing.
   */
  updateHighWatermark(offset: number): number {
    if (!(Number.isSafeInteger(offset) && offset >= 0)) throw new Error(`high watermark ${offset} is not an offset`);
    if (this.isReplicated) this.hw = Math.max(this.hw, Math.min(offset, this.endOffset));
    this.invariant(this.hw <= this.endOffset, () => `high watermark ${this.hw} passed the log end ${this.endOffset}`);
    return this.highWatermark;
  }

  /** Latest leader epoch in the log's epoch cache, -1 when none. */
  latestEpoch(): number {
    return this.epochs.latestEpoch();
  }

  /** The OffsetsForLeaderEpoch answer from this log; see LeaderEpochCache.endOffsetFor. */
  endOffsetForEpoch(epoch: number): EpochEndOffset {
    return this.epochs.endOffsetFor(epoch, this.endOffset);
  }

  /** The epoch cache, oldest first (for diagnostics and tests). */
  epochEntries(): EpochEntry[] {
    return this.epochs.entries;
  }

  /** Every offset below this is covered by a completed fsync. */
  get flushedOffset(): number {
    return this.flusher.flushedOffset;
  }

  get sizeBytes(): number {
    let total = 0;
    for (const s of this.segments) total += s.sizeBytes;
    return total;
  }

  get segmentCount(): number {
    return this.segments.length;
  }

  /** fdatasync calls on segment files so far; tests use it to see group commit at work. */
  get fsyncCount(): number {
    return this.flusher.fsyncCount;
  }

  private get active(): LogSegment {
    return this.segments[this.segments.length - 1]!;
  }

  // ---------------------------------------------------------------- append path

  /**
   * Validates the record set (one or more batches), assigns offsets by rewriting each batch's
   * baseOffset in the caller's buffer (and its partitionLeaderEpoch, given a leaderEpoch),
   * rolls the active segment if needed and writes. All or nothing; throws SluiceError.
   */
  append(recordSet: Uint8Array, nowMs: number = Date.now(), opts: AppendOptions = {}): AppendResult {
    this.checkWritable();
    const leaderEpoch = opts.leaderEpoch ?? -1;
    if (opts.leaderEpoch !== undefined) this.checkLeaderEpoch(leaderEpoch);
    const set = validateAndAssignOffsets(recordSet, this.endOffset, this.cfg.maxMessageBytes, leaderEpoch);
    // Compaction keeps the latest record per key, so a keyless record has no meaning here (Kafka refuses it too).
    // Only now, after validation made the walk safe; the offsets and epochs written into recordSet are then moot.
    if (compacts(this.cfg.cleanupPolicy) && firstKeylessOffset(recordSet) >= 0) {
      throw new SluiceError(ErrorCode.CORRUPT_MESSAGE, 'compacted topics need a key on every record');
    }
    // Delayed delivery (SPEC §8.8): future batches become SCHEDULED wrappers taking the same
    // offsets. A record set without a delivery time costs this one branch.
    let toWrite = recordSet;
    let wrapped = 0;
    if (set.delayed !== null) {
      ({ records: toWrite, wrapped } = scheduleDelayed(recordSet, set.delayed, {
        nowMs,
        deliveryMaxMs: this.delayConfig.delayedDeliveryMsMax,
        frontierAtMs: this.delays.frontierAtMs,
        compacted: compacts(this.cfg.cleanupPolicy),
      }));
    }
    // The plain path (no idempotent producer) costs this one branch.
    let headers: BatchHeader[] | null = null;
    if (set.producerBatches > 0) {
      headers = producerHeaders(recordSet);
      const check = this.producers.checkLeaderAppend(headers, opts.origin ?? 'client');
      if (check.kind === 'duplicate') return { baseOffset: check.firstOffset, lastOffset: check.lastOffset, logAppendTimeMs: nowMs, duplicate: true };
      const verify = opts.verifyTxnStart;
      if (verify !== undefined && (opts.origin ?? 'client') === 'client') {
        for (const h of headers) {
          if ((h.attributes & ATTR_TRANSACTIONAL) !== 0 && (this.producers.get(h.producerId)?.txnFirstOffset ?? -1) < 0) verify(h.producerId, h.epoch);
        }
      }
    }
    const epochStarts = leaderEpoch >= 0 ? [{ epoch: leaderEpoch, startOffset: set.firstOffset }] : [];
    this.write(toWrite, set.lastOffset, nowMs, this.endOffset, epochStarts);
    if (toWrite !== recordSet) {
      // Producer state from the stored batches (a wrapper's timestamps are the leader's), as replicas rebuild it.
      if (headers !== null) headers = producerHeaders(toWrite);
      this.observeDelays(toWrite);
    }
    if (headers !== null) for (const h of headers) this.applyProducerBatch(h);
    if (wrapped > 0) return { baseOffset: set.firstOffset, lastOffset: set.lastOffset, logAppendTimeMs: nowMs, wrapped };
    return { baseOffset: set.firstOffset, lastOffset: set.lastOffset, logAppendTimeMs: nowMs };
  }

  /**
   * A follower's append of batches fetched from its leader: they keep the leader's offsets and
   * epochs, byte for byte. The first must start at or after logEndOffset (OFFSET_OUT_OF_RANGE
   * otherwise: truncate first); offsets may have gaps (compaction on the leader), and
   * logEndOffset becomes the last batch's last offset + 1. An epoch older than one that
   * already holds data in this log is refused (FENCED_LEADER_EPOCH: the log diverged and must
   * be truncated). All or nothing; throws SluiceError.
   */
  appendAsFollower(recordSet: Uint8Array, nowMs: number = Date.now()): FollowerAppendResult {
    this.checkWritable();
    const set = validateReplicatedRecordSet(recordSet, this.endOffset);
    const epochStarts: EpochEntry[] = [];
    const c = new BatchCursor();
    for (c.reset(recordSet); !c.done; c.advance()) {
      const epoch = c.partitionLeaderEpoch;
      if (epoch >= 0 && epoch !== epochStarts[epochStarts.length - 1]?.epoch) epochStarts.push({ epoch, startOffset: c.baseOffset });
    }
    // A new segment starts at the first batch, not at the log end: a gap before it must not
    // push its relative offsets past uint32.
    this.write(recordSet, set.lastOffset, nowMs, set.firstOffset, epochStarts);
    // The leader checked them; a follower only applies, in the same order (SPEC §7.7).
    if (set.producerBatches > 0) for (const h of producerHeaders(recordSet)) this.applyProducerBatch(h);
    if (set.controlBatches > 0) this.observeDelays(recordSet);
    return { firstOffset: set.firstOffset, lastOffset: set.lastOffset };
  }

  /**
   * The leader's append of batches it built for delayed delivery (SPEC §7.9): RELEASED /
   * CANCELLED markers and released batches, without a producer (producerId -1). Offsets are
   * assigned back to back (each batch takes lastOffsetDelta + 1), the leader epoch stamped;
   * one write, so a marker and its released batch are never apart. Returns the first offset.
   */
  appendDelayBatches(batches: readonly Uint8Array[], nowMs: number, leaderEpoch?: number): AppendResult {
    this.checkWritable();
    if (leaderEpoch !== undefined) this.checkLeaderEpoch(leaderEpoch);
    if (batches.length === 0) throw new Error('appendDelayBatches: no batches');
    let total = 0;
    for (const b of batches) total += b.length;
    const buf = Buffer.allocUnsafe(total);
    const firstOffset = this.endOffset;
    let offset = firstOffset;
    let pos = 0;
    for (const b of batches) {
      this.invariant(readInt64(b, Off.producerId) === NO_PRODUCER_ID, () => 'a delayed-delivery batch the broker builds has no producer');
      buf.set(b, pos);
      writeInt64(buf, pos + Off.baseOffset, offset);
      if (leaderEpoch !== undefined) writeInt32(buf, pos + Off.partitionLeaderEpoch, leaderEpoch);
      offset += readInt32(b, Off.lastOffsetDelta) + 1;
      pos += b.length;
    }
    const epochStarts = leaderEpoch !== undefined ? [{ epoch: leaderEpoch, startOffset: firstOffset }] : [];
    this.write(buf, offset - 1, nowMs, firstOffset, epochStarts);
    this.observeDelays(buf);
    return { baseOffset: firstOffset, lastOffset: offset - 1, logAppendTimeMs: nowMs };
  }

  /**
   * The SCHEDULED wrapper stored at exactly `offset` (its whole batch and where its producer
   * batch lies in it), or null when no wrapper starts there (SPEC §6.26: not a delayed message's id).
   */
  async readWrapper(offset: number): Promise<{ buf: Buffer; entry: ScheduledEntry } | null> {
    if (offset < this.logStartOffset || offset >= this.endOffset) return null;
    const r = await this.read(offset, 1, { maxOffset: this.endOffset });
    if (r.records.length < BATCH_HEADER_BYTES || readInt64(r.records, Off.baseOffset) !== offset) return null;
    const entry = readScheduled(r.records, 0);
    return entry === null ? null : { buf: r.records, entry };
  }

  /**
   * readWrapper, synchronously: the same answer from one small read on this thread (the
   * releaser's fast path; it falls back to readWrapper when these reads turn slow).
   */
  readWrapperSync(offset: number): { buf: Buffer; entry: ScheduledEntry } | null {
    if (offset < this.logStartOffset || offset >= this.endOffset) return null;
    const segs = this.segments;
    const seg = segs[segmentIndexFor(segs, offset)]!;
    const buf = seg.readBatchAtSync(offset, this.cfg.indexIntervalBytes + WRAPPER_READ_SLACK_BYTES);
    if (buf === null) return null;
    const entry = readScheduled(buf, 0);
    return entry === null ? null : { buf, entry };
  }

  /** The delayed-delivery control batches of a record set just written (into the active segment). */
  private observeDelays(b: Uint8Array): void {
    for (let pos = 0; pos < b.length; pos += batchSizeAt(b, pos)) {
      if (!isDelayControlAt(b, pos)) continue;
      this.delays.observeBatch(b, pos);
      this.activeDelays.note(b, pos);
    }
  }

  /** A segment's delayed-delivery content, by scanning it (headers, then those batches whole). */
  private scanSegmentDelays(seg: LogSegment): SegmentDelays {
    const sd = new SegmentDelays();
    seg.scanHeadersSync(0, (c) => {
      if (!isDelayControlAt(c.buf, c.at)) return true;
      if (!c.isWhole) (c as FileBatchCursor).seek(c.position, c.sizeBytes);
      sd.note(c.buf, c.at);
      return true;
    });
    return sd;
  }

  /**
   * Writes a segment's sidecar and returns the run over it; when the write fails, a run over
   * the keys in memory (the next open scans the segment again).
   */
  private writeSegmentDelays(seg: LogSegment, sd: SegmentDelays): SortedRun {
    try {
      sd.writeSync(seg.delaysPath, seg.baseOffset, seg.nextOffset);
      return SortedRun.ofFile(seg.baseOffset, seg.delaysPath, sd.scheduledCount);
    } catch (error) {
      this.logger.warn('could not write a segment delay index; its keys stay in memory, the next open scans the segment', { dir: this.dir, path: seg.delaysPath, error });
      return SortedRun.ofMemory(seg.baseOffset, sd.scheduledAt, sd.scheduledOffset);
    }
  }

  /**
   * Rebuilds the delay state (SPEC §7.9) from the closed segments' sidecar files (a missing or
   * damaged one is rebuilt by scanning its segment, and rewritten) and a scan of the active
   * segment. At open and after truncation.
   */
  private rebuildDelays(): void {
    const d = this.delays;
    d.clear();
    const segments = this.segments;
    for (let i = 0; i < segments.length; i++) {
      const seg = segments[i]!;
      let sd: SegmentDelays;
      if (i < segments.length - 1) {
        // The sidecar's keys stay on disk (a run read by chunks); its cancels and release are applied here.
        const onDisk = SegmentDelays.readSync(seg.delaysPath, seg.baseOffset, seg.nextOffset, false);
        if (onDisk !== null) {
          sd = onDisk;
          d.addRun(SortedRun.ofFile(seg.baseOffset, seg.delaysPath, onDisk.fileScheduledCount), seg.nextOffset);
        } else {
          sd = this.scanSegmentDelays(seg);
          d.addRun(this.writeSegmentDelays(seg, sd), seg.nextOffset);
        }
      } else {
        sd = this.scanSegmentDelays(seg);
        this.activeDelays = sd;
        for (let k = 0; k < sd.scheduledAt.length; k++) d.add(sd.scheduledAt[k]!, sd.scheduledOffset[k]!);
      }
      for (let k = 0; k < sd.cancelledAt.length; k++) d.cancel(sd.cancelledAt[k]!, sd.cancelledOffset[k]!);
      if (sd.releaseMarkerOffset >= 0) d.released(sd.releaseAtMs, sd.releaseOffset, sd.releaseMarkerOffset);
    }
    if (this.delays.pendingCount > 0 || this.delays.frontierOffset >= 0) {
      this.logger.debug('delayed messages loaded', { dir: this.dir, pending: this.delays.pendingCount, frontierDeliverAtMs: this.delays.frontierAtMs, frontierOffset: this.delays.frontierOffset });
    }
  }

  /**
   * For a broker that just became leader in `epoch`: records that the epoch starts at the log
   * end before anything is written in it (Kafka's maybeAssignEpochStartOffset), so that the
   * latest epoch and endOffsetForEpoch answer for it at once. Refused (FENCED_LEADER_EPOCH)
   * when older than the log's latest epoch; a no-op when it is the latest.
   */
  beginLeaderEpoch(epoch: number): void {
    this.checkWritable();
    this.checkLeaderEpoch(epoch);
    this.changeEpochCache(() => this.epochs.assign(epoch, this.endOffset));
  }

  private checkLeaderEpoch(epoch: number): void {
    if (!(Number.isInteger(epoch) && epoch >= 0 && epoch <= LEADER_EPOCH_MAX)) throw new Error(`leader epoch ${epoch} is not in 0..${LEADER_EPOCH_MAX}`);
    if (epoch < this.epochs.latestEpoch()) {
      throw new SluiceError(ErrorCode.FENCED_LEADER_EPOCH, `leader epoch ${epoch} is older than ${this.epochs.latestEpoch()}, the latest in ${path.basename(this.dir)}`);
    }
  }

  /**
   * The write shared by both appends: epoch cache first (persisted, write-ahead; see the top of
   * this file), then roll if needed (the new segment based at rollBaseOffset), then the bytes.
   * A failure after the cache changed puts the cache back.
   */
  private write(recordSet: Uint8Array, lastOffset: number, nowMs: number, rollBaseOffset: number, epochStarts: readonly EpochEntry[]): void {
    const epochsBefore = this.epochs.entries;
    const epochsChanged = epochStarts.length > 0 && this.changeEpochCache(() => epochStarts.reduce((changed, e) => this.epochs.assign(e.epoch, e.startOffset) || changed, false));
    try {
      if (this.shouldRoll(recordSet.length, lastOffset, nowMs)) this.roll(rollBaseOffset);
      const active = this.active;
      if (lastOffset - active.baseOffset > SEGMENT_OFFSETS_MAX) {
        throw new SluiceError(ErrorCode.STORAGE_ERROR, `offset ${lastOffset} does not fit segment ${active.baseOffset} (relative offsets are uint32)`);
      }
      active.append(recordSet, this.cfg.indexIntervalBytes, nowMs);
      this.flusher.markDirty(active);
    } catch (e) {
      this.offlineOnInvariant(e);
      if (epochsChanged) {
        this.epochs.restore(epochsBefore);
        try {
          this.epochs.persistSync();
        } catch {
          // The checkpoint keeps an entry past the log end; open() drops such entries.
        }
      }
      throw e;
    }
    // The validators guarantee it (lastOffset >= the first offset >= the log end); the log relies on it.
    this.invariant(lastOffset >= this.endOffset && lastOffset < this.active.nextOffset, () => `append ending at ${lastOffset} does not move the log end ${this.endOffset} to the active segment's end ${this.active.nextOffset}`);
    this.endOffset = lastOffset + 1;
    if (!this.isReplicated) this.hw = this.endOffset;
    this.flusher.noteAppend(nowMs);
    this.maybeFlush(nowMs);
  }

  /**
   * Applies `change` to the epoch cache and persists it when it reports a change; a change
   * that throws, or whose write fails, leaves the cache as it was. Returns whether it changed.
   */
  private changeEpochCache(change: () => boolean): boolean {
    const before = this.epochs.entries;
    try {
      if (!change()) return false;
      this.epochs.persistSync();
      return true;
    } catch (e) {
      this.epochs.restore(before);
      this.offlineOnInvariant(e);
      if (e instanceof SluiceError || e instanceof InvariantError) throw e;
      throw new SluiceError(ErrorCode.STORAGE_ERROR, `${this.epochs.path}: ${(e as Error).message}`);
    }
  }

  private shouldRoll(setBytes: number, lastOffset: number, nowMs: number): boolean {
    const active = this.active;
    // An empty segment takes any set, even one larger than segment.bytes: rolling would not help.
    if (active.sizeBytes === 0) return false;
    return active.sizeBytes + setBytes > this.cfg.segmentBytes || nowMs - active.createdMs > this.cfg.segmentMs || lastOffset - active.baseOffset > SEGMENT_OFFSETS_MAX
      // Bounds the active segment's in-memory delay entries (SPEC §7.9), and its tag index,
      // which lists every tagged and control batch (wrappers and release markers too, §7.8):
      // 28 bytes each, so a segment of a million releases would hold 28 MB per partition.
      || this.activeDelays.scheduledCount >= this.delayConfig.delayedEntriesPerSegmentMax
      || active.tagIndexEntries >= ACTIVE_TAG_INDEX_ENTRIES_MAX;
  }

  /** Starts a new active segment at baseOffset (>= logEndOffset); the old one is sealed by the next flush cycle. */
  private roll(baseOffset: number = this.endOffset): LogSegment {
    const old = this.active;
    // The sealed segment's delay index (SPEC §7.9): its keys leave memory for the sidecar file,
    // which the scheduler reads by chunks, and opening the log does not scan the segment.
    if (old.sizeBytes > 0) this.delays.addRun(this.writeSegmentDelays(old, this.activeDelays), old.nextOffset);
    this.activeDelays = new SegmentDelays();
    if (old.sizeBytes === 0) throw new Error(`${this.dir}: rolling an empty segment would reuse its base offset ${old.baseOffset}`);
    if (baseOffset < this.endOffset) throw new Error(`${this.dir}: a segment at ${baseOffset} would start below the log end ${this.endOffset}`);
    // The state as of the log end, so that recovery replays from here (SPEC §7.7).
    this.snapshotProducerState(false);
    const seg = LogSegment.create(this.dir, baseOffset, this.files);
    this.segments = [...this.segments, seg];
    // Sealed now rather than at the next scheduled flush: until then a crash could tear it.
    this.flusher.segmentRolled(old);
    this.logger.debug('rolled segment', { dir: this.dir, baseOffset: seg.baseOffset, previousBytes: old.sizeBytes });
    return seg;
  }

  // ---------------------------------------------------------------- producer state

  /** Applies one stored batch's header to the producer state; a marker that closed a transaction is passed on. */
  private applyProducerBatch(h: BatchHeader): void {
    const done = this.producers.apply(h);
    if (done !== null) this.onTxnCompleted(done);
  }

  /** A marker closed a transaction on this partition: an abort enters the aborted-transaction index. */
  private onTxnCompleted(txn: CompletedTxn): void {
    if (txn.committed) return;
    // apply() has closed this transaction already: what is still open bounds later aborts.
    const open = this.producers.firstUnstableOffset();
    const entry: IndexedAbort = { producerId: txn.producerId, firstOffset: txn.firstOffset, lastOffset: txn.lastOffset, openFloor: open >= 0 ? open : txn.lastOffset + 1 };
    this.aborted.push(entry);
    if (this.replaying) return;
    // Appends write into the active segment, so that is the marker's segment.
    try {
      appendTxnIndexSync(this.active.txnIndexPath, { producerId: entry.producerId, firstOffset: entry.firstOffset, lastOffset: entry.lastOffset });
    } catch (e) {
      // The marker is in the log; the next open rebuilds the index from it. Reads answer from memory.
      this.logger.warn('could not append to the aborted-transaction index; it is rebuilt at the next open', { dir: this.dir, error: e });
    }
  }

  /**
   * The last stable offset (SPEC §7.7): the first offset of the oldest open transaction, or
   * the high watermark when none is open; never above the high watermark.
   */
  get lastStableOffset(): number {
    const hw = this.highWatermark;
    const first = this.producers.firstUnstableOffset();
    return first >= 0 && first < hw ? first : hw;
  }

  /**
   * The aborted transactions a read_committed fetch of [fetchOffset, lastOffset] must report
   * (SPEC §6.7): marker at or after fetchOffset, first offset at or below lastOffset; oldest first.
   */
  abortedTransactions(fetchOffset: number, lastOffset: number): AbortedTxn[] {
    const list = this.aborted;
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (list[mid]!.lastOffset < fetchOffset) lo = mid + 1;
      else hi = mid;
    }
    const out: AbortedTxn[] = [];
    for (let i = lo; i < list.length; i++) {
      const a = list[i]!;
      if (a.firstOffset <= lastOffset) out.push({ producerId: a.producerId, firstOffset: a.firstOffset, lastOffset: a.lastOffset });
      // Every later abort began after this marker or was open at it (so at or after openFloor):
      // none can start at or below lastOffset any more. Bounds the walk for a reader far behind.
      if (a.openFloor > lastOffset) break;
    }
    return out;
  }

  /**
   * The leader's append of a transaction marker (SPEC §6.23, §8.6): TRANSACTION_COORDINATOR_FENCED
   * when a marker from a newer coordinatorEpoch was seen for this producer, INVALID_PRODUCER_EPOCH
   * when the epoch is older than the producer's; else a control batch stamped like any append,
   * which closes the producer's open transaction. Returns its offset.
   */
  appendControl(marker: TxnMarker, nowMs: number = Date.now(), leaderEpoch?: number): number {
    this.checkWritable();
    if (leaderEpoch !== undefined) this.checkLeaderEpoch(leaderEpoch);
    const e = this.producers.get(marker.producerId);
    if (e !== undefined && marker.coordinatorEpoch < e.coordinatorEpoch) {
      throw new SluiceError(ErrorCode.TRANSACTION_COORDINATOR_FENCED, `producer ${marker.producerId}: coordinator epoch ${marker.coordinatorEpoch} is older than ${e.coordinatorEpoch}, of a marker already written`);
    }
    if (e !== undefined && marker.producerEpoch < e.epoch) {
      throw new SluiceError(ErrorCode.INVALID_PRODUCER_EPOCH, `producer ${marker.producerId}: marker epoch ${marker.producerEpoch} is older than ${e.epoch}`);
    }
    const b = Buffer.from(buildControlBatch(marker, nowMs));
    const offset = this.endOffset;
    writeInt64(b, Off.baseOffset, offset);
    if (leaderEpoch !== undefined) writeInt32(b, Off.partitionLeaderEpoch, leaderEpoch);
    const epochStarts = leaderEpoch !== undefined ? [{ epoch: leaderEpoch, startOffset: offset }] : [];
    this.write(b, offset, nowMs, offset, epochStarts);
    this.applyProducerBatch(batchHeaderAt(b, 0));
    return offset;
  }

  /**
   * Rebuilds the producer state by replaying every producer batch of the log (headers only;
   * control batches read whole: one small record). At open and after truncation.
   */
  private rebuildProducerState(): void {
    this.producers.clear();
    this.aborted = [];
    this.snapshotOffset = -1;
    let from = 0;
    try {
      // A snapshot above the log end describes batches that are gone (truncation, a crash).
      deleteSnapshotsAbove(this.dir, this.endOffset);
      const snap = latestSnapshot(this.dir, this.endOffset, (file) => this.logger.warn('damaged producer state snapshot ignored; replaying the log instead', { dir: this.dir, file }));
      if (snap !== null) {
        this.producers.load(snap.entries);
        from = snap.offset;
        this.snapshotOffset = snap.offset;
      }
    } catch (error) {
      this.logger.warn('could not read the producer state snapshots; replaying the whole log', { dir: this.dir, error });
      this.producers.clear();
      from = 0;
    }
    // Aborts whose markers the snapshot covers come from the segments' indexes; the rest from the replay.
    if (from > 0) {
      for (const seg of this.segments) {
        try {
          // No floor is known for these (not in the file): 0 never stops a walk early.
          for (const e of readTxnIndexSync(seg.txnIndexPath)) if (e.lastOffset < from) this.aborted.push({ ...e, openFloor: 0 });
        } catch (error) {
          this.logger.warn('could not read an aborted-transaction index', { dir: this.dir, path: seg.txnIndexPath, error });
        }
      }
    }
    this.replaying = true;
    try {
      for (const seg of this.segments) if (seg.nextOffset > from) this.replaySegment(seg, 0, from);
    } finally {
      this.replaying = false;
    }
    this.reconcileTxnIndexes();
  }

  /**
   * Writes a producer state snapshot at the log end (at a roll and at close), even an empty
   * one: without any, the next open would scan every batch header of the log. Best effort: a
   * missing snapshot only makes the next open replay more. Durable (fsynced) only when asked
   * and there is state to lose; skipped when the log is empty or a snapshot at this offset exists.
   */
  private snapshotProducerState(durable: boolean): void {
    if (this.endOffset === this.logStartOffset || this.snapshotOffset === this.endOffset) return;
    try {
      writeSnapshotSync(this.dir, this.endOffset, this.producers.entries(), durable && this.producers.size > 0);
      this.snapshotOffset = this.endOffset;
    } catch (error) {
      this.logger.warn('could not write a producer state snapshot', { dir: this.dir, offset: this.endOffset, error });
    }
  }

  /** Makes every segment's .txnindex hold exactly the aborts found in it (rewrites only those that differ). */
  private reconcileTxnIndexes(): void {
    const segments = this.segments;
    let i = 0;
    for (let k = 0; k < segments.length; k++) {
      const seg = segments[k]!;
      const end = k + 1 < segments.length ? segments[k + 1]!.baseOffset : Infinity;
      const mine: AbortedTxn[] = [];
      while (i < this.aborted.length && this.aborted[i]!.lastOffset < end) mine.push(this.aborted[i++]!);
      try {
        const onDisk = readTxnIndexSync(seg.txnIndexPath);
        if (onDisk.length !== mine.length || onDisk.some((e, j) => e.producerId !== mine[j]!.producerId || e.firstOffset !== mine[j]!.firstOffset || e.lastOffset !== mine[j]!.lastOffset)) {
          writeTxnIndexSync(seg.txnIndexPath, mine);
        }
      } catch (error) {
        this.logger.warn('could not rewrite an aborted-transaction index; reads answer from memory', { dir: this.dir, path: seg.txnIndexPath, error });
      }
    }
  }

  /** Replays the producer batches of seg from file position `fromPosition`, skipping batches below fromOffset. */
  private replaySegment(seg: LogSegment, fromPosition: number, fromOffset = 0): void {
    seg.scanHeadersSync(fromPosition, (c) => {
      if (readInt64(c.buf, c.at + Off.producerId) === NO_PRODUCER_ID || c.baseOffset < fromOffset) return true;
      // A transaction marker's record is read (small); a delayed-delivery wrapper's never is.
      if (isControlAt(c.buf, c.at) && isTransactionalAt(c.buf, c.at) && !c.isWhole) (c as FileBatchCursor).seek(c.position, c.sizeBytes);
      this.applyProducerBatch(batchHeaderAt(c.buf, c.at));
      return true;
    });
  }

  /** Forgets idle producers (producerIdExpirationMs, SPEC §7.7); from the log manager's periodic checks. */
  expireProducers(nowMs: number): number {
    return this.producers.expire(nowMs);
  }

  // ---------------------------------------------------------------- read path

  /**
   * Whole batches from the one that contains fetchOffset, from a single segment, at most
   * maxBytes (the first batch always whole), below opts.maxOffset (default: the high
   * watermark); see readLog in log-reader.ts. OFFSET_OUT_OF_RANGE below logStartOffset or
   * above logEndOffset.
   */
  read(fetchOffset: number, maxBytes: number, opts: ReadOptions = {}): Promise<ReadResult> {
    if (opts.filter) return readLogFiltered(this.readable, fetchOffset, maxBytes, opts.maxOffset, opts.filter, opts.filterSeed);
    return readLog(this.readable, fetchOffset, maxBytes, opts);
  }

  /** For ListOffsets: the first record with timestamp >= timestampMs, or null when every record is older. */
  offsetForTimestamp(timestampMs: number): Promise<TimestampLookup | null> {
    return offsetForTimestamp(this.readable, timestampMs);
  }

  // ---------------------------------------------------------------- durability

  /**
   * Resolves once every segment written before the call is fsynced (and sealed ones indexed),
   * and, when replicated, the high watermark checkpointed.
   */
  flush(): Promise<void> {
    const segmentsDone = this.flusher.flush();
    return this.isReplicated ? segmentsDone.then(() => this.checkpointHighWatermark()) : segmentsDone;
  }

  /**
   * Writes `replication-offset-checkpoint` when the high watermark moved since the last write
   * (durably: temp file, fsync, rename). Writes run one at a time.
   */
  checkpointHighWatermark(): Promise<void> {
    const write = this.hwWrites.then(async () => {
      const hw = this.highWatermark;
      if (hw === this.hwCheckpointed || this.state === 'deleted') return;
      await writeCheckpoint(path.join(this.dir, HIGH_WATERMARK_CHECKPOINT_FILE), HIGH_WATERMARK_CHECKPOINT_VERSION, [[hw]]);
      this.hwCheckpointed = hw;
    });
    this.hwWrites = write.catch(() => undefined);
    return write;
  }

  /**
   * Resolves once the record at lastOffset is durable: the promise behind flush.before.ack.
   * Concurrent callers share fsyncs (group commit, see the top of this file).
   */
  waitForFlush(lastOffset: number): Promise<void> {
    return this.flusher.waitForFlush(lastOffset);
  }

  /**
   * The periodic policy, called by the scheduler (and after each append): start a flush when
   * flush.messages messages are unflushed or the oldest has waited flush.ms. Never waits.
   */
  maybeFlush(nowMs: number): void {
    if (this.failure || this.state === 'deleted' || this.state === 'closed') return;
    if (this.isReplicated && this.hw !== this.hwCheckpointed && nowMs - this.hwCheckpointedAtMs >= HIGH_WATERMARK_CHECKPOINT_INTERVAL_MS) {
      this.hwCheckpointedAtMs = nowMs;
      this.checkpointHighWatermark().catch((error: unknown) => this.logger.warn('high watermark checkpoint failed; retrying later', { dir: this.dir, error }));
    }
    this.flusher.maybeFlush(nowMs, this.cfg.flushMessages, this.cfg.flushMs);
  }

  // ---------------------------------------------------------------- truncation (replication)

  /**
   * Removes every batch at and after `offset`, for a follower whose log diverged from its
   * leader's. Whole batches: a batch that holds `offset` goes entirely, so the new log end is
   * the end of the last batch kept (<= offset; returned). Later segments are deleted, the one
   * holding the cut becomes the active segment and is cut and fsynced; the epoch cache drops
   * epochs that start at or after the new end, the high watermark is lowered to it. Refuses
   * an offset below logStartOffset (OFFSET_OUT_OF_RANGE). Nothing to remove (offset >= the log
   * end) is a no-op for the data, but the epoch cache still drops entries at or past the log
   * end (epochs begun here with no data). Waits for a running flush cycle and compaction first.
   */
  truncateTo(offset: number): Promise<number> {
    if (!(Number.isSafeInteger(offset) && offset >= 0)) return Promise.reject(new Error(`truncateTo(${offset}): not an offset`));
    return this.exclusively(() => {
      if (offset < this.logStartOffset) throw new SluiceError(ErrorCode.OFFSET_OUT_OF_RANGE, `cannot truncate ${path.basename(this.dir)} to ${offset}, below its log start offset ${this.logStartOffset}`);
      if (offset < this.endOffset) {
        this.cutSegments(offset);
        this.rebuildProducerState();
        this.rebuildDelays();
      }
      this.changeEpochCache(() => this.epochs.truncateFromEnd(this.endOffset));
      return this.endOffset;
    });
  }

  /**
   * For a replica too far behind its leader (its log end below the leader's log start):
   * deletes every segment and starts an empty log at `offset`, which becomes the log start,
   * log end and high watermark; the epoch cache is emptied. A crash part way leaves a prefix
   * of the old log or an empty log at 0; the fetcher then finds itself out of range again.
   */
  truncateFullyAndStartAt(offset: number): Promise<void> {
    if (!(Number.isSafeInteger(offset) && offset >= 0)) return Promise.reject(new Error(`truncateFullyAndStartAt(${offset}): not an offset`));
    return this.exclusively(() => {
      const old = this.segments;
      for (let i = old.length - 1; i >= 0; i--) old[i]!.deleteFiles();
      this.flusher.resetAt(offset);
      fsyncDirSync(this.dir);
      const seg = LogSegment.create(this.dir, offset, this.files);
      fsyncDirSync(this.dir);
      this.segments = [seg];
      this.activeDelays = new SegmentDelays();
      this.endOffset = offset;
      this.hw = offset;
      this.compactedAtEnd = -1;
      this.changeEpochCache(() => this.epochs.clear());
      this.producers.clear();
      this.delays.clear();
      this.aborted = [];
      deleteSnapshotsAbove(this.dir, -1);
      this.snapshotOffset = -1;
      this.logger.info('partition log emptied, restarting at a new offset', { dir: this.dir, logStartOffset: offset });
    });
  }

  /** Runs fn once no flush cycle or compaction runs, with compaction held off meanwhile (it would work from offsets fn removes). */
  private async exclusively<T>(fn: () => T): Promise<T> {
    this.checkWritable();
    this.truncating++;
    try {
      await this.compaction?.catch(() => undefined);
      // Checked and acted on in one go: no cycle can start between the check and fn.
      while (this.flusher.running) await this.flusher.running;
      this.checkWritable();
      return fn();
    } catch (e) {
      this.offlineOnInvariant(e);
      throw e;
    } finally {
      this.truncating--;
    }
  }

  /** The data part of truncateTo, for logStartOffset <= offset < logEndOffset. */
  private cutSegments(offset: number): void {
    const segments = this.segments;
    const k = segmentIndexFor(segments, offset);
    const seg = segments[k]!;
    // Newest first, and the directory fsynced before the cut: a crash leaves a shorter log, never a hole.
    for (let i = segments.length - 1; i > k; i--) {
      this.flusher.forget(segments[i]!);
      segments[i]!.deleteFiles();
    }
    // An active segment has no index files (see segment.ts); seg is about to be the active one.
    if (k < segments.length - 1) {
      seg.deleteIndexFilesSync();
      seg.deleteDelaysFileSync(); // it describes the whole segment; rebuilt at its next roll
    }
    fsyncDirSync(this.dir);
    this.segments = segments.slice(0, k + 1);
    seg.truncateTo(offset);
    const removedFrom = this.endOffset;
    this.endOffset = seg.nextOffset;
    this.invariant(this.endOffset <= offset, () => `truncation to ${offset} left the log end at ${this.endOffset}`);
    this.flusher.truncated(this.endOffset);
    this.hw = this.isReplicated ? Math.min(this.hw, this.endOffset) : this.endOffset;
    this.compactedAtEnd = -1;
    this.logger.info('truncated partition log', { dir: this.dir, requestedOffset: offset, logEndOffset: this.endOffset, previousLogEndOffset: removedFrom, segmentsDeleted: segments.length - 1 - k });
  }

  // ---------------------------------------------------------------- retention and lifecycle

  /**
   * Deletes whole segments from the start of the log: those whose newest record is older
   * than retention.ms, then the oldest while the rest still hold at least retention.bytes
   * (Kafka's rule: the log never drops below retention.bytes). If the active segment must go,
   * an empty one is rolled first so the log always has an active segment. Returns the number
   * of segments deleted.
   */
  applyRetention(nowMs: number): number {
    if (this.state !== 'open' || !deletes(this.cfg.cleanupPolicy)) return 0;
    const segments = this.segments;
    const active = this.active;
    // An empty active segment is the log's end: it always stays. Uncommitted data too (replication).
    const highWatermark = this.highWatermark;
    // A segment holding a pending delayed message stays, and so does every later one (SPEC §7.9).
    let pinned = highWatermark;
    try {
      pinned = Math.min(highWatermark, this.delays.minPendingOffset());
    } catch (error) {
      // The delay index could not be read: delete nothing rather than a pending message.
      this.logger.warn('could not read the delay index; retention skipped', { dir: this.dir, error });
      return 0;
    }
    // Tiered storage (SPEC §7.10): the local policy decides, and only what the archive has
    // committed may go (the segment's coverage ends where the next one starts); the active
    // segment is never archived, so it always stays.
    const archived = this.cfg.archiveEnable;
    const archivedEnd = this.archivedEndOffset;
    const retentionMs = archived ? effectiveLocalRetentionMs(this.cfg) : this.cfg.retentionMs;
    const retentionBytes = archived ? effectiveLocalRetentionBytes(this.cfg) : this.cfg.retentionBytes;
    const deletable = (i: number) => {
      const s = segments[i]!;
      if ((s === active && s.sizeBytes === 0) || s.nextOffset > pinned) return false;
      if (!archived) return true;
      const next = segments[i + 1];
      return next !== undefined && next.baseOffset <= archivedEnd;
    };
    let count = 0;
    if (retentionMs >= 0) {
      while (count < segments.length && deletable(count) && (segments[count]!.sizeBytes === 0 || nowMs - segments[count]!.largestTimestampMs > retentionMs)) count++;
    }
    if (retentionBytes >= 0) {
      let excessBytes = this.sizeBytes - retentionBytes;
      for (let i = 0; i < count; i++) excessBytes -= segments[i]!.sizeBytes;
      while (count < segments.length && deletable(count) && excessBytes - segments[count]!.sizeBytes >= 0) excessBytes -= segments[count++]!.sizeBytes;
    }
    if (count === 0) return 0;
    if (count === segments.length) this.roll();
    const doomed = this.segments.slice(0, count);
    this.segments = this.segments.slice(count);
    for (const seg of doomed) {
      this.flusher.forget(seg);
      seg.deleteFiles();
    }
    try {
      this.changeEpochCache(() => this.epochs.truncateFromStart(this.logStartOffset));
    } catch (error) {
      rethrowInvariant(error);
      // Entries below the log start are only stale; the next retention or open trims them.
      this.logger.warn('could not trim the leader epoch cache to the new log start', { dir: this.dir, error });
    }
    const start = this.logStartOffset;
    this.delays.dropRunsBelow(start);
    if (this.aborted.length > 0 && this.aborted[0]!.lastOffset < start) this.aborted = this.aborted.filter((a) => a.lastOffset >= start);
    try {
      deleteSnapshotsBelow(this.dir, start);
    } catch (error) {
      this.logger.warn('could not delete old producer state snapshots', { dir: this.dir, error });
    }
    this.logger.info('retention deleted segments', { dir: this.dir, segments: count, logStartOffset: this.logStartOffset });
    return count;
  }

  /**
   * Tiered storage: the sealed segments an archive uploader may take, oldest first. A segment
   * qualifies once it is not active, its data and indexes are on disk (not dirty), and it is
   * wholly below the high watermark; its lastOffset is the next segment's baseOffset - 1, so
   * the archive's coverage is contiguous (gaps from compaction or recovery included).
   * Also the bytes and count of qualifying segments at or past `fromOffset` (uploader lag).
   */
  archiveCandidates(fromOffset: number): ArchiveCandidate[] {
    const segments = this.segments;
    const hw = this.highWatermark;
    const out: ArchiveCandidate[] = [];
    for (let i = 0; i + 1 < segments.length; i++) {
      const seg = segments[i]!;
      const lastOffset = segments[i + 1]!.baseOffset - 1;
      if (lastOffset < fromOffset) continue;
      if (lastOffset >= hw || this.flusher.isDirty(seg) || lastOffset < seg.baseOffset) break;
      out.push({ segment: seg, baseOffset: seg.baseOffset, lastOffset, sizeBytes: seg.sizeBytes, largestTimestampMs: seg.largestTimestampMs, truncationCount: seg.truncationCount });
    }
    return out;
  }

  /** Bytes of the segments that start at or after offset (archive retention counts them once). */
  bytesFrom(offset: number): number {
    let n = 0;
    for (const s of this.segments) if (s.baseOffset >= offset) n += s.sizeBytes;
    return n;
  }

  /** Whether a candidate is still in the log, uncut (an upload in progress checks before it commits). */
  isCurrentSegment(c: ArchiveCandidate): boolean {
    return this.state === 'open' && this.segments.includes(c.segment) && c.segment.truncationCount === c.truncationCount && c.segment.isOpen;
  }

  /**
   * One compaction run (see log-cleaner.ts) when cleanup.policy includes compact; a no-op
   * otherwise, and a quick one when nothing was appended since the last complete run and no
   * tombstone or lag deadline passed. Joins the run in progress if there is one.
   */
  compact(nowMs: number = Date.now(), limits: CleanerLimits = {}): Promise<CompactionResult> {
    if (this.compaction) return this.compaction;
    if (this.state !== 'open' || this.failure || this.truncating > 0 || !compacts(this.cfg.cleanupPolicy)) return Promise.resolve(emptyCompactionResult());
    if (this.compactedAtEnd === this.endOffset && this.compactedAtHighWatermark === this.highWatermark && nowMs < this.compactAgainAtMs) return Promise.resolve(emptyCompactionResult());
    const endAtStart = this.endOffset;
    const highWatermarkAtStart = this.highWatermark;
    const run = cleanLog(this.cleanable(), nowMs, limits).then((result) => {
      this.compactedAtEnd = result.complete ? endAtStart : -1;
      this.compactedAtHighWatermark = highWatermarkAtStart;
      this.compactAgainAtMs = result.nextDueMs;
      return result;
    }, (e: unknown) => {
      this.offlineOnInvariant(e);
      throw e;
    });
    this.compaction = run;
    const done = () => {
      if (this.compaction === run) this.compaction = null;
    };
    run.then(done, done);
    return run;
  }

  /** The view of this log that the cleaner works through. */
  private cleanable(): CleanableLog {
    return {
      dir: this.dir,
      config: this.cfg,
      logger: this.logger,
      files: this.files,
      currentSegments: () => this.segments,
      isSealed: (seg) => !this.flusher.isDirty(seg) && seg !== this.active,
      // Below the last stable offset only: an open transaction's records are not decided yet.
      highWatermark: () => this.lastStableOffset,
      isAborted: (producerId, offset) => this.abortedTransactions(offset, offset).some((a) => a.producerId === producerId),
      stopping: () => this.state !== 'open' || this.failure !== null || this.truncating > 0,
      replaceSegment: (old, replacement) => this.replaceSegment(old, replacement),
    };
  }

  /** See CleanableLog.replaceSegment. The swap itself is synchronous, after any flush cycle ended. */
  private async replaceSegment(old: LogSegment, replacement: LogSegment): Promise<'replaced' | 'deleted' | null> {
    // A cycle in progress may be about to persist old's indexes; let it finish first.
    while (this.flusher.running) await this.flusher.running;
    const at = this.segments.indexOf(old);
    if (this.state !== 'open' || this.failure || this.truncating > 0 || at < 0 || old === this.active || this.flusher.isDirty(old)) return null;
    if (replacement.sizeBytes === 0 && at > 0) {
      // Nothing left, and not the segment that holds logStartOffset: drop it rather than keep an empty file.
      this.segments = this.segments.filter((s) => s !== old);
      old.deleteFiles();
      return 'deleted';
    }
    replacement.commitReplacement();
    this.segments = this.segments.map((s) => (s === old ? replacement : s));
    // Reads in flight on old finish on its fd, which still holds the old file.
    old.close();
    return 'replaced';
  }

  /** Flushes, persists the active segment's indexes and closes every file. */
  async close(): Promise<void> {
    if (this.state !== 'open') return;
    this.state = 'closing';
    try {
      // A compaction sees 'closing' at its next step and discards its work.
      await this.compaction?.catch(() => undefined);
      await this.flush();
      await this.flusher.running;
      // An empty active segment needs no index files (LogSegment.open loads an empty .log without them).
      if (this.active.sizeBytes > 0) this.active.persistIndexesSync();
      this.snapshotProducerState(true);
      await this.hwWrites;
      if (this.highWatermark !== this.hwCheckpointed) {
        writeCheckpointSync(path.join(this.dir, HIGH_WATERMARK_CHECKPOINT_FILE), HIGH_WATERMARK_CHECKPOINT_VERSION, [[this.highWatermark]]);
        this.hwCheckpointed = this.highWatermark;
      }
    } finally {
      // Even after a failed flush: the files are useless to this process now; recovery handles the rest.
      for (const seg of this.segments) seg.close();
      this.state = 'closed';
    }
  }

  /**
   * Closes without flushing and removes the directory. The state changes before the first
   * await, so nothing new starts. `movedTo`: the caller already renamed the directory there
   * (LogManager does, so that a new topic of the same name can take the old name at once);
   * and this removes nothing: `dir` may by now be another log's (null: nothing to remove).
   */
  async delete(movedTo?: string | null): Promise<void> {
    this.state = 'deleted';
    await this.compaction?.catch(() => undefined);
    await this.flusher.running;
    await this.hwWrites;
    for (const seg of this.segments) seg.close();
    if (movedTo === undefined) fs.rmSync(this.dir, { recursive: true, force: true });
  }

  // ---------------------------------------------------------------- helpers

  /** The fsync failure or breached invariant that took this log offline for writes; null while healthy. */
  private get failure(): Error | null {
    return this.flusher.failure;
  }

  /**
   * Asserts an invariant of this log. A breach takes the log offline for writes (like an fsync
   * failure) and throws InvariantError; see server/assert.ts for why.
   */
  private invariant(condition: boolean, message: () => string): void {
    if (condition) return;
    const e = new InvariantError(`${this.dir}: ${message()}`);
    this.offlineOnInvariant(e);
    throw e;
  }

  /**
   * For the catch blocks of the write paths (append, truncation, epoch changes, compaction):
   * an InvariantError from below (the batch cursor, the epoch cache) takes this log offline
   * too. The caller rethrows; anything else passes through untouched.
   */
  private offlineOnInvariant(e: unknown): void {
    if (!(e instanceof InvariantError) || this.failure === e) return;
    this.flusher.fail(e);
    this.logger.error('invariant breached; the partition refuses writes until the broker restarts', { dir: this.dir, error: e });
  }

  private checkWritable(): void {
    this.checkReadable();
    if (this.state !== 'open') throw new SluiceError(ErrorCode.BROKER_SHUTTING_DOWN, `${this.dir} is closing`);
    if (this.failure) throw this.storageError();
  }

  private checkReadable(): void {
    if (this.state === 'deleted') throw new SluiceError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `${this.dir} was deleted`);
    if (this.state === 'closed') throw new SluiceError(ErrorCode.BROKER_SHUTTING_DOWN, `${this.dir} is closed`);
  }

  private storageError(): SluiceError {
    return this.flusher.storageError();
  }
}
