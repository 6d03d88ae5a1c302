import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { ErrorCode, SluiceError } from '../../../protocol/errors.ts';
import { PartitionLog } from '../../../server/log/partition-log.ts';
import { decodeSnapshot, encodeSnapshot, listSnapshots, snapshotFileName, SNAPSHOTS_KEPT } from '../../../server/log/producer-snapshot.ts';
import type { ProducerEntry } from '../../../server/log/producer-state.ts';
import { decodeTxnIndex, encodeTxnIndexEntry } from '../../../server/log/txn-index.ts';
import { batch, config, pbatch, recordingLogger, tempDir } from './helpers.ts';

function isCode(code: number) {
  return (e: unknown) => e instanceof SluiceError && e.code === code;
}

function openLog(dir: string, cleanShutdown = true) {
  return PartitionLog.open(dir, config({ 'segment.bytes': '1024' }), { cleanShutdown, logger: recordingLogger() });
}

test('snapshots are written at each roll and at close, the newest few kept, and a reopened log dedups from them', async () => {
  const t = tempDir();
  try {
    const log = openLog(t.dir);
    for (let s = 0; s < 60; s++) log.append(pbatch(1, 0, s));
    assert.ok(log.segmentCount >= 4);
    const atRoll = listSnapshots(t.dir);
    assert.equal(atRoll.length, SNAPSHOTS_KEPT);
    assert.ok(atRoll.every((o, i) => i === 0 || o > atRoll[i - 1]!));
    await log.close();
    assert.equal(listSnapshots(t.dir).at(-1), 60, 'close writes one at the log end');
    const reopened = openLog(t.dir);
    assert.equal(reopened.append(pbatch(1, 0, 59)).duplicate, true);
    assert.throws(() => reopened.append(pbatch(1, 0, 54)), isCode(ErrorCode.DUPLICATE_SEQUENCE_NUMBER));
    await reopened.close();
  } finally {
    t.cleanup();
  }
});

test('the snapshot is what open loads (then replays the rest); a damaged one is ignored; ones above the log end are deleted', async () => {
  const t = tempDir();
  try {
    const log = openLog(t.dir);
    for (let s = 0; s < 5; s++) log.append(pbatch(1, 0, s));
    await log.close();
    for (const o of listSnapshots(t.dir)) fs.rmSync(path.join(t.dir, snapshotFileName(o)));
    // A snapshot at offset 3 that knows a producer the log never saw: only a loaded snapshot explains it.
    const ghost: ProducerEntry = { producerId: 99, epoch: 4, batches: [{ firstSeq: 0, lastSeq: 0, firstOffset: 0, lastOffset: 0 }], lastTimestampMs: 1, txnFirstOffset: -1, coordinatorEpoch: -1 };
    const p1: ProducerEntry = { producerId: 1, epoch: 0, batches: [0, 1, 2].map((i) => ({ firstSeq: i, lastSeq: i, firstOffset: i, lastOffset: i })), lastTimestampMs: 1_000_000, txnFirstOffset: -1, coordinatorEpoch: -1 };
    fs.writeFileSync(path.join(t.dir, snapshotFileName(3)), encodeSnapshot(3, [p1, ghost]));
    fs.writeFileSync(path.join(t.dir, snapshotFileName(50)), encodeSnapshot(50, []));
    let l = openLog(t.dir);
    assert.equal(l.producers.get(99)?.epoch, 4, 'loaded from the snapshot');
    assert.deepEqual(l.producers.get(1)!.batches.map((b) => b.firstSeq), [0, 1, 2, 3, 4], 'and the batches after it replayed');
    assert.ok(!listSnapshots(t.dir).includes(50), 'a snapshot above the log end is deleted');
    l.producers.clear();
    await l.close();
    // Damage it: the log is replayed instead, and the ghost is gone.
    for (const o of listSnapshots(t.dir)) fs.rmSync(path.join(t.dir, snapshotFileName(o)));
    const bytes = encodeSnapshot(3, [p1, ghost]);
    bytes[bytes.length - 1]! ^= 0xff;
    fs.writeFileSync(path.join(t.dir, snapshotFileName(3)), bytes);
    const logger = recordingLogger();
    l = PartitionLog.open(t.dir, config({ 'segment.bytes': '1024' }), { cleanShutdown: true, logger });
    assert.equal(l.producers.get(99), undefined);
    assert.equal(l.append(pbatch(1, 0, 4)).duplicate, true);
    assert.ok(logger.lines.some((x) => x.msg.startsWith('damaged producer state snapshot')));
    await l.close();
  } finally {
    t.cleanup();
  }
});

test('truncation rebuilds from the latest snapshot at or below the new end and deletes later ones', async () => {
  const t = tempDir();
  try {
    const log = openLog(t.dir);
    for (let s = 0; s < 60; s++) log.append(pbatch(2, 0, s));
    const snaps = listSnapshots(t.dir);
    const cut = snaps[snaps.length - 1]! - 1;
    await log.truncateTo(cut);
    assert.ok(listSnapshots(t.dir).every((o) => o <= log.logEndOffset));
    assert.equal(log.append(pbatch(2, 0, log.logEndOffset)).baseOffset, log.logEndOffset - 1);
    await log.close();
  } finally {
    t.cleanup();
  }
});

