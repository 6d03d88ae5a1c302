// The `__transaction_state` record format (SPEC §7.6) and the transaction state machine:
// exact key/value bytes (keys in SPEC order, shortest encodings), round trips, the partition
// of an id, and a fast-check fuzz of the value decoder (random and mutated bytes only ever
// give a TxnRecordError, never another exception or a value the encoder could not produce).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { encode } from '@msgpack/msgpack';
import { murmur2 } from '../../../protocol/murmur2.ts';
import { decodeTxnKey, decodeTxnValue, encodeTxnKey, encodeTxnValue, TxnRecordError, txnStatePartitionFor } from '../../../server/txn/transaction-log.ts';
import { canTransition, checkTransition, TXN_STATES, withPartitions, type TxnMetadata } from '../../../server/txn/transaction-state.ts';

const SCALE = Number(process.env.FUZZ_SCALE ?? 1);
const runs = (n: number): number => Math.max(1, Math.round(n * SCALE));

const sample: TxnMetadata = {
  producerId: 4000,
  producerEpoch: 3,
  timeoutMs: 60_000,
  state: 'ongoing',
  partitions: [{ topic: 'orders', partitions: [0, 2] }],
  startMs: 1_700_000_000_000,
  updateMs: 1_700_000_000_100,
};

test('key and value bytes: MessagePack ["txn", id] and the map with keys in SPEC order', () => {
  assert.equal(Buffer.from(encodeTxnKey('tx-a')).toString('hex'), '92a374786ea474782d61');
  const value = encodeTxnValue(sample);
  // Keys in the order SPEC §7.6 gives, shortest integer encodings.
  assert.deepEqual(Object.keys((globalThis as unknown as { JSON: JSON }).JSON.parse(JSON.stringify(decodeTxnValue(value)))), ['producerId', 'producerEpoch', 'timeoutMs', 'state', 'partitions', 'startMs', 'updateMs']);
  // fixmap of 7, "producerId", 4000 as uint16 (cd 0f a0): the shortest encoding.
  assert.equal(Buffer.from(value).subarray(0, 15).toString('hex'), '87aa70726f64756365724964cd0fa0');
  assert.deepEqual(Buffer.from(value), Buffer.from(encode({ producerId: 4000, producerEpoch: 3, timeoutMs: 60000, state: 'ongoing', partitions: [{ topic: 'orders', partitions: [0, 2] }], startMs: 1_700_000_000_000, updateMs: 1_700_000_000_100 })));
  assert.deepEqual(decodeTxnValue(value), sample);
  assert.equal(decodeTxnKey(encodeTxnKey('tx-a')), 'tx-a');
  assert.equal(decodeTxnKey(encode(['offset', 'g', 't', 0])), null, 'other record kinds are skipped');
});

test('the partition of a transactional id is (murmur2(id) AND 0x7fffffff) mod 8', () => {
  for (const id of ['tx-a', 'billing', 'ζ', 'x'.repeat(249)]) assert.equal(txnStatePartitionFor(id), (murmur2(new TextEncoder().encode(id)) & 0x7fffffff) % 8, id);
});

test('the state machine allows the SPEC transitions only', () => {
  const allowed = new Set(['empty>empty', 'empty>ongoing', 'empty>prepare-abort', 'ongoing>ongoing', 'ongoing>prepare-commit', 'ongoing>prepare-abort', 'prepare-commit>complete-commit', 'prepare-abort>complete-abort', 'complete-commit>empty', 'complete-commit>ongoing', 'complete-commit>prepare-abort', 'complete-abort>empty', 'complete-abort>ongoing', 'complete-abort>prepare-abort']);
  for (const from of TXN_STATES) for (const to of TXN_STATES) assert.equal(canTransition(from, to), allowed.has(`${from}>${to}`), `${from} -> ${to}`);
  assert.throws(() => checkTransition(sample, { ...sample, producerEpoch: 2 }), /producer epoch/);
  assert.throws(() => checkTransition(sample, { ...sample, state: 'complete-commit' }), /ongoing -> complete-commit/);
  assert.doesNotThrow(() => checkTransition(sample, { ...sample, producerId: 9, producerEpoch: 0, state: 'prepare-abort' }));
  assert.deepEqual(withPartitions(sample.partitions, [{ topic: 'orders', partition: 1 }, { topic: 'orders', partition: 2 }, { topic: 'a', partition: 0 }]), [{ topic: 'orders', partitions: [0, 1, 2] }, { topic: 'a', partitions: [0] }]);
});

const metaArb: fc.Arbitrary<TxnMetadata> = fc
  .record({
    producerId: fc.integer({ min: 0, max: 2 ** 40 }),
    producerEpoch: fc.integer({ min: 0, max: 32767 }),
    timeoutMs: fc.integer({ min: 1, max: 2 ** 31 - 1 }),
    state: fc.constantFrom(...TXN_STATES),
    partitions: fc.uniqueArray(fc.record({ topic: fc.string({ minLength: 1, maxLength: 20 }), partitions: fc.array(fc.integer({ min: 0, max: 10_000 }), { maxLength: 5 }) }), { selector: (t) => t.topic, maxLength: 4 }),
    startMs: fc.integer({ min: -1, max: 2 ** 45 }),
    updateMs: fc.integer({ min: 0, max: 2 ** 45 }),
  })
  .map((m) => (m.state === 'empty' ? { ...m, partitions: [] } : m));

test('fuzz: encoded states round-trip exactly', () => {
  fc.assert(fc.property(metaArb, (m) => assert.deepEqual(JSON.stringify(decodeTxnValue(encodeTxnValue(m))), JSON.stringify(m))), { numRuns: runs(2000) });
});

test('fuzz: random and mutated bytes give a TxnRecordError or a value that re-encodes to a valid state', () => {
  const check = (bytes: Uint8Array) => {
    let m: TxnMetadata;
    try {
      m = decodeTxnValue(bytes);
    } catch (e) {
      assert.ok(e instanceof TxnRecordError, `only TxnRecordError escapes, got ${(e as Error)?.name}: ${(e as Error)?.message}`);
      return;
    }
    // Whatever is accepted is a state the encoder can write and the decoder reads back the same.
    assert.deepEqual(decodeTxnValue(encodeTxnValue(m)), m);
  };
  fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), check), { numRuns: runs(3000) });
  fc.assert(
    fc.property(metaArb, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }), (m, flips) => {
      const bytes = Buffer.from(encodeTxnValue(m));
      for (const [at, v] of flips) bytes[at % bytes.length] = v;
      check(bytes);
    }),
    { numRuns: runs(3000) },
  );
  // Well-formed MessagePack of the wrong shapes.
  fc.assert(fc.property(fc.anything(), (v) => {
    let bytes: Uint8Array;
    try {
      bytes = encode(v);
    } catch {
      return;
    }
    check(bytes);
  }), { numRuns: runs(1000) });
});
