/**
 * PartitionLog: the log of one partition, a directory of segments. This is the file to follow
 * for the append path (validate, assign offsets, roll, write) and the read path (index lookup,
 * one read, cut at whole batches), and for when data becomes durable.
 *
 * Invariants:
 * - segments is sorted by base offset and never empty; the last one is the active segment,
 *   the only one appended to. The array is replaced, never mutated, so a read that is
 *   awaiting I/O keeps a consistent view.
 * - logStartOffset is the first segment's base offset (retention deletes whole segments);
 *   logEndOffset is the next offset to assign: offsets are contiguous, except where recovery
 *   dropped a corrupt batch (reads then continue at the next intact batch).
 * - A segment that is not active was fsynced, and then its indexes persisted, by the flush
 *   cycle that followed its roll; until then it stays in `dirty`.
 * - Group commit: at most one flush cycle runs at a time. A cycle fdatasyncs every segment
 *   written before it started, then resolves every waiter it covers. A waiter arriving
 *   while a cycle runs waits for that cycle when its offset was written before the cycle
 *   started, otherwise for the next one, which all such waiters share.
 * - After an fsync failure the log refuses appends and flushes (STORAGE_ERROR) until the
 *   broker restarts and recovers it: after a failed fsync the page cache may have dropped the
 *   dirty pages, so retrying and reporting success could lie.
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
 *   below the high watermark, and compaction only cleans below it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ErrorCode, SluiceError } from '../../protocol/errors.ts';
import { BATCH_HEADER_BYTES, baseOffsetAt, batchSizeAt, decodeRecords, lastOffsetAt, maxTimestampAt, Off, readInt32 } from '../../protocol/record-batch.ts';
import type { Logger } from '../logger.ts';
import { encodeCheckpoint, readCheckpointSync, writeCheckpoint, writeCheckpointSync } from './checkpoint-file.ts';
import { fsyncDir, fsyncDirSync, TMP_SUFFIX, unlinkIfExistsSync } from './durable-file.ts';
import { LEADER_EPOCH_CHECKPOINT_FILE, LEADER_EPOCH_CHECKPOINT_VERSION, LEADER_EPOCH_MAX, LeaderEpochCache, type EpochEndOffset, type EpochEntry } from './leader-epoch-cache.ts';
import { cleanLog, emptyCompactionResult, firstKeylessOffset, type CleanableLog, type CleanerLimits, type CompactionResult } from './log-cleaner.ts';
import { compacts, deletes, type LogConfig } from './log-config.ts';
import { validateAndAssignOffsets, validateReplicatedRecordSet } from './log-validator.ts';
import type { FileHandleCache } from './file-handle-cache.ts';
import { RECOVERING_SUFFIX } from './recovery.ts';
import { CLEANED_SUFFIX, INDEX_SUFFIX, LOG_SUFFIX, LogSegment, segmentFileName, TIME_INDEX_SUFFIX } from './segment.ts';

/** Relative offsets are uint32 in both indexes. */
const SEGMENT_OFFSETS_MAX = 0xffff_ffff;
/** Bytes read at a time when scanning batch headers for a timestamp. */
const TIMESTAMP_SCAN_CHUNK_BYTES = 64 * 1024;
/** A batch header through lastOffsetDelta: enough to know where a batch ends and its last offset. */
const HEADER_TO_LAST_OFFSET_BYTES = Off.lastOffsetDelta + 4;
const SEGMENT_FILE = /^(\d{20})\.log$/;
const EMPTY = Buffer.alloc(0);
/** A read retries this often when compaction, retention or truncation swapped its segments while it waited. */
const READ_RETRIES_MAX = 3;
export const HIGH_WATERMARK_CHECKPOINT_FILE = 'replication-offset-checkpoint';
const HIGH_WATERMARK_CHECKPOINT_VERSION = 0;
/** maybeFlush persists a moved high watermark at most this often (Kafka's replica.high.watermark.checkpoint.interval.ms). */
export const HIGH_WATERMARK_CHECKPOINT_INTERVAL_MS = 5000;

export interface PartitionLogOpenOptions {
  /** False after a crash: the active segment (and any without usable indexes) is scanned and repaired. */
  cleanShutdown: boolean;
  logger: Logger;
  nowMs?: number;
  /** The fd cache of the segment files (the LogManager's); default: one shared by every caller that passes none. */
  files?: FileHandleCache;
}

