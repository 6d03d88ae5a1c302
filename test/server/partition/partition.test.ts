// One partition's serving state without a broker: the one error order (SPEC §6.6-6.8), the
// leader's append, the high watermark and its waiters, reads for consumers and followers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, SluiceError } from '../../../protocol/errors.ts';
import { servable, type Partition, type ServeKind } from '../../../server/partition/partition.ts';
import { DelayedFetches } from '../../../server/partition/delayed-fetches.ts';
import { batch, tempDir } from '../log/helpers.ts';
import { addFollower, BROKER_ID, FakeRegistry, leaderState, openPartition } from './helpers.ts';

function errorOf(fn: () => unknown): number {
  try {
    fn();
    return 0;
  } catch (e) {
    assert.ok(e instanceof SluiceError, String(e));
    return e.code;
  }
}

test('servable: each kind checks in its SPEC order', async () => {
  const t = tempDir();
  const led = openPartition(t.dir, 't', 0, { state: leaderState() });
  const followed = openPartition(t.dir, 't', 1, { state: leaderState({ leader: 2 }) });
  const internal = openPartition(t.dir, '__offsets', 0, { state: leaderState() });
  const r = new FakeRegistry();
  r.add('t', 3, [led, followed]); // partition 2 exists, held elsewhere
  r.add('__offsets', 1, [internal]);
  const code = (kind: ServeKind, topic: string, p: number, epoch = -1) => errorOf(() => servable(kind, r.topics.get(topic), topic, p, epoch));
  const all: ServeKind[] = ['produce', 'consumer-fetch', 'follower-fetch', 'list-offsets'];
  for (const kind of all) {
    assert.equal(code(kind, 't', 0), 0, kind);
    assert.equal(code(kind, 't', 1), ErrorCode.NOT_LEADER, `${kind}: a follower`);
    assert.equal(code(kind, 't', 2), ErrorCode.NOT_LEADER, `${kind}: not held here`);
    assert.equal(code(kind, 't', 3), ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `${kind}: out of range`);
    assert.equal(code(kind, 't', -1), ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, kind);
    assert.equal(code(kind, 'nope', 0), ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, kind);
  }
  // Internal topics: produce refuses them before anything else (§6.6), even unknown ones;
  // fetch and list-offsets say whether the partition exists first (§6.7, §6.8).
  assert.equal(code('produce', '__offsets', 0), ErrorCode.INVALID_TOPIC);
  assert.equal(code('produce', '__nope', 0), ErrorCode.INVALID_TOPIC);
  assert.equal(code('consumer-fetch', '__nope', 0), ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
  assert.equal(code('consumer-fetch', '__offsets', 5), ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
  assert.equal(code('consumer-fetch', '__offsets', 0), ErrorCode.INVALID_TOPIC);
  assert.equal(code('list-offsets', '__offsets', 0), ErrorCode.INVALID_TOPIC);
  assert.equal(code('follower-fetch', '__offsets', 0), 0, 'followers copy internal topics');
  // Leader epochs (fetch): older is fenced, newer unknown, both before NOT_LEADER.
  assert.equal(code('consumer-fetch', 't', 0, 5), 0);
  assert.equal(code('consumer-fetch', 't', 0, 4), ErrorCode.FENCED_LEADER_EPOCH);
  assert.equal(code('follower-fetch', 't', 0, 6), ErrorCode.UNKNOWN_LEADER_EPOCH);
  assert.equal(code('consumer-fetch', 't', 1, 4), ErrorCode.FENCED_LEADER_EPOCH, 'epoch before NOT_LEADER');
  // A partition with no role yet (before this broker registered) is not served.
  const fresh = openPartition(t.dir, 'u', 0);
  r.add('u', 1, [fresh]);
  assert.equal(code('produce', 'u', 0), ErrorCode.NOT_LEADER);
  for (const p of [led, followed, internal, fresh]) await p.log.close();
  t.cleanup();
});

test('appendAsLeader stamps the leader epoch, moves the high watermark of a lone leader and wakes parked fetches', async () => {
  const t = tempDir();
  const p = openPartition(t.dir, 't', 0, { state: leaderState({ leaderEpoch: 7 }) });
  const d = new DelayedFetches();
  let woken = false;
  void d.wait([p], 60_000)!.then(() => (woken = true));
  const a = p.appendAsLeader(batch(3), 1);
  assert.equal(a.baseOffset, 0);
  assert.equal(a.lastOffset, 2);
  assert.equal(p.log.highWatermark, 3, 'alone in its ISR: replicated once appended');
  const b = p.appendAsLeader(batch(2), -1);
  assert.equal(b.baseOffset, 3);
  const read = await p.read(0, 1 << 20, false);
  assert.equal(read.records.readInt32BE(12), 7, 'partitionLeaderEpoch rewritten');
  assert.equal(Number(read.records.readBigInt64BE(0)), 0);
  await new Promise((r) => setImmediate(r));
  assert.equal(woken, true);
  await p.waitForHighWatermark(5, 1000); // already there
  await p.log.close();
  t.cleanup();
});

test('appendAsLeader refuses before writing: a follower (NOT_LEADER), acks=all below min.insync.replicas', async () => {
  const t = tempDir();
  const follower = openPartition(t.dir, 't', 0, { state: leaderState({ leader: 2, replicas: [2, BROKER_ID] }) });
  assert.equal(errorOf(() => follower.appendAsLeader(batch(1), 1)), ErrorCode.NOT_LEADER);
  assert.equal(follower.log.logEndOffset, 0);
  const p = openPartition(t.dir, 't', 1, { state: leaderState({ replicas: [BROKER_ID, 2], isr: [BROKER_ID] }), minInsyncReplicas: 2 });
  assert.equal(errorOf(() => p.appendAsLeader(batch(1), -1)), ErrorCode.NOT_ENOUGH_REPLICAS);
  assert.equal(p.log.logEndOffset, 0, 'nothing written');
  assert.equal(p.appendAsLeader(batch(1), 1).baseOffset, 0, 'acks 1 is not held to min.insync.replicas');
  await follower.log.close();
  await p.log.close();
  t.cleanup();
});

test('with a follower in the ISR, the high watermark waits for it; waiters resolve in order, time out, or fail on lost leadership', async () => {
  const t = tempDir();
  const p = openPartition(t.dir, 't', 0, { state: leaderState({ replicas: [BROKER_ID, 2], isr: [BROKER_ID, 2] }) });
  addFollower(p, 2);
  p.appendAsLeader(batch(2), -1);
  p.appendAsLeader(batch(2), -1);
  assert.equal(p.log.highWatermark, 0, 'the follower has nothing yet');
  const order: number[] = [];
  const first = p.waitForHighWatermark(2, 60_000).then(() => order.push(2));
  const second = p.waitForHighWatermark(4, 60_000).then(() => order.push(4));
  const timedOut = p.waitForHighWatermark(4, 20);
  await assert.rejects(timedOut, (e: SluiceError) => e.code === ErrorCode.REQUEST_TIMED_OUT);
  p.followers.get(2)!.logEndOffset = 2;
  p.advanceHighWatermark();
  assert.equal(p.log.highWatermark, 2);
  await first;
  assert.deepEqual(order, [2]);
  p.followers.get(2)!.logEndOffset = 4;
  p.advanceHighWatermark();
  await second;
  assert.deepEqual(order, [2, 4]);
  // Consumers read below the high watermark, followers up to the log end.
  p.appendAsLeader(batch(1), 1);
  const consumer = await p.read(4, 1 << 20, false);
  const follower = await p.read(4, 1 << 20, true);
  assert.equal(consumer.records.length, 0);
  assert.ok(follower.records.length > 0);
  // Losing leadership fails the waiters of records not yet replicated.
  const lost = p.waitForHighWatermark(5, 60_000);
  p.role = 'follower';
  p.settleHighWatermarkWaiters();
  await assert.rejects(lost, (e: SluiceError) => e.code === ErrorCode.NOT_LEADER);
  assert.equal(errorOf(() => p.waitForHighWatermark(5, 1000)), ErrorCode.NOT_LEADER);
  await p.log.close();
  t.cleanup();
});

test('checkLeader: no state means no replica; epochs are compared before the role', async () => {
  const t = tempDir();
  const p: Partition = openPartition(t.dir, 't', 0);
  assert.equal(p.leaderEpoch, -1);
  assert.equal(p.isLeader, false);
  assert.equal(errorOf(() => p.checkLeader()), ErrorCode.NOT_LEADER);
  p.state = leaderState({ leader: 2, leaderEpoch: 3 });
  p.role = 'follower';
  assert.equal(errorOf(() => p.checkLeader(2)), ErrorCode.FENCED_LEADER_EPOCH);
  assert.equal(errorOf(() => p.checkLeader(4)), ErrorCode.UNKNOWN_LEADER_EPOCH);
  assert.equal(errorOf(() => p.checkLeader(3)), ErrorCode.NOT_LEADER);
  await p.log.close();
  t.cleanup();
});
