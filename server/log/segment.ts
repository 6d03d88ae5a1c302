/**
 * LogSegment: one contiguous slice of a partition's log. A segment is
 * `<baseOffset, 20 digits zero-padded>.log` plus its `.index` (offset -> position) and
 * `.timeindex` (timestamp -> offset).
 *
 * Invariants:
 * - The .log holds whole, validated batches with increasing base offsets, all >= baseOffset.
 *   Offsets are contiguous except where recovery dropped a corrupt batch.
 * - Appends are synchronous (io.writeSync, log-io.ts) on purpose: sizeBytes, the readable size, only
 *   advances after the write returned, so a reader that stops at sizeBytes never sees half a
 *   batch. A failed write is cut back off the file before the error is thrown.
 * - Index entries are added after the bytes they point at are written.
 * - Index files on disk are trusted only for sealed segments: they are written after the .log
 *   was fsynced (or at clean close), and a segment that becomes active deletes them, so after a
 *   crash a missing index file marks a segment that needs a recovery scan.
 * - The .log's fd comes from the LogManager's FileHandleCache (file-handle-cache.ts): opened
 *   on demand and closed when the cache needs room, so a broker's fd count does not grow with
 *   its partitions. Every use pins it (synchronous ones for their duration, a read or fsync
 *   across its await), and a pinned fd is never closed, so a retention delete during a fetch
 *   cannot make that fetch read another file through a reused descriptor.
 * - Not safe for concurrent appends; PartitionLog is the only writer.
 * - Truncation (replication: a follower cutting back a divergent tail) removes whole batches
 *   from the end, fsyncs, and bumps truncationCount. A read that awaited I/O across a
 *   truncation may have read bytes that were cut or rewritten since; it compares the count
 *   before and after and throws its bytes away when it changed (see log-reader.ts).
 * - The tag index (`.tags`, tag-index.ts) follows the other indexes (persisted and deleted with
 *   them) but is loaded lazily: a sealed segment loads or rebuilds it at the first filtered
 *   fetch that reaches it, so unfiltered consumers and untagged topics never pay for it. A
 *   segment about to be appended to, cut or have its index files deleted loads it first, so
 *   the in-memory index always describes the whole .log. A recovery scan removes a stale file.
 * - Compaction writes a replacement beside the live file (`<name>.log.cleaned`, see
 *   createReplacement). Its indexes stay in memory until commitReplacement has renamed it over
 *   the live .log; the live index files are removed before that rename, so a crash at any
 *   point leaves the old or the new .log, either without indexes (rebuilt by a scan at open)
 *   or with indexes that describe it. Leftover `.cleaned` files are garbage the loader
 *   (log-loader.ts) deletes.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ErrorCode, SluiceError } from '../../protocol/errors.ts';
import { BATCH_HEADER_BYTES } from '../../protocol/record-batch.ts';
import { BatchCursor, FileBatchCursor } from './batch-cursor.ts';
import type { Logger } from '../logger.ts';
import { fsyncDirSync, unlinkIfExistsSync } from './durable-file.ts';
import { io } from './log-io.ts';
import { FileHandleCache, type CachedFile } from './file-handle-cache.ts';
import { OffsetIndex } from './offset-index.ts';
import { recoverSegmentFile } from './recovery.ts';
import { TimeIndex } from './time-index.ts';
import { TXN_INDEX_SUFFIX } from './txn-index.ts';
import { sealedTagIndexes, TAG_INDEX_SUFFIX, TagIndex, type TagIndexHolder } from './tag-index.ts';
import { DELAYS_SUFFIX } from '../delay/segment-delays.ts';

export const LOG_SUFFIX = '.log';
export const INDEX_SUFFIX = '.index';
export const TIME_INDEX_SUFFIX = '.timeindex';
/** A compacted copy of a segment's .log being written; see createReplacement. */
export const CLEANED_SUFFIX = '.cleaned';
/** Positions are uint32 in the offset index. */
export const SEGMENT_BYTES_MAX = 0xffff_ffff;
/** Bytes read at a time by scanHeadersSync; a batch larger than this costs one read per header. */
const HEADER_SCAN_CHUNK_BYTES = 64 * 1024;
/** Bytes read at a time when rebuilding a tag index from the .log. */
const TAG_REBUILD_CHUNK_BYTES = 1024 * 1024;