const entryArb = fc.record({
  producerId: fc.integer({ min: 0, max: 2 ** 40 }),
  epoch: fc.integer({ min: 0, max: 32767 }),
  lastTimestampMs: fc.integer({ min: -1, max: 2 ** 45 }),
  coordinatorEpoch: fc.integer({ min: -1, max: 1000 }),
  n: fc.integer({ min: 0, max: 5 }),
});

test('fuzz: snapshots round-trip, and any damaged or random bytes decode to null without throwing', () => {
  fc.assert(
    fc.property(fc.array(entryArb, { maxLength: 20 }), fc.nat(), fc.nat({ max: 4096 }), (raw, bit, cut) => {
      const seen = new Set<number>();
      const entries: ProducerEntry[] = raw.filter((e) => !seen.has(e.producerId) && seen.add(e.producerId)).map((e) => ({
        producerId: e.producerId,
        epoch: e.epoch,
        lastTimestampMs: e.lastTimestampMs,
        coordinatorEpoch: e.coordinatorEpoch,
        txnFirstOffset: e.n > 0 ? 0 : -1,
        batches: Array.from({ length: e.n }, (_, i) => ({ firstSeq: i * 2, lastSeq: i * 2 + 1, firstOffset: i * 2, lastOffset: i * 2 + 1 })),
      }));
      const b = encodeSnapshot(100, entries);
      assert.deepEqual(decodeSnapshot(b), { offset: 100, entries });
      const flipped = Buffer.from(b);
      flipped[bit % b.length]! ^= 1 << (bit % 8);
      assert.equal(decodeSnapshot(flipped), null);
      if (cut < b.length) assert.equal(decodeSnapshot(b.subarray(0, cut)), null);
    }),
    { numRuns: 300 },
  );
  fc.assert(fc.property(fc.uint8Array({ maxLength: 512 }), (bytes) => void decodeSnapshot(bytes)), { numRuns: 1000 });
});

test('fuzz: the txnindex decoder returns the intact prefix and never throws', () => {
  fc.assert(
    fc.property(fc.array(fc.record({ producerId: fc.integer({ min: 0, max: 2 ** 40 }), firstOffset: fc.integer({ min: 0, max: 2 ** 40 }), span: fc.integer({ min: 0, max: 1000 }) }), { maxLength: 20 }), fc.nat(), (raw, bit) => {
      const entries = raw.map((e) => ({ producerId: e.producerId, firstOffset: e.firstOffset, lastOffset: e.firstOffset + e.span }));
      const b = Buffer.concat([Buffer.alloc(0), ...entries.map(encodeTxnIndexEntry)]);
      assert.deepEqual(decodeTxnIndex(b), { entries, validBytes: b.length });
      if (b.length > 0) {
        const flipped = Buffer.from(b);
        const at = bit % b.length;
        flipped[at]! ^= 1 << (bit % 8);
        const d = decodeTxnIndex(flipped);
        assert.equal(d.entries.length, Math.floor(at / 28));
        assert.deepEqual(decodeTxnIndex(b.subarray(0, b.length - 1)).entries, entries.slice(0, -1));
      }
    }),
    { numRuns: 300 },
  );
  fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => void decodeTxnIndex(bytes)), { numRuns: 1000 });
});

test('an aborted-transaction index whose segment is gone is deleted at open', async () => {
  const t = tempDir();
  try {
    const log = openLog(t.dir);
    log.append(pbatch(1, 0, 0));
    await log.close();
    const orphan = path.join(t.dir, '00000000000000000500.txnindex');
    fs.writeFileSync(orphan, encodeTxnIndexEntry({ producerId: 1, firstOffset: 500, lastOffset: 501 }));
    const reopened = openLog(t.dir);
    assert.ok(!fs.existsSync(orphan));
    await reopened.close();
  } finally {
    t.cleanup();
  }
});

test('retention deletes the snapshots below the new log start, except the newest', async () => {
  const t = tempDir();
  try {
    const log = PartitionLog.open(t.dir, config({ 'segment.bytes': '1024', 'retention.bytes': '1' }), { cleanShutdown: true, logger: recordingLogger() });
    for (let s = 0; s < 60; s++) log.append(pbatch(3, 0, s));
    const before = listSnapshots(t.dir);
    assert.equal(before.length, SNAPSHOTS_KEPT);
    await log.flush();
    assert.ok(log.applyRetention(Date.now()) > 0);
    const after = listSnapshots(t.dir);
    assert.ok(after.length >= 1 && after.every((o) => o >= log.logStartOffset || o === after.at(-1)), `${after} vs log start ${log.logStartOffset}`);
    assert.ok(after.length < before.length || before[0]! >= log.logStartOffset);
    await log.close();
  } finally {
    t.cleanup();
  }
});

test('a log without producers gets a snapshot too (so open does not scan it), but an empty or unchanged log writes none', async () => {
  const t = tempDir();
  try {
    let log = openLog(t.dir);
    await log.close();
    assert.deepEqual(listSnapshots(t.dir), [], 'empty log: nothing to replay, no snapshot');
    log = openLog(t.dir);
    for (let i = 0; i < 3; i++) log.append(batch(2));
    await log.close();
    assert.deepEqual(listSnapshots(t.dir), [6]);
    const mtime = fs.statSync(path.join(t.dir, snapshotFileName(6))).mtimeMs;
    await new Promise((r) => setTimeout(r, 20));
    log = openLog(t.dir);
    await log.close();
    assert.equal(fs.statSync(path.join(t.dir, snapshotFileName(6))).mtimeMs, mtime, 'unchanged log: not rewritten');
  } finally {
    t.cleanup();
  }
});
