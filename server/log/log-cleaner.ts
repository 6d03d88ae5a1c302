/**
 * LogCleaner: compaction of logs with cleanup.policy=compact (or compact,delete), after
 * Kafka's log cleaner. For every key only the record with the highest offset has to survive;
 * a tombstone (null value) that is the latest for its key survives delete.retention.ms.
 *
 * One run (cleanLog):
 *   1. Builds key -> latest offset over every segment, the active one included, up to the
 *      size each had when it was read.
 *   2. Walks the cleanable segments oldest first: sealed (fsynced and indexed), not the
 *      active one, and newest record at least min.compaction.lag.ms old; the first segment
 *      that is not cleanable ends the walk, so cleaning never skips over a segment.
 *   3. Per segment, a read-only pass counts what would go. Nothing: the segment is left
 *      alone. Otherwise it is rewritten into `<name>.log.cleaned` (LogSegment.createReplacement),
 *      fsynced, and swapped in by the log (PartitionLog's replaceSegment).
 *
 * Invariants:
 * - Offsets never change. A record is removed only when a record with the same key has a
 *   higher offset, or when it is the latest for its key, has a null value and its timestamp
 *   + delete.retention.ms <= now. Records without a key (written before the topic became
 *   compacted) are kept.
 * - A rewritten batch keeps baseOffset, partitionLeaderEpoch, attributes, lastOffsetDelta,
 *   baseTimestamp and the producer fields; recordCount, batchLength, maxTimestamp
 *   (baseTimestamp + the survivors' largest timestampDelta, as validateBatch checks) and the
 *   CRC-32C are recomputed. Survivors keep their bytes, offset deltas included, so the batch
 *   passes validateBatch(..., stored = true). A batch with no survivor disappears; a batch
 *   that loses nothing is copied byte for byte.
 * - Every batch is validated (CRC included) before it is rewritten: a corrupt batch must not
 *   come out with a fresh, valid CRC. A corrupt batch stops the run for this log.
 * - Bounds: at most maxBytesPerRun bytes of segments are rewritten per run (at least one
 *   segment, so progress is certain); reads go READ_CHUNK_BYTES at a time. The key map holds
 *   one entry per distinct key of the log (memory grows with the key space, as Kafka's
 *   dedupe buffer would without its cap).
 * - Replication: only committed data counts. Records at or above the high watermark (read
 *   once, at the start of the run) do not enter the key map, and only segments that end at or
 *   below it are cleaned: a record above it may still be truncated away by a follower's
 *   truncation, and must not have removed the older record of its key. Without replication
 *   the high watermark is the log end, so this changes nothing.
 * - Runs on the event loop alongside appends and reads: it only reads segments through their
 *   reference-counted LogSegment.read and leaves the swap to the log, which re-checks at that
 *   moment that the segment is still there and the log still open.
 */
import { Buffer } from 'node:buffer';
import { ErrorCode, SluiceError } from '../../protocol/errors.ts';
import { ATTR_CONTROL, BATCH_HEADER_BYTES, BATCH_LOG_OVERHEAD, batchSizeAt, isControlAt, isTransactionalAt, producerIdAt, newBatchInfo, Off, readInt32, readInt64, validateBatch, writeInt32, writeInt64 } from '../../protocol/record-batch.ts';
import { crc32c } from '../../protocol/crc32c.ts';
import { readVarint, varintEnd } from '../../protocol/varint.ts';
import type { Logger } from '../logger.ts';
import type { LogConfig } from './log-config.ts';
import type { FileHandleCache } from './file-handle-cache.ts';
import { LogSegment } from './segment.ts';
import { BatchCursor } from './batch-cursor.ts';

/** Bytes read from a segment at a time; a larger batch gets a read of its own. */
const READ_CHUNK_BYTES = 1024 * 1024;
export const CLEANER_BYTES_PER_RUN_DEFAULT = 256 * 1024 * 1024;

/** What the cleaner needs from a log; PartitionLog implements it over its private state. */
export interface CleanableLog {
  readonly dir: string;
  /** Where replacement segments get their fds (the log's FileHandleCache); default: the shared one. */
  readonly files?: FileHandleCache;
  readonly config: LogConfig;
  readonly logger: Logger;
  /** Oldest first, the last is the active segment. A snapshot: the log replaces the array, never mutates it. */
  currentSegments(): readonly LogSegment[];
  /** Fsynced and indexed by a flush cycle; a segment still waiting for one is not cleaned. */
  isSealed(seg: LogSegment): boolean;
  /**
   * Compaction works below this: the last stable offset (the high watermark, or the first
   * offset of the oldest open transaction: its records are not decided yet, SPEC §7.3).
   */
  highWatermark(): number;
  /** Whether the transactional batch of producerId at offset belongs to an aborted transaction (omitted: none are). */
  isAborted?(producerId: number, offset: number): boolean;
  /** The log is closing, closed, deleted, failed or truncating: stop and discard the replacement. */
  stopping(): boolean;
  /**
   * Swaps the flushed replacement in for `old` ('replaced'), or deletes `old` when the
   * replacement is empty and `old` is not the first segment ('deleted'; the replacement is
   * then the caller's to abandon). Null, with nothing changed, when `old` is no longer in the
   * log or the log is stopping.
   */
  replaceSegment(old: LogSegment, replacement: LogSegment): Promise<'replaced' | 'deleted' | null>;
}

