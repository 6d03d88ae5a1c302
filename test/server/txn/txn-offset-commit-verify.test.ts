// TxnOffsetCommit checked against the transaction (SPEC §6.24), on a real single broker:
// offsets sent for a transaction that never added the group's offsets partition
// (AddOffsetsToTxn) would stay pending forever (no marker ever goes there), so OffsetFetch
// requireStable answered UNSTABLE_OFFSET_COMMIT for good and the offsets partition kept an
// open transaction (its last stable offset stuck, compaction held below it). Where this
// broker coordinates the transactional id, such a commit is refused instead.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Admin } from '../../../client/admin.ts';
import { Connection } from '../../../protocol/connection.ts';
import { ErrorCode } from '../../../protocol/errors.ts';
import { startBroker, tempDir } from '../../helpers/broker-process.ts';
import { addOffsetsToTxn, addPartitionsToTxn, endTxn, initTxnProducer, offsetFetch, txnOffsetCommit, type TxnProducer } from '../../helpers/txn-requests.ts';

test('TxnOffsetCommit without AddOffsetsToTxn, for an unknown id, another producer id, a stale epoch or after EndTxn is refused; nothing stays pending', { timeout: 60_000 }, async () => {
  const b = await startBroker({ dataDir: tempDir() });
  const conn = await Connection.connect(b.host, b.port);
  const admin = new Admin({ bootstrap: b.bootstrap, requestTimeoutMs: 5000 });
  try {
    await admin.createTopics([{ topic: 'in', partitions: 1, replicationFactor: 1, configs: {} }, { topic: 'out', partitions: 1, replicationFactor: 1, configs: {} }]);
    const init = await initTxnProducer(conn, 'tx-v');
    assert.equal(init.errorCode, 0, init.errorMessage ?? '');
    const p: TxnProducer = { transactionalId: 'tx-v', producerId: init.producerId, producerEpoch: init.producerEpoch };
    const offsets = [{ topic: 'in', partitions: [{ partition: 0, offset: 9, metadata: null }] }];
    const stable = async (group: string) => (await offsetFetch(conn, group, [{ topic: 'in', partitions: [0] }], true)).topics[0]!.partitions[0]!.errorCode;

    // A transaction is open (AddPartitionsToTxn) but the group's offsets partition is not in it.
    assert.equal((await addPartitionsToTxn(conn, p, [{ topic: 'out', partitions: [0] }])).errorCode, 0);
    const early = await txnOffsetCommit(conn, p, 'g-v', offsets);
    assert.equal(early.errorCode, ErrorCode.INVALID_TXN_STATE, early.errorMessage ?? '');
    assert.equal(early.topics[0]!.partitions[0]!.errorCode, ErrorCode.INVALID_TXN_STATE);
    assert.equal(await stable('g-v'), 0, 'nothing pending for the group');

    const unknown = await txnOffsetCommit(conn, { ...p, transactionalId: 'tx-never' }, 'g-v', offsets);
    assert.equal(unknown.errorCode, ErrorCode.INVALID_PRODUCER_ID_MAPPING, unknown.errorMessage ?? '');
    const other = await initTxnProducer(conn, 'tx-other');
    const mismatch = await txnOffsetCommit(conn, { ...p, producerId: other.producerId }, 'g-v', offsets);
    assert.equal(mismatch.errorCode, ErrorCode.INVALID_PRODUCER_ID_MAPPING, mismatch.errorMessage ?? '');
    assert.equal(await stable('g-v'), 0, 'still nothing pending for the group');

    // Added: accepted, pending until the commit, then stable and committed.
    assert.equal((await addOffsetsToTxn(conn, p, 'g-v')).errorCode, 0);
    const stale = await txnOffsetCommit(conn, { ...p, producerEpoch: p.producerEpoch + 1 }, 'g-v', offsets);
    assert.equal(stale.errorCode, ErrorCode.PRODUCER_FENCED, stale.errorMessage ?? '');
    const ok = await txnOffsetCommit(conn, p, 'g-v', offsets);
    assert.equal(ok.errorCode, 0, ok.errorMessage ?? '');
    assert.equal(await stable('g-v'), ErrorCode.UNSTABLE_OFFSET_COMMIT);
    assert.equal((await endTxn(conn, p, true)).errorCode, 0);
    const deadline = Date.now() + 10_000;
    while ((await stable('g-v')) !== 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.equal(await stable('g-v'), 0, 'the commit marker ended the pending offsets');

    // After EndTxn the transaction is over: a late (or retried) commit is refused, not left pending.
    const late = await txnOffsetCommit(conn, p, 'g-v', offsets);
    assert.equal(late.errorCode, ErrorCode.INVALID_TXN_STATE, late.errorMessage ?? '');
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(await stable('g-v'), 0, 'no offsets pending after the transaction ended');
  } finally {
    conn.close();
    await admin.close().catch(() => {});
    await b.kill();
  }
});
