import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, SluiceError } from '../../../protocol/errors.ts';
import { baseOffsetAt, newBatchInfo, validateBatch } from '../../../protocol/record-batch.ts';
import { validateAndAssignOffsets } from '../../../server/log/log-validator.ts';
import { batch } from './helpers.ts';

test('assigns contiguous offsets by rewriting only baseOffset; CRC still validates', () => {
  const a = batch(3, 1000);
  const b = batch(5, 2000);
  const set = Buffer.concat([a, b]);
  const before = Buffer.from(set);
  const v = validateAndAssignOffsets(set, 42, 1 << 20);
  assert.deepEqual(v, { batchCount: 2, recordCount: 8, firstOffset: 42, lastOffset: 49, maxTimestampMs: 2004, sizeBytes: set.length, producerBatches: 0, delayed: null, controlBatches: 0 });
  assert.equal(baseOffsetAt(set, 0), 42);
  assert.equal(baseOffsetAt(set, a.length), 45);
  // Only bytes 0..8 of each batch changed.
  for (let i = 0; i < set.length; i++) {
    const inHeader = i < 8 || (i >= a.length && i < a.length + 8);
    if (!inHeader) assert.equal(set[i], before[i], `byte ${i} changed`);
  }
  const info = newBatchInfo();
  assert.equal(validateBatch(set, 0, a.length, info), ErrorCode.NONE);
  assert.equal(validateBatch(set, a.length, set.length, info), ErrorCode.NONE);
});

test('all or nothing: one corrupt batch leaves the whole set untouched', () => {
  const set = Buffer.concat([batch(2), batch(2), batch(2)]);
  set[set.length - 3]! ^= 0xff; // inside the last batch's records: CRC fails
  const before = Buffer.from(set);
  assert.throws(() => validateAndAssignOffsets(set, 10, 1 << 20), (e: unknown) => e instanceof SluiceError && e.code === ErrorCode.CORRUPT_MESSAGE && /batch 2/.test(e.message));
  assert.deepEqual(set, before);
});

test('max.message.bytes is per batch; empty and truncated sets are corrupt', () => {
  const big = batch(1, 0, 500);
  assert.throws(() => validateAndAssignOffsets(Buffer.concat([batch(1), big]), 0, 400), (e: unknown) => e instanceof SluiceError && e.code === ErrorCode.RECORD_BATCH_TOO_LARGE);
  assert.equal(validateAndAssignOffsets(Buffer.concat([big, big]), 0, big.length).recordCount, 2);
  assert.throws(() => validateAndAssignOffsets(Buffer.alloc(0), 0, 400), (e: unknown) => e instanceof SluiceError && e.code === ErrorCode.CORRUPT_MESSAGE);
  const b = batch(2);
  assert.throws(() => validateAndAssignOffsets(Buffer.concat([b, b.subarray(0, 30)]), 0, 1 << 20), (e: unknown) => e instanceof SluiceError && e.code === ErrorCode.CORRUPT_MESSAGE);
});
