/**
 * Delayed sends on the client, no broker: delivery-time checks (delivery-time.ts), the
 * accumulator's batches per (partition, delivery time), the delayed id in the results, the
 * Admin's id parsing.
 */
import assert from 'node:assert/strict';
import { afterEach, test } from 'node:test';
import fc from 'fast-check';
import { setTimeout as delay } from 'node:timers/promises';
import { Buffer } from 'node:buffer';
import { decodeRecords, HEADER_DELIVER_AT_MS, newBatchInfo, validateBatch, type RecordHeader } from '../../protocol/record-batch.ts';
import { ErrorCode, SluiceError } from '../../protocol/errors.ts';
import { parseDelayedRef } from '../../client/admin.ts';
import { DELAY_MS_MAX, deliverAtHeaderValue, deliveryTimeOf, parseDuration, parseInstant } from '../../client/delivery-time.ts';
import { Producer } from '../../client/producer.ts';
import { estimateRecordBytes, KEYED_OPEN_BATCHES_MAX, RecordAccumulator, type DelayedInfo, type DeliverySink, type ProducerBatch } from '../../client/record-accumulator.ts';

class Recorder implements DeliverySink {
  readonly delivered_: Array<{ slot: number; offset: number; delayed: DelayedInfo | null }> = [];
  delivered(slot: number, _topic: string, _partition: number, offset: number, delayed: DelayedInfo | null): void {
    this.delivered_.push({ slot, offset, delayed });
  }
  failed(): void {
    assert.fail('no failure expected');
  }
}

const live: RecordAccumulator[] = [];
afterEach(() => {
  for (const a of live.splice(0)) a.stop();
});

function make(lingerMs = 60_000): RecordAccumulator {
  const acc = new RecordAccumulator({ batchSizeBytes: 16 * 1024, lingerMs, bufferMemoryBytes: 1 << 20, onReady: () => {} });
  live.push(acc);
  acc.setTopic('t', [0, 0]);
  return acc;
}

function appendAt(acc: RecordAccumulator, partition: number, atMs: number, slot: number, sink: DeliverySink): void {
  const v = Buffer.from(`v${slot}`);
  const headers: RecordHeader[] | undefined = atMs < 0 ? undefined : [{ key: HEADER_DELIVER_AT_MS, value: deliverAtHeaderValue(atMs) }];
  const size = estimateRecordBytes(null, v, atMs < 0 ? 0 : 40);
  if (atMs < 0) acc.append(acc.topic('t')!, partition, null, v, headers, Date.now(), size, sink, slot);
  else acc.append(acc.topic('t')!, partition, null, v, headers, Date.now(), size, sink, slot, String(atMs), atMs);
}

const take = (acc: RecordAccumulator): ProducerBatch[] => acc.drainNode(0, Date.now(), Number.MAX_SAFE_INTEGER);

function deliverAtOf(b: ProducerBatch): string[] {
  return decodeRecords(b.bytes!, 0).map((r) => {
    const h = r.headers.filter((x) => x.key === HEADER_DELIVER_AT_MS);
    return h.length === 0 ? '-' : h.map((x) => Buffer.from(x.value!).toString()).join('+');
  });
}

test('records of different delivery times never share a batch; the same time (interleaved) does; each batch is one the broker accepts', () => {
  const acc = make();
  const sink = new Recorder();
  const times = [-1, 5000, 7000, 5000, -1, 7000, 5000];
  times.forEach((at, i) => appendAt(acc, 0, at, i, sink));
  appendAt(acc, 1, 5000, 100, sink);
  acc.sealAll();
  const batches = take(acc);
  const seen = batches.map((b) => ({ p: b.queue.partition, headers: deliverAtOf(b), slots: [...b.slots] }));
  seen.sort((a, b) => a.p - b.p || a.slots[0]! - b.slots[0]!);
  assert.deepEqual(seen, [
    { p: 0, headers: ['-', '-'], slots: [0, 4] },
    { p: 0, headers: ['5000', '5000', '5000'], slots: [1, 3, 6] },
    { p: 0, headers: ['7000', '7000'], slots: [2, 5] },
    { p: 1, headers: ['5000'], slots: [100] },
  ]);
  for (const b of batches) assert.equal(validateBatch(b.bytes!, 0, b.bytes!.length, newBatchInfo()), ErrorCode.NONE);
});

