// Transactions on the partition: WriteTxnMarkers appends control batches (fencing checks,
// acks -1 semantics, internal topics allowed, marker listeners told), the last stable offset,
// the aborted-transaction index (.txnindex, rebuilt at open), read_committed Fetch and
// ListOffsets, and a parked read_committed fetch woken by a marker.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import type { FetchRequest, FetchResponse } from '../../../protocol/apis/fetch.ts';
import type { ListOffsetsResponse } from '../../../protocol/apis/list-offsets.ts';
import type { WriteTxnMarkersRequest, WriteTxnMarkersResponse } from '../../../protocol/apis/write-txn-markers.ts';
import { ErrorCode, SluiceError } from '../../../protocol/errors.ts';
import { batchSizeAt, baseOffsetAt, buildBatch, isControlAt, readControlMarker } from '../../../protocol/record-batch.ts';
import { handleFetch } from '../../../server/api/fetch.ts';
import { handleListOffsets } from '../../../server/api/list-offsets.ts';
import { handleWriteTxnMarkers } from '../../../server/api/txn-markers.ts';
import type { Reply } from '../../../server/network/reply.ts';
import { PartitionLog } from '../../../server/log/partition-log.ts';
import { batch, config, readRaw, recordingLogger, tempDir } from '../log/helpers.ts';
import { addFollower, BROKER_ID, FakeRegistry, fakeContext, leaderState, openPartition } from '../partition/helpers.ts';

function txBatch(producerId: number, epoch: number, seq: number, count = 1): Buffer {
  const records = [];
  for (let i = 0; i < count; i++) records.push({ key: null, value: new TextEncoder().encode(`tx${producerId}-${seq + i}`) });
  return Buffer.from(buildBatch(records, 1_000_000, { producerId, producerEpoch: epoch, baseSequence: seq, transactional: true }));
}

function setup() {
  const t = tempDir();
  const led = openPartition(t.dir, 't', 0, { state: leaderState() });
  const replicated = openPartition(t.dir, 'r', 0, { state: leaderState({ replicas: [BROKER_ID, 2], isr: [BROKER_ID, 2] }) });
  addFollower(replicated, 2);
  const internal = openPartition(t.dir, '__consumer_offsets', 0, { state: leaderState() });
  const registry = new FakeRegistry();
  registry.add('t', 2, [led]);
  registry.add('r', 1, [replicated]);
  registry.add('__consumer_offsets', 1, [internal]);
  const f = fakeContext(registry, [led, replicated, internal]);
  return { ...f, t, led, replicated, internal, done: async () => { await f.close(); t.cleanup(); } };
}

function markers(producerId: number, producerEpoch: number, committed: boolean, coordinatorEpoch: number, topics: Array<[string, number[]]>): WriteTxnMarkersRequest {
  return { markers: [{ producerId, producerEpoch, committed, coordinatorEpoch, topics: topics.map(([topic, partitions]) => ({ topic, partitions })) }] };
}

async function writeMarkers(ctx: Parameters<typeof handleWriteTxnMarkers>[0], req: WriteTxnMarkersRequest, waitMs?: number) {
  const reply = (await handleWriteTxnMarkers(ctx, req, waitMs)) as Reply;
  return (reply.control as WriteTxnMarkersResponse).markers.flatMap((m) => m.topics.flatMap((t) => t.partitions.map((p) => [t.topic, p.partition, p.errorCode])));
}

async function fetch(ctx: Parameters<typeof handleFetch>[0], fetchOffset: number, over: Partial<FetchRequest> = {}) {
  const req: FetchRequest = { maxWaitMs: 0, minBytes: 0, maxBytes: 1 << 20, topics: [{ topic: 't', partitions: [{ partition: 0, fetchOffset, partitionMaxBytes: 1 << 20 }] }], ...over };
  const reply = (await handleFetch(ctx, req)) as Reply;
  const p = (reply.control as FetchResponse).topics[0]!.partitions[0]!;
  return { ...p, records: Buffer.concat((reply.sections ?? []) as Buffer[]) };
}

function batchOffsets(records: Buffer): number[] {
  const out: number[] = [];
  for (let p = 0; p < records.length; p += batchSizeAt(records, p)) out.push(baseOffsetAt(records, p));
  return out;
}

