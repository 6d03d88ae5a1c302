/** Admin consumer-group calls and createPartitions against a real broker process. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Admin } from '../../client/admin.ts';
import { Connection } from '../../client/connection.ts';
import { Producer } from '../../client/producer.ts';
import { ApiKey } from '../../protocol/api-keys.ts';
import type { ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse } from '../../protocol/apis/consumer-group-heartbeat.ts';
import { ErrorCode, SluiceError } from '../../protocol/errors.ts';
import { startBroker, type BrokerProcess } from '../helpers/broker-process.ts';

async function setup(t: { after: (fn: () => Promise<void>) => void }): Promise<{ broker: BrokerProcess; admin: Admin }> {
  const broker = await startBroker();
  const admin = new Admin({ bootstrap: broker.bootstrap });
  t.after(async () => {
    await admin.close();
    await broker.stop();
    broker.cleanup();
  });
  return { broker, admin };
}

function isCode(code: ErrorCode): (e: unknown) => boolean {
  return (e: unknown) => e instanceof SluiceError && e.code === code;
}

/** Joins `groupId` as a member with one raw heartbeat (memberEpoch 0); the caller closes the connection. */
async function joinRaw(broker: BrokerProcess, groupId: string, topics: string[]): Promise<{ conn: Connection; res: ConsumerGroupHeartbeatResponse }> {
  const conn = await Connection.connect(broker.host, broker.port, { clientId: 'raw-member' });
  const req: ConsumerGroupHeartbeatRequest = {
    groupId,
    memberId: '',
    memberEpoch: 0,
    rebalanceTimeoutMs: 30_000,
    sessionTimeoutMs: 30_000,
    subscribedTopicNames: topics,
    subscribedTopicRegex: null,
    assignor: null,
    ownedPartitions: [],
  };
  const res = await conn.send<ConsumerGroupHeartbeatResponse>(ApiKey.CONSUMER_GROUP_HEARTBEAT, req);
  assert.equal(res.control.errorCode, ErrorCode.NONE, res.control.errorMessage ?? '');
  return { conn, res: res.control };
}

test('group offsets round trip: commit as no member, fetch, list, describe, lag, reset, delete', async (t) => {
  const { broker, admin } = await setup(t);
  await admin.createTopics([{ topic: 'orders', partitions: 3 }]);

  const coordinator = await admin.findCoordinator('billing');
  assert.equal(coordinator.port, broker.port);
  assert.deepEqual(await admin.listGroups(), []);
  await assert.rejects(admin.describeGroups(['billing']), isCode(ErrorCode.GROUP_ID_NOT_FOUND));

  // Records: partition 0 gets 10 in two timed halves, partition 1 gets 4, partition 2 none.
  const producer = new Producer({ bootstrap: broker.bootstrap, lingerMs: 0 });
  const t0 = Date.now() - 60_000;
  let midway: number;
  try {
    await producer.sendBatch(Array.from({ length: 5 }, (_, i) => ({ topic: 'orders', partition: 0, value: `a${i}`, timestamp: t0 + i })));
    midway = t0 + 10_000;
    await producer.sendBatch(Array.from({ length: 5 }, (_, i) => ({ topic: 'orders', partition: 0, value: `b${i}`, timestamp: midway + i })));
    await producer.sendBatch(Array.from({ length: 4 }, (_, i) => ({ topic: 'orders', partition: 1, value: `c${i}` })));
  } finally {
    await producer.close();
  }

  await admin.commitOffsets('billing', [
    { topic: 'orders', partition: 0, offset: 3, metadata: 'by test' },
    { topic: 'orders', partition: 1, offset: 4 },
  ]);
  const fetched = await admin.fetchOffsets('billing');
  assert.deepEqual(
    fetched.map((o) => [o.topic, o.partition, o.offset, o.metadata]),
    [['orders', 0, 3, 'by test'], ['orders', 1, 4, null]],
  );
  assert.ok(fetched.every((o) => o.commitTimestampMs > 0));
  const withTopic = await admin.fetchOffsets('billing', ['orders']);
  assert.deepEqual(withTopic.map((o) => [o.partition, o.offset]), [[0, 3], [1, 4], [2, -1]]);

  assert.deepEqual(await admin.listGroups(), [{ groupId: 'billing', state: 'empty', members: 0 }]);
  const [described] = await admin.describeGroups(['billing']);
  assert.equal(described!.state, 'empty');
  assert.deepEqual(described!.members, []);

  // Every partition of a topic with a commit, committed or not.
  assert.deepEqual(await admin.groupLag('billing'), [
    { topic: 'orders', partition: 0, committedOffset: 3, logEndOffset: 10, lag: 7, owner: null },
    { topic: 'orders', partition: 1, committedOffset: 4, logEndOffset: 4, lag: 0, owner: null },
    { topic: 'orders', partition: 2, committedOffset: -1, logEndOffset: 0, lag: null, owner: null },
  ]);

  const offsetsOf = (r: Array<{ partition: number; offset: number }>) => r.map((o) => [o.partition, o.offset]);
  assert.deepEqual(offsetsOf(await admin.resetOffsets('billing', 'orders', { earliest: true })), [[0, 0], [1, 0], [2, 0]]);
  assert.deepEqual(offsetsOf(await admin.fetchOffsets('billing')), [[0, 0], [1, 0], [2, 0]]);
  assert.deepEqual(offsetsOf(await admin.resetOffsets('billing', 'orders', { latest: true })), [[0, 10], [1, 4], [2, 0]]);
  // An offset is clamped to each partition's log.
  assert.deepEqual(offsetsOf(await admin.resetOffsets('billing', 'orders', { offset: 6 })), [[0, 6], [1, 4], [2, 0]]);
  // A time: the first record at or after it; the log end where none is.
  assert.deepEqual(offsetsOf(await admin.resetOffsets('billing', 'orders', { datetime: new Date(midway) })), [[0, 5], [1, 0], [2, 0]]);
  assert.deepEqual(offsetsOf(await admin.resetOffsets('billing', 'orders', { datetime: new Date(Date.now() + 3_600_000) })), [[0, 10], [1, 4], [2, 0]]);
  assert.deepEqual(offsetsOf(await admin.fetchOffsets('billing')), [[0, 10], [1, 4], [2, 0]]);

  await assert.rejects(admin.resetOffsets('billing', 'nope', { earliest: true }), isCode(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION));
  await assert.rejects(admin.commitOffsets('billing', [{ topic: 'orders', partition: 7, offset: 1 }]), isCode(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION));

  await admin.deleteGroups(['billing']);
  assert.deepEqual(await admin.listGroups(), []);
  await assert.rejects(admin.describeGroups(['billing']), isCode(ErrorCode.GROUP_ID_NOT_FOUND));
  await assert.rejects(admin.deleteGroups(['billing']), isCode(ErrorCode.GROUP_ID_NOT_FOUND));
});

