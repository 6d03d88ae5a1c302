import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, SluiceError } from '../../../protocol/errors.ts';
import { batchSizeAt, baseOffsetAt, decodeRecords, lastOffsetAt, newBatchInfo, validateBatch } from '../../../protocol/record-batch.ts';
import { PartitionLog } from '../../../server/log/partition-log.ts';
import { batch, config, recordingLogger, tempDir } from './helpers.ts';

function isCode(code: number) {
  return (e: unknown) => e instanceof SluiceError && e.code === code;
}

/** Reads from `from` to the log end, fetch by fetch, checking every batch on the way. */
async function readAll(log: PartitionLog, from: number, maxBytes = 1 << 20): Promise<Buffer> {
  const parts: Buffer[] = [];
  const info = newBatchInfo();
  let offset = from;
  for (;;) {
    const r = await log.read(offset, maxBytes);
    if (r.records.length === 0) break;
    for (let p = 0; p < r.records.length; p += batchSizeAt(r.records, p)) {
      assert.equal(validateBatch(r.records, p, r.records.length, info), ErrorCode.NONE, info.problem);
      offset = lastOffsetAt(r.records, p) + 1;
    }
    parts.push(r.records);
  }
  return Buffer.concat(parts);
}

function openLog(dir: string, overrides: Record<string, string> = {}) {
  return PartitionLog.open(dir, config(overrides), { cleanShutdown: true, logger: recordingLogger() });
}

test('append assigns contiguous offsets; read returns the same bytes across many segments', async () => {
  const t = tempDir();
  try {
    const log = openLog(t.dir, { 'segment.bytes': '1024', 'index.interval.bytes': '256' });
    const written: Buffer[] = [];
    for (let i = 0; i < 40; i++) {
      const b = batch(1 + (i % 4), 1000 + i, 20, `b${i}`);
      const r = log.append(b);
      assert.equal(r.baseOffset, written.reduce((n, w) => n + decodeRecords(w, 0).length, 0));
      assert.equal(baseOffsetAt(b, 0), r.baseOffset, 'baseOffset rewritten in the caller buffer');
      written.push(b);
    }
    assert.ok(log.segmentCount > 3, `rolled by size: ${log.segmentCount} segments`);
    assert.equal(log.logEndOffset, 100);
    assert.equal(log.logStartOffset, 0);
    assert.deepEqual(await readAll(log, 0), Buffer.concat(written));
    assert.deepEqual(await readAll(log, 0, 1), Buffer.concat(written), 'one batch per read still reaches the end');
    // Starting in the middle of a batch returns that whole batch first.
    const mid = written.findIndex((w) => lastOffsetAt(w, 0) > baseOffsetAt(w, 0) && baseOffsetAt(w, 0) > 50);
    const r = await log.read(baseOffsetAt(written[mid]!, 0) + 1, 1);
    assert.deepEqual(r.records, written[mid]);
    await log.close();
  } finally {
    t.cleanup();
  }
});

test('segments roll before they would exceed segment.bytes', async () => {
  const t = tempDir();
  try {
    const log = openLog(t.dir, { 'segment.bytes': '1024' });
    const b = batch(3, 1000, 100);
    const perSegment = Math.floor(1024 / b.length);
    for (let i = 0; i < perSegment; i++) log.append(Buffer.from(b));
    assert.equal(log.segmentCount, 1);
    assert.equal(log.sizeBytes, perSegment * b.length);
    log.append(Buffer.from(b));
    assert.equal(log.segmentCount, 2);
    // A batch larger than segment.bytes still goes in (alone, in a fresh segment).
    const huge = batch(1, 1000, 3000);
    log.append(huge);
    assert.equal(log.segmentCount, 3);
    log.append(Buffer.from(b));
    assert.equal(log.segmentCount, 4);
    await log.close();
  } finally {
    t.cleanup();
  }
});

test('segments roll by age (segment.ms)', async () => {
  const t = tempDir();
  try {
    const log = openLog(t.dir, { 'segment.ms': '1000' });
    const t0 = 5_000_000;
    log.append(batch(1), t0);
    log.append(batch(1), t0 + 1000);
    assert.equal(log.segmentCount, 1);
    log.append(batch(1), t0 + 1001);
    assert.equal(log.segmentCount, 2);
    log.append(batch(1), t0 + 1500);
    assert.equal(log.segmentCount, 2, 'the new segment ages from its own first append');
    await log.close();
  } finally {
    t.cleanup();
  }
});