export interface CleanerLimits {
  /** Segment bytes rewritten per run, at least one segment. */
  maxBytesPerRun?: number;
}

export interface CompactionResult {
  segmentsRewritten: number;
  /** Segments that lost every batch and were removed (never the first one: it holds logStartOffset). */
  segmentsDeleted: number;
  recordsRemoved: number;
  batchesRemoved: number;
  /** Size of the rewritten segments before and after. */
  bytesBefore: number;
  bytesAfter: number;
  /** False when the byte bound, a vanished segment or a stop cut the run short. */
  complete: boolean;
  /** Earliest time a rerun without new appends could remove more (tombstone expiry, lag); Infinity if never. */
  nextDueMs: number;
}

export function emptyCompactionResult(): CompactionResult {
  return { segmentsRewritten: 0, segmentsDeleted: 0, recordsRemoved: 0, batchesRemoved: 0, bytesBefore: 0, bytesAfter: 0, complete: true, nextDueMs: Infinity };
}

/** One record's framing inside a batch; reused between records so the walk allocates nothing. */
interface RecordView {
  /** Position of the record's length varint, and the position after the record. */
  start: number;
  end: number;
  timestampDelta: number;
  offsetDelta: number;
  keyStart: number;
  /** -1 for a null key. */
  keyLength: number;
  valueIsNull: boolean;
}

/** Walks the records of the (validated) batch at b[pos]; fn sees one reused view per record. */
function forEachRecord(b: Uint8Array, pos: number, fn: (r: RecordView) => void): void {
  const end = pos + batchSizeAt(b, pos);
  const count = readInt32(b, pos + Off.recordCount);
  const r: RecordView = { start: 0, end: 0, timestampDelta: 0, offsetDelta: 0, keyStart: 0, keyLength: -1, valueIsNull: false };
  let p = pos + BATCH_HEADER_BYTES;
  for (let i = 0; i < count; i++) {
    r.start = p;
    const len = readVarint(b, p, end);
    r.end = varintEnd + len;
    r.timestampDelta = readVarint(b, varintEnd + 1, r.end); // + 1: attributes
    r.offsetDelta = readVarint(b, varintEnd, r.end);
    r.keyLength = readVarint(b, varintEnd, r.end);
    r.keyStart = varintEnd;
    r.valueIsNull = readVarint(b, r.keyStart + Math.max(r.keyLength, 0), r.end) < 0;
    fn(r);
    p = r.end;
  }
}

/**
 * For the append path of compacted logs: the offset of the first record without a key in a
 * record set that validateAndAssignOffsets accepted, or -1 when every record has one.
 */
export function firstKeylessOffset(recordSet: Uint8Array): number {
  let found = -1;
  const c = new BatchCursor();
  for (c.reset(recordSet); !c.done && found < 0; c.advance()) {
    const base = c.baseOffset;
    forEachRecord(recordSet, c.at, (r) => {
      if (found < 0 && r.keyLength < 0) found = base + r.offsetDelta;
    });
  }
  return found;
}

/** Keys as map keys: latin1 maps each byte to one UTF-16 unit, so distinct byte strings stay distinct. */
function keyOf(b: Buffer, r: RecordView): string {
  return b.toString('latin1', r.keyStart, r.keyStart + r.keyLength);
}

class Stopped extends Error {}

/**
 * Calls fn for every whole batch of seg below endPosition, in order. Throws Stopped when the
 * segment was closed meanwhile (replaced, deleted, or the log closed).
 */
async function forEachBatch(seg: LogSegment, endPosition: number, fn: (buf: Buffer, p: number) => void): Promise<void> {
  const c = new BatchCursor();
  let position = 0;
  while (position < endPosition) {
    const buf = await seg.read(position, Math.min(READ_CHUNK_BYTES, endPosition - position));
    if (!buf) throw new Stopped();
    for (c.reset(buf, 0, buf.length, seg.logPath, position); c.hasBytes(BATCH_LOG_OVERHEAD); c.advance()) {
      if (!c.hasBytes(c.storedSizeBytes())) break;
      fn(buf, c.at);
    }
    let p = c.at;
    if (p === 0) {
      // One batch larger than the chunk: read it whole.
      const size = buf.length >= BATCH_LOG_OVERHEAD ? c.sizeBytes : 0;
      if (size < BATCH_HEADER_BYTES || position + size > endPosition) throw new SluiceError(ErrorCode.STORAGE_ERROR, `${seg.logPath}: batch at ${position} overruns the segment`);
      const whole = await seg.read(position, size);
      if (!whole) throw new Stopped();
      fn(whole, 0);
      p = size;
    }
    position += p;
  }
}

