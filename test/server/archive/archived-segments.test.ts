// ArchivedSegments (server/archive/archived-segments.ts) and the manifest codec
// (segment-manifest.ts): chain rules, superseding, retention; decodeManifest under fuzzing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ArchivedSegments } from '../../../server/archive/archived-segments.ts';
import { decodeManifest, encodeManifest, type SegmentManifest } from '../../../server/archive/segment-manifest.ts';

const seg = (baseOffset: number, lastOffset: number, maxTimestampMs = 1000, sizeBytes = 100): SegmentManifest => ({
  version: 1, topic: 't', topicId: 'id', partition: 0, baseOffset, lastOffset, firstTimestampMs: 0, maxTimestampMs,
  leaderEpochs: [{ epoch: 0, startOffset: baseOffset }], sizeBytes, logCrc32: 7, files: { '.log': sizeBytes, '.index': 8 }, uploadedBy: 0, uploadedAtMs: 1,
});

test('add: a chain; a segment starting at or below the tail\'s base supersedes the segments it covers; gaps and going back are refused', () => {
  const a = new ArchivedSegments();
  assert.deepEqual([a.startOffset, a.endOffset, a.isEmpty], [-1, -1, true]);
  assert.deepEqual(a.add(seg(0, 99)), []);
  assert.deepEqual(a.add(seg(50, 149)), [], 'overlap is fine');
  assert.deepEqual([a.startOffset, a.endOffset, a.count], [0, 150, 2]);
  // A new leader cut its segment at 50..199: it covers [50-149] whole.
  const superseded = a.add(seg(50, 199));
  assert.deepEqual(superseded.map((m) => `${m.baseOffset}-${m.lastOffset}`), ['50-149']);
  assert.deepEqual(a.all().map((m) => `${m.baseOffset}-${m.lastOffset}`), ['0-99', '50-199']);
  assert.equal(a.find(120)!.baseOffset, 50);
  assert.equal(a.find(10)!.baseOffset, 0);
  assert.throws(() => a.add(seg(300, 400)), /gap/);
  assert.throws(() => a.add(seg(150, 199)), /does not reach past/);
  // Retention.
  assert.deepEqual(a.dropBefore(100).map((m) => m.baseOffset), [0]);
  assert.deepEqual([a.startOffset, a.endOffset], [100, 200]);
  assert.equal(a.find(60), null);
  assert.equal(a.find(100)!.baseOffset, 50);
  assert.equal(a.findByTimestamp(500)!.baseOffset, 50);
});

test('decodeManifest: every manifest round-trips; random or mutated bytes are refused with an Error, never a crash or a wrong acceptance', () => {
  const manifest = fc.record({ base: fc.nat(1e12), len: fc.nat(1e6), size: fc.nat(2 ** 31), crc: fc.nat(0xffff_ffff) }).map(({ base, len, size, crc }) => ({ ...seg(base, base + len, base, size), logCrc32: crc }));
  fc.assert(fc.property(manifest, (m) => assert.deepEqual(decodeManifest(encodeManifest(m)), m)), { numRuns: 300 });
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 400 }), (bytes) => {
      try {
        const m = decodeManifest(bytes);
        // Accepted: it must satisfy the invariants.
        assert.ok(m.lastOffset >= m.baseOffset && m.files['.log'] === m.sizeBytes);
      } catch (e) {
        assert.ok(e instanceof Error && /manifest/.test(e.message), String(e));
      }
    }),
    { numRuns: 1000 },
  );
  const base = JSON.stringify(seg(10, 20));
  fc.assert(
    fc.property(fc.nat(base.length - 1), fc.string({ maxLength: 4 }), (at, insert) => {
      const text = base.slice(0, at) + insert + base.slice(at + 1);
      try {
        const m = decodeManifest(new TextEncoder().encode(text));
        assert.ok(m.version === 1 && m.lastOffset >= m.baseOffset && m.files['.index'] !== undefined);
      } catch (e) {
        assert.ok(e instanceof Error && /manifest/.test(e.message), String(e));
      }
    }),
    { numRuns: 1000 },
  );
});