test('read cuts at whole batches within maxBytes but returns an oversize first batch whole', async () => {
  const t = tempDir();
  try {
    const log = openLog(t.dir);
    const bs = [batch(2, 1, 50), batch(2, 1, 50), batch(2, 1, 50), batch(2, 1, 50)];
    for (const b of bs) log.append(b);
    const size = bs[0]!.length;
    let r = await log.read(0, size * 2 + size / 2);
    assert.deepEqual(r.records, Buffer.concat(bs.slice(0, 2)));
    assert.equal(r.highWatermark, 8);
    assert.equal(r.logStartOffset, 0);
    r = await log.read(0, size * 2);
    assert.deepEqual(r.records, Buffer.concat(bs.slice(0, 2)), 'exactly maxBytes fits');
    r = await log.read(3, 1);
    assert.deepEqual(r.records, bs[1], 'first batch whole even above maxBytes');
    r = await log.read(4, 0);
    assert.deepEqual(r.records, bs[2]);
    await log.close();
  } finally {
    t.cleanup();
  }
});

test('read at the log end is empty; outside [logStart, logEnd] is OFFSET_OUT_OF_RANGE', async () => {
  const t = tempDir();
  try {
    const log = openLog(t.dir);
    assert.equal((await log.read(0, 100)).records.length, 0, 'empty log');
    log.append(batch(3));
    assert.equal((await log.read(3, 100)).records.length, 0);
    await assert.rejects(log.read(4, 100), isCode(ErrorCode.OFFSET_OUT_OF_RANGE));
    await assert.rejects(log.read(-1, 100), isCode(ErrorCode.OFFSET_OUT_OF_RANGE));
    await log.close();
    await assert.rejects(log.read(0, 100), isCode(ErrorCode.BROKER_SHUTTING_DOWN));
    assert.throws(() => log.append(batch(1)), isCode(ErrorCode.BROKER_SHUTTING_DOWN));
  } finally {
    t.cleanup();
  }
});

test('a bad batch in a set appends nothing; a too-large batch is refused', async () => {
  const t = tempDir();
  try {
    const log = openLog(t.dir, { 'max.message.bytes': '300' });
    log.append(batch(2));
    const bad = Buffer.concat([batch(1), batch(1)]);
    bad[bad.length - 2]! ^= 0x01;
    assert.throws(() => log.append(bad), isCode(ErrorCode.CORRUPT_MESSAGE));
    assert.throws(() => log.append(batch(1, 0, 400)), isCode(ErrorCode.RECORD_BATCH_TOO_LARGE));
    assert.equal(log.logEndOffset, 2);
    const r = log.append(batch(1));
    assert.equal(r.baseOffset, 2);
    assert.equal(decodeRecords(await readAll(log, 0), 0).length, 2);
    await log.close();
  } finally {
    t.cleanup();
  }
});

test('retention by time deletes old segments and advances logStartOffset', async () => {
  const t = tempDir();
  try {
    const log = openLog(t.dir, { 'segment.bytes': '1024', 'retention.ms': '10000' });
    for (let i = 0; i < 12; i++) log.append(batch(3, 1_000_000, 100)); // old
    const firstNew = log.logEndOffset;
    for (let i = 0; i < 12; i++) log.append(batch(3, 2_000_000, 100));
    const segments = log.segmentCount;
    const deleted = log.applyRetention(2_000_000 + 5000);
    assert.ok(deleted >= 2, `deleted ${deleted}`);
    assert.equal(log.segmentCount, segments - deleted);
    assert.ok(log.logStartOffset > 0 && log.logStartOffset <= firstNew, `logStartOffset ${log.logStartOffset}`);
    // A read with a large maxBytes returns exactly the first remaining segment: it must hold new data.
    const firstSegment = (await log.read(log.logStartOffset, 1 << 20)).records;
    const timestamps: number[] = [];
    for (let p = 0; p < firstSegment.length; p += batchSizeAt(firstSegment, p)) for (const rec of decodeRecords(firstSegment, p)) timestamps.push(rec.timestamp);
    assert.ok(timestamps.some((ts) => ts >= 2_000_000), 'the first remaining segment is not all expired');
    await assert.rejects(log.read(0, 100), isCode(ErrorCode.OFFSET_OUT_OF_RANGE));
    const rest = await readAll(log, log.logStartOffset);
    assert.equal(baseOffsetAt(rest, 0), log.logStartOffset);
    // Everything expired, the active segment included: an empty segment takes over at the end.
    const end = log.logEndOffset;
    assert.ok(log.applyRetention(2_000_000 + 20_000) > 0);
    assert.equal(log.segmentCount, 1);
    assert.equal(log.logStartOffset, end);
    assert.equal(log.sizeBytes, 0);
    assert.equal((await log.read(end, 100)).records.length, 0);
    assert.equal(log.append(batch(1, 3_000_000)).baseOffset, end);
    assert.equal(log.applyRetention(3_000_000), 0);
    await log.close();
  } finally {
    t.cleanup();
  }
});

