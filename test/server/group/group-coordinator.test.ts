// The coordinator in-process over real partition logs, with a simulated clock: members that
// honour revocations, members that die, partitions added, fencing, durable offsets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import type { ConsumerGroupHeartbeatResponse, TopicPartitions } from '../../../protocol/apis/consumer-group-heartbeat.ts';
import { ErrorCode } from '../../../protocol/errors.ts';
import { DEFAULT_COORDINATOR_CONFIG, GroupCoordinator } from '../../../server/group/group-coordinator.ts';
import { tempDir } from '../../helpers/broker-process.ts';
import { log, openOffsetsStack } from './offsets-stack.ts';

async function openStack(dataDir: string) {
  const { topics, offsets, close } = await openOffsetsStack(dataDir);
  const coordinator = new GroupCoordinator(topics, offsets, () => true, DEFAULT_COORDINATOR_CONFIG, log);
  return { topics, coordinator, close };
}

/** A well-behaved member: releases revoked partitions at its next heartbeat. */
class SimMember {
  owned: TopicPartitions[] = [];
  epoch = 0;
  constructor(readonly id: string, private readonly c: GroupCoordinator, private readonly group = 'g', private readonly topics = ['t']) {}
  beat(now: number): ConsumerGroupHeartbeatResponse {
    const r = this.c.heartbeat(
      { groupId: this.group, memberId: this.id, memberEpoch: this.epoch, rebalanceTimeoutMs: 5000, sessionTimeoutMs: 3000, subscribedTopicNames: this.epoch === 0 ? this.topics : null, subscribedTopicRegex: null, assignor: null, ownedPartitions: this.owned },
      'sim',
      '127.0.0.1',
      now,
    );
    assert.equal(r.errorCode, 0, r.errorMessage ?? '');
    this.epoch = r.memberEpoch;
    this.owned = r.assignment!;
    return r;
  }
  count(): number {
    return this.owned.reduce((n, t) => n + t.partitions.length, 0);
  }
}

function assertDisjoint(members: SimMember[]): void {
  const seen = new Map<string, string>();
  for (const m of members) for (const t of m.owned) for (const p of t.partitions) {
    const k = `${t.topic}/${p}`;
    assert.ok(!seen.has(k), `${k} owned by ${seen.get(k)} and ${m.id}`);
    seen.set(k, m.id);
  }
}

/** Heartbeat rounds until nothing changes; checks the two-owner invariant after every beat. */
function settle(members: SimMember[], now: number, roundsMax = 20): number {
  for (let round = 0; round < roundsMax; round++) {
    const before = JSON.stringify(members.map((m) => [m.owned, m.epoch]));
    for (const m of members) {
      m.beat(now);
      assertDisjoint(members);
    }
    if (JSON.stringify(members.map((m) => [m.owned, m.epoch])) === before) return round;
  }
  throw new Error('group did not settle');
}