test('markers close transactions: LSO, control batches, aborted index and read_committed fetch', async () => {
  const s = setup();
  try {
    const log = s.led.log;
    s.led.appendAsLeader(txBatch(100, 0, 0, 2), 1); // 0-1, aborted later
    s.led.appendAsLeader(batch(1), 1); // 2, plain
    s.led.appendAsLeader(txBatch(200, 0, 0), 1); // 3, committed later
    assert.equal(log.lastStableOffset, 0);
    // read_committed sees nothing yet; read_uncommitted sees everything.
    let r = await fetch(s.ctx, 0, { isolationLevel: 1 });
    assert.deepEqual([r.recordsBytes, r.lastStableOffset, r.highWatermark], [0, 0, 4]);
    r = await fetch(s.ctx, 0);
    assert.deepEqual(batchOffsets(r.records), [0, 2, 3]);
    assert.deepEqual(r.abortedTransactions, []);

    assert.deepEqual(await writeMarkers(s.ctx, markers(100, 0, false, 1, [['t', [0]]])), [['t', 0, 0]]);
    assert.equal(log.lastStableOffset, 3, 'producer 200 still open at 3');
    r = await fetch(s.ctx, 0, { isolationLevel: 1 });
    assert.deepEqual(batchOffsets(r.records), [0, 2]);
    assert.deepEqual(r.abortedTransactions, [{ producerId: 100, firstOffset: 0 }]);
    assert.equal(r.lastStableOffset, 3);

    assert.deepEqual(await writeMarkers(s.ctx, markers(200, 0, true, 1, [['t', [0]]])), [['t', 0, 0]]);
    assert.equal(log.lastStableOffset, 6);
    r = await fetch(s.ctx, 0, { isolationLevel: 1 });
    assert.deepEqual(batchOffsets(r.records), [0, 2, 3, 4, 5]);
    assert.ok(isControlAt(r.records, positionOf(r.records, 4)));
    assert.deepEqual(readControlMarker(r.records, positionOf(r.records, 4)), { producerId: 100, producerEpoch: 0, committed: false, coordinatorEpoch: 1 });
    // Fetching past the aborted transaction's marker reports it no more.
    r = await fetch(s.ctx, 5, { isolationLevel: 1 });
    assert.deepEqual([batchOffsets(r.records), r.abortedTransactions], [[5], []]);
    assert.deepEqual(s.txnMarkers.map((m) => [m.topic, m.partition, m.marker.producerId, m.offset]), [['t', 0, 100, 4], ['t', 0, 200, 5]]);

    // The index survives a reopen (and is rebuilt when its file is gone).
    await log.close();
    const files = fs.readdirSync(log.dir).filter((f) => f.endsWith('.txnindex'));
    assert.deepEqual(files, ['00000000000000000000.txnindex']);
    assert.ok(fs.readdirSync(log.dir).some((f) => f.endsWith('.snapshot')), 'close wrote a producer state snapshot');
    // With the snapshot, the abort below it comes from the index file.
    let reopened = PartitionLog.open(log.dir, config(), { cleanShutdown: true, logger: recordingLogger() });
    assert.deepEqual(reopened.abortedTransactions(0, 10), [{ producerId: 100, firstOffset: 0, lastOffset: 4 }]);
    assert.equal(reopened.lastStableOffset, 6);
    await reopened.close();
    // Without snapshot and index, open replays the log and rebuilds both.
    for (const f of fs.readdirSync(log.dir)) if (f.endsWith('.snapshot') || f.endsWith('.txnindex')) fs.rmSync(`${log.dir}/${f}`);
    reopened = PartitionLog.open(log.dir, config(), { cleanShutdown: true, logger: recordingLogger() });
    assert.deepEqual(reopened.abortedTransactions(0, 10), [{ producerId: 100, firstOffset: 0, lastOffset: 4 }]);
    assert.ok(fs.existsSync(`${log.dir}/${files[0]}`), 'rebuilt at open');
    assert.equal(reopened.lastStableOffset, 6);
    await reopened.close();
  } finally {
    await s.done().catch(() => undefined);
  }
});

