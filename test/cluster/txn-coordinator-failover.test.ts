/**
 * The transaction coordinator across kill -9 in a 3-broker etcd cluster (SPEC §6.22, §7.6):
 * the new coordinator (the new leader of the id's __transaction_state partition) replays the
 * state; a decided commit stays decided (repeating it is answered 0, the opposite refused) and
 * is completed; an open transaction is aborted with the epoch raised, which fences the old
 * producer; and the producer goes on after InitProducerId with the same producer id.
 * Completion needs WriteTxnMarkers on the partition leaders (engineer A): without it the
 * checks that need the markers written are reported as skipped in a diagnostic.
 */
import { strict as assert } from 'node:assert';
import { test, type TestContext } from 'node:test';
import { Connection } from '../../protocol/connection.ts';
import { ErrorCode } from '../../protocol/errors.ts';
import { addPartitionsToTxn, endTxn, findTxnCoordinator, initTxnProducer, supportsWriteTxnMarkers, type TxnProducer } from '../helpers/txn-requests.ts';
import { createTopic, waitFor, withCluster, type Harness } from './harness.ts';
import { txnStatePartitionFor } from '../../server/txn/transaction-log.ts';

const TOPIC = 'orders';

/** A connection to the transactional id's current coordinator, found through any live broker. */
async function coordinator(h: Harness, id: string, notNode = -1): Promise<{ nodeId: number; conn: Connection }> {
  return waitFor(`the coordinator of ${id}`, async () => {
    for (const bid of h.liveIds()) {
      const b = h.cluster.brokers.get(bid)!;
      const c = await Connection.connect(b.host, b.port, { requestTimeoutMs: 5000 });
      try {
        const r = await findTxnCoordinator(c, id);
        if (r.errorCode !== 0 || r.nodeId === notNode) continue;
        const conn = await Connection.connect(r.host, r.port, { requestTimeoutMs: 5000 });
        // Loaded yet? InitProducerId-free probe: an EndTxn for an unknown producer says NOT_COORDINATOR / COORDINATOR_NOT_AVAILABLE until then.
        const probe = await endTxn(conn, { transactionalId: id, producerId: -5, producerEpoch: 0 }, false);
        if (probe.errorCode === ErrorCode.NOT_COORDINATOR || probe.errorCode === ErrorCode.COORDINATOR_NOT_AVAILABLE) {
          conn.close();
          continue;
        }
        return { nodeId: r.nodeId, conn };
      } catch {
        // a broker that is going away
      } finally {
        c.close();
      }
    }
    return null;
  }, 30_000, 200);
}

async function setup(t: TestContext, h: Harness, id: string): Promise<{ nodeId: number; conn: Connection; p: TxnProducer; markers: boolean }> {
  await createTopic(h.admin(), TOPIC, 3, 3, { 'min.insync.replicas': 2 });
  const { nodeId, conn } = await coordinator(h, id);
  const init = await initTxnProducer(conn, id, 60_000);
  assert.equal(init.errorCode, 0, init.errorMessage ?? '');
  const p: TxnProducer = { transactionalId: id, producerId: init.producerId, producerEpoch: init.producerEpoch };
  assert.equal((await addPartitionsToTxn(conn, p, [{ topic: TOPIC, partitions: [0, 1, 2] }])).errorCode, 0);
  const markers = await supportsWriteTxnMarkers(conn);
  if (!markers) t.diagnostic('the brokers answer WriteTxnMarkers with UNKNOWN_API: the checks that need markers written are skipped');
  return { nodeId, conn, p, markers };
}

