// Fetch and ListOffsets over the archive (SPEC §7.10, reading), through the real handlers on a
// real partition: every fetch the local log answered before its segments moved to the archive
// (plain at several budgets, filtered by tags, read_committed with an aborted transaction)
// answers byte for byte the same afterwards, from the archive and across into the local log;
// consumers are told the archive's start, followers the local start; below the archive start
// is OFFSET_OUT_OF_RANGE; a failing store is ARCHIVE_UNAVAILABLE on that partition only.
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { FetchPartitionResult, FetchRequest, FetchResponse } from '../../../protocol/apis/fetch.ts';
import type { ListOffsetsResponse } from '../../../protocol/apis/list-offsets.ts';
import { ErrorCode } from '../../../protocol/errors.ts';
import { buildBatch, type RecordHeader } from '../../../protocol/record-batch.ts';
import { tagsHeader } from '../../../protocol/tags.ts';
import { handleFetch } from '../../../server/api/fetch.ts';
import { handleListOffsets } from '../../../server/api/list-offsets.ts';
import { ArchiveReader } from '../../../server/archive/archived-reader.ts';
import { ArchiveStoreError } from '../../../server/archive/archive-store.ts';
import { LocalDirStore } from '../../../server/archive/local-dir-store.ts';
import type { ArchivedSegments } from '../../../server/archive/archived-segments.ts';
import { parseLogConfig } from '../../../server/log/log-config.ts';
import type { Reply } from '../../../server/network/reply.ts';
import type { Partition } from '../../../server/partition/partition.ts';
import { pbatch, tempDir } from '../log/helpers.ts';
import { FakeRegistry, fakeContext, leaderState, openPartition } from '../partition/helpers.ts';
import { archiveSealed } from './archive-fixture.ts';

const enc = new TextEncoder();
const LOG_CONFIG = { 'segment.bytes': '4000', 'index.interval.bytes': '256' };

function batchOf(b: number): Buffer {
  const tag = ['red', 'blue', null][b % 3];
  const h = tag ? tagsHeader([tag]) : null;
  const headers: RecordHeader[] = h ? [h] : [];
  const count = 1 + (b % 4);
  return Buffer.from(buildBatch(Array.from({ length: count }, (_, i) => ({ key: null, value: enc.encode(`m${b}-${i}`.padEnd(60 + ((b * 37) % 300), '.')), headers, timestamp: 2_000_000 + b * 10 + i }))));
}

/** Fills the partition: plain and tagged batches, and one aborted transaction spanning segments. */
function fill(p: Partition): void {
  for (let b = 0; b < 150; b++) {
    if (b === 20) p.appendAsLeader(pbatch(9, 0, 0, 2, { transactional: true, timestampMs: 2_000_000 + b * 10 }), 1);
    if (b === 50) p.appendAsLeader(pbatch(9, 0, 2, 2, { transactional: true, timestampMs: 2_000_000 + b * 10 }), 1);
    if (b === 60) p.appendTxnMarker({ producerId: 9, producerEpoch: 0, committed: false, coordinatorEpoch: 0 });
    p.appendAsLeader(batchOf(b), 1);
  }
}

type Ctx = Parameters<typeof handleFetch>[0];

async function fetch(ctx: Ctx, fetchOffset: number, over: Partial<FetchRequest> = {}, partitionMaxBytes = 1 << 20) {
  const req: FetchRequest = { maxWaitMs: 0, minBytes: 0, maxBytes: 1 << 20, topics: [{ topic: 't', partitions: [{ partition: 0, fetchOffset, partitionMaxBytes }] }], ...over };
  const reply = (await handleFetch(ctx, req)) as Reply;
  const result = (reply.control as FetchResponse).topics[0]!.partitions[0]! as FetchPartitionResult;
  return { result, records: Buffer.concat((reply.sections ?? []) as Buffer[]) };
}

async function listOffset(ctx: Ctx, timestamp: number): Promise<{ offset: number; timestamp: number; errorCode: number }> {
  const reply = (await handleListOffsets(ctx, { topics: [{ topic: 't', partitions: [{ partition: 0, timestamp }] }] })) as Reply;
  const r = (reply.control as ListOffsetsResponse).topics[0]!.partitions[0]!;
  return { offset: r.offset, timestamp: r.timestamp, errorCode: r.errorCode };
}

/** Every answer the test compares: plain fetches at budgets, filtered fetches, read_committed, timestamps. */
async function answers(ctx: Ctx, endOffset: number): Promise<unknown[]> {
  const out: unknown[] = [];
  for (let off = 0; off < endOffset; off += 3) {
    for (const maxBytes of [1, 900, 1 << 20]) {
      const r = await fetch(ctx, off, {}, maxBytes);
      out.push([off, maxBytes, r.result.errorCode, r.result.logStartOffset, r.records.toString('hex')]);
    }
    const f = await fetch(ctx, off, { tagExpression: 'red' }, 1500);
    out.push([off, 'red', f.result.errorCode, f.result.nextFetchOffset, f.records.toString('hex')]);
    const c = await fetch(ctx, off, { isolationLevel: 1 }, 2000);
    out.push([off, 'committed', c.result.errorCode, c.result.abortedTransactions, c.records.toString('hex')]);
  }
  for (let ts = 1_999_000; ts < 2_000_000 + 1600; ts += 97) out.push(['ts', ts, await listOffset(ctx, ts)]);
  out.push(['earliest', await listOffset(ctx, -2)]);
  return out;
}