/** Decides, record by record, what a run removes; shared by the counting and the rewriting pass. */
class Survivors {
  private readonly info = newBatchInfo();
  /** Earliest expiry among kept tombstones. */
  nextTombstoneExpiryMs = Infinity;

  constructor(
    private readonly latest: ReadonlyMap<string, number>,
    private readonly deleteRetentionMs: number,
    private readonly nowMs: number,
    private readonly segmentPath: string,
  ) {}

  /** Marks kept[i] for each record of the batch at b[p]; returns how many are kept. Validates the batch first. */
  judge(b: Buffer, p: number, kept: boolean[]): number {
    const code = validateBatch(b, p, b.length, this.info, true);
    if (code !== ErrorCode.NONE) throw new SluiceError(ErrorCode.STORAGE_ERROR, `${this.segmentPath}: batch at offset ${readInt64(b, p)} is corrupt, not compacting: ${this.info.problem}`);
    const baseOffset = readInt64(b, p + Off.baseOffset);
    const baseTimestamp = readInt64(b, p + Off.baseTimestamp);
    kept.length = 0;
    let count = 0;
    // Control batches (transaction markers) always stay: consumers need them to end transactions.
    const control = (this.info.attributes & ATTR_CONTROL) !== 0;
    forEachRecord(b, p, (r) => {
      let keep = true;
      if (control) {
        kept.push(true);
        count++;
        return;
      }
      if (r.keyLength >= 0) {
        const offset = baseOffset + r.offsetDelta;
        const latest = this.latest.get(keyOf(b, r));
        if (latest !== undefined && latest > offset) keep = false;
        else if (r.valueIsNull) {
          const expiryMs = baseTimestamp + r.timestampDelta + this.deleteRetentionMs;
          if (expiryMs <= this.nowMs) keep = false;
          else this.nextTombstoneExpiryMs = Math.min(this.nextTombstoneExpiryMs, expiryMs);
        }
      }
      kept.push(keep);
      if (keep) count++;
    });
    return count;
  }
}

/**
 * The batch at b[p] with only the records marked in kept, as a new buffer (see the invariants
 * at the top for which header fields change).
 */
function rewriteBatch(b: Buffer, p: number, kept: readonly boolean[], keptCount: number): Buffer {
  const spans: Array<[number, number]> = [];
  let bytes = BATCH_HEADER_BYTES;
  let maxTimestampDelta = -Infinity;
  let i = 0;
  forEachRecord(b, p, (r) => {
    if (kept[i++]) {
      spans.push([r.start, r.end]);
      bytes += r.end - r.start;
      if (r.timestampDelta > maxTimestampDelta) maxTimestampDelta = r.timestampDelta;
    }
  });
  const out = Buffer.allocUnsafe(bytes);
  b.copy(out, 0, p, p + BATCH_HEADER_BYTES);
  let w = BATCH_HEADER_BYTES;
  for (const [start, end] of spans) w += b.copy(out, w, start, end);
  writeInt32(out, Off.batchLength, bytes - BATCH_LOG_OVERHEAD);
  writeInt32(out, Off.recordCount, keptCount);
  writeInt64(out, Off.maxTimestamp, readInt64(out, Off.baseTimestamp) + maxTimestampDelta);
  writeInt32(out, Off.crc, crc32c(out, Off.attributes, bytes));
  return out;
}

/** key -> offset of its latest record below highWatermark, over every segment as far as it was written when read. */
async function buildLatestOffsetMap(segments: readonly LogSegment[], highWatermark: number, isAborted?: (producerId: number, offset: number) => boolean): Promise<Map<string, number>> {
  const latest = new Map<string, number>();
  for (const seg of segments) {
    if (seg.baseOffset >= highWatermark) break;
    await forEachBatch(seg, seg.sizeBytes, (b, p) => {
      const baseOffset = readInt64(b, p + Off.baseOffset);
      // A control record's key is a marker, not a user key; an aborted record never happened
      // for read_committed readers, so neither may hide an older value of its key.
      if (isControlAt(b, p)) return;
      if (isTransactionalAt(b, p) && isAborted !== undefined && isAborted(producerIdAt(b, p), baseOffset)) return;
      forEachRecord(b, p, (r) => {
        if (r.keyLength >= 0 && baseOffset + r.offsetDelta < highWatermark) latest.set(keyOf(b, r), baseOffset + r.offsetDelta);
      });
    });
  }
  return latest;
}

