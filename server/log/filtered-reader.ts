/**
 * The read path of a filtered Fetch (SPEC §6.7 "Tag filtering", §7.8): whole stored batches
 * whose tag set matches the request's tag expression, plus transaction markers, concatenated,
 * and the offset the consumer fetches next (just after the last batch examined, matching or
 * not, so that skipped data counts as consumed).
 *
 * How: each segment's tag index (tag-index.ts) lists its tagged and control batches; the bytes
 * between listed batches are untagged data batches (the empty tag set). Listed batches that
 * do not match are skipped without reading them; runs of matching listed batches are read with
 * one read each. Untagged runs are read (and walked by header) only when the expression
 * matches the empty tag set (`!a`), otherwise skipped whole.
 *
 * Invariants:
 * - Only whole batches, byte for byte as stored, whose last offset is at or after fetchOffset
 *   and below maxOffset; never a control batch other than a transaction marker (type 0/1).
 * - nextFetchOffset is in [fetchOffset, maxOffset] and every batch with an offset in
 *   [fetchOffset, nextFetchOffset) was either returned or does not match.
 * - At most scanBatchesMax batches (index entries or untagged runs) are examined per read;
 *   at most maxBytes are returned, except that the first batch is always returned whole.
 * - Like readLog: a segment closed or truncated under a read makes it start over on the current
 *   segments (at most READ_RETRIES_MAX times), so bytes that are gone are never returned.
 */
import { BATCH_HEADER_BYTES, Off } from '../../protocol/record-batch.ts';
import type { TagExpression } from '../../protocol/tag-expression.ts';
import { BatchCursor } from './batch-cursor.ts';
import { outOfRange, segmentIndexFor, type ReadableLog, type ReadableSegment, type ReadResult } from './log-reader.ts';
import { TAG_SET_OTHER_CONTROL, TAG_SET_TXN_MARKER, tagSetMatches, type TagIndex } from './tag-index.ts';

const HEADER_TO_LAST_OFFSET_BYTES = Off.lastOffsetDelta + 4;
const READ_RETRIES_MAX = 3;
const EMPTY = Buffer.alloc(0);

export interface TagFilter {
  expression: TagExpression;
  /** Most batches (index entries, or untagged runs skipped whole) one read examines. */
  scanBatchesMax: number;
}

/** What a filtered read needs of a segment: a local LogSegment, or an archived one (server/archive/archived-reader.ts). */
export interface FilterableSegment extends ReadableSegment {
  readonly isOpen: boolean;
  /** Offset after the segment's last batch (an archived segment: its manifest's lastOffset + 1). */
  readonly nextOffset: number;
  /** The segment's tag index; sealed: the read path's call (see LogSegment.tagIndex). */
  tagIndex(sealed?: boolean): TagIndex;
}

/**
 * What an earlier part of the same filtered read already took (the archive's share of a read
 * that continues in the local log, server/archive/archived-reader.ts): the next part goes on
 * with the same budget, scan count and "first batch always whole" rule.
 */
export interface FilterSeed {
  taken: number;
  scanned: number;
  parts: readonly Buffer[];
}

export interface FilterState {
  readonly fetchOffset: number;
  readonly maxOffset: number;
  readonly maxBytes: number;
  readonly scanBatchesMax: number;
  readonly matchEmpty: boolean;
  readonly expression: TagExpression;
  taken: number;
  parts: Buffer[];
  next: number;
  scanned: number;
  stop: boolean;
}

/** A filtered read's state from fetchOffset (seed: what an earlier part of the read took). */
export function newFilterState(fetchOffset: number, maxOffset: number, maxBytes: number, filter: TagFilter, seed?: FilterSeed): FilterState {
  return {
    fetchOffset, maxOffset, maxBytes: Math.max(0, maxBytes), scanBatchesMax: Math.max(1, filter.scanBatchesMax),
    matchEmpty: filter.expression.matches(new Set()), expression: filter.expression,
    taken: seed?.taken ?? 0, parts: seed ? [...seed.parts] : [], next: fetchOffset, scanned: seed?.scanned ?? 0, stop: false,
  };
}

/** The batches a filtered read took, in one buffer. */
export function filteredRecords(st: FilterState): Buffer {
  return st.parts.length === 0 ? EMPTY : st.parts.length === 1 ? st.parts[0]! : Buffer.concat(st.parts, st.taken);
}

/** Filtered read; see the top of this file. maxOffset as in readLog (default: the high watermark). */
export async function readLogFiltered(log: ReadableLog, fetchOffset: number, maxBytes: number, maxOffsetOpt: number | undefined, filter: TagFilter, seed?: FilterSeed): Promise<ReadResult> {
  for (let attempt = 0; ; attempt++) {
    log.checkReadable();
    const segments = log.segments();
    if (fetchOffset < segments[0]!.baseOffset || fetchOffset > log.logEndOffset()) throw outOfRange(log, fetchOffset);
    const maxOffset = Math.min(maxOffsetOpt ?? log.highWatermark(), log.logEndOffset());
    const st = newFilterState(fetchOffset, maxOffset, maxBytes, filter, seed);
    let swapped = false;
    if (fetchOffset < maxOffset) {
      for (let i = segmentIndexFor(segments, fetchOffset); i < segments.length && segments[i]!.baseOffset < maxOffset && !st.stop; i++) {
        const seg = segments[i]!;
        if (!(await filterSegment(seg, seg !== segments[segments.length - 1], log.indexIntervalBytes(), st))) {
          log.checkReadable();
          if (log.segments() === segments || attempt >= READ_RETRIES_MAX) throw outOfRange(log, fetchOffset);
          swapped = true;
          break;
        }
      }
    }
    if (swapped) continue;
    const records = filteredRecords(st);
    const scanLimited = st.scanned >= st.scanBatchesMax && st.next < maxOffset;
    return { records, highWatermark: log.highWatermark(), logStartOffset: log.segments()[0]!.baseOffset, nextFetchOffset: st.next, scanLimited };
  }
}

