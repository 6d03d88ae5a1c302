/**
 * Zig-zag varints as RecordBatch v2 uses them (protobuf rules): the signed value v is mapped
 * to (v << 1) ^ (v >> 63) so small magnitudes stay short, then written 7 bits per byte,
 * least-significant group first, high bit set on every byte but the last.
 * Values are JS numbers, so the exact range is the safe integers (|v| <= 2^53 - 1); int32 fields
 * take at most 5 bytes, 64-bit fields at most 10.
 */

export const VARINT_MAX_BYTES = 10;

/** Bytes that writeVarint(v) takes. */
export function varintSize(v: number): number {
  // Zig-zag of v is 2m (v >= 0, m = v) or 2m + 1 (v < 0, m = -v - 1); count 7-bit groups of it
  // without forming 2m, which may exceed 2^53.
  let m = v >= 0 ? v : -v - 1;
  if (m < 64) return 1;
  m = Math.floor(m / 64);
  let n = 2;
  while (m >= 128) {
    m = Math.floor(m / 128);
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
  // Wide values: the zig-zag number 2m + sign may not be exact as a double, so emit its low
  // 7 bits from m directly (6 bits of m plus the sign bit), then m / 64 seven bits at a time.
  const negative = v < 0;
  let m = negative ? -v - 1 : v;
  buf[pos++] = (((m % 64) * 2) + (negative ? 1 : 0)) | 0x80;
  m = Math.floor(m / 64);
  while (m >= 128) {
    buf[pos++] = (m % 128) | 0x80;
    m = Math.floor(m / 128);
  }
  buf[pos++] = m;
  return pos;
}

/**
 * Reads a varint at pos. Returns the value; the position after it is left in varintEnd
 * (a module slot instead of a tuple so the hot path allocates nothing).
 * Throws RangeError on a truncated varint, one longer than 10 bytes, or a value outside the
 * safe integers.
 */
export let varintEnd = 0;

export function readVarint(buf: Uint8Array, pos: number, end: number = buf.length): number {
  if (pos >= end) throw new RangeError('truncated varint');
  const first = buf[pos++]!;
  if (first < 0x80) {
    varintEnd = pos;
    return first & 1 ? -((first >>> 1) + 1) : first >>> 1;
  }
  // The first byte holds the sign and 6 bits of the magnitude m; later bytes hold m / 64.
  const negative = (first & 1) === 1;
  let m = (first & 0x7f) >>> 1;
  let mul = 64;
  for (let i = 1; i < VARINT_MAX_BYTES; i++) {
    if (pos >= end) throw new RangeError('truncated varint');
    const b = buf[pos++]!;
    m += (b & 0x7f) * mul;
    if (b < 0x80) {
      if (m > Number.MAX_SAFE_INTEGER) throw new RangeError('varint outside the safe integer range');
      varintEnd = pos;
      return negative ? -m - 1 : m;
    }
    mul *= 128;
  }
  throw new RangeError('varint longer than 10 bytes');
}
