// Transactional offsets in the offsets store (SPEC §6.24, §6.12, §7.4) over real logs:
// pending until their producer's marker, applied at a commit marker, dropped at an abort
// marker, the same after a replay of the partition (an aborted transaction's offsets never
// applied, an open one still pending), and OffsetFetch requireStable answering
// UNSTABLE_OFFSET_COMMIT meanwhile. The markers are appended and announced as the
// WriteTxnMarkers handler does (control batch, then TopicManager.notifyTxnMarker).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildControlBatch, Off, writeInt64, type TxnMarker } from '../../../protocol/record-batch.ts';
import { ErrorCode } from '../../../protocol/errors.ts';
import { GroupCoordinator, DEFAULT_COORDINATOR_CONFIG } from '../../../server/group/group-coordinator.ts';
import { OFFSETS_TOPIC, offsetsPartitionFor, OffsetStore } from '../../../server/group/offset-store.ts';
import { tempDir } from '../log/helpers.ts';
import { log, openOffsetsStack, type OffsetsStack } from './offsets-stack.ts';

const GROUP = 'billing';
const P = offsetsPartitionFor(GROUP);

async function marker(stack: OffsetsStack, m: TxnMarker): Promise<void> {
  const l = stack.topics.partition(OFFSETS_TOPIC, P)!;
  // Stored as a leader stores it (offset stamped); appended the way replication appends
  // stored batches, since the leader's client path refuses control batches until the
  // WriteTxnMarkers handler (engineer A) lets the coordinator origin through.
  const b = Buffer.from(buildControlBatch(m, Date.now()));
  writeInt64(b, Off.baseOffset, l.logEndOffset);
  const appended = l.appendAsFollower(b);
  stack.topics.notifyTxnMarker(OFFSETS_TOPIC, P, m, appended.lastOffset);
}

test('transactional offsets: pending until the marker, applied on commit, dropped on abort, and so after replay', { timeout: 30_000 }, async () => {
  const t = tempDir();
  try {
    let stack = await openOffsetsStack(t.dir);
    await stack.topics.create('orders', 4, 1, {});
    stack.topics.addTxnMarkerListener((topic, partition, m) => topic === OFFSETS_TOPIC && stack.offsets.onTxnMarker(partition, m));
    const groups = new GroupCoordinator(stack.topics, stack.offsets, () => true, DEFAULT_COORDINATOR_CONFIG, log);
    const fetch = (requireStable: boolean) => groups.fetchOffsets({ groupId: GROUP, memberId: null, memberEpoch: -1, topics: [{ topic: 'orders', partitions: [0, 1, 2] }], requireStable }).topics[0]!.partitions;

    assert.equal((await groups.commitOffsets({ groupId: GROUP, memberId: '', memberEpoch: -1, topics: [{ topic: 'orders', partitions: [{ partition: 0, offset: 5, metadata: null }] }] })).errorCode, 0);
    const txnCommit = (producerId: number, partition: number, offset: number) =>
      groups.txnCommitOffsets({ transactionalId: `tx-${producerId}`, groupId: GROUP, producerId, producerEpoch: 0, memberId: '', memberEpoch: -1, topics: [{ topic: 'orders', partitions: [{ partition, offset, metadata: 'm' }] }] });
    assert.equal((await txnCommit(100, 0, 50)).errorCode, 0); // to be committed
    assert.equal((await txnCommit(200, 1, 60)).errorCode, 0); // to be aborted
    assert.equal((await txnCommit(300, 2, 70)).errorCode, 0); // left open

    assert.deepEqual(fetch(false).map((p) => [p.offset, p.errorCode]), [[5, 0], [-1, 0], [-1, 0]], 'pending offsets are not visible');
    assert.deepEqual(fetch(true).map((p) => [p.offset, p.errorCode]), [[-1, ErrorCode.UNSTABLE_OFFSET_COMMIT], [-1, ErrorCode.UNSTABLE_OFFSET_COMMIT], [-1, ErrorCode.UNSTABLE_OFFSET_COMMIT]]);
    // topics nil (every partition of the group): with requireStable, the partitions whose only
    // offsets are pending are listed too, as unstable, not left out as if nothing was committed.
    const all = (requireStable: boolean) => groups.fetchOffsets({ groupId: GROUP, memberId: null, memberEpoch: -1, topics: null, requireStable }).topics.flatMap((x) => x.partitions.map((p) => [x.topic, p.partition, p.offset, p.errorCode]));
    assert.deepEqual(all(false), [['orders', 0, 5, 0]]);
    assert.deepEqual(all(true), [['orders', 0, -1, ErrorCode.UNSTABLE_OFFSET_COMMIT], ['orders', 1, -1, ErrorCode.UNSTABLE_OFFSET_COMMIT], ['orders', 2, -1, ErrorCode.UNSTABLE_OFFSET_COMMIT]]);

    await marker(stack, { producerId: 100, producerEpoch: 0, committed: true, coordinatorEpoch: 0 });
    await marker(stack, { producerId: 200, producerEpoch: 0, committed: false, coordinatorEpoch: 0 });
    const after = [[50, 0], [-1, 0], [-1, 0]];
    assert.deepEqual(fetch(false).map((p) => [p.offset, p.errorCode]), after);
    assert.deepEqual(fetch(true).map((p) => [p.offset, p.errorCode]), [[50, 0], [-1, 0], [-1, ErrorCode.UNSTABLE_OFFSET_COMMIT]]);
    groups.stop();
    await stack.close();

    // A new coordinator replays the partition: the same outcome, the open transaction still pending.
    stack = await openOffsetsStack(t.dir);
    stack.topics.addTxnMarkerListener((topic, partition, m) => topic === OFFSETS_TOPIC && stack.offsets.onTxnMarker(partition, m));
    const again = new GroupCoordinator(stack.topics, stack.offsets, () => true, DEFAULT_COORDINATOR_CONFIG, log);
    const fetch2 = (requireStable: boolean) => again.fetchOffsets({ groupId: GROUP, memberId: null, memberEpoch: -1, topics: [{ topic: 'orders', partitions: [0, 1, 2] }], requireStable }).topics[0]!.partitions;
    assert.deepEqual(fetch2(false).map((p) => [p.offset, p.errorCode]), after, 'replay applies committed, never aborted, transactional offsets');
    assert.deepEqual(fetch2(true).map((p) => p.errorCode), [0, 0, ErrorCode.UNSTABLE_OFFSET_COMMIT], 'the open transaction is still pending after replay');
    await marker(stack, { producerId: 300, producerEpoch: 0, committed: true, coordinatorEpoch: 0 });
    assert.deepEqual(fetch2(true).map((p) => [p.offset, p.metadata, p.errorCode]), [[50, 'm', 0], [-1, null, 0], [70, 'm', 0]]);
    again.stop();
    await stack.close();
  } finally {
    t.cleanup();
  }
});

