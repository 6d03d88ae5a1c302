/**
 * Consumer reads over both tiers of a partition (SPEC §7.10, reading): the local log and the
 * committed archive. Partition.read/offsetForTimestamp and the handlers that report a log
 * start offset come here when the partition has an archive source; followers never do (they
 * copy the local log and see its start).
 *
 * Rules:
 * - Consumer log start = the archive start when the archive is non-empty and reaches the local
 *   log start (archive endOffset >= local start: its coverage joins the local log), else the
 *   local log start.
 * - A fetch at or above the local start is a local read, exactly as without an archive. Below
 *   it and at or above the archive start, it is an archived read (archived-reader.ts); when the
 *   archive holds nothing more at or after the offset below maxOffset, the read continues in
 *   the local log at max(offset, local start), so the two tiers join without a gap.
 * - A local read that loses a race with local retention (the offset fell below the new local
 *   start while it waited) is answered from the archive instead.
 * - Filtered reads carry one scan bound and byte budget from the archive into the local log.
 * - Aborted transactions of an archived read = archived .txnindex entries + the local log's.
 */
import { ErrorCode, SluiceError } from '../../protocol/errors.ts';
import { batchSizeAt, lastOffsetAt } from '../../protocol/record-batch.ts';
import { filteredRecords, type TagFilter } from '../log/filtered-reader.ts';
import type { ReadResult, TimestampLookup } from '../log/log-reader.ts';
import type { PartitionLog } from '../log/partition-log.ts';
import type { AbortedTxn } from '../log/txn-index.ts';
import type { ArchiveReader } from './archived-reader.ts';
import type { ArchivedSegments } from './archived-segments.ts';

/** Where a partition's committed archive is read from: the broker's reader and the partition's committed segments. */
export interface ArchiveSource {
  readonly reader: ArchiveReader;
  /** The committed segments (the leader's view); null while unknown (not leading, not loaded yet). */
  archived(): ArchivedSegments | null;
  /** This broker leads the partition and is still loading its archive (list and manifests from the store). */
  loading?(): boolean;
}

/** How often a read waiting for the leader's archive load looks again. */
const LOAD_POLL_MS = 20;

/**
 * Waits (at most the reader's timeout) while the new leader loads the archive, so that a
 * consumer right after a leader change or restart is not told the local start as the earliest
 * offset, or OFFSET_OUT_OF_RANGE for an archived offset. False: still loading.
 */
export async function archiveSettled(source: ArchiveSource | null, deadlineMs?: number): Promise<boolean> {
  if (!source?.loading?.()) return true;
  const deadline = Math.min(Date.now() + source.reader.readTimeoutMs, deadlineMs ?? Infinity);
  while (source.loading()) {
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, LOAD_POLL_MS));
  }
  return true;
}

function stillLoading(log: PartitionLog, source: ArchiveSource): SluiceError {
  return new SluiceError(ErrorCode.ARCHIVE_UNAVAILABLE, `the archive of ${log.dir} is still loading from ${source.reader.store.kind} ${source.reader.store.describe()}`);
}

/** The committed archive when it is non-empty and joins the local log, else null. */
export function readableArchive(log: PartitionLog, source: ArchiveSource | null): ArchivedSegments | null {
  const a = source?.archived() ?? null;
  if (!a || a.isEmpty || a.endOffset < log.logStartOffset) return null;
  return a;
}

/** The log start offset consumers are told (see the top). */
export function consumerLogStartOffset(log: PartitionLog, source: ArchiveSource | null): number {
  const a = readableArchive(log, source);
  const local = log.logStartOffset;
  return a ? Math.min(a.startOffset, local) : local;
}

function outOfRange(log: PartitionLog, source: ArchiveSource | null, fetchOffset: number): SluiceError {
  return new SluiceError(ErrorCode.OFFSET_OUT_OF_RANGE, `offset ${fetchOffset} is outside [${consumerLogStartOffset(log, source)}, ${log.logEndOffset}] of ${log.dir}`);
}

/**
 * A consumer's read (unfiltered or filtered) over both tiers; maxOffset as Partition.read
 * computes it. The result's logStartOffset is the consumer log start; an archived read
 * carries abortedTransactions when readCommitted.
 */
export async function readBothTiers(log: PartitionLog, source: ArchiveSource, fetchOffset: number, maxBytes: number, maxOffset: number, readCommitted: boolean, filter?: TagFilter, deadlineMs?: number): Promise<ReadResult> {
  // Below the local start while the new leader loads its archive: wait for it (bounded).
  if (fetchOffset < log.logStartOffset && !(await archiveSettled(source, deadlineMs))) throw stillLoading(log, source);
  const archive = readableArchive(log, source);
  if (!archive || fetchOffset >= log.logStartOffset) {
    try {
      const r = await log.read(fetchOffset, maxBytes, filter ? { maxOffset, filter } : { maxOffset });
      r.logStartOffset = consumerLogStartOffset(log, source);
      return r;
    } catch (e) {
      // Retention moved the local start past the offset while this read waited: the archive has it.
      const again = readableArchive(log, source);
      if (!(e instanceof SluiceError && e.code === ErrorCode.OFFSET_OUT_OF_RANGE && again && fetchOffset < log.logStartOffset && fetchOffset >= again.startOffset)) {
        if (e instanceof SluiceError && e.code === ErrorCode.OFFSET_OUT_OF_RANGE) throw outOfRange(log, source, fetchOffset);
        throw e;
      }
    }
  }
  const a = readableArchive(log, source)!;
  if (fetchOffset < a.startOffset) throw outOfRange(log, source, fetchOffset);
  try {
    return await readArchive(log, source, a, fetchOffset, maxBytes, maxOffset, readCommitted, filter, deadlineMs);
  } catch (e) {
    // Archive retention deleted the segment while this read waited (its objects are gone): the
    // offset is below the archive start now, which is what the consumer must be told.
    if (e instanceof SluiceError && e.code === ErrorCode.ARCHIVE_UNAVAILABLE && fetchOffset < consumerLogStartOffset(log, source)) throw outOfRange(log, source, fetchOffset);
    throw e;
  }
}

