// A transactional batch checked against its transaction (SPEC §6.6), on a real single broker:
// a batch that would begin a transaction on a partition never added with AddPartitionsToTxn
// (or from a producer id no transactional id has, or after the transaction ended) used to be
// appended, and then no coordinator ever wrote that partition's marker: its last stable offset
// stayed at the batch for good and read_committed consumers saw nothing after it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Admin } from '../../../client/admin.ts';
import { ApiKey } from '../../../protocol/api-keys.ts';
import type { FetchResponse, ProduceResponse } from '../../../protocol/apis/index.ts';
import type { WriteTxnMarkersResponse } from '../../../protocol/apis/write-txn-markers.ts';
import { Connection } from '../../../protocol/connection.ts';
import { ErrorCode } from '../../../protocol/errors.ts';
import { buildBatch } from '../../../protocol/record-batch.ts';
import { startBroker, tempDir } from '../../helpers/broker-process.ts';
import { addPartitionsToTxn, endTxn, initTxnProducer, type TxnProducer } from '../../helpers/txn-requests.ts';

const enc = new TextEncoder();

async function produceTx(c: Connection, partition: number, producerId: number, producerEpoch: number, baseSequence: number): Promise<{ errorCode: number; errorMessage: string | null }> {
  const batch = buildBatch([{ value: enc.encode(`${producerId}-${baseSequence}`) }], Date.now(), { producerId, producerEpoch, baseSequence, transactional: true });
  const r = await c.send<ProduceResponse>(ApiKey.PRODUCE, { acks: -1, timeoutMs: 5000, topics: [{ topic: 'out', partitions: [{ partition, recordsBytes: batch.length }] }] }, [batch]);
  return r.control.topics[0]!.partitions[0]!;
}

async function stableGap(c: Connection, partition: number): Promise<number> {
  const r = await c.send<FetchResponse>(ApiKey.FETCH, { isolationLevel: 1, maxWaitMs: 0, minBytes: 0, maxBytes: 1 << 20, topics: [{ topic: 'out', partitions: [{ partition, fetchOffset: 0, partitionMaxBytes: 1 << 20 }] }] });
  const p = r.control.topics[0]!.partitions[0]!;
  assert.equal(p.errorCode, 0);
  return p.highWatermark - p.lastStableOffset;
}

test('a transactional batch to a partition not in the transaction, from an unknown producer id, a stale epoch or after EndTxn is refused; the LSO never sticks', { timeout: 60_000 }, async () => {
  const b = await startBroker({ dataDir: tempDir() });
  const conn = await Connection.connect(b.host, b.port);
  const admin = new Admin({ bootstrap: b.bootstrap, requestTimeoutMs: 5000 });
  try {
    await admin.createTopics([{ topic: 'out', partitions: 2, replicationFactor: 1, configs: {} }]);
    const init = await initTxnProducer(conn, 'tx-p');
    assert.equal(init.errorCode, 0, init.errorMessage ?? '');
    const p: TxnProducer = { transactionalId: 'tx-p', producerId: init.producerId, producerEpoch: init.producerEpoch };

    // Before AddPartitionsToTxn: refused, nothing open on the partition.
    const early = await produceTx(conn, 0, p.producerId, p.producerEpoch, 0);
    assert.equal(early.errorCode, ErrorCode.INVALID_TXN_STATE, early.errorMessage ?? '');
    assert.equal((await addPartitionsToTxn(conn, p, [{ topic: 'out', partitions: [0] }])).errorCode, 0);
    const notAdded = await produceTx(conn, 1, p.producerId, p.producerEpoch, 0);
    assert.equal(notAdded.errorCode, ErrorCode.INVALID_TXN_STATE, notAdded.errorMessage ?? '');
    const stranger = await produceTx(conn, 1, p.producerId + 1000, 0, 0);
    assert.equal(stranger.errorCode, ErrorCode.INVALID_TXN_STATE, stranger.errorMessage ?? '');
    const stale = await produceTx(conn, 0, p.producerId, p.producerEpoch + 1, 0);
    assert.equal(stale.errorCode, ErrorCode.INVALID_PRODUCER_EPOCH, stale.errorMessage ?? '');
    assert.equal(await stableGap(conn, 1), 0, 'nothing open on the partition the transaction does not hold');

    // The added partition: accepted, open until the commit marker.
    const ok = await produceTx(conn, 0, p.producerId, p.producerEpoch, 0);
    assert.equal(ok.errorCode, 0, ok.errorMessage ?? '');
    assert.equal(await stableGap(conn, 0), 1, 'the batch is open');
    assert.equal((await endTxn(conn, p, true)).errorCode, 0);
    const deadline = Date.now() + 10_000;
    while ((await stableGap(conn, 0)) !== 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.equal(await stableGap(conn, 0), 0, 'the commit marker closed it');

    // After EndTxn: a late batch would open a transaction no marker ends; refused.
    const late = await produceTx(conn, 0, p.producerId, p.producerEpoch, 1);
    assert.equal(late.errorCode, ErrorCode.INVALID_TXN_STATE, late.errorMessage ?? '');
    assert.equal(await stableGap(conn, 0), 0);
  } finally {
    conn.close();
    await admin.close().catch(() => {});
    await b.kill();
  }
});

test('WriteTxnMarkers with a coordinatorEpoch above every __transaction_state leader epoch is refused: it would fence the real coordinator on the partition for good', { timeout: 60_000 }, async () => {
  const b = await startBroker({ dataDir: tempDir() });
  const conn = await Connection.connect(b.host, b.port);
  const admin = new Admin({ bootstrap: b.bootstrap, requestTimeoutMs: 5000 });
  try {
    await admin.createTopics([{ topic: 'out', partitions: 1, replicationFactor: 1, configs: {} }]);
    const init = await initTxnProducer(conn, 'tx-m');
    const p: TxnProducer = { transactionalId: 'tx-m', producerId: init.producerId, producerEpoch: init.producerEpoch };
    assert.equal((await addPartitionsToTxn(conn, p, [{ topic: 'out', partitions: [0] }])).errorCode, 0);
    assert.equal((await produceTx(conn, 0, p.producerId, p.producerEpoch, 0)).errorCode, 0);
    const forged = await conn.send<WriteTxnMarkersResponse>(ApiKey.WRITE_TXN_MARKERS, { markers: [{ producerId: p.producerId, producerEpoch: p.producerEpoch, committed: true, coordinatorEpoch: 0x7fff_ffff, topics: [{ topic: 'out', partitions: [0] }] }] });
    assert.equal(forged.control.markers[0]!.topics[0]!.partitions[0]!.errorCode, ErrorCode.MALFORMED_REQUEST);
    assert.equal(await stableGap(conn, 0), 1, 'still open: the forged marker was not appended');

    // The coordinator's own markers still go through: this transaction and the next one end.
    for (let seq = 0; seq < 2; seq++) {
      if (seq > 0) {
        assert.equal((await addPartitionsToTxn(conn, p, [{ topic: 'out', partitions: [0] }])).errorCode, 0);
        assert.equal((await produceTx(conn, 0, p.producerId, p.producerEpoch, seq)).errorCode, 0);
      }
      assert.equal((await endTxn(conn, p, true)).errorCode, 0);
      const deadline = Date.now() + 10_000;
      while ((await stableGap(conn, 0)) !== 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      assert.equal(await stableGap(conn, 0), 0, `transaction ${seq} ended by its coordinator's marker`);
    }
  } finally {
    conn.close();
    await admin.close().catch(() => {});
    await b.kill();
  }
});
