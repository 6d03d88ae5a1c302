// The broker-wide cache of archived chunks: bounded bytes with least-recently-used eviction,
// one store request for concurrent misses of a chunk, failures not cached, reads across chunk
// boundaries assembled byte for byte (any position and length: fast-check).
import path from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ArchiveStoreError } from '../../../server/archive/archive-store.ts';
import { ChunkCache } from '../../../server/archive/chunk-cache.ts';
import { LocalDirStore } from '../../../server/archive/local-dir-store.ts';
import { tempDir } from '../log/helpers.ts';

/** A LocalDirStore that counts range reads and can fail them. */
class CountingStore extends LocalDirStore {
  ranges: Array<[string, number, number]> = [];
  failing = false;
  override async getRange(key: string, start: number, end: number): Promise<Uint8Array> {
    this.ranges.push([key, start, end]);
    if (this.failing) throw new ArchiveStoreError('store down', true);
    return super.getRange(key, start, end);
  }
}

async function setup() {
  const t = tempDir();
  const store = new CountingStore(path.join(t.dir, 'a'));
  const bytes = Buffer.alloc(10_000);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7 + (i >> 8)) & 0xff;
  await store.put('t-id/0/obj.log', bytes);
  return { store, bytes, cleanup: t.cleanup };
}

test('reads at any position and length equal the object bytes, and held bytes stay within the bound (fast-check)', async () => {
  const { store, bytes, cleanup } = await setup();
  try {
    const cache = new ChunkCache(3000, 1000);
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: 10_500 }), fc.integer({ min: 0, max: 4000 }), async (pos, len) => {
        const got = await cache.read(store, 't-id/0/obj.log', bytes.length, pos, len);
        assert.deepEqual(got, bytes.subarray(Math.min(pos, bytes.length), Math.min(pos + len, bytes.length)));
        assert.ok(cache.heldBytes <= 3000);
        assert.ok(cache.chunkCount <= 3);
      }),
      { numRuns: 400 },
    );
  } finally {
    cleanup();
  }
});

test('least recently used chunks go first; a hit costs no request', async () => {
  const { store, bytes, cleanup } = await setup();
  try {
    const cache = new ChunkCache(2000, 1000);
    const key = 't-id/0/obj.log';
    await cache.chunk(store, key, bytes.length, 0);
    await cache.chunk(store, key, bytes.length, 1);
    await cache.chunk(store, key, bytes.length, 0); // 0 is now the most recent
    await cache.chunk(store, key, bytes.length, 2); // evicts 1
    assert.equal(store.ranges.length, 3);
    await cache.chunk(store, key, bytes.length, 0);
    assert.equal(store.ranges.length, 3, 'chunk 0 stayed');
    await cache.chunk(store, key, bytes.length, 1);
    assert.equal(store.ranges.length, 4, 'chunk 1 was evicted');
    assert.deepEqual(store.ranges[3], [key, 1000, 2000]);
    // The last chunk is short: [9000, 10000) of a 10000-byte object.
    const last = await cache.chunk(store, key, bytes.length, 9);
    assert.equal(last.length, 1000);
    assert.deepEqual(cache.snapshot().hits, 2);
  } finally {
    cleanup();
  }
});

test('concurrent misses of one chunk share one request; a failure is not cached', async () => {
  const { store, bytes, cleanup } = await setup();
  try {
    const cache = new ChunkCache(1 << 20, 1000);
    const key = 't-id/0/obj.log';
    const all = await Promise.all(Array.from({ length: 20 }, () => cache.read(store, key, bytes.length, 1500, 100)));
    assert.equal(store.ranges.length, 1);
    for (const b of all) assert.deepEqual(b, bytes.subarray(1500, 1600));
    store.failing = true;
    await assert.rejects(Promise.all(Array.from({ length: 5 }, () => cache.chunk(store, key, bytes.length, 5))), ArchiveStoreError);
    assert.equal(store.ranges.length, 2, 'five concurrent failing misses: one request');
    store.failing = false;
    assert.deepEqual(await cache.chunk(store, key, bytes.length, 5), bytes.subarray(5000, 6000));
    assert.equal(store.ranges.length, 3, 'the failure was not cached');
  } finally {
    cleanup();
  }
});

test('a zero-byte cache caches nothing and still answers', async () => {
  const { store, bytes, cleanup } = await setup();
  try {
    const cache = new ChunkCache(0, 1000);
    assert.deepEqual(await cache.read(store, 't-id/0/obj.log', bytes.length, 10, 20), bytes.subarray(10, 30));
    assert.equal(cache.heldBytes, 0);
  } finally {
    cleanup();
  }
});