test('a commit answered just before the coordinator is killed stays decided and is completed by the next one', { timeout: 120_000 }, async (t) => {
  await withCluster(t, { brokers: 3 }, async (h) => {
    const id = 'tx-commit-failover';
    const { nodeId, conn, p, markers } = await setup(t, h, id);
    // Latency of durable coordinator writes (fsync + RF 3 ISR): AddPartitionsToTxn that adds nothing new costs no write.
    const lat: number[] = [];
    // Ids of the same __transaction_state partition, so the same coordinator answers.
    const sameCoordinator = Array.from({ length: 2000 }, (_, i) => `${id}-lat-${i}`).filter((x) => txnStatePartitionFor(x) === txnStatePartitionFor(id)).slice(0, 10);
    for (const other of sameCoordinator) {
      const s = performance.now();
      assert.equal((await initTxnProducer(conn, other)).errorCode, 0);
      lat.push(performance.now() - s);
    }
    lat.sort((a, b) => a - b);
    t.diagnostic(`InitProducerId with a transactionalId (one durable write, RF 3): median ${lat[5]!.toFixed(1)} ms, max ${lat[9]!.toFixed(1)} ms`);
    const s0 = performance.now();
    assert.equal((await endTxn(conn, p, true)).errorCode, 0);
    t.diagnostic(`EndTxn (prepare-commit durable, RF 3): ${(performance.now() - s0).toFixed(1)} ms`);
    conn.close();
    await h.kill(nodeId);
    const next = await coordinator(h, id, nodeId);
    t.diagnostic(`coordinator ${nodeId} killed; ${next.nodeId} took over`);
    try {
      assert.equal((await endTxn(next.conn, p, true)).errorCode, 0, 'the same decision, repeated, is answered 0');
      assert.equal((await endTxn(next.conn, p, false)).errorCode, ErrorCode.INVALID_TXN_STATE, 'the decision survived the coordinator');
      if (!markers) {
        assert.equal((await initTxnProducer(next.conn, id)).errorCode, ErrorCode.CONCURRENT_TRANSACTIONS, 'the commit is being completed');
        return;
      }
      const again = await waitFor('InitProducerId after completion', async () => {
        const r = await initTxnProducer(next.conn, id);
        return r.errorCode === 0 ? r : null;
      }, 20_000, 200);
      assert.deepEqual([again.producerId, again.producerEpoch], [p.producerId, p.producerEpoch + 1]);
      for (let partition = 0; partition < 3; partition++) assert.equal(await h.admin().listOffsets(TOPIC, partition, 'latest'), 1, `partition ${partition} holds the commit marker`);
    } finally {
      next.conn.close();
    }
  });
});

test('an open transaction whose coordinator is killed is aborted by the next one; the old producer is fenced, a new instance goes on', { timeout: 120_000 }, async (t) => {
  await withCluster(t, { brokers: 3 }, async (h) => {
    const id = 'tx-open-failover';
    const { nodeId, conn, p, markers } = await setup(t, h, id);
    conn.close();
    await h.kill(nodeId);
    const next = await coordinator(h, id, nodeId);
    t.diagnostic(`coordinator ${nodeId} killed; ${next.nodeId} took over`);
    try {
      // A new instance: the open transaction is aborted first (CONCURRENT_TRANSACTIONS meanwhile).
      const first = await initTxnProducer(next.conn, id);
      assert.equal(first.errorCode, ErrorCode.CONCURRENT_TRANSACTIONS, first.errorMessage ?? '');
      assert.equal((await addPartitionsToTxn(next.conn, p, [{ topic: TOPIC, partitions: [0] }])).errorCode, ErrorCode.PRODUCER_FENCED, 'the abort raised the epoch: the old instance is fenced');
      assert.equal((await endTxn(next.conn, p, true)).errorCode, ErrorCode.PRODUCER_FENCED);
      if (!markers) return;
      const again = await waitFor('InitProducerId after the abort', async () => {
        const r = await initTxnProducer(next.conn, id);
        return r.errorCode === 0 ? r : null;
      }, 20_000, 200);
      assert.equal(again.producerId, p.producerId);
      assert.equal(again.producerEpoch, p.producerEpoch + 2, 'one bump for the abort, one for the new instance');
      const q: TxnProducer = { ...p, producerEpoch: again.producerEpoch };
      assert.equal((await addPartitionsToTxn(next.conn, q, [{ topic: TOPIC, partitions: [1] }])).errorCode, 0);
      assert.equal((await endTxn(next.conn, q, true)).errorCode, 0);
    } finally {
      next.conn.close();
    }
  });
});
