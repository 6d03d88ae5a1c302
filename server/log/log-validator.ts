/**
 * LogValidator: the one place where a produced record set is checked before it reaches the log.
 *
 * A record set is one or more RecordBatch v2 laid end to end, exactly as the producer sent it.
 *
 * Invariants:
 * - All or nothing: every batch is validated (framing, magic, CRC-32C, record framing via
 *   protocol's validateBatch, and size <= max.message.bytes) before any byte is changed, so
 *   a set with one bad batch leaves the buffer untouched and nothing is appended.
 * - Offsets are assigned contiguously from nextOffset by rewriting each batch's baseOffset
 *   (bytes 0..8). That field is outside the CRC, and so is partitionLeaderEpoch (bytes
 *   12..16), which a leader stamps with its epoch the same way; no other byte changes, so the
 *   stored batches still validate and are served to consumers byte for byte.
 * - A follower's record set (validateReplicatedRecordSet) already carries the leader's offsets
 *   and epochs: it is checked, never changed. Its batches are validated as stored batches
 *   (compaction on the leader may have left offset gaps inside and between them).
 */
import { ErrorCode, SluiceError } from '../../protocol/errors.ts';
import { ATTR_CONTROL, BATCH_LOG_OVERHEAD, newBatchInfo, NO_PRODUCER_ID, Off, validateBatch, writeInt32, writeInt64 } from '../../protocol/record-batch.ts';
import { checkTagSetBytes } from '../../protocol/tags.ts';
import { BatchCursor } from './batch-cursor.ts';

export interface ValidatedRecordSet {
  batchCount: number;
  recordCount: number;
  /** Offset assigned to the first record of the set. */
  firstOffset: number;
  /** Offset assigned to the last record of the set. */
  lastOffset: number;
  /** Largest batch maxTimestamp in the set, ms. */
  maxTimestampMs: number;
  sizeBytes: number;
  /** Batches with a producerId (idempotent, transactional or control): 0 keeps the append on its plain path. */
  producerBatches: number;
  /**
   * Produced sets: [batch position, value position, value length] of each batch with a
   * `sluice-deliver-at-ms` header (SPEC §8.8), null when none has one (the plain path).
   * Replicated sets: null.
   */
  delayed: number[] | null;
  /** Replicated sets: control batches in the set (0 for produced sets, which cannot have any). */
  controlBatches: number;
}

/**
 * Validates `recordSet` and assigns offsets nextOffset, nextOffset + 1, ... in place; with a
 * partitionLeaderEpoch >= 0, also stamps it into every batch (-1: the producer's value stays).
 * Throws SluiceError (CORRUPT_MESSAGE, UNSUPPORTED_COMPRESSION or RECORD_BATCH_TOO_LARGE)
 * naming the batch; in that case the buffer is unchanged.
 */
export function validateAndAssignOffsets(recordSet: Uint8Array, nextOffset: number, maxMessageBytes: number, partitionLeaderEpoch = -1): ValidatedRecordSet {
  if (recordSet.length === 0) throw new SluiceError(ErrorCode.CORRUPT_MESSAGE, 'empty record set');
  const info = newBatchInfo();
  let recordCount = 0;
  let batchCount = 0;
  let maxTimestampMs = -1;
  let producerBatches = 0;
  let delayed: number[] | null = null;
  const c = new BatchCursor();
  for (c.reset(recordSet); !c.done; c.advance(info.size)) {
    // Size first: a batch we would refuse anyway is not worth a CRC pass.
    if (c.hasBytes(BATCH_LOG_OVERHEAD)) {
      const sizeBytes = c.sizeBytes;
      if (sizeBytes > maxMessageBytes) {
        throw new SluiceError(ErrorCode.RECORD_BATCH_TOO_LARGE, `batch ${batchCount} is ${sizeBytes} bytes, max.message.bytes is ${maxMessageBytes}`);
      }
    }
    const code = validateBatch(recordSet, c.at, recordSet.length, info);
    if (code !== ErrorCode.NONE) throw new SluiceError(code, `batch ${batchCount} at byte ${c.at}: ${info.problem}`);
    // The tag set's syntax (SPEC §8.7, §9 step 11a); a batch without tags costs one comparison.
    if (info.tagsAt >= 0) {
      const problem = checkTagSetBytes(recordSet, info.tagsAt, info.tagsBytes);
      if (problem) throw new SluiceError(ErrorCode.INVALID_TAGS, `batch ${batchCount} at byte ${c.at}: ${problem}`);
    }
    recordCount += info.recordCount;
    if (info.maxTimestamp > maxTimestampMs) maxTimestampMs = info.maxTimestamp;
    if (info.producerId !== NO_PRODUCER_ID) producerBatches++;
    // A batch without a delivery time costs this one branch.
    if (info.deliverAtAt >= 0) (delayed ??= []).push(c.at, info.deliverAtAt, info.deliverAtBytes);
    batchCount++;
  }
  if (!Number.isSafeInteger(nextOffset + recordCount)) {
    throw new SluiceError(ErrorCode.STORAGE_ERROR, `offset ${nextOffset} + ${recordCount} records passes 2^53`);
  }
  let offset = nextOffset;
  for (c.reset(recordSet); !c.done; c.advance()) {
    writeInt64(recordSet, c.at, offset);
    if (partitionLeaderEpoch >= 0) writeInt32(recordSet, c.at + Off.partitionLeaderEpoch, partitionLeaderEpoch);
    // validateBatch proved lastOffsetDelta == recordCount - 1 for every batch.
    offset = c.lastOffset + 1;
  }
  return { batchCount, recordCount, firstOffset: nextOffset, lastOffset: offset - 1, maxTimestampMs, sizeBytes: recordSet.length, producerBatches, delayed, controlBatches: 0 };
}

