/**
 * The idempotent and transactional producer against a real broker process. Needs the broker
 * side of issue 9 (InitProducerId, AddPartitionsToTxn, EndTxn, producer state and dedup,
 * transaction markers): on a broker without them these tests fail with UNKNOWN_API, which
 * is the point of having them.
 *  - every stored batch carries the producer's id, epoch 0 and consecutive sequences;
 *  - a committed and an aborted transaction: both transactional batches are stored
 *    (read_uncommitted sees both), read_committed sees only the committed record.
 */
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { Admin } from '../../client/admin.ts';
import { Consumer } from '../../client/consumer.ts';
import type { RawBatch } from '../../client/fetch-engine.ts';
import { Producer } from '../../client/producer.ts';
import { baseSequenceAt, isTransactionalAt, producerEpochAt, producerIdAt } from '../../protocol/record-batch.ts';
import { startBroker, type BrokerProcess } from '../helpers/broker-process.ts';

async function broker(t: { after: (fn: () => Promise<void>) => void }): Promise<BrokerProcess> {
  const b = await startBroker();
  t.after(async () => {
    await b.stop();
    b.cleanup();
  });
  return b;
}

/** Every batch of topic/partition from offset 0 up to `endOffset` (control batches included). */
async function readBatches(bootstrap: string, topic: string, partition: number, endOffset: number): Promise<RawBatch[]> {
  const c = new Consumer({ bootstrap });
  const out: RawBatch[] = [];
  try {
    await c.assign([{ topic, partition, offset: 0 }]);
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline && (out.at(-1)?.lastOffset ?? -1) + 1 < endOffset) out.push(...(await c.pollBatches(500)));
  } finally {
    await c.close();
  }
  return out;
}

test('idempotent producer on a real broker: batches carry id, epoch and consecutive sequences', async (t) => {
  const b = await broker(t);
  const admin = new Admin({ bootstrap: b.bootstrap });
  await admin.createTopics([{ topic: 'idem', partitions: 1 }]);
  await admin.close();
  const p = new Producer({ bootstrap: b.bootstrap, idempotent: true, lingerMs: 0 });
  try {
    for (let round = 0; round < 5; round++) await Promise.all(Array.from({ length: 10 }, (_, i) => p.send({ topic: 'idem', value: `r${round}-${i}` })));
  } finally {
    await p.close();
  }
  const batches = await readBatches(b.bootstrap, 'idem', 0, 50);
  let seq = 0;
  for (const x of batches) {
    assert.ok(producerIdAt(x.bytes, 0) >= 0);
    assert.equal(producerEpochAt(x.bytes, 0), 0);
    assert.equal(baseSequenceAt(x.bytes, 0), seq);
    seq += x.recordCount;
  }
  assert.equal(seq, 50);
});

test('transactions on a real broker: both transactions stored as transactional batches, read_committed sees only the committed one', async (t) => {
  const b = await broker(t);
  const admin = new Admin({ bootstrap: b.bootstrap });
  await admin.createTopics([{ topic: 'txn', partitions: 1 }]);
  await admin.close();
  const p = new Producer({ bootstrap: b.bootstrap, transactionalId: 'eos-c-test', lingerMs: 0 });
  try {
    await p.transaction(async (tx) => {
      await tx.send({ topic: 'txn', value: 'committed' });
    });
    await assert.rejects(p.transaction(async (tx) => {
      await tx.send({ topic: 'txn', value: 'aborted' });
      throw new Error('abort me');
    }), /abort me/);
  } finally {
    await p.close();
  }
  const raw = await readBatches(b.bootstrap, 'txn', 0, 3);
  assert.deepEqual(raw.map((x) => isTransactionalAt(x.bytes, 0)), [true, true]);
  assert.deepEqual(await readValues(b.bootstrap, 'txn', 'read_uncommitted'), ['committed', 'aborted']);
  assert.deepEqual(await readValues(b.bootstrap, 'txn', 'read_committed'), ['committed']);
});

/** The values of topic/0 from offset 0 that a consumer with `isolation` gets within 1.5 s. */
async function readValues(bootstrap: string, topic: string, isolation: 'read_committed' | 'read_uncommitted'): Promise<string[]> {
  const c = new Consumer({ bootstrap, isolation });
  const out: string[] = [];
  try {
    await c.assign([{ topic, partition: 0, offset: 0 }]);
    const deadline = Date.now() + 1500;
    while (Date.now() < deadline) for (const m of await c.poll(200)) out.push(m.value!.toString());
  } finally {
    await c.close();
  }
  return out;
}

test('an abort that drops unsent records bumps the epoch at the coordinator; the next transaction commits', async (t) => {
  const b = await broker(t);
  const admin = new Admin({ bootstrap: b.bootstrap });
  await admin.createTopics([{ topic: 'txn2', partitions: 1 }]);
  await admin.close();
  // lingerMs 60000: a record stays in its open batch until a flush, a commit or an abort.
  const p = new Producer({ bootstrap: b.bootstrap, transactionalId: 'eos-c-bump', lingerMs: 60_000 });
  try {
    await p.begin();
    const sent = p.send({ topic: 'txn2', value: 'sent-then-aborted' });
    await p.flush();
    await sent;
    const unsent = p.send({ topic: 'txn2', value: 'never-sent' }).then(() => 'delivered', (e: Error) => e.name);
    await p.abort();
    assert.equal(await unsent, 'TransactionAbortableError');
    await p.transaction(async (tx) => {
      const m = tx.send({ topic: 'txn2', value: 'committed' });
      await p.flush();
      await m;
    });
  } finally {
    await p.close();
  }
  assert.deepEqual(await readValues(b.bootstrap, 'txn2', 'read_committed'), ['committed']);
  const raw = await readBatches(b.bootstrap, 'txn2', 0, 3);
  assert.deepEqual(raw.map((x) => [producerEpochAt(x.bytes, 0), baseSequenceAt(x.bytes, 0)]), [[0, 0], [1, 0]]);
});
