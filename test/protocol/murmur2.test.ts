import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { murmur2, partitionForKey } from '../../protocol/murmur2.ts';
import { utf8 } from './helpers.ts';

// Kafka's UtilsTest.testMurmur2 vectors, plus one per trailing-byte count (24..27 bytes).
const VECTORS: [string, number][] = [
  ['', 275646681],
  ['21', -973932308],
  ['abc', 479470107],
  ['foobar', -790332482],
  ['a-little-bit-long-string', -985981536],
  ['a-little-bit-longer-string', -1486304829],
  ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
  ['string-f-24-chars-length', 124730809],
  ['string-fo-25-chars-length', 1269511650],
  ['string-foo-26-chars-length', 119165628],
  ['string-last-27-chars-length', 1089971754],
];

describe('murmur2', () => {
  test('Kafka vectors', () => {
    for (const [key, want] of VECTORS) assert.equal(murmur2(utf8.encode(key)), want, key);
  });

  test('partitionForKey: foobar over 50 partitions is 16, as in Kafka', () => {
    assert.equal(partitionForKey(utf8.encode('foobar'), 50), 16);
  });

  test('partitionForKey is in range and deterministic for any key', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), fc.integer({ min: 1, max: 10_000 }), (key, n) => {
      const p = partitionForKey(key, n);
      return Number.isInteger(p) && p >= 0 && p < n && p === partitionForKey(Uint8Array.from(key), n);
    }), { numRuns: 2000 });
  });

  test('result is a signed int32', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), (key) => {
      const h = murmur2(key);
      return h === (h | 0);
    }), { numRuns: 1000 });
  });
});
