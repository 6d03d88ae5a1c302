/** Small builders shared by the protocol tests: reference encoders and hand-made batches. */
import { crc32c } from '../../protocol/crc32c.ts';
import { BATCH_HEADER_BYTES, BATCH_LOG_OVERHEAD, Off, writeInt32, writeInt64 } from '../../protocol/record-batch.ts';

export const utf8 = new TextEncoder();

/** Reference zig-zag varint encoder over the full int64 range, written from SPEC.md §1.2. */
export function refVarint(v: bigint): Uint8Array {
  let z = BigInt.asUintN(64, (v << 1n) ^ (v >> 63n));
  const out: number[] = [];
  while (z >= 0x80n) {
    out.push(Number(z & 0x7fn) | 0x80);
    z >>= 7n;
  }
  out.push(Number(z));
  return Uint8Array.from(out);
}

/** Reference bitwise CRC-32C, written from SPEC.md §11. */
export function refCrc32c(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (c & 1 ? 0x82f63b78 : 0);
  }
  return (c ^ 0xffffffff) >>> 0;
}

export function hex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

/** Recomputes batchLength (from the buffer size) and the CRC, as a forger with valid framing would. */
export function reseal(batch: Uint8Array, fixLength = true): Uint8Array {
  if (fixLength) writeInt32(batch, Off.batchLength, batch.length - BATCH_LOG_OVERHEAD);
  writeInt32(batch, Off.crc, crc32c(batch, Off.attributes, batch.length));
  return batch;
}

/**
 * A batch around hand-written record bytes, with a correct header for `recordCount` records
 * and a valid CRC: the way to build records that BatchBuilder would never produce.
 */
export function rawBatch(records: Uint8Array, recordCount: number, baseTimestamp = 1_700_000_000_000, maxTimestamp = baseTimestamp): Uint8Array {
  const b = new Uint8Array(BATCH_HEADER_BYTES + records.length);
  writeInt64(b, Off.baseOffset, 0);
  writeInt32(b, Off.partitionLeaderEpoch, -1);
  b[Off.magic] = 2;
  writeInt32(b, Off.lastOffsetDelta, recordCount - 1);
  writeInt64(b, Off.baseTimestamp, baseTimestamp);
  writeInt64(b, Off.maxTimestamp, maxTimestamp);
  writeInt64(b, Off.producerId, -1);
  b[Off.producerEpoch] = 0xff;
  b[Off.producerEpoch + 1] = 0xff;
  writeInt32(b, Off.baseSequence, -1);
  writeInt32(b, Off.recordCount, recordCount);
  b.set(records, BATCH_HEADER_BYTES);
  return reseal(b);
}

/** Concatenates varints (numbers) and raw byte arrays, for hand-written records. */
export function bytesOf(...parts: (number | Uint8Array | number[])[]): Uint8Array {
  const chunks: Uint8Array[] = parts.map((p) => (typeof p === 'number' ? refVarint(BigInt(p)) : Uint8Array.from(p)));
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let pos = 0;
  for (const c of chunks) {
    out.set(c, pos);
    pos += c.length;
  }
  return out;
}

/** One record: length varint, then the body given (attributes onwards). */
export function record(...body: (number | Uint8Array | number[])[]): Uint8Array {
  const b = bytesOf(...body);
  return bytesOf(b.length, b);
}

/** The body of a well-formed record: attributes 0, tsDelta, offsetDelta, key, value, no headers. */
export function simpleRecordBody(offsetDelta: number, key: Uint8Array | null, value: Uint8Array | null): (number | Uint8Array | number[])[] {
  return [[0], 0, offsetDelta, key ? key.length : -1, key ?? [], value ? value.length : -1, value ?? [], 0];
}
