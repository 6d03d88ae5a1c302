/**
 * BatchCursor: the one walker over record batches laid end to end, used by every part of the
 * log that steps from batch to batch: validation of a produced or replicated record set
 * (log-validator.ts), segment appends, tail scans and truncation (segment.ts), recovery
 * (recovery.ts), compaction (log-cleaner.ts), and reads and timestamp lookups (log-reader.ts).
 *
 * A cursor stands on the batch that starts at buf[at]; the range it may walk ends at `end`.
 * The caller asks what it needs (hasBytes, isWhole) before reading header fields, and moves
 * on with advance(). FileBatchCursor is the same cursor over a file read synchronously in
 * chunks (open-time scans and recovery): seek() brings the bytes at a file position into
 * memory, and the same accessors apply.
 *
 * Invariants:
 * - advance() moves forward by at least BATCH_HEADER_BYTES (asserted): a walk always ends.
 *   A length field read from disk that is below a header (storedSizeBytes) is corruption and
 *   throws STORAGE_ERROR naming the file and position: walking on could loop or mislead.
 *   Input from the network is not checked here; validateBatch does that (log-validator.ts).
 * - No allocation per batch: the accessors read the header in place. A cursor is created once
 *   per walk; FileBatchCursor reads at least chunkBytes at a time (the whole batch when it is
 *   larger) into one buffer it reuses, and grows it only for a larger batch. So nothing may
 *   keep `buf` across a seek().
 * - Header accessors need the bytes they read: BATCH_LOG_OVERHEAD for sizeBytes and
 *   baseOffset, BATCH_HEADER_BYTES for the rest (hasBytes); they are not re-checked.
 */
import { ErrorCode, SluiceError } from '../../protocol/errors.ts';
import { BATCH_HEADER_BYTES, BATCH_LOG_OVERHEAD, Off, readInt32, readInt64 } from '../../protocol/record-batch.ts';
import { assert } from '../assert.ts';
import { io } from './log-io.ts';

const EMPTY = Buffer.alloc(0);

export class BatchCursor {
  buf: Buffer | Uint8Array = EMPTY;
  /** Where the current batch starts in buf. */
  at = 0;
  /** Where the walk ends in buf (exclusive). */
  end = 0;
  /** The file position of buf[0], and the file's path: for error messages about stored data only. */
  protected bufPosition = 0;
  protected source = '';

  /** Stands on the batch at buf[at]; walks up to `end`. `source` and `bufPosition` name stored bytes in errors. */
  reset(buf: Buffer | Uint8Array, at = 0, end = buf.length, source = '', bufPosition = 0): this {
    this.buf = buf;
    this.at = at;
    this.end = end;
    this.source = source;
    this.bufPosition = bufPosition;
    return this;
  }

  /** No byte left before the end. */
  get done(): boolean {
    return this.at >= this.end;
  }

  /** Whether at least `n` bytes of the current batch lie before the end. */
  hasBytes(n: number): boolean {
    return this.at + n <= this.end;
  }

  /** Size of the current batch from its length field, unchecked (needs BATCH_LOG_OVERHEAD bytes). */
  get sizeBytes(): number {
    return readInt32(this.buf, this.at + Off.batchLength) + BATCH_LOG_OVERHEAD;
  }

  /** sizeBytes of a stored batch: a length below a batch header throws STORAGE_ERROR (see the top). */
  storedSizeBytes(): number {
    const size = this.sizeBytes;
    if (size < BATCH_HEADER_BYTES) throw new SluiceError(ErrorCode.STORAGE_ERROR, `${this.source}: batch at ${this.position} claims ${size} bytes`);
    return size;
  }

  /** Whether the whole current batch lies before the end (its length field included). */
  get isWhole(): boolean {
    return this.hasBytes(BATCH_LOG_OVERHEAD) && this.at + this.sizeBytes <= this.end;
  }

  /** File position of the current batch (stored data); its index in buf otherwise. */
  get position(): number {
    return this.bufPosition + this.at;
  }

  get baseOffset(): number {
    return readInt64(this.buf, this.at + Off.baseOffset);
  }

  get lastOffset(): number {
    return readInt64(this.buf, this.at + Off.baseOffset) + readInt32(this.buf, this.at + Off.lastOffsetDelta);
  }

  get maxTimestampMs(): number {
    return readInt64(this.buf, this.at + Off.maxTimestamp);
  }

  get partitionLeaderEpoch(): number {
    return readInt32(this.buf, this.at + Off.partitionLeaderEpoch);
  }

  get recordCount(): number {
    return readInt32(this.buf, this.at + Off.recordCount);
  }

  /** Steps over the current batch (sizeBytes, or the size the caller already knows). */
  advance(sizeBytes: number = this.sizeBytes): void {
    assert(sizeBytes >= BATCH_HEADER_BYTES, () => `batch cursor: step of ${sizeBytes} bytes at ${this.position} of ${this.source || 'a record set'}`);
    this.at += sizeBytes;
  }
}

/**
 * The cursor over a file read synchronously, fileEnd bytes long. `at` and `end` are relative to
 * the chunk in memory; `position` is the file position of the current batch.
 */
export class FileBatchCursor extends BatchCursor {
  constructor(
    private readonly fd: number,
    readonly fileEnd: number,
    private readonly chunkBytes: number,
    source: string,
  ) {
    super();
    this.source = source;
  }

  /**
   * Stands on the batch at file position `position` with at least `n` of its bytes in memory;
   * false (and nothing read) when they would pass fileEnd.
   */
  seek(position: number, n: number): boolean {
    if (position + n > this.fileEnd) return false;
    if (position < this.bufPosition || position + n > this.bufPosition + this.end) {
      const len = Math.min(Math.max(n, this.chunkBytes), this.fileEnd - position);
      // The chunk is reused when it is large enough: nothing outside the cursor keeps it.
      if (this.buf.length < len) this.buf = Buffer.allocUnsafe(len);
      readFullySync(this.fd, this.buf, position, len);
      this.bufPosition = position;
      this.end = len;
    }
    this.at = position - this.bufPosition;
    return true;
  }
}

/** Reads exactly `length` bytes (default: all of buf) at `position` into buf[0..length). */
export function readFullySync(fd: number, buf: Buffer | Uint8Array, position: number, length: number = buf.length): void {
  let done = 0;
  while (done < length) {
    const n = io.readSync(fd, buf, done, length - done, position + done);
    if (n === 0) throw new Error(`unexpected end of file at ${position + done}`);
    done += n;
  }
}
