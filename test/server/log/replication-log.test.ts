/** Log-level primitives for replication: leader epochs, the epoch cache, follower appends, truncation, the high watermark. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ErrorCode, SluiceError } from '../../../protocol/errors.ts';
import { baseOffsetAt, batchSizeAt, buildBatch, decodeRecords, lastOffsetAt, newBatchInfo, Off, readInt32, validateBatch, writeInt64 } from '../../../protocol/record-batch.ts';
import { LEADER_EPOCH_CHECKPOINT_FILE, LeaderEpochCache } from '../../../server/log/leader-epoch-cache.ts';
import { HIGH_WATERMARK_CHECKPOINT_FILE, PartitionLog } from '../../../server/log/partition-log.ts';
import { batch, config, readRaw, recordingLogger, tempDir, type RecordingLogger } from './helpers.ts';

const T0 = 1_000_000;
const enc = new TextEncoder();
const dec = new TextDecoder();

function isCode(code: number) {
  return (e: unknown) => e instanceof SluiceError && e.code === code;
}

function openLog(dir: string, overrides: Record<string, string> = {}, cleanShutdown = true, logger: RecordingLogger = recordingLogger()) {
  return PartitionLog.open(dir, config(overrides), { cleanShutdown, logger, nowMs: T0 });
}

/** Small segments and a dense index, so that a few batches span several segments. */
const SMALL = { 'segment.bytes': '1024', 'index.interval.bytes': '200' };

function batchesOf(buf: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let p = 0; p < buf.length; p += batchSizeAt(buf, p)) out.push(buf.subarray(p, p + batchSizeAt(buf, p)));
  return out;
}

function valuesOf(buf: Buffer): string[] {
  return batchesOf(buf).flatMap((b) => decodeRecords(b, 0).map((r) => `${r.offset}:${r.value && dec.decode(r.value).replace(/\.+$/, '')}`));
}

/** The log's bytes as stored: every .log file in base offset order, concatenated. */
function logFileBytes(dir: string): Buffer {
  const names = fs.readdirSync(dir).filter((n) => /^\d{20}\.log$/.test(n)).sort();
  return Buffer.concat(names.map((n) => fs.readFileSync(path.join(dir, n))));
}

/** Appends `batches` batches of `perBatch` records as leader in `epoch`; returns the last offset. */
function appendAsLeader(log: PartitionLog, epoch: number, batches: number, perBatch: number, tag: string): number {
  let last = -1;
  for (let i = 0; i < batches; i++) last = log.append(batch(perBatch, T0 + i, 60, `${tag}${i}`), T0, { leaderEpoch: epoch }).lastOffset;
  return last;
}

/** Replicates everything from `from` on the leader to the follower, one fetch of at most maxBytes at a time. */
async function replicate(leader: PartitionLog, follower: PartitionLog, maxBytes = 700): Promise<void> {
  for (;;) {
    const r = await leader.read(follower.logEndOffset, maxBytes, { maxOffset: leader.logEndOffset });
    if (r.records.length === 0) return;
    follower.appendAsFollower(r.records, T0);
  }
}

function withDirs(n: number, fn: (...dirs: string[]) => Promise<void>): () => Promise<void> {
  return async () => {
    const dirs = Array.from({ length: n }, () => tempDir());
    try {
      await fn(...dirs.map((d) => d.dir));
    } finally {
      for (const d of dirs) d.cleanup();
    }
  };
}

// ---------------------------------------------------------------- leader epochs

test(
  'a leader epoch is stamped into every batch, outside the CRC; without one the producer value stays',
  withDirs(1, async (dir) => {
    const log = openLog(dir!);
    const set = Buffer.concat([batch(2, T0, 10, 'a'), batch(3, T0, 10, 'b')]);
    log.append(set, T0, { leaderEpoch: 7 });
    log.append(batch(1, T0, 10, 'c'), T0);
    const raw = await readRaw(log);
    const epochs = batchesOf(raw).map((b) => readInt32(b, Off.partitionLeaderEpoch));
    assert.deepEqual(epochs, [7, 7, -1]);
    assert.equal(readInt32(set, Off.partitionLeaderEpoch), 7, 'stamped in the caller buffer, like baseOffset');
    const info = newBatchInfo();
    for (const b of batchesOf(raw)) assert.equal(validateBatch(b, 0, b.length, info), ErrorCode.NONE, info.problem);
    assert.deepEqual(log.epochEntries(), [{ epoch: 7, startOffset: 0 }], 'batches without an epoch are not tracked');
    await log.close();
  }),
);

