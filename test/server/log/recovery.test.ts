import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ErrorCode } from '../../../protocol/errors.ts';
import { batchSizeAt, lastOffsetAt, newBatchInfo, validateBatch } from '../../../protocol/record-batch.ts';
import { LogManager, CLEAN_SHUTDOWN_FILE } from '../../../server/log/log-manager.ts';
import { PartitionLog } from '../../../server/log/partition-log.ts';
import { batch, config, recordingLogger, tempDir } from './helpers.ts';

const CFG = { 'segment.bytes': '2048', 'index.interval.bytes': '128' };

async function readAll(log: PartitionLog, from: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  const info = newBatchInfo();
  for (let offset = from; ; ) {
    const r = await log.read(offset, 1 << 20);
    if (r.records.length === 0) return Buffer.concat(parts);
    for (let p = 0; p < r.records.length; p += batchSizeAt(r.records, p)) {
      assert.equal(validateBatch(r.records, p, r.records.length, info), ErrorCode.NONE, info.problem);
      offset = lastOffsetAt(r.records, p) + 1;
    }
    parts.push(r.records);
  }
}

/** Writes `count` batches of 3 records over a few segments, closes, returns each batch's bytes. */
async function writeLog(dir: string, count: number): Promise<Buffer[]> {
  const log = PartitionLog.open(dir, config(CFG), { cleanShutdown: true, logger: recordingLogger() });
  const batches: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const b = batch(3, 1000 + i * 10, 40, `b${i}`);
    log.append(b);
    batches.push(b);
  }
  await log.close();
  return batches;
}

function segmentFiles(dir: string, ext: string): string[] {
  return fs.readdirSync(dir).filter((n) => n.endsWith(ext)).sort().map((n) => path.join(dir, n));
}

function reopen(dir: string, cleanShutdown: boolean) {
  const logger = recordingLogger();
  return { log: PartitionLog.open(dir, config(CFG), { cleanShutdown, logger }), logger };
}

test('recovery (1): a segment cut mid-batch is truncated to its last whole batch', async () => {
  const t = tempDir();
  try {
    const batches = await writeLog(t.dir, 30);
    const logs = segmentFiles(t.dir, '.log');
    assert.ok(logs.length >= 3);
    const last = logs[logs.length - 1]!;
    const size = fs.statSync(last).size;
    const lastBatch = batches[batches.length - 1]!;
    fs.truncateSync(last, size - Math.floor(lastBatch.length / 2));
    const { log, logger } = reopen(t.dir, false);
    assert.deepEqual(await readAll(log, 0), Buffer.concat(batches.slice(0, -1)));
    assert.equal(log.logEndOffset, 29 * 3);
    assert.ok(logger.lines.some((l) => l.level === 'warn' && /truncated/.test(l.msg)));
    assert.equal(log.append(batch(1)).baseOffset, 29 * 3, 'next append continues after the last intact batch');
    assert.deepEqual(await readAll(log, 0), Buffer.concat([...batches.slice(0, -1), (await log.read(87, 1000)).records]));
    await log.close();
  } finally {
    t.cleanup();
  }
});

test('recovery (1b): garbage after the last batch is cut away', async () => {
  const t = tempDir();
  try {
    const batches = await writeLog(t.dir, 5);
    fs.appendFileSync(segmentFiles(t.dir, '.log').at(-1)!, Buffer.from('this is not a batch, just some trailing garbage bytes that go on for a while...'));
    const { log } = reopen(t.dir, false);
    assert.deepEqual(await readAll(log, 0), Buffer.concat(batches));
    assert.equal(log.logEndOffset, 15);
    await log.close();
  } finally {
    t.cleanup();
  }
});

