// The Fetch handler with a tagExpression (SPEC §6.7 "Tag filtering"): matching batches and
// nextFetchOffset per partition, unfiltered answers unchanged (no nextFetchOffset), bad
// expressions and follower filters refused, bad tag sets refused on produce, and a filtered
// long poll that keeps waiting past non-matching appends and examines only new data.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { FetchPartitionResult, FetchRequest, FetchResponse } from '../../../protocol/apis/fetch.ts';
import { ErrorCode, SluiceError } from '../../../protocol/errors.ts';
import { batchSizeAt, buildBatch, HEADER_TAGS, lastOffsetAt } from '../../../protocol/record-batch.ts';
import { tagsHeader } from '../../../protocol/tags.ts';
import { handleFetch } from '../../../server/api/fetch.ts';
import type { Reply } from '../../../server/network/reply.ts';
import { tempDir } from '../log/helpers.ts';
import { FakeRegistry, fakeContext, leaderState, openPartition } from '../partition/helpers.ts';

const enc = new TextEncoder();

function tagged(tags: string[], name: string): Buffer {
  const h = tagsHeader(tags);
  return Buffer.from(buildBatch([{ key: null, value: enc.encode(name), headers: h ? [h] : [], timestamp: 1_000_000 }]));
}

function setup(overrides: Record<string, unknown> = {}) {
  const t = tempDir();
  const p = openPartition(t.dir, 't', 0, { state: leaderState() });
  const registry = new FakeRegistry();
  registry.add('t', 1, [p]);
  const f = fakeContext(registry, [p]);
  Object.assign(f.ctx.config, overrides);
  return { ...f, p, done: async () => { await f.close(); t.cleanup(); } };
}

async function fetch(ctx: Parameters<typeof handleFetch>[0], fetchOffset: number, over: Partial<FetchRequest> = {}) {
  const req: FetchRequest = { maxWaitMs: 0, minBytes: 0, maxBytes: 1 << 20, topics: [{ topic: 't', partitions: [{ partition: 0, fetchOffset, partitionMaxBytes: 1 << 20 }] }], ...over };
  const reply = (await handleFetch(ctx, req)) as Reply;
  const result = (reply.control as FetchResponse).topics[0]!.partitions[0]! as FetchPartitionResult;
  const records = Buffer.concat((reply.sections ?? []) as Buffer[]);
  const names: string[] = [];
  for (let q = 0; q < records.length; q += batchSizeAt(records, q)) names.push(records.subarray(q + 61, q + batchSizeAt(records, q)).toString('latin1').replace(/^[^a-z]*/, '').slice(0, 2));
  return { result, records, names };
}

test('filtered: matching batches and nextFetchOffset; unfiltered: the same bytes as before and no nextFetchOffset', async () => {
  const s = setup();
  try {
    const sets: Array<[string[], string]> = [[['a'], 'a0'], [['b'], 'b1'], [[], 'u2'], [['a', 'b'], 'x3'], [['c'], 'c4']];
    for (const [tags, name] of sets) s.p.appendAsLeader(tagged(tags, name), 1);
    const all = await fetch(s.ctx, 0);
    assert.equal(all.result.nextFetchOffset, undefined, 'an unfiltered answer has no nextFetchOffset');
    assert.ok(!('nextFetchOffset' in all.result));
    const nil = await fetch(s.ctx, 0, { tagExpression: null });
    assert.deepEqual(nil.records, all.records, 'nil expression = unfiltered');
    const a = await fetch(s.ctx, 0, { tagExpression: 'a' });
    assert.deepEqual([a.names, a.result.nextFetchOffset], [['a0', 'x3'], 5]);
    const notA = await fetch(s.ctx, 0, { tagExpression: '!a' });
    assert.deepEqual(notA.names, ['b1', 'u2', 'c4']);
    const none = await fetch(s.ctx, 2, { tagExpression: 'zzz' });
    assert.deepEqual([none.records.length, none.result.nextFetchOffset], [0, 5]);
    // Filtered bytes are the stored bytes.
    let q = 0;
    for (; q < all.records.length; q += batchSizeAt(all.records, q)) if (lastOffsetAt(all.records, q) === 3) break;
    assert.deepEqual(a.records.subarray(batchSizeAt(a.records, 0)), all.records.subarray(q, q + batchSizeAt(all.records, q)));
    // Errors: -1.
    const out = await fetch(s.ctx, 99, { tagExpression: 'a' });
    assert.deepEqual([out.result.errorCode, out.result.nextFetchOffset], [ErrorCode.OFFSET_OUT_OF_RANGE, -1]);
  } finally {
    await s.done();
  }
});