export interface AppendOptions {
  /**
   * The leader's epoch, 0..2^31-1: stamped into every batch's partitionLeaderEpoch and
   * recorded in the epoch cache. Refused (FENCED_LEADER_EPOCH) when older than the latest
   * epoch of the log. Omitted: batches keep the producer's value (-1) and the cache is untouched.
   */
  leaderEpoch?: number;
}

export interface FollowerAppendResult {
  /** Base offset of the first batch, as the leader assigned it. */
  firstOffset: number;
  lastOffset: number;
}

export interface ReadOptions {
  /**
   * Only batches whose last offset is below this are returned. Default: the high watermark
   * (what consumers may see); a replica fetching for itself passes logEndOffset (or Infinity).
   */
  maxOffset?: number;
}

export interface AppendResult {
  baseOffset: number;
  lastOffset: number;
  /** The broker's clock when the batches were written. */
  logAppendTimeMs: number;
}

export interface ReadResult {
  /** Whole batches, byte for byte as stored; empty at the log end. */
  records: Buffer;
  highWatermark: number;
  logStartOffset: number;
}

export interface TimestampLookup {
  offset: number;
  /** ms since epoch, of the record at `offset`. */
  timestamp: number;
}

interface FlushWaiter {
  cycle: number;
  resolve(): void;
  reject(e: Error): void;
}

type State = 'open' | 'closing' | 'closed' | 'deleted';

export class PartitionLog {
  readonly dir: string;
  private cfg: LogConfig;
  private readonly logger: Logger;
  private readonly files: FileHandleCache | undefined;
  private segments: readonly LogSegment[];
  private endOffset: number;
  private state: State = 'open';
  private failure: Error | null = null;

  // Flushing (group commit) state.
  private flushedEnd: number;
  private firstUnflushedAppendMs = -1;
  private readonly dirty = new Set<LogSegment>();
  private dirNeedsSync = false;
  private flushCyclesStarted = 0;
  private flushCyclesDone = 0;
  private flushCycleTargetEnd = 0;
  private flushRequested = false;
  private flushWaiters: FlushWaiter[] = [];
  private flushLoop: Promise<void> | null = null;
  private fsyncs = 0;

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

  private constructor(dir: string, config: LogConfig, logger: Logger, files: FileHandleCache | undefined, segments: LogSegment[], epochs: LeaderEpochCache, highWatermark: number) {
    this.dir = dir;
    this.files = files;
    this.cfg = config;
    this.logger = logger;
    this.segments = segments;
    this.endOffset = segments[segments.length - 1]!.nextOffset;
    // Whatever open() found is on disk: recovery fsynced what it scanned, a clean close flushed.
    this.flushedEnd = this.endOffset;
    this.epochs = epochs;
    this.hw = highWatermark;
    this.hwCheckpointed = highWatermark;
  }

  /**
   * The files of an empty log at offset 0, exactly as open() would leave them: an empty first
   * segment, an empty leader epoch checkpoint and a high watermark of 0. LogManager writes them
   * (asynchronously, many partitions at once) into a new directory, so that opening it later
   * writes nothing and waits for no fsync. (An epoch entry at offset 0 would not do: open()
   * drops entries at or past the log end.)
   */
  static emptyLogFiles(): Array<{ name: string; bytes: Buffer }> {
    return [
      { name: segmentFileName(0, LOG_SUFFIX), bytes: Buffer.alloc(0) },
      { name: LEADER_EPOCH_CHECKPOINT_FILE, bytes: encodeCheckpoint(LEADER_EPOCH_CHECKPOINT_VERSION, []) },
      { name: HIGH_WATERMARK_CHECKPOINT_FILE, bytes: encodeCheckpoint(HIGH_WATERMARK_CHECKPOINT_VERSION, [[0]]) },
    ];
  }