test('retention by size keeps at least retention.bytes and deletes oldest first', async () => {
  const t = tempDir();
  try {
    const log = openLog(t.dir, { 'segment.bytes': '1024', 'retention.bytes': '2500' });
    for (let i = 0; i < 40; i++) log.append(batch(3, 1_000_000, 100));
    const before = log.sizeBytes;
    const deleted = log.applyRetention(1_000_000);
    assert.ok(deleted > 0);
    assert.ok(log.sizeBytes >= 2500 && log.sizeBytes < before, `size ${log.sizeBytes}`);
    const firstSegmentBytes = (await log.read(log.logStartOffset, 1 << 20)).records.length;
    assert.ok(log.sizeBytes - firstSegmentBytes < 2500, 'one more deletion would go below retention.bytes');
    assert.equal(log.applyRetention(1_000_000), 0);
    await log.close();
  } finally {
    t.cleanup();
  }
});

test('offsetForTimestamp finds the first record at or after a timestamp', async () => {
  const t = tempDir();
  try {
    const log = openLog(t.dir, { 'segment.bytes': '2048', 'index.interval.bytes': '0' });
    // Batch i holds records with timestamps 10_000 + 100 * i + 0..4, at offsets 5i..5i+4.
    for (let i = 0; i < 60; i++) log.append(batch(5, 10_000 + 100 * i, 30));
    assert.ok(log.segmentCount > 2);
    assert.deepEqual(await log.offsetForTimestamp(0), { offset: 0, timestamp: 10_000 });
    assert.deepEqual(await log.offsetForTimestamp(10_000 + 100 * 37 + 2), { offset: 5 * 37 + 2, timestamp: 10_000 + 100 * 37 + 2 });
    assert.deepEqual(await log.offsetForTimestamp(10_000 + 100 * 37 + 50), { offset: 5 * 38, timestamp: 10_000 + 100 * 38 });
    assert.equal(await log.offsetForTimestamp(10_000 + 100 * 60), null);
    await log.close();
  } finally {
    t.cleanup();
  }
});

test('group commit: many concurrent waitForFlush calls share a few fsyncs', async () => {
  const t = tempDir();
  try {
    const log = openLog(t.dir);
    const waits: Promise<void>[] = [];
    for (let i = 0; i < 50; i++) waits.push(log.waitForFlush(log.append(batch(1)).lastOffset));
    // Let the first fsync start, then keep appending and waiting while it runs.
    await new Promise((r) => setImmediate(r));
    for (let i = 0; i < 50; i++) waits.push(log.waitForFlush(log.append(batch(1)).lastOffset));
    await Promise.all(waits);
    assert.ok(log.fsyncCount >= 1 && log.fsyncCount <= 3, `fsyncs: ${log.fsyncCount} for 100 waiters`);
    assert.equal(log.flushedOffset, 100);
    const fsyncs = log.fsyncCount;
    await log.waitForFlush(99);
    await log.flush();
    assert.equal(log.fsyncCount, fsyncs, 'nothing new to flush');
    await log.close();
  } finally {
    t.cleanup();
  }
});

test('periodic flush policy: flush.messages and flush.ms', async () => {
  const t = tempDir();
  try {
    const log = openLog(t.dir, { 'flush.messages': '10', 'flush.ms': '1000' });
    for (let i = 0; i < 9; i++) log.append(batch(1), 1000);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(log.fsyncCount, 0);
    log.append(batch(1), 1000);
    await log.flush();
    assert.equal(log.fsyncCount, 1);
    assert.equal(log.flushedOffset, 10);
    log.append(batch(1), 2000);
    log.maybeFlush(2999);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(log.flushedOffset, 10);
    log.maybeFlush(3000);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(log.flushedOffset, 11);
    await log.close();
  } finally {
    t.cleanup();
  }
});

test('close then reopen (clean) keeps every batch and the next offset', async () => {
  const t = tempDir();
  try {
    let log = openLog(t.dir, { 'segment.bytes': '1024', 'index.interval.bytes': '100' });
    for (let i = 0; i < 30; i++) log.append(batch(2, 1000 + i, 40));
    const all = await readAll(log, 0);
    const segments = log.segmentCount;
    await log.close();
    log = openLog(t.dir, { 'segment.bytes': '1024', 'index.interval.bytes': '100' });
    assert.equal(log.segmentCount, segments);
    assert.equal(log.logEndOffset, 60);
    assert.deepEqual(await readAll(log, 0), all);
    assert.equal(log.append(batch(1)).baseOffset, 60);
    // Batch i holds offsets 2i, 2i+1 at timestamps 1000+i, 1001+i: the first at >= 1025 is offset 49.
    assert.deepEqual(await log.offsetForTimestamp(1025), { offset: 49, timestamp: 1025 });
    await log.delete();
  } finally {
    t.cleanup();
  }
});