/**
 * One segment's share of a filtered read; false when the segment was closed or cut under it.
 * sealed: not the log's active segment (its tag index is loaded or rebuilt and persisted).
 */
export async function filterSegment(seg: FilterableSegment, sealed: boolean, indexIntervalBytes: number, st: FilterState): Promise<boolean> {
  if (!seg.isOpen) return false;
  // One synchronous snapshot: appends happen between awaits only, and update all of these together.
  const endPosition = seg.sizeBytes;
  const segNext = seg.nextOffset;
  const truncations = seg.truncationCount;
  // A sealed segment's index is loaded (or rebuilt and written) here, at its first filtered read.
  const idx = seg.tagIndex(sealed);
  const n = idx.entryCount;
  let i = idx.firstEntryFrom(st.fetchOffset);
  let gapStart = i > 0 ? idx.position(i - 1) + idx.sizeBytes(i - 1) : 0;
  // A run of matching listed batches not read yet: [runStart, runEnd).
  let runStart = -1;
  let runEnd = -1;
  const flush = async (): Promise<boolean> => {
    if (runStart < 0) return true;
    const buf = await seg.read(runStart, runEnd - runStart);
    if (!buf || buf.length !== runEnd - runStart || seg.truncationCount !== truncations) return false;
    st.parts.push(buf);
    runStart = runEnd = -1;
    return true;
  };
  for (;;) {
    const entryPosition = i < n ? idx.position(i) : endPosition;
    const gapEndOffset = i < n ? idx.baseOffsetOf(i) : segNext;
    // The untagged run [gapStart, entryPosition) holds offsets below gapEndOffset.
    if (entryPosition > gapStart && gapEndOffset > st.fetchOffset) {
      if (st.scanned >= st.scanBatchesMax) st.stop = true;
      else if (st.matchEmpty) {
        if (!(await flush())) return false;
        if (!(await readUntaggedRun(seg, gapStart, entryPosition, truncations, indexIntervalBytes, st))) return false;
      } else {
        st.scanned++;
        st.next = Math.max(st.next, Math.min(gapEndOffset, st.maxOffset));
        if (gapEndOffset >= st.maxOffset) st.stop = true;
      }
      if (st.stop) return flush();
    }
    if (i >= n) break;
    const last = idx.lastOffsetOf(i);
    const size = idx.sizeBytes(i);
    const position = idx.position(i);
    if (last >= st.maxOffset || st.scanned >= st.scanBatchesMax) {
      st.stop = true;
      break;
    }
    if (last >= st.fetchOffset) {
      st.scanned++;
      const id = idx.tagSetId(i);
      const include = id === TAG_SET_TXN_MARKER ? true : id === TAG_SET_OTHER_CONTROL ? false : tagSetMatches(idx, st.expression, id);
      if (include) {
        // The first batch of a response always goes whole, so a consumer can pass a large one.
        if (st.taken > 0 && st.taken + size > st.maxBytes) {
          st.stop = true;
          break;
        }
        if (runEnd !== position) {
          if (!(await flush())) return false;
          runStart = position;
        }
        runEnd = position + size;
        st.taken += size;
      }
      st.next = last + 1;
    }
    gapStart = position + size;
    i++;
  }
  return flush();
}

/**
 * Untagged batches of [start, end) (they match: the expression matches the empty tag set),
 * from fetchOffset on, within the budget; walked by header like readLog. False when the
 * segment was closed or cut under the read.
 */
async function readUntaggedRun(seg: FilterableSegment, start: number, end: number, truncations: number, indexIntervalBytes: number, st: FilterState): Promise<boolean> {
  let position = start;
  const hint = seg.offsetIndex.lookup(st.fetchOffset).position;
  if (hint > position && hint < end) position = hint;
  let needBytes = 0;
  const c = new BatchCursor();
  while (position < end) {
    const chunk = Math.min(end - position, Math.max(needBytes, Math.max(st.maxBytes - st.taken, 0) + indexIntervalBytes + BATCH_HEADER_BYTES));
    const buf = await seg.read(position, chunk);
    if (!buf || buf.length !== chunk || seg.truncationCount !== truncations) return false;
    c.reset(buf, 0, buf.length, seg.logPath, position);
    while (c.hasBytes(HEADER_TO_LAST_OFFSET_BYTES)) {
      const size = c.storedSizeBytes();
      if (c.at + size > buf.length) break;
      const last = c.lastOffset;
      if (last >= st.fetchOffset) {
        if (last >= st.maxOffset || st.scanned >= st.scanBatchesMax || (st.taken > 0 && st.taken + size > st.maxBytes)) {
          st.stop = true;
          return true;
        }
        st.scanned++;
        st.parts.push(buf.subarray(c.at, c.at + size));
        st.taken += size;
        st.next = last + 1;
      }
      c.advance(size);
    }
    // A batch larger than the chunk: read again from it, whole.
    needBytes = c.at === 0 ? (c.hasBytes(HEADER_TO_LAST_OFFSET_BYTES) ? c.storedSizeBytes() : BATCH_HEADER_BYTES) : 0;
    position += c.at;
  }
  return true;
}
