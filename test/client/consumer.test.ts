/** Consumer against a real broker: bulk read-back, seek, long polling. */
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { Admin } from '../../client/admin.ts';
import { Consumer, type Message } from '../../client/consumer.ts';
import { Producer } from '../../client/producer.ts';
import { startBroker, type BrokerProcess } from '../helpers/broker-process.ts';

async function broker(t: { after: (fn: () => Promise<void>) => void }): Promise<BrokerProcess> {
  const b = await startBroker();
  t.after(async () => {
    await b.stop();
    b.cleanup();
  });
  return b;
}

async function createTopic(bootstrap: string, topic: string, partitions: number): Promise<void> {
  const admin = new Admin({ bootstrap });
  try {
    await admin.createTopics([{ topic, partitions }]);
  } finally {
    await admin.close();
  }
}

test('reads back 100k messages across 4 partitions exactly once, in order per partition', async (t) => {
  const b = await broker(t);
  const partitions = 4;
  const total = 100_000;
  await createTopic(b.bootstrap, 'bulk', partitions);
  const producer = new Producer({ bootstrap: b.bootstrap, profile: 'throughput' });
  const chunk = [];
  const sends: Array<Promise<unknown>> = [];
  for (let i = 0; i < total; i++) {
    const p = i % partitions;
    chunk.push({ topic: 'bulk', partition: p, key: `k${i}`, value: `${p}:${Math.floor(i / partitions)}` });
    if (chunk.length === 1000) sends.push(producer.sendBatch(chunk.splice(0)));
  }
  await Promise.all(sends);
  await producer.close();

  // Small fetch bounds so the read takes many pipelined Fetch round trips.
  const consumer = new Consumer({ bootstrap: b.bootstrap, maxWaitMs: 100, partitionMaxBytes: 64 * 1024, maxBytes: 256 * 1024 });
  try {
    await consumer.assign(Array.from({ length: partitions }, (_, partition) => ({ topic: 'bulk', partition, offset: 'earliest' as const })));
    const next = new Array<number>(partitions).fill(0);
    let seen = 0;
    const deadline = Date.now() + 60_000;
    while (seen < total) {
      assert.ok(Date.now() < deadline, `only ${seen} of ${total} messages within 60 s`);
      for (const m of await consumer.poll()) {
        assert.equal(m.topic, 'bulk');
        assert.equal(m.offset, next[m.partition], `partition ${m.partition}: offset ${m.offset}, expected ${next[m.partition]}`);
        assert.equal(m.value!.toString(), `${m.partition}:${m.offset}`);
        assert.equal(m.key!.toString(), `k${m.offset * partitions + m.partition}`);
        assert.ok(m.timestamp > 0);
        next[m.partition]!++;
        seen++;
      }
    }
    assert.deepEqual(next, new Array(partitions).fill(total / partitions));
    // Nothing beyond: the next poll times out empty.
    assert.deepEqual(await consumer.poll(300), []);
    for (let p = 0; p < partitions; p++) assert.equal(consumer.highWatermark('bulk', p), total / partitions);
  } finally {
    await consumer.close();
  }
});

test('seek moves the position, back and forth, and to earliest/latest', async (t) => {
  const b = await broker(t);
  await createTopic(b.bootstrap, 'seek', 1);
  const producer = new Producer({ bootstrap: b.bootstrap });
  await producer.sendBatch(Array.from({ length: 100 }, (_, i) => ({ topic: 'seek', partition: 0, value: `v${i}` })));
  await producer.close();
  const consumer = new Consumer({ bootstrap: b.bootstrap, maxWaitMs: 100 });
  const take = async (n: number): Promise<Message[]> => {
    const out: Message[] = [];
    while (out.length < n) out.push(...(await consumer.poll()));
    return out;
  };
  try {
    await consumer.assign([{ topic: 'seek', partition: 0, offset: 50 }]);
    assert.equal((await take(1))[0]!.offset, 50);
    consumer.seek('seek', 0, 10);
    const batch = await take(5);
    assert.deepEqual(batch.slice(0, 5).map((m) => m.value!.toString()), ['v10', 'v11', 'v12', 'v13', 'v14']);
    consumer.seek('seek', 0, 97);
    assert.deepEqual((await take(3)).map((m) => m.offset), [97, 98, 99]);
    consumer.seek('seek', 0, 'earliest');
    assert.equal((await take(1))[0]!.offset, 0);
    consumer.seek('seek', 0, 'latest');
    assert.deepEqual(await consumer.poll(300), []);
    assert.equal(consumer.position('seek', 0), 100);
  } finally {
    await consumer.close();
  }
});

test('a long poll returns soon after a message is produced', async (t) => {
  const b = await broker(t);
  await createTopic(b.bootstrap, 'lp', 1);
  const consumer = new Consumer({ bootstrap: b.bootstrap, maxWaitMs: 5000 });
  const producer = new Producer({ bootstrap: b.bootstrap, profile: 'latency' });
  try {
    await consumer.assign([{ topic: 'lp', partition: 0 }]); // latest: nothing there yet
    await producer.cluster.topic('lp');
    const started = Date.now();
    setTimeout(() => void producer.send({ topic: 'lp', value: 'wake' }), 300);
    let got: Message[] = [];
    while (got.length === 0 && Date.now() - started < 5000) got = await consumer.poll(5000);
    const elapsed = Date.now() - started;
    assert.equal(got.length, 1);
    assert.equal(got[0]!.value!.toString(), 'wake');
    assert.ok(elapsed < 4000, `poll returned after ${elapsed} ms`);
  } finally {
    await producer.close();
    await consumer.close();
  }
});