test('TxnOffsetCommit checks the member as OffsetCommit does (KIP-447)', { timeout: 30_000 }, async () => {
  const t = tempDir();
  const stack = await openOffsetsStack(t.dir);
  try {
    await stack.topics.create('orders', 1, 1, {});
    const groups = new GroupCoordinator(stack.topics, stack.offsets, () => true, DEFAULT_COORDINATOR_CONFIG, log);
    const joined = groups.heartbeat({ groupId: GROUP, memberId: '', memberEpoch: 0, instanceId: null, rackId: null, rebalanceTimeoutMs: 30_000, subscribedTopicNames: ['orders'], subscribedTopicRegex: null, serverAssignor: null, ownedPartitions: [] } as never, 'c', 'h');
    assert.equal(joined.errorCode, 0, joined.errorMessage ?? '');
    const commit = (memberId: string, memberEpoch: number) => groups.txnCommitOffsets({ transactionalId: 'tx', groupId: GROUP, producerId: 1, producerEpoch: 0, memberId, memberEpoch, topics: [{ topic: 'orders', partitions: [{ partition: 0, offset: 1, metadata: null }] }] });
    assert.equal((await commit('', -1)).errorCode, ErrorCode.NON_EMPTY_GROUP);
    assert.equal((await commit('nobody', 1)).errorCode, ErrorCode.UNKNOWN_MEMBER_ID);
    assert.equal((await commit(joined.memberId!, joined.memberEpoch + 5)).errorCode, ErrorCode.STALE_MEMBER_EPOCH);
    const ok = await commit(joined.memberId!, joined.memberEpoch);
    assert.equal(ok.errorCode, 0, ok.errorMessage ?? '');
    assert.ok(stack.offsets.isPending(GROUP, 'orders', 0));
    groups.stop();
  } finally {
    await stack.close();
    t.cleanup();
  }
});
void OffsetStore;
