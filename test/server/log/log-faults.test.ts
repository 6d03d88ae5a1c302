/**
 * Fault injection under the log (log-io.ts): writes that fail half way, fsyncs that fail,
 * renames that fail during compaction. What must hold each time: nothing acknowledged is lost,
 * no torn batch is ever visible to a reader, and the log either goes on cleanly or refuses
 * writes with STORAGE_ERROR.
 *
 * Decided behaviour (unchanged from before the seam existed):
 * - A failed write is cut back off the segment and that append fails with STORAGE_ERROR; the
 *   log stays writable, since nothing it reported is in doubt, and the next append (once the
 *   disk works) lands where the failed one would have.
 * - A failed fsync takes the log offline for writes (STORAGE_ERROR for appends, flushes and
 *   waits on flush) until the broker restarts and recovers it: the kernel may have dropped the
 *   dirty pages, so a retry that succeeds would prove nothing.
 */
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, SluiceError } from '../../../protocol/errors.ts';
import { batchSizeAt, buildBatch, decodeRecords } from '../../../protocol/record-batch.ts';
import { FaultInjectingIo, setLogIo } from '../../../server/log/log-io.ts';
import { PartitionLog } from '../../../server/log/partition-log.ts';
import { batch, config, readRaw, recordingLogger, tempDir } from './helpers.ts';

function isCode(code: number) {
  return (e: unknown) => e instanceof SluiceError && e.code === code;
}

function open(dir: string, overrides: Record<string, string> = {}, cleanShutdown = true): PartitionLog {
  return PartitionLog.open(dir, config(overrides), { cleanShutdown, logger: recordingLogger() });
}

/** Runs fn with a FaultInjectingIo under the log, always restoring the real file system. */
async function withFaults(fn: (faults: FaultInjectingIo) => Promise<void>): Promise<void> {
  const faults = new FaultInjectingIo();
  const restore = setLogIo(faults);
  try {
    await fn(faults);
  } finally {
    restore();
  }
}

test('a write that fails half way: STORAGE_ERROR, no torn batch visible, acknowledged data intact, later appends work', async () => {
  const t = tempDir();
  try {
    await withFaults(async (faults) => {
      const log = open(t.dir);
      const acked: Buffer[] = [];
      for (let i = 0; i < 5; i++) {
        const b = batch(3, 1000 + i, 50, `a${i}`);
        log.append(b);
        acked.push(b);
      }
      await log.flush();
      const endBefore = log.logEndOffset;
      const sizeBefore = log.sizeBytes;

      faults.inject({ op: 'write', partialBytes: 40, times: 1 });
      assert.throws(() => log.append(batch(4, 2000, 50, 'torn')), isCode(ErrorCode.STORAGE_ERROR));
      assert.equal(faults.injected.write, 1);
      assert.equal(log.logEndOffset, endBefore, 'the failed append assigned no offsets');
      assert.equal(log.sizeBytes, sizeBefore, 'the short write was cut back');
      assert.deepEqual(await readRaw(log), Buffer.concat(acked), 'readers see exactly the acknowledged batches');

      // The disk works again: the next append lands where the failed one would have.
      faults.clear();
      const next = batch(2, 3000, 50, 'after');
      assert.equal(log.append(next).baseOffset, endBefore);
      acked.push(next);
      await log.flush();
      assert.deepEqual(await readRaw(log), Buffer.concat(acked));
      await log.close();

      // And after a crash-style reopen (recovery scan of the active segment) nothing changed.
      const again = open(t.dir, {}, false);
      assert.deepEqual(await readRaw(again), Buffer.concat(acked));
      assert.equal(again.logEndOffset, endBefore + 2);
      await again.close();
    });
  } finally {
    t.cleanup();
  }
});

test('a write that keeps failing: every append is refused cleanly and nothing earlier is lost', async () => {
  const t = tempDir();
  try {
    await withFaults(async (faults) => {
      const log = open(t.dir, { 'segment.bytes': '1024' });
      const acked: Buffer[] = [];
      for (let i = 0; i < 6; i++) {
        const b = batch(2, 1000 + i, 200, `k${i}`);
        log.append(b);
        acked.push(b);
      }
      faults.inject({ op: 'write', partialBytes: 10 });
      for (let i = 0; i < 4; i++) assert.throws(() => log.append(batch(2, 5000 + i, 200, `x${i}`)), isCode(ErrorCode.STORAGE_ERROR));
      faults.clear();
      await log.flush();
      assert.deepEqual(await readRaw(log), Buffer.concat(acked));
      await log.close();
    });
  } finally {
    t.cleanup();
  }
});

