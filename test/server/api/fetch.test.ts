// The Fetch handler over hand-made partitions: per-partition errors in SPEC §6.7 order,
// consumers below the high watermark and followers to the log end, budgets, repeated
// partitions, follower progress, and long polling woken by an append.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { FetchPartition, FetchPartitionResult, FetchRequest, FetchResponse } from '../../../protocol/apis/fetch.ts';
import { ErrorCode } from '../../../protocol/errors.ts';
import { handleFetch } from '../../../server/api/fetch.ts';
import type { Reply } from '../../../server/network/reply.ts';
import { batch, tempDir } from '../log/helpers.ts';
import { addFollower, BROKER_ID, FakeRegistry, fakeContext, leaderState, openPartition } from '../partition/helpers.ts';

function setup() {
  const t = tempDir();
  const led = openPartition(t.dir, 't', 0, { state: leaderState() });
  const followed = openPartition(t.dir, 't', 1, { state: leaderState({ leader: 2 }) });
  const replicated = openPartition(t.dir, 'r', 0, { state: leaderState({ replicas: [BROKER_ID, 2], isr: [BROKER_ID, 2] }) });
  addFollower(replicated, 2);
  const internal = openPartition(t.dir, '__internal', 0, { state: leaderState() });
  const registry = new FakeRegistry();
  registry.add('t', 3, [led, followed]);
  registry.add('r', 1, [replicated]);
  registry.add('__internal', 1, [internal]);
  const f = fakeContext(registry, [led, followed, replicated, internal]);
  return { ...f, led, followed, replicated, internal, done: async () => { await f.close(); t.cleanup(); } };
}

type Entry = [string, number, Partial<FetchPartition>?];

function request(entries: Entry[], over: Partial<FetchRequest> = {}): FetchRequest {
  const topics: FetchRequest['topics'] = [];
  for (const [topic, partition, p] of entries) {
    let t = topics.find((x) => x.topic === topic);
    if (!t) topics.push((t = { topic, partitions: [] }));
    t.partitions.push({ partition, fetchOffset: 0, partitionMaxBytes: 1 << 20, ...p });
  }
  return { maxWaitMs: 0, minBytes: 0, maxBytes: 1 << 20, topics, ...over };
}

async function fetch(ctx: Parameters<typeof handleFetch>[0], entries: Entry[], over: Partial<FetchRequest> = {}) {
  const reply = (await handleFetch(ctx, request(entries, over))) as Reply;
  const results: Array<FetchPartitionResult & { topic: string }> = (reply.control as FetchResponse).topics.flatMap((t) => t.partitions.map((p) => ({ topic: t.topic, ...p })));
  return { results, sections: (reply.sections ?? []) as Buffer[] };
}

test('errors in SPEC order; highWatermark and logStartOffset filled for served partitions only', async () => {
  const s = setup();
  s.led.appendAsLeader(batch(2), 1);
  const { results } = await fetch(s.ctx, [['t', 0], ['t', 0, { currentLeaderEpoch: 4 }], ['t', 0, { currentLeaderEpoch: 6 }], ['t', 1], ['t', 2], ['t', 3], ['nope', 0], ['__internal', 0], ['__internal', 1]]);
  assert.deepEqual(results.map((r) => [r.topic, r.partition, r.errorCode, r.highWatermark]), [
    ['t', 0, 0, 2],
    ['t', 0, ErrorCode.FENCED_LEADER_EPOCH, -1],
    ['t', 0, ErrorCode.UNKNOWN_LEADER_EPOCH, -1],
    ['t', 1, ErrorCode.NOT_LEADER, -1],
    ['t', 2, ErrorCode.NOT_LEADER, -1],
    ['t', 3, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, -1],
    ['nope', 0, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, -1],
    ['__internal', 0, ErrorCode.INVALID_TOPIC, -1],
    ['__internal', 1, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, -1],
  ]);
  const offset = await fetch(s.ctx, [['t', 0, { fetchOffset: 9 }]]);
  assert.deepEqual([offset.results[0]!.errorCode, offset.results[0]!.highWatermark, offset.results[0]!.logStartOffset], [ErrorCode.OFFSET_OUT_OF_RANGE, 2, 0]);
  await s.done();
});

