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
 *   (bytes 0..8). That field is outside the CRC, and no other byte changes, so the stored
 *   batches still validate and are served to consumers byte for byte.
 */
import { ErrorCode, SluiceError } from '../../protocol/errors.ts';
import { BATCH_LOG_OVERHEAD, batchSizeAt, newBatchInfo, Off, readInt32, validateBatch, writeInt64 } from '../../protocol/record-batch.ts';

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
}

/**
 * Validates `recordSet` and assigns offsets nextOffset, nextOffset + 1, ... in place.
 * Throws SluiceError (CORRUPT_MESSAGE, UNSUPPORTED_COMPRESSION or RECORD_BATCH_TOO_LARGE)
 * naming the batch; in that case the buffer is unchanged.
 */
export function validateAndAssignOffsets(recordSet: Uint8Array, nextOffset: number, maxMessageBytes: number): ValidatedRecordSet {
  if (recordSet.length === 0) throw new SluiceError(ErrorCode.CORRUPT_MESSAGE, 'empty record set');
  const info = newBatchInfo();
  let recordCount = 0;
  let batchCount = 0;
  let maxTimestampMs = -1;
  for (let pos = 0; pos < recordSet.length; pos += info.size) {
    // Size first: a batch we would refuse anyway is not worth a CRC pass.
    if (recordSet.length - pos >= BATCH_LOG_OVERHEAD) {
      const sizeBytes = batchSizeAt(recordSet, pos);
      if (sizeBytes > maxMessageBytes) {
        throw new SluiceError(ErrorCode.RECORD_BATCH_TOO_LARGE, `batch ${batchCount} is ${sizeBytes} bytes, max.message.bytes is ${maxMessageBytes}`);
      }
    }
    const code = validateBatch(recordSet, pos, recordSet.length, info);
    if (code !== ErrorCode.NONE) throw new SluiceError(code, `batch ${batchCount} at byte ${pos}: ${info.problem}`);
    recordCount += info.recordCount;
    if (info.maxTimestamp > maxTimestampMs) maxTimestampMs = info.maxTimestamp;
    batchCount++;
  }
  if (!Number.isSafeInteger(nextOffset + recordCount)) {
    throw new SluiceError(ErrorCode.STORAGE_ERROR, `offset ${nextOffset} + ${recordCount} records passes 2^53`);
  }
  let offset = nextOffset;
  for (let pos = 0; pos < recordSet.length; pos += batchSizeAt(recordSet, pos)) {
    writeInt64(recordSet, pos, offset);
    // validateBatch proved lastOffsetDelta == recordCount - 1 for every batch.
    offset += readInt32(recordSet, pos + Off.lastOffsetDelta) + 1;
  }
  return { batchCount, recordCount, firstOffset: nextOffset, lastOffset: offset - 1, maxTimestampMs, sizeBytes: recordSet.length };
}
