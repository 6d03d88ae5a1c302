// The per-segment tag index (SPEC §7.8) and the filtered read path (SPEC §6.7): built on leader
// and follower appends, persisted when a segment is sealed, loaded or rebuilt (missing,
// damaged, after a crash), cut by truncation; filtered reads return exactly the matching stored
// batches plus transaction markers, never other control batches, and say where to continue.
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ATTR_CONTROL, batchSizeAt, baseOffsetAt, buildBatch, buildControlBatch, isControlAt, lastOffsetAt, resealBatch, writeInt64, type RecordHeader } from '../../../protocol/record-batch.ts';
import { TagExpression } from '../../../protocol/tag-expression.ts';
import { tagsHeader } from '../../../protocol/tags.ts';
import { PartitionLog } from '../../../server/log/partition-log.ts';
import { TAG_INDEX_SUFFIX, TagIndex, TAG_SET_OTHER_CONTROL, TAG_SET_TXN_MARKER } from '../../../server/log/tag-index.ts';
import { config, pbatch, readRaw, recordingLogger, tempDir } from './helpers.ts';

const enc = new TextEncoder();

/** A batch of `count` records tagged `tags` (none: untagged), values `name-i`. */
function tagged(tags: string[], count = 2, name = tags.join('+') || 'untagged'): Buffer {
  const h = tagsHeader(tags);
  const headers: RecordHeader[] = h ? [{ key: 'other', value: enc.encode('x') }, h] : [];
  return Buffer.from(buildBatch(Array.from({ length: count }, (_, i) => ({ key: null, value: enc.encode(`${name}-${i}`.padEnd(40, '.')), headers, timestamp: 1_000_000 + i }))));
}

function openLog(dir: string, overrides: Record<string, string> = {}, cleanShutdown = true): PartitionLog {
  return PartitionLog.open(dir, config({ 'segment.bytes': '2000', 'index.interval.bytes': '300', ...overrides }), { cleanShutdown, logger: recordingLogger() });
}

/** Batches of a record set as [baseOffset, first value] (control batches as [baseOffset, 'control']). */
function batchesOf(records: Buffer): Array<[number, string]> {
  const out: Array<[number, string]> = [];
  for (let p = 0; p < records.length; p += batchSizeAt(records, p)) {
    if (isControlAt(records, p)) out.push([baseOffsetAt(records, p), 'control']);
    else out.push([baseOffsetAt(records, p), firstValue(records, p)]);
  }
  return out;
}

function firstValue(b: Buffer, p: number): string {
  // The test values are ASCII 'name-i....'; find the name in the first record.
  const s = b.subarray(p + 61, p + batchSizeAt(b, p)).toString('latin1');
  return /([a-z:.+]+)-0/.exec(s)?.[1] ?? '?';
}

/** Every matching batch, fetch after fetch following nextFetchOffset, as [baseOffset, name]. */
async function drain(log: PartitionLog, expr: string, opts: { maxBytes?: number; scanBatchesMax?: number; from?: number } = {}): Promise<{ batches: Array<[number, string]>; bytes: Buffer; next: number; fetches: number }> {
  const filter = { expression: TagExpression.parse(expr), scanBatchesMax: opts.scanBatchesMax ?? 100_000 };
  let offset = opts.from ?? log.logStartOffset;
  const parts: Buffer[] = [];
  let fetches = 0;
  for (;;) {
    const r = await log.read(offset, opts.maxBytes ?? 1 << 20, { filter });
    fetches++;
    assert.ok(r.nextFetchOffset! >= offset, 'nextFetchOffset never goes back');
    if (r.records.length > 0) {
      parts.push(r.records);
      let last = -1;
      for (let p = 0; p < r.records.length; p += batchSizeAt(r.records, p)) last = lastOffsetAt(r.records, p);
      assert.equal(r.nextFetchOffset! >= last + 1, true);
    }
    if (r.nextFetchOffset === offset && r.records.length === 0) break;
    offset = r.nextFetchOffset!;
    assert.ok(fetches < 10_000);
  }
  const bytes = Buffer.concat(parts);
  return { batches: batchesOf(bytes), bytes, next: offset, fetches };
}

/** The reference answer: every stored batch whose tags match (decoded the slow way), and txn markers. */
async function reference(log: PartitionLog, expr: string): Promise<Array<[number, string]>> {
  const e = TagExpression.parse(expr);
  const all = await readRaw(log);
  const out: Array<[number, string]> = [];
  for (const [base, name] of batchesOf(all)) {
    if (name === 'control') { out.push([base, name]); continue; }
    const tags = name === 'untagged' ? [] : name.split('+');
    if (e.matches(new Set(tags))) out.push([base, name]);
  }
  return out;
}

