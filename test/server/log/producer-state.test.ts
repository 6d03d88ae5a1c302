import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, SluiceError } from '../../../protocol/errors.ts';
import { PartitionLog } from '../../../server/log/partition-log.ts';
import type { ProducerStateConfig } from '../../../server/log/producer-state.ts';
import { config, pbatch, readRaw, recordingLogger, tempDir } from './helpers.ts';

function isCode(code: number) {
  return (e: unknown) => e instanceof SluiceError && e.code === code;
}

function openLog(dir: string, producerState?: ProducerStateConfig, overrides: Record<string, string> = {}) {
  return PartitionLog.open(dir, config(overrides), { cleanShutdown: true, logger: recordingLogger(), producerState });
}

test('a retried batch is answered with its original offsets and not appended again', async () => {
  const t = tempDir();
  try {
    const log = openLog(t.dir);
    const a = log.append(pbatch(7, 0, 0, 3));
    const b = log.append(pbatch(7, 0, 3, 2));
    assert.deepEqual([a.baseOffset, b.baseOffset], [0, 3]);
    const before = await readRaw(log);
    const dupA = log.append(pbatch(7, 0, 0, 3));
    const dupB = log.append(pbatch(7, 0, 3, 2));
    assert.equal(dupA.duplicate, true);
    assert.deepEqual([dupA.baseOffset, dupA.lastOffset], [0, 2]);
    assert.deepEqual([dupB.baseOffset, dupB.lastOffset, dupB.duplicate], [3, 4, true]);
    assert.equal(log.logEndOffset, 5);
    assert.deepEqual(await readRaw(log), before);
    await log.close();
  } finally {
    t.cleanup();
  }
});

test('gaps, old epochs, unknown producers and batches older than the window are refused; nothing is appended', () => {
  const t = tempDir();
  try {
    const log = openLog(t.dir);
    assert.throws(() => log.append(pbatch(1, 0, 5)), isCode(ErrorCode.UNKNOWN_PRODUCER_ID));
    for (let s = 0; s < 7; s++) log.append(pbatch(1, 0, s));
    const end = log.logEndOffset;
    assert.throws(() => log.append(pbatch(1, 0, 9)), isCode(ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER));
    // Sequences 2..6 are the last 5 remembered: 2 is a duplicate, 1 is older than the window.
    assert.equal(log.append(pbatch(1, 0, 2)).duplicate, true);
    assert.throws(() => log.append(pbatch(1, 0, 1)), isCode(ErrorCode.DUPLICATE_SEQUENCE_NUMBER));
    // A new epoch starts at 0 and fences the old one.
    assert.throws(() => log.append(pbatch(1, 1, 7)), isCode(ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER));
    log.append(pbatch(1, 1, 0));
    assert.throws(() => log.append(pbatch(1, 0, 7)), isCode(ErrorCode.INVALID_PRODUCER_EPOCH));
    assert.equal(log.logEndOffset, end + 1);
  } finally {
    t.cleanup();
  }
});

test('a record set is all or nothing: a bad second batch leaves the state and the log as they were', () => {
  const t = tempDir();
  try {
    const log = openLog(t.dir);
    log.append(pbatch(3, 0, 0));
    assert.throws(() => log.append(Buffer.concat([pbatch(3, 0, 1), pbatch(3, 0, 5)])), isCode(ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER));
    assert.equal(log.logEndOffset, 1);
    assert.equal(log.append(Buffer.concat([pbatch(3, 0, 1), pbatch(3, 0, 2)])).baseOffset, 1);
    // A duplicate mixed with a new batch is refused as a whole.
    assert.throws(() => log.append(Buffer.concat([pbatch(3, 0, 2), pbatch(3, 0, 3)])), isCode(ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER));
    assert.equal(log.logEndOffset, 3);
  } finally {
    t.cleanup();
  }
});

test('transactional batches: a plain batch inside an open transaction is INVALID_TXN_STATE; coordinator appends skip sequences but not fencing', () => {
  const t = tempDir();
  try {
    const log = openLog(t.dir);
    log.append(pbatch(4, 2, 0, 1, { transactional: true }));
    assert.equal(log.producers.firstUnstableOffset(), 0);
    assert.throws(() => log.append(pbatch(4, 2, 1)), isCode(ErrorCode.INVALID_TXN_STATE));
    // Coordinator origin: any sequence, still fenced by epoch, continues the transaction.
    log.append(pbatch(9, 3, 42, 1, { transactional: true }), Date.now(), { origin: 'coordinator' });
    assert.throws(() => log.append(pbatch(9, 2, 0, 1, { transactional: true }), Date.now(), { origin: 'coordinator' }), isCode(ErrorCode.INVALID_PRODUCER_EPOCH));
    assert.equal(log.producers.get(9)!.txnFirstOffset, 1);
  } finally {
    t.cleanup();
  }
});