test('recovery (2): a corrupt batch in the middle is dropped alone and named in a warning', async () => {
  const t = tempDir();
  try {
    const batches = await writeLog(t.dir, 30);
    const last = segmentFiles(t.dir, '.log').at(-1)!;
    const bytes = fs.readFileSync(last);
    // Find the second batch of the last segment and flip a byte in its record payload.
    const secondPos = batchSizeAt(bytes, 0);
    assert.ok(secondPos + batchSizeAt(bytes, secondPos) < bytes.length, 'the damaged batch must not be the last');
    const damaged = batches.findIndex((b) => b.equals(bytes.subarray(secondPos, secondPos + b.length)));
    assert.ok(damaged > 0);
    bytes[secondPos + 70]! ^= 0x5a;
    fs.writeFileSync(last, bytes);
    const { log, logger } = reopen(t.dir, false);
    const expected = batches.filter((_, i) => i !== damaged);
    assert.deepEqual(await readAll(log, 0), Buffer.concat(expected));
    assert.equal(log.logEndOffset, 90, 'offsets after the dropped batch keep their values');
    const warn = logger.lines.find((l) => l.level === 'warn' && /dropped a corrupt batch/.test(l.msg));
    assert.ok(warn);
    assert.equal(warn.fields?.firstOffset, damaged * 3);
    assert.equal(warn.fields?.lastOffset, damaged * 3 + 2);
    // Fetching inside the lost range continues at the next intact batch.
    const r = await log.read(damaged * 3 + 1, 1);
    assert.deepEqual(r.records, batches[damaged + 1]);
    assert.equal(fs.readdirSync(t.dir).filter((n) => n.endsWith('.recovering')).length, 0);
    await log.close();
  } finally {
    t.cleanup();
  }
});

test('recovery (3): a missing index file is rebuilt and reads work', async () => {
  const t = tempDir();
  try {
    const batches = await writeLog(t.dir, 30);
    const firstIndex = segmentFiles(t.dir, '.index')[0]!;
    const original = fs.readFileSync(firstIndex);
    assert.ok(original.length > 0);
    fs.unlinkSync(firstIndex);
    fs.writeFileSync(segmentFiles(t.dir, '.timeindex')[1]!, Buffer.alloc(7)); // damaged, not a multiple of 12
    const { log, logger } = reopen(t.dir, true);
    assert.equal(logger.lines.filter((l) => l.level === 'warn' && /rebuilding/.test(l.msg)).length, 2);
    assert.deepEqual(fs.readFileSync(firstIndex), original, 'rebuilt and persisted, identical to the original');
    assert.deepEqual(await readAll(log, 0), Buffer.concat(batches));
    assert.deepEqual(await log.offsetForTimestamp(1000 + 15 * 10), { offset: 45, timestamp: 1150 });
    await log.close();
  } finally {
    t.cleanup();
  }
});

test('recovery (4): the clean shutdown marker skips the scan; without it the log is scanned', async () => {
  const t = tempDir();
  try {
    let mgr = new LogManager(t.dir, { logger: recordingLogger() });
    assert.equal(mgr.cleanShutdown, false, 'fresh directory');
    const log = mgr.createPartition('orders', 0, config(CFG));
    const batches: Buffer[] = [];
    for (let i = 0; i < 4; i++) batches.push(batch(2, 1000, 40));
    for (const b of batches) log.append(b);
    await mgr.close();
    assert.ok(fs.existsSync(path.join(t.dir, CLEAN_SHUTDOWN_FILE)));
    // Damage a CRC-covered byte: only a scan would notice.
    const segment = segmentFiles(path.join(t.dir, 'orders-0'), '.log')[0]!;
    const bytes = fs.readFileSync(segment);
    bytes[batches[0]!.length + 70]! ^= 0xff;
    fs.writeFileSync(segment, bytes);

    mgr = new LogManager(t.dir, { logger: recordingLogger() });
    assert.equal(mgr.cleanShutdown, true);
    assert.ok(!fs.existsSync(path.join(t.dir, CLEAN_SHUTDOWN_FILE)), 'marker deleted at open');
    let reopened = mgr.loadPartition('orders', 0, config(CFG));
    const r = await reopened.read(0, 1 << 20);
    assert.equal(r.records.length, bytes.length, 'served as stored: no scan ran');
    // Crash: no close, so no marker. The next start scans and drops the damaged batch.
    mgr = new LogManager(t.dir, { logger: recordingLogger() });
    assert.equal(mgr.cleanShutdown, false);
    reopened = mgr.loadPartition('orders', 0, config(CFG));
    assert.deepEqual(await readAll(reopened, 0), Buffer.concat([batches[0]!, batches[2]!, batches[3]!]));
    await mgr.close();
  } finally {
    t.cleanup();
  }
});