test(
  'an append with an epoch older than the latest is fenced and changes nothing',
  withDirs(1, async (dir) => {
    const log = openLog(dir!);
    appendAsLeader(log, 3, 1, 2, 'x');
    const b = batch(2, T0, 10, 'y');
    const before = Buffer.from(b);
    assert.throws(() => log.append(b, T0, { leaderEpoch: 2 }), isCode(ErrorCode.FENCED_LEADER_EPOCH));
    assert.deepEqual(b, before, 'buffer untouched');
    assert.equal(log.logEndOffset, 2);
    assert.throws(() => log.append(batch(1), T0, { leaderEpoch: -5 }), /leader epoch/);
    assert.throws(() => log.beginLeaderEpoch(1), isCode(ErrorCode.FENCED_LEADER_EPOCH));
    await log.close();
  }),
);

test(
  'the epoch cache follows appends across segments, is persisted, and is rebuilt when missing or damaged',
  withDirs(1, async (dir) => {
    let log = openLog(dir!, SMALL);
    appendAsLeader(log, 0, 3, 2, 'e0'); // 0..5
    appendAsLeader(log, 1, 4, 2, 'e1'); // 6..13
    log.append(batch(1, T0), T0); // 14, no epoch
    appendAsLeader(log, 1, 1, 2, 'e1b'); // 15..16
    appendAsLeader(log, 4, 5, 3, 'e4'); // 17..31
    const expected = [
      { epoch: 0, startOffset: 0 },
      { epoch: 1, startOffset: 6 },
      { epoch: 4, startOffset: 17 },
    ];
    assert.ok(log.segmentCount >= 3, `${log.segmentCount} segments`);
    assert.deepEqual(log.epochEntries(), expected);
    assert.equal(log.latestEpoch(), 4);
    const file = path.join(dir!, LEADER_EPOCH_CHECKPOINT_FILE);
    assert.equal(fs.readFileSync(file, 'utf8'), '0\n3\n0 0\n1 6\n4 17\n', "Kafka's checkpoint layout");
    await log.close();

    log = openLog(dir!, SMALL);
    assert.deepEqual(log.epochEntries(), expected, 'loaded from the checkpoint');
    await log.close();

    fs.unlinkSync(file);
    log = openLog(dir!, SMALL);
    assert.deepEqual(log.epochEntries(), expected, 'rebuilt from the batch headers');
    assert.ok(fs.existsSync(file), 'and written back');
    await log.close();

    fs.writeFileSync(file, '0\n3\n0 0\n1 6\n');
    const logger = recordingLogger();
    log = openLog(dir!, SMALL, true, logger);
    assert.deepEqual(log.epochEntries(), expected, 'a damaged checkpoint is rebuilt too');
    assert.ok(logger.lines.some((l) => l.level === 'warn' && /leader epoch checkpoint/.test(l.msg)));
    await log.close();
  }),
);

test(
  'endOffsetForEpoch follows Kafka: latest -> log end, known -> next epoch start, between -> floor epoch, older -> first start',
  withDirs(1, async (dir) => {
    const log = openLog(dir!);
    assert.deepEqual(log.endOffsetForEpoch(0), { epoch: -1, endOffset: -1 }, 'empty cache');
    assert.equal(log.latestEpoch(), -1);
    appendAsLeader(log, 1, 2, 5, 'a'); // 0..9
    appendAsLeader(log, 3, 2, 5, 'b'); // 10..19
    appendAsLeader(log, 5, 1, 5, 'c'); // 20..24
    assert.deepEqual(log.endOffsetForEpoch(5), { epoch: 5, endOffset: 25 });
    assert.deepEqual(log.endOffsetForEpoch(3), { epoch: 3, endOffset: 20 });
    assert.deepEqual(log.endOffsetForEpoch(4), { epoch: 3, endOffset: 20 }, 'unknown epoch between two: the largest below and its end');
    assert.deepEqual(log.endOffsetForEpoch(2), { epoch: 1, endOffset: 10 });
    assert.deepEqual(log.endOffsetForEpoch(1), { epoch: 1, endOffset: 10 });
    assert.deepEqual(log.endOffsetForEpoch(0), { epoch: 0, endOffset: 0 }, 'older than all: the first start');
    assert.deepEqual(log.endOffsetForEpoch(6), { epoch: -1, endOffset: -1 }, 'newer than the latest');
    assert.deepEqual(log.endOffsetForEpoch(-1), { epoch: -1, endOffset: -1 });
    // A leader that has not written in its new epoch yet.
    log.beginLeaderEpoch(6);
    assert.equal(log.latestEpoch(), 6);
    assert.deepEqual(log.endOffsetForEpoch(5), { epoch: 5, endOffset: 25 });
    assert.deepEqual(log.endOffsetForEpoch(6), { epoch: 6, endOffset: 25 });
    appendAsLeader(log, 6, 1, 1, 'd');
    assert.deepEqual(log.epochEntries().at(-1), { epoch: 6, startOffset: 25 });
    await log.close();
  }),
);