test('a batch of a newer epoch while the producer has a transaction open is INVALID_TXN_STATE: the open one keeps its epoch, so its marker still ends it', () => {
  const t = tempDir();
  try {
    const log = openLog(t.dir);
    log.append(pbatch(4, 2, 0, 1, { transactional: true }));
    log.updateHighWatermark(log.logEndOffset);
    // Would bump the partition's epoch for producer 4 past the coordinator's: its epoch-2
    // marker would then be refused (INVALID_PRODUCER_EPOCH, taken by the coordinator as
    // superseded) and the transaction never end, the last stable offset stuck at 0.
    assert.throws(() => log.append(pbatch(4, 3, 0, 1, { transactional: true })), isCode(ErrorCode.INVALID_TXN_STATE));
    assert.throws(() => log.append(pbatch(4, 3, 0, 1)), isCode(ErrorCode.INVALID_TXN_STATE));
    assert.throws(() => log.append(pbatch(4, 3, 5, 1, { transactional: true }), Date.now(), { origin: 'coordinator' }), isCode(ErrorCode.INVALID_TXN_STATE));
    assert.equal(log.producers.get(4)!.epoch, 2);
    log.appendControl({ producerId: 4, producerEpoch: 2, committed: true, coordinatorEpoch: 0 });
    log.updateHighWatermark(log.logEndOffset);
    assert.equal(log.lastStableOffset, log.logEndOffset, 'the marker ended the transaction');
    // Once it has ended, the new epoch is welcome.
    log.append(pbatch(4, 3, 0, 1, { transactional: true }));
    assert.equal(log.producers.get(4)!.epoch, 3);
  } finally {
    t.cleanup();
  }
});

test('the producer state is rebuilt at open and after truncation, and a follower derives the same state', async () => {
  const t = tempDir();
  const f = tempDir();
  try {
    const log = openLog(t.dir, undefined, { 'segment.bytes': '1024' });
    for (let s = 0; s < 30; s++) log.append(pbatch(5, 0, s * 2, 2));
    assert.ok(log.segmentCount > 2);
    await log.close();
    const reopened = openLog(t.dir);
    assert.equal(reopened.append(pbatch(5, 0, 58, 2)).duplicate, true);
    assert.throws(() => reopened.append(pbatch(5, 0, 48, 2)), isCode(ErrorCode.DUPLICATE_SEQUENCE_NUMBER));
    // Follower: append the leader's bytes, then the same retry is a duplicate there too.
    const follower = openLog(f.dir);
    follower.appendAsFollower(await readRaw(reopened));
    assert.deepEqual(follower.producers.entries(), reopened.producers.entries());
    assert.deepEqual(follower.append(pbatch(5, 0, 58, 2)).baseOffset, 58);
    // Truncation to 56 drops the batches from sequence 56: 56 is next again, 58 is a gap.
    await follower.truncateTo(56);
    assert.throws(() => follower.append(pbatch(5, 0, 58, 2)), isCode(ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER));
    assert.equal(follower.append(pbatch(5, 0, 56, 2)).baseOffset, 56);
    await reopened.close();
    await follower.close();
  } finally {
    t.cleanup();
    f.cleanup();
  }
});

test('producers beyond producerIdsPerPartitionMax evict the longest idle; expiry forgets idle producers', () => {
  const t = tempDir();
  try {
    const log = openLog(t.dir, { producerIdsPerPartitionMax: 2, producerIdExpirationMs: 1000 });
    log.append(pbatch(1, 0, 0, 1, { timestampMs: 5000 }));
    log.append(pbatch(2, 0, 0, 1, { timestampMs: 6000 }));
    log.append(pbatch(3, 0, 0, 1, { timestampMs: 7000 }));
    assert.deepEqual(log.producers.entries().map((e) => e.producerId).sort(), [2, 3]);
    assert.throws(() => log.append(pbatch(1, 0, 1)), isCode(ErrorCode.UNKNOWN_PRODUCER_ID));
    assert.equal(log.expireProducers(7000), 1);
    assert.deepEqual(log.producers.entries().map((e) => e.producerId), [3]);
    // With every producer in an open transaction, a new one is refused.
    const full = tempDir();
    try {
      const l2 = openLog(full.dir, { producerIdsPerPartitionMax: 1, producerIdExpirationMs: 1000 });
      l2.append(pbatch(1, 0, 0, 1, { transactional: true }));
      assert.throws(() => l2.append(pbatch(2, 0, 0)), isCode(ErrorCode.CONCURRENT_TRANSACTIONS));
      assert.equal(l2.expireProducers(Number.MAX_SAFE_INTEGER), 0, 'an open transaction keeps its producer');
    } finally {
      full.cleanup();
    }
  } finally {
    t.cleanup();
  }
});
