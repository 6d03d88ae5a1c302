import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ErrorCode, SluiceError } from '../../../protocol/errors.ts';
import { batchSizeAt, buildBatch, decodeRecords, lastOffsetAt, newBatchInfo, Off, readInt32, readInt64, validateBatch, type DecodedRecord } from '../../../protocol/record-batch.ts';
import { firstKeylessOffset } from '../../../server/log/log-cleaner.ts';
import { parseLogConfig, topicConfigToStrings } from '../../../server/log/log-config.ts';
import { LogManager } from '../../../server/log/log-manager.ts';
import { PartitionLog } from '../../../server/log/partition-log.ts';
import { CLEANED_SUFFIX } from '../../../server/log/segment.ts';
import { batch, config, recordingLogger, tempDir } from './helpers.ts';

const enc = new TextEncoder();
const dec = new TextDecoder();
const T0 = 1_700_000_000_000;

interface Rec {
  key: string | null;
  value: string | null;
  timestamp?: number;
}

function keyed(records: Rec[], timestampMs = T0): Buffer {
  return Buffer.from(
    buildBatch(
      records.map((r, i) => ({ key: r.key === null ? null : enc.encode(r.key), value: r.value === null ? null : enc.encode(r.value), timestamp: r.timestamp ?? timestampMs + i })),
      timestampMs,
    ),
  );
}

interface Seen {
  offset: number;
  key: string | null;
  value: string | null;
  timestamp: number;
}

function seen(r: DecodedRecord): Seen {
  return { offset: r.offset, key: r.key && dec.decode(r.key), value: r.value && dec.decode(r.value), timestamp: r.timestamp };
}

/** Every record from `from` to the log end, checking each batch as a consumer would (stored rules). */
async function readAll(log: PartitionLog, from = 0, maxBytes = 1 << 20): Promise<{ records: Seen[]; bytes: Buffer }> {
  const records: Seen[] = [];
  const parts: Buffer[] = [];
  const info = newBatchInfo();
  let offset = from;
  for (;;) {
    const r = await log.read(offset, maxBytes);
    if (r.records.length === 0) break;
    for (let p = 0; p < r.records.length; p += batchSizeAt(r.records, p)) {
      assert.equal(validateBatch(r.records, p, r.records.length, info, true), ErrorCode.NONE, info.problem);
      for (const rec of decodeRecords(r.records, p)) records.push(seen(rec));
      offset = lastOffsetAt(r.records, p) + 1;
    }
    parts.push(r.records);
  }
  return { records, bytes: Buffer.concat(parts) };
}

function compactConfig(overrides: Record<string, string> = {}) {
  return config({ 'cleanup.policy': 'compact', 'segment.bytes': '1024', 'index.interval.bytes': '128', ...overrides });
}

function openLog(dir: string, overrides: Record<string, string> = {}, cleanShutdown = true) {
  return PartitionLog.open(dir, compactConfig(overrides), { cleanShutdown, logger: recordingLogger() });
}

function segmentBases(dir: string): number[] {
  return fs
    .readdirSync(dir)
    .filter((n) => /^\d{20}\.log$/.test(n))
    .map((n) => Number(n.slice(0, 20)))
    .sort((a, b) => a - b);
}

function segmentFile(dir: string, base: number, suffix = '.log'): string {
  return path.join(dir, String(base).padStart(20, '0') + suffix);
}

/** Appends `rounds` batches that overwrite keys k0..k{keys-1} over and over; returns every record written. */
function writeOverwrites(log: PartitionLog, rounds: number, keys: number): Seen[] {
  const written: Seen[] = [];
  let n = 0;
  for (let i = 0; i < rounds; i++) {
    const recs: Rec[] = [];
    for (let j = 0; j < 1 + (i % 3); j++, n++) recs.push({ key: `k${n % keys}`, value: `v${n}-${'x'.repeat(n % 7)}` });
    const b = keyed(recs, T0 + i * 10);
    const r = log.append(b, T0);
    decodeRecords(b, 0).forEach((rec) => written.push(seen(rec)));
    assert.equal(written[written.length - 1]!.offset, r.lastOffset);
  }
  return written;
}