export function segmentFileName(baseOffset: number, suffix: string): string {
  return String(baseOffset).padStart(20, '0') + suffix;
}

export interface SegmentOpenOptions {
  /** Scan and repair the .log and rebuild the indexes instead of loading them. */
  recover: boolean;
  indexIntervalBytes: number;
  nowMs: number;
  logger: Logger;
  /** Where the segment's fd lives; default: a cache shared by every caller that passes none. */
  files?: FileHandleCache;
}

/** For callers without a LogManager (tests, tools). */
const sharedFiles = new FileHandleCache();

export class LogSegment implements TagIndexHolder {
  readonly baseOffset: number;
  private readonly dir: string;
  private path: string;
  private offsetIdx: OffsetIndex;
  private timeIdx: TimeIndex;
  private file: CachedFile;
  private size = 0;
  private next: number;
  private largestTimestamp = -1;
  private offsetOfLargestTimestamp = -1;
  private created = -1;
  private bytesSinceIndexEntry = 0;
  private wasRecovered = false;
  private truncations = 0;
  private closeRequested = false;
  /** null until loaded or rebuilt (see the top); then the truth, kept up to date by append and truncateTo. */
  private tagIdx: TagIndex | null = null;

  private constructor(dir: string, baseOffset: number, file: CachedFile) {
    this.baseOffset = baseOffset;
    this.dir = dir;
    this.next = baseOffset;
    this.path = path.join(dir, segmentFileName(baseOffset, LOG_SUFFIX));
    this.offsetIdx = new OffsetIndex(path.join(dir, segmentFileName(baseOffset, INDEX_SUFFIX)), baseOffset);
    this.timeIdx = new TimeIndex(path.join(dir, segmentFileName(baseOffset, TIME_INDEX_SUFFIX)), baseOffset);
    this.file = file;
  }

  /** A new, empty segment. The file must not exist yet. */
  static create(dir: string, baseOffset: number, files: FileHandleCache = sharedFiles): LogSegment {
    const logPath = path.join(dir, segmentFileName(baseOffset, LOG_SUFFIX));
    const seg = new LogSegment(dir, baseOffset, files.file(logPath, fs.openSync(logPath, 'wx+')));
    seg.tagIdx = new TagIndex(seg.tagIndexPath, baseOffset);
    return seg;
  }

  /** An existing segment: indexes loaded, or rebuilt by a recovery scan when asked or when they fail their check. */
  static open(dir: string, baseOffset: number, opts: SegmentOpenOptions): LogSegment {
    const files = opts.files ?? sharedFiles;
    const logPath = path.join(dir, segmentFileName(baseOffset, LOG_SUFFIX));
    const seg = new LogSegment(dir, baseOffset, files.file(logPath));
    let problem = '';
    if (!opts.recover) {
      const fd = seg.file.pin();
      try {
        const sizeBytes = fs.fstatSync(fd).size;
        // An empty .log needs no index (a new segment, or an active one closed empty, which
        // close() writes no index files for): nothing to load, nothing to rebuild.
        problem = sizeBytes === 0 ? seg.scanTailHeaders(fd) : seg.loadIndexes(sizeBytes) || seg.scanTailHeaders(fd);
      } finally {
        seg.file.unpin();
      }
      if (problem) opts.logger.warn('segment index unusable, rebuilding it from the log', { segment: seg.logPath, problem });
    }
    if (opts.recover || problem) {
      // The .log may change below; an index file that described it is stale (rebuilt on demand).
      unlinkIfExistsSync(seg.tagIndexPath);
      seg.offsetIdx = new OffsetIndex(seg.offsetIdx.path, baseOffset);
      seg.timeIdx = new TimeIndex(seg.timeIdx.path, baseOffset);
      const result = recoverSegmentFile(seg.logPath, baseOffset, opts.logger, (b) => {
        seg.indexBatch(b.baseOffset, b.lastOffset, b.maxTimestampMs, b.position, b.sizeBytes, opts.indexIntervalBytes);
        if (b.position === 0) seg.created = b.maxTimestampMs;
      });
      seg.size = result.sizeBytes;
      seg.next = result.nextOffset;
      seg.wasRecovered = true;
      // A rewrite renamed a new file over the old one: an fd opened before would see the old file.
      seg.file.retire();
      seg.file = files.file(logPath);
    }
    // Age for segment.ms: a restart cannot know when the first batch went in; its timestamp is the best guess.
    seg.created = seg.size > 0 ? Math.min(opts.nowMs, seg.created) : -1;
    return seg;
  }

