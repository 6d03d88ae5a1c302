// A transactional batch sent right behind the AddPartitionsToTxn that adds its partition, on the
// same connection, before the answer (SPEC §6.6), on a real single broker: it waits for that
// answer and is appended once the partition is in the transaction; behind one that did not add
// it, it is refused (CONCURRENT_TRANSACTIONS when that request failed retriably), never
// appended on trust. Before, such a batch was checked at once and refused INVALID_TXN_STATE
// (the partition was not yet durable in the transaction), so producers waited a round trip.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Admin } from '../../../client/admin.ts';
import { ApiKey } from '../../../protocol/api-keys.ts';
import type { AddPartitionsToTxnResponse, FetchResponse, ProduceResponse } from '../../../protocol/apis/index.ts';
import { Connection } from '../../../protocol/connection.ts';
import { ErrorCode } from '../../../protocol/errors.ts';
import { buildBatch } from '../../../protocol/record-batch.ts';
import { startBroker, tempDir } from '../../helpers/broker-process.ts';
import { endTxn, initTxnProducer, type TxnProducer } from '../../helpers/txn-requests.ts';

const enc = new TextEncoder();

function addPartitions(c: Connection, p: TxnProducer, partitions: number[]): Promise<AddPartitionsToTxnResponse> {
  return c.send<AddPartitionsToTxnResponse>(ApiKey.ADD_PARTITIONS_TO_TXN, { ...p, topics: [{ topic: 'out', partitions }] }).then((r) => r.control);
}

function produceTx(c: Connection, p: TxnProducer, partition: number, baseSequence: number): Promise<{ errorCode: number; errorMessage: string | null }> {
  const batch = buildBatch([{ value: enc.encode(`${partition}-${baseSequence}`) }], Date.now(), { producerId: p.producerId, producerEpoch: p.producerEpoch, baseSequence, transactional: true });
  return c.send<ProduceResponse>(ApiKey.PRODUCE, { acks: -1, timeoutMs: 5000, topics: [{ topic: 'out', partitions: [{ partition, recordsBytes: batch.length }] }] }, [batch]).then((r) => r.control.topics[0]!.partitions[0]!);
}

async function logEnd(c: Connection, partition: number): Promise<number> {
  const r = await c.send<FetchResponse>(ApiKey.FETCH, { isolationLevel: 0, maxWaitMs: 0, minBytes: 0, maxBytes: 1 << 20, topics: [{ topic: 'out', partitions: [{ partition, fetchOffset: 0, partitionMaxBytes: 1 << 20 }] }] });
  return r.control.topics[0]!.partitions[0]!.highWatermark;
}

test('a transactional batch pipelined behind its AddPartitionsToTxn waits for it: appended when added, refused (retriably) when not', { timeout: 60_000 }, async () => {
  const b = await startBroker({ dataDir: tempDir() });
  const conn = await Connection.connect(b.host, b.port);
  const admin = new Admin({ bootstrap: b.bootstrap, requestTimeoutMs: 5000 });
  try {
    await admin.createTopics([{ topic: 'out', partitions: 4, replicationFactor: 1, configs: {} }]);
    const init = await initTxnProducer(conn, 'tx-pipe');
    assert.equal(init.errorCode, 0, init.errorMessage ?? '');
    const p: TxnProducer = { transactionalId: 'tx-pipe', producerId: init.producerId, producerEpoch: init.producerEpoch };

    // Written back to back, neither awaited: the batch reaches the broker before the partition
    // is durable in the transaction.
    const [added, sent] = await Promise.all([addPartitions(conn, p, [0]), produceTx(conn, p, 0, 0)]);
    assert.equal(added.errorCode, 0, added.errorMessage ?? '');
    assert.equal(sent.errorCode, 0, `pipelined batch: ${sent.errorMessage}`);

    // Two AddPartitionsToTxn back to back: the second finds the first one writing
    // (CONCURRENT_TRANSACTIONS, retriable) and adds nothing; the batch behind it is refused
    // with that retriable error, and nothing is appended to partition 2.
    const [first, second, behindSecond] = await Promise.all([addPartitions(conn, p, [1]), addPartitions(conn, p, [2]), produceTx(conn, p, 2, 0)]);
    assert.equal(first.errorCode, 0, first.errorMessage ?? '');
    assert.equal(second.errorCode, ErrorCode.CONCURRENT_TRANSACTIONS, second.errorMessage ?? '');
    assert.equal(behindSecond.errorCode, ErrorCode.CONCURRENT_TRANSACTIONS, behindSecond.errorMessage ?? '');
    assert.equal(await logEnd(conn, 2), 0, 'the refused batch was not appended');
    // Retried once the partition is added: accepted.
    const [again, retried] = await Promise.all([addPartitions(conn, p, [2]), produceTx(conn, p, 2, 0)]);
    assert.equal(again.errorCode, 0, again.errorMessage ?? '');
    assert.equal(retried.errorCode, 0, retried.errorMessage ?? '');

    // Behind an AddPartitionsToTxn that fails for good (a partition that does not exist makes
    // it add none, though partition 3 is answered 0): refused, not appended.
    const [bad, behindBad] = await Promise.all([addPartitions(conn, p, [3, 9]), produceTx(conn, p, 3, 0)]);
    assert.deepEqual(bad.topics[0]!.partitions.map((x) => x.errorCode), [0, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION]);
    assert.equal(behindBad.errorCode, ErrorCode.INVALID_TXN_STATE, behindBad.errorMessage ?? '');
    assert.equal(await logEnd(conn, 3), 0, 'the refused batch was not appended');

    assert.equal((await endTxn(conn, p, true)).errorCode, 0);
    const deadline = Date.now() + 10_000;
    // Committed: partition 0 and 2 hold the batch and the marker; 1 only its marker.
    while ((await logEnd(conn, 0)) < 2 || (await logEnd(conn, 2)) < 2) {
      assert.ok(Date.now() < deadline, 'markers written');
      await new Promise((r) => setTimeout(r, 20));
    }
  } finally {
    conn.close();
    await admin.close().catch(() => {});
    await b.kill();
  }
});
