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
 */
import fs from 'node:fs';
import path from 'node:path';
import { ErrorCode, SluiceError } from '../../protocol/errors.ts';
import { BATCH_HEADER_BYTES, BATCH_LOG_OVERHEAD, batchSizeAt, decodeRecords, lastOffsetAt, maxTimestampAt, Off } from '../../protocol/record-batch.ts';
import type { Logger } from '../logger.ts';
import { fsyncDir, fsyncDirSync, TMP_SUFFIX, unlinkIfExistsSync } from './durable-file.ts';
import { cleanLog, emptyCompactionResult, firstKeylessOffset, type CleanableLog, type CleanerLimits, type CompactionResult } from './log-cleaner.ts';
import { compacts, deletes, type LogConfig } from './log-config.ts';
import { validateAndAssignOffsets } from './log-validator.ts';
import { RECOVERING_SUFFIX } from './recovery.ts';
import { CLEANED_SUFFIX, INDEX_SUFFIX, LOG_SUFFIX, LogSegment, TIME_INDEX_SUFFIX } from './segment.ts';

/** Relative offsets are uint32 in both indexes. */
const SEGMENT_OFFSETS_MAX = 0xffff_ffff;
/** Bytes read at a time when scanning batch headers for a timestamp. */
const TIMESTAMP_SCAN_CHUNK_BYTES = 64 * 1024;
/** A batch header through lastOffsetDelta: enough to know where a batch ends and its last offset. */
const HEADER_TO_LAST_OFFSET_BYTES = Off.lastOffsetDelta + 4;
const SEGMENT_FILE = /^(\d{20})\.log$/;
const EMPTY = Buffer.alloc(0);
/** A read retries this often when compaction or retention swapped its segments while it waited. */
const READ_RETRIES_MAX = 3;

export interface PartitionLogOpenOptions {
  /** False after a crash: the active segment (and any without usable indexes) is scanned and repaired. */
  cleanShutdown: boolean;
  logger: Logger;
  nowMs?: number;
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

  // Compaction state: the running run, and when another one could find work without appends.
  private compaction: Promise<CompactionResult> | null = null;
  private compactedAtEnd = -1;
  private compactAgainAtMs = Infinity;

  private constructor(dir: string, config: LogConfig, logger: Logger, segments: LogSegment[]) {
    this.dir = dir;
    this.cfg = config;
    this.logger = logger;
    this.segments = segments;
    this.endOffset = segments[segments.length - 1]!.nextOffset;
    // Whatever open() found is on disk: recovery fsynced what it scanned, a clean close flushed.
    this.flushedEnd = this.endOffset;
  }