  /**
   * An empty segment written at `<name>.log.cleaned` (a leftover one is truncated), to receive
   * the compacted batches of the live segment with the same base offset. Append to it, flush
   * it, then commitReplacement() or abandonReplacement().
   */
  static createReplacement(dir: string, baseOffset: number, files: FileHandleCache = sharedFiles): LogSegment {
    const cleanedPath = path.join(dir, segmentFileName(baseOffset, LOG_SUFFIX + CLEANED_SUFFIX));
    const seg = new LogSegment(dir, baseOffset, files.file(cleanedPath, fs.openSync(cleanedPath, 'w+')));
    seg.path = cleanedPath;
    seg.tagIdx = new TagIndex(seg.tagIndexPath, baseOffset);
    return seg;
  }

  get logPath(): string {
    return this.path;
  }

  /**
   * Makes this replacement the segment on disk: removes the live index files (they describe
   * the old .log), renames `.cleaned` over the live .log, fsyncs the directory, then persists
   * this segment's indexes. The caller flushed the replacement first and closes the old
   * segment object afterwards; reads in flight on the old fd keep the old file's bytes.
   */
  commitReplacement(): void {
    if (!this.path.endsWith(CLEANED_SUFFIX)) throw new Error(`${this.path} is not a replacement segment`);
    const live = path.join(this.dir, segmentFileName(this.baseOffset, LOG_SUFFIX));
    // Indexes first: a crash after the rename must find no index that describes the old file.
    this.deleteIndexFilesSync();
    fsyncDirSync(this.dir);
    io.renameSync(this.path, live);
    fsyncDirSync(this.dir);
    this.path = live;
    this.file.path = live;
    this.persistIndexesSync();
  }

  /** Drops an uncommitted replacement: closes it and removes its `.cleaned` file, never the live files. */
  abandonReplacement(): void {
    if (!this.path.endsWith(CLEANED_SUFFIX)) throw new Error(`${this.path} is not a replacement segment`);
    this.close();
    unlinkIfExistsSync(this.path);
  }

  get offsetIndex(): OffsetIndex {
    return this.offsetIdx;
  }

  get timeIndex(): TimeIndex {
    return this.timeIdx;
  }

  get sizeBytes(): number {
    return this.size;
  }

  /** Offset after the last batch; baseOffset while empty. */
  get nextOffset(): number {
    return this.next;
  }

  /** Largest batch maxTimestamp in the segment, -1 while empty. */
  get largestTimestampMs(): number {
    return this.largestTimestamp;
  }

  /** When the first batch went in (for segment.ms), -1 while empty. */
  get createdMs(): number {
    return this.created;
  }

  /** Opened through a recovery scan: its indexes exist only in memory until persisted. */
  get recovered(): boolean {
    return this.wasRecovered;
  }

  get isOpen(): boolean {
    return !this.closeRequested;
  }

  /** How many truncations removed bytes from this segment; see the invariants at the top. */
  get truncationCount(): number {
    return this.truncations;
  }

  /**
   * Appends whole batches that LogValidator accepted and gave offsets. Synchronous; throws
   * SluiceError(STORAGE_ERROR) with the file cut back to its previous size when the write fails.
   */
  append(records: Uint8Array, indexIntervalBytes: number, nowMs: number): void {
    if (this.closeRequested) throw new SluiceError(ErrorCode.STORAGE_ERROR, `segment ${this.logPath} is closed`);
    if (this.size + records.length > SEGMENT_BYTES_MAX) throw new SluiceError(ErrorCode.STORAGE_ERROR, `segment ${this.logPath} would pass ${SEGMENT_BYTES_MAX} bytes`);
    // Before the write: the index must describe the .log as it was (a rebuild scans it).
    const tags = this.tagIndex();
    let fd: number;
    try {
      fd = this.file.pin();
    } catch (e) {
      throw new SluiceError(ErrorCode.STORAGE_ERROR, `cannot open ${this.logPath}: ${(e as Error).message}`);
    }
    try {
      let written = 0;
      while (written < records.length) written += io.writeSync(fd, records, written, records.length - written, this.size + written);
    } catch (e) {
      // Bytes past `size` are invisible to readers, but the next append must not land after them.
      try {
        fs.ftruncateSync(fd, this.size);
      } catch {
        // The next append writes at `size` anyway (positional writes); recovery cuts any leftover.
      }
      throw new SluiceError(ErrorCode.STORAGE_ERROR, `write to ${this.logPath} failed: ${(e as Error).message}`);
    } finally {
      this.file.unpin();
    }
    if (this.size === 0) this.created = nowMs;
    const c = new BatchCursor();
    for (c.reset(records); !c.done; c.advance()) {
      const size = c.sizeBytes;
      this.indexBatch(c.baseOffset, c.lastOffset, c.maxTimestampMs, this.size + c.at, size, indexIntervalBytes);
      tags.onBatch(records, c.at, c.at + size, this.size + c.at);
    }
    this.size += records.length;
  }