interface Setup {
  p: Partition;
  ctx: Ctx;
  archive: ArchivedSegments;
  store: LocalDirStore;
  done(): Promise<void>;
}

/** A partition whose sealed segments are archived and then deleted locally by retention. */
async function setup(): Promise<Setup & { before: unknown[]; endOffset: number }> {
  const t = tempDir();
  let p = openPartition(t.dir, 't', 0, { state: leaderState(), logConfig: LOG_CONFIG });
  fill(p);
  const endOffset = p.log.logEndOffset;
  let registry = new FakeRegistry();
  registry.add('t', 1, [p]);
  let f = fakeContext(registry, [p]);
  const before = await answers(f.ctx, endOffset);
  await f.close();
  const store = new LocalDirStore(path.join(t.dir, 'archive'));
  const archive = await archiveSealed(path.join(t.dir, 't-0'), store);
  p = openPartition(t.dir, 't', 0, { state: leaderState(), logConfig: LOG_CONFIG });
  // Local retention keeps only the last ~6 KB: most of the log is in the archive only now.
  p.log.setConfig(parseLogConfig({ ...LOG_CONFIG, 'retention.ms': '-1', 'retention.bytes': '6000', 'flush.messages': '1000000000', 'flush.ms': '1000000000' }));
  assert.ok(p.log.applyRetention(Date.now()) > 5);
  assert.ok(p.log.logStartOffset > 100, `local start ${p.log.logStartOffset}`);
  assert.ok(archive.endOffset >= p.log.logStartOffset);
  registry = new FakeRegistry();
  registry.add('t', 1, [p]);
  f = fakeContext(registry, [p]);
  return { p, ctx: f.ctx, archive, store, before, endOffset, done: async () => { await f.close(); t.cleanup(); } };
}

test('every fetch and ListOffsets answer is the same before and after the segments moved to the archive', async () => {
  const s = await setup();
  try {
    // Without the archive, the old offsets are gone.
    const gone = await fetch(s.ctx, 0);
    assert.equal(gone.result.errorCode, ErrorCode.OFFSET_OUT_OF_RANGE);
    assert.equal(gone.result.logStartOffset, s.p.log.logStartOffset);
    s.p.archiveSource = { reader: new ArchiveReader(s.store, { chunkBytes: 2048, cacheBytes: 16 * 1024 }), archived: () => s.archive };
    // The comparison covers aborted transactions and filtered reads that return something.
    assert.ok(s.before.some((a) => Array.isArray(a) && a[1] === 'committed' && (a[3] as unknown[]).length > 0));
    assert.ok(s.before.some((a) => Array.isArray(a) && a[1] === 'red' && (a[4] as string).length > 0));
    const after = await answers(s.ctx, s.endOffset);
    assert.equal(after.length, s.before.length);
    for (let i = 0; i < after.length; i++) assert.deepEqual(after[i], s.before[i]);
    assert.ok(s.p.archiveSource.reader.stats.bytesRead > 0);
  } finally {
    await s.done();
  }
});

test('consumers are told the archive start, followers the local start; below the archive start is OFFSET_OUT_OF_RANGE', async () => {
  const s = await setup();
  try {
    s.p.archiveSource = { reader: new ArchiveReader(s.store), archived: () => s.archive };
    const localStart = s.p.log.logStartOffset;
    const c = await fetch(s.ctx, localStart);
    assert.deepEqual([c.result.errorCode, c.result.logStartOffset], [0, 0]);
    const follower = await fetch(s.ctx, 5, { replicaId: 1 });
    assert.deepEqual([follower.result.errorCode, follower.result.logStartOffset], [ErrorCode.OFFSET_OUT_OF_RANGE, localStart]);
    // Archive retention drops the first segments: the consumer start moves with it.
    const second = s.archive.all()[2]!.baseOffset;
    s.archive.dropBefore(second);
    const below = await fetch(s.ctx, second - 1);
    assert.deepEqual([below.result.errorCode, below.result.logStartOffset], [ErrorCode.OFFSET_OUT_OF_RANGE, second]);
    assert.equal((await listOffset(s.ctx, -2)).offset, second);
    const at = await fetch(s.ctx, second);
    assert.equal(at.result.errorCode, 0);
    assert.ok(at.records.length > 0);
  } finally {
    await s.done();
  }
});

