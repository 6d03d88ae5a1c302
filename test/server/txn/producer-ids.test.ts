// Producer ids (SPEC §6.19) from the embedded store: blocks reserved durably in the metadata
// journal, handed out from memory, never reused across restarts or by concurrent callers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EmbeddedMetadataStore } from '../../../server/metadata/embedded-store.ts';
import { ProducerIdManager } from '../../../server/txn/producer-id-manager.ts';
import { tempDir } from '../log/helpers.ts';

async function withStore<T>(dataDir: string, fn: (s: EmbeddedMetadataStore) => Promise<T>): Promise<T> {
  const s = new EmbeddedMetadataStore(dataDir, 0);
  await s.open();
  try {
    return await fn(s);
  } finally {
    await s.close();
  }
}

test('blocks of producer ids never overlap, also after the store is reopened', async () => {
  const t = tempDir();
  try {
    const firsts: number[] = [];
    await withStore(t.dir, async (s) => {
      firsts.push(await s.allocateProducerIdBlock(10));
      // Concurrent reservations (one journal batch) still get disjoint blocks.
      firsts.push(...(await Promise.all([s.allocateProducerIdBlock(10), s.allocateProducerIdBlock(10)])));
    });
    await withStore(t.dir, async (s) => {
      firsts.push(await s.allocateProducerIdBlock(10));
    });
    assert.deepEqual(firsts, [0, 10, 20, 30]);
  } finally {
    t.cleanup();
  }
});

test('the manager hands out every id once, across blocks and restarts, reserving ahead', async () => {
  const t = tempDir();
  try {
    const seen = new Set<number>();
    let reservations = 0;
    for (let run = 0; run < 3; run++) {
      await withStore(t.dir, async (s) => {
        const counting = { allocateProducerIdBlock: (n: number) => (reservations++, s.allocateProducerIdBlock(n)) };
        const ids = new ProducerIdManager(counting, { blockSize: 7, prefetchBelow: 2 });
        // 40 at once: most wait for reservations in flight; then 10 one after another.
        const got = await Promise.all(Array.from({ length: 40 }, () => ids.allocate()));
        for (let i = 0; i < 10; i++) got.push(await ids.allocate());
        for (const id of got) {
          assert.ok(!seen.has(id), `producer id ${id} handed out twice`);
          seen.add(id);
        }
      });
    }
    assert.equal(seen.size, 150);
    // 50 ids a run in blocks of 7 need 8 blocks; prefetching may reserve one more per run.
    assert.ok(reservations >= 24 && reservations <= 27, `${reservations} reservations`);
  } finally {
    t.cleanup();
  }
});

test('a failed reservation fails its waiters with STORAGE_ERROR, and the next call tries again', async () => {
  let fail = true;
  let next = 0;
  const ids = new ProducerIdManager({
    allocateProducerIdBlock: async (n: number) => {
      if (fail) throw new Error('disk on fire');
      next += n;
      return next - n;
    },
  }, { blockSize: 5, prefetchBelow: 0 });
  await assert.rejects(ids.allocate(), (e: { code?: number }) => e.code === 18);
  fail = false;
  assert.equal(await ids.allocate(), 0);
  assert.equal(await ids.allocate(), 1);
});