  /**
   * Reads [position, position + lengthBytes) clipped to the readable size into a fresh Buffer;
   * null when the segment was closed or deleted before the read started, or truncated under
   * it (callers also compare truncationCount: a truncation may rewrite without shortening).
   */
  async read(position: number, lengthBytes: number): Promise<Buffer | null> {
    if (this.closeRequested) return null;
    const len = Math.max(0, Math.min(lengthBytes, this.size - position));
    const buf = Buffer.allocUnsafe(len);
    const truncations = this.truncations;
    let fd: number;
    try {
      fd = this.file.pin();
    } catch (e) {
      throw new SluiceError(ErrorCode.STORAGE_ERROR, `cannot open ${this.logPath}: ${(e as Error).message}`);
    }
    try {
      let done = 0;
      while (done < len) {
        const n = await io.read(fd, buf, done, len - done, position + done);
        if (n === 0 && this.truncations !== truncations) return null;
        if (n === 0) throw new SluiceError(ErrorCode.STORAGE_ERROR, `${this.logPath} ends before ${position + done}`);
        done += n;
      }
      return buf;
    } finally {
      this.file.unpin();
    }
  }

  /**
   * Walks batch headers from `fromPosition` (a batch start) to the readable end, reading
   * HEADER_SCAN_CHUNK_BYTES at a time. fn sees the cursor standing on each batch (its header
   * in memory, BATCH_HEADER_BYTES of it) and returns false to stop there. Returns where the
   * walk stopped: that batch's position, or sizeBytes. Synchronous: for truncation and for
   * rebuilding the leader epoch cache at open. Throws STORAGE_ERROR on a size that makes no sense.
   */
  scanHeadersSync(fromPosition: number, fn: (batch: BatchCursor) => boolean): number {
    if (this.closeRequested) throw new SluiceError(ErrorCode.STORAGE_ERROR, `segment ${this.logPath} is closed`);
    const fd = this.file.pin();
    try {
      const c = new FileBatchCursor(fd, this.size, HEADER_SCAN_CHUNK_BYTES, this.logPath);
      let position = fromPosition;
      while (position < this.size) {
        if (!c.seek(position, BATCH_HEADER_BYTES)) throw new SluiceError(ErrorCode.STORAGE_ERROR, `${this.logPath}: ${this.size - position} bytes at ${position} are not a whole batch`);
        const sizeBytes = c.sizeBytes;
        if (sizeBytes < BATCH_HEADER_BYTES || position + sizeBytes > this.size) {
          throw new SluiceError(ErrorCode.STORAGE_ERROR, `${this.logPath}: batch at ${position} of ${sizeBytes} bytes overruns the segment`);
        }
        if (!fn(c)) return position;
        position += sizeBytes;
      }
      return position;
    } finally {
      this.file.unpin();
    }
  }

