// Loading committed offsets reads the offsets partition in slices (so a coordinator taking
// over keeps serving): a replay over many slices, and over a commit batch larger than one
// slice, restores every offset, the latest commit winning. Real partition logs on disk.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { offsetsPartitionFor, type OffsetEntry } from '../../../server/group/offset-store.ts';
import { tempDir } from '../../helpers/broker-process.ts';
import { openOffsetsStack } from './offsets-stack.ts';

test('replaying an offsets partition in slices restores every committed offset, large batches included', { timeout: 120_000 }, async () => {
  const dataDir = tempDir();
  const stack = await openOffsetsStack(dataDir);
  try {
    const { topics, offsets } = stack;
    await topics.create('wide', 1, 1, {});

    // One commit of 10000 partitions (a batch of ~0.7 MB, larger than a replay slice), then
    // 30 commits of 1000 partitions with longer metadata: several MiB, many slices.
    const entries = (n: number, offset: number, metadata: string | null): OffsetEntry[] => Array.from({ length: n }, (_, partition) => ({ topic: 'wide', partition, offset, metadata, commitTimestampMs: 1_700_000_000_000 }));
    await offsets.commit('big', entries(10_000, 1, null));
    for (let i = 0; i < 30; i++) await offsets.commit('many', entries(1000, 100 + i, 'x'.repeat(100)));
    await offsets.commit('big', entries(10, 2, 'latest'));

    for (const group of ['big', 'many']) {
      const partition = offsetsPartitionFor(group);
      offsets.unloadPartition(partition);
      assert.equal(offsets.hasGroup(group), false);
      await offsets.loadPartition(partition);
    }
    const big = offsets.entries('big');
    assert.equal(big.length, 10_000);
    assert.deepEqual(offsets.get('big', 'wide', 5), { offset: 2, metadata: 'latest', commitTimestampMs: 1_700_000_000_000 });
    assert.deepEqual(offsets.get('big', 'wide', 9999), { offset: 1, metadata: null, commitTimestampMs: 1_700_000_000_000 });
    assert.equal(offsets.entries('many').length, 1000);
    assert.equal(offsets.get('many', 'wide', 999)?.offset, 129);
  } finally {
    await stack.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
});
