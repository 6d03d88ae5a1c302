import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { readVarint, VARINT_MAX_BYTES, varintEnd, varintSize, writeVarint } from '../../protocol/varint.ts';
import { hex, refVarint } from './helpers.ts';

function roundTrip(v: number): { bytes: string; back: number; size: number; written: number; end: number } {
  const buf = new Uint8Array(VARINT_MAX_BYTES + 2);
  const written = writeVarint(buf, 1, v) - 1;
  const back = readVarint(buf, 1);
  return { bytes: hex(buf.subarray(1, 1 + written)), back, size: varintSize(v), written, end: varintEnd - 1 };
}

/** Values whose zig-zag image is a safe integer: what writeVarint handles exactly today. */
const EXACT = [0, 1, -1, 63, -64, 64, -65, 127, 128, 8191, -8192, 8192, 2 ** 31 - 1, -(2 ** 31), 2 ** 31, -(2 ** 31) - 1, 0x3fffffff, -0x40000000, 0x40000000, -0x40000001, 2 ** 32, -(2 ** 32), 2 ** 52, -(2 ** 52), 2 ** 53 - 1];

describe('varint', () => {
  test('edge values round-trip, match the reference encoding, and varintSize agrees', () => {
    for (const v of EXACT) {
      const r = roundTrip(v);
      assert.equal(r.back, v, `round-trip ${v}`);
      assert.equal(r.bytes, hex(refVarint(BigInt(v))), `encoding of ${v}`);
      assert.equal(r.size, r.written, `varintSize(${v})`);
      assert.equal(r.end, r.written, `varintEnd after ${v}`);
    }
  });

  test('sizes at the 7-bit group boundaries', () => {
    // z = 2^(7k) - 1 is the largest k-byte value: v = z/2 for even z... use v with z = 2^(7k) - 2 (positive) and 2^(7k) - 1 (negative).
    for (let k = 1; k <= 7; k++) {
      const zMax = 2 ** (7 * k) - 1;
      const vNeg = -(zMax + 1) / 2; // odd z = zMax
      const vPos = (zMax - 1) / 2; // even z = zMax - 1
      assert.equal(varintSize(vNeg), k, `varintSize(${vNeg})`);
      assert.equal(varintSize(vPos), k, `varintSize(${vPos})`);
      assert.equal(varintSize(vPos + 1), k + 1, `varintSize(${vPos + 1})`);
      assert.equal(varintSize(vNeg - 1), k + 1, `varintSize(${vNeg - 1})`);
    }
    assert.equal(varintSize(2 ** 31), 5);
    assert.equal(varintSize(-(2 ** 31)), 5);
    assert.equal(varintSize(2 ** 53 - 1), 8);
  });

  test('SPEC.md §1.2 examples', () => {
    const cases: [number, string][] = [[0, '00'], [-1, '01'], [1, '02'], [300, 'd804'], [-300, 'd704'], [2 ** 31, '8080808010']];
    for (const [v, want] of cases) assert.equal(roundTrip(v).bytes, want);
  });

  test('reads at an offset and stops at the end of the varint', () => {
    const buf = Uint8Array.from([0xff, 0xd8, 0x04, 0x02]);
    assert.equal(readVarint(buf, 1), 300);
    assert.equal(varintEnd, 3);
    assert.equal(readVarint(buf, 3), 1);
    assert.equal(varintEnd, 4);
  });

  test('accepts a non-minimal encoding of at most 10 bytes', () => {
    assert.equal(readVarint(Uint8Array.from([0x82, 0x80, 0x00]), 0), 1);
    assert.equal(varintEnd, 3);
  });

  test('a truncated varint throws RangeError, also when cut by `end`', () => {
    assert.throws(() => readVarint(Uint8Array.from([0x80, 0x80]), 0), RangeError);
    assert.throws(() => readVarint(Uint8Array.from([]), 0), RangeError);
    assert.throws(() => readVarint(Uint8Array.from([0xd8, 0x04]), 0, 1), /truncated/);
  });

  test('a varint longer than 10 bytes throws RangeError', () => {
    assert.throws(() => readVarint(new Uint8Array(11).fill(0x80), 0), /longer than 10 bytes/);
    // Exactly 10 bytes is well framed (the int64 minimum) but not a safe integer: refused, not rounded.
    assert.throws(() => readVarint(Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]), 0), /safe integer/);
  });

  test('random values with |v| <= 2^52 round-trip and match the reference', () => {
    fc.assert(fc.property(fc.integer({ min: -(2 ** 52), max: 2 ** 52 }), (v) => {
      const r = roundTrip(v);
      return r.back === v && r.bytes === hex(refVarint(BigInt(v))) && r.size === r.written;
    }), { numRuns: 5000 });
  });

  test('random int32 values round-trip in at most 5 bytes', () => {
    fc.assert(fc.property(fc.integer(), (v) => {
      const r = roundTrip(v);
      return r.back === v && r.written <= 5;
    }), { numRuns: 5000 });
  });

  // BUG (protocol/varint.ts): below -2^52 the slow path computes z = -v*2-1 in doubles, which
  // is not exact above 2^53, so the sign can even flip: -(2^52)-1 is written as +2^52.
  test('negative safe integers below -2^52 round-trip (-(2^53-1), -(2^52)-1)', () => {
    for (const v of [-(2 ** 53 - 1), -(2 ** 52) - 1, -(2 ** 52) - 3]) {
      const r = roundTrip(v);
      assert.equal(r.bytes, hex(refVarint(BigInt(v))), `encoding of ${v}`);
      assert.equal(r.back, v, `round-trip ${v}`);
    }
  });
});