/** A leader log with tagged, untagged and transactional batches and markers over several segments. */
async function populate(log: PartitionLog): Promise<void> {
  const sets = [['a'], ['b'], [], ['a', 'c'], ['c'], [], [], ['b', 'c']];
  for (let i = 0; i < 40; i++) log.append(tagged(sets[i % sets.length]!));
  log.append(pbatch(7, 0, 0, 1, { transactional: true }));
  log.appendControl({ producerId: 7, producerEpoch: 0, committed: false, coordinatorEpoch: 0 });
  for (let i = 0; i < 8; i++) log.append(tagged(sets[i]!));
}

test('filtered reads return exactly the matching stored batches and txn markers, following nextFetchOffset to the end', async () => {
  const t = tempDir();
  try {
    const log = openLog(t.dir);
    await populate(log);
    assert.ok(log.segmentCount > 3, `${log.segmentCount} segments`);
    for (const expr of ['a', 'b || c', 'a && c', '!a', '!a && !b && !c', 'zzz']) {
      const got = await drain(log, expr);
      assert.deepEqual(got.batches, await reference(log, expr), expr);
      assert.equal(got.next, log.logEndOffset, `${expr}: skipped data is consumed to the end`);
    }
    // Byte for byte what is stored.
    const raw = await readRaw(log);
    const a = await drain(log, 'a');
    for (let p = 0; p < a.bytes.length; p += batchSizeAt(a.bytes, p)) {
      assert.ok(raw.includes(a.bytes.subarray(p, p + batchSizeAt(a.bytes, p))));
    }
    await log.close();
  } finally {
    t.cleanup();
  }
});

test('budget and scan bound: the first batch always, then what fits; the scan stops at scanBatchesMax and says where', async () => {
  const t = tempDir();
  try {
    const log = openLog(t.dir, { 'segment.bytes': '100000' });
    await populate(log);
    const small = await drain(log, 'a', { maxBytes: 1 });
    assert.deepEqual(small.batches, await reference(log, 'a'));
    const first = await log.read(0, 1, { filter: { expression: TagExpression.parse('c'), scanBatchesMax: 100 } });
    assert.equal(batchesOf(first.records).length, 1, 'one batch, larger than maxBytes');
    const bounded = await log.read(0, 1 << 20, { filter: { expression: TagExpression.parse('zzz'), scanBatchesMax: 3 } });
    assert.equal(bounded.records.length, 0);
    assert.equal(bounded.scanLimited, true);
    assert.ok(bounded.nextFetchOffset! > 0 && bounded.nextFetchOffset! < log.logEndOffset, `${bounded.nextFetchOffset}`);
    const paged = await drain(log, 'b', { scanBatchesMax: 2 });
    assert.deepEqual(paged.batches, await reference(log, 'b'));
    await log.close();
  } finally {
    t.cleanup();
  }
});

test('a filtered read stops at the high watermark: nothing at or past it is returned or skipped', async () => {
  const t = tempDir();
  try {
    const log = openLog(t.dir);
    await populate(log);
    const maxOffset = 30;
    const r = await log.read(0, 1 << 20, { maxOffset, filter: { expression: TagExpression.parse('!zzz'), scanBatchesMax: 100_000 } });
    assert.ok(r.nextFetchOffset! <= maxOffset);
    for (const [base] of batchesOf(r.records)) assert.ok(base < maxOffset);
    const none = await log.read(0, 1 << 20, { maxOffset, filter: { expression: TagExpression.parse('zzz'), scanBatchesMax: 100_000 } });
    assert.equal(none.nextFetchOffset, maxOffset);
    await log.close();
  } finally {
    t.cleanup();
  }
});

test('the index is persisted with sealed segments, loaded lazily, rebuilt when missing or damaged, and gives the same answers', async () => {
  const t = tempDir();
  try {
    let log = openLog(t.dir);
    await populate(log);
    const want = await drain(log, 'b || !c');
    await log.close();
    const tagFiles = () => fs.readdirSync(t.dir).filter((n) => n.endsWith(TAG_INDEX_SUFFIX)).sort();
    const logFiles = fs.readdirSync(t.dir).filter((n) => n.endsWith('.log')).sort();
    assert.equal(tagFiles().length, logFiles.length, 'one .tags per segment after a clean close');
    // Damage one, remove another: both are rebuilt from the .log.
    const [first, second] = tagFiles();
    const p1 = path.join(t.dir, first!);
    const bytes = fs.readFileSync(p1);
    bytes[bytes.length - 1] ^= 0xff;
    fs.writeFileSync(p1, bytes);
    fs.unlinkSync(path.join(t.dir, second!));
    assert.equal(TagIndex.load(p1, 0, 1 << 20).index, null, 'a damaged file is refused');
    log = openLog(t.dir);
    assert.deepEqual((await drain(log, 'b || !c')).batches, want.batches);
    await log.close();
    assert.equal(tagFiles().length, logFiles.length);
    // An untagged topic: sealed segments have an index file with no entries.
    const u = tempDir();
    try {
      const plain = openLog(u.dir);
      for (let i = 0; i < 60; i++) plain.append(tagged([]));
      await plain.close();
      const files = fs.readdirSync(u.dir).filter((n) => n.endsWith(TAG_INDEX_SUFFIX));
      assert.ok(files.length > 1);
      for (const f of files) assert.equal(TagIndex.load(path.join(u.dir, f), 0, 1 << 30).index!.entryCount, 0);
    } finally {
      u.cleanup();
    }
  } finally {
    t.cleanup();
  }
});

