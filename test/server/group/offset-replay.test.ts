// Loading committed offsets reads the offsets partition in slices (so a coordinator taking
// over keeps serving): a replay over many slices, and over a commit batch larger than one
// slice, restores every offset, the latest commit winning. Real partition logs on disk.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { OFFSETS_TOPIC, OFFSETS_TOPIC_PARTITIONS, offsetsPartitionFor, OffsetStore, type OffsetEntry } from '../../../server/group/offset-store.ts';
import { LogManager } from '../../../server/log/log-manager.ts';
import { createLogger } from '../../../server/logger.ts';
import { EmbeddedMetadataStore } from '../../../server/metadata/embedded-store.ts';
import { TopicManager } from '../../../server/partition/topic-manager.ts';
import { tempDir } from '../../helpers/broker-process.ts';

const log = createLogger('test');

test('replaying an offsets partition in slices restores every committed offset, large batches included', { timeout: 120_000 }, async () => {
  const dataDir = tempDir();
  const metadata = new EmbeddedMetadataStore(dataDir, 0);
  await metadata.open();
  const logs = new LogManager(dataDir, { logger: log });
  try {
    await metadata.registerBroker({ brokerId: 0, host: '127.0.0.1', port: 0, startedAtMs: 0 });
    const topics = new TopicManager(metadata, logs, 0, 1000, log);
    topics.load();
    const offsets = new OffsetStore(topics, async (partition, records) => {
      const l = topics.partition(OFFSETS_TOPIC, partition)!;
      await l.waitForFlush(l.append(records).lastOffset);
    }, log);
    await offsets.ensureTopic(1);
    for (let p = 0; p < OFFSETS_TOPIC_PARTITIONS; p++) await offsets.loadPartition(p);
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
    await logs.close();
    await metadata.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
});