  /** Opens (or creates) the partition directory. Synchronous: it runs before the broker serves. */
  static open(dir: string, config: LogConfig, opts: PartitionLogOpenOptions): PartitionLog {
    const nowMs = opts.nowMs ?? Date.now();
    fs.mkdirSync(dir, { recursive: true });
    const names = fs.readdirSync(dir);
    const bases: number[] = [];
    for (const name of names) {
      const m = SEGMENT_FILE.exec(name);
      if (m) bases.push(Number(m[1]));
      // Leftovers of an interrupted atomic write or recovery rewrite: the original is intact.
      else if (name.endsWith(TMP_SUFFIX) || name.endsWith(RECOVERING_SUFFIX) || name.endsWith(CLEANED_SUFFIX)) unlinkIfExistsSync(path.join(dir, name));
    }
    bases.sort((a, b) => a - b);
    const baseSet = new Set(bases);
    for (const name of names) {
      // Index files whose .log is gone (a delete interrupted half way) would confuse a future segment.
      const suffix = name.endsWith(INDEX_SUFFIX) ? INDEX_SUFFIX : name.endsWith(TIME_INDEX_SUFFIX) ? TIME_INDEX_SUFFIX : '';
      if (suffix && !baseSet.has(Number(name.slice(0, -suffix.length)))) unlinkIfExistsSync(path.join(dir, name));
    }
    const segments: LogSegment[] = [];
    for (let i = 0; i < bases.length; i++) {
      const recover = !opts.cleanShutdown && i === bases.length - 1;
      const seg = LogSegment.open(dir, bases[i]!, { recover, indexIntervalBytes: config.indexIntervalBytes, nowMs, logger: opts.logger });
      const prev = segments[segments.length - 1];
      if (prev && prev.nextOffset > seg.baseOffset) {
        for (const s of [...segments, seg]) s.close();
        throw new SluiceError(ErrorCode.STORAGE_ERROR, `${dir}: segment ${seg.baseOffset} overlaps the previous one, which ends at ${prev.nextOffset - 1}`);
      }
      segments.push(seg);
    }
    if (segments.length === 0) segments.push(LogSegment.create(dir, 0));
    // A rebuilt sealed segment was fsynced by recovery, so its indexes may go to disk now.
    for (let i = 0; i < segments.length - 1; i++) if (segments[i]!.recovered) segments[i]!.persistIndexesSync();
    // The active segment's index files would go stale with its next append; see segment.ts.
    segments[segments.length - 1]!.deleteIndexFilesSync();
    fsyncDirSync(dir);
    const log = new PartitionLog(dir, config, opts.logger, segments);
    opts.logger.debug('partition log opened', { dir, segments: segments.length, logStartOffset: log.logStartOffset, logEndOffset: log.logEndOffset });
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

  /** Single broker, no replication: everything appended is committed. */
  get highWatermark(): number {
    return this.endOffset;
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
   * baseOffset in the caller's buffer, rolls the active segment if needed and writes.
   * All or nothing; throws SluiceError.
   */
  append(recordSet: Uint8Array, nowMs: number = Date.now()): AppendResult {
    this.checkWritable();
    const set = validateAndAssignOffsets(recordSet, this.endOffset, this.cfg.maxMessageBytes);
    // Compaction keeps the latest record per key, so a keyless record has no meaning here (Kafka refuses it too).
    // Only now, after validation made the walk safe; the baseOffsets written into recordSet are then moot.
    if (compacts(this.cfg.cleanupPolicy) && firstKeylessOffset(recordSet) >= 0) {
      throw new SluiceError(ErrorCode.CORRUPT_MESSAGE, 'compacted topics need a key on every record');
    }
    if (this.shouldRoll(recordSet.length, set.lastOffset, nowMs)) this.roll();
    const active = this.active;
    active.append(recordSet, this.cfg.indexIntervalBytes, nowMs);
    this.endOffset = set.lastOffset + 1;
    this.dirty.add(active);
    if (this.firstUnflushedAppendMs < 0) this.firstUnflushedAppendMs = nowMs;
    this.maybeFlush(nowMs);
    return { baseOffset: set.firstOffset, lastOffset: set.lastOffset, logAppendTimeMs: nowMs };
  }

  private shouldRoll(setBytes: number, lastOffset: number, nowMs: number): boolean {
    const active = this.active;
    // An empty segment takes any set, even one larger than segment.bytes: rolling would not help.
    if (active.sizeBytes === 0) return false;
    return active.sizeBytes + setBytes > this.cfg.segmentBytes || nowMs - active.createdMs > this.cfg.segmentMs || lastOffset - active.baseOffset > SEGMENT_OFFSETS_MAX;
  }

  /** Starts a new active segment at logEndOffset; the old one is sealed by the next flush cycle. */
  private roll(): LogSegment {
    const old = this.active;
    if (old.sizeBytes === 0) throw new Error(`${this.dir}: rolling an empty segment would reuse its base offset ${old.baseOffset}`);
    const seg = LogSegment.create(this.dir, this.endOffset);
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
   * Empty at the log end; OFFSET_OUT_OF_RANGE below logStartOffset or above logEndOffset.
   */
  async read(fetchOffset: number, maxBytes: number): Promise<ReadResult> {
    for (let attempt = 0; ; attempt++) {
      this.checkReadable();
      const segments = this.segments;
      if (fetchOffset < segments[0]!.baseOffset || fetchOffset > this.endOffset) throw this.outOfRange(fetchOffset);
      if (fetchOffset === this.endOffset) break;
      let swapped = false;
      for (let i = this.segmentIndexFor(segments, fetchOffset); i < segments.length && !swapped; i++) {
        const records = await this.readFromSegment(segments[i]!, fetchOffset, Math.max(0, maxBytes));
        if (records === null) {
          // The segment was closed while this read waited: the log closed, retention deleted it,
          // or compaction replaced it. The current segments array has the answer, if any.
          this.checkReadable();
          if (this.segments === segments || attempt >= READ_RETRIES_MAX) throw this.outOfRange(fetchOffset);
          swapped = true;
        } else if (records.length > 0) {
          return { records, highWatermark: this.endOffset, logStartOffset: this.logStartOffset };
        }
        // Nothing at or after fetchOffset here (a gap left by recovery or compaction): the next segment has it.
      }
      if (!swapped) break;
    }
    return { records: EMPTY, highWatermark: this.endOffset, logStartOffset: this.logStartOffset };
  }

  private async readFromSegment(seg: LogSegment, fetchOffset: number, maxBytes: number): Promise<Buffer | null> {
    // Only whole batches lie below this size, even while appends continue.
    const endPosition = seg.sizeBytes;
    let position = seg.offsetIndex.lookup(fetchOffset).position;
    // One read usually covers the batches between the index entry and fetchOffset plus the answer.
    const chunkBytes = maxBytes + this.cfg.indexIntervalBytes + BATCH_HEADER_BYTES;
    for (;;) {
      if (position >= endPosition) return EMPTY;
      const buf = await seg.read(position, Math.min(chunkBytes, endPosition - position));
      if (!buf) return null;
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
        if (!again) return null;
        return this.cutAtWholeBatches(seg, again, 0, maxBytes, position);
      }
      return this.cutAtWholeBatches(seg, buf, p, maxBytes, position);
    }
  }

  /** buf[start, end) where end is the last batch boundary within maxBytes; the first batch is always whole. */
  private cutAtWholeBatches(seg: LogSegment, buf: Buffer, start: number, maxBytes: number, bufPosition: number): Buffer {
    let end = start + this.storedBatchSize(seg, buf, start, bufPosition);
    while (end + BATCH_LOG_OVERHEAD <= buf.length) {
      const next = end + this.storedBatchSize(seg, buf, end, bufPosition);
      if (next > buf.length || next - start > maxBytes) break;
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
    let position = seg.offsetIndex.lookup(seg.timeIndex.lookup(timestampMs)).position;
    while (position < endPosition) {
      const buf = await seg.read(position, Math.min(TIMESTAMP_SCAN_CHUNK_BYTES, endPosition - position));
      if (!buf) return undefined;
      let p = 0;
      while (p + BATCH_HEADER_BYTES <= buf.length) {
        const size = this.storedBatchSize(seg, buf, p, position);
        if (maxTimestampAt(buf, p) >= timestampMs) {
          const batch = p + size <= buf.length ? buf.subarray(p, p + size) : await seg.read(position + p, size);
          if (!batch) return undefined;
          for (const r of decodeRecords(batch, 0)) if (r.timestamp >= timestampMs) return { offset: r.offset, timestamp: r.timestamp };
        }
        p += size;
      }
      position += p;
    }
    return null;
  }

  // ---------------------------------------------------------------- durability

  /** Resolves once every segment written before the call is fsynced (and sealed ones indexed). */
  flush(): Promise<void> {
    if (this.failure) return Promise.reject(this.storageError());
    const running = this.flushCyclesStarted > this.flushCyclesDone;
    const nothingNew = this.dirty.size === 0 && !this.dirNeedsSync;
    if (nothingNew && !running) return Promise.resolve();
    return this.enqueueFlushWaiter(running && nothingNew ? this.flushCyclesStarted : this.flushCyclesStarted + 1);
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
        if (syncDir) await fsyncDir(this.dir);
        // Index files only after the .log is durable: their presence vouches for it.
        for (const seg of segments) if (seg !== active && seg.isOpen) await seg.persistIndexes();
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
    // An empty active segment is the log's end: it always stays.
    const deletable = (s: LogSegment) => !(s === active && s.sizeBytes === 0);
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
    if (this.state !== 'open' || this.failure || !compacts(this.cfg.cleanupPolicy)) return Promise.resolve(emptyCompactionResult());
    if (this.compactedAtEnd === this.endOffset && nowMs < this.compactAgainAtMs) return Promise.resolve(emptyCompactionResult());
    const endAtStart = this.endOffset;
    const run = cleanLog(this.cleanable(), nowMs, limits).then((result) => {
      this.compactedAtEnd = result.complete ? endAtStart : -1;
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
      currentSegments: () => this.segments,
      isSealed: (seg) => !this.dirty.has(seg) && seg !== this.active,
      stopping: () => this.state !== 'open' || this.failure !== null,
      replaceSegment: (old, replacement) => this.replaceSegment(old, replacement),
    };
  }

  /** See CleanableLog.replaceSegment. The swap itself is synchronous, after any flush cycle ended. */
  private async replaceSegment(old: LogSegment, replacement: LogSegment): Promise<'replaced' | 'deleted' | null> {
    // A cycle in progress may be about to persist old's indexes; let it finish first.
    while (this.flushLoop) await this.flushLoop;
    const at = this.segments.indexOf(old);
    if (this.state !== 'open' || this.failure || at < 0 || old === this.active || this.dirty.has(old)) return null;
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
      this.active.persistIndexesSync();
    } finally {
      // Even after a failed flush: the files are useless to this process now; recovery handles the rest.
      for (const seg of this.segments) seg.close();
      this.state = 'closed';
    }
  }

  /** Closes without flushing and removes the directory. */
  async delete(): Promise<void> {
    this.state = 'deleted';
    await this.compaction?.catch(() => undefined);
    await this.flushLoop;
    for (const seg of this.segments) seg.close();
    fs.rmSync(this.dir, { recursive: true, force: true });
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