test('after a crash the active segment\'s index is rebuilt; truncation cuts it; a follower builds its own', async () => {
  const t = tempDir();
  const f = tempDir();
  try {
    let log = openLog(t.dir);
    await populate(log);
    await log.flush();
    const want = await drain(log, 'a || control');
    // No close: as after kill -9, the active segment has no index files.
    log = openLog(t.dir, {}, false);
    assert.deepEqual((await drain(log, 'a || control')).batches, want.batches);
    // Truncation to the middle of the active segment drops the cut batches' entries.
    const cutAt = log.logEndOffset - 6;
    await log.truncateTo(cutAt);
    const after = await drain(log, 'a || b || c');
    assert.ok(after.batches.every(([base]) => base < cutAt));
    assert.deepEqual(after.batches, await reference(log, 'a || b || c'));
    log.append(tagged(['a'], 1, 'late'));
    assert.deepEqual((await drain(log, 'a', { from: cutAt })).batches.map(([, n]) => n), ['late']);
    // A follower appending the leader's bytes filters like the leader.
    const follower = openLog(f.dir);
    follower.appendAsFollower(await readRaw(log));
    for (const expr of ['a', '!b', 'c && !a']) assert.deepEqual((await drain(follower, expr)).batches, (await drain(log, expr)).batches, expr);
    await follower.close();
    await log.close();
  } finally {
    t.cleanup();
    f.cleanup();
  }
});

test('control batches: transaction markers are listed to be returned, other control types never', () => {
  const idx = new TagIndex('/nonexistent', 0);
  const abort = buildControlBatch({ producerId: 1, producerEpoch: 0, committed: false, coordinatorEpoch: 0 }, 1);
  const other = Buffer.from(buildControlBatch({ producerId: 1, producerEpoch: 0, committed: true, coordinatorEpoch: 0 }, 1));
  // Control type 2 (as delayed delivery adds): key int16 version, int16 type at the record's key.
  const keyAt = other.indexOf(Buffer.from([0, 0, 0, 1]), 61);
  other[keyAt + 3] = 2;
  resealBatch(other);
  assert.ok((other[22]! & ATTR_CONTROL) !== 0);
  const plain = tagged([]);
  writeInt64(other, 0, 1);
  const b2 = Buffer.from(abort);
  writeInt64(plain, 0, 2);
  const withTags = tagged(['x']);
  writeInt64(withTags, 0, 10);
  idx.onBatch(b2, 0, b2.length, 0);
  idx.onBatch(other, 0, other.length, 100);
  idx.onBatch(plain, 0, plain.length, 200);
  idx.onBatch(withTags, 0, withTags.length, 400);
  assert.equal(idx.entryCount, 3, 'the untagged data batch is not listed');
  assert.deepEqual([idx.tagSetId(0), idx.tagSetId(1), idx.tagSetId(2)], [TAG_SET_TXN_MARKER, TAG_SET_OTHER_CONTROL, 0]);
  const again = TagIndex.decode('/nonexistent', 0, idx.encode(), 1 << 20);
  assert.deepEqual(again.index!.tagSets, ['x']);
  assert.equal(again.index!.lastOffsetOf(2), 11);
});