/** What a compaction at nowMs must leave: records past activeBase as they are, before it the latest per key (live tombstones included). */
function expectedAfter(written: Seen[], activeBase: number, nowMs = T0, deleteRetentionMs = 86_400_000): Seen[] {
  const latest = new Map<string, number>();
  for (const r of written) if (r.key !== null) latest.set(r.key, r.offset);
  return written.filter((r) => {
    if (r.offset >= activeBase || r.key === null) return true;
    if (latest.get(r.key) !== r.offset) return false;
    return r.value !== null || r.timestamp + deleteRetentionMs > nowMs;
  });
}

test('cleanup.policy accepts Kafka forms; delete.retention.ms and min.compaction.lag.ms parse and round-trip', () => {
  assert.equal(parseLogConfig({ 'cleanup.policy': 'compact' }).cleanupPolicy, 'compact');
  assert.equal(parseLogConfig({ 'cleanup.policy': 'compact,delete' }).cleanupPolicy, 'compact,delete');
  assert.equal(parseLogConfig({ 'cleanup.policy': 'delete,compact' }).cleanupPolicy, 'compact,delete');
  assert.equal(parseLogConfig({ 'cleanup.policy': 'delete, compact' }).cleanupPolicy, 'compact,delete');
  const c = parseLogConfig({});
  assert.equal(c.deleteRetentionMs, 86_400_000);
  assert.equal(c.minCompactionLagMs, 0);
  for (const bad of ['', 'compact,', 'compact,compact', 'compaction', 'delete,delete,compact']) {
    assert.throws(() => parseLogConfig({ 'cleanup.policy': bad }), (e: unknown) => e instanceof SluiceError && e.code === ErrorCode.INVALID_CONFIG, bad);
  }
  assert.throws(() => parseLogConfig({ 'delete.retention.ms': '-1' }), (e: unknown) => e instanceof SluiceError && e.code === ErrorCode.INVALID_CONFIG);
  const custom = parseLogConfig({ 'cleanup.policy': 'delete,compact', 'delete.retention.ms': '5', 'min.compaction.lag.ms': '7' });
  const strings = topicConfigToStrings(custom);
  assert.equal(strings['cleanup.policy'], 'compact,delete');
  assert.equal(strings['delete.retention.ms'], '5');
  assert.equal(strings['min.compaction.lag.ms'], '7');
  assert.deepEqual(parseLogConfig(strings), custom);
});

test('keys overwritten many times: only the latest per key survives, offsets unchanged, gaps skipped, active segment untouched', async () => {
  const t = tempDir();
  try {
    const log = openLog(t.dir);
    const written = writeOverwrites(log, 80, 5);
    await log.flush();
    const bases = segmentBases(t.dir);
    assert.ok(bases.length >= 4, `${bases.length} segments`);
    const activeBase = bases[bases.length - 1]!;
    const activeBytes = fs.readFileSync(segmentFile(t.dir, activeBase));
    const sizeBefore = log.sizeBytes;
    const before = await readAll(log);
    assert.deepEqual(before.records, written);

    const result = await log.compact(T0);
    const expected = expectedAfter(written, activeBase);
    assert.equal(result.recordsRemoved, written.length - expected.length);
    assert.ok(result.recordsRemoved > 100, `${result.recordsRemoved} removed`);
    assert.ok(result.bytesAfter < result.bytesBefore);
    assert.equal(log.sizeBytes, sizeBefore - (result.bytesBefore - result.bytesAfter));
    assert.equal(log.logStartOffset, 0, 'compaction never moves the log start');
    assert.equal(log.logEndOffset, written.length);

    const after = await readAll(log);
    assert.deepEqual(after.records, expected, 'survivors with their original offsets, values and timestamps');
    assert.deepEqual(await readAll(log, 0, 1).then((r) => r.records), expected, 'one batch per read reaches the end too');
    // Every key's latest value is what a reader sees last.
    const lastValue = new Map<string, string | null>();
    for (const r of after.records) lastValue.set(r.key!, r.value);
    for (let k = 0; k < 5; k++) assert.equal(lastValue.get(`k${k}`), [...written].reverse().find((r) => r.key === `k${k}`)!.value);
    assert.deepEqual(fs.readFileSync(segmentFile(t.dir, activeBase)), activeBytes, 'active segment byte for byte');

    // Reads from any offset, removed ones included, start at the next survivor.
    for (let o = 0; o < log.logEndOffset; o++) {
      const r = await log.read(o, 1);
      assert.ok(r.records.length > 0, `read(${o})`);
      const first = decodeRecords(r.records, 0).map(seen).find((x) => x.offset >= o);
      assert.deepEqual(first, expected.find((x) => x.offset >= o), `read(${o})`);
    }

    // A second run finds nothing to do.
    const again = await log.compact(T0);
    assert.equal(again.recordsRemoved, 0);
    assert.equal(again.segmentsRewritten, 0);
    await log.close();
  } finally {
    t.cleanup();
  }
});

