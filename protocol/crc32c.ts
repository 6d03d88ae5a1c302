// crc-32 ships a table-driven CRC-32C (Castagnoli), the checksum RecordBatch v2 uses.
import CRC32C from 'crc-32/crc32c.js';

/** CRC-32C of bytes[start, end) as an unsigned 32-bit integer. */
export function crc32c(bytes: Uint8Array, start = 0, end = bytes.length): number {
  const view = start === 0 && end === bytes.length ? bytes : bytes.subarray(start, end);
  return CRC32C.buf(view, 0) >>> 0;
}