test('fuzz: a damaged or random .tags file is refused or read consistently, never a crash', async () => {
  const fc = (await import('fast-check')).default;
  const idx = new TagIndex('/nonexistent', 100);
  const sets = [['a'], ['b', 'c'], ['x:y']];
  let position = 0;
  for (let i = 0; i < 12; i++) {
    const b = tagged(sets[i % 3]!, 1);
    writeInt64(b, 0, 100 + i * 2);
    idx.onBatch(b, 0, b.length, position);
    position += b.length + 50;
  }
  const good = idx.encode();
  const logSize = position;
  const check = (bytes: Uint8Array) => {
    const r = TagIndex.decode('/nonexistent', 100, bytes, logSize);
    if (r.index) {
      // Whatever is accepted satisfies the documented invariants.
      let prevEnd = 0;
      let prevLast = 99;
      for (let i = 0; i < r.index.entryCount; i++) {
        assert.ok(r.index.position(i) >= prevEnd && r.index.position(i) + r.index.sizeBytes(i) <= logSize);
        assert.ok(r.index.baseOffsetOf(i) > prevLast && r.index.lastOffsetOf(i) >= r.index.baseOffsetOf(i));
        assert.ok(r.index.tagSetId(i) >= -2 && r.index.tagSetId(i) < r.index.tagSets.length);
        prevEnd = r.index.position(i) + r.index.sizeBytes(i);
        prevLast = r.index.lastOffsetOf(i);
      }
    } else {
      assert.ok(r.problem.length > 0);
    }
  };
  assert.equal(TagIndex.decode('/nonexistent', 100, good, logSize).index!.entryCount, 12);
  fc.assert(fc.property(fc.array(fc.record({ at: fc.nat(good.length - 1), xor: fc.integer({ min: 1, max: 255 }) }), { minLength: 1, maxLength: 4 }), fc.boolean(), (flips, cut) => {
    const b = Uint8Array.from(good);
    for (const f of flips) b[f.at]! ^= f.xor;
    check(cut ? b.subarray(0, flips[0]!.at) : b);
  }), { numRuns: 2000 });
  fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (b) => check(b)), { numRuns: 2000 });
  // Mutations behind a recomputed CRC: only the structural checks stand between them and use.
  const { crc32c } = await import('../../../protocol/crc32c.ts');
  const { writeInt32 } = await import('../../../protocol/record-batch.ts');
  fc.assert(fc.property(fc.nat(good.length - 9), fc.integer({ min: 1, max: 255 }), (at, xor) => {
    const b = Uint8Array.from(good);
    b[8 + at]! ^= xor;
    writeInt32(b, 4, crc32c(b, 8, b.length));
    check(b);
  }), { numRuns: 2000 });
});

test('the sealed tag indexes bound drops the least recently used beyond its bytes, never the one in use, and a dropped index loads again', async () => {
  const { SealedTagIndexes } = await import('../../../server/log/tag-index.ts');
  const dropped: string[] = [];
  const holder = (name: string) => ({ dropTagIndex: () => void dropped.push(name) });
  const [a, b, c] = [holder('a'), holder('b'), holder('c')];
  const bound = new SealedTagIndexes(100);
  bound.touch(a, 40);
  bound.touch(b, 40);
  bound.touch(a, 40); // a used again: b is now the oldest
  bound.touch(c, 40);
  assert.deepEqual(dropped, ['b']);
  assert.equal(bound.bytes, 80);
  bound.touch(c, 500); // larger than the bound alone: the others go, c stays
  assert.deepEqual(dropped, ['b', 'a']);
  assert.equal(bound.count, 1);
  bound.forget(c);
  assert.equal(bound.bytes, 0);
  // A real segment: dropped after it was sealed and persisted, it answers the same.
  const t = tempDir();
  try {
    const log = openLog(t.dir);
    await populate(log);
    await log.flush();
    const want = await drain(log, 'a');
    const { sealedTagIndexes } = await import('../../../server/log/tag-index.ts');
    assert.ok(sealedTagIndexes.count > 0, 'sealed segments read by the filter are counted');
    const before = sealedTagIndexes.count;
    // Drop every counted index by touching one huge holder, then read again.
    const big = holder('big');
    sealedTagIndexes.touch(big, sealedTagIndexes.bytesMax + 1);
    sealedTagIndexes.forget(big);
    assert.ok(dropped.length >= 2 + 0 && sealedTagIndexes.count === 0, `dropped ${before}`);
    assert.deepEqual((await drain(log, 'a')).batches, want.batches);
    await log.close();
  } finally {
    t.cleanup();
  }
});

test('a filtered read reads only the matching batches from disk: non-matching ones are skipped by the index', async () => {
  const { realIo, setLogIo } = await import('../../../server/log/log-io.ts');
  const t = tempDir();
  try {
    const log = openLog(t.dir, { 'segment.bytes': '1000000' });
    // 200 batches with 50 tags; only one tag is wanted.
    for (let i = 0; i < 200; i++) log.append(tagged([`t${i % 50}`], 5, `t${i % 50}`));
    await log.flush();
    // Seal the segment so its index is loaded by the read path, then count bytes read.
    let readBytes = 0;
    const restore = setLogIo({ ...realIo, read: async (fd, buf, offset, length, position) => { const n = await realIo.read(fd, buf, offset, length, position); readBytes += n; return n; } });
    let got: Awaited<ReturnType<typeof drain>>;
    try {
      got = await drain(log, 't7');
    } finally {
      restore();
    }
    assert.equal(got.batches.length, 4);
    assert.equal(readBytes, got.bytes.length, `read ${readBytes} bytes from disk for ${got.bytes.length} bytes of matching batches`);
    const all = await readRaw(log);
    assert.ok(readBytes * 40 < all.length, 'about 1/50 of the log');
    await log.close();
  } finally {
    t.cleanup();
  }
});