test('a batch that loses some records keeps its header, validates as stored and decodes to the survivors', async () => {
  const t = tempDir();
  try {
    const log = openLog(t.dir);
    // The record with the largest timestamp (offset 1) is overwritten below, so maxTimestamp must shrink.
    const first = keyed([
      { key: 'a', value: 'a0', timestamp: T0 },
      { key: 'b', value: 'b0', timestamp: T0 + 50 },
      { key: 'c', value: 'c0', timestamp: T0 + 5 },
      { key: 'd', value: 'd0', timestamp: T0 + 3 },
    ]);
    log.append(first, T0);
    log.append(keyed([{ key: 'b', value: 'b1' }, { key: 'd', value: 'd1' }]), T0);
    // Fill until the first two batches are in a sealed segment.
    for (let i = 0; i < 20; i++) log.append(keyed([{ key: `f${i}`, value: 'x'.repeat(100) }]), T0);
    await log.flush();
    const result = await log.compact(T0);
    assert.equal(result.recordsRemoved, 2);
    assert.equal(result.batchesRemoved, 0);

    const r = await log.read(0, 1);
    const b = r.records;
    const info = newBatchInfo();
    assert.equal(validateBatch(b, 0, b.length, info, true), ErrorCode.NONE, info.problem);
    assert.notEqual(validateBatch(b, 0, b.length, newBatchInfo(), false), ErrorCode.NONE, 'offset deltas are no longer 0..n-1');
    assert.equal(info.recordCount, 2);
    assert.equal(readInt64(b, Off.baseOffset), 0);
    assert.equal(readInt32(b, Off.lastOffsetDelta), 3, 'lastOffsetDelta kept');
    assert.equal(readInt64(b, Off.baseTimestamp), T0);
    assert.equal(readInt64(b, Off.maxTimestamp), T0 + 5, 'maxTimestamp of the survivors');
    assert.deepEqual(b.subarray(Off.producerId, Off.recordCount), Buffer.from(first.subarray(Off.producerId, Off.recordCount)), 'producer fields kept');
    assert.equal(b[Off.attributes + 1], first[Off.attributes + 1]);
    assert.deepEqual(
      decodeRecords(b, 0).map(seen),
      [
        { offset: 0, key: 'a', value: 'a0', timestamp: T0 },
        { offset: 2, key: 'c', value: 'c0', timestamp: T0 + 5 },
      ],
    );
    // The next batch starts at offset 4 and is untouched; reading offset 1 gives the first batch (it covers 0..3).
    assert.equal(lastOffsetAt(b, 0), 3);
    const at1 = await log.read(1, 1);
    assert.deepEqual(at1.records, b);
    await log.close();
  } finally {
    t.cleanup();
  }
});

test('tombstones survive delete.retention.ms after their timestamp, then go; whole batches and segments disappear', async () => {
  const t = tempDir();
  try {
    const log = openLog(t.dir, { 'delete.retention.ms': '10000' });
    log.append(keyed([{ key: 'gone', value: 'old' }]), T0);
    log.append(keyed([{ key: 'keep', value: 'v' }]), T0);
    log.append(keyed([{ key: 'gone', value: null, timestamp: T0 + 100 }]), T0);
    for (let i = 0; i < 30; i++) log.append(keyed([{ key: `f${i % 10}`, value: 'x'.repeat(100) }], T0 + 200), T0);
    await log.flush();
    const segmentsBefore = log.segmentCount;

    const early = await log.compact(T0 + 5000);
    assert.ok(early.recordsRemoved >= 1);
    assert.equal(early.nextDueMs, T0 + 100 + 10000, 'the tombstone is the next deadline');
    let records = (await readAll(log)).records;
    assert.deepEqual(
      records.filter((r) => r.key === 'gone'),
      [{ offset: 2, key: 'gone', value: null, timestamp: T0 + 100 }],
      'the value under the tombstone is gone, the tombstone stays',
    );
    assert.ok(log.segmentCount < segmentsBefore, 'segments left empty are removed');

    const noop = await log.compact(T0 + 10099);
    assert.equal(noop.recordsRemoved, 0, 'not yet');
    const late = await log.compact(T0 + 10100);
    assert.equal(late.recordsRemoved, 1);
    records = (await readAll(log)).records;
    assert.deepEqual(records.filter((r) => r.key === 'gone'), []);
    assert.deepEqual(records[0], { offset: 1, key: 'keep', value: 'v', timestamp: T0 });
    assert.equal(log.logStartOffset, 0);
    const r0 = await log.read(0, 1);
    assert.equal(decodeRecords(r0.records, 0)[0]!.offset, 1, 'offset 0 was removed: the read starts at the next survivor');
    await log.close();
  } finally {
    t.cleanup();
  }
});