test('a delayed batch\'s records all get the id topic/partition/baseOffset (the wrapper) and the delivery time; plain ones none', () => {
  const acc = make();
  const sink = new Recorder();
  appendAt(acc, 1, 9000, 0, sink);
  appendAt(acc, 1, 9000, 1, sink);
  appendAt(acc, 0, -1, 2, sink);
  acc.sealAll();
  for (const b of take(acc)) acc.complete(b, b.deliverAtMs >= 0 ? 40 : 7);
  const by = new Map(sink.delivered_.map((d) => [d.slot, d]));
  assert.deepEqual(by.get(0), { slot: 0, offset: 40, delayed: { delayedId: 't/1/40', deliverAtMs: 9000 } });
  assert.deepEqual(by.get(1), { slot: 1, offset: 41, delayed: { delayedId: 't/1/40', deliverAtMs: 9000 } });
  assert.deepEqual(by.get(2), { slot: 2, offset: 7, delayed: null });
  assert.equal(acc.bufferUsedBytes, 0);
});

test('open delayed batches per partition are bounded: the oldest is sealed to make room', () => {
  const acc = make();
  const sink = new Recorder();
  for (let i = 0; i < KEYED_OPEN_BATCHES_MAX + 3; i++) appendAt(acc, 0, 1000 + i, i, sink);
  const q = acc.topic('t')!.partitions[0]!;
  assert.equal(q.openTagged!.size, KEYED_OPEN_BATCHES_MAX);
  const sealed = take(acc);
  assert.deepEqual(sealed.map((b) => b.deliverAtMs), [1000, 1001, 1002]);
});

test('linger seals delayed batches as it seals plain ones', async () => {
  const acc = make(20);
  const sink = new Recorder();
  appendAt(acc, 0, 1234, 0, sink);
  appendAt(acc, 0, -1, 1, sink);
  appendAt(acc, 1, 99, 2, sink);
  await delay(80);
  const batches = take(acc);
  assert.equal(batches.length, 3);
  assert.equal(acc.topic('t')!.partitions[0]!.openTagged!.size, 0);
});

test('deliveryTimeOf: delayMs and deliverAt (Date or ms), rounding up, past allowed; bad values refused with INVALID_DELIVERY_TIME', () => {
  const now = 1_800_000_000_000;
  assert.equal(deliveryTimeOf(undefined, undefined, now), -1);
  assert.equal(deliveryTimeOf(null, null, now), -1);
  assert.equal(deliveryTimeOf(undefined, 0, now), now);
  assert.equal(deliveryTimeOf(undefined, 30 * 60_000, now), now + 1_800_000);
  assert.equal(deliveryTimeOf(undefined, 0.2, now), now + 1);
  assert.equal(deliveryTimeOf(undefined, DELAY_MS_MAX, now), now + DELAY_MS_MAX);
  assert.equal(deliveryTimeOf(new Date(now + 5000), undefined, now), now + 5000);
  assert.equal(deliveryTimeOf(now - 60_000, undefined, now), now - 60_000, 'a past time is allowed (delivered at once)');
  const refused = (at: unknown, d: unknown, re: RegExp) =>
    assert.throws(() => deliveryTimeOf(at as number, d as number, now), (e: unknown) => e instanceof SluiceError && e.code === ErrorCode.INVALID_DELIVERY_TIME && re.test(e.message));
  refused(undefined, -1, /delayMs must be a number of ms >= 0/);
  refused(undefined, NaN, /delayMs must be/);
  refused(undefined, Infinity, /delayMs must be/);
  refused(undefined, '5', /delayMs must be/);
  refused(undefined, DELAY_MS_MAX + 1, /beyond the maximum delay/);
  refused(now + 1000, 1000, /exclude each other/);
  refused(new Date('nonsense'), undefined, /valid Date/);
  refused(-5, undefined, /valid Date/);
  refused(now + DELAY_MS_MAX + 1, undefined, /more than the maximum delay/);
});

