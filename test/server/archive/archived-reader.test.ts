// Reading archived segments back (SPEC §7.10, reading): a real partition log's sealed segments
// put into a LocalDirStore read exactly like the local log at every offset (same whole-batch
// cut, maxBytes with the first batch whole, maxOffset), filtered reads return what the local
// filtered read returns, timestamp lookups agree, read_committed finds archived aborts, and a
// store that fails or hangs answers ARCHIVE_UNAVAILABLE within the read timeout.
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { buildBatch, type RecordHeader } from '../../../protocol/record-batch.ts';
import { ErrorCode, SluiceError } from '../../../protocol/errors.ts';
import { TagExpression } from '../../../protocol/tag-expression.ts';
import { tagsHeader } from '../../../protocol/tags.ts';
import { ArchiveReader } from '../../../server/archive/archived-reader.ts';
import { ArchiveStoreError, type ArchiveStore } from '../../../server/archive/archive-store.ts';
import { LocalDirStore } from '../../../server/archive/local-dir-store.ts';
import { filteredRecords } from '../../../server/log/filtered-reader.ts';
import { PartitionLog } from '../../../server/log/partition-log.ts';
import { config, pbatch, recordingLogger, tempDir } from '../log/helpers.ts';
import { archiveSealed, segmentBases } from './archive-fixture.ts';

const enc = new TextEncoder();

function openLog(dir: string): PartitionLog {
  return PartitionLog.open(dir, config({ 'segment.bytes': '3000', 'index.interval.bytes': '256' }), { cleanShutdown: true, logger: recordingLogger() });
}

/** Batches of varied sizes (1..6 records, values 10..400 bytes), some tagged, timestamps rising in steps. */
function fill(log: PartitionLog, batches: number, seed: number): void {
  let x = seed;
  const rnd = (n: number) => ((x = (x * 1103515245 + 12345) & 0x7fffffff) % n);
  const tagNames = ['red', 'blue', 'green'];
  for (let b = 0; b < batches; b++) {
    const count = 1 + rnd(6);
    const valueBytes = 10 + rnd(390);
    const t = rnd(4);
    const h = t < 3 ? tagsHeader([tagNames[t]!]) : null;
    const headers: RecordHeader[] = h ? [h] : [];
    const ts = 1_000_000 + b * 10;
    log.append(Buffer.from(buildBatch(Array.from({ length: count }, (_, i) => ({ key: null, value: enc.encode(`b${b}-${i}`.padEnd(valueBytes, '.')), headers, timestamp: ts + i })))), ts);
  }
}

interface Fixture {
  dir: string;
  log: PartitionLog;
  store: LocalDirStore;
  archive: Awaited<ReturnType<typeof archiveSealed>>;
  cleanup(): Promise<void>;
}

async function fixture(batches = 160, seed = 7): Promise<Fixture> {
  const t = tempDir();
  const dataDir = path.join(t.dir, 'log');
  const log0 = openLog(dataDir);
  fill(log0, batches, seed);
  // Local filtered reads persist some sealed segments' .tags (others get rebuilt from the archived .log).
  await log0.read(0, 100, { filter: { expression: TagExpression.parse('red'), scanBatchesMax: 3 } });
  await log0.close();
  // Every other sealed segment goes up without .tags (a segment sealed before tag indexes were
  // persisted): the reader rebuilds those from the archived .log.
  segmentBases(dataDir).slice(0, -1).forEach((base, i) => {
    if (i % 2 === 1) fs.rmSync(path.join(dataDir, `${String(base).padStart(20, '0')}.tags`), { force: true });
  });
  const store = new LocalDirStore(path.join(t.dir, 'archive'));
  const archive = await archiveSealed(dataDir, store);
  const log = openLog(dataDir);
  return { dir: dataDir, log, store, archive, cleanup: async () => { await log.close(); t.cleanup(); } };
}

