/**
 * Delayed delivery on one partition (SPEC §8.8, §7.9, §6.25, §6.26), in process: a real
 * PartitionLog in a temp dir, a Partition with its releaser, the ListDelayed / CancelDelayed
 * handlers. The real-process test (kill -9) is test/server/delayed-broker.test.ts.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';
import type { CancelDelayedResponse } from '../../../protocol/apis/cancel-delayed.ts';
import type { ListDelayedResponse } from '../../../protocol/apis/list-delayed.ts';
import { buildReleaseMarker, CONTROL_TYPE_CANCELLED, CONTROL_TYPE_RELEASED, CONTROL_TYPE_SCHEDULED, controlTypeAt, formatDeliverAtMs, readDelayMarker, readScheduled } from '../../../protocol/delayed-batch.ts';
import { ErrorCode, SluiceError } from '../../../protocol/errors.ts';
import { batchSizeAt, buildBatch, decodeRecords, HEADER_DELIVER_AT_MS, isControlAt, Off, producerIdAt, readInt64, type ProducerFields } from '../../../protocol/record-batch.ts';
import { handleCancelDelayed, handleListDelayed } from '../../../server/api/delayed.ts';
import type { Reply } from '../../../server/network/reply.ts';
import type { Partition } from '../../../server/partition/partition.ts';
import { readRaw, tempDir } from '../log/helpers.ts';
import { fakeContext, FakeRegistry, leaderState, openPartition, type FakeContext } from '../partition/helpers.ts';

const enc = new TextEncoder();
const DAY_MS = 86_400_000;

function delayedBatch(deliverAt: number | string, values: string[], producer?: ProducerFields): Buffer {
  const v = typeof deliverAt === 'string' ? enc.encode(deliverAt) : formatDeliverAtMs(deliverAt);
  return Buffer.from(buildBatch(values.map((x) => ({ key: enc.encode('k'), value: enc.encode(x), headers: [{ key: HEADER_DELIVER_AT_MS, value: v }] })), Date.now(), producer));
}

interface Seen {
  offset: number;
  type: number; // -1 data
  values: string[];
  producerId: number;
  marker?: { deliverAtMs: number; wrapperOffset: number };
}

async function logContents(p: Partition): Promise<Seen[]> {
  const raw = await readRaw(p.log, p.log.logStartOffset);
  const out: Seen[] = [];
  for (let pos = 0; pos < raw.length; pos += batchSizeAt(raw, pos)) {
    const offset = readInt64(raw, pos);
    if (isControlAt(raw, pos)) {
      const type = controlTypeAt(raw, pos);
      const m = readDelayMarker(raw, pos);
      out.push({ offset, type, values: [], producerId: producerIdAt(raw, pos), ...(m ? { marker: { deliverAtMs: m.deliverAtMs, wrapperOffset: m.wrapperOffset } } : {}) });
    } else {
      out.push({ offset, type: -1, values: decodeRecords(raw, pos).map((r) => new TextDecoder().decode(r.value!)), producerId: producerIdAt(raw, pos) });
    }
  }
  return out;
}

async function waitFor(cond: () => Promise<boolean> | boolean, timeoutMs = 5000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('delayed delivery on a partition', () => {
  let t: ReturnType<typeof tempDir>;
  let p: Partition;
  let fc: FakeContext;

  function open(logConfig?: Record<string, string>): void {
    p = openPartition(t.dir, 'orders', 0, { state: leaderState(), logConfig });
    const registry = new FakeRegistry();
    registry.add('orders', 1, [p]);
    fc = fakeContext(registry, [p]);
  }

  beforeEach(() => {
    t = tempDir();
    open();
  });
  afterEach(async () => {
    p.releaser.stop();
    await fc.close();
    t.cleanup();
  });

  const list = async (after?: [number, number], limit = 100) =>
    ((await handleListDelayed(fc.ctx, { topic: 'orders', partition: 0, afterDeliverAtMs: after?.[0] ?? null, afterOffset: after?.[1] ?? null, limit })) as Reply).control as ListDelayedResponse;
  const cancel = async (offsets: number[]) => (((await handleCancelDelayed(fc.ctx, { topic: 'orders', partitions: [{ partition: 0, offsets }] })) as Reply).control as CancelDelayedResponse).topics[0]!.partitions[0]!.results;

  test('a future batch is stored as a wrapper with its offsets, released once at its time after a RELEASED marker, never before', async () => {
    p.appendAsLeader(Buffer.from(buildBatch([{ key: null, value: enc.encode('plain') }])), 1);
    const due = Date.now() + 400;
    const a = p.appendAsLeader(delayedBatch(due, ['a0', 'a1', 'a2']), 1);
    assert.equal(a.baseOffset, 1);
    assert.equal(a.lastOffset, 3, 'the wrapper takes the batch\'s three offsets');
    assert.equal(p.log.logEndOffset, 4);
    let seen = await logContents(p);
    assert.deepEqual(seen.map((s) => s.type), [-1, CONTROL_TYPE_SCHEDULED]);
    const l = await list();
    assert.equal(l.errorCode, 0);
    assert.equal(l.pendingCount, 1);
    assert.deepEqual(l.entries, [{ offset: 1, deliverAtMs: due, requestedDeliverAtMs: due, recordCount: 3, sizeBytes: delayedBatch(due, ['a0', 'a1', 'a2']).length }]);
    p.releaser.start();
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(p.log.logEndOffset, 4, 'nothing released before its time');
    await waitFor(() => p.log.logEndOffset > 4);
    assert.ok(Date.now() >= due);
    seen = await logContents(p);
    assert.deepEqual(seen.map((s) => s.type), [-1, CONTROL_TYPE_SCHEDULED, CONTROL_TYPE_RELEASED, -1]);
    assert.deepEqual(seen[2]!.marker, { deliverAtMs: due, wrapperOffset: 1 });
    assert.deepEqual(seen[3]!.values, ['a0', 'a1', 'a2']);
    assert.equal(seen[3]!.producerId, -1);
    assert.equal((await list()).pendingCount, 0);
    assert.deepEqual([(await list()).frontierDeliverAtMs, (await list()).frontierOffset], [due, 1]);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal((await logContents(p)).length, 4, 'released exactly once');
  });

  test('releases in key order across batches, a due-now batch is appended as a normal batch', async () => {
    const now = Date.now();
    p.appendAsLeader(delayedBatch(now + 300, ['late']), 1);
    p.appendAsLeader(delayedBatch(now + 100, ['early']), 1);
    const past = p.appendAsLeader(delayedBatch(now - 5000, ['past']), 1);
    assert.equal((await logContents(p))[past.baseOffset]!.type, -1, 'a past delivery time is a normal batch');
    p.releaser.start();
    await waitFor(async () => (await logContents(p)).filter((s) => s.type === -1).length === 3);
    const data = (await logContents(p)).filter((s) => s.type === -1).map((s) => s.values[0]);
    assert.deepEqual(data, ['past', 'early', 'late']);
  });

  test('bad delivery times are refused with INVALID_DELIVERY_TIME and nothing is written', async () => {
    const now = Date.now();
    const refuse = (b: Buffer, re: RegExp) => {
      assert.throws(() => p.appendAsLeader(b, 1), (e: unknown) => e instanceof SluiceError && e.code === ErrorCode.INVALID_DELIVERY_TIME && re.test(e.message));
    };
    refuse(delayedBatch('-5', ['x']), /decimal digits/);
    refuse(delayedBatch('12ab', ['x']), /decimal digits/);
    refuse(delayedBatch('1234567890123456', ['x']), /decimal digits/);
    refuse(delayedBatch(now + 401 * DAY_MS, ['x']), /at most .* ms \(delayedDeliveryMsMax\)/);
    refuse(delayedBatch(now + 1000, ['x'], { producerId: 7, producerEpoch: 0, baseSequence: 0, transactional: true }), /transactional/);
    assert.equal(p.log.logEndOffset, 0);
    // A batch whose records disagree is refused by validation (SPEC §9 step 9a).
    const mixed = Buffer.from(buildBatch([{ key: null, value: enc.encode('a'), headers: [{ key: HEADER_DELIVER_AT_MS, value: formatDeliverAtMs(now + 10) }] }, { key: null, value: enc.encode('b') }]));
    refuse(mixed, /delivery time/);
  });

  test('compacted topics take no delayed messages', async () => {
    p.releaser.stop();
    await fc.close();
    open({ 'cleanup.policy': 'compact' });
    assert.throws(() => p.appendAsLeader(delayedBatch(Date.now() + 1000, ['x']), 1), (e: unknown) => e instanceof SluiceError && e.code === ErrorCode.INVALID_DELIVERY_TIME && /compact/.test(e.message));
  });

  test('an idempotent resend of a delayed batch is answered with the wrapper\'s offset and not stored twice', async () => {
    const b = delayedBatch(Date.now() + 60_000, ['once', 'twice'], { producerId: 11, producerEpoch: 0, baseSequence: 0 });
    const first = p.appendAsLeader(Buffer.from(b), 1);
    const again = p.appendAsLeader(Buffer.from(b), 1);
    assert.equal(again.duplicate, true);
    assert.deepEqual([again.baseOffset, again.lastOffset], [first.baseOffset, first.lastOffset]);
    // The next sequence continues after the wrapper's two.
    const next = p.appendAsLeader(delayedBatch(Date.now() + 60_000, ['next'], { producerId: 11, producerEpoch: 0, baseSequence: 2 }), 1);
    assert.equal(next.baseOffset, 2);
    assert.equal((await list()).pendingCount, 2);
  });

  test('cancel: a pending message is never released; a second cancel, a released one or a non-wrapper offset is DELAYED_MESSAGE_NOT_FOUND', async () => {
    const now = Date.now();
    const a = p.appendAsLeader(delayedBatch(now + 300, ['keep']), 1).baseOffset;
    const b = p.appendAsLeader(delayedBatch(now + 200, ['drop']), 1).baseOffset;
    p.appendAsLeader(Buffer.from(buildBatch([{ key: null, value: enc.encode('plain') }])), 1);
    const r = await cancel([b, b, 2, 999]);
    assert.deepEqual(r.map((x) => x.errorCode), [0, ErrorCode.DELAYED_MESSAGE_NOT_FOUND, ErrorCode.DELAYED_MESSAGE_NOT_FOUND, ErrorCode.DELAYED_MESSAGE_NOT_FOUND]);
    assert.equal((await list()).pendingCount, 1);
    assert.deepEqual((await list()).entries.map((e) => e.offset), [a]);
    p.releaser.start();
    await waitFor(async () => (await logContents(p)).some((s) => s.type === CONTROL_TYPE_RELEASED));
    await new Promise((r) => setTimeout(r, 100));
    const seen = await logContents(p);
    assert.deepEqual(seen.filter((s) => s.type === -1).map((s) => s.values[0]), ['plain', 'keep']);
    assert.equal(seen.filter((s) => s.type === CONTROL_TYPE_CANCELLED).length, 1);
    assert.deepEqual((await cancel([a])).map((x) => x.errorCode), [ErrorCode.DELAYED_MESSAGE_NOT_FOUND], 'released already');
  });

  test('the pending set, cancels and frontier are rebuilt from the log at open', async () => {
    const now = Date.now();
    const offs: number[] = [];
    for (let i = 0; i < 5; i++) offs.push(p.appendAsLeader(delayedBatch(now + 100 + (i === 4 ? 100_000 : i * 30), [`m${i}`]), 1).baseOffset);
    await cancel([offs[3]!]);
    p.releaser.start();
    await waitFor(async () => (await logContents(p)).filter((s) => s.type === CONTROL_TYPE_RELEASED).length === 3);
    p.releaser.stop();
    const before = await list();
    await fc.close();
    open();
    const after = await list();
    assert.deepEqual(after, before);
    assert.equal(after.pendingCount, 1);
    assert.deepEqual(after.entries.map((e) => e.offset), [offs[4]]);
    assert.deepEqual(await cancel([offs[3]!, offs[0]!]).then((r) => r.map((x) => x.errorCode)), [ErrorCode.DELAYED_MESSAGE_NOT_FOUND, ErrorCode.DELAYED_MESSAGE_NOT_FOUND]);
  });

  test('torn tail: a log ending in a RELEASED marker gets its released batch when the releaser starts', async () => {
    const due = Date.now() - 1; // already due, but the leader was "killed" after the marker
    const w = p.appendAsLeader(delayedBatch(Date.now() + 50, ['torn']), 1).baseOffset;
    const stored = (await logContents(p))[0]!;
    assert.equal(stored.type, CONTROL_TYPE_SCHEDULED);
    const raw = await readRaw(p.log, w);
    const entry = readScheduled(raw, 0)!;
    p.appendDelayBatches([buildReleaseMarker(entry.effectiveDeliverAtMs, w, due)]);
    assert.equal(p.log.delays.pendingCount, 0, 'the marker moved the frontier');
    p.releaser.start();
    await waitFor(async () => (await logContents(p)).length === 3);
    const seen = await logContents(p);
    assert.deepEqual(seen.map((s) => s.type), [CONTROL_TYPE_SCHEDULED, CONTROL_TYPE_RELEASED, -1]);
    assert.deepEqual(seen[2]!.values, ['torn']);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal((await logContents(p)).length, 3, 'completed once');
  });

  test('retention keeps the segment of a pending message and every later one', async () => {
    p.releaser.stop();
    await fc.close();
    open({ 'segment.bytes': '1024', 'retention.bytes': '1024' });
    const old = Date.now() - 10_000;
    for (let i = 0; i < 3; i++) p.appendAsLeader(Buffer.from(buildBatch([{ key: null, value: enc.encode(`old-${i}`.padEnd(700, '.')), timestamp: old }])), 1);
    const w = p.appendAsLeader(delayedBatch(Date.now() + 60_000, ['pending'.padEnd(700, '.')]), 1).baseOffset;
    for (let i = 0; i < 3; i++) p.appendAsLeader(Buffer.from(buildBatch([{ key: null, value: enc.encode(`new-${i}`.padEnd(700, '.')), timestamp: old }])), 1);
    assert.ok(p.log.segmentCount >= 5);
    p.log.applyRetention(Date.now());
    assert.equal(p.log.logStartOffset, w, 'deleted up to the pending wrapper, not past it');
    await cancel([w]);
    p.log.applyRetention(Date.now());
    assert.ok(p.log.logStartOffset > w, 'a cancelled message pins nothing');
  });
});
