// Deleting a topic and creating one of the same name at once, on a real broker process over
// real TCP: the new topic must never show the old topic's records, its creation must never be
// refused as TOPIC_ALREADY_EXISTS, its partitions must take writes as soon as CreateTopics
// answers, and after a restart every acknowledged record of the last topic must be there
// (a late removal of the old topic's directories must not hit the new one's).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiKey } from '../../protocol/api-keys.ts';
import type { FetchResponse, ProduceResponse } from '../../protocol/apis/index.ts';
import { batchSizeAt, buildBatch, decodeRecords } from '../../protocol/record-batch.ts';
import { Connection } from '../../client/connection.ts';
import { startBroker, tempDir } from '../helpers/broker-process.ts';

const enc = new TextEncoder();
const dec = new TextDecoder();
const TOPIC = 'churn';
const PARTITIONS = 3;
const ROUNDS = 30;

async function createTopic(c: Connection, topic: string, partitions: number): Promise<number> {
  // flush.messages=1: every produce starts an fsync, so a delete usually finds one in flight.
  const r = await c.send<any>(ApiKey.CREATE_TOPICS, { topics: [{ topic, partitions, replicationFactor: 1, configs: { 'flush.messages': '1' } }], validateOnly: false });
  return r.control.topics[0].errorCode;
}

async function deleteTopic(c: Connection, topic: string): Promise<number> {
  const r = await c.send<any>(ApiKey.DELETE_TOPICS, { topics: [topic] });
  return r.control.topics[0].errorCode;
}

async function produce(c: Connection, topic: string, partition: number, values: string[]): Promise<{ errorCode: number; message: string | null }> {
  const batch = buildBatch(values.map((v) => ({ key: null, value: enc.encode(v) })));
  const r = await c.send<ProduceResponse>(ApiKey.PRODUCE, { acks: 1, timeoutMs: 5000, topics: [{ topic, partitions: [{ partition, recordsBytes: batch.length }] }] }, [batch]);
  const p = r.control.topics[0]!.partitions[0]!;
  return { errorCode: p.errorCode, message: p.errorMessage };
}

/** Every record value of a partition, in offset order. */
async function readValues(c: Connection, topic: string, partition: number): Promise<string[]> {
  const out: string[] = [];
  let offset = 0;
  for (let i = 0; i < 10_000; i++) {
    const r = await c.send<FetchResponse>(ApiKey.FETCH, { maxWaitMs: 0, minBytes: 0, maxBytes: 1 << 20, topics: [{ topic, partitions: [{ partition, fetchOffset: offset, partitionMaxBytes: 1 << 20 }] }] });
    const p = r.control.topics[0]!.partitions[0]!;
    assert.equal(p.errorCode, 0, `fetch ${topic}-${partition} at ${offset}: ${p.errorCode}`);
    if (p.recordsBytes === 0) break;
    for (let pos = 0; pos < r.data.length; pos += batchSizeAt(r.data, pos)) {
      for (const rec of decodeRecords(r.data, pos)) {
        out.push(dec.decode(rec.value!));
        offset = rec.offset + 1;
      }
    }
  }
  return out;
}

test('delete then immediate re-create of a topic: never old data, never TOPIC_ALREADY_EXISTS, serves at once, survives a restart', async () => {
  const dataDir = tempDir();
  let b = await startBroker({ dataDir });
  const acked: string[][] = Array.from({ length: PARTITIONS }, () => []);
  try {
    const c = await Connection.connect(b.host, b.port);
    for (let round = 0; round < ROUNDS; round++) {
      assert.equal(await createTopic(c, TOPIC, PARTITIONS), 0, `round ${round}: create`);
      for (let p = 0; p < PARTITIONS; p++) {
        acked[p] = [];
        // Enough records that a deleted topic's files are still being removed when the next round starts.
        const values = Array.from({ length: 50 }, (_, i) => `r${round}-p${p}-${i}-${'x'.repeat(200)}`);
        const r = await produce(c, TOPIC, p, values);
        assert.equal(r.errorCode, 0, `round ${round}: produce to partition ${p} right after create: ${r.errorCode} ${r.message}`);
        acked[p]!.push(...values);
      }
      for (let p = 0; p < PARTITIONS; p++) {
        const got = await readValues(c, TOPIC, p);
        assert.deepEqual(got.filter((v) => !v.startsWith(`r${round}-`)).slice(0, 3), [], `round ${round}: partition ${p} shows records of a deleted topic`);
        assert.equal(got.length, acked[p]!.length, `round ${round}: partition ${p}`);
      }
      if (round < ROUNDS - 1) assert.equal(await deleteTopic(c, TOPIC), 0, `round ${round}: delete`);
    }
    c.close();
    assert.equal(await b.stop(), 0);
    b = await startBroker({ dataDir });
    const c2 = await Connection.connect(b.host, b.port);
    for (let p = 0; p < PARTITIONS; p++) assert.deepEqual(await readValues(c2, TOPIC, p), acked[p], `partition ${p} after restart`);
    c2.close();
  } finally {
    await b.stop();
    b.cleanup();
  }
});
