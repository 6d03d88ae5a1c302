/** Admin against a real broker process. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Admin } from '../../client/admin.ts';
import { Producer } from '../../client/producer.ts';
import { ErrorCode, SluiceError } from '../../protocol/errors.ts';
import { startBroker } from '../helpers/broker-process.ts';

test('create / list / describe / metadata / listOffsets / delete round trip', async (t) => {
  const broker = await startBroker();
  const admin = new Admin({ bootstrap: broker.bootstrap });
  t.after(async () => {
    await admin.close();
    await broker.stop();
    broker.cleanup();
  });

  await admin.createTopics([
    { topic: 'orders', partitions: 3 },
    { topic: 'audit', partitions: 1, replicationFactor: 1, configs: { 'retention.ms': 60_000 } },
  ]);
  assert.deepEqual(await admin.listTopics(), ['audit', 'orders']);

  const md = await admin.metadata(['orders']);
  assert.equal(md.topics.length, 1);
  assert.equal(md.topics[0]!.partitions.length, 3);
  assert.ok(md.brokers.length >= 1);

  const [desc] = await admin.describeTopics(['orders']);
  assert.equal(desc!.topic, 'orders');
  assert.deepEqual(desc!.partitions.map((p) => p.partition).sort(), [0, 1, 2]);
  for (const p of desc!.partitions) assert.equal(p.logEndOffset, 0);
  const all = await admin.describeTopics(null);
  assert.deepEqual(all.map((d) => d.topic).sort(), ['audit', 'orders']);
  const audit = all.find((d) => d.topic === 'audit')!;
  assert.equal(audit.configs['retention.ms'], '60000');

  // Offsets move after producing.
  const producer = new Producer({ bootstrap: broker.bootstrap, lingerMs: 0 });
  try {
    const before = Date.now();
    await producer.sendBatch(Array.from({ length: 5 }, (_, i) => ({ topic: 'orders', partition: 1, value: `m${i}` })));
    assert.equal(await admin.listOffsets('orders', 1, 'earliest'), 0);
    assert.equal(await admin.listOffsets('orders', 1, 'latest'), 5);
    assert.equal(await admin.listOffsets('orders', 1, before - 60_000), 0);
    assert.equal(await admin.listOffsets('orders', 0, 'latest'), 0);
  } finally {
    await producer.close();
  }

  await assert.rejects(admin.createTopics([{ topic: 'orders', partitions: 1 }]), (e: unknown) => {
    assert.ok(e instanceof SluiceError);
    assert.equal(e.code, ErrorCode.TOPIC_ALREADY_EXISTS);
    assert.match(e.message, /orders/);
    return true;
  });

  await admin.deleteTopics(['orders']);
  assert.deepEqual(await admin.listTopics(), ['audit']);
  await assert.rejects(admin.describeTopics(['orders']), (e: unknown) => e instanceof SluiceError && e.code === ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
  await assert.rejects(admin.deleteTopics(['orders']), (e: unknown) => e instanceof SluiceError && e.code === ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
});

test('invalid topic requests surface the broker error codes', async (t) => {
  const broker = await startBroker();
  const admin = new Admin({ bootstrap: broker.bootstrap });
  t.after(async () => {
    await admin.close();
    await broker.stop();
    broker.cleanup();
  });
  await assert.rejects(admin.createTopics([{ topic: 'bad name!', partitions: 1 }]), (e: unknown) => e instanceof SluiceError && e.code === ErrorCode.INVALID_TOPIC);
  await assert.rejects(admin.createTopics([{ topic: 'zero', partitions: 0 }]), (e: unknown) => e instanceof SluiceError && e.code === ErrorCode.INVALID_PARTITIONS);
  await assert.rejects(admin.createTopics([{ topic: 'rf', partitions: 1, replicationFactor: 3 }]), (e: unknown) => e instanceof SluiceError && e.code === ErrorCode.INVALID_REPLICATION_FACTOR);
  assert.deepEqual(await admin.listTopics(), []);
});
