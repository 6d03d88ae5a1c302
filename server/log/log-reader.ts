/**
 * LogReader: the read path of a partition log. read() finds the segment that holds an offset,
 * does one index lookup and (usually) one read, and cuts the bytes at whole batches;
 * offsetForTimestamp serves ListOffsets by time. PartitionLog owns the state; this file only
 * reads it through a ReadableLog view.
 *
 * Invariants (with PartitionLog's, at the top of partition-log.ts):
 * - Only whole batches are returned, byte for byte as stored, and only batches whose last
 *   offset is below maxOffset (the high watermark unless the caller says otherwise).
 * - A read takes the segments array once; the array is replaced, never mutated, so it stays
 *   a consistent view across awaits. A segment closed or cut while the read waited (retention,
 *   compaction, truncation, close) makes LogSegment.read return null or bumps its
 *   truncationCount; the read then starts again on the current array, at most
 *   READ_RETRIES_MAX times, rather than return bytes that are gone.
 * - Offsets may have gaps (recovery dropped a corrupt batch, compaction removed records): a
 *   segment with nothing at or after the offset passes the read on to the next one.
 * - Bounds: one read covers maxBytes + index.interval.bytes + a header; a timestamp scan reads
 *   TIMESTAMP_SCAN_CHUNK_BYTES at a time and decodes one batch.
 */
import path from 'node:path';
import { ErrorCode, SluiceError } from '../../protocol/errors.ts';
import { BATCH_HEADER_BYTES, decodeRecords, Off } from '../../protocol/record-batch.ts';
import { BatchCursor } from './batch-cursor.ts';
import type { FilterSeed, TagFilter } from './filtered-reader.ts';
import type { LogSegment } from './segment.ts';
import type { AbortedTxn } from './txn-index.ts';

/**
 * What the one-segment read and the timestamp scan need of a segment: a local LogSegment, or
 * an archived one read back from the archive store (server/archive/archived-reader.ts), so
 * both are cut at whole batches by the same code and a consumer receives the same bytes.
 */
export interface ReadableSegment {
  readonly baseOffset: number;
  /** For error messages about stored bytes. */
  readonly logPath: string;
  readonly sizeBytes: number;
  /** Bumped when a truncation cut bytes read before (archived segments never change: 0). */
  readonly truncationCount: number;
  readonly largestTimestampMs: number;
  readonly offsetIndex: { lookup(offset: number): { position: number } };
  readonly timeIndex: { lookup(timestampMs: number): number };
  /** Bytes [position, position + lengthBytes) (shorter at the end); null when the segment was closed meanwhile. */
  read(position: number, lengthBytes: number): Promise<Buffer | null>;
}

/** Bytes read at a time when scanning batch headers for a timestamp. */
const TIMESTAMP_SCAN_CHUNK_BYTES = 64 * 1024;
/** A batch header through lastOffsetDelta: enough to know where a batch ends and its last offset. */
const HEADER_TO_LAST_OFFSET_BYTES = Off.lastOffsetDelta + 4;
const EMPTY = Buffer.alloc(0);
/** A read retries this often when compaction, retention or truncation swapped its segments while it waited. */
const READ_RETRIES_MAX = 3;

export interface ReadOptions {
  /**
   * Only batches whose last offset is below this are returned. Default: the high watermark
   * (what consumers may see); a replica fetching for itself passes logEndOffset (or Infinity).
   */
  maxOffset?: number;
  /** A filtered Fetch (SPEC §6.7): only matching batches, read by filtered-reader.ts. */
  filter?: TagFilter;
  /** Filtered reads only: what the archive's share of the same read took (server/archive/archive-reads.ts). */
  filterSeed?: FilterSeed;
}

export interface ReadResult {
  /** Whole batches, byte for byte as stored; empty at the log end. */
  records: Buffer;
  highWatermark: number;
  logStartOffset: number;
  /** Filtered reads only: the offset to fetch next, past every batch examined (filtered-reader.ts). */
  nextFetchOffset?: number;
  /** Filtered reads only: stopped at the scan bound with more to examine below maxOffset. */
  scanLimited?: boolean;
  /** Reads that reached the archive with readCommitted (SPEC §7.10): the aborted transactions to report, archived ones included. */
  abortedTransactions?: AbortedTxn[];
}

