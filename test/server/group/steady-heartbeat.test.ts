// A heartbeat that changes nothing, or a join, must not re-resolve every member's subscription:
// that work is members x topics (~100 ms for 1000 x 1000). The coordinator runs over a
// real TopicManager; its partitionCount is wrapped to count calls (the answers stay real).
// A topic created or grown afterwards must still reach the members.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import type { ConsumerGroupHeartbeatRequest } from '../../../protocol/apis/consumer-group-heartbeat.ts';
import { DEFAULT_COORDINATOR_CONFIG, GroupCoordinator } from '../../../server/group/group-coordinator.ts';
import { tempDir } from '../../helpers/broker-process.ts';
import { log, openOffsetsStack } from './offsets-stack.ts';
const TOPICS = 40;
const MEMBERS = 100;

test('a steady heartbeat and a join cost O(topics), not O(members x topics); topic changes still reach members', { timeout: 120_000 }, async () => {
  const dataDir = tempDir();
  const stack = await openOffsetsStack(dataDir, 10_000);
  try {
    const { topics, offsets } = stack;
    const names = Array.from({ length: TOPICS }, (_, i) => `t${i}`);
    for (const n of names) await topics.create(n, 1, 1, {});

    let partitionCountCalls = 0;
    const realPartitionCount = topics.partitionCount.bind(topics);
    topics.partitionCount = (name: string) => {
      partitionCountCalls++;
      return realPartitionCount(name);
    };
    const c = new GroupCoordinator(topics, offsets, () => true, DEFAULT_COORDINATOR_CONFIG, log);
    const beat = (memberId: string, memberEpoch: number, subscription: Partial<ConsumerGroupHeartbeatRequest> = {}) => {
      const r = c.heartbeat({ groupId: 'g', memberId, memberEpoch, rebalanceTimeoutMs: null, sessionTimeoutMs: 30_000, subscribedTopicNames: null, subscribedTopicRegex: null, assignor: null, ownedPartitions: null, ...subscription }, 'c', '127.0.0.1');
      assert.equal(r.errorCode, 0, r.errorMessage ?? '');
      return r;
    };
    // Half subscribe by name (one to a topic that does not exist yet), half by pattern.
    const epochs = new Map<string, number>();
    for (let m = 0; m < MEMBERS; m++) {
      const id = `m${m}`;
      const r = beat(id, 0, m % 2 === 0 ? { subscribedTopicNames: [...names, 'later'], ownedPartitions: [] } : { subscribedTopicRegex: 't.*|later', ownedPartitions: [] });
      epochs.set(id, r.memberEpoch);
    }
    const settle = beat('m0', epochs.get('m0')!);

    partitionCountCalls = 0;
    beat('m0', settle.memberEpoch);
    // Before: the names of every member were looked up on every heartbeat (2090 calls here).
    assert.ok(partitionCountCalls <= 2 * TOPICS, `${partitionCountCalls} partitionCount calls for one steady heartbeat`);

    // A join re-resolves the joining member only, not every member again.
    partitionCountCalls = 0;
    beat('joiner', 0, { subscribedTopicNames: names, ownedPartitions: [] });
    assert.ok(partitionCountCalls <= 3 * TOPICS, `${partitionCountCalls} partitionCount calls for one join into ${MEMBERS} members`);

    // A new topic that members subscribe to (by name and by pattern) moves the group epoch.
    const groupEpoch = () => c.describeGroups(['g']).groups[0]!.groupEpoch;
    const before = groupEpoch();
    await topics.create('later', 2, 1, {});
    beat('m0', settle.memberEpoch);
    const afterCreate = groupEpoch();
    assert.ok(afterCreate > before, `a created, subscribed topic starts a new assignment (group epoch ${before} -> ${afterCreate})`);
    // So does a partition count change.
    await topics.addPartitions('later', 5);
    beat('m0', settle.memberEpoch);
    assert.ok(groupEpoch() > afterCreate, 'more partitions start a new assignment');
    const described = c.describeGroups(['g']).groups[0]!;
    const targeted = described.members.flatMap((m) => m.targetAssignment.filter((t) => t.topic === 'later').flatMap((t) => t.partitions));
    assert.deepEqual(targeted.sort((a, b) => a - b), [0, 1, 2, 3, 4]);
  } finally {
    await stack.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
});