test('LeaderEpochCache.assign: dataless entries give way; an epoch going back over data is refused or repaired', () => {
  const t = tempDir();
  try {
    const c = new LeaderEpochCache(t.dir, [
      { epoch: 1, startOffset: 0 },
      { epoch: 3, startOffset: 10 },
    ]);
    assert.equal(c.assign(3, 12), false, 'same epoch continues');
    assert.equal(c.assign(-1, 20), false, 'no epoch: not tracked');
    assert.equal(c.assign(4, 15), true);
    // Epoch 4 began at 15 but wrote nothing; epoch 2 data from a new leader arrives at 15.
    assert.throws(() => c.assign(2, 14), isCode(ErrorCode.FENCED_LEADER_EPOCH), 'epoch 3 holds data at 10..14');
    assert.equal(c.assign(3, 15), true, 'epoch 4 had no data: dropped, epoch 3 continues');
    assert.deepEqual(c.entries, [
      { epoch: 1, startOffset: 0 },
      { epoch: 3, startOffset: 10 },
    ]);
    assert.equal(c.assign(2, 16, 'repair'), true);
    assert.deepEqual(c.entries, [
      { epoch: 1, startOffset: 0 },
      { epoch: 2, startOffset: 16 },
    ]);
    assert.equal(c.truncateFromStart(5), true);
    assert.deepEqual(c.entries[0], { epoch: 1, startOffset: 5 });
    assert.equal(c.truncateFromStart(5), false);
    assert.equal(c.truncateFromEnd(16), true);
    assert.deepEqual(c.entries, [{ epoch: 1, startOffset: 5 }]);
  } finally {
    t.cleanup();
  }
});

// ---------------------------------------------------------------- follower append

test(
  'a follower append keeps the leader bytes and offsets: the follower log files equal the leader ones',
  withDirs(2, async (leaderDir, followerDir) => {
    const leader = openLog(leaderDir!, SMALL);
    const follower = openLog(followerDir!, SMALL);
    appendAsLeader(leader, 0, 5, 3, 'a');
    appendAsLeader(leader, 2, 6, 2, 'b');
    await replicate(leader, follower);
    appendAsLeader(leader, 5, 4, 4, 'c');
    await replicate(leader, follower, 1); // one batch per fetch
    assert.equal(follower.logEndOffset, leader.logEndOffset);
    assert.deepEqual(follower.epochEntries(), leader.epochEntries());
    assert.deepEqual(await readRaw(follower), await readRaw(leader));
    assert.ok(follower.segmentCount > 1, 'the follower rolls too');
    await leader.close();
    await follower.close();
    assert.deepEqual(logFileBytes(followerDir!), logFileBytes(leaderDir!));
    const reopened = openLog(followerDir!, SMALL, false);
    assert.deepEqual(reopened.epochEntries(), [
      { epoch: 0, startOffset: 0 },
      { epoch: 2, startOffset: 15 },
      { epoch: 5, startOffset: 27 },
    ]);
    await reopened.close();
  }),
);