test('a failing store answers ARCHIVE_UNAVAILABLE (retriable) for archived offsets only; local offsets are served', async () => {
  const s = await setup();
  try {
    const down = Object.create(s.store) as LocalDirStore;
    down.get = () => Promise.reject(new ArchiveStoreError('connect ECONNREFUSED', true));
    down.getRange = () => Promise.reject(new ArchiveStoreError('connect ECONNREFUSED', true));
    s.p.archiveSource = { reader: new ArchiveReader(down, { readTimeoutMs: 500 }), archived: () => s.archive };
    const t0 = Date.now();
    const r = await fetch(s.ctx, 3, { maxWaitMs: 5000, minBytes: 1 });
    assert.equal(r.result.errorCode, ErrorCode.ARCHIVE_UNAVAILABLE);
    assert.ok(Date.now() - t0 < 3000);
    const local = await fetch(s.ctx, s.p.log.logStartOffset);
    assert.equal(local.result.errorCode, 0);
    assert.ok(local.records.length > 0);
    assert.equal(fs.existsSync(s.store.describe()), true);
  } finally {
    await s.done();
  }
});

test('archive retention deleting a segment under a read: the consumer gets OFFSET_OUT_OF_RANGE with the new start, not ARCHIVE_UNAVAILABLE', async () => {
  const s = await setup();
  try {
    const full = s.archive;
    const later = full.all()[3]!.baseOffset;
    // What the leader's list looks like after retention moved the archive start to `later`.
    const { ArchivedSegments } = await import('../../../server/archive/archived-segments.ts');
    const dropped = new ArchivedSegments();
    for (const m of full.all()) dropped.add(m);
    dropped.dropBefore(later);
    let retained = false;
    const store = Object.create(s.store) as LocalDirStore;
    // The first object the read asks for is gone: retention deleted it meanwhile.
    store.get = (key: string) => {
      retained = true;
      return Promise.reject(new ArchiveStoreError(`archive object ${key} not found`, false, true));
    };
    s.p.archiveSource = { reader: new ArchiveReader(store), archived: () => (retained ? dropped : full) };
    const r = await fetch(s.ctx, 1);
    assert.deepEqual([r.result.errorCode, r.result.logStartOffset], [ErrorCode.OFFSET_OUT_OF_RANGE, later]);
  } finally {
    await s.done();
  }
});

test('a new leader still loading its archive: earliest and archived fetches wait for the load (bounded), then answer; a load that does not finish is ARCHIVE_UNAVAILABLE', async () => {
  const s = await setup();
  try {
    const reader = new ArchiveReader(s.store, { readTimeoutMs: 1500 });
    let loaded = false;
    s.p.archiveSource = { reader, archived: () => (loaded ? s.archive : null), loading: () => !loaded };
    setTimeout(() => (loaded = true), 300);
    const t0 = Date.now();
    assert.deepEqual(await listOffset(s.ctx, -2), { offset: 0, timestamp: -1, errorCode: 0 });
    assert.ok(Date.now() - t0 >= 250, 'it waited for the load');
    loaded = false;
    setTimeout(() => (loaded = true), 300);
    const r = await fetch(s.ctx, 3);
    assert.equal(r.result.errorCode, 0);
    assert.ok(r.records.length > 0);
    // Never loads: retriable, within the read timeout; local offsets are not held up.
    loaded = false;
    const t1 = Date.now();
    assert.equal((await listOffset(s.ctx, -2)).errorCode, ErrorCode.ARCHIVE_UNAVAILABLE);
    assert.equal((await fetch(s.ctx, 3)).result.errorCode, ErrorCode.ARCHIVE_UNAVAILABLE);
    assert.ok(Date.now() - t1 < 6000);
    const local = await fetch(s.ctx, s.p.log.logStartOffset);
    assert.equal(local.result.errorCode, 0);
  } finally {
    await s.done();
  }
});

test('entries of one request share one archive deadline: three lookups of an archive that never loads take about one timeout, not three', async () => {
  const s = await setup();
  try {
    s.ctx.config.archiveReadTimeoutMs = 800;
    s.p.archiveSource = { reader: new ArchiveReader(s.store, { readTimeoutMs: 800 }), archived: () => null, loading: () => true };
    const t0 = Date.now();
    const reply = (await handleListOffsets(s.ctx, { topics: [{ topic: 't', partitions: [{ partition: 0, timestamp: -2 }, { partition: 0, timestamp: -2 }, { partition: 0, timestamp: 1_999_000 }] }] })) as Reply;
    const took = Date.now() - t0;
    const codes = (reply.control as ListOffsetsResponse).topics[0]!.partitions.map((p) => p.errorCode);
    assert.deepEqual(codes, [ErrorCode.ARCHIVE_UNAVAILABLE, ErrorCode.ARCHIVE_UNAVAILABLE, ErrorCode.ARCHIVE_UNAVAILABLE]);
    assert.ok(took >= 700 && took < 1800, `took ${took} ms`);
  } finally {
    await s.done();
  }
});
