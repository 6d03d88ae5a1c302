/**
 * Small request helpers for tests that check what a broker kept: create a topic, produce
 * numbered messages with acks=all, count what a partition holds, list topic names. Raw
 * Connection requests, so every error code is the broker's own.
 */
import assert from 'node:assert/strict';
import { ApiKey } from '../../protocol/api-keys.ts';
import type { DescribeTopicsResponse, FetchResponse, ProduceResponse } from '../../protocol/apis/index.ts';
import { batchSizeAt, buildBatch, Off } from '../../protocol/record-batch.ts';
import type { Connection } from '../../client/connection.ts';

const enc = new TextEncoder();

/** CreateTopics for one topic; returns its error code. */
export async function createTopicCode(c: Connection, topic: string, partitions = 1): Promise<number> {
  const r = await c.send<any>(ApiKey.CREATE_TOPICS, { topics: [{ topic, partitions, replicationFactor: 1, configs: {} }], validateOnly: false });
  return r.control.topics[0].errorCode;
}

export async function createTopic(c: Connection, topic: string, partitions = 1): Promise<void> {
  assert.equal(await createTopicCode(c, topic, partitions), 0, `create ${topic}`);
}

/** DeleteTopics for one topic; returns its error code. */
export async function deleteTopicCode(c: Connection, topic: string): Promise<number> {
  const r = await c.send<any>(ApiKey.DELETE_TOPICS, { topics: [topic] });
  return r.control.topics[0].errorCode;
}

/** Names of the (non-internal) topics the broker lists. */
export async function topicNames(c: Connection): Promise<string[]> {
  const r = await c.send<DescribeTopicsResponse>(ApiKey.DESCRIBE_TOPICS, { topics: null });
  return r.control.topics.map((t) => t.topic).sort();
}

/** Produces `count` messages to partition 0, 100 per batch, each acknowledged (acks=all). */
export async function produceMessages(c: Connection, topic: string, count: number, tag: string): Promise<void> {
  for (let i = 0; i < count; i += 100) {
    const batch = buildBatch(Array.from({ length: Math.min(100, count - i) }, (_, j) => ({ value: enc.encode(`${tag}-${i + j}`) })));
    const r = await c.send<ProduceResponse>(ApiKey.PRODUCE, { acks: -1, timeoutMs: 10_000, topics: [{ topic, partitions: [{ partition: 0, recordsBytes: batch.length }] }] }, [batch]);
    const p = r.control.topics[0]!.partitions[0]!;
    assert.equal(p.errorCode, 0, p.errorMessage ?? '');
  }
}

/** Messages stored in partition 0, read back from offset 0. */
export async function countMessages(c: Connection, topic: string): Promise<number> {
  let offset = 0;
  let count = 0;
  for (let i = 0; i < 10_000; i++) {
    const r = await c.send<FetchResponse>(ApiKey.FETCH, { maxWaitMs: 0, minBytes: 0, maxBytes: 1 << 20, topics: [{ topic, partitions: [{ partition: 0, fetchOffset: offset, partitionMaxBytes: 1 << 20 }] }] });
    const p = r.control.topics[0]!.partitions[0]!;
    assert.equal(p.errorCode, 0);
    if (p.recordsBytes === 0) break;
    let pos = 0;
    while (pos < r.data.length) {
      const size = batchSizeAt(r.data, pos);
      const base = Number(r.data.readBigInt64BE(pos));
      const records = r.data.readInt32BE(pos + Off.lastOffsetDelta) + 1;
      count += records;
      offset = base + records;
      pos += size;
    }
  }
  return count;
}
