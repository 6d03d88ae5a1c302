// The transaction coordinator on a real single broker process (SPEC §6.19-6.22, §7.6):
// InitProducerId with a transactionalId (same id, epoch + 1, fencing), AddPartitionsToTxn,
// AddOffsetsToTxn, EndTxn and their errors, the state surviving a kill -9 restart, and the
// timeout abort. Until the broker handles WriteTxnMarkers (engineer A) a decided transaction
// stays in its prepare state, retried; the end-to-end test below runs once it does.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Admin } from '../../../client/admin.ts';
import { Connection } from '../../../protocol/connection.ts';
import { ErrorCode } from '../../../protocol/errors.ts';
import { startBroker, tempDir, type BrokerProcess } from '../../helpers/broker-process.ts';
import {
  addOffsetsToTxn,
  addPartitionsToTxn,
  endTxn,
  findTxnCoordinator,
  initTxnProducer,
  offsetFetch,
  supportsWriteTxnMarkers,
  txnOffsetCommit,
  type TxnProducer,
} from '../../helpers/txn-requests.ts';
import { waitFor } from '../../cluster/harness.ts';

async function withBroker(fn: (b: BrokerProcess, conn: Connection, admin: Admin) => Promise<void>, args: string[] = [], dataDir = tempDir()): Promise<void> {
  const b = await startBroker({ dataDir, args });
  const conn = await Connection.connect(b.host, b.port);
  const admin = new Admin({ bootstrap: b.bootstrap, requestTimeoutMs: 5000 });
  try {
    await fn(b, conn, admin);
  } finally {
    conn.close();
    await admin.close().catch(() => {});
    await b.kill();
  }
}

