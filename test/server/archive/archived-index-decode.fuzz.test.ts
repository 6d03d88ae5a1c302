// The decoders an archive read applies to objects fetched from the store (OffsetIndex.decode,
// TimeIndex.decode): any bytes give either an index that keeps the lookup invariants or a
// problem, never a throw; and valid indexes round-trip.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { OffsetIndex } from '../../../server/log/offset-index.ts';
import { TimeIndex } from '../../../server/log/time-index.ts';

test('OffsetIndex.decode never throws; what it accepts is strictly increasing and inside the log (fast-check)', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), fc.integer({ min: 0, max: 2 ** 40 }), fc.integer({ min: 0, max: 2 ** 32 }), (bytes, base, logSize) => {
      const r = OffsetIndex.decode('x.index', base, bytes, logSize);
      if (!r.index) {
        assert.ok(r.problem.length > 0);
        return;
      }
      const idx = r.index;
      assert.equal(idx.entryCount, bytes.length / 8);
      // Re-encoding gives the same bytes: nothing was reinterpreted.
      assert.deepEqual(new Uint8Array(idx.toBytes()), bytes);
      // Every entry points inside the log, and lookups never go past their target.
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      for (let p = 0; p < bytes.length; p += 8) {
        assert.ok(view.getUint32(p + 4) < logSize);
        const target = base + view.getUint32(p);
        assert.equal(idx.lookup(target).position, view.getUint32(p + 4));
      }
      assert.ok(idx.lookup(base).offset <= base || idx.entryCount === 0 || idx.lookup(base).offset === base);
    }),
    { numRuns: 2000 },
  );
});

test('OffsetIndex and TimeIndex decode what they encode', () => {
  fc.assert(
    fc.property(fc.uniqueArray(fc.integer({ min: 1, max: 100_000 }), { maxLength: 50 }), fc.integer({ min: 0, max: 2 ** 40 }), (rels, base) => {
      const sorted = [...rels].sort((a, b) => a - b);
      const idx = new OffsetIndex('a.index', base);
      const times = new TimeIndex('a.timeindex', base);
      for (const r of sorted) {
        idx.append(base + r, r * 10);
        times.maybeAppend(1_000_000 + r, base + r);
      }
      const back = OffsetIndex.decode('a.index', base, idx.toBytes(), 100_000 * 10 + 1);
      assert.deepEqual(back.index?.toBytes(), idx.toBytes());
      const tback = TimeIndex.decode('a.timeindex', base, times.toBytes());
      assert.deepEqual(tback.index?.toBytes(), times.toBytes());
    }),
    { numRuns: 300 },
  );
});

test('TimeIndex.decode never throws; what it accepts has increasing timestamps and offsets (fast-check)', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 240 }), fc.integer({ min: 0, max: 2 ** 40 }), (bytes, base) => {
      const r = TimeIndex.decode('x.timeindex', base, bytes);
      if (!r.index) {
        assert.ok(r.problem.length > 0);
        return;
      }
      assert.equal(r.index.entryCount, bytes.length / 12);
      // Re-encoding gives the same bytes: nothing was reinterpreted.
      assert.deepEqual(new Uint8Array(r.index.toBytes()), bytes);
    }),
    { numRuns: 2000 },
  );
});
