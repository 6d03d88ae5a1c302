/** Producer against a real broker process. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Buffer } from 'node:buffer';
import { Admin } from '../../client/admin.ts';
import { Connection } from '../../client/connection.ts';
import { Producer, type RecordMetadata } from '../../client/producer.ts';
import { partitionForKey } from '../../client/partitioner.ts';
import { ApiKey } from '../../protocol/api-keys.ts';
import type { FetchRequest, FetchResponse } from '../../protocol/apis/fetch.ts';
import { ErrorCode, SluiceError } from '../../protocol/errors.ts';
import { batchSizeAt, decodeRecords, type DecodedRecord } from '../../protocol/record-batch.ts';
import { startBroker, type BrokerProcess } from '../helpers/broker-process.ts';

async function withBroker(t: { after: (fn: () => Promise<void>) => void }, topics: Array<{ topic: string; partitions: number }>): Promise<BrokerProcess> {
  const broker = await startBroker();
  t.after(async () => {
    await broker.stop();
    broker.cleanup();
  });
  const admin = new Admin({ bootstrap: broker.bootstrap });
  try {
    if (topics.length) await admin.createTopics(topics);
  } finally {
    await admin.close();
  }
  return broker;
}

/** Reads a whole partition with raw Fetch requests (independent of the consumer). */
async function readPartition(broker: BrokerProcess, topic: string, partition: number, upTo: number): Promise<DecodedRecord[]> {
  const conn = await Connection.connect(broker.host, broker.port);
  const out: DecodedRecord[] = [];
  try {
    while (out.length < upTo) {
      const req: FetchRequest = { maxWaitMs: 100, minBytes: 1, maxBytes: 8 << 20, topics: [{ topic, partitions: [{ partition, fetchOffset: out.length, partitionMaxBytes: 8 << 20 }] }] };
      const res = await conn.send<FetchResponse>(ApiKey.FETCH, req);
      const pr = res.control.topics[0]!.partitions[0]!;
      assert.equal(pr.errorCode, 0);
      const data = res.data.subarray(0, pr.recordsBytes);
      for (let pos = 0; pos < data.length; pos += batchSizeAt(data, pos)) {
        for (const r of decodeRecords(data, pos)) if (r.offset >= out.length) out.push(r);
      }
    }
  } finally {
    conn.close();
  }
  return out;
}

test('10k keyed messages over 4 partitions, acks=1: a promise per message, contiguous offsets, data as sent', async (t) => {
  const broker = await withBroker(t, [{ topic: 'keyed', partitions: 4 }]);
  const producer = new Producer({ bootstrap: broker.bootstrap, acks: 1, batchSize: 16 * 1024, lingerMs: 2 });
  t.after(() => producer.close());
  const n = 10_000;
  const promises: Array<Promise<RecordMetadata>> = [];
  for (let i = 0; i < n; i++) promises.push(producer.send({ topic: 'keyed', key: `key-${i % 97}`, value: `value-${i}`, headers: i % 10 === 0 ? { seq: String(i) } : undefined }));
  const res = await Promise.all(promises);
  const byPartition: Array<Array<[number, number]>> = [[], [], [], []];
  for (let i = 0; i < n; i++) {
    const r = res[i]!;
    assert.equal(r.topic, 'keyed');
    assert.equal(r.partition, partitionForKey(Buffer.from(`key-${i % 97}`), 4));
    byPartition[r.partition]!.push([r.offset, i]);
  }
  for (let p = 0; p < 4; p++) {
    const offsets = byPartition[p]!.map(([o]) => o);
    assert.ok(offsets.length > 0, `partition ${p} got records`);
    // Offsets per partition are 0..k-1 and increase in send order.
    assert.deepEqual(offsets, Array.from({ length: offsets.length }, (_, i) => i), `partition ${p}`);
    const stored = await readPartition(broker, 'keyed', p, offsets.length);
    for (const [offset, i] of byPartition[p]!) {
      const rec = stored[offset]!;
      assert.equal(Buffer.from(rec.value!).toString(), `value-${i}`);
      assert.equal(Buffer.from(rec.key!).toString(), `key-${i % 97}`);
      if (i % 10 === 0) assert.equal(Buffer.from(rec.headers[0]!.value!).toString(), String(i));
    }
  }
});

test('acks=0: offsets resolve as -1 and the records arrive', async (t) => {
  const broker = await withBroker(t, [{ topic: 'fire', partitions: 2 }]);
  const producer = new Producer({ bootstrap: broker.bootstrap, acks: 0, profile: 'latency' });
  const admin = new Admin({ bootstrap: broker.bootstrap });
  t.after(async () => {
    await producer.close();
    await admin.close();
  });
  const res = await producer.sendBatch(Array.from({ length: 1000 }, (_, i) => ({ topic: 'fire', value: `v${i}` })));
  assert.equal(res.length, 1000);
  for (const r of res) assert.equal(r.offset, -1);
  await producer.flush();
  let total = 0;
  for (let i = 0; i < 100; i++) {
    total = (await admin.listOffsets('fire', 0, 'latest')) + (await admin.listOffsets('fire', 1, 'latest'));
    if (total === 1000) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.equal(total, 1000);
});

test('acks=all and the throughput profile', async (t) => {
  const broker = await withBroker(t, [{ topic: 'all', partitions: 3 }]);
  const producer = new Producer({ bootstrap: broker.bootstrap, acks: 'all', profile: 'throughput' });
  t.after(() => producer.close());
  const res = await producer.sendBatch(Array.from({ length: 20_000 }, (_, i) => ({ topic: 'all', value: `v${i}` })));
  const counts = [0, 0, 0];
  for (const r of res) counts[r.partition]!++;
  for (const r of res) assert.ok(r.offset >= 0 && r.offset < counts[r.partition]!);
});

test('back-pressure: a bufferMemory far below the data still completes', async (t) => {
  const broker = await withBroker(t, [{ topic: 'bp', partitions: 2 }]);
  const producer = new Producer({ bootstrap: broker.bootstrap, bufferMemory: 4096, batchSize: 1024, lingerMs: 5 });
  t.after(() => producer.close());
  const value = Buffer.alloc(100, 7);
  const promises = [];
  for (let i = 0; i < 5000; i++) promises.push(producer.send({ topic: 'bp', key: `k${i % 5}`, value }));
  const res = await Promise.all(promises);
  const seen = [new Set<number>(), new Set<number>()];
  for (const r of res) seen[r.partition]!.add(r.offset);
  assert.equal(seen[0]!.size + seen[1]!.size, 5000);
});

test('an unknown topic is a SluiceError UNKNOWN_TOPIC_OR_PARTITION (no auto-creation)', async (t) => {
  const broker = await withBroker(t, []);
  const producer = new Producer({ bootstrap: broker.bootstrap, retries: 2, retryBackoffMs: 10 });
  t.after(() => producer.close());
  await assert.rejects(producer.send({ topic: 'missing', value: 'x' }), (e: unknown) => {
    assert.ok(e instanceof SluiceError, String(e));
    assert.equal(e.code, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
    return true;
  });
  await assert.rejects(producer.sendBatch([{ topic: 'missing', value: 'x' }, { topic: 'missing', value: 'y' }]), (e: unknown) => e instanceof SluiceError && e.code === ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
});
