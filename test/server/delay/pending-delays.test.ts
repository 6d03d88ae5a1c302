/**
 * PendingDelays against a reference model (fast-check): wrappers scheduled with random times,
 * segments rolled into runs (in memory and over sidecar files), cancels, releases by the
 * k-way merge: the keys released, the pending count, the listing and every cancel's verdict
 * agree with a plain sorted list.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { compareKey } from '../../../protocol/delayed-batch.ts';
import { PendingDelays } from '../../../server/delay/pending-delays.ts';
import { SegmentDelays } from '../../../server/delay/segment-delays.ts';
import { SortedRun } from '../../../server/delay/sorted-run.ts';
import { tempDir } from '../log/helpers.ts';

type Op = { kind: 'schedule'; at: number } | { kind: 'roll'; file: boolean } | { kind: 'cancel'; pick: number } | { kind: 'release'; now: number; max: number } | { kind: 'fail'; now: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('schedule' as const), at: fc.integer({ min: 0, max: 1000 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('roll' as const), file: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('cancel' as const), pick: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('release' as const), now: fc.integer({ min: 0, max: 1100 }), max: fc.integer({ min: 1, max: 8 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('fail' as const), now: fc.integer({ min: 0, max: 1100 }) }) },
);

test('the k-way merge over runs and the heap releases, counts, lists and cancels exactly as a sorted list', () => {
  const t = tempDir();
  let files = 0;
  try {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 80 }), (ops) => {
        const d = new PendingDelays();
        const all: Array<{ at: number; off: number }> = [];
        const cancelled = new Set<number>();
        let frontier = { at: -1, off: -1 };
        let next = 0;
        let segBase = 0;
        let seg: Array<{ at: number; off: number }> = [];
        const pendingModel = () => all.filter((w) => compareKey(w.at, w.off, frontier.at, frontier.off) > 0 && !cancelled.has(w.off)).sort((a, b) => compareKey(a.at, a.off, b.at, b.off));
        for (const op of ops) {
          if (op.kind === 'schedule') {
            const w = { at: Math.max(op.at, frontier.at), off: next };
            next += 1 + (op.at % 3); // wrappers take 1-3 offsets
            all.push(w);
            seg.push(w);
            d.add(w.at, w.off);
          } else if (op.kind === 'roll') {
            if (next === segBase) continue;
            let run: SortedRun;
            if (op.file) {
              const sd = new SegmentDelays();
              for (const w of seg) { sd.scheduledAt.push(w.at); sd.scheduledOffset.push(w.off); }
              const file = path.join(t.dir, `${files++}.delays`);
              sd.writeSync(file, segBase, next);
              run = SortedRun.ofFile(segBase, file, seg.length);
            } else {
              run = SortedRun.ofMemory(segBase, seg.map((w) => w.at), seg.map((w) => w.off));
            }
            d.addRun(run, next);
            segBase = next;
            seg = [];
          } else if (op.kind === 'cancel') {
            if (all.length === 0) continue;
            const w = all[op.pick % all.length]!;
            const expected = compareKey(w.at, w.off, frontier.at, frontier.off) > 0 && !cancelled.has(w.off) ? 'pending' : 'done';
            assert.equal(d.stateOf(w.at, w.off), expected);
            if (expected === 'pending') {
              d.cancel(w.at, w.off);
              cancelled.add(w.off);
              next++; // the marker's offset
            }
          } else {
            const want = pendingModel().filter((w) => w.at <= op.now).slice(0, op.kind === 'release' ? op.max : 3);
            const got = d.takeDue(op.now, op.kind === 'release' ? op.max : 3);
            assert.deepEqual(got.map((k) => [k.deliverAtMs, k.offset]), want.map((w) => [w.at, w.off]));
            if (op.kind === 'fail') {
              d.restore(got);
            } else {
              for (const k of got) {
                d.released(k.deliverAtMs, k.offset, next++);
                frontier = { at: k.deliverAtMs, off: k.offset };
              }
            }
          }
          const model = pendingModel();
          assert.equal(d.pendingCount, model.length, 'pending count');
          assert.deepEqual(d.listAfter(-Infinity, -Infinity, 5).map((k) => [k.deliverAtMs, k.offset]), model.slice(0, 5).map((w) => [w.at, w.off]));
          if (model.length > 2) {
            const a = model[1]!;
            assert.deepEqual(d.listAfter(a.at, a.off, 3).map((k) => k.offset), model.slice(2, 5).map((w) => w.off), 'paging');
          }
          assert.deepEqual([d.frontierAtMs, d.frontierOffset], [frontier.at, frontier.off]);
        }
        assert.ok(d.inMemoryKeys <= seg.length + 8 * ops.length, 'memory holds the active segment (and restored keys)');
      }),
      { numRuns: 500 },
    );
  } finally {
    t.cleanup();
  }
});