test('parseDuration and parseInstant (the CLI\'s --delay and --deliver-at)', () => {
  assert.equal(parseDuration('30m'), 1_800_000);
  assert.equal(parseDuration('0'), 0);
  assert.equal(parseDuration('250ms'), 250);
  assert.equal(parseDuration('1.5h'), 5_400_000);
  assert.equal(parseDuration('90d'), 90 * 86_400_000);
  assert.equal(parseDuration('10s'), 10_000);
  assert.throws(() => parseDuration('-5m'), /cannot be negative/);
  assert.throws(() => parseDuration('5 minutes'), /not a duration/);
  assert.throws(() => parseDuration('401d'), /beyond the maximum delay/);
  assert.equal(parseInstant('2026-12-01T10:00:00Z'), Date.UTC(2026, 11, 1, 10));
  assert.equal(parseInstant('2026-12-01T11:00:00+01:00'), Date.UTC(2026, 11, 1, 10));
  assert.equal(parseInstant('2026-12-01'), Date.UTC(2026, 11, 1));
  assert.equal(parseInstant('1800000000000'), 1_800_000_000_000);
  assert.throws(() => parseInstant('2026-12-01T10:00:00'), /with a zone/);
  assert.throws(() => parseInstant('tomorrow'), /not an ISO time/);
  assert.throws(() => parseInstant('2026-13-45T10:00:00Z'), /not a valid time/);
});

test('parseDelayedRef: topic/partition/offset or its parts; anything else is a RangeError', () => {
  assert.deepEqual(parseDelayedRef('orders/3/120'), { topic: 'orders', partition: 3, offset: 120 });
  assert.deepEqual(parseDelayedRef({ topic: 'a.b', partition: 0, offset: 0 }), { topic: 'a.b', partition: 0, offset: 0 });
  for (const bad of ['orders/3', 'orders/x/1', '/1/2', 'a/1/2/3', 'a/-1/2']) assert.throws(() => parseDelayedRef(bad), RangeError, bad);
  assert.throws(() => parseDelayedRef({ topic: 'a', partition: -1, offset: 0 }), RangeError);
});

test('Producer.send refuses a bad delay at send, and any delay on a transactional producer, without sending anything', async () => {
  // No broker at this address: the checks come before any request.
  const p = new Producer({ bootstrap: '127.0.0.1:1', deliveryTimeoutMs: 1000, retryBackoffMs: 10 });
  const tp = new Producer({ bootstrap: '127.0.0.1:1', transactionalId: 'tx', deliveryTimeoutMs: 1000, retryBackoffMs: 10 });
  try {
    // Known topic metadata so the send reaches the checks: applyTopic through the sender.
    (p as unknown as { sender: { applyTopic(m: unknown): void } }).sender.applyTopic({ topic: 't', errorCode: 0, partitions: [{ partition: 0, leader: 1, replicas: [1], isr: [1], errorCode: 0, leaderEpoch: 0 }] });
    (tp as unknown as { sender: { applyTopic(m: unknown): void } }).sender.applyTopic({ topic: 't', errorCode: 0, partitions: [{ partition: 0, leader: 1, replicas: [1], isr: [1], errorCode: 0, leaderEpoch: 0 }] });
    const code = (e: unknown) => e instanceof SluiceError && e.code === ErrorCode.INVALID_DELIVERY_TIME;
    await assert.rejects(p.send({ topic: 't', value: 'x', delayMs: -1 }), code);
    await assert.rejects(p.send({ topic: 't', value: 'x', delayMs: 401 * 86_400_000 }), code);
    await assert.rejects(p.send({ topic: 't', value: 'x', deliverAt: new Date(NaN) }), code);
    await assert.rejects(p.send({ topic: 't', value: 'x', deliverAt: Date.now() + 1000, delayMs: 5 }), code);
    await assert.rejects(tp.send({ topic: 't', value: 'x', delayMs: 1000 }), (e: unknown) => code(e) && /transactional/.test((e as Error).message));
  } finally {
    await Promise.allSettled([p.close(), tp.close()]);
  }
});

