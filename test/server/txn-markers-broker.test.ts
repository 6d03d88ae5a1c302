// Transactions on a partition through a real broker process and TCP: transactional produce,
// WriteTxnMarkers (router wiring), read_committed and read_uncommitted Fetch, and the aborted
// index surviving a SIGKILL and restart. The producers are real transactional ones
// (InitProducerId, AddPartitionsToTxn): the broker refuses a transactional batch for a
// partition its transaction does not hold (SPEC §6.6); the test then writes the markers itself.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiKey } from '../../protocol/api-keys.ts';
import type { FetchResponse, ProduceResponse } from '../../protocol/apis/index.ts';
import type { WriteTxnMarkersResponse } from '../../protocol/apis/write-txn-markers.ts';
import { buildBatch, isControlAt, Off } from '../../protocol/record-batch.ts';
import { Connection } from '../../client/connection.ts';
import { startBroker, tempDir } from '../helpers/broker-process.ts';
import { addPartitionsToTxn, initTxnProducer } from '../helpers/txn-requests.ts';

const enc = new TextEncoder();

async function produceTx(c: Connection, producerId: number, seq: number) {
  const batch = buildBatch([{ value: enc.encode(`p${producerId}-${seq}`) }], Date.now(), { producerId, producerEpoch: 0, baseSequence: seq, transactional: true });
  const r = await c.send<ProduceResponse>(ApiKey.PRODUCE, { acks: -1, timeoutMs: 5000, topics: [{ topic: 'tx', partitions: [{ partition: 0, recordsBytes: batch.length }] }] }, [batch]);
  const p = r.control.topics[0]!.partitions[0]!;
  assert.equal(p.errorCode, 0, p.errorMessage ?? '');
  return p.baseOffset;
}

async function marker(c: Connection, producerId: number, committed: boolean) {
  const r = await c.send<WriteTxnMarkersResponse>(ApiKey.WRITE_TXN_MARKERS, { markers: [{ producerId, producerEpoch: 0, committed, coordinatorEpoch: 0, topics: [{ topic: 'tx', partitions: [0] }] }] });
  assert.equal(r.control.markers[0]!.topics[0]!.partitions[0]!.errorCode, 0);
}

/** A transactional producer of its own id whose open transaction holds tx/0. */
async function txnProducer(c: Connection, transactionalId: string): Promise<number> {
  const init = await initTxnProducer(c, transactionalId);
  assert.equal(init.errorCode, 0, init.errorMessage ?? '');
  const added = await addPartitionsToTxn(c, { transactionalId, producerId: init.producerId, producerEpoch: init.producerEpoch }, [{ topic: 'tx', partitions: [0] }]);
  assert.equal(added.errorCode, 0, added.errorMessage ?? '');
  assert.equal(init.producerEpoch, 0);
  return init.producerId;
}

async function fetchAll(c: Connection, isolationLevel: number) {
  const r = await c.send<FetchResponse>(ApiKey.FETCH, { isolationLevel, maxWaitMs: 0, minBytes: 0, maxBytes: 1 << 20, topics: [{ topic: 'tx', partitions: [{ partition: 0, fetchOffset: 0, partitionMaxBytes: 1 << 20 }] }] });
  const p = r.control.topics[0]!.partitions[0]!;
  const batches: Array<{ offset: number; control: boolean }> = [];
  for (let pos = 0; pos < r.data.length; pos += r.data.readInt32BE(pos + Off.batchLength) + 12) batches.push({ offset: Number(r.data.readBigInt64BE(pos)), control: isControlAt(r.data, pos) });
  return { ...p, batches };
}

test('read_committed over TCP: LSO, abortedTransactions and control batches, before and after a SIGKILL restart', async () => {
  const dataDir = tempDir();
  let b = await startBroker({ dataDir });
  try {
    let c = await Connection.connect(b.host, b.port);
    const created = await c.send<any>(ApiKey.CREATE_TOPICS, { topics: [{ topic: 'tx', partitions: 1, replicationFactor: 1, configs: {} }], validateOnly: false });
    assert.equal(created.control.topics[0].errorCode, 0);
    const [p1, p2, p3] = [await txnProducer(c, 'tx-1'), await txnProducer(c, 'tx-2'), await txnProducer(c, 'tx-3')];
    await produceTx(c, p1, 0); // 0, aborted
    await produceTx(c, p2, 0); // 1, committed
    await produceTx(c, p3, 0); // 2, stays open
    await marker(c, p1, false); // 3
    await marker(c, p2, true); // 4
    const check = async () => {
      const committed = await fetchAll(c, 1);
      assert.equal(committed.lastStableOffset, 2);
      assert.deepEqual(committed.batches.map((x) => x.offset), [0, 1]);
      assert.deepEqual(committed.abortedTransactions, [{ producerId: p1, firstOffset: 0 }]);
      const all = await fetchAll(c, 0);
      assert.deepEqual(all.batches.map((x) => [x.offset, x.control]), [[0, false], [1, false], [2, false], [3, true], [4, true]]);
      assert.deepEqual(all.abortedTransactions, []);
    };
    await check();
    c.close();
    await b.kill();
    b = await startBroker({ dataDir });
    c = await Connection.connect(b.host, b.port);
    await check();
    await marker(c, p3, true);
    const after = await fetchAll(c, 1);
    assert.equal(after.lastStableOffset, 6);
    c.close();
  } finally {
    await b.stop();
    b.cleanup();
  }
});
