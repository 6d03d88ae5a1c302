/** Topic setup for the bench: create it when missing, count what it holds. */
import { Admin } from '../client/admin.ts';
import { ErrorCode, SluiceError } from '../protocol/errors.ts';
import type { BenchOptions } from './options.ts';

/** Creates the topic with opts.partitions unless it exists; returns its partition ids. */
export async function ensureTopic(opts: BenchOptions): Promise<number[]> {
  const admin = new Admin({ bootstrap: opts.bootstrap, clientId: 'sluice-bench' });
  try {
    try {
      await admin.createTopics([{ topic: opts.topic, partitions: opts.partitions, configs: opts.configs }]);
    } catch (e) {
      if (!(e instanceof SluiceError && e.code === ErrorCode.TOPIC_ALREADY_EXISTS)) throw e;
    }
    // Creation is visible in metadata at once on one broker; retry briefly for clusters.
    for (let attempt = 0; ; attempt++) {
      try {
        const md = await admin.cluster.topic(opts.topic, true);
        if (md.partitions.length > 0 && md.partitions.every((p) => p.leader >= 0)) return md.partitions.map((p) => p.partition).sort((a, b) => a - b);
      } catch (e) {
        if (attempt >= 50) throw e;
      }
      if (attempt >= 50) throw new Error(`topic ${opts.topic} has partitions without a leader`);
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    await admin.close();
  }
}

/** Messages currently retained in the topic: sum of (log end - log start) over partitions. */
export async function retainedMessages(opts: BenchOptions, partitions: number[]): Promise<number> {
  const admin = new Admin({ bootstrap: opts.bootstrap, clientId: 'sluice-bench' });
  try {
    let total = 0;
    for (const p of partitions) {
      total += (await admin.listOffsets(opts.topic, p, 'latest')) - (await admin.listOffsets(opts.topic, p, 'earliest'));
    }
    return total;
  } finally {
    await admin.close();
  }
}

/** The log start offset of each partition, indexed by partition id. */
export async function logStartOffsets(opts: BenchOptions, partitions: number[]): Promise<number[]> {
  const admin = new Admin({ bootstrap: opts.bootstrap, clientId: 'sluice-bench' });
  try {
    const out: number[] = [];
    for (const p of partitions) out[p] = await admin.listOffsets(opts.topic, p, 'earliest');
    return out;
  } finally {
    await admin.close();
  }
}

/** Deletes the group's committed offsets so the bench starts it fresh; refuses a group with members. */
export async function freshGroup(opts: BenchOptions, groupId: string): Promise<void> {
  const admin = new Admin({ bootstrap: opts.bootstrap, clientId: 'sluice-bench' });
  try {
    await admin.deleteGroups([groupId]);
    process.stderr.write(`[bench] deleted the committed offsets of existing group ${groupId}: it starts fresh\n`);
  } catch (e) {
    if (e instanceof SluiceError && e.code === ErrorCode.GROUP_ID_NOT_FOUND) return;
    if (e instanceof SluiceError && e.code === ErrorCode.NON_EMPTY_GROUP) throw new Error(`group ${groupId} has active members; the bench needs a group of its own`);
    throw e;
  } finally {
    await admin.close();
  }
}
