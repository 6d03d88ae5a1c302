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
import fs from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { DEFAULT_DELAY_CONFIG } from '../../../server/delay/delay-config.ts';
import { SegmentDelays } from '../../../server/delay/segment-delays.ts';
import { PartitionLog } from '../../../server/log/partition-log.ts';
import { config, readRaw, recordingLogger, tempDir } from '../log/helpers.ts';
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

  test('cancels beyond delayedCancelsPendingMax get DELAYED_CANCELS_LIMIT_REACHED and cancel nothing', async () => {
    // A copy: the default config object is shared by every log of the process.
    (p.log as { delayConfig: typeof DEFAULT_DELAY_CONFIG }).delayConfig = { ...DEFAULT_DELAY_CONFIG, delayedCancelsPendingMax: 1 };
    const now = Date.now();
    const a = p.appendAsLeader(delayedBatch(now + 60_000, ['a']), 1).baseOffset;
    const b = p.appendAsLeader(delayedBatch(now + 60_000, ['b']), 1).baseOffset;
    const r = await cancel([a, b]);
    assert.deepEqual(r.map((x) => x.errorCode), [0, ErrorCode.DELAYED_CANCELS_LIMIT_REACHED]);
    assert.match(r[1]!.errorMessage ?? '', /delayedCancelsPendingMax 1/);
    assert.deepEqual((await list()).entries.map((e) => e.offset), [b], 'b is still pending');
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

  test('readWrapperSync answers exactly as readWrapper: every wrapper across rolled segments, null for other offsets', async () => {
    p.releaser.stop();
    await fc.close();
    open({ 'segment.bytes': '4096', 'index.interval.bytes': '512' });
    const far = Date.now() + DAY_MS;
    const ids: number[] = [];
    for (let i = 0; i < 120; i++) {
      if (i % 7 === 0) p.appendAsLeader(Buffer.from(buildBatch([{ key: null, value: enc.encode('plain' + i) }])), 1);
      ids.push(p.appendAsLeader(delayedBatch(far + i, ['v' + i, 'x'.repeat(i * 3)]), 1).baseOffset);
    }
    assert.ok(p.log.segmentCount > 3, 'the wrappers span several segments');
    for (let o = p.log.logStartOffset - 1; o <= p.log.logEndOffset + 1; o++) {
      const a = await p.log.readWrapper(o);
      const b = p.log.readWrapperSync(o);
      assert.equal(b === null, a === null, `offset ${o}`);
      if (a && b) {
        assert.deepEqual(b.entry, a.entry, `offset ${o}`);
        assert.deepEqual(Buffer.from(b.buf.subarray(0, batchSizeAt(b.buf, 0))), Buffer.from(a.buf.subarray(0, batchSizeAt(a.buf, 0))));
      }
    }
    for (const id of ids) assert.ok(p.log.readWrapperSync(id), `wrapper ${id}`);
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

describe('segment delay index (.delays sidecars, SPEC §7.9)', () => {
  test('encode/decode round trip; any damage reads as null; fuzzed bytes never throw', () => {
    const sd = new SegmentDelays();
    sd.scheduledAt.push(300, 100, 100);
    sd.scheduledOffset.push(10, 12, 11);
    sd.cancelledAt.push(300);
    sd.cancelledOffset.push(10);
    sd.releaseAtMs = 50;
    sd.releaseOffset = 3;
    sd.releaseMarkerOffset = 14;
    const b = sd.encode(10, 20);
    const back = SegmentDelays.decode(b, 10, 20)!;
    assert.deepEqual([back.scheduledAt, back.scheduledOffset], [[100, 100, 300], [11, 12, 10]], 'sorted by key');
    assert.deepEqual([back.cancelledAt, back.cancelledOffset, back.releaseAtMs, back.releaseOffset, back.releaseMarkerOffset], [[300], [10], 50, 3, 14]);
    assert.equal(SegmentDelays.decode(b, 10, 21), null, 'another segment end');
    assert.equal(SegmentDelays.decode(b, 0, 20), null, 'another segment base');
    assert.equal(SegmentDelays.decode(b.subarray(0, b.length - 1), 10, 20), null, 'short');
    fc.assert(
      fc.property(fc.array(fc.record({ at: fc.nat(), v: fc.integer({ min: 0, max: 255 }) }), { minLength: 1, maxLength: 4 }), (muts) => {
        const m = Buffer.from(b);
        for (const x of muts) m[x.at % m.length] = x.v;
        const r = SegmentDelays.decode(m, 10, 20);
        if (!m.equals(b)) assert.equal(r, null, 'the crc catches every change');
      }),
      { numRuns: 2000 },
    );
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (x) => { SegmentDelays.decode(x, 0, 100); }), { numRuns: 1000 });
  });

  test('rolled segments get sidecars; reopening reads them (scans only the active segment); a damaged or missing one is rebuilt', async () => {
    const t = tempDir();
    try {
      let p = openPartition(t.dir, 'side', 0, { state: leaderState(), logConfig: { 'segment.bytes': '1024' } });
      const now = Date.now();
      const ids: number[] = [];
      for (let i = 0; i < 12; i++) ids.push(p.appendAsLeader(delayedBatch(now + 60_000 + (i % 4) * 1000, [`s${i}`.padEnd(300, '.')]), 1).baseOffset);
      const registry = new FakeRegistry();
      registry.add('side', 1, [p]);
      let fcx = fakeContext(registry, [p]);
      const r = ((await handleCancelDelayed(fcx.ctx, { topic: 'side', partitions: [{ partition: 0, offsets: [ids[1]!] }] })) as Reply).control as CancelDelayedResponse;
      assert.equal(r.topics[0]!.partitions[0]!.results[0]!.errorCode, 0);
      const listed = async () => (((await handleListDelayed(fcx.ctx, { topic: 'side', partition: 0, limit: 1000 })) as Reply).control as ListDelayedResponse);
      const before = await listed();
      assert.equal(before.pendingCount, 11);
      const dir = path.join(t.dir, 'side-0');
      const sidecars = () => fs.readdirSync(dir).filter((n) => n.endsWith('.delays')).sort();
      assert.ok(sidecars().length >= 3, `sidecars: ${sidecars().join(',')}`);
      await fcx.close();
      // Damage one, remove another: both rebuilt from their segments.
      const [first, second] = sidecars();
      const damaged = fs.readFileSync(path.join(dir, first!));
      damaged[damaged.length - 1] ^= 0xff;
      fs.writeFileSync(path.join(dir, first!), damaged);
      fs.unlinkSync(path.join(dir, second!));
      p = openPartition(t.dir, 'side', 0, { state: leaderState() });
      const registry2 = new FakeRegistry();
      registry2.add('side', 1, [p]);
      fcx = fakeContext(registry2, [p]);
      assert.deepEqual(await listed(), before);
      assert.ok(sidecars().includes(second!), 'the missing sidecar was rewritten');
      assert.notDeepEqual(fs.readFileSync(path.join(dir, first!)), damaged, 'the damaged sidecar was rewritten');
      await fcx.close();
    } finally {
      t.cleanup();
    }
  });

  test('the active segment rolls at delayedEntriesPerSegmentMax wrappers', async () => {
    const t = tempDir();
    try {
      const log = PartitionLog.open(path.join(t.dir, 'roll-0'), config(), { cleanShutdown: true, logger: recordingLogger(), delay: { ...DEFAULT_DELAY_CONFIG, delayedEntriesPerSegmentMax: 3 } });
      for (let i = 0; i < 7; i++) log.append(delayedBatch(Date.now() + 60_000, [`r${i}`]), Date.now());
      assert.equal(log.segmentCount, 3, 'rolled after every 3 wrappers');
      assert.equal(log.delays.pendingCount, 7);
      await log.close();
    } finally {
      t.cleanup();
    }
  });
});

describe('delayed delivery on followers (SPEC §7.9)', () => {
  test('a follower holds the same pending set from the replicated log; after a failover with a torn pair it completes the release and continues, nothing twice', async () => {
    const t = tempDir();
    try {
      const leader = openPartition(t.dir, 'rep', 0, { state: leaderState(), logConfig: { 'segment.bytes': '1024' } });
      const follower = openPartition(path.join(t.dir, 'f'), 'rep', 0, { state: leaderState({ leader: 99 }), logConfig: { 'segment.bytes': '1024' } });
      const copy = async (upTo = Infinity) => {
        // Batch by batch, as a fetch that may stop anywhere between batches.
        const raw = await readRaw(leader.log, follower.log.logEndOffset);
        for (let pos = 0; pos < raw.length; pos += batchSizeAt(raw, pos)) {
          if (readInt64(raw, pos) >= upTo) break;
          follower.log.appendAsFollower(raw.subarray(pos, pos + batchSizeAt(raw, pos)));
        }
      };
      const now = Date.now();
      const ids: number[] = [];
      for (let i = 0; i < 8; i++) ids.push(leader.appendAsLeader(delayedBatch(now + 150 + i * 40, [`f${i}`.padEnd(200, '.')]), 1).baseOffset);
      const registry = new FakeRegistry();
      registry.add('rep', 1, [leader]);
      const lctx = fakeContext(registry, [leader]);
      await handleCancelDelayed(lctx.ctx, { topic: 'rep', partitions: [{ partition: 0, offsets: [ids[6]!] }] });
      leader.releaser.start();
      await waitFor(async () => (await logContents(leader)).filter((s) => s.type === CONTROL_TYPE_RELEASED).length >= 3);
      leader.releaser.stop();
      await copy();
      const ld = leader.log.delays;
      const fd = follower.log.delays;
      assert.deepEqual([fd.frontierAtMs, fd.frontierOffset, fd.pendingCount], [ld.frontierAtMs, ld.frontierOffset, ld.pendingCount]);
      assert.deepEqual(fd.listAfter(-Infinity, -Infinity, 100), ld.listAfter(-Infinity, -Infinity, 100));
      // The old leader releases one more pair; the follower gets only its marker, then takes over.
      leader.releaser.start();
      const end = leader.log.logEndOffset;
      await waitFor(() => leader.log.logEndOffset > end);
      leader.releaser.stop();
      await copy(end + 1); // the marker at `end`, not the released batch after it
      assert.equal(follower.log.delays.lastReleaseMarkerOffset, follower.log.logEndOffset - 1, 'the follower log ends in a RELEASED marker');
      follower.state = leaderState({ leaderEpoch: 6 });
      follower.role = 'leader';
      follower.log.beginLeaderEpoch(6);
      follower.releaser.start();
      await waitFor(async () => (await logContents(follower)).filter((s) => s.type === -1).length === 7, 5000);
      await new Promise((r) => setTimeout(r, 300));
      const seen = await logContents(follower);
      const values = seen.filter((s) => s.type === -1).map((s) => s.values[0]!.replace(/\.+$/, ''));
      assert.deepEqual(values, ['f0', 'f1', 'f2', 'f3', 'f4', 'f5', 'f7'], 'each once, in order, the cancelled one never');
      follower.releaser.stop();
      await leader.log.close();
      await follower.log.close();
    } finally {
      t.cleanup();
    }
  });
});