test(
  'a follower append takes offset gaps (compaction on the leader) and refuses to start below its log end',
  withDirs(3, async (leaderDir, followerDir, gapDir) => {
    // Real gaps: a compacted leader.
    const compact = { ...SMALL, 'cleanup.policy': 'compact' };
    const leader = openLog(leaderDir!, compact);
    for (let i = 0; i < 30; i++) {
      const records = [0, 1, 2].map((j) => ({ key: enc.encode(`k${(i * 3 + j) % 4}`), value: enc.encode(`v${i}-${j}`), timestamp: T0 + i }));
      leader.append(Buffer.from(buildBatch(records, T0)), T0, { leaderEpoch: 1 });
    }
    await leader.flush();
    const compacted = await leader.compact(T0);
    assert.ok(compacted.recordsRemoved > 0 && compacted.batchesRemoved > 0, 'compaction left gaps');
    const follower = openLog(followerDir!, compact);
    await replicate(leader, follower);
    assert.equal(follower.logEndOffset, leader.logEndOffset);
    assert.deepEqual(await readRaw(follower), await readRaw(leader));

    // Hand-made gaps between batches, then a batch below the log end.
    const log = openLog(gapDir!);
    const a = batch(3, T0, 10, 'a');
    const b = batch(2, T0, 10, 'b');
    writeInt64(b, 0, 10);
    assert.deepEqual(log.appendAsFollower(Buffer.concat([a, b]), T0), { firstOffset: 0, lastOffset: 11 });
    assert.equal(log.logEndOffset, 12);
    assert.deepEqual((await log.read(5, 1000)).records, b, 'a read in the gap gets the next batch');
    const low = batch(1, T0, 10, 'low');
    writeInt64(low, 0, 11);
    const sizeBefore = log.sizeBytes;
    assert.throws(() => log.appendAsFollower(low, T0), (e: unknown) => isCode(ErrorCode.OFFSET_OUT_OF_RANGE)(e) && /truncate/.test((e as Error).message));
    const c = batch(2, T0, 10, 'c');
    const d = batch(2, T0, 10, 'd');
    writeInt64(c, 0, 20);
    writeInt64(d, 0, 21);
    assert.throws(() => log.appendAsFollower(Buffer.concat([c, d]), T0), isCode(ErrorCode.CORRUPT_MESSAGE), 'overlapping batches');
    const bad = batch(1, T0, 10, 'bad');
    writeInt64(bad, 0, 30);
    bad[bad.length - 1]! ^= 0xff;
    assert.throws(() => log.appendAsFollower(bad, T0), isCode(ErrorCode.CORRUPT_MESSAGE), 'CRC checked');
    assert.equal(log.logEndOffset, 12);
    assert.equal(log.sizeBytes, sizeBefore, 'nothing written');
    await leader.close();
    await follower.close();
    await log.close();
  }),
);

test(
  'a follower append whose epoch goes back over data in the log is fenced (truncate first)',
  withDirs(1, async (dir) => {
    const log = openLog(dir!);
    const e3 = batch(2, T0, 10, 'e3');
    e3.writeInt32BE(3, Off.partitionLeaderEpoch);
    log.appendAsFollower(e3, T0);
    const e2 = batch(2, T0, 10, 'e2');
    e2.writeInt32BE(2, Off.partitionLeaderEpoch);
    writeInt64(e2, 0, 2);
    assert.throws(() => log.appendAsFollower(e2, T0), isCode(ErrorCode.FENCED_LEADER_EPOCH));
    assert.equal(log.logEndOffset, 2);
    assert.deepEqual(log.epochEntries(), [{ epoch: 3, startOffset: 0 }]);
    await log.close();
  }),
);

// ---------------------------------------------------------------- truncation

test(
  'truncateTo in the active segment: at a batch boundary, inside a batch (the whole batch goes), then appends continue',
  withDirs(1, async (dir) => {
    const log = openLog(dir!);
    appendAsLeader(log, 1, 4, 5, 'a'); // batches 0..4, 5..9, 10..14, 15..19
    const before = await readRaw(log);
    assert.equal(await log.truncateTo(15), 15, 'batch boundary');
    assert.equal(log.logEndOffset, 15);
    assert.deepEqual(await readRaw(log), before.subarray(0, 3 * batchSizeAt(before, 0)));
    assert.equal(await log.truncateTo(12), 10, 'inside 10..14: cut at its start');
    assert.equal(log.logEndOffset, 10);
    assert.equal(log.sizeBytes, 2 * batchSizeAt(before, 0));
    assert.equal(await log.truncateTo(50), 10, 'past the end: nothing to do');
    const r = log.append(batch(3, T0, 20, 'new'), T0, { leaderEpoch: 2 });
    assert.deepEqual([r.baseOffset, r.lastOffset], [10, 12]);
    assert.deepEqual(valuesOf(await readRaw(log, 8)).slice(-4), ['9:a1-4', '10:new-0', '11:new-1', '12:new-2']);
    assert.deepEqual(log.epochEntries(), [
      { epoch: 1, startOffset: 0 },
      { epoch: 2, startOffset: 10 },
    ]);
    await log.close();
  }),
);

