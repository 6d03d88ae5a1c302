// What a transaction costs its coordinator's `__transaction_state` partition in fsyncs: two
// (AddPartitionsToTxn's record, EndTxn's decision), not three. The complete-* record written
// after the markers is appended without a flush cycle of its own (its loss is harmless, and
// the next record's fsync covers it); with its own cycle, the next transaction's
// AddPartitionsToTxn waited behind it for a second fsync (issue 9, transactional throughput).
// An in-process broker on a real data directory, so the test can read the partition's count.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { Admin } from '../../../client/admin.ts';
import { Producer } from '../../../client/producer.ts';
import { Broker } from '../../../server/broker.ts';
import { defaultBrokerConfig } from '../../../server/config/broker-config.ts';
import type { TopicManager } from '../../../server/partition/topic-manager.ts';
import { TXN_STATE_TOPIC, txnStatePartitionFor } from '../../../server/txn/transaction-log.ts';
import { tempDir } from '../../helpers/broker-process.ts';

const TRANSACTIONS = 20;

test('a committed transaction costs its __transaction_state partition two fsyncs (AddPartitionsToTxn, EndTxn), not three', { timeout: 60_000 }, async () => {
  const dataDir = tempDir();
  const broker = new Broker(defaultBrokerConfig({ dataDir, host: '127.0.0.1', port: 0 }));
  const port = await broker.start();
  const bootstrap = `127.0.0.1:${port}`;
  const admin = new Admin({ bootstrap, requestTimeoutMs: 5000 });
  const transactionalId = 'fsync-count';
  const producer = new Producer({ bootstrap, transactionalId });
  try {
    await admin.createTopics([{ topic: 'fsyncs', partitions: 2, replicationFactor: 1, configs: {} }]);
    await producer.initTransactions();
    const commitOne = (i: number) => producer.transaction(async (tx) => {
      await tx.sendBatch([{ topic: 'fsyncs', partition: 0, value: Buffer.from(`a${i}`) }, { topic: 'fsyncs', partition: 1, value: Buffer.from(`b${i}`) }]);
    });
    await commitOne(-1); // the topic's metadata and the coordinator's connection, before counting
    // Internal to the broker: the partition log's fsync counter is what this test is about.
    const topics = (broker as unknown as { topics: TopicManager }).topics;
    const log = topics.partition(TXN_STATE_TOPIC, txnStatePartitionFor(transactionalId));
    assert.ok(log, 'the coordinator leads the transactional id\'s partition');
    const before = log.fsyncCount;
    for (let i = 0; i < TRANSACTIONS; i++) await commitOne(i);
    const fsyncs = log.fsyncCount - before;
    // Two per transaction; a little slack for a periodic flush. Three each (60) without the change.
    assert.ok(fsyncs <= 2 * TRANSACTIONS + 2, `${fsyncs} fsyncs for ${TRANSACTIONS} transactions`);
    assert.ok(fsyncs >= TRANSACTIONS, `${fsyncs} fsyncs for ${TRANSACTIONS} transactions: every decision is made durable`);
  } finally {
    await producer.close().catch(() => {});
    await admin.close().catch(() => {});
    await broker.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
});