test('an archived read equals the local read at every offset, for any maxBytes and maxOffset (fast-check)', async () => {
  const f = await fixture();
  try {
    assert.ok(f.archive.count >= 5, `only ${f.archive.count} archived segments`);
    const reader = new ArchiveReader(f.store, { cacheBytes: 64 * 1024, chunkBytes: 1000 });
    const end = f.archive.endOffset;
    // Every offset once, with a few budgets: the cut at whole batches is the same.
    for (let off = f.archive.startOffset; off < end; off++) {
      for (const maxBytes of [0, 1, 700, 5000]) {
        const local = await f.log.read(off, maxBytes, { maxOffset: Infinity });
        const archived = await reader.read(f.archive, off, maxBytes, Infinity);
        assert.deepEqual(archived.records, local.records, `offset ${off} maxBytes ${maxBytes}`);
        assert.equal(archived.pastArchive, false);
      }
    }
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: f.archive.startOffset, max: end - 1 }), fc.integer({ min: 0, max: 9000 }), fc.integer({ min: 0, max: end + 5 }), async (off, maxBytes, maxOffset) => {
        const local = await f.log.read(off, maxBytes, { maxOffset });
        const archived = await reader.read(f.archive, off, maxBytes, maxOffset);
        assert.deepEqual(archived.records, local.records);
      }),
      { numRuns: 300 },
    );
    // The cache stayed within its bound while serving all of that.
    assert.ok(reader.cache.heldBytes <= 64 * 1024);
    assert.ok(reader.cache.stats.hits > reader.cache.stats.misses, `hits ${reader.cache.stats.hits} misses ${reader.cache.stats.misses}`);
    assert.ok(reader.stats.bytesRead > 0);
  } finally {
    await f.cleanup();
  }
});

test('a read past the archive end says so (the caller continues in the local log), and offsets outside the archive are OFFSET_OUT_OF_RANGE', async () => {
  const f = await fixture(60);
  try {
    const reader = new ArchiveReader(f.store);
    const last = f.archive.all()[f.archive.count - 1]!;
    // The last archived batch read, then nothing more in the archive at its end.
    await assert.rejects(reader.read(f.archive, f.archive.endOffset, 1000, Infinity), (e: unknown) => e instanceof SluiceError && e.code === ErrorCode.OFFSET_OUT_OF_RANGE);
    const r = await reader.read(f.archive, last.lastOffset, 1000, Infinity);
    assert.ok(r.records.length > 0);
    // maxOffset inside the archive: empty, not past the archive.
    const cut = await reader.read(f.archive, last.baseOffset, 1000, last.baseOffset);
    assert.deepEqual(cut, { records: Buffer.alloc(0), pastArchive: false });
  } finally {
    await f.cleanup();
  }
});

test('a filtered read over the archive returns what the local filtered read returns (with and without archived .tags)', async () => {
  const f = await fixture();
  try {
    const tagsObjects = f.archive.all().filter((m) => m.files['.tags'] !== undefined).length;
    assert.ok(tagsObjects >= 1 && tagsObjects < f.archive.count, `${tagsObjects} of ${f.archive.count} segments have .tags: both paths must be covered`);
    const reader = new ArchiveReader(f.store, { chunkBytes: 512 });
    for (const expr of ['red', 'blue || green', '!red']) {
      const filter = { expression: TagExpression.parse(expr), scanBatchesMax: 50 };
      for (let off = 0; off < f.archive.endOffset; off += 7) {
        for (const maxBytes of [1, 2000]) {
          // The local read, stopped at the archive end (what the archive holds).
          const local = await f.log.read(off, maxBytes, { maxOffset: f.archive.endOffset, filter });
          const { state } = await reader.readFiltered(f.archive, off, maxBytes, f.archive.endOffset, filter);
          assert.deepEqual(filteredRecords(state), local.records, `${expr} at ${off} maxBytes ${maxBytes}`);
          assert.equal(state.next, local.nextFetchOffset, `${expr} at ${off}: nextFetchOffset`);
        }
      }
    }
  } finally {
    await f.cleanup();
  }
});

test('timestamp lookups in the archive agree with the local log', async () => {
  const f = await fixture(100);
  try {
    const reader = new ArchiveReader(f.store);
    const end = f.archive.endOffset;
    for (let ts = 999_990; ts <= 1_000_000 + 100 * 10; ts += 13) {
      const local = await f.log.offsetForTimestamp(ts);
      const archived = await reader.offsetForTimestamp(f.archive, ts, end);
      if (local && local.offset < end) assert.deepEqual(archived, local, `timestamp ${ts}`);
      else assert.equal(archived, null, `timestamp ${ts}`);
    }
  } finally {
    await f.cleanup();
  }
});