test(
  'truncateTo across segments deletes later segments, fixes indexes and the epoch cache, and survives restarts',
  withDirs(1, async (dir) => {
    let log = openLog(dir!, SMALL);
    appendAsLeader(log, 1, 8, 3, 'a'); // 0..23
    appendAsLeader(log, 2, 8, 3, 'b'); // 24..47
    await log.flush();
    const segmentsBefore = log.segmentCount;
    assert.ok(segmentsBefore >= 5, `${segmentsBefore} segments`);
    const all = await readRaw(log);
    const kept = batchesOf(all).filter((b) => lastOffsetAt(b, 0) < 13);
    assert.equal(await log.truncateTo(13), 12, '13 is inside batch 12..14');
    assert.ok(log.segmentCount < segmentsBefore);
    assert.equal(fs.readdirSync(dir!).filter((n) => n.endsWith('.log')).length, log.segmentCount, 'deleted segment files are gone');
    assert.deepEqual(await readRaw(log), Buffer.concat(kept));
    assert.deepEqual(log.epochEntries(), [{ epoch: 1, startOffset: 0 }]);
    // Every offset still reads through the (truncated) indexes.
    for (let o = 0; o < 12; o++) assert.equal(baseOffsetAt((await log.read(o, 1)).records, 0), o - (o % 3));
    await assert.rejects(log.read(13, 100), isCode(ErrorCode.OFFSET_OUT_OF_RANGE));
    appendAsLeader(log, 3, 6, 3, 'c'); // 12..29
    assert.equal(log.logEndOffset, 30);
    const expected = await readRaw(log);
    await log.close();

    log = openLog(dir!, SMALL);
    assert.deepEqual(await readRaw(log), expected, 'clean restart');
    assert.deepEqual(log.epochEntries(), [
      { epoch: 1, startOffset: 0 },
      { epoch: 3, startOffset: 12 },
    ]);
    // Truncate again, then "crash" (no close) and recover.
    assert.equal(await log.truncateTo(6), 6);
    log = openLog(dir!, SMALL, false);
    assert.equal(log.logEndOffset, 6);
    assert.deepEqual(await readRaw(log), expected.subarray(0, 2 * batchSizeAt(expected, 0)));
    assert.deepEqual(log.epochEntries(), [{ epoch: 1, startOffset: 0 }]);
    assert.equal(await log.truncateTo(0), 0, 'down to the log start');
    assert.equal(log.sizeBytes, 0);
    assert.deepEqual(log.epochEntries(), []);
    appendAsLeader(log, 4, 1, 2, 'd');
    assert.deepEqual(valuesOf(await readRaw(log)), ['0:d0-0', '1:d0-1']);
    await log.close();
  }),
);

test(
  'truncateTo refuses below the log start; truncateFullyAndStartAt empties the log and restarts it at an offset',
  withDirs(1, async (dir) => {
    let log = openLog(dir!, SMALL);
    appendAsLeader(log, 1, 6, 3, 'a');
    await log.truncateFullyAndStartAt(100);
    assert.deepEqual([log.logStartOffset, log.logEndOffset, log.highWatermark, log.segmentCount], [100, 100, 100, 1]);
    assert.deepEqual(log.epochEntries(), []);
    assert.deepEqual(
      fs.readdirSync(dir!).filter((n) => n.endsWith('.log')),
      ['00000000000000000100.log'],
    );
    await assert.rejects(log.truncateTo(50), isCode(ErrorCode.OFFSET_OUT_OF_RANGE));
    const b = batch(2, T0, 10, 'x');
    b.writeInt32BE(7, Off.partitionLeaderEpoch);
    writeInt64(b, 0, 100);
    log.appendAsFollower(b, T0);
    assert.equal(log.logEndOffset, 102);
    await log.close();
    log = openLog(dir!, SMALL);
    assert.deepEqual([log.logStartOffset, log.logEndOffset], [100, 102]);
    assert.deepEqual(log.epochEntries(), [{ epoch: 7, startOffset: 100 }]);
    await log.close();
  }),
);

