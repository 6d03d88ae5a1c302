/**
 * The transactional producer against a real single broker: once an AddPartitionsToTxn has
 * succeeded on its connection, a transaction's first batches of a partition follow the
 * AddPartitionsToTxn that adds it on that connection before its answer (the broker holds them
 * until it answers, SPEC §6.6), instead of a round trip later. Watched with a spy on the
 * connection (every request still goes to the real broker); every transaction commits, and a
 * read_committed consumer sees every record.
 */
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { Admin } from '../../client/admin.ts';
import { Consumer } from '../../client/consumer.ts';
import { Producer } from '../../client/producer.ts';
import { ApiKey } from '../../protocol/api-keys.ts';
import { Connection } from '../../protocol/connection.ts';
import { startBroker } from '../helpers/broker-process.ts';

const TRANSACTIONS = 4;
const RECORDS = 20;

test('a transaction\'s first batches follow its AddPartitionsToTxn before the answer (single broker); every record committed', { timeout: 60_000 }, async (t) => {
  const b = await startBroker();
  t.after(async () => {
    await b.stop();
    b.cleanup();
  });
  const admin = new Admin({ bootstrap: b.bootstrap });
  await admin.createTopics([{ topic: 'piped', partitions: 2, replicationFactor: 1, configs: {} }]);
  await admin.close();

  // The spy: for each AddPartitionsToTxn, whether a Produce was written before its answer came.
  const adds: Array<{ answered: boolean; produceBehind: boolean }> = [];
  const send = Connection.prototype.send;
  t.after(() => {
    Connection.prototype.send = send;
  });
  Connection.prototype.send = function <T>(this: Connection, apiKey: number, ...rest: unknown[]) {
    if (apiKey === ApiKey.PRODUCE) for (const a of adds) if (!a.answered) a.produceBehind = true;
    const sent = (send as (...args: unknown[]) => Promise<T>).call(this, apiKey, ...rest);
    if (apiKey === ApiKey.ADD_PARTITIONS_TO_TXN) {
      const a = { answered: false, produceBehind: false };
      adds.push(a);
      void sent.then(() => (a.answered = true), () => (a.answered = true));
    }
    return sent;
  } as typeof send;

  const p = new Producer({ bootstrap: b.bootstrap, transactionalId: 'tx-piped' });
  try {
    await p.initTransactions();
    for (let i = 0; i < TRANSACTIONS; i++) {
      // Not awaited inside: the commit seals the batches at once (awaited, they would linger).
      let sent: Promise<unknown> = Promise.resolve();
      await p.transaction(async (tx) => {
        sent = tx.sendBatch(Array.from({ length: RECORDS }, (_, j) => ({ topic: 'piped', partition: j % 2, value: `${i}-${j}` })));
      });
      await sent;
    }
  } finally {
    await p.close();
  }
  assert.equal(adds.length, TRANSACTIONS, 'one AddPartitionsToTxn per transaction');
  assert.equal(adds[0]!.produceBehind, false, 'the first one on a connection is awaited');
  assert.deepEqual(adds.slice(1).map((a) => a.produceBehind), new Array(TRANSACTIONS - 1).fill(true), 'later ones have the batches right behind them');

  const c = new Consumer({ bootstrap: b.bootstrap, isolation: 'read_committed' });
  try {
    await c.assign([{ topic: 'piped', partition: 0, offset: 0 }, { topic: 'piped', partition: 1, offset: 0 }]);
    const seen = new Set<string>();
    const deadline = Date.now() + 10_000;
    while (seen.size < TRANSACTIONS * RECORDS && Date.now() < deadline) for (const m of await c.poll(500)) seen.add(String(m.value));
    assert.equal(seen.size, TRANSACTIONS * RECORDS, 'every record of every transaction is committed');
  } finally {
    await c.close();
  }
});
