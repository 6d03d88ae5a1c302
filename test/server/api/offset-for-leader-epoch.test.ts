// The OffsetForLeaderEpoch handler over hand-made partitions: where an epoch ended in the
// leader's log, and the leader and epoch checks of Fetch.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { OffsetForLeaderEpochResponse } from '../../../protocol/apis/offset-for-leader-epoch.ts';
import { ErrorCode } from '../../../protocol/errors.ts';
import { handleOffsetForLeaderEpoch } from '../../../server/api/offset-for-leader-epoch.ts';
import type { Reply } from '../../../server/network/reply.ts';
import { batch, tempDir } from '../log/helpers.ts';
import { FakeRegistry, fakeContext, leaderState, openPartition } from '../partition/helpers.ts';

test('the end of an epoch on the leader; epoch and leadership checked as in Fetch', async () => {
  const t = tempDir();
  const led = openPartition(t.dir, 't', 0, { state: leaderState({ leaderEpoch: 3 }) });
  led.appendAsLeader(batch(4), 1);
  led.state = leaderState({ leaderEpoch: 5 });
  led.log.beginLeaderEpoch(5);
  led.appendAsLeader(batch(2), 1);
  const followed = openPartition(t.dir, 't', 1, { state: leaderState({ leader: 2 }) });
  const registry = new FakeRegistry();
  registry.add('t', 3, [led, followed]);
  const f = fakeContext(registry, [led, followed]);
  const partitions = [
    { partition: 0, currentLeaderEpoch: -1, leaderEpoch: 3 },
    { partition: 0, currentLeaderEpoch: 5, leaderEpoch: 5 },
    { partition: 0, currentLeaderEpoch: 4, leaderEpoch: 3 },
    { partition: 0, currentLeaderEpoch: 6, leaderEpoch: 3 },
    { partition: 1, currentLeaderEpoch: -1, leaderEpoch: 3 },
    { partition: 2, currentLeaderEpoch: -1, leaderEpoch: 3 },
  ];
  const reply = handleOffsetForLeaderEpoch(f.ctx, { replicaId: 2, topics: [{ topic: 't', partitions }, { topic: 'nope', partitions: [{ partition: 0, currentLeaderEpoch: -1, leaderEpoch: 0 }] }] }) as Reply;
  const results = (reply.control as OffsetForLeaderEpochResponse).topics.flatMap((x) => x.partitions.map((p) => [p.partition, p.errorCode, p.leaderEpoch, p.endOffset]));
  assert.deepEqual(results, [
    [0, 0, 3, 4],
    [0, 0, 5, 6],
    [0, ErrorCode.FENCED_LEADER_EPOCH, -1, -1],
    [0, ErrorCode.UNKNOWN_LEADER_EPOCH, -1, -1],
    [1, ErrorCode.NOT_LEADER, -1, -1],
    [2, ErrorCode.NOT_LEADER, -1, -1],
    [0, ErrorCode.NOT_LEADER, -1, -1], // as before: an unknown topic is not told apart here
  ]);
  await f.close();
  t.cleanup();
});
