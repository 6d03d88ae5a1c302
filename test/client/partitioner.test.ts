import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Buffer } from 'node:buffer';
import { keyPartition, murmur2, nextStickyPartition, partitionForKey } from '../../client/partitioner.ts';

// Apache Kafka's UtilsTest.testMurmur2 (clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.java).
const KAFKA_VECTORS: Array<[string, number]> = [
  ['21', -973932308],
  ['foobar', -790332482],
  ['a-little-bit-long-string', -985981536],
  ['a-little-bit-longer-string', -1486304829],
  ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
  ['abc', 479470107],
];

test('murmur2 matches the values Kafka pins in its own tests', () => {
  for (const [key, want] of KAFKA_VECTORS) assert.equal(murmur2(Buffer.from(key)), want, key);
});

test('a key goes to toPositive(murmur2) % n, as Kafka BuiltInPartitioner.partitionForKey', () => {
  for (const [key, hash] of KAFKA_VECTORS) {
    for (const n of [1, 2, 3, 4, 7, 12]) {
      // Expected value computed from Kafka's constant, not from our murmur2.
      assert.equal(partitionForKey(Buffer.from(key), n), (hash & 0x7fffffff) % n, `${key} over ${n}`);
    }
  }
  // Spot values for 3 partitions, written out.
  assert.equal(keyPartition(Buffer.from('21'), 3), 0);
  assert.equal(keyPartition(Buffer.from('foobar'), 3), ((-790332482 & 0x7fffffff) % 3));
});

test('the same key always gets the same partition, strings and bytes alike', () => {
  for (let i = 0; i < 1000; i++) {
    const k = `user-${i}`;
    const p = partitionForKey(Buffer.from(k), 8);
    assert.equal(partitionForKey(new TextEncoder().encode(k), 8), p);
    assert.ok(p >= 0 && p < 8);
  }
});

test('keys spread over every partition', () => {
  const seen = new Set<number>();
  for (let i = 0; i < 200; i++) seen.add(partitionForKey(Buffer.from(`k${i}`), 4));
  assert.deepEqual([...seen].sort(), [0, 1, 2, 3]);
});

test('nextStickyPartition never repeats the previous partition and covers the others', () => {
  assert.equal(nextStickyPartition(0, 1), 0);
  for (const prev of [0, 1, 2, 3]) {
    const seen = new Set<number>();
    for (const r of [0, 1 / 3, 2 / 3]) seen.add(nextStickyPartition(prev, 4, () => r));
    assert.ok(!seen.has(prev), `prev ${prev} chosen again`);
    assert.equal(seen.size, 3);
  }
  for (let i = 0; i < 1000; i++) {
    const p = nextStickyPartition(-1, 5);
    assert.ok(p >= 0 && p < 5);
  }
});