/**
 * Checks a record set a follower fetched from its leader: every batch valid as a stored batch
 * (CRC-32C included), base offsets increasing, the first at or after logEndOffset. Offsets may
 * have gaps (compaction on the leader). Nothing is changed. Throws SluiceError:
 * OFFSET_OUT_OF_RANGE when the first batch starts below logEndOffset (the fetcher must
 * truncate first), CORRUPT_MESSAGE or UNSUPPORTED_COMPRESSION for a bad batch.
 * max.message.bytes is not applied: the leader accepted the batch, and a follower that refused
 * it could never catch up.
 */
export function validateReplicatedRecordSet(recordSet: Uint8Array, logEndOffset: number): ValidatedRecordSet {
  if (recordSet.length === 0) throw new SluiceError(ErrorCode.CORRUPT_MESSAGE, 'empty record set');
  const info = newBatchInfo();
  let recordCount = 0;
  let batchCount = 0;
  let maxTimestampMs = -1;
  let producerBatches = 0;
  let controlBatches = 0;
  let firstOffset = -1;
  let nextOffsetMin = logEndOffset;
  const c = new BatchCursor();
  for (c.reset(recordSet); !c.done; c.advance(info.size)) {
    const code = validateBatch(recordSet, c.at, recordSet.length, info, true);
    if (code !== ErrorCode.NONE) throw new SluiceError(code, `batch ${batchCount} at byte ${c.at}: ${info.problem}`);
    const baseOffset = c.baseOffset;
    if (baseOffset < nextOffsetMin) {
      if (batchCount === 0) throw new SluiceError(ErrorCode.OFFSET_OUT_OF_RANGE, `replicated batch at offset ${baseOffset} is below the log end offset ${logEndOffset}: truncate the log first`);
      throw new SluiceError(ErrorCode.CORRUPT_MESSAGE, `batch ${batchCount} at offset ${baseOffset} overlaps the previous batch, which ends at ${nextOffsetMin - 1}`);
    }
    if (!Number.isSafeInteger(baseOffset + info.lastOffsetDelta + 1)) throw new SluiceError(ErrorCode.CORRUPT_MESSAGE, `batch ${batchCount} at offset ${baseOffset} passes 2^53`);
    if (batchCount === 0) firstOffset = baseOffset;
    nextOffsetMin = baseOffset + info.lastOffsetDelta + 1;
    recordCount += info.recordCount;
    if (info.maxTimestamp > maxTimestampMs) maxTimestampMs = info.maxTimestamp;
    if (info.producerId !== NO_PRODUCER_ID) producerBatches++;
    if ((info.attributes & ATTR_CONTROL) !== 0) controlBatches++;
    batchCount++;
  }
  return { batchCount, recordCount, firstOffset, lastOffset: nextOffsetMin - 1, maxTimestampMs, sizeBytes: recordSet.length, producerBatches, delayed: null, controlBatches };
}
