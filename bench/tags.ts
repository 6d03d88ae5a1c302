/**
 * bench tags: broker-side tag filtering (SPEC §6.7). Two fresh topics of --messages messages
 * of --size bytes: `<topic>-tagged`, each message tagged with one of --tag-count tags
 * (t0..t<n-1>, uniformly random), and `<topic>-plain`, untagged. Reports:
 * - produce throughput of each (the tagged producer keeps one open batch per partition and
 *   tag set), with the producer kind chosen by --idempotent / --no-idempotent;
 * - drain of the tagged topic by an unfiltered consumer and by a one-tag consumer (tags
 *   ['t7']): bytes transferred (record batch bytes received) and time from assign() until the
 *   position reaches the log end; targets: the one-tag consumer transfers <= 5% of the bytes
 *   and drains >= 10x faster;
 * - unfiltered drain of the plain topic, to compare with the tagged one (target: equal
 *   within noise).
 * Consumers count raw batches (pollBatches), no decoding, so the figures are the broker's and
 * the network's. Each drain runs --runs times; the medians are reported.
 */
import { Admin } from '../client/admin.ts';
import { Consumer } from '../client/consumer.ts';
import { Producer, type ProducerMessage } from '../client/producer.ts';
import type { BenchOptions } from './options.ts';
import { Payloads } from './payload.ts';

const CHUNK = 1000;
const CHUNKS_IN_FLIGHT_MAX = 64;
const FILTER_TAG = 't7';

export interface DrainResult {
  seconds: number;
  bytes: number;
  messages: number;
}

export interface TagsBenchResult {
  mode: 'tags';
  messages: number;
  sizeBytes: number;
  partitions: number;
  tagCount: number;
  runs: number;
  idempotent: boolean | null;
  produceTaggedMsgsPerSec: number;
  producePlainMsgsPerSec: number;
  /** Medians over runs. */
  unfiltered: DrainResult;
  oneTag: DrainResult & { tag: string };
  plain: DrainResult;
  /** oneTag.bytes / unfiltered.bytes (target <= 0.05). */
  bytesRatio: number;
  /** unfiltered.seconds / oneTag.seconds (target >= 10). */
  speedup: number;
  /** plain.seconds / unfiltered.seconds: > 1 means the tagged topic drained faster (target ~1). */
  taggedVsPlainThroughput: number;
}