test('InitProducerId with a transactionalId: same producer id, epoch + 1 fences the older instance; errors as SPEC says', { timeout: 60_000 }, async () => {
  const dir = tempDir();
  try {
    await withBroker(async (b, conn, admin) => {
      await admin.createTopics([{ topic: 'orders', partitions: 2, replicationFactor: 1, configs: {} }]);
      const coord = await findTxnCoordinator(conn, 'tx-a');
      assert.equal(coord.errorCode, 0);
      assert.equal(coord.port, b.port);

      const first = await initTxnProducer(conn, 'tx-a');
      assert.equal(first.errorCode, 0, first.errorMessage ?? '');
      assert.equal(first.producerEpoch, 0);
      const second = await initTxnProducer(conn, 'tx-a');
      assert.deepEqual([second.errorCode, second.producerId, second.producerEpoch], [0, first.producerId, 1]);
      const other = await initTxnProducer(conn, 'tx-b');
      assert.notEqual(other.producerId, first.producerId, 'every transactional id has its own producer id');

      const zombie: TxnProducer = { transactionalId: 'tx-a', producerId: first.producerId, producerEpoch: 0 };
      const live: TxnProducer = { transactionalId: 'tx-a', producerId: first.producerId, producerEpoch: 1 };
      assert.equal((await addPartitionsToTxn(conn, zombie, [{ topic: 'orders', partitions: [0] }])).errorCode, ErrorCode.PRODUCER_FENCED);
      assert.equal((await endTxn(conn, zombie, true)).errorCode, ErrorCode.PRODUCER_FENCED);
      assert.equal((await addPartitionsToTxn(conn, { ...live, producerId: other.producerId }, [{ topic: 'orders', partitions: [0] }])).errorCode, ErrorCode.INVALID_PRODUCER_ID_MAPPING);
      assert.equal((await addPartitionsToTxn(conn, { ...live, transactionalId: 'tx-never' }, [{ topic: 'orders', partitions: [0] }])).errorCode, ErrorCode.INVALID_PRODUCER_ID_MAPPING);
      // With the current producer given: must be the id's current one.
      assert.equal((await initTxnProducer(conn, 'tx-a', 60_000, { producerId: first.producerId, producerEpoch: 0 })).errorCode, ErrorCode.PRODUCER_FENCED);
      assert.equal((await initTxnProducer(conn, 'tx-a', 60_000, { producerId: other.producerId, producerEpoch: 1 })).errorCode, ErrorCode.INVALID_PRODUCER_ID_MAPPING);

      assert.equal((await initTxnProducer(conn, 'tx-a', 0)).errorCode, ErrorCode.INVALID_TRANSACTION_TIMEOUT);
      assert.equal((await initTxnProducer(conn, 'tx-a', 900_001)).errorCode, ErrorCode.INVALID_TRANSACTION_TIMEOUT);
      assert.equal((await initTxnProducer(conn, '')).errorCode, ErrorCode.INVALID_TXN_STATE);
      assert.equal((await initTxnProducer(conn, 'x'.repeat(250))).errorCode, ErrorCode.INVALID_TXN_STATE);

      // Per-partition errors: nothing is added.
      const bad = await addPartitionsToTxn(conn, live, [{ topic: 'orders', partitions: [0, 7] }, { topic: '__consumer_offsets', partitions: [0] }, { topic: 'nope', partitions: [0] }]);
      assert.deepEqual(bad.topics.map((t) => t.partitions.map((p) => p.errorCode)), [[0, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION], [ErrorCode.INVALID_TOPIC], [ErrorCode.UNKNOWN_TOPIC_OR_PARTITION]]);
      // Nothing was added, so there is nothing to end: an empty transaction ends at once.
      assert.equal((await endTxn(conn, live, true)).errorCode, 0);

      const added = await addPartitionsToTxn(conn, live, [{ topic: 'orders', partitions: [0, 1] }]);
      assert.equal(added.errorCode, 0, added.errorMessage ?? '');
      assert.deepEqual(added.topics, [{ topic: 'orders', partitions: [{ partition: 0, errorCode: 0 }, { partition: 1, errorCode: 0 }] }]);
      assert.equal((await addPartitionsToTxn(conn, live, [{ topic: 'orders', partitions: [1] }])).errorCode, 0, 'adding a partition again is a no-op');
      assert.equal((await addOffsetsToTxn(conn, live, '')).errorCode, ErrorCode.INVALID_GROUP_ID);

      const ended = await endTxn(conn, live, false);
      assert.equal(ended.errorCode, 0, ended.errorMessage ?? '');
      assert.equal((await endTxn(conn, live, false)).errorCode, 0, 'a repeated EndTxn (lost answer) is answered 0');
      assert.equal((await endTxn(conn, live, true)).errorCode, ErrorCode.INVALID_TXN_STATE, 'the opposite decision is refused');
    }, [], dir);

    // kill -9 and restart: the coordinator replays __transaction_state.
    await withBroker(async (_b, conn) => {
      const r = await waitFor('the coordinator loaded', async () => {
        const x = await initTxnProducer(conn, 'tx-b');
        return x.errorCode === ErrorCode.COORDINATOR_NOT_AVAILABLE ? null : x;
      });
      assert.deepEqual([r.errorCode, r.producerEpoch], [0, 1], 'tx-b keeps its producer id and its epoch goes on after a restart');
    }, [], dir);
  } finally {
    (await import('node:fs')).rmSync(dir, { recursive: true, force: true });
  }
});