test('read_committed: aborts whose markers are archived are found in the archived .txnindex', async () => {
  const t = tempDir();
  const dataDir = path.join(t.dir, 'log');
  const log = openLog(dataDir);
  try {
    // Producer 7 writes a transaction over several segments, then aborts; producer 8 commits.
    for (let i = 0; i < 30; i++) {
      log.append(pbatch(7, 0, i * 3, 3, { transactional: true }), 1_000_000);
      log.append(Buffer.from(buildBatch([{ key: null, value: enc.encode('plain'.padEnd(200, '.')), timestamp: 1_000_000 }])), 1_000_000);
    }
    const abortAt = log.appendControl({ producerId: 7, producerEpoch: 0, committed: false, coordinatorEpoch: 0 }, 1_000_000);
    for (let i = 0; i < 40; i++) log.append(Buffer.from(buildBatch([{ key: null, value: enc.encode('after'.padEnd(300, '.')), timestamp: 1_000_000 }])), 1_000_000);
    await log.close();
    const store = new LocalDirStore(path.join(t.dir, 'archive'));
    const archive = await archiveSealed(dataDir, store);
    assert.ok(archive.endOffset > abortAt, 'the abort marker is archived');
    const withTxn = archive.all().filter((m) => m.files['.txnindex'] !== undefined);
    assert.equal(withTxn.length, 1);
    const reader = new ArchiveReader(store);
    const got = await reader.abortedTransactions(archive, 0, 10);
    assert.deepEqual(got.map((a) => [a.producerId, a.firstOffset, a.lastOffset]), [[7, 0, abortAt]]);
    // A read that starts after the marker sees no abort.
    assert.deepEqual(await reader.abortedTransactions(archive, abortAt + 1, abortAt + 5), []);
    // The local log (reopened) says the same for the same range.
    const again = openLog(dataDir);
    assert.deepEqual(again.abortedTransactions(0, 10).map((a) => [a.producerId, a.firstOffset, a.lastOffset]), [[7, 0, abortAt]]);
    await again.close();
  } finally {
    t.cleanup();
  }
});

/** A store whose reads fail or hang on demand, around a real LocalDirStore. */
class FlakyStore implements ArchiveStore {
  readonly kind = 'local' as const;
  mode: 'ok' | 'fail' | 'hang' = 'ok';
  gets = 0;
  constructor(private readonly inner: LocalDirStore) {}
  describe(): string {
    return this.inner.describe();
  }
  put(key: string, body: Uint8Array): Promise<void> {
    return this.inner.put(key, body);
  }
  putFile(key: string, filePath: string, sizeBytes: number): Promise<void> {
    return this.inner.putFile(key, filePath, sizeBytes);
  }
  private gate<T>(f: () => Promise<T>): Promise<T> {
    this.gets++;
    if (this.mode === 'fail') return Promise.reject(new ArchiveStoreError('connection refused', true));
    if (this.mode === 'hang') return new Promise(() => {});
    return f();
  }
  get(key: string): Promise<Uint8Array> {
    return this.gate(() => this.inner.get(key));
  }
  getRange(key: string, start: number, end: number): Promise<Uint8Array> {
    return this.gate(() => this.inner.getRange(key, start, end));
  }
  head(key: string) {
    return this.inner.head(key);
  }
  list(prefix: string) {
    return this.inner.list(prefix);
  }
  delete(key: string): Promise<void> {
    return this.inner.delete(key);
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

test('a store that fails or hangs answers ARCHIVE_UNAVAILABLE (retriable) within the read timeout; concurrent misses share one request', async () => {
  const f = await fixture(60);
  try {
    const flaky = new FlakyStore(f.store);
    const reader = new ArchiveReader(flaky, { readTimeoutMs: 300, chunkBytes: 100_000 });
    flaky.mode = 'fail';
    await assert.rejects(reader.read(f.archive, 0, 1000, Infinity), (e: unknown) => e instanceof SluiceError && e.code === ErrorCode.ARCHIVE_UNAVAILABLE && e.retriable);
    flaky.mode = 'hang';
    const t0 = Date.now();
    await assert.rejects(reader.read(f.archive, 0, 1000, Infinity), (e: unknown) => e instanceof SluiceError && e.code === ErrorCode.ARCHIVE_UNAVAILABLE && /longer than 300 ms/.test(e.message));
    const took = Date.now() - t0;
    assert.ok(took >= 250 && took < 5000, `answered after ${took} ms`);
    assert.equal(reader.stats.readFailures, 2);
    // Back up: the same reader reads, and ten concurrent reads of one segment cost one index and one chunk request.
    const fresh = new ArchiveReader(flaky, { chunkBytes: 100_000 });
    flaky.mode = 'ok';
    flaky.gets = 0;
    const rs = await Promise.all(Array.from({ length: 10 }, () => fresh.read(f.archive, 1, 500, Infinity)));
    const local = await f.log.read(1, 500, { maxOffset: Infinity });
    for (const r of rs) assert.deepEqual(r.records, local.records);
    // .index + .timeindex + one chunk of .log.
    assert.equal(flaky.gets, 3);
  } finally {
    await f.cleanup();
  }
});

test('segment bases: the fixture archives every sealed segment and no active one', async () => {
  const f = await fixture(60);
  try {
    const bases = segmentBases(f.dir);
    assert.equal(f.archive.count, bases.length - 1);
    assert.equal(f.archive.endOffset, bases[bases.length - 1]);
    assert.ok(fs.existsSync(f.store.describe()));
  } finally {
    await f.cleanup();
  }
});
