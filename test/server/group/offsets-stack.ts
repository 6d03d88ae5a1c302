/**
 * One broker's offsets machinery over real logs in a data dir, without a network: the
 * embedded metadata store (this broker registered), the topic registry, and the offsets
 * topic created and loaded. On one broker it leads every offsets partition, so a commit is
 * durable once appended and fsynced. For the coordinator and offset-store tests.
 */
import { OFFSETS_TOPIC, OFFSETS_TOPIC_PARTITIONS, OffsetStore } from '../../../server/group/offset-store.ts';
import { LogManager } from '../../../server/log/log-manager.ts';
import { createLogger } from '../../../server/logger.ts';
import { EmbeddedMetadataStore } from '../../../server/metadata/embedded-store.ts';
import { TopicManager } from '../../../server/partition/topic-manager.ts';

export const log = createLogger('test');

export interface OffsetsStack {
  topics: TopicManager;
  offsets: OffsetStore;
  close(): Promise<void>;
}

export async function openOffsetsStack(dataDir: string, partitionsMax = 1000): Promise<OffsetsStack> {
  const metadata = new EmbeddedMetadataStore(dataDir, 0);
  await metadata.open();
  const logs = new LogManager(dataDir, { logger: log });
  const close = async () => {
    await logs.close();
    await metadata.close();
  };
  try {
    await metadata.registerBroker({ brokerId: 0, host: '127.0.0.1', port: 0, startedAtMs: 0 });
    const topics = new TopicManager(metadata, logs, 0, partitionsMax, log);
    topics.load();
    const offsets = new OffsetStore(topics, async (partition, records) => {
      const l = topics.partition(OFFSETS_TOPIC, partition)!;
      await l.waitForFlush(l.append(records).lastOffset);
    }, log);
    await offsets.ensureTopic(1);
    for (let p = 0; p < OFFSETS_TOPIC_PARTITIONS; p++) await offsets.loadPartition(p);
    return { topics, offsets, close };
  } catch (e) {
    await close();
    throw e;
  }
}