test('a decided transaction: markers retried until written, then complete (needs WriteTxnMarkers for the end)', { timeout: 60_000 }, async (t) => {
  await withBroker(async (_b, conn, admin) => {
    await admin.createTopics([{ topic: 'orders', partitions: 2, replicationFactor: 1, configs: {} }]);
    const markersHandled = await supportsWriteTxnMarkers(conn);
    const init = await initTxnProducer(conn, 'tx-m');
    const p: TxnProducer = { transactionalId: 'tx-m', producerId: init.producerId, producerEpoch: init.producerEpoch };
    assert.equal((await addPartitionsToTxn(conn, p, [{ topic: 'orders', partitions: [0, 1] }])).errorCode, 0);
    assert.equal((await endTxn(conn, p, true)).errorCode, 0, 'the decision is durable: answered');
    if (!markersHandled) {
      t.diagnostic('this broker answers WriteTxnMarkers with UNKNOWN_API: checking that the transaction stays decided and is retried');
      // While the markers are not written the previous transaction is still being completed.
      for (let i = 0; i < 5; i++) {
        await new Promise((r) => setTimeout(r, 300));
        assert.equal((await addPartitionsToTxn(conn, p, [{ topic: 'orders', partitions: [0] }])).errorCode, ErrorCode.CONCURRENT_TRANSACTIONS);
        assert.equal((await initTxnProducer(conn, 'tx-m')).errorCode, ErrorCode.CONCURRENT_TRANSACTIONS);
      }
      return;
    }
    // With markers: the transaction completes and the producer goes on.
    await waitFor('the next transaction begins', async () => (await addPartitionsToTxn(conn, p, [{ topic: 'orders', partitions: [0] }])).errorCode === 0 || null, 10_000);
    const end = await admin.listOffsets('orders', 1, 'latest');
    assert.equal(end, 1, 'partition 1 holds the commit marker');
  }, ['--log-level', 'debug']);
});

test('a transaction open longer than its timeout is aborted and its producer fenced', { timeout: 60_000 }, async () => {
  await withBroker(async (_b, conn, admin) => {
    await admin.createTopics([{ topic: 'orders', partitions: 1, replicationFactor: 1, configs: {} }]);
    const init = await initTxnProducer(conn, 'tx-slow', 500);
    const p: TxnProducer = { transactionalId: 'tx-slow', producerId: init.producerId, producerEpoch: init.producerEpoch };
    assert.equal((await addPartitionsToTxn(conn, p, [{ topic: 'orders', partitions: [0] }])).errorCode, 0);
    await new Promise((r) => setTimeout(r, 1500)); // 500 ms timeout, 100 ms sweeps
    const late = await endTxn(conn, p, true);
    assert.equal(late.errorCode, ErrorCode.PRODUCER_FENCED, late.errorMessage ?? '');
    assert.equal((await addPartitionsToTxn(conn, p, [{ topic: 'orders', partitions: [0] }])).errorCode, ErrorCode.PRODUCER_FENCED);
    assert.equal((await endTxn(conn, { ...p, producerEpoch: p.producerEpoch + 1 }, true)).errorCode, ErrorCode.INVALID_TXN_STATE, 'the coordinator decided to abort');
  }, ['--transaction-sweep-interval-ms', '100']);
});

