// The Produce handler over hand-made partitions (no socket, no store): per-partition checks
// in SPEC §6.6 order, offsets and logStartOffset, acks 0 / 1 / -1, timeouts after the append.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ProduceRequest, ProduceResponse } from '../../../protocol/apis/produce.ts';
import { ErrorCode, SluiceError } from '../../../protocol/errors.ts';
import { buildBatch } from '../../../protocol/record-batch.ts';
import { handleProduce } from '../../../server/api/produce.ts';
import { CloseConnection, NO_REPLY, type Reply } from '../../../server/network/reply.ts';
import { batch, tempDir } from '../log/helpers.ts';
import { addFollower, BROKER_ID, FakeRegistry, fakeContext, leaderState, openPartition } from '../partition/helpers.ts';

function setup() {
  const t = tempDir();
  const led = openPartition(t.dir, 't', 0, { state: leaderState() });
  const followed = openPartition(t.dir, 't', 1, { state: leaderState({ leader: 2 }) });
  const replicated = openPartition(t.dir, 'r', 0, { state: leaderState({ replicas: [BROKER_ID, 2], isr: [BROKER_ID, 2] }), minInsyncReplicas: 2 });
  addFollower(replicated, 2);
  const registry = new FakeRegistry();
  registry.add('t', 2, [led, followed]);
  registry.add('r', 1, [replicated]);
  registry.add('__internal', 1, []);
  const f = fakeContext(registry, [led, followed, replicated]);
  return { ...f, t, led, followed, replicated, done: async () => { await f.close(); t.cleanup(); } };
}

function request(acks: number, entries: Array<[string, number, Buffer]>, timeoutMs = 5000): { req: ProduceRequest; data: Buffer } {
  const topics: ProduceRequest['topics'] = [];
  for (const [topic, partition, records] of entries) {
    let t = topics.find((x) => x.topic === topic);
    if (!t) topics.push((t = { topic, partitions: [] }));
    t.partitions.push({ partition, recordsBytes: records.length });
  }
  return { req: { acks, timeoutMs, topics }, data: Buffer.concat(entries.map((e) => e[2])) };
}

async function produce(ctx: Parameters<typeof handleProduce>[0], acks: number, entries: Array<[string, number, Buffer]>, timeoutMs?: number) {
  const { req, data } = request(acks, entries, timeoutMs);
  const reply = (await handleProduce(ctx, req, data)) as Reply;
  return (reply.control as ProduceResponse).topics.flatMap((t) => t.partitions.map((p) => ({ topic: t.topic, ...p })));
}

test('each partition answers in SPEC order; only the leader appends, at consecutive offsets', async () => {
  const s = setup();
  const r = await produce(s.ctx, 1, [['t', 0, batch(3)], ['t', 0, batch(2)], ['t', 1, batch(1)], ['t', 2, batch(1)], ['nope', 0, batch(1)], ['__internal', 0, batch(1)], ['__none', 0, batch(1)], ['t', 0, Buffer.alloc(0)]]);
  assert.deepEqual(r.map((p) => [p.topic, p.partition, p.errorCode, p.baseOffset]), [
    ['t', 0, 0, 0],
    ['t', 0, 0, 3],
    ['t', 1, ErrorCode.NOT_LEADER, -1],
    ['t', 2, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, -1],
    ['t', 0, ErrorCode.CORRUPT_MESSAGE, -1], // entries are grouped by topic in the request
    ['nope', 0, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, -1],
    ['__internal', 0, ErrorCode.INVALID_TOPIC, -1],
    ['__none', 0, ErrorCode.INVALID_TOPIC, -1],
  ]);
  assert.equal(r[0]!.logStartOffset, 0);
  assert.equal(r[0]!.errorMessage, null);
  assert.match(r[2]!.errorMessage!, /not the leader/);
  assert.equal(s.followed.log.logEndOffset, 0);
  assert.equal(s.led.log.logEndOffset, 5);
  await s.done();
});

test('invalid acks and shutdown refuse every partition before anything else', async () => {
  const s = setup();
  assert.deepEqual((await produce(s.ctx, 2, [['t', 0, batch(1)], ['__internal', 0, batch(1)]])).map((p) => p.errorCode), [ErrorCode.INVALID_REQUIRED_ACKS, ErrorCode.INVALID_REQUIRED_ACKS]);
  s.ctx.shuttingDown = true;
  assert.deepEqual((await produce(s.ctx, 1, [['t', 0, batch(1)], ['__internal', 0, batch(1)]])).map((p) => p.errorCode), [ErrorCode.BROKER_SHUTTING_DOWN, ErrorCode.BROKER_SHUTTING_DOWN]);
  assert.equal(s.led.log.logEndOffset, 0);
  await s.done();
});

