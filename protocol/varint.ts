/**
 * Zig-zag varints as RecordBatch v2 uses them (protobuf rules): the signed value v is mapped
 * to (v << 1) ^ (v >> 63) so small magnitudes stay short, then written 7 bits per byte,
 * least-significant group first, high bit set on every byte but the last.
 * Values are JS numbers, so the exact range is the safe integers (|v| < 2^53); int32 fields
 * take at most 5 bytes, 64-bit fields at most 10.
 */

export const VARINT_MAX_BYTES = 10;

/** Bytes that writeVarint(v) takes. */
export function varintSize(v: number): number {
  let z = v >= 0 ? v * 2 : -v * 2 - 1;
  let n = 1;
  while (z >= 128) {
    z = Math.floor(z / 128);
    n++;
  }
  return n;
}

/** Writes v at pos and returns the position after it. */
export function writeVarint(buf: Uint8Array, pos: number, v: number): number {
  if (v >= -0x40000000 && v < 0x40000000) {
    // Fast path: zig-zag fits an unsigned 31-bit integer, so bit operators are exact.
    let z = (v << 1) ^ (v >> 31);
    while (z >= 0x80) {
      buf[pos++] = (z & 0x7f) | 0x80;
      z >>>= 7;
    }
    buf[pos++] = z;
    return pos;
  }
  let z = v >= 0 ? v * 2 : -v * 2 - 1;
  while (z >= 128) {
    buf[pos++] = (z % 128) | 0x80;
    z = Math.floor(z / 128);
  }
  buf[pos++] = z;
  return pos;
}

/**
 * Reads a varint at pos. Returns the value; the position after it is left in varintEnd
 * (a module slot instead of a tuple so the hot path allocates nothing).
 * Throws RangeError on a truncated varint or one longer than 10 bytes.
 */
export let varintEnd = 0;

export function readVarint(buf: Uint8Array, pos: number, end: number = buf.length): number {
  let z = 0;
  let mul = 1;
  for (let i = 0; i < VARINT_MAX_BYTES; i++) {
    if (pos >= end) throw new RangeError('truncated varint');
    const b = buf[pos++]!;
    z += (b & 0x7f) * mul;
    if (b < 0x80) {
      varintEnd = pos;
      // Undo zig-zag with arithmetic: z may exceed 32 bits.
      return z % 2 === 0 ? z / 2 : -(z + 1) / 2;
    }
    mul *= 128;
  }
  throw new RangeError('varint longer than 10 bytes');
}