  /**
   * The whole batch whose base offset is exactly `offset`, read synchronously (a view of a
   * buffer of its own), or null when no batch starts there. For the delayed-delivery releaser
   * (server/delay/releaser.ts): a small read of pages that are normally cached costs about a
   * microsecond this way, against tens of microseconds of thread-pool hand-off for an async read.
   */
  readBatchAtSync(offset: number, chunkBytes: number): Buffer | null {
    if (this.closeRequested) throw new SluiceError(ErrorCode.STORAGE_ERROR, `segment ${this.logPath} is closed`);
    const fd = this.file.pin();
    try {
      const c = new FileBatchCursor(fd, this.size, chunkBytes, this.logPath);
      let position = this.offsetIdx.lookup(offset).position;
      while (position < this.size) {
        if (!c.seek(position, BATCH_HEADER_BYTES)) return null;
        const sizeBytes = c.sizeBytes;
        if (sizeBytes < BATCH_HEADER_BYTES || position + sizeBytes > this.size) {
          throw new SluiceError(ErrorCode.STORAGE_ERROR, `${this.logPath}: batch at ${position} of ${sizeBytes} bytes overruns the segment`);
        }
        if (c.baseOffset > offset) return null;
        if (c.baseOffset === offset) {
          if (!c.seek(position, sizeBytes)) return null;
          return (c.buf as Buffer).subarray(c.at, c.at + sizeBytes);
        }
        position += sizeBytes;
      }
      return null;
    } finally {
      this.file.unpin();
    }
  }

  /**
   * Removes every batch whose last offset is >= offset: a batch that holds offset goes whole,
   * so nextOffset becomes the end of the last batch kept (the segment's base offset when none
   * is). Cuts the file, fdatasyncs it, drops the index entries of removed batches and
   * recomputes size, next offset and largest timestamp from what is left (a walk from the last
   * index entry, bounded by index.interval.bytes). Returns whether anything was removed.
   * Index files on disk are the caller's: it deletes them first when this becomes the active
   * segment, as only an active segment is ever cut.
   */
  truncateTo(offset: number): boolean {
    if (this.closeRequested) throw new SluiceError(ErrorCode.STORAGE_ERROR, `segment ${this.logPath} is closed`);
    if (offset >= this.next) return false;
    const tags = this.tagIndex();
    let cutBaseOffset = -1;
    const cut = this.scanHeadersSync(this.offsetIdx.lookup(offset).position, (b) => {
      if (b.lastOffset < offset) return true;
      cutBaseOffset = b.baseOffset;
      return false;
    });
    if (cut >= this.size) return false;
    this.truncations++;
    this.offsetIdx.truncateTo(cutBaseOffset);
    this.timeIdx.truncateTo(cutBaseOffset);
    tags.truncateTo(cutBaseOffset);
    const fd = this.file.pin();
    let problem: string;
    const createdMs = this.created;
    try {
      fs.ftruncateSync(fd, cut);
      io.fdatasyncSync(fd);
      problem = this.scanTailHeaders(fd);
    } finally {
      this.file.unpin();
    }
    if (problem) throw new SluiceError(ErrorCode.STORAGE_ERROR, `${this.logPath} after truncation to ${cut} bytes: ${problem}`);
    // Still the segment that was created then (segment.ms); an empty one starts afresh with its next append.
    this.created = this.size > 0 ? createdMs : -1;
    return true;
  }

  /** fdatasync of the .log; a no-op once closed (close and delete make their own guarantees). */
  async flush(): Promise<void> {
    if (this.closeRequested) return;
    const fd = this.file.pin();
    try {
      await io.fdatasync(fd);
    } finally {
      this.file.unpin();
    }
  }

  async persistIndexes(): Promise<void> {
    await this.offsetIndex.persist();
    await this.timeIndex.persist();
    // Not loaded: the file on disk (if any) is still right, or missing and rebuilt on demand.
    if (this.tagIdx !== null) {
      await this.tagIdx.persist();
      // Sealed: the index leaves memory (28 bytes per listed batch, and a segment of delayed
      // messages lists every wrapper); a filtered fetch loads it again under the shared bound.
      sealedTagIndexes.forget(this);
      this.dropTagIndex();
    }
  }

  persistIndexesSync(): void {
    this.offsetIndex.persistSync();
    this.timeIndex.persistSync();
    this.tagIdx?.persistSync();
  }

  /** The segment became the active one: its index files would go stale with the next append. Returns whether any existed. */
  deleteIndexFilesSync(): boolean {
    // The tag index is loaded first: after this, the file cannot tell what the .log holds.
    // The segment is (about to be) appended to or cut: its index stays in memory from now on.
    sealedTagIndexes.forget(this);
    if (!this.closeRequested) this.tagIndex();
    const offsets = unlinkIfExistsSync(this.offsetIndex.path);
    const times = unlinkIfExistsSync(this.timeIndex.path);
    const tags = unlinkIfExistsSync(this.tagIndexPath);
    return offsets || times || tags;
  }