test(
  'a read in flight across a truncation never returns cut or rewritten bytes',
  withDirs(1, async (dir) => {
    const log = openLog(dir!);
    appendAsLeader(log, 1, 20, 3, 'old');
    const reading = log.read(0, 1 << 20, { maxOffset: Infinity });
    await log.truncateTo(0);
    for (let i = 0; i < 20; i++) log.append(batch(5, T0, 7, `new${i}`), T0, { leaderEpoch: 2 });
    const r = await reading;
    const info = newBatchInfo();
    for (const b of batchesOf(r.records)) assert.equal(validateBatch(b, 0, b.length, info, true), ErrorCode.NONE, info.problem);
    const values = valuesOf(r.records);
    assert.ok(values.length > 0 && values.every((v) => v.includes('new')), 'the read retried on the new log');
    await log.close();
  }),
);

// ---------------------------------------------------------------- high watermark

test(
  'the high watermark follows the log end until replicated; then it moves only forward, up to the log end, and limits reads',
  withDirs(1, async (dir) => {
    const log = openLog(dir!);
    appendAsLeader(log, 1, 3, 4, 'a'); // 0..3, 4..7, 8..11
    assert.equal(log.highWatermark, 12, 'single broker: HW = LEO');
    assert.equal(log.updateHighWatermark(3), 12, 'no effect without replication');
    log.replicated = true;
    assert.equal(log.highWatermark, 12, 'turning replication on keeps it');
    appendAsLeader(log, 1, 2, 4, 'b'); // 12..15, 16..19
    assert.equal(log.highWatermark, 12, 'appends no longer move it');
    assert.equal(log.updateHighWatermark(14), 14, 'inside a batch');
    assert.equal(log.updateHighWatermark(13), 14, 'never back');
    assert.equal(log.updateHighWatermark(1000), 20, 'never past the log end');
    await log.truncateTo(14);
    assert.deepEqual([log.logEndOffset, log.highWatermark], [12, 12], 'truncation lowers it');
    appendAsLeader(log, 1, 2, 4, 'c'); // 12..15, 16..19
    log.updateHighWatermark(14);

    const consumer = await log.read(0, 1 << 20);
    assert.deepEqual(batchesOf(consumer.records).map((b) => baseOffsetAt(b, 0)), [0, 4, 8], 'the batch straddling the HW is held back');
    assert.equal(consumer.highWatermark, 14);
    assert.equal((await log.read(12, 1 << 20)).records.length, 0, 'at the HW: empty, not out of range');
    assert.equal((await log.read(17, 1 << 20)).records.length, 0, 'between HW and LEO: empty');
    await assert.rejects(log.read(21, 100), isCode(ErrorCode.OFFSET_OUT_OF_RANGE));
    const replica = await log.read(0, 1 << 20, { maxOffset: log.logEndOffset });
    assert.deepEqual(batchesOf(replica.records).map((b) => baseOffsetAt(b, 0)), [0, 4, 8, 12, 16]);
    assert.deepEqual(batchesOf((await log.read(0, 1 << 20, { maxOffset: 8 })).records).map((b) => baseOffsetAt(b, 0)), [0, 4]);
    log.replicated = false;
    assert.equal(log.highWatermark, 20);
    await log.close();
  }),
);

test(
  'the high watermark checkpoint survives clean and unclean restarts and is clamped to the log',
  withDirs(1, async (dir) => {
    let log = openLog(dir!);
    assert.ok(fs.existsSync(path.join(dir!, HIGH_WATERMARK_CHECKPOINT_FILE)), 'written at creation');
    log.replicated = true;
    appendAsLeader(log, 1, 5, 2, 'a'); // 0..9
    log.updateHighWatermark(6);
    await log.close();

    log = openLog(dir!);
    log.replicated = true;
    assert.equal(log.highWatermark, 6, 'clean restart');
    log.updateHighWatermark(8);
    await log.flush();
    log.updateHighWatermark(10); // not flushed: lost in the crash below

    log = openLog(dir!, {}, false);
    log.replicated = true;
    assert.equal(log.highWatermark, 8, 'unclean restart: the value of the last flush');
    await log.truncateTo(4);
    await log.close();
    fs.writeFileSync(path.join(dir!, HIGH_WATERMARK_CHECKPOINT_FILE), '0\n1\n99\n');
    log = openLog(dir!);
    log.replicated = true;
    assert.equal(log.highWatermark, 4, 'clamped to the log end');
    await log.close();
    fs.writeFileSync(path.join(dir!, HIGH_WATERMARK_CHECKPOINT_FILE), 'garbage');
    log = openLog(dir!);
    log.replicated = true;
    assert.equal(log.highWatermark, 0, 'damaged: the log start');
    await log.close();
  }),
);