/** One compaction run over `log`; see the top of this file. Rejects only on storage errors. */
export async function cleanLog(log: CleanableLog, nowMs: number, limits: CleanerLimits = {}): Promise<CompactionResult> {
  const maxBytesPerRun = limits.maxBytesPerRun ?? CLEANER_BYTES_PER_RUN_DEFAULT;
  const cfg = log.config;
  const result = emptyCompactionResult();
  const segments = log.currentSegments();
  const highWatermark = log.highWatermark();
  let latest: Map<string, number>;
  try {
    latest = await buildLatestOffsetMap(segments, highWatermark, log.isAborted);
  } catch (e) {
    if (e instanceof Stopped) return { ...result, complete: false };
    throw e;
  }
  for (let i = 0; i < segments.length - 1; i++) {
    const seg = segments[i]!;
    if (log.stopping() || !seg.isOpen) return { ...result, complete: false };
    if (!log.isSealed(seg)) {
      // Rolled, waiting for its flush cycle (so is everything after it): the next run takes it.
      result.complete = false;
      break;
    }
    // Not all committed yet; the log reruns compaction when the high watermark moves.
    if (seg.nextOffset > highWatermark) break;
    if (cfg.minCompactionLagMs > 0 && nowMs - seg.largestTimestampMs < cfg.minCompactionLagMs) {
      result.nextDueMs = Math.min(result.nextDueMs, seg.largestTimestampMs + cfg.minCompactionLagMs);
      break;
    }
    if (result.segmentsRewritten + result.segmentsDeleted > 0 && result.bytesBefore + seg.sizeBytes > maxBytesPerRun) {
      result.complete = false;
      break;
    }
    const survivors = new Survivors(latest, cfg.deleteRetentionMs, nowMs, seg.logPath);
    try {
      const outcome = await cleanSegment(log, seg, survivors, nowMs);
      if (outcome) {
        if (outcome.deleted) result.segmentsDeleted++;
        else result.segmentsRewritten++;
        result.recordsRemoved += outcome.recordsRemoved;
        result.batchesRemoved += outcome.batchesRemoved;
        result.bytesBefore += outcome.bytesBefore;
        result.bytesAfter += outcome.bytesAfter;
      }
    } catch (e) {
      if (e instanceof Stopped) return { ...result, complete: false };
      throw e;
    }
    result.nextDueMs = Math.min(result.nextDueMs, survivors.nextTombstoneExpiryMs);
  }
  if (result.recordsRemoved > 0) {
    log.logger.info('compacted log', { dir: log.dir, ...result, nextDueMs: Number.isFinite(result.nextDueMs) ? result.nextDueMs : null });
  }
  return result;
}

interface SegmentOutcome {
  deleted: boolean;
  recordsRemoved: number;
  batchesRemoved: number;
  bytesBefore: number;
  bytesAfter: number;
}

/** Counts, then (when something goes) rewrites and swaps one segment. Null when it was left as is. */
async function cleanSegment(log: CleanableLog, seg: LogSegment, survivors: Survivors, nowMs: number): Promise<SegmentOutcome | null> {
  const endPosition = seg.sizeBytes; // sealed: does not grow
  const kept: boolean[] = [];
  let removable = 0;
  await forEachBatch(seg, endPosition, (b, p) => {
    removable += readInt32(b, p + Off.recordCount) - survivors.judge(b, p, kept);
  });
  if (removable === 0) return null;

  const replacement = LogSegment.createReplacement(log.dir, seg.baseOffset, log.files);
  let committed = false;
  try {
    let recordsRemoved = 0;
    let batchesRemoved = 0;
    await forEachBatch(seg, endPosition, (b, p) => {
      const count = readInt32(b, p + Off.recordCount);
      const keptCount = survivors.judge(b, p, kept);
      recordsRemoved += count - keptCount;
      if (keptCount === 0) batchesRemoved++;
      else if (keptCount === count) replacement.append(b.subarray(p, p + batchSizeAt(b, p)), log.config.indexIntervalBytes, nowMs);
      else replacement.append(rewriteBatch(b, p, kept, keptCount), log.config.indexIntervalBytes, nowMs);
    });
    await replacement.flush();
    if (log.stopping()) throw new Stopped();
    const bytesAfter = replacement.sizeBytes;
    const swapped = await log.replaceSegment(seg, replacement);
    if (swapped === null) throw new Stopped();
    committed = swapped === 'replaced';
    return { deleted: swapped === 'deleted', recordsRemoved, batchesRemoved, bytesBefore: endPosition, bytesAfter: committed ? bytesAfter : 0 };
  } finally {
    if (!committed) replacement.abandonReplacement();
  }
}
