/**
 * Delayed-delivery control batches (SPEC §8.6 types 2-4, §8.8): the wrapper, the markers and
 * the released batch are valid stored batches, read back exactly, and the readers survive
 * any bytes (fast-check).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  buildCancelMarker,
  buildReleased,
  buildReleaseMarker,
  buildScheduledWrapper,
  compareKey,
  CONTROL_TYPE_CANCELLED,
  CONTROL_TYPE_RELEASED,
  CONTROL_TYPE_SCHEDULED,
  controlTypeAt,
  formatDeliverAtMs,
  parseDeliverAtMs,
  readDelayMarker,
  readScheduled,
} from '../../protocol/delayed-batch.ts';
import { ErrorCode } from '../../protocol/errors.ts';
import {
  ATTR_CONTROL,
  buildBatch,
  buildControlBatch,
  decodeRecords,
  HEADER_DELIVER_AT_MS,
  newBatchInfo,
  Off,
  readControlMarker,
  readInt32,
  readInt64,
  validateBatch,
  writeInt32,
  writeInt64,
} from '../../protocol/record-batch.ts';
import { crc32c } from '../../protocol/crc32c.ts';

const T0 = 1_700_000_000_000;
const utf8 = new TextEncoder();

function producerBatch(n: number, producer?: { producerId: number; producerEpoch: number; baseSequence: number }): Uint8Array {
  const at = formatDeliverAtMs(T0 + 60_000);
  return buildBatch(Array.from({ length: n }, (_, i) => ({ key: utf8.encode(`k${i}`), value: utf8.encode(`v${i}`), timestamp: T0 + i, headers: [{ key: HEADER_DELIVER_AT_MS, value: at }] })), T0, producer);
}

function storedOk(b: Uint8Array): void {
  const info = newBatchInfo();
  assert.equal(validateBatch(b, 0, b.length, info, true), ErrorCode.NONE, info.problem);
}

describe('delayed-delivery control batches', () => {
  test('wrapper of an idempotent batch: producer fields and lastOffsetDelta copied, control bit only, inner bytes exact', () => {
    const inner = producerBatch(3, { producerId: 42, producerEpoch: 7, baseSequence: 10 });
    const w = buildScheduledWrapper(inner, 0, inner.length, T0 + 70_000, T0 + 60_000, T0 + 5);
    storedOk(w);
    // A producer may not send it.
    assert.equal(validateBatch(w, 0, w.length, newBatchInfo(), false), ErrorCode.CORRUPT_MESSAGE);
    assert.equal(w[Off.attributes + 1], ATTR_CONTROL);
    assert.equal(readInt64(w, Off.producerId), 42);
    assert.equal(readInt32(w, Off.baseSequence), 10);
    assert.equal(readInt32(w, Off.lastOffsetDelta), 2);
    assert.equal(readInt32(w, Off.recordCount), 1);
    assert.equal(readInt64(w, Off.baseTimestamp), T0 + 5);
    assert.equal(controlTypeAt(w, 0), CONTROL_TYPE_SCHEDULED);
    assert.equal(readControlMarker(w, 0), null, 'not a transaction marker');
    writeInt64(w, 0, 1234); // the append sets baseOffset
    const e = readScheduled(w, 0)!;
    assert.deepEqual({ ...e, innerAt: 0 }, { wrapperOffset: 1234, effectiveDeliverAtMs: T0 + 70_000, requestedDeliverAtMs: T0 + 60_000, innerAt: 0, innerBytes: inner.length, recordCount: 3, lastOffsetDelta: 2 });
    assert.deepEqual(w.subarray(e.innerAt, e.innerAt + e.innerBytes), inner);
    assert.equal(readDelayMarker(w, 0), null);
  });

  test('wrapper of a non-idempotent batch has producerId -1 and is a valid stored batch', () => {
    const inner = producerBatch(1);
    const w = buildScheduledWrapper(inner, 0, inner.length, T0 + 1, T0 + 1, T0);
    storedOk(w);
    assert.equal(readInt64(w, Off.producerId), -1);
    assert.equal(readScheduled(w, 0)!.recordCount, 1);
  });

  test('released batch: producer fields -1, resealed, records identical to the producer\'s', () => {
    const inner = producerBatch(4, { producerId: 5, producerEpoch: 1, baseSequence: 0 });
    const w = buildScheduledWrapper(inner, 0, inner.length, T0 + 1, T0 + 1, T0);
    const r = buildReleased(w, readScheduled(w, 0)!);
    const info = newBatchInfo();
    assert.equal(validateBatch(r, 0, r.length, info, false), ErrorCode.NONE, info.problem);
    assert.equal(info.producerId, -1);
    assert.equal(info.baseSequence, -1);
    assert.equal(info.deliverAtAt >= 0, true, 'the header stays');
    assert.deepEqual(decodeRecords(r, 0), decodeRecords(inner, 0));
  });

  test('RELEASED and CANCELLED markers: producerId -1, valid stored, read back; refused from a producer', () => {
    for (const [build, type] of [[buildReleaseMarker, CONTROL_TYPE_RELEASED], [buildCancelMarker, CONTROL_TYPE_CANCELLED]] as const) {
      const m = build(T0 + 99, 77, T0);
      storedOk(m);
      assert.equal(validateBatch(m, 0, m.length, newBatchInfo(), false), ErrorCode.CORRUPT_MESSAGE);
      writeInt64(m, 0, 500);
      assert.deepEqual(readDelayMarker(m, 0), { type, offset: 500, deliverAtMs: T0 + 99, wrapperOffset: 77 });
      assert.equal(readScheduled(m, 0), null);
      assert.equal(readControlMarker(m, 0), null);
    }
  });

  test('stored validation still refuses a transactional batch without a producer', () => {
    const m = buildReleaseMarker(T0, 1, T0);
    m[Off.attributes + 1] = ATTR_CONTROL | 0x10;
    writeInt32(m, Off.crc, crc32c(m, Off.attributes, m.length));
    const info = newBatchInfo();
    assert.equal(validateBatch(m, 0, m.length, info, true), ErrorCode.CORRUPT_MESSAGE);
    assert.match(info.problem, /producerId -1/);
  });

  test('transaction markers read as types 0 and 1', () => {
    const c = buildControlBatch({ producerId: 3, producerEpoch: 0, committed: true, coordinatorEpoch: 1 }, T0);
    assert.equal(controlTypeAt(c, 0), 1);
    assert.equal(readDelayMarker(c, 0), null);
    assert.equal(controlTypeAt(producerBatch(1), 0), -1, 'a data batch has no control type');
  });

  test('parseDeliverAtMs: 1-15 decimal digits only', () => {
    const p = (s: string) => { const b = utf8.encode(s); return parseDeliverAtMs(b, 0, b.length); };
    assert.equal(p('0'), 0);
    assert.equal(p('1700000000000'), 1_700_000_000_000);
    assert.equal(p('000000000000001'), 1);
    assert.equal(p('999999999999999'), 999_999_999_999_999);
    for (const bad of ['', '-1', '+1', ' 1', '1 ', '1.5', '1e3', '1000000000000000', 'abc']) assert.equal(p(bad), -1, bad);
    assert.deepEqual(formatDeliverAtMs(T0), utf8.encode(String(T0)));
    assert.throws(() => formatDeliverAtMs(-1), RangeError);
  });

  test('compareKey orders by time, then offset', () => {
    assert.ok(compareKey(1, 9, 2, 0) < 0);
    assert.ok(compareKey(2, 1, 2, 3) < 0);
    assert.equal(compareKey(2, 3, 2, 3), 0);
  });

  test('fuzz: readers never throw on mutated control batches, and what they accept is in range', () => {
    const base = [
      buildScheduledWrapper(producerBatch(2, { producerId: 1, producerEpoch: 0, baseSequence: 0 }), 0, producerBatch(2, { producerId: 1, producerEpoch: 0, baseSequence: 0 }).length, T0 + 5, T0 + 5, T0),
      buildReleaseMarker(T0, 3, T0),
      buildCancelMarker(T0, 3, T0),
    ];
    fc.assert(
      fc.property(fc.constantFrom(0, 1, 2), fc.array(fc.record({ at: fc.nat(), v: fc.integer({ min: 0, max: 255 }) }), { minLength: 1, maxLength: 6 }), fc.nat(), (which, muts, cut) => {
        let b = Uint8Array.from(base[which]!);
        for (const m of muts) b[m.at % b.length] = m.v;
        if (cut % 4 === 0) b = b.slice(0, cut % (b.length + 1));
        const s = readScheduled(b, 0);
        if (s) {
          assert.ok(s.innerAt >= 0 && s.innerAt + s.innerBytes <= b.length);
          assert.ok(s.recordCount >= 1 && s.effectiveDeliverAtMs >= 0);
          buildReleased(b, s);
        }
        const m = readDelayMarker(b, 0);
        if (m) assert.ok(m.wrapperOffset >= 0 && m.deliverAtMs >= 0);
        controlTypeAt(b, 0);
      }),
      { numRuns: 3000 },
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.nat(), (b, pos) => {
        readScheduled(b, pos % (b.length + 1));
        readDelayMarker(b, pos % (b.length + 1));
      }),
      { numRuns: 2000 },
    );
  });
});