test('3 members over 6 partitions get 2 each; a 4th gets a fair share; no partition ever has two owners', async () => {
  const dir = tempDir();
  const s = await openStack(dir);
  try {
    await s.topics.create('t', 6, 1, {});
    const ms = ['a', 'b', 'c'].map((id) => new SimMember(id, s.coordinator));
    let now = 1000;
    assert.equal(ms[0]!.beat(now).memberEpoch, 1, 'the first join is group epoch 1');
    settle(ms, now);
    assert.deepEqual(ms.map((m) => m.count()), [2, 2, 2]);
    const kept = new Map(ms.map((m) => [m.id, JSON.stringify(m.owned)]));
    ms.push(new SimMember('d', s.coordinator));
    now += 100;
    settle(ms, now);
    assert.deepEqual(ms.map((m) => m.count()).sort(), [1, 1, 2, 2]);
    // Sticky: two of the original three kept exactly what they had.
    assert.equal(ms.slice(0, 3).filter((m) => kept.get(m.id) === JSON.stringify(m.owned)).length, 2);
    const d = s.coordinator.describeGroups(['g']).groups[0]!;
    assert.equal(d.state, 'stable');
  } finally {
    await s.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a member that stops heartbeating is removed after its session timeout and its partitions move', async () => {
  const dir = tempDir();
  const s = await openStack(dir);
  try {
    await s.topics.create('t', 6, 1, {});
    const [a, b, c] = ['a', 'b', 'c'].map((id) => new SimMember(id, s.coordinator));
    let now = 1000;
    settle([a!, b!, c!], now);
    now += 2000; // under the 3000 ms session timeout
    s.coordinator.sweep(now);
    assert.equal(s.coordinator.describeGroups(['g']).groups[0]!.members.length, 3);
    settle([a!, b!], now);
    now += 2000; // c silent for 4000 ms
    s.coordinator.sweep(now);
    assert.equal(s.coordinator.describeGroups(['g']).groups[0]!.members.length, 2);
    settle([a!, b!], now);
    assert.deepEqual([a!.count(), b!.count()], [3, 3]);
    // The dead member learns it was removed when it comes back.
    const r = s.coordinator.heartbeat({ groupId: 'g', memberId: 'c', memberEpoch: c!.epoch, rebalanceTimeoutMs: null, sessionTimeoutMs: null, subscribedTopicNames: null, subscribedTopicRegex: null, assignor: null, ownedPartitions: null }, 'sim', '', now);
    assert.equal(r.errorCode, ErrorCode.UNKNOWN_MEMBER_ID);
  } finally {
    await s.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a member that keeps revoked partitions past the rebalance timeout is removed', async () => {
  const dir = tempDir();
  const s = await openStack(dir);
  try {
    await s.topics.create('t', 4, 1, {});
    const a = new SimMember('a', s.coordinator);
    let now = 1000;
    settle([a], now);
    assert.equal(a.count(), 4);
    const b = new SimMember('b', s.coordinator);
    b.beat(now); // joins; a must give up two
    const stubborn = { ...a };
    const r = s.coordinator.heartbeat({ groupId: 'g', memberId: 'a', memberEpoch: a.epoch, rebalanceTimeoutMs: null, sessionTimeoutMs: null, subscribedTopicNames: null, subscribedTopicRegex: null, assignor: null, ownedPartitions: stubborn.owned }, 'sim', '', now);
    assert.equal(r.assignment!.reduce((n, t) => n + t.partitions.length, 0), 2, 'a is told to keep only two');
    b.beat(now);
    assert.equal(b.count(), 0, 'b gets nothing while a still holds them');
    // a keeps heartbeating (its session stays alive) but never releases the two.
    for (let i = 0; i < 3; i++) {
      now += 2000;
      s.coordinator.heartbeat({ groupId: 'g', memberId: 'a', memberEpoch: a.epoch, rebalanceTimeoutMs: null, sessionTimeoutMs: null, subscribedTopicNames: null, subscribedTopicRegex: null, assignor: null, ownedPartitions: stubborn.owned }, 'sim', '', now);
      b.beat(now);
      s.coordinator.sweep(now);
    }
    b.beat(now);
    b.beat(now);
    assert.equal(b.count(), 4, 'a was fenced; b owns everything');
  } finally {
    await s.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('added partitions are assigned at the next heartbeat', async () => {
  const dir = tempDir();
  const s = await openStack(dir);
  try {
    await s.topics.create('t', 2, 1, {});
    const ms = ['a', 'b'].map((id) => new SimMember(id, s.coordinator));
    settle(ms, 1000);
    await s.topics.addPartitions('t', 6);
    settle(ms, 1100);
    assert.deepEqual(ms.map((m) => m.count()), [3, 3]);
  } finally {
    await s.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('commits: fenced and unknown members are refused; offsets survive a reopen; empty-group rules', async () => {
  const dir = tempDir();
  let s = await openStack(dir);
  try {
    await s.topics.create('t', 2, 1, {});
    const a = new SimMember('a', s.coordinator);
    settle([a], 1000);
    const commit = (memberId: string, memberEpoch: number, offset: number) =>
      s.coordinator.commitOffsets({ groupId: 'g', memberId, memberEpoch, topics: [{ topic: 't', partitions: [{ partition: 0, offset, metadata: 'm' }] }] });
    assert.equal((await commit('a', a.epoch, 42)).errorCode, 0);
    assert.equal((await commit('a', a.epoch + 5, 43)).errorCode, ErrorCode.STALE_MEMBER_EPOCH);
    assert.equal((await commit('zombie', 1, 44)).errorCode, ErrorCode.UNKNOWN_MEMBER_ID);
    assert.equal((await commit('', -1, 45)).errorCode, ErrorCode.NON_EMPTY_GROUP);
    assert.equal((await s.coordinator.deleteGroups(['g'])).groups[0]!.errorCode, ErrorCode.NON_EMPTY_GROUP);
    const f = s.coordinator.fetchOffsets({ groupId: 'g', memberId: null, memberEpoch: -1, topics: null });
    assert.deepEqual(f.topics, [{ topic: 't', partitions: [{ partition: 0, offset: 42, metadata: 'm', commitTimestampMs: f.topics[0]!.partitions[0]!.commitTimestampMs, errorCode: 0 }] }]);
    await s.close();
    s = await openStack(dir);
    assert.equal(s.coordinator.fetchOffsets({ groupId: 'g', memberId: null, memberEpoch: -1, topics: [{ topic: 't', partitions: [0, 1] }] }).topics[0]!.partitions.map((p) => p.offset).join(), '42,-1');
    // No members after a restart: the group is empty, admin commits and deletion are allowed.
    assert.equal((await s.coordinator.commitOffsets({ groupId: 'g', memberId: '', memberEpoch: -1, topics: [{ topic: 't', partitions: [{ partition: 1, offset: 7, metadata: null }] }] })).errorCode, 0);
    assert.deepEqual(s.coordinator.listGroups().groups, [{ groupId: 'g', state: 'empty', members: 0 }]);
    assert.equal((await s.coordinator.deleteGroups(['g'])).groups[0]!.errorCode, 0);
    await s.close();
    s = await openStack(dir);
    assert.deepEqual(s.coordinator.listGroups().groups, []);
  } finally {
    await s.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('offsets of an empty group expire after the retention; a live group keeps them', async () => {
  const dir = tempDir();
  const s = await openStack(dir);
  try {
    await s.topics.create('t', 1, 1, {});
    await s.coordinator.commitOffsets({ groupId: 'idle', memberId: '', memberEpoch: -1, topics: [{ topic: 't', partitions: [{ partition: 0, offset: 1, metadata: null }] }] }, 0);
    const a = new SimMember('a', s.coordinator, 'busy');
    settle([a], 0);
    await s.coordinator.commitOffsets({ groupId: 'busy', memberId: 'a', memberEpoch: a.epoch, topics: [{ topic: 't', partitions: [{ partition: 0, offset: 1, metadata: null }] }] }, 0);
    const later = DEFAULT_COORDINATOR_CONFIG.offsetsRetentionMs + 1;
    assert.equal(await s.coordinator.expireOffsets(later), 1);
    assert.deepEqual(s.coordinator.listGroups().groups.map((g) => g.groupId), ['busy']);
  } finally {
    await s.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