test('a compacted topic refuses a record without a key; a delete topic takes it', async () => {
  const t = tempDir();
  try {
    const log = openLog(path.join(t.dir, 'c'));
    log.append(keyed([{ key: 'a', value: '1' }]));
    const bad = keyed([{ key: 'a', value: '2' }, { key: null, value: '3' }]);
    assert.throws(
      () => log.append(bad),
      (e: unknown) => e instanceof SluiceError && e.code === ErrorCode.CORRUPT_MESSAGE && /compacted topics need a key on every record/.test(e.message),
    );
    assert.equal(log.logEndOffset, 1, 'nothing appended');
    assert.equal(firstKeylessOffset(bad), 2);
    assert.equal(firstKeylessOffset(keyed([{ key: 'x', value: null }])), -1, 'a tombstone has a key');
    await log.close();
    const plain = PartitionLog.open(path.join(t.dir, 'd'), config(), { cleanShutdown: true, logger: recordingLogger() });
    plain.append(keyed([{ key: null, value: '3' }]));
    assert.equal(plain.logEndOffset, 1);
    assert.equal((await plain.compact(T0)).recordsRemoved, 0, 'compact is a no-op for delete topics');
    await plain.close();
  } finally {
    t.cleanup();
  }
});

test('clean and unclean restarts after compaction serve the same data', async () => {
  const t = tempDir();
  try {
    let log = openLog(t.dir);
    const written = writeOverwrites(log, 60, 4);
    await log.flush();
    const result = await log.compact(T0);
    assert.ok(result.recordsRemoved > 0);
    const expected = (await readAll(log)).bytes;
    const end = log.logEndOffset;
    await log.close();

    log = openLog(t.dir);
    assert.deepEqual((await readAll(log)).bytes, expected, 'clean restart');
    assert.equal(log.logEndOffset, end);
    // Crash: no close, then recovery of the active segment (and of any segment without indexes).
    await log.flush();
    const sealed = segmentBases(t.dir).slice(0, -1);
    assert.ok(sealed.length > 0);
    for (const base of sealed) fs.rmSync(segmentFile(t.dir, base, '.index'));
    const crashed = openLog(t.dir, {}, false);
    assert.deepEqual((await readAll(crashed)).bytes, expected, 'unclean restart');
    assert.equal(crashed.logEndOffset, end);
    assert.equal(crashed.logStartOffset, 0);
    // And it keeps working: appends continue at the same offsets, compaction runs again.
    const more = crashed.append(keyed([{ key: 'k0', value: 'last' }]), T0);
    assert.equal(more.baseOffset, written.length);
    await crashed.close();
    await log.close();
  } finally {
    t.cleanup();
  }
});

test('a leftover .cleaned file (crash mid-compaction) is removed at open and the data is intact', async () => {
  const t = tempDir();
  try {
    let log = openLog(t.dir);
    writeOverwrites(log, 40, 4);
    const before = (await readAll(log)).bytes;
    await log.close();
    const base = segmentBases(t.dir)[0]!;
    // A half-written replacement, as a crash before the rename leaves it.
    const leftover = segmentFile(t.dir, base, '.log' + CLEANED_SUFFIX);
    fs.writeFileSync(leftover, Buffer.from('half a batch'));
    for (const cleanShutdown of [true, false]) {
      if (!cleanShutdown) fs.writeFileSync(leftover, Buffer.from('again'));
      log = openLog(t.dir, {}, cleanShutdown);
      assert.ok(!fs.existsSync(leftover), '.cleaned removed');
      assert.deepEqual((await readAll(log)).bytes, before);
      await log.close();
    }
    // A crash after the rename but before the indexes were written: no index, so the segment is scanned.
    log = openLog(t.dir);
    await log.compact(T0);
    const compacted = (await readAll(log)).bytes;
    await log.close();
    fs.rmSync(segmentFile(t.dir, base, '.index'));
    fs.rmSync(segmentFile(t.dir, base, '.timeindex'));
    log = openLog(t.dir);
    assert.deepEqual((await readAll(log)).bytes, compacted);
    await log.close();
  } finally {
    t.cleanup();
  }
});