export interface TimestampLookup {
  offset: number;
  /** ms since epoch, of the record at `offset`. */
  timestamp: number;
}

/** What the reader needs from a log; PartitionLog builds one over its private state. */
export interface ReadableLog {
  readonly dir: string;
  segments(): readonly LogSegment[];
  logEndOffset(): number;
  highWatermark(): number;
  indexIntervalBytes(): number;
  /** Throws when the log can no longer be read (closed, deleted). */
  checkReadable(): void;
}

/** The index in `segments` (sorted by base offset) of the segment that holds offset, or the first. */
export function segmentIndexFor(segments: readonly LogSegment[], offset: number): number {
  let lo = 0;
  let hi = segments.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1;
    if (segments[mid]!.baseOffset <= offset) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

export function outOfRange(log: ReadableLog, fetchOffset: number): SluiceError {
  return new SluiceError(ErrorCode.OFFSET_OUT_OF_RANGE, `offset ${fetchOffset} is outside [${log.segments()[0]!.baseOffset}, ${log.logEndOffset()}] of ${path.basename(log.dir)}`);
}

/**
 * Whole batches from the one that contains fetchOffset (the first whose last offset is
 * >= fetchOffset), from a single segment, at most maxBytes, except that the first batch is
 * always returned whole so a consumer can progress past a batch larger than maxBytes.
 * Only batches whose last offset is below opts.maxOffset (default: the high watermark);
 * a batch that straddles it is not returned. Empty at or past maxOffset, and at the log end;
 * OFFSET_OUT_OF_RANGE below logStartOffset or above logEndOffset.
 */
export async function readLog(log: ReadableLog, fetchOffset: number, maxBytes: number, opts: ReadOptions): Promise<ReadResult> {
  for (let attempt = 0; ; attempt++) {
    log.checkReadable();
    const segments = log.segments();
    if (fetchOffset < segments[0]!.baseOffset || fetchOffset > log.logEndOffset()) throw outOfRange(log, fetchOffset);
    const maxOffset = Math.min(opts.maxOffset ?? log.highWatermark(), log.logEndOffset());
    if (fetchOffset >= maxOffset) break;
    let swapped = false;
    for (let i = segmentIndexFor(segments, fetchOffset); i < segments.length && segments[i]!.baseOffset < maxOffset && !swapped; i++) {
      const records = await readFromSegment(segments[i]!, fetchOffset, Math.max(0, maxBytes), maxOffset, log.indexIntervalBytes());
      if (records === null) {
        // The segment was closed or cut while this read waited: the log closed, retention deleted
        // it, compaction replaced it, or truncation removed or cut it. The current segments array
        // has the answer, if any (truncation always replaces the array).
        log.checkReadable();
        if (log.segments() === segments || attempt >= READ_RETRIES_MAX) throw outOfRange(log, fetchOffset);
        swapped = true;
      } else if (records.length > 0) {
        return { records, highWatermark: log.highWatermark(), logStartOffset: log.segments()[0]!.baseOffset };
      }
      // Nothing at or after fetchOffset here (a gap left by recovery or compaction), or only
      // batches at or past maxOffset: the loop condition stops at a segment that starts there.
    }
    if (!swapped) break;
  }
  return { records: EMPTY, highWatermark: log.highWatermark(), logStartOffset: log.segments()[0]!.baseOffset };
}

/**
 * Batches of seg from fetchOffset below maxOffset, at most maxBytes (the first batch whole);
 * null when seg was closed or cut while this read waited. indexIntervalBytes only sizes the
 * first read (what lies between an index entry and fetchOffset), never the answer.
 */
export async function readFromSegment(seg: ReadableSegment, fetchOffset: number, maxBytes: number, maxOffset: number, indexIntervalBytes: number): Promise<Buffer | null> {
  // Only whole batches lie below this size, even while appends continue (but not across a truncation).
  const endPosition = seg.sizeBytes;
  const truncations = seg.truncationCount;
  let position = seg.offsetIndex.lookup(fetchOffset).position;
  // One read usually covers the batches between the index entry and fetchOffset plus the answer.
  const chunkBytes = maxBytes + indexIntervalBytes + BATCH_HEADER_BYTES;
  const c = new BatchCursor();
  for (;;) {
    if (position >= endPosition) return EMPTY;
    const buf = await seg.read(position, Math.min(chunkBytes, endPosition - position));
    if (!buf || seg.truncationCount !== truncations) return null;
    c.reset(buf, 0, buf.length, seg.logPath, position);
    while (c.hasBytes(HEADER_TO_LAST_OFFSET_BYTES) && c.lastOffset < fetchOffset) c.advance(c.storedSizeBytes());
    if (!c.hasBytes(HEADER_TO_LAST_OFFSET_BYTES)) {
      position += c.at; // skipped everything in this chunk; buf holds at least one whole batch, so at > 0
      continue;
    }
    const p = c.at;
    const firstEnd = p + c.storedSizeBytes();
    const moreOnDisk = position + buf.length < endPosition;
    if (firstEnd > buf.length || (moreOnDisk && buf.length - p < maxBytes)) {
      // The skipped prefix ate into the chunk: read again from the batch we want.
      position += p;
      const again = await seg.read(position, Math.min(Math.max(firstEnd - p, maxBytes), endPosition - position));
      if (!again || seg.truncationCount !== truncations) return null;
      return cutAtWholeBatches(c.reset(again, 0, again.length, seg.logPath, position), maxBytes, maxOffset);
    }
    return cutAtWholeBatches(c, maxBytes, maxOffset);
  }
}

/**
 * The cursor's buffer from its batch to the last batch boundary within maxBytes and before the
 * first batch that reaches maxOffset; the first batch is always whole (and empty when it reaches maxOffset).
 */
function cutAtWholeBatches(c: BatchCursor, maxBytes: number, maxOffset: number): Buffer {
  const start = c.at;
  if (c.lastOffset >= maxOffset) return EMPTY;
  c.advance(c.storedSizeBytes());
  while (c.hasBytes(HEADER_TO_LAST_OFFSET_BYTES)) {
    const next = c.at + c.storedSizeBytes();
    if (next > c.end || next - start > maxBytes || c.lastOffset >= maxOffset) break;
    c.advance(next - c.at);
  }
  return (c.buf as Buffer).subarray(start, c.at);
}

/**
 * For ListOffsets: the first record with timestamp >= timestampMs, or null when every record
 * is older. The time index narrows the scan; one batch is then decoded.
 */
export async function offsetForTimestamp(log: ReadableLog, timestampMs: number): Promise<TimestampLookup | null> {
  for (let attempt = 0; ; attempt++) {
    log.checkReadable();
    const segments = log.segments();
    let swapped = false;
    for (const seg of segments) {
      if (seg.largestTimestampMs < timestampMs) continue;
      const found = await scanSegmentForTimestamp(seg, timestampMs);
      // undefined: the segment was closed while the scan waited (see readLog); start over on the new array.
      if (found === undefined) {
        log.checkReadable();
        swapped = log.segments() !== segments && attempt < READ_RETRIES_MAX;
        if (swapped) break;
        continue;
      }
      if (found) return found;
    }
    if (!swapped) return null;
  }
}

/** The first record at or after timestampMs in seg; null when none, undefined when seg was closed meanwhile. */
export async function scanSegmentForTimestamp(seg: ReadableSegment, timestampMs: number): Promise<TimestampLookup | null | undefined> {
  const endPosition = seg.sizeBytes;
  const truncations = seg.truncationCount;
  let position = seg.offsetIndex.lookup(seg.timeIndex.lookup(timestampMs)).position;
  const c = new BatchCursor();
  while (position < endPosition) {
    const buf = await seg.read(position, Math.min(TIMESTAMP_SCAN_CHUNK_BYTES, endPosition - position));
    if (!buf || seg.truncationCount !== truncations) return undefined;
    for (c.reset(buf, 0, buf.length, seg.logPath, position); c.hasBytes(BATCH_HEADER_BYTES); ) {
      const p = c.at;
      const size = c.storedSizeBytes();
      if (c.maxTimestampMs >= timestampMs) {
        const batch = p + size <= buf.length ? buf.subarray(p, p + size) : await seg.read(position + p, size);
        if (!batch || seg.truncationCount !== truncations) return undefined;
        for (const r of decodeRecords(batch, 0)) if (r.timestamp >= timestampMs) return { offset: r.offset, timestamp: r.timestamp };
      }
      c.advance(size);
    }
    position += c.at;
  }
  return null;
}