test('an fsync that fails: the waiting ack is refused, the log refuses further writes, data fsynced before survives', async () => {
  const t = tempDir();
  try {
    await withFaults(async (faults) => {
      const log = open(t.dir, { 'flush.before.ack': 'true' });
      const durable = batch(3, 1000, 40, 'durable');
      log.append(durable);
      await log.waitForFlush(log.logEndOffset - 1);

      faults.inject({ op: 'fsync' });
      const r = log.append(batch(3, 2000, 40, 'unsure'));
      await assert.rejects(log.waitForFlush(r.lastOffset), isCode(ErrorCode.STORAGE_ERROR));
      assert.ok(faults.injected.fsync >= 1);
      assert.ok(log.flushedOffset <= r.baseOffset, 'the failed cycle did not move the flushed offset');
      assert.throws(() => log.append(batch(1, 3000)), isCode(ErrorCode.STORAGE_ERROR));
      await assert.rejects(log.flush(), isCode(ErrorCode.STORAGE_ERROR));

      // Even once the disk answers again, the log stays offline: only a restart (recovery) brings it back.
      faults.clear();
      assert.throws(() => log.append(batch(1, 3000)), isCode(ErrorCode.STORAGE_ERROR));
      await log.close().catch(() => undefined);

      const reopened = open(t.dir, {}, false);
      const records = await readRaw(reopened);
      assert.ok(records.subarray(0, durable.length).equals(durable), 'the batch acknowledged after its fsync is there');
      reopened.append(batch(1, 4000));
      await reopened.close();
    });
  } finally {
    t.cleanup();
  }
});

test('a rename that fails while compaction swaps a segment: no record lost, before or after a restart', async () => {
  const t = tempDir();
  const enc = new TextEncoder();
  const dec = new TextDecoder();
  try {
    await withFaults(async (faults) => {
      const cfg = { 'cleanup.policy': 'compact', 'segment.bytes': '1024', 'index.interval.bytes': '128' };
      const log = open(t.dir, cfg);
      const T0 = 1_700_000_000_000;
      for (let i = 0; i < 60; i++) {
        const key = `key-${i % 5}`;
        log.append(Buffer.from(buildBatch([{ key: enc.encode(key), value: enc.encode(`value-${i}`.padEnd(30, '.')), timestamp: T0 + i }], T0 + i)));
      }
      await log.flush();
      const before = await readRaw(log);
      assert.ok(log.segmentCount >= 3, `${log.segmentCount} segments`);

      faults.inject({ op: 'rename', toSuffix: '.log' });
      await assert.rejects(log.compact(T0 + 100));
      assert.ok(faults.injected.rename >= 1);
      assert.deepEqual(await readRaw(log), before, 'the segments that were not swapped still serve every record');
      faults.clear();
      log.append(Buffer.from(buildBatch([{ key: enc.encode('key-0'), value: enc.encode('late'), timestamp: T0 + 99 }], T0 + 99)));
      const afterAppend = await readRaw(log);
      await log.close();

      const reopened = open(t.dir, cfg);
      assert.deepEqual(await readRaw(reopened), afterAppend, 'a restart finds the same log (indexes rebuilt where the failed swap removed them)');
      // Compaction works again once the disk does, and keeps the latest value of every key.
      await reopened.compact(T0 + 100);
      const latest = new Map<string, string>();
      const all = await readRaw(reopened);
      for (let p = 0; p < all.length; p += batchSizeAt(all, p)) for (const r of decodeRecords(all, p)) latest.set(dec.decode(r.key!), dec.decode(r.value!));
      assert.equal(latest.get('key-0'), 'late');
      assert.equal(latest.size, 5);
      await reopened.close();
    });
  } finally {
    t.cleanup();
  }
});

test('a rename that fails while recovery rewrites a segment: open fails, the original file is intact, the next open recovers', async () => {
  const t = tempDir();
  try {
    const cfg = { 'segment.bytes': '2048', 'index.interval.bytes': '128' };
    const log = open(t.dir, cfg);
    const batches: Buffer[] = [];
    for (let i = 0; i < 30; i++) {
      const b = batch(3, 1000 + i * 10, 40, `b${i}`);
      log.append(b);
      batches.push(b);
    }
    await log.close();
    // Damage the second batch of the last segment: recovery drops it by rewriting the file (.recovering, rename).
    const last = fs.readdirSync(t.dir).filter((n) => n.endsWith('.log')).sort().map((n) => path.join(t.dir, n)).at(-1)!;
    const bytes = fs.readFileSync(last);
    const secondPos = batchSizeAt(bytes, 0);
    const damaged = batches.findIndex((b) => b.equals(bytes.subarray(secondPos, secondPos + b.length)));
    assert.ok(damaged > 0);
    bytes[secondPos + 70]! ^= 0x5a;
    fs.writeFileSync(last, bytes);

    await withFaults(async (faults) => {
      faults.inject({ op: 'rename', toSuffix: '.log', times: 1 });
      assert.throws(() => open(t.dir, cfg, false));
      assert.equal(faults.injected.rename, 1);
    });
    assert.ok(fs.readFileSync(last).equals(bytes), 'the segment is as it was before the failed rewrite');

    const reopened = open(t.dir, cfg, false);
    assert.deepEqual(await readRaw(reopened), Buffer.concat(batches.filter((_, i) => i !== damaged)));
    assert.equal(fs.readdirSync(t.dir).filter((n) => n.endsWith('.recovering')).length, 0, 'the leftover of the failed rewrite is gone');
    await reopened.close();
  } finally {
    t.cleanup();
  }
});