test('acks 0: no reply; a failed partition closes the connection', async () => {
  const s = setup();
  const ok = request(0, [['t', 0, batch(1)]]);
  assert.equal(await handleProduce(s.ctx, ok.req, ok.data), NO_REPLY);
  const bad = request(0, [['t', 0, batch(1)], ['t', 1, batch(1)]]);
  await assert.rejects(handleProduce(s.ctx, bad.req, bad.data), CloseConnection);
  assert.equal(s.led.log.logEndOffset, 2, 'the good partition was appended');
  await s.done();
});

test('acks -1: NOT_ENOUGH_REPLICAS before the append; otherwise held until the ISR has it, or REQUEST_TIMED_OUT with the offset', async () => {
  const s = setup();
  s.replicated.state = { ...s.replicated.state!, isr: [BROKER_ID] };
  let [r] = await produce(s.ctx, -1, [['r', 0, batch(2)]]);
  assert.equal(r!.errorCode, ErrorCode.NOT_ENOUGH_REPLICAS);
  assert.equal(s.replicated.log.logEndOffset, 0, 'not written: safe to retry');
  s.replicated.state = { ...s.replicated.state!, isr: [BROKER_ID, 2] };
  [r] = await produce(s.ctx, -1, [['r', 0, batch(2)]], 30);
  assert.equal(r!.errorCode, ErrorCode.REQUEST_TIMED_OUT);
  assert.equal(r!.baseOffset, 0, 'appended all the same');
  const { req, data } = request(-1, [['r', 0, batch(1)]]);
  const pending = handleProduce(s.ctx, req, data);
  await new Promise((res) => setTimeout(res, 10));
  s.replicated.followers.get(2)!.logEndOffset = 3;
  s.replicated.advanceHighWatermark();
  const reply = (await pending) as Reply;
  const p = (reply.control as ProduceResponse).topics[0]!.partitions[0]!;
  assert.deepEqual([p.errorCode, p.baseOffset], [0, 2]);
  await s.done();
});

test('data section and recordsBytes must agree (request-level error)', async () => {
  const s = setup();
  const { req } = request(1, [['t', 0, batch(1)]]);
  await assert.rejects(Promise.resolve().then(() => handleProduce(s.ctx, req, Buffer.alloc(3))), (e: SluiceError) => e.code === ErrorCode.MALFORMED_REQUEST);
  await s.done();
});

test('idempotent retry: errorCode 0 with the original baseOffset, nothing appended; with acks -1 it waits for the high watermark to pass the original', async () => {
  const s = setup();
  const pb = (seq: number) => Buffer.from(buildBatch([{ key: null, value: new Uint8Array([seq]) }], 1000, { producerId: 11, producerEpoch: 0, baseSequence: seq }));
  let [r] = await produce(s.ctx, 1, [['t', 0, pb(0)]]);
  assert.deepEqual([r!.errorCode, r!.baseOffset], [0, 0]);
  [r] = await produce(s.ctx, 1, [['t', 0, pb(0)]]);
  assert.deepEqual([r!.errorCode, r!.baseOffset, s.led.log.logEndOffset], [0, 0, 1]);
  [r] = await produce(s.ctx, 1, [['t', 0, pb(5)]]);
  assert.equal(r!.errorCode, ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER);
  // acks -1: the original is not replicated yet, so neither is its duplicate acknowledged.
  [r] = await produce(s.ctx, -1, [['r', 0, pb(0)]], 30);
  assert.equal(r!.errorCode, ErrorCode.REQUEST_TIMED_OUT);
  const { req, data } = request(-1, [['r', 0, pb(0)]]);
  const pending = handleProduce(s.ctx, req, data);
  await new Promise((res) => setTimeout(res, 10));
  assert.equal(s.replicated.log.logEndOffset, 1, 'the retry appended nothing');
  s.replicated.followers.get(2)!.logEndOffset = 1;
  s.replicated.advanceHighWatermark();
  const p = ((await pending) as Reply).control as ProduceResponse;
  assert.deepEqual([p.topics[0]!.partitions[0]!.errorCode, p.topics[0]!.partitions[0]!.baseOffset], [0, 0]);
  await s.done();
});