test('a sluice-deliver-at-ms header in headers (a forwarded message): ahead = the delivery time, past = dropped, malformed = INVALID_DELIVERY_TIME; deliverAt wins over it', async () => {
  const p = new Producer({ bootstrap: '127.0.0.1:1', deliveryTimeoutMs: 1000, retryBackoffMs: 10, lingerMs: 60_000, acks: 1, idempotent: false });
  // Batches taken out of the sender's hands here: failed at the end, so close() has nothing to wait for.
  const taken: ProducerBatch[] = [];
  try {
    (p as unknown as { sender: { applyTopic(m: unknown): void } }).sender.applyTopic({ topic: 't', errorCode: 0, partitions: [{ partition: 0, leader: 1, replicas: [1], isr: [1], errorCode: 0, leaderEpoch: 0 }] });
    const acc = (p as unknown as { acc: RecordAccumulator }).acc;
    const ahead = Date.now() + 60_000;
    const settled: Array<Promise<unknown>> = [];
    const send = (m: Parameters<Producer['send']>[0]) => settled.push(p.send(m).catch(() => {}));
    send({ topic: 't', partition: 0, value: 'fwd-ahead', headers: [{ key: HEADER_DELIVER_AT_MS, value: String(ahead) }, { key: 'x', value: '1' }] });
    send({ topic: 't', partition: 0, value: 'fwd-past', headers: { [HEADER_DELIVER_AT_MS]: String(Date.now() - 1000), x: '2' } });
    send({ topic: 't', partition: 0, value: 'both', deliverAt: ahead + 5, headers: { [HEADER_DELIVER_AT_MS]: String(ahead) } });
    await assert.rejects(p.send({ topic: 't', partition: 0, value: 'bad', headers: { [HEADER_DELIVER_AT_MS]: '-5' } }), (e: unknown) => e instanceof SluiceError && e.code === ErrorCode.INVALID_DELIVERY_TIME);
    acc.sealAll();
    const batches = acc.drainNode(1, Date.now(), Number.MAX_SAFE_INTEGER);
    taken.push(...batches);
    const seen = batches.map((b) => ({ at: b.deliverAtMs, values: decodeRecords(b.bytes!, 0).map((r) => Buffer.from(r.value!).toString()), headers: deliverAtOf(b) }));
    seen.sort((a, b) => a.at - b.at);
    assert.deepEqual(seen, [
      { at: -1, values: ['fwd-past'], headers: ['-'] },
      { at: ahead, values: ['fwd-ahead'], headers: [String(ahead)] },
      { at: ahead + 5, values: ['both'], headers: [String(ahead + 5)] },
    ]);
  } finally {
    const acc = (p as unknown as { acc: RecordAccumulator }).acc;
    for (const b of acc.drainNode(1, Date.now(), Number.MAX_SAFE_INTEGER)) taken.push(b);
    for (const b of taken) acc.fail(b, new Error('test done'));
    await p.close().catch(() => {});
  }
});

test('fuzz: the delay parsers answer any input with a value or their own clear error, never anything else', () => {
  const ours = (e: unknown) => (e instanceof SluiceError && e.code === ErrorCode.INVALID_DELIVERY_TIME) || e instanceof RangeError;
  fc.assert(
    fc.property(fc.oneof(fc.string(), fc.stringMatching(/^-?\d{0,20}(\.\d{0,3})?(ms|s|m|h|d)?$/), fc.stringMatching(/^\d{4}-\d\d-\d\d(T\d\d:\d\d(:\d\d)?(Z|[+-]\d\d:\d\d)?)?$/)), (text) => {
      for (const f of [parseDuration, parseInstant, parseDelayedRef]) {
        try {
          const v = f(text);
          if (f === parseDuration) assert.ok(Number.isSafeInteger(v) && (v as number) >= 0 && (v as number) <= DELAY_MS_MAX);
          if (f === parseInstant) assert.ok(Number.isFinite(v));
        } catch (e) {
          assert.ok(ours(e), `${f.name}(${JSON.stringify(text)}) threw ${String(e)}`);
        }
      }
    }),
    { numRuns: 2000 },
  );
  fc.assert(
    fc.property(fc.oneof(fc.double(), fc.integer(), fc.constant(undefined)), fc.oneof(fc.double(), fc.integer(), fc.constant(undefined)), (at, d) => {
      try {
        const v = deliveryTimeOf(at, d, 1_800_000_000_000);
        assert.ok(v === -1 || (Number.isSafeInteger(v) && v >= 0 && v <= 1_800_000_000_000 + DELAY_MS_MAX));
      } catch (e) {
        assert.ok(e instanceof SluiceError && e.code === ErrorCode.INVALID_DELIVERY_TIME, String(e));
      }
    }),
    { numRuns: 2000 },
  );
});