  /** Opens (or creates) the partition directory. Synchronous: it runs before the broker serves. */
  static open(dir: string, config: LogConfig, opts: PartitionLogOpenOptions): PartitionLog {
    const nowMs = opts.nowMs ?? Date.now();
    // Whether this open changed the directory's entries, and so must fsync it. Opening a
    // directory left as open() leaves it (or as emptyLogFiles() made it) costs no fsync.
    let dirChanged = fs.mkdirSync(dir, { recursive: true }) !== undefined;
    const names = fs.readdirSync(dir);
    const bases: number[] = [];
    for (const name of names) {
      const m = SEGMENT_FILE.exec(name);
      if (m) bases.push(Number(m[1]));
      // Leftovers of an interrupted atomic write or recovery rewrite: the original is intact.
      else if (name.endsWith(TMP_SUFFIX) || name.endsWith(RECOVERING_SUFFIX) || name.endsWith(CLEANED_SUFFIX)) dirChanged = unlinkIfExistsSync(path.join(dir, name)) || dirChanged;
    }
    bases.sort((a, b) => a - b);
    const baseSet = new Set(bases);
    for (const name of names) {
      // Index files whose .log is gone (a delete interrupted half way) would confuse a future segment.
      const suffix = name.endsWith(INDEX_SUFFIX) ? INDEX_SUFFIX : name.endsWith(TIME_INDEX_SUFFIX) ? TIME_INDEX_SUFFIX : '';
      if (suffix && !baseSet.has(Number(name.slice(0, -suffix.length)))) dirChanged = unlinkIfExistsSync(path.join(dir, name)) || dirChanged;
    }
    const segments: LogSegment[] = [];
    for (let i = 0; i < bases.length; i++) {
      const recover = !opts.cleanShutdown && i === bases.length - 1;
      const seg = LogSegment.open(dir, bases[i]!, { recover, indexIntervalBytes: config.indexIntervalBytes, nowMs, logger: opts.logger, files: opts.files });
      const prev = segments[segments.length - 1];
      if (prev && prev.nextOffset > seg.baseOffset) {
        for (const s of [...segments, seg]) s.close();
        throw new SluiceError(ErrorCode.STORAGE_ERROR, `${dir}: segment ${seg.baseOffset} overlaps the previous one, which ends at ${prev.nextOffset - 1}`);
      }
      segments.push(seg);
    }
    if (segments.length === 0) {
      segments.push(LogSegment.create(dir, 0, opts.files));
      dirChanged = true;
    }
    // A rebuilt sealed segment was fsynced by recovery, so its indexes may go to disk now.
    for (let i = 0; i < segments.length - 1; i++) if (segments[i]!.recovered) segments[i]!.persistIndexesSync();
    // The active segment's index files would go stale with its next append; see segment.ts.
    if (segments[segments.length - 1]!.deleteIndexFilesSync()) dirChanged = true;
    if (dirChanged) fsyncDirSync(dir);
    let epochs: LeaderEpochCache;
    let highWatermark: number;
    try {
      epochs = PartitionLog.openEpochCache(dir, segments, opts.logger);
      highWatermark = PartitionLog.openHighWatermark(dir, segments, opts.logger);
    } catch (e) {
      for (const s of segments) s.close();
      throw e;
    }
    const log = new PartitionLog(dir, config, opts.logger, opts.files, segments, epochs, highWatermark);
    opts.logger.debug('partition log opened', { dir, segments: segments.length, logStartOffset: log.logStartOffset, logEndOffset: log.logEndOffset, latestEpoch: epochs.latestEpoch(), highWatermark });
    return log;
  }

  /**
   * The checkpoint if it is usable, else the cache rebuilt from the batch headers of every
   * segment; then trimmed to the log as it is (a crash may have left entries past its end, see
   * leader-epoch-cache.ts) and persisted if anything changed.
   */
  private static openEpochCache(dir: string, segments: readonly LogSegment[], logger: Logger): LeaderEpochCache {
    const loaded = LeaderEpochCache.load(dir);
    let cache = loaded.cache;
    let changed = false;
    if (!cache) {
      if (loaded.problem !== 'missing') logger.warn('leader epoch checkpoint unusable, rebuilding it from the log', { dir, problem: loaded.problem });
      cache = new LeaderEpochCache(dir);
      for (const seg of segments) {
        seg.scanHeadersSync(0, (h, at) => {
          const epoch = readInt32(h, at + Off.partitionLeaderEpoch);
          if (epoch >= 0 && epoch < cache!.latestEpoch()) logger.warn('leader epochs go backwards in the log; the later batches win', { dir, offset: baseOffsetAt(h, at), epoch });
          cache!.assign(epoch, baseOffsetAt(h, at), 'repair');
          return true;
        });
      }
      changed = true; // written even when empty, so the next open does not scan again
    }
    const endOffset = segments[segments.length - 1]!.nextOffset;
    if (cache.truncateFromEnd(endOffset)) changed = true;
    if (cache.truncateFromStart(segments[0]!.baseOffset)) changed = true;
    if (changed) cache.persistSync();
    return cache;
  }