test('a bad expression fails the request with INVALID_TAG_EXPRESSION; a follower may not filter; bad tag sets are refused on produce', async () => {
  const s = setup();
  try {
    await assert.rejects(fetch(s.ctx, 0, { tagExpression: 'a &&' }), (e) => e instanceof SluiceError && e.code === ErrorCode.INVALID_TAG_EXPRESSION && /character/.test(e.message));
    await assert.rejects(fetch(s.ctx, 0, { tagExpression: 'a', replicaId: 2 }), (e) => e instanceof SluiceError && e.code === ErrorCode.MALFORMED_REQUEST);
    // SPEC §6.7 order of the request-level checks: isolationLevel, then a follower's filter, then the grammar.
    await assert.rejects(fetch(s.ctx, 0, { tagExpression: 'a &&', isolationLevel: 5, replicaId: 2 }), (e) => e instanceof SluiceError && e.code === ErrorCode.MALFORMED_REQUEST && /isolationLevel/.test(e.message));
    await assert.rejects(fetch(s.ctx, 0, { tagExpression: 'a &&', replicaId: 2 }), (e) => e instanceof SluiceError && e.code === ErrorCode.MALFORMED_REQUEST && /follower/.test(e.message));
    for (const value of ['b,a', 'a,a', '', 'a b', 'a,']) {
      const b = Buffer.from(buildBatch([{ key: null, value: enc.encode('v'), headers: [{ key: HEADER_TAGS, value: enc.encode(value) }], timestamp: 1 }]));
      assert.throws(() => s.p.appendAsLeader(b, 1), (e) => e instanceof SluiceError && e.code === ErrorCode.INVALID_TAGS, value);
    }
    assert.equal(s.p.log.logEndOffset, 0);
  } finally {
    await s.done();
  }
});

test('a filtered long poll keeps waiting past non-matching appends and answers on a match, or at the deadline with nextFetchOffset advanced', async () => {
  const s = setup();
  try {
    const pending = fetch(s.ctx, 0, { tagExpression: 'want', minBytes: 1, maxWaitMs: 10_000 });
    await new Promise((r) => setTimeout(r, 20));
    s.p.appendAsLeader(tagged(['other'], 'o0'), 1);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(s.ctx.delayedFetches.parkedCount, 1, 'still waiting after a non-matching append');
    s.p.appendAsLeader(tagged([], 'u1'), 1);
    s.p.appendAsLeader(tagged(['want'], 'w2'), 1);
    const got = await pending;
    assert.deepEqual([got.names, got.result.nextFetchOffset], [['w2'], 3]);
    const t0 = Date.now();
    s.p.appendAsLeader(tagged(['other'], 'o3'), 1);
    const timedOut = await fetch(s.ctx, 3, { tagExpression: 'want', minBytes: 1, maxWaitMs: 60 });
    assert.ok(Date.now() - t0 >= 50, 'held until maxWaitMs');
    assert.deepEqual([timedOut.records.length, timedOut.result.nextFetchOffset], [0, 4]);
  } finally {
    await s.done();
  }
});

test('the scan bound: a read that examined fetchTagScanBatchesMax batches without a match answers at once with its progress', async () => {
  const s = setup({ fetchTagScanBatchesMax: 2 });
  try {
    for (let i = 0; i < 6; i++) s.p.appendAsLeader(tagged([`t${i}`], `n${i}`), 1);
    const t0 = Date.now();
    const r = await fetch(s.ctx, 0, { tagExpression: 'zzz', minBytes: 1, maxWaitMs: 10_000 });
    assert.ok(Date.now() - t0 < 5000, 'not held to maxWaitMs');
    assert.deepEqual([r.records.length, r.result.nextFetchOffset], [0, 2]);
    const next = await fetch(s.ctx, 2, { tagExpression: 't5' });
    assert.deepEqual([next.names, next.result.nextFetchOffset], [[], 4]);
  } finally {
    await s.done();
  }
});

test('SPEC §6.7: a partition named twice in a filtered fetch: the first entry examines and advances, the second answers nextFetchOffset = its fetchOffset', async () => {
  const s = setup();
  try {
    for (const name of ['x0', 'x1', 'x2']) s.p.appendAsLeader(tagged(['other'], name), 1);
    const req: FetchRequest = {
      maxWaitMs: 0, minBytes: 0, maxBytes: 1 << 20, tagExpression: 'want',
      topics: [{ topic: 't', partitions: [{ partition: 0, fetchOffset: 0, partitionMaxBytes: 1 << 20 }, { partition: 0, fetchOffset: 1, partitionMaxBytes: 1 << 20 }] }],
    };
    const reply = (await handleFetch(s.ctx, req)) as Reply;
    const [first, second] = (reply.control as FetchResponse).topics[0]!.partitions;
    assert.deepEqual([first!.recordsBytes, first!.nextFetchOffset], [0, 3]);
    assert.deepEqual([second!.recordsBytes, second!.nextFetchOffset, second!.errorCode], [0, 1, 0]);
  } finally {
    await s.done();
  }
});