  /** `<base>.tags`, this segment's tag index file (tag-index.ts). */
  get tagIndexPath(): string {
    return path.join(this.dir, segmentFileName(this.baseOffset, TAG_INDEX_SUFFIX));
  }

  /** Batches the in-memory tag index lists (0 when not loaded): the active segment's grows with every tagged or control batch. */
  get tagIndexEntries(): number {
    return this.tagIdx === null ? 0 : this.tagIdx.entryCount;
  }

  /** Whether the tag index is in memory (tests, and readers that want to know the cost). */
  get tagIndexLoaded(): boolean {
    return this.tagIdx !== null;
  }

  /**
   * The segment's tag index: loaded from `.tags`, or rebuilt from the .log when the file is
   * missing or fails its checks (synchronous: a scan of the segment's batches, once). Throws
   * STORAGE_ERROR when the segment is closed or its bytes make no sense.
   * persistRebuilt: a sealed segment (the read path) writes a rebuilt index at once, so the
   * next open loads it; other callers are about to change or delete the files anyway.
   */
  tagIndex(persistRebuilt = false): TagIndex {
    if (!this.tagIdx) {
      if (this.closeRequested) throw new SluiceError(ErrorCode.STORAGE_ERROR, `segment ${this.logPath} is closed`);
      const loaded = TagIndex.load(this.tagIndexPath, this.baseOffset, this.size);
      this.tagIdx = loaded.index ?? this.rebuildTagIndex();
      if (!loaded.index && persistRebuilt) this.tagIdx.persistSync();
    }
    // A sealed segment's index counts against the shared bound (tag-index.ts), and may be dropped.
    if (persistRebuilt) sealedTagIndexes.touch(this, this.tagIdx.memoryBytes);
    return this.tagIdx;
  }

  /** The sealed-index bound dropped this index: it loads again from `.tags` when needed. */
  dropTagIndex(): void {
    if (this.closeRequested) return;
    // Only with its file in place: otherwise the next use would have to rebuild it from the .log.
    if (fs.existsSync(this.tagIndexPath)) this.tagIdx = null;
  }

  /** Reads every batch of the .log (whole: the tags are in the first record's headers) into a new index. */
  private rebuildTagIndex(): TagIndex {
    const idx = new TagIndex(this.tagIndexPath, this.baseOffset);
    if (this.size === 0) return idx;
    const fd = this.file.pin();
    try {
      const c = new FileBatchCursor(fd, this.size, TAG_REBUILD_CHUNK_BYTES, this.logPath);
      let position = 0;
      while (position < this.size) {
        if (!c.seek(position, BATCH_HEADER_BYTES)) throw new SluiceError(ErrorCode.STORAGE_ERROR, `${this.logPath}: ${this.size - position} bytes at ${position} are not a whole batch`);
        const size = c.storedSizeBytes();
        if (position + size > this.size || !c.seek(position, size)) throw new SluiceError(ErrorCode.STORAGE_ERROR, `${this.logPath}: batch at ${position} of ${size} bytes overruns the segment`);
        try {
          idx.onBatch(c.buf, c.at, c.at + size, position);
        } catch (e) {
          if (e instanceof RangeError) throw new SluiceError(ErrorCode.STORAGE_ERROR, `${this.logPath}: batch at ${position}: ${e.message}`);
          throw e;
        }
        position += size;
      }
    } finally {
      this.file.unpin();
    }
    return idx;
  }

  /** Closes the fd once in-flight reads and fsyncs are done. Does not flush. */
  close(): void {
    this.closeRequested = true;
    sealedTagIndexes.forget(this);
    this.file.retire();
  }

  /** Removes the files now (open fds keep working on POSIX) and closes the fd when idle. */
  deleteFiles(): void {
    this.close();
    unlinkIfExistsSync(this.logPath);
    this.deleteIndexFilesSync();
    unlinkIfExistsSync(this.txnIndexPath);
    unlinkIfExistsSync(this.delaysPath);
  }

  /** This segment's delay index (server/delay/segment-delays.ts, SPEC §7.9); it may not exist. */
  get delaysPath(): string {
    return this.logPath.slice(0, -LOG_SUFFIX.length) + DELAYS_SUFFIX;
  }

  /** Removes the delay index (the segment becomes active again after truncation). */
  deleteDelaysFileSync(): void {
    unlinkIfExistsSync(this.delaysPath);
  }