test('a group with a member: described with its assignment, NON_EMPTY_GROUP for reset, commit and delete', async (t) => {
  const { broker, admin } = await setup(t);
  await admin.createTopics([{ topic: 'events', partitions: 2 }]);
  const { conn, res } = await joinRaw(broker, 'live', ['events']);
  t.after(() => conn.close());
  assert.ok(res.memberId.length > 0);

  const [listed] = await admin.listGroups();
  assert.equal(listed!.groupId, 'live');
  assert.equal(listed!.members, 1);
  const [g] = await admin.describeGroups(['live']);
  assert.equal(g!.members.length, 1);
  const m = g!.members[0]!;
  assert.equal(m.memberId, res.memberId);
  assert.equal(m.clientId, 'raw-member');
  assert.deepEqual(m.subscribedTopicNames, ['events']);
  assert.ok(g!.groupEpoch >= 1);

  // The only member is the target owner of both partitions; whether it owns them yet
  // depends on the heartbeat that told it, so owners are either it or nobody.
  const lag = await admin.groupLag('live');
  assert.deepEqual(lag.map((r) => [r.topic, r.partition, r.committedOffset, r.logEndOffset, r.lag]), [['events', 0, -1, 0, null], ['events', 1, -1, 0, null]]);
  for (const r of lag) assert.ok(r.owner === null || r.owner === res.memberId);

  await assert.rejects(admin.resetOffsets('live', 'events', { earliest: true }), (e: unknown) => {
    assert.ok(e instanceof SluiceError);
    assert.equal(e.code, ErrorCode.NON_EMPTY_GROUP);
    assert.match(e.message, /group live has active members/);
    return true;
  });
  await assert.rejects(admin.commitOffsets('live', [{ topic: 'events', partition: 0, offset: 0 }]), isCode(ErrorCode.NON_EMPTY_GROUP));
  await assert.rejects(admin.deleteGroups(['live']), isCode(ErrorCode.NON_EMPTY_GROUP));

  // Admin reads need no membership.
  assert.deepEqual((await admin.fetchOffsets('live', ['events'])).map((o) => o.offset), [-1, -1]);
});

test('createPartitions raises the count, refuses to lower it', async (t) => {
  const { admin } = await setup(t);
  await admin.createTopics([{ topic: 'grow', partitions: 2 }]);
  await admin.createPartitions('grow', 5);
  const [d] = await admin.describeTopics(['grow']);
  assert.equal(d!.partitions.length, 5);
  assert.equal((await admin.metadata(['grow'])).topics[0]!.partitions.length, 5);
  // The client's own cache sees the new partitions at once.
  assert.equal((await admin.cluster.topic('grow')).partitions.length, 5);
  assert.equal(await admin.listOffsets('grow', 4, 'latest'), 0);

  await assert.rejects(admin.createPartitions('grow', 3), isCode(ErrorCode.INVALID_PARTITIONS));
  await assert.rejects(admin.createPartitions('missing', 3), isCode(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION));
  await assert.rejects(admin.createPartitions('grow', 0), RangeError);
});