async function createTopic(opts: BenchOptions, topic: string): Promise<number[]> {
  const admin = new Admin({ bootstrap: opts.bootstrap, clientId: 'sluice-bench' });
  try {
    await admin.deleteTopics([topic]).catch(() => {});
    for (let attempt = 0; ; attempt++) {
      try {
        await admin.createTopics([{ topic, partitions: opts.partitions, configs: opts.configs }]);
        break;
      } catch (e) {
        // A delete a moment ago may still be finishing.
        if (attempt >= 50) throw e;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    for (let attempt = 0; ; attempt++) {
      const md = await admin.cluster.topic(topic, true).catch(() => null);
      if (md && md.partitions.length > 0 && md.partitions.every((p) => p.leader >= 0)) return md.partitions.map((p) => p.partition);
      if (attempt >= 50) throw new Error(`topic ${topic} has partitions without a leader`);
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    await admin.close();
  }
}

async function produce(opts: BenchOptions, topic: string, tagCount: number): Promise<number> {
  const producer = new Producer({ bootstrap: opts.bootstrap, acks: opts.acks, profile: opts.profile, clientId: 'sluice-bench-tags', ...(opts.idempotent !== undefined ? { idempotent: opts.idempotent } : {}) });
  const payloads = new Payloads(opts.sizeBytes);
  const tagLists = Array.from({ length: tagCount }, (_, i) => [`t${i}`]);
  const inFlight = new Set<Promise<unknown>>();
  let failure: Error | null = null;
  try {
    await producer.cluster.topic(topic);
    const startedAt = performance.now();
    for (let sent = 0; sent < opts.messages; ) {
      if (failure) throw failure;
      const n = Math.min(CHUNK, opts.messages - sent);
      const msgs: ProducerMessage[] = new Array(n);
      for (let i = 0; i < n; i++) msgs[i] = tagCount > 0 ? { topic, value: payloads.value(), tags: tagLists[Math.floor(Math.random() * tagCount)]! } : { topic, value: payloads.value() };
      sent += n;
      const p = producer.sendBatch(msgs).catch((e: Error) => void (failure ??= e));
      inFlight.add(p);
      void p.finally(() => inFlight.delete(p));
      if (inFlight.size >= CHUNKS_IN_FLIGHT_MAX) await Promise.race(inFlight);
      else if ((sent / CHUNK) % 16 === 0) await new Promise((r) => setImmediate(r));
    }
    await producer.flush();
    await Promise.all(inFlight);
    if (failure) throw failure;
    return Math.round(opts.messages / ((performance.now() - startedAt) / 1000));
  } finally {
    await producer.close();
  }
}

async function drain(opts: BenchOptions, topic: string, partitions: number[], tags: string[] | null): Promise<DrainResult> {
  const admin = new Admin({ bootstrap: opts.bootstrap, clientId: 'sluice-bench' });
  const ends = await Promise.all(partitions.map((p) => admin.listOffsets(topic, p, 'latest')));
  await admin.close();
  const consumer = new Consumer({ bootstrap: opts.bootstrap, clientId: 'sluice-bench-consumer', maxWaitMs: 50, ...(tags ? { tags } : {}) });
  let bytes = 0;
  let messages = 0;
  try {
    const startedAt = performance.now();
    await consumer.assign(partitions.map((partition) => ({ topic, partition, offset: 0 })));
    while (!partitions.every((p, i) => consumer.position(topic, p) >= ends[i]!)) {
      for (const b of await consumer.pollBatches(100)) {
        bytes += b.bytes.length;
        messages += b.lastOffset + 1 - Math.max(b.firstOffset, b.baseOffset);
      }
    }
    return { seconds: (performance.now() - startedAt) / 1000, bytes, messages };
  } finally {
    await consumer.close();
  }
}

function median(xs: DrainResult[]): DrainResult {
  const sorted = [...xs].sort((a, b) => a.seconds - b.seconds);
  return sorted[Math.floor(sorted.length / 2)]!;
}

export async function benchTags(opts: BenchOptions): Promise<TagsBenchResult> {
  const tagged = `${opts.topic}-tagged`;
  const plain = `${opts.topic}-plain`;
  const taggedPartitions = await createTopic(opts, tagged);
  const plainPartitions = await createTopic(opts, plain);
  process.stderr.write(`[tags] producing ${opts.messages} messages with ${opts.tagCount} tags to ${tagged}\n`);
  const produceTaggedMsgsPerSec = await produce(opts, tagged, opts.tagCount);
  process.stderr.write(`[tags] producing ${opts.messages} untagged messages to ${plain}\n`);
  const producePlainMsgsPerSec = await produce(opts, plain, 0);
  const runs: Array<{ unfiltered: DrainResult; oneTag: DrainResult; plain: DrainResult }> = [];
  for (let r = 0; r < opts.runs; r++) {
    // Alternate the order so a warm cache does not always favour the same one.
    const plainRun = await drain(opts, plain, plainPartitions, null);
    const unfiltered = await drain(opts, tagged, taggedPartitions, null);
    const oneTag = await drain(opts, tagged, taggedPartitions, [FILTER_TAG]);
    runs.push({ unfiltered, oneTag, plain: plainRun });
    process.stderr.write(`[tags] run ${r + 1}: unfiltered ${unfiltered.seconds.toFixed(2)} s ${unfiltered.bytes} B, one tag ${oneTag.seconds.toFixed(3)} s ${oneTag.bytes} B (${oneTag.messages} msgs), plain ${plainRun.seconds.toFixed(2)} s\n`);
  }
  const unfiltered = median(runs.map((r) => r.unfiltered));
  const oneTag = median(runs.map((r) => r.oneTag));
  const plainMedian = median(runs.map((r) => r.plain));
  const round = (x: number, d = 4) => Math.round(x * 10 ** d) / 10 ** d;
  const fix = (d: DrainResult): DrainResult => ({ ...d, seconds: round(d.seconds) });
  return {
    mode: 'tags',
    messages: opts.messages,
    sizeBytes: opts.sizeBytes,
    partitions: taggedPartitions.length,
    tagCount: opts.tagCount,
    runs: opts.runs,
    idempotent: opts.idempotent ?? null,
    produceTaggedMsgsPerSec,
    producePlainMsgsPerSec,
    unfiltered: fix(unfiltered),
    oneTag: { ...fix(oneTag), tag: FILTER_TAG },
    plain: fix(plainMedian),
    bytesRatio: round(oneTag.bytes / Math.max(unfiltered.bytes, 1)),
    speedup: round(unfiltered.seconds / Math.max(oneTag.seconds, 1e-9), 2),
    taggedVsPlainThroughput: round(plainMedian.seconds / Math.max(unfiltered.seconds, 1e-9), 3),
  };
}