test('reads in flight while compaction swaps segments all succeed with valid batches', async () => {
  const t = tempDir();
  try {
    const log = openLog(t.dir);
    const written = writeOverwrites(log, 120, 6);
    await log.flush();
    const valid = new Set(written.map((r) => JSON.stringify(r)));
    const reads: Array<Promise<{ records: Seen[] }>> = [];
    const compaction = log.compact(T0);
    for (let o = 0; o < log.logEndOffset; o += 7) reads.push(readAll(log, o, 200));
    const results = await Promise.all(reads);
    assert.ok((await compaction).recordsRemoved > 0);
    for (const r of results) {
      assert.ok(r.records.length > 0);
      for (const rec of r.records) assert.ok(valid.has(JSON.stringify(rec)), 'every record read is one that was written');
      // Offsets strictly increase within a reader's view, whichever side of the swap it read.
      for (let i = 1; i < r.records.length; i++) assert.ok(r.records[i]!.offset > r.records[i - 1]!.offset);
    }
    await log.close();
  } finally {
    t.cleanup();
  }
});

test('min.compaction.lag.ms holds young segments back; the byte bound splits the work over runs', async () => {
  const t = tempDir();
  try {
    const log = openLog(t.dir, { 'min.compaction.lag.ms': '60000' });
    const written = writeOverwrites(log, 60, 3);
    await log.flush();
    const newestMs = Math.max(...written.map((r) => r.timestamp));
    const young = await log.compact(newestMs);
    assert.equal(young.recordsRemoved, 0);
    assert.ok(young.nextDueMs <= newestMs + 60000);
    log.setConfig(compactConfig());
    const first = await log.compact(T0, { maxBytesPerRun: 1 });
    assert.equal(first.segmentsRewritten + first.segmentsDeleted, 1, 'one segment per run at least');
    assert.equal(first.complete, false);
    let runs = 1;
    for (let r = await log.compact(T0, { maxBytesPerRun: 1 }); r.segmentsRewritten + r.segmentsDeleted > 0; r = await log.compact(T0, { maxBytesPerRun: 1 })) runs++;
    assert.ok(runs > 1);
    assert.deepEqual((await readAll(log)).records, expectedAfter(written, segmentBases(t.dir).at(-1)!));
    await log.close();
  } finally {
    t.cleanup();
  }
});

test('retention applies to compact,delete and not to compact', async () => {
  const t = tempDir();
  try {
    for (const policy of ['compact', 'compact,delete']) {
      const log = openLog(path.join(t.dir, policy.replace(',', '_')), { 'cleanup.policy': policy, 'retention.ms': '1000' });
      writeOverwrites(log, 30, 50);
      await log.flush();
      const deleted = log.applyRetention(T0 + 1_000_000);
      assert.equal(deleted > 0, policy === 'compact,delete', policy);
      await log.close();
    }
  } finally {
    t.cleanup();
  }
});

test('LogManager compacts compacted partitions only, on demand and on its timer', async () => {
  const t = tempDir();
  try {
    const mgr = new LogManager(t.dir, { logger: recordingLogger(), cleanerIntervalMs: 20 });
    const c = mgr.createPartition('__consumer_offsets', 0, compactConfig());
    const d = mgr.createPartition('plain', 0, config({ 'segment.bytes': '1024' }));
    writeOverwrites(c, 60, 3);
    for (let i = 0; i < 30; i++) d.append(batch(2, T0, 60));
    await c.flush();
    await d.flush();
    const dBytes = d.sizeBytes;
    const total = await mgr.runCompaction(Date.now());
    assert.ok(total.recordsRemoved > 0);
    assert.equal(d.sizeBytes, dBytes);
    // The timer runs it too: more overwrites, then wait for a pass to pick them up.
    writeOverwrites(c, 60, 3);
    await c.flush();
    const sizeBefore = c.sizeBytes;
    mgr.start();
    const deadline = Date.now() + 5000;
    while (c.sizeBytes >= sizeBefore && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.ok(c.sizeBytes < sizeBefore, 'the scheduled pass compacted');
    await mgr.close();
  } finally {
    t.cleanup();
  }
});