/** The archived part of readBothTiers, and the local log after it when the archive ends. */
async function readArchive(log: PartitionLog, source: ArchiveSource, a: ArchivedSegments, fetchOffset: number, maxBytes: number, maxOffset: number, readCommitted: boolean, filter: TagFilter | undefined, deadlineMs: number | undefined): Promise<ReadResult> {
  const reader = source.reader;
  if (filter) {
    const { state, pastArchive } = await reader.readFiltered(a, fetchOffset, maxBytes, maxOffset, filter, deadlineMs);
    if (pastArchive) {
      // The local log goes on with the same state: one budget, one scan bound, the archive's batches first.
      const from = Math.max(state.next, log.logStartOffset);
      if (from < maxOffset) {
        try {
          const r = await log.read(from, maxBytes, { maxOffset, filter, filterSeed: { taken: state.taken, scanned: state.scanned, parts: state.parts } });
          r.logStartOffset = consumerLogStartOffset(log, source);
          if (readCommitted && r.records.length > 0) r.abortedTransactions = await abortedBothTiers(log, reader, a, fetchOffset, lastOffsetOf(r.records), deadlineMs);
          return r;
        } catch (e) {
          // Local retention raced past `from`: answer the archive's share; the next fetch goes on.
          if (!(e instanceof SluiceError && e.code === ErrorCode.OFFSET_OUT_OF_RANGE)) throw e;
        }
      }
    }
    const records = filteredRecords(state);
    const result: ReadResult = {
      records, highWatermark: log.highWatermark, logStartOffset: consumerLogStartOffset(log, source),
      nextFetchOffset: state.next, scanLimited: state.scanned >= filter.scanBatchesMax && state.next < maxOffset,
    };
    if (readCommitted && records.length > 0) result.abortedTransactions = await abortedBothTiers(log, reader, a, fetchOffset, lastOffsetOf(records), deadlineMs);
    return result;
  }
  const r = await reader.read(a, fetchOffset, maxBytes, maxOffset, deadlineMs);
  if (r.records.length === 0 && r.pastArchive) {
    // Nothing more archived at or after the offset: the local log continues where the archive ends.
    const from = Math.max(fetchOffset, log.logStartOffset);
    if (from < maxOffset) {
      const local = await log.read(from, maxBytes, { maxOffset });
      local.logStartOffset = consumerLogStartOffset(log, source);
      return local;
    }
  }
  const result: ReadResult = { records: r.records, highWatermark: log.highWatermark, logStartOffset: consumerLogStartOffset(log, source) };
  if (readCommitted && r.records.length > 0) result.abortedTransactions = await abortedBothTiers(log, reader, a, fetchOffset, lastOffsetOf(r.records), deadlineMs);
  return result;
}

/** Archived aborts (from the .txnindex objects) and the local log's, by marker offset, each once. */
async function abortedBothTiers(log: PartitionLog, reader: ArchiveReader, a: ArchivedSegments, fetchOffset: number, lastOffset: number, deadlineMs: number | undefined): Promise<AbortedTxn[]> {
  const all = [...(await reader.abortedTransactions(a, fetchOffset, lastOffset, deadlineMs)), ...log.abortedTransactions(fetchOffset, lastOffset)];
  all.sort((x, y) => x.lastOffset - y.lastOffset || x.producerId - y.producerId);
  return all.filter((x, i) => i === 0 || x.lastOffset !== all[i - 1]!.lastOffset || x.producerId !== all[i - 1]!.producerId);
}

/** ListOffsets by timestamp: archived segments below the local start first, then the local log. */
export async function offsetForTimestampBothTiers(log: PartitionLog, source: ArchiveSource, timestampMs: number, deadlineMs?: number): Promise<TimestampLookup | null> {
  if (!(await archiveSettled(source, deadlineMs))) throw stillLoading(log, source);
  const a = readableArchive(log, source);
  if (a) {
    const found = await source.reader.offsetForTimestamp(a, timestampMs, log.logStartOffset, deadlineMs);
    if (found) return found;
  }
  return log.offsetForTimestamp(timestampMs);
}

function lastOffsetOf(records: Buffer): number {
  let last = -1;
  for (let p = 0; p < records.length; p += batchSizeAt(records, p)) last = lastOffsetAt(records, p);
  return last;
}
