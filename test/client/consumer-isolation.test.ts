/**
 * Consumer isolation against a real broker with real transactions (SPEC §6.7, §7.7): aborted
 * records never reach read_committed and do reach read_uncommitted; a read_committed consumer
 * stops at the last stable offset while a transaction is open and gets its records once it
 * commits; transaction markers reach no application.
 * Transactions come from the transactional producer (producer.transaction(fn) commits when
 * fn resolves and aborts when it throws).
 */
import { strict as assert } from 'node:assert';
import { after, before, test } from 'node:test';
import { Admin } from '../../client/admin.ts';
import { Consumer, type IsolationLevel } from '../../client/consumer.ts';
import { Producer } from '../../client/producer.ts';
import { startBroker, type BrokerProcess } from '../helpers/broker-process.ts';

let broker: BrokerProcess;
let admin: Admin;

before(async () => {
  broker = await startBroker();
  admin = new Admin({ bootstrap: broker.bootstrap });
});

after(async () => {
  await admin?.close();
  await broker?.stop();
  broker?.cleanup();
});

function txProducer(id: string): Producer {
  return new Producer({ bootstrap: broker.bootstrap, transactionalId: id, delivery: 'exactly-once' });
}

/** Everything of topic/0 from the start up to `end` (bounded), as values. */
async function readAll(topic: string, isolation: IsolationLevel, end: number): Promise<string[]> {
  const c = new Consumer({ bootstrap: broker.bootstrap, isolation, maxWaitMs: 100 });
  try {
    await c.assign([{ topic, partition: 0, offset: 'earliest' }]);
    const out: string[] = [];
    const deadline = Date.now() + 10_000;
    while (c.position(topic, 0) < end) {
      if (Date.now() > deadline) throw new Error(`${isolation}: position ${c.position(topic, 0)} did not reach ${end}`);
      for (const m of await c.poll(100)) out.push(m.value!.toString());
    }
    return out;
  } finally {
    await c.close();
  }
}

test('aborted records reach read_uncommitted only; markers reach nobody; an open transaction holds read_committed at the LSO', async () => {
  await admin.createTopics([{ topic: 'iso', partitions: 1 }]);
  const tx = txProducer('iso-tx');
  const plain = new Producer({ bootstrap: broker.bootstrap, acks: 'all' });
  try {
    await assert.rejects(
      tx.transaction(async (t) => {
        await t.send({ topic: 'iso', partition: 0, value: 'aborted-1' });
        await t.send({ topic: 'iso', partition: 0, value: 'aborted-2' });
        throw new Error('abort this one');
      }),
      /abort this one/,
    );
    await tx.transaction(async (t) => {
      await t.send({ topic: 'iso', partition: 0, value: 'committed' });
    });
    await plain.send({ topic: 'iso', partition: 0, value: 'plain' });
    const end = (await admin.listOffsets('iso', 0, 'latest')) as number;
    assert.deepEqual(await readAll('iso', 'read_committed', end), ['committed', 'plain']);
    assert.deepEqual(await readAll('iso', 'read_uncommitted', end), ['aborted-1', 'aborted-2', 'committed', 'plain']);

    // An open transaction: read_committed stops before it, even for plain records after it.
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let sent!: () => void;
    const inside = new Promise<void>((r) => (sent = r));
    const open = tx.transaction(async (t) => {
      await t.send({ topic: 'iso', partition: 0, value: 'late' });
      sent();
      await held;
    });
    await inside;
    await plain.send({ topic: 'iso', partition: 0, value: 'after-open' });
    const c = new Consumer({ bootstrap: broker.bootstrap, isolation: 'read_committed', maxWaitMs: 100 });
    try {
      await c.assign([{ topic: 'iso', partition: 0 }]);
      assert.equal(c.position('iso', 0), end, "latest under read_committed is the LSO: the open transaction's first offset");
      assert.deepEqual(await c.poll(500), [], 'nothing at or after the LSO');
      release();
      await open;
      const got: string[] = [];
      const deadline = Date.now() + 10_000;
      while (got.length < 2 && Date.now() < deadline) for (const m of await c.poll(100)) got.push(m.value!.toString());
      assert.deepEqual(got, ['late', 'after-open']);
    } finally {
      release();
      await c.close();
    }
  } finally {
    await plain.close();
    await tx.close();
  }
});