test('a consumer reads below the high watermark; a follower to the log end, records its progress, and may read internal topics', async () => {
  const s = setup();
  s.replicated.appendAsLeader(batch(3), 1);
  const consumer = await fetch(s.ctx, [['r', 0]]);
  assert.deepEqual([consumer.results[0]!.recordsBytes, consumer.results[0]!.highWatermark], [0, 0]);
  const follower = await fetch(s.ctx, [['r', 0], ['__internal', 0]], { replicaId: 2 });
  assert.ok(follower.results[0]!.recordsBytes > 0);
  assert.equal(follower.results[1]!.errorCode, 0);
  assert.deepEqual(s.followerFetches.map((f) => [f.partition.topic, f.replicaId, f.fetchOffset]), [['r', 2, 0], ['__internal', 2, 0]]);
  await fetch(s.ctx, [['r', 0, { fetchOffset: 99 }]], { replicaId: 2 });
  assert.equal(s.followerFetches.length, 2, 'an offset beyond the log end is not progress');
  await s.done();
});

test('budgets: the first batch always, then only what fits; a repeated partition is read once', async () => {
  const s = setup();
  const one = batch(1, 1_000_000, 200);
  for (let i = 0; i < 3; i++) s.led.appendAsLeader(one, 1);
  const small = await fetch(s.ctx, [['t', 0, { partitionMaxBytes: 1 }]], { maxBytes: 1 });
  assert.equal(small.results[0]!.recordsBytes, one.length, 'one batch, though larger than both limits');
  const two = await fetch(s.ctx, [['t', 0]], { maxBytes: one.length * 2 + 10 });
  assert.equal(two.results[0]!.recordsBytes, one.length * 2);
  const repeated = await fetch(s.ctx, [['t', 0], ['t', 0]]);
  assert.deepEqual(repeated.results.map((r) => [r.errorCode, r.recordsBytes > 0, r.highWatermark]), [[0, true, 3], [0, false, 3]]);
  assert.equal(repeated.sections.length, 1);
  await s.done();
});

test('long polling: parks below minBytes, wakes on an append, answers at the deadline otherwise', async () => {
  const s = setup();
  const started = Date.now();
  const empty = await fetch(s.ctx, [['t', 0]], { minBytes: 1, maxWaitMs: 40 });
  assert.ok(Date.now() - started >= 35, 'held until maxWaitMs');
  assert.equal(empty.results[0]!.recordsBytes, 0);
  const pending = fetch(s.ctx, [['t', 0]], { minBytes: 1, maxWaitMs: 10_000 });
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(s.ctx.delayedFetches.parkedCount, 1);
  s.led.appendAsLeader(batch(1), 1);
  const woken = await pending;
  assert.ok(woken.results[0]!.recordsBytes > 0);
  assert.ok(Date.now() - started < 5000, 'woken, not timed out');
  // An error answers at once, whatever minBytes says.
  const t0 = Date.now();
  await fetch(s.ctx, [['t', 0], ['nope', 0]], { minBytes: 1 << 20, maxWaitMs: 10_000 });
  assert.ok(Date.now() - t0 < 5000);
  // So does a fenced or unknown leader epoch (the partition exists and is led here).
  for (const currentLeaderEpoch of [4, 6]) {
    const t1 = Date.now();
    const r = await fetch(s.ctx, [['t', 0, { fetchOffset: 1, currentLeaderEpoch }]], { minBytes: 1, maxWaitMs: 10_000 });
    assert.equal(r.results[0]!.errorCode, currentLeaderEpoch === 4 ? ErrorCode.FENCED_LEADER_EPOCH : ErrorCode.UNKNOWN_LEADER_EPOCH);
    assert.ok(Date.now() - t1 < 5000, `epoch ${currentLeaderEpoch} answered after ${Date.now() - t1} ms, not at once`);
  }
  // Losing leadership wakes a parked fetch, which then answers NOT_LEADER.
  const parked = fetch(s.ctx, [['t', 0, { fetchOffset: 1 }]], { minBytes: 1, maxWaitMs: 10_000 });
  await new Promise((r) => setTimeout(r, 20));
  s.led.role = 'follower';
  s.led.wakeParkedFetches();
  assert.equal((await parked).results[0]!.errorCode, ErrorCode.NOT_LEADER);
  await s.done();
});