  /**
   * The checkpointed high watermark clamped into [logStartOffset, logEndOffset]. Missing: the
   * log end (a new log is empty; a log from before replication holds only committed data),
   * written at once so that a crash later finds it. Damaged: the log start, the safe side.
   */
  private static openHighWatermark(dir: string, segments: readonly LogSegment[], logger: Logger): number {
    const file = path.join(dir, HIGH_WATERMARK_CHECKPOINT_FILE);
    const startOffset = segments[0]!.baseOffset;
    const endOffset = segments[segments.length - 1]!.nextOffset;
    const read = readCheckpointSync(file, HIGH_WATERMARK_CHECKPOINT_VERSION, 1);
    if (read.kind === 'ok' && read.entries.length === 1) return Math.max(startOffset, Math.min(read.entries[0]![0]!, endOffset));
    const hw = read.kind === 'missing' ? endOffset : startOffset;
    if (read.kind !== 'missing') logger.warn('high watermark checkpoint unusable; starting from the log start offset', { dir, problem: read.kind === 'corrupt' ? read.problem : 'not one entry' });
    writeCheckpointSync(file, HIGH_WATERMARK_CHECKPOINT_VERSION, [[hw]]);
    return hw;
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
    return this.flushedEnd;
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
    return this.fsyncs;
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
    const epochStarts = leaderEpoch >= 0 ? [{ epoch: leaderEpoch, startOffset: set.firstOffset }] : [];
    this.write(recordSet, set.lastOffset, nowMs, this.endOffset, epochStarts);
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
    for (let p = 0; p < recordSet.length; p += batchSizeAt(recordSet, p)) {
      const epoch = readInt32(recordSet, p + Off.partitionLeaderEpoch);
      if (epoch >= 0 && epoch !== epochStarts[epochStarts.length - 1]?.epoch) epochStarts.push({ epoch, startOffset: baseOffsetAt(recordSet, p) });
    }
    // A new segment starts at the first batch, not at the log end: a gap before it must not
    // push its relative offsets past uint32.
    this.write(recordSet, set.lastOffset, nowMs, set.firstOffset, epochStarts);
    return { firstOffset: set.firstOffset, lastOffset: set.lastOffset };
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
      this.dirty.add(active);
    } catch (e) {
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
    this.endOffset = lastOffset + 1;
    if (!this.isReplicated) this.hw = this.endOffset;
    if (this.firstUnflushedAppendMs < 0) this.firstUnflushedAppendMs = nowMs;
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
      if (e instanceof SluiceError) throw e;
      throw new SluiceError(ErrorCode.STORAGE_ERROR, `${this.epochs.path}: ${(e as Error).message}`);
    }
  }

  private shouldRoll(setBytes: number, lastOffset: number, nowMs: number): boolean {
    const active = this.active;
    // An empty segment takes any set, even one larger than segment.bytes: rolling would not help.
    if (active.sizeBytes === 0) return false;
    return active.sizeBytes + setBytes > this.cfg.segmentBytes || nowMs - active.createdMs > this.cfg.segmentMs || lastOffset - active.baseOffset > SEGMENT_OFFSETS_MAX;
  }

  /** Starts a new active segment at baseOffset (>= logEndOffset); the old one is sealed by the next flush cycle. */
  private roll(baseOffset: number = this.endOffset): LogSegment {
    const old = this.active;
    if (old.sizeBytes === 0) throw new Error(`${this.dir}: rolling an empty segment would reuse its base offset ${old.baseOffset}`);
    if (baseOffset < this.endOffset) throw new Error(`${this.dir}: a segment at ${baseOffset} would start below the log end ${this.endOffset}`);
    const seg = LogSegment.create(this.dir, baseOffset, this.files);
    this.segments = [...this.segments, seg];
    this.dirty.add(old);
    this.dirNeedsSync = true;
    // Seal now rather than at the next scheduled flush: until then a crash could tear it.
    this.requestFlush();
    this.logger.debug('rolled segment', { dir: this.dir, baseOffset: seg.baseOffset, previousBytes: old.sizeBytes });
    return seg;
  }

  // ---------------------------------------------------------------- read path

  /**
   * Whole batches from the one that contains fetchOffset (the first whose last offset is
   * >= fetchOffset), from a single segment, at most maxBytes, except that the first batch is
   * always returned whole so a consumer can progress past a batch larger than maxBytes.
   * Only batches whose last offset is below opts.maxOffset (default: the high watermark);
   * a batch that straddles it is not returned. Empty at or past maxOffset, and at the log end;
   * OFFSET_OUT_OF_RANGE below logStartOffset or above logEndOffset.
   */
  async read(fetchOffset: number, maxBytes: number, opts: ReadOptions = {}): Promise<ReadResult> {
    for (let attempt = 0; ; attempt++) {
      this.checkReadable();
      const segments = this.segments;
      if (fetchOffset < segments[0]!.baseOffset || fetchOffset > this.endOffset) throw this.outOfRange(fetchOffset);
      const maxOffset = Math.min(opts.maxOffset ?? this.highWatermark, this.endOffset);
      if (fetchOffset >= maxOffset) break;
      let swapped = false;
      for (let i = this.segmentIndexFor(segments, fetchOffset); i < segments.length && segments[i]!.baseOffset < maxOffset && !swapped; i++) {
        const records = await this.readFromSegment(segments[i]!, fetchOffset, Math.max(0, maxBytes), maxOffset);
        if (records === null) {
          // The segment was closed or cut while this read waited: the log closed, retention deleted
          // it, compaction replaced it, or truncation removed or cut it. The current segments array
          // has the answer, if any (truncation always replaces the array).
          this.checkReadable();
          if (this.segments === segments || attempt >= READ_RETRIES_MAX) throw this.outOfRange(fetchOffset);
          swapped = true;
        } else if (records.length > 0) {
          return { records, highWatermark: this.highWatermark, logStartOffset: this.logStartOffset };
        }
        // Nothing at or after fetchOffset here (a gap left by recovery or compaction), or only
        // batches at or past maxOffset: the loop condition stops at a segment that starts there.
      }
      if (!swapped) break;
    }
    return { records: EMPTY, highWatermark: this.highWatermark, logStartOffset: this.logStartOffset };
  }

  /** Batches of seg from fetchOffset below maxOffset; null when seg was closed or cut while this read waited. */
  private async readFromSegment(seg: LogSegment, fetchOffset: number, maxBytes: number, maxOffset: number): Promise<Buffer | null> {
    // Only whole batches lie below this size, even while appends continue (but not across a truncation).
    const endPosition = seg.sizeBytes;
    const truncations = seg.truncationCount;
    let position = seg.offsetIndex.lookup(fetchOffset).position;
    // One read usually covers the batches between the index entry and fetchOffset plus the answer.
    const chunkBytes = maxBytes + this.cfg.indexIntervalBytes + BATCH_HEADER_BYTES;
    for (;;) {
      if (position >= endPosition) return EMPTY;
      const buf = await seg.read(position, Math.min(chunkBytes, endPosition - position));
      if (!buf || seg.truncationCount !== truncations) return null;
      let p = 0;
      while (p + HEADER_TO_LAST_OFFSET_BYTES <= buf.length && lastOffsetAt(buf, p) < fetchOffset) p += this.storedBatchSize(seg, buf, p, position);
      if (p + HEADER_TO_LAST_OFFSET_BYTES > buf.length) {
        position += p; // skipped everything in this chunk; buf holds at least one whole batch, so p > 0
        continue;
      }
      const firstEnd = p + this.storedBatchSize(seg, buf, p, position);
      const moreOnDisk = position + buf.length < endPosition;
      if (firstEnd > buf.length || (moreOnDisk && buf.length - p < maxBytes)) {
        // The skipped prefix ate into the chunk: read again from the batch we want.
        position += p;
        const again = await seg.read(position, Math.min(Math.max(firstEnd - p, maxBytes), endPosition - position));
        if (!again || seg.truncationCount !== truncations) return null;
        return this.cutAtWholeBatches(seg, again, 0, maxBytes, position, maxOffset);
      }
      return this.cutAtWholeBatches(seg, buf, p, maxBytes, position, maxOffset);
    }
  }

  /**
   * buf[start, end) where end is the last batch boundary within maxBytes and before the first
   * batch that reaches maxOffset; the first batch is always whole (and empty when it reaches maxOffset).
   */
  private cutAtWholeBatches(seg: LogSegment, buf: Buffer, start: number, maxBytes: number, bufPosition: number, maxOffset: number): Buffer {
    if (lastOffsetAt(buf, start) >= maxOffset) return EMPTY;
    let end = start + this.storedBatchSize(seg, buf, start, bufPosition);
    while (end + HEADER_TO_LAST_OFFSET_BYTES <= buf.length) {
      const next = end + this.storedBatchSize(seg, buf, end, bufPosition);
      if (next > buf.length || next - start > maxBytes || lastOffsetAt(buf, end) >= maxOffset) break;
      end = next;
    }
    return buf.subarray(start, end);
  }

  /** A batch size read from disk; a size that could loop forever or mislead means corruption. */
  private storedBatchSize(seg: LogSegment, buf: Buffer, p: number, bufPosition: number): number {
    const size = batchSizeAt(buf, p);
    if (size < BATCH_HEADER_BYTES) throw new SluiceError(ErrorCode.STORAGE_ERROR, `${seg.logPath}: batch at ${bufPosition + p} claims ${size} bytes`);
    return size;
  }

  /**
   * For ListOffsets: the first record with timestamp >= timestampMs, or null when every record
   * is older. The time index narrows the scan; one batch is then decoded.
   */
  async offsetForTimestamp(timestampMs: number): Promise<TimestampLookup | null> {
    for (let attempt = 0; ; attempt++) {
      this.checkReadable();
      const segments = this.segments;
      let swapped = false;
      for (const seg of segments) {
        if (seg.largestTimestampMs < timestampMs) continue;
        const found = await this.scanSegmentForTimestamp(seg, timestampMs);
        // undefined: the segment was closed while the scan waited (see read()); start over on the new array.
        if (found === undefined) {
          this.checkReadable();
          swapped = this.segments !== segments && attempt < READ_RETRIES_MAX;
          if (swapped) break;
          continue;
        }
        if (found) return found;
      }
      if (!swapped) return null;
    }
  }

  /** The first record at or after timestampMs in seg; null when none, undefined when seg was closed meanwhile. */
  private async scanSegmentForTimestamp(seg: LogSegment, timestampMs: number): Promise<TimestampLookup | null | undefined> {
    const endPosition = seg.sizeBytes;
    const truncations = seg.truncationCount;
    let position = seg.offsetIndex.lookup(seg.timeIndex.lookup(timestampMs)).position;
    while (position < endPosition) {
      const buf = await seg.read(position, Math.min(TIMESTAMP_SCAN_CHUNK_BYTES, endPosition - position));
      if (!buf || seg.truncationCount !== truncations) return undefined;
      let p = 0;
      while (p + BATCH_HEADER_BYTES <= buf.length) {
        const size = this.storedBatchSize(seg, buf, p, position);
        if (maxTimestampAt(buf, p) >= timestampMs) {
          const batch = p + size <= buf.length ? buf.subarray(p, p + size) : await seg.read(position + p, size);
          if (!batch || seg.truncationCount !== truncations) return undefined;
          for (const r of decodeRecords(batch, 0)) if (r.timestamp >= timestampMs) return { offset: r.offset, timestamp: r.timestamp };
        }
        p += size;
      }
      position += p;
    }
    return null;
  }

  // ---------------------------------------------------------------- durability

  /**
   * Resolves once every segment written before the call is fsynced (and sealed ones indexed),
   * and, when replicated, the high watermark checkpointed.
   */
  flush(): Promise<void> {
    if (this.failure) return Promise.reject(this.storageError());
    const running = this.flushCyclesStarted > this.flushCyclesDone;
    const nothingNew = this.dirty.size === 0 && !this.dirNeedsSync;
    const segmentsDone = nothingNew && !running ? Promise.resolve() : this.enqueueFlushWaiter(running && nothingNew ? this.flushCyclesStarted : this.flushCyclesStarted + 1);
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
    if (lastOffset < this.flushedEnd) return Promise.resolve();
    if (this.failure) return Promise.reject(this.storageError());
    if (lastOffset >= this.endOffset) return Promise.reject(new Error(`waitForFlush(${lastOffset}): not appended yet, log end is ${this.endOffset}`));
    const running = this.flushCyclesStarted > this.flushCyclesDone;
    const cycle = running && lastOffset < this.flushCycleTargetEnd ? this.flushCyclesStarted : this.flushCyclesStarted + 1;
    return this.enqueueFlushWaiter(cycle);
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
    const unflushedMessages = this.endOffset - this.flushedEnd;
    if (unflushedMessages <= 0) return;
    if (unflushedMessages >= this.cfg.flushMessages || nowMs - this.firstUnflushedAppendMs >= this.cfg.flushMs) this.requestFlush();
  }

  private requestFlush(): void {
    this.flushRequested = true;
    this.flushLoop ??= this.runFlushCycles();
  }

  private enqueueFlushWaiter(cycle: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.flushWaiters.push({ cycle, resolve, reject });
      this.flushLoop ??= this.runFlushCycles();
    });
  }

  /** Runs flush cycles back to back while anyone waits for one. Never rejects. */
  private async runFlushCycles(): Promise<void> {
    // Let the caller finish its synchronous work (e.g. more appends of the same request) first.
    await Promise.resolve();
    while ((this.flushRequested || this.flushWaiters.length > 0) && !this.failure) {
      this.flushRequested = false;
      const cycle = ++this.flushCyclesStarted;
      const targetEnd = this.endOffset;
      this.flushCycleTargetEnd = targetEnd;
      const cycleStartMs = Date.now();
      const segments = [...this.dirty];
      this.dirty.clear();
      const active = this.active;
      const syncDir = this.dirNeedsSync;
      this.dirNeedsSync = false;
      let error: Error | null = null;
      try {
        for (const seg of segments) {
          await seg.flush();
          this.fsyncs++;
        }
        if (syncDir && this.state !== 'deleted') await fsyncDir(this.dir);
        // Index files only after the .log is durable: their presence vouches for it. Not once
        // deleted: they are written by path, and the path may now be a new topic's directory.
        for (const seg of segments) if (seg !== active && seg.isOpen && this.state !== 'deleted') await seg.persistIndexes();
      } catch (e) {
        error = e as Error;
      }
      this.flushCyclesDone = cycle;
      if (error) {
        this.failure = error;
        this.logger.error('fsync failed; the partition refuses writes until the broker restarts', { dir: this.dir, error });
      } else {
        this.flushedEnd = Math.max(this.flushedEnd, targetEnd);
        this.firstUnflushedAppendMs = this.endOffset > this.flushedEnd ? cycleStartMs : -1;
      }
      const waiters = this.flushWaiters;
      this.flushWaiters = [];
      for (const w of waiters) {
        if (error) w.reject(this.storageError());
        else if (w.cycle <= cycle) w.resolve();
        else this.flushWaiters.push(w);
      }
    }
    for (const w of this.flushWaiters.splice(0)) w.reject(this.storageError());
    this.flushLoop = null;
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
      if (offset < this.endOffset) this.cutSegments(offset);
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
      this.dirty.clear();
      fsyncDirSync(this.dir);
      const seg = LogSegment.create(this.dir, offset, this.files);
      fsyncDirSync(this.dir);
      this.segments = [seg];
      this.endOffset = offset;
      this.flushedEnd = offset;
      this.firstUnflushedAppendMs = -1;
      this.dirNeedsSync = false;
      this.hw = offset;
      this.compactedAtEnd = -1;
      this.changeEpochCache(() => this.epochs.clear());
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
      while (this.flushLoop) await this.flushLoop;
      this.checkWritable();
      return fn();
    } finally {
      this.truncating--;
    }
  }

  /** The data part of truncateTo, for logStartOffset <= offset < logEndOffset. */
  private cutSegments(offset: number): void {
    const segments = this.segments;
    const k = this.segmentIndexFor(segments, offset);
    const seg = segments[k]!;
    // Newest first, and the directory fsynced before the cut: a crash leaves a shorter log, never a hole.
    for (let i = segments.length - 1; i > k; i--) {
      this.dirty.delete(segments[i]!);
      segments[i]!.deleteFiles();
    }
    // An active segment has no index files (see segment.ts); seg is about to be the active one.
    if (k < segments.length - 1) seg.deleteIndexFilesSync();
    fsyncDirSync(this.dir);
    this.segments = segments.slice(0, k + 1);
    seg.truncateTo(offset);
    const removedFrom = this.endOffset;
    this.endOffset = seg.nextOffset;
    this.flushedEnd = Math.min(this.flushedEnd, this.endOffset);
    if (this.flushedEnd >= this.endOffset) this.firstUnflushedAppendMs = -1;
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
    const deletable = (s: LogSegment) => !(s === active && s.sizeBytes === 0) && s.nextOffset <= highWatermark;
    let count = 0;
    if (this.cfg.retentionMs >= 0) {
      while (count < segments.length && deletable(segments[count]!) && (segments[count]!.sizeBytes === 0 || nowMs - segments[count]!.largestTimestampMs > this.cfg.retentionMs)) count++;
    }
    if (this.cfg.retentionBytes >= 0) {
      let excessBytes = this.sizeBytes - this.cfg.retentionBytes;
      for (let i = 0; i < count; i++) excessBytes -= segments[i]!.sizeBytes;
      while (count < segments.length && deletable(segments[count]!) && excessBytes - segments[count]!.sizeBytes >= 0) excessBytes -= segments[count++]!.sizeBytes;
    }
    if (count === 0) return 0;
    if (count === segments.length) this.roll();
    const doomed = this.segments.slice(0, count);
    this.segments = this.segments.slice(count);
    for (const seg of doomed) {
      this.dirty.delete(seg);
      seg.deleteFiles();
    }
    try {
      this.changeEpochCache(() => this.epochs.truncateFromStart(this.logStartOffset));
    } catch (error) {
      // Entries below the log start are only stale; the next retention or open trims them.
      this.logger.warn('could not trim the leader epoch cache to the new log start', { dir: this.dir, error });
    }
    this.logger.info('retention deleted segments', { dir: this.dir, segments: count, logStartOffset: this.logStartOffset });
    return count;
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
      isSealed: (seg) => !this.dirty.has(seg) && seg !== this.active,
      highWatermark: () => this.highWatermark,
      stopping: () => this.state !== 'open' || this.failure !== null || this.truncating > 0,
      replaceSegment: (old, replacement) => this.replaceSegment(old, replacement),
    };
  }

  /** See CleanableLog.replaceSegment. The swap itself is synchronous, after any flush cycle ended. */
  private async replaceSegment(old: LogSegment, replacement: LogSegment): Promise<'replaced' | 'deleted' | null> {
    // A cycle in progress may be about to persist old's indexes; let it finish first.
    while (this.flushLoop) await this.flushLoop;
    const at = this.segments.indexOf(old);
    if (this.state !== 'open' || this.failure || this.truncating > 0 || at < 0 || old === this.active || this.dirty.has(old)) return null;
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
      await this.flushLoop;
      // An empty active segment needs no index files (LogSegment.open loads an empty .log without them).
      if (this.active.sizeBytes > 0) this.active.persistIndexesSync();
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
    await this.flushLoop;
    await this.hwWrites;
    for (const seg of this.segments) seg.close();
    if (movedTo === undefined) fs.rmSync(this.dir, { recursive: true, force: true });
  }

  // ---------------------------------------------------------------- helpers

  private segmentIndexFor(segments: readonly LogSegment[], offset: number): number {
    let lo = 0;
    let hi = segments.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (segments[mid]!.baseOffset <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo;
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

  private outOfRange(fetchOffset: number): SluiceError {
    return new SluiceError(ErrorCode.OFFSET_OUT_OF_RANGE, `offset ${fetchOffset} is outside [${this.logStartOffset}, ${this.endOffset}] of ${path.basename(this.dir)}`);
  }

  private storageError(): SluiceError {
    return new SluiceError(ErrorCode.STORAGE_ERROR, `${this.dir}: ${this.failure?.message ?? 'flush failed'}`);
  }
}