function positionOf(records: Buffer, offset: number): number {
  for (let p = 0; p < records.length; p += batchSizeAt(records, p)) if (baseOffsetAt(records, p) === offset) return p;
  throw new Error(`no batch at ${offset}`);
}

test('WriteTxnMarkers: fencing by coordinator epoch and producer epoch, internal topics allowed, unknown and not-leader partitions', async () => {
  const s = setup();
  try {
    s.led.appendAsLeader(txBatch(7, 3, 0), 1);
    assert.deepEqual(await writeMarkers(s.ctx, markers(7, 3, true, 5, [['t', [0, 1, 9]], ['nope', [0]]])), [
      ['t', 0, 0],
      ['t', 1, ErrorCode.NOT_LEADER],
      ['t', 9, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION],
      ['nope', 0, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION],
    ]);
    const end = s.led.log.logEndOffset;
    assert.deepEqual(await writeMarkers(s.ctx, markers(7, 3, true, 4, [['t', [0]]])), [['t', 0, ErrorCode.TRANSACTION_COORDINATOR_FENCED]]);
    assert.deepEqual(await writeMarkers(s.ctx, markers(7, 2, true, 5, [['t', [0]]])), [['t', 0, ErrorCode.INVALID_PRODUCER_EPOCH]]);
    assert.equal(s.led.log.logEndOffset, end, 'refused markers are not appended');
    // A repeated marker (no open transaction) is appended and changes nothing.
    assert.deepEqual(await writeMarkers(s.ctx, markers(7, 3, true, 5, [['t', [0]], ['__consumer_offsets', [0]]])), [['t', 0, 0], ['__consumer_offsets', 0, 0]]);
    assert.equal(s.led.log.lastStableOffset, s.led.log.logEndOffset);
    // acks -1 semantics: not acknowledged until the followers have it.
    s.replicated.appendAsLeader(txBatch(8, 0, 0), 1);
    assert.deepEqual(await writeMarkers(s.ctx, markers(8, 0, false, 0, [['r', [0]]]), 30), [['r', 0, ErrorCode.REQUEST_TIMED_OUT]]);
    const pending = writeMarkers(s.ctx, markers(8, 0, false, 0, [['r', [0]]]), 5000);
    await new Promise((res) => setTimeout(res, 10));
    s.replicated.followers.get(2)!.logEndOffset = s.replicated.log.logEndOffset;
    s.replicated.advanceHighWatermark();
    assert.deepEqual(await pending, [['r', 0, 0]]);
  } finally {
    await s.done();
  }
});

test('a parked read_committed fetch wakes when a marker moves the LSO; bad isolation levels are MALFORMED_REQUEST; ListOffsets reads the LSO', async () => {
  const s = setup();
  try {
    s.led.appendAsLeader(txBatch(1, 0, 0), 1);
    const started = Date.now();
    const parked = fetch(s.ctx, 0, { isolationLevel: 1, minBytes: 1, maxWaitMs: 5000 });
    await new Promise((res) => setTimeout(res, 50));
    const lo = (await handleListOffsets(s.ctx, { isolationLevel: 1, topics: [{ topic: 't', partitions: [{ partition: 0, timestamp: -1 }, { partition: 0, timestamp: 0 }] }] })) as Reply;
    assert.deepEqual((lo.control as ListOffsetsResponse).topics[0]!.partitions.map((p) => p.offset), [0, 0]);
    const lu = (await handleListOffsets(s.ctx, { topics: [{ topic: 't', partitions: [{ partition: 0, timestamp: -1 }] }] })) as Reply;
    assert.equal((lu.control as ListOffsetsResponse).topics[0]!.partitions[0]!.offset, 1);
    await writeMarkers(s.ctx, markers(1, 0, true, 0, [['t', [0]]]));
    const r = await parked;
    assert.ok(Date.now() - started < 4000, 'woken by the marker, not by the timeout');
    assert.deepEqual(batchOffsets(r.records), [0, 1]);
    await assert.rejects(Promise.resolve().then(() => fetch(s.ctx, 0, { isolationLevel: 2 })), (e: SluiceError) => e.code === ErrorCode.MALFORMED_REQUEST);
  } finally {
    await s.done();
  }
});

