/**
 * bench consume: reads N messages from the start of the topic (producing the shortfall first),
 * timed from assign() to the Nth message. Messages are decoded (poll) unless --raw, which
 * counts the records of validated batches (pollBatches), the decoding-free upper bound.
 * With --group the readers are GroupConsumers instead (group-consume.ts).
 */
import { Consumer } from '../client/consumer.ts';
import type { BenchOptions } from './options.ts';
import { benchGroupConsume } from './group-consume.ts';
import { benchProduce } from './produce.ts';
import { Progress, result, type BenchResult } from './report.ts';
import { retainedMessages } from './topic.ts';

export async function benchConsume(opts: BenchOptions, partitions: number[]): Promise<BenchResult> {
  await produceShortfall(opts, partitions);
  if (opts.group !== null) return benchGroupConsume(opts, opts.group, partitions);
  const consumer = new Consumer({ bootstrap: opts.bootstrap, clientId: 'sluice-bench-consumer', autoOffsetReset: 'earliest', isolation: opts.isolation });
  let received = 0;
  const progress = new Progress('consume', opts.messages, () => received);
  try {
    const startedAt = performance.now();
    await consumer.assign(partitions.map((partition) => ({ topic: opts.topic, partition, offset: 'earliest' as const })));
    while (received < opts.messages) {
      if (opts.raw) {
        const batches = await consumer.pollBatches();
        for (const b of batches) received += b.lastOffset + 1 - Math.max(b.firstOffset, b.baseOffset);
      } else {
        received += (await consumer.poll()).length;
      }
    }
    const seconds = (performance.now() - startedAt) / 1000;
    return result('consume', opts.messages, opts.sizeBytes, seconds);
  } finally {
    progress.stop();
    await consumer.close();
  }
}

/** Makes the topic hold at least opts.messages messages. */
async function produceShortfall(opts: BenchOptions, partitions: number[]): Promise<void> {
  const have = await retainedMessages(opts, partitions);
  if (have < opts.messages) {
    process.stderr.write(`[consume] topic holds ${have} messages; producing ${opts.messages - have} first\n`);
    await benchProduce({ ...opts, messages: opts.messages - have, producers: 1, rateMsgsPerSec: Infinity }, true);
  }
}