test('offsets sent to a transaction: pending (requireStable: UNSTABLE_OFFSET_COMMIT) until the commit marker, then committed', { timeout: 60_000 }, async (t) => {
  await withBroker(async (_b, conn, admin) => {
    await admin.createTopics([{ topic: 'in', partitions: 2, replicationFactor: 1, configs: {} }, { topic: 'out', partitions: 1, replicationFactor: 1, configs: {} }]);
    const markersHandled = await supportsWriteTxnMarkers(conn);
    const init = await initTxnProducer(conn, 'tx-ctp');
    const p: TxnProducer = { transactionalId: 'tx-ctp', producerId: init.producerId, producerEpoch: init.producerEpoch };
    assert.equal((await addPartitionsToTxn(conn, p, [{ topic: 'out', partitions: [0] }])).errorCode, 0);
    const added = await addOffsetsToTxn(conn, p, 'g-ctp');
    assert.equal(added.errorCode, 0, added.errorMessage ?? '');
    const sent = await txnOffsetCommit(conn, p, 'g-ctp', [{ topic: 'in', partitions: [{ partition: 0, offset: 17, metadata: null }, { partition: 5, offset: 1, metadata: null }] }]);
    assert.deepEqual(sent.topics[0]!.partitions.map((x) => x.errorCode), [0, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION]);
    const stale = await txnOffsetCommit(conn, p, 'g-ctp', [{ topic: 'in', partitions: [{ partition: 0, offset: 17, metadata: null }] }], { memberId: 'ghost', memberEpoch: 3 });
    assert.equal(stale.errorCode, ErrorCode.UNKNOWN_MEMBER_ID, 'a member that is not in the group cannot commit (KIP-447)');

    const before = await offsetFetch(conn, 'g-ctp', [{ topic: 'in', partitions: [0, 1] }], true);
    assert.deepEqual(before.topics[0]!.partitions.map((x) => [x.offset, x.errorCode]), [[-1, ErrorCode.UNSTABLE_OFFSET_COMMIT], [-1, 0]]);
    const loose = await offsetFetch(conn, 'g-ctp', [{ topic: 'in', partitions: [0] }], false);
    assert.deepEqual(loose.topics[0]!.partitions.map((x) => [x.offset, x.errorCode]), [[-1, 0]], 'not visible before the commit');

    assert.equal((await endTxn(conn, p, true)).errorCode, 0);
    if (!markersHandled) {
      t.diagnostic('no WriteTxnMarkers on this broker: the offsets stay pending');
      await new Promise((r) => setTimeout(r, 500));
      assert.equal((await offsetFetch(conn, 'g-ctp', [{ topic: 'in', partitions: [0] }], true)).topics[0]!.partitions[0]!.errorCode, ErrorCode.UNSTABLE_OFFSET_COMMIT);
      return;
    }
    const committed = await waitFor('the committed offset', async () => {
      const r = await offsetFetch(conn, 'g-ctp', [{ topic: 'in', partitions: [0] }], true);
      const x = r.topics[0]!.partitions[0]!;
      return x.errorCode === 0 ? x : null;
    }, 10_000);
    assert.equal(committed.offset, 17);
  });
});

test('a transactional id unused past its expiration is forgotten (a new producer id next time); one with an open transaction is not', { timeout: 60_000 }, async () => {
  const dir = tempDir();
  try {
    let renewed = -1;
    await withBroker(async (_b, conn, admin) => {
      await admin.createTopics([{ topic: 'orders', partitions: 1, replicationFactor: 1, configs: {} }]);
      const first = await initTxnProducer(conn, 'tx-exp');
      const open = await initTxnProducer(conn, 'tx-open', 60_000);
      const p: TxnProducer = { transactionalId: 'tx-open', producerId: open.producerId, producerEpoch: open.producerEpoch };
      assert.equal((await addPartitionsToTxn(conn, p, [{ topic: 'orders', partitions: [0] }])).errorCode, 0);
      await new Promise((r) => setTimeout(r, 1500)); // expiration 300 ms, sweeps every 100 ms
      const again = await initTxnProducer(conn, 'tx-exp');
      assert.equal(again.errorCode, 0);
      assert.notEqual(again.producerId, first.producerId, 'the expired id starts afresh');
      assert.equal(again.producerEpoch, 0);
      renewed = again.producerId;
      assert.equal((await endTxn(conn, p, false)).errorCode, 0, 'the id with an open transaction was kept');
    }, ['--transactional-id-expiration-ms', '300', '--transaction-sweep-interval-ms', '100'], dir);
    // Replay after kill -9: the tombstone and the new record, in that order.
    await withBroker(async (_b, conn) => {
      const r = await waitFor('the coordinator loaded', async () => {
        const x = await initTxnProducer(conn, 'tx-exp');
        return x.errorCode === ErrorCode.COORDINATOR_NOT_AVAILABLE ? null : x;
      });
      assert.deepEqual([r.errorCode, r.producerId, r.producerEpoch], [0, renewed, 1]);
    }, [], dir);
  } finally {
    (await import('node:fs')).rmSync(dir, { recursive: true, force: true });
  }
});