test(
  'replicated: retention keeps segments above the high watermark; compaction ignores records above it',
  withDirs(2, async (dir, compactDir) => {
    const log = openLog(dir!, { ...SMALL, 'retention.bytes': '0' });
    log.replicated = true;
    appendAsLeader(log, 1, 12, 3, 'a');
    assert.ok(log.segmentCount >= 4);
    log.updateHighWatermark(12);
    log.applyRetention(T0);
    assert.ok(log.logStartOffset <= 12 && log.logStartOffset > 0, `log start ${log.logStartOffset}`);
    assert.equal(log.logEndOffset, 36, 'nothing above the HW deleted');
    assert.deepEqual(log.epochEntries(), [{ epoch: 1, startOffset: log.logStartOffset }], 'epoch cache trimmed to the new log start');
    await log.close();

    const c = openLog(compactDir!, { ...SMALL, 'cleanup.policy': 'compact' });
    c.replicated = true;
    const keyed = (key: string, value: string) => Buffer.from(buildBatch([{ key: enc.encode(key), value: enc.encode(value.padEnd(200, '.')), timestamp: T0 }], T0));
    c.append(keyed('k', 'old'), T0, { leaderEpoch: 1 }); // 0
    for (let i = 0; i < 6; i++) c.append(keyed(`f${i}`, 'filler'), T0, { leaderEpoch: 1 }); // 1..6
    c.append(keyed('k', 'new'), T0, { leaderEpoch: 1 }); // 7
    c.append(keyed('z', 'tail'), T0, { leaderEpoch: 1 }); // 8
    await c.flush();
    c.updateHighWatermark(7);
    await c.compact(T0);
    assert.ok(valuesOf(await readRaw(c)).some((v) => v.startsWith('0:old')), 'k@0 stays: k@7 is not committed');
    c.updateHighWatermark(9);
    await c.compact(T0);
    assert.ok(!valuesOf(await readRaw(c)).some((v) => v.startsWith('0:old')), 'once committed, k@7 replaces it');
    await c.close();
  }),
);

// ---------------------------------------------------------------- divergence (KIP-101)

test(
  'divergence: a follower with an epoch-1 tail the new leader never got truncates to the leader answer and converges',
  withDirs(2, async (dirA, dirB) => {
    const a = openLog(dirA!);
    const b = openLog(dirB!);
    a.replicated = true;
    b.replicated = true;
    // Epoch 1, B leads: 0..9 reach A as well.
    appendAsLeader(b, 1, 5, 2, 'shared'); // 0..9
    await replicate(b, a);
    // B writes 10..14 in epoch 1; A never gets them.
    appendAsLeader(b, 1, 1, 5, 'lost'); // 10..14
    // A becomes leader in epoch 2 at offset 10 and writes 10..19.
    a.beginLeaderEpoch(2);
    appendAsLeader(a, 2, 2, 5, 'epoch2'); // 10..19
    assert.deepEqual(a.epochEntries(), [
      { epoch: 1, startOffset: 0 },
      { epoch: 2, startOffset: 10 },
    ]);
    // B, now a follower, asks A where its latest epoch ends.
    const answer = a.endOffsetForEpoch(b.latestEpoch());
    assert.deepEqual(answer, { epoch: 1, endOffset: 10 });
    // Kafka's follower rule: truncate to min(answer, own end of that epoch).
    const target = Math.min(answer.endOffset, b.endOffsetForEpoch(answer.epoch).endOffset);
    assert.equal(await b.truncateTo(target), 10);
    await assert.rejects(b.read(12, 100), isCode(ErrorCode.OFFSET_OUT_OF_RANGE));
    await replicate(a, b);
    assert.deepEqual(await readRaw(b), await readRaw(a));
    assert.deepEqual(b.epochEntries(), a.epochEntries());
    assert.equal(b.logEndOffset, 20);
    assert.ok(valuesOf(await readRaw(b)).every((v) => !v.includes('lost')));
    await a.close();
    await b.close();
    assert.deepEqual(logFileBytes(dirB!), logFileBytes(dirA!));
  }),
);