  /** This segment's aborted-transaction index (txn-index.ts); it may not exist. */
  get txnIndexPath(): string {
    return this.logPath.slice(0, -LOG_SUFFIX.length) + TXN_INDEX_SUFFIX;
  }

  /** Index and stats bookkeeping for one batch written at `position`. */
  private indexBatch(baseOffset: number, lastOffset: number, maxTimestampMs: number, position: number, sizeBytes: number, indexIntervalBytes: number): void {
    if (maxTimestampMs > this.largestTimestamp) {
      this.largestTimestamp = maxTimestampMs;
      this.offsetOfLargestTimestamp = baseOffset;
    }
    // Position 0 needs no entry: an empty lookup already answers "start of the segment".
    if (position > 0 && this.bytesSinceIndexEntry >= indexIntervalBytes) {
      this.offsetIndex.append(baseOffset, position);
      this.timeIndex.maybeAppend(this.largestTimestamp, this.offsetOfLargestTimestamp);
      this.bytesSinceIndexEntry = 0;
    }
    this.bytesSinceIndexEntry += sizeBytes;
    this.next = lastOffset + 1;
  }

  /** Loads both index files; returns a problem description, '' when both are usable. */
  private loadIndexes(logSizeBytes: number): string {
    const offsets = OffsetIndex.load(this.offsetIndex.path, this.baseOffset, logSizeBytes);
    if (!offsets.index) return `${this.offsetIndex.path}: ${offsets.problem}`;
    const times = TimeIndex.load(this.timeIndex.path, this.baseOffset);
    if (!times.index) return `${this.timeIndex.path}: ${times.problem}`;
    this.offsetIdx = offsets.index;
    this.timeIdx = times.index;
    return '';
  }

  /**
   * After loading trusted indexes: walks batch headers from the last index entry to the end of
   * the file to learn size, next offset and largest timestamp without reading the whole log.
   * Returns a problem when the headers do not end exactly at the end of the file.
   */
  private scanTailHeaders(fd: number): string {
    const fileSize = fs.fstatSync(fd).size;
    if (fileSize === 0) {
      this.size = 0;
      this.next = this.baseOffset;
      this.largestTimestamp = -1;
      this.offsetOfLargestTimestamp = -1;
      this.created = -1;
      this.bytesSinceIndexEntry = 0;
      return '';
    }
    if (fileSize < BATCH_HEADER_BYTES) return `file of ${fileSize} bytes holds no whole batch`;
    // One header at a time, as before the cursor: the walk starts at the last index entry, so it
    // covers about index.interval.bytes, and reading whole chunks would mostly read record bodies.
    const c = new FileBatchCursor(fd, fileSize, BATCH_HEADER_BYTES, this.logPath);
    c.seek(0, BATCH_HEADER_BYTES);
    const firstBatchTimestampMs = c.maxTimestampMs;
    const last = this.offsetIdx.lastEntry();
    let pos = last ? last.position : 0;
    let largest = this.timeIdx.lastTimestampMs;
    let offsetOfLargest = this.timeIdx.lastEntryOffset;
    let next = last ? last.offset : this.baseOffset;
    while (pos < fileSize) {
      if (!c.seek(pos, BATCH_HEADER_BYTES)) return `${fileSize - pos} bytes at ${pos} are not a whole batch`;
      const size = c.sizeBytes;
      const base = c.baseOffset;
      if (size < BATCH_HEADER_BYTES || pos + size > fileSize) return `batch at ${pos} of ${size} bytes overruns the file`;
      if (base < next) return `batch at ${pos} has base offset ${base} below ${next}`;
      if (last && pos === last.position && base !== last.offset) return `index says offset ${last.offset} at ${pos}, the log has ${base}`;
      if (c.maxTimestampMs > largest) {
        largest = c.maxTimestampMs;
        offsetOfLargest = base;
      }
      next = c.lastOffset + 1;
      pos += size;
    }
    if (this.timeIdx.lastEntryOffset >= next) return `time index points at offset ${this.timeIdx.lastEntryOffset}, past the log end ${next}`;
    this.size = fileSize;
    this.next = next;
    this.largestTimestamp = largest;
    this.offsetOfLargestTimestamp = offsetOfLargest;
    this.created = firstBatchTimestampMs;
    this.bytesSinceIndexEntry = last ? fileSize - last.position : fileSize;
    return '';
  }
}