test('a follower derives the same open transactions and aborted index; truncation rebuilds them', async () => {
  const s = setup();
  const f = tempDir();
  try {
    s.led.appendAsLeader(txBatch(1, 0, 0), 1);
    s.led.appendAsLeader(txBatch(2, 0, 0), 1);
    await writeMarkers(s.ctx, markers(1, 0, false, 0, [['t', [0]]]));
    const follower = PartitionLog.open(f.dir, config(), { cleanShutdown: true, logger: recordingLogger() });
    follower.appendAsFollower(await readRaw(s.led.log));
    assert.deepEqual(follower.abortedTransactions(0, 100), s.led.log.abortedTransactions(0, 100));
    assert.equal(follower.producers.firstUnstableOffset(), 1);
    await follower.truncateTo(2);
    assert.deepEqual(follower.abortedTransactions(0, 100), []);
    assert.equal(follower.producers.firstUnstableOffset(), 0);
    assert.deepEqual(fs.readdirSync(f.dir).filter((n) => n.endsWith('.txnindex')), []);
    await follower.close();
  } finally {
    await s.done();
    f.cleanup();
  }
});

test('WriteTxnMarkers: out-of-range fields are MALFORMED_REQUEST per partition, shutdown is BROKER_SHUTTING_DOWN; nothing is appended', async () => {
  const s = setup();
  try {
    assert.deepEqual(await writeMarkers(s.ctx, markers(-5, 0, true, 0, [['t', [0]]])), [['t', 0, ErrorCode.MALFORMED_REQUEST]]);
    assert.deepEqual(await writeMarkers(s.ctx, markers(5, 40_000, true, 0, [['t', [0]]])), [['t', 0, ErrorCode.MALFORMED_REQUEST]]);
    assert.deepEqual(await writeMarkers(s.ctx, markers(5, 0, true, -2, [['t', [0]]])), [['t', 0, ErrorCode.MALFORMED_REQUEST]]);
    // Entry limit (SPEC §6): 10000 partition entries in all, refused as a whole before any append.
    const many = (n: number) => markers(5, 0, true, 0, [['t', Array.from({ length: n }, () => 0)]]);
    await assert.rejects(handleWriteTxnMarkers(s.ctx, many(10_001)), (e: unknown) => e instanceof SluiceError && e.code === ErrorCode.MALFORMED_REQUEST && /at most 10000/.test(e.message));
    const split: WriteTxnMarkersRequest = { markers: [many(5000).markers[0]!, many(5000).markers[0]!, { ...many(1).markers[0]!, topics: [] }] };
    await assert.rejects(handleWriteTxnMarkers(s.ctx, split), (e: unknown) => e instanceof SluiceError && e.code === ErrorCode.MALFORMED_REQUEST, 'counted over all markers; a marker without topics counts one');
    assert.equal(s.led.log.logEndOffset, 0);
    s.ctx.shuttingDown = true;
    assert.deepEqual(await writeMarkers(s.ctx, markers(5, 0, true, 0, [['t', [0]]])), [['t', 0, ErrorCode.BROKER_SHUTTING_DOWN]]);
    assert.equal(s.led.log.logEndOffset, 0);
  } finally {
    await s.done();
  }
});

test('WriteTxnMarkers over 10000 partition entries is refused as a whole (MALFORMED_REQUEST); nothing is appended', async () => {
  const s = setup();
  try {
    const many: WriteTxnMarkersRequest = { markers: [{ producerId: 5, producerEpoch: 0, committed: true, coordinatorEpoch: 0, topics: [{ topic: 't', partitions: new Array<number>(10_001).fill(0) }] }] };
    await assert.rejects(handleWriteTxnMarkers(s.ctx, many), (e: unknown) => e instanceof SluiceError && e.code === ErrorCode.MALFORMED_REQUEST && /10000/.test(e.message));
    assert.equal(s.led.log.logEndOffset, 0, 'no marker appended');
    const split: WriteTxnMarkersRequest = { markers: [5000, 5000].map((n, i) => ({ producerId: 5 + i, producerEpoch: 0, committed: true, coordinatorEpoch: 0, topics: [{ topic: 't', partitions: new Array<number>(n).fill(0) }] })) };
    assert.equal((await writeMarkers(s.ctx, split, 1000)).length, 10_000, 'at the limit: answered');
  } finally {
    await s.done();
  }
});
