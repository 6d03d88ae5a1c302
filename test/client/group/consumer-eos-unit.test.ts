/**
 * GroupConsumer's delivery setting against the scripted broker (../fake-broker.ts) and a
 * scripted coordinator (GroupTransport): exactly-once reads read_committed, asks OffsetFetch
 * for stable offsets and retries UNSTABLE_OFFSET_COMMIT, commits nothing itself, and its
 * pendingOffsets()/groupMetadata() are what a transaction commits; positions and commits move
 * past transaction markers and aborted records even when a poll hands out nothing.
 */
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import type { ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse } from '../../../protocol/apis/consumer-group-heartbeat.ts';
import { READ_COMMITTED } from '../../../protocol/apis/fetch.ts';
import type { OffsetCommitRequest, OffsetCommitResponse } from '../../../protocol/apis/offset-commit.ts';
import type { OffsetFetchRequest, OffsetFetchResponse } from '../../../protocol/apis/offset-fetch.ts';
import { ErrorCode, SluiceError } from '../../../protocol/errors.ts';
import { BatchBuilder, buildControlBatch } from '../../../protocol/record-batch.ts';
import { GroupConsumer, type GroupConsumerOptions } from '../../../client/group/consumer.ts';
import type { GroupTransport } from '../../../client/group/coordinator.ts';
import { withFake, type FakeBroker } from '../fake-broker.ts';

function txn(pid: number, seq: number, values: string[]): Uint8Array {
  const b = new BatchBuilder();
  for (const v of values) b.append(null, Buffer.from(v), Date.now());
  return b.finish({ producerId: pid, producerEpoch: 0, baseSequence: seq, transactional: true }).slice();
}

function marker(pid: number, committed: boolean): Uint8Array {
  return buildControlBatch({ producerId: pid, producerEpoch: 0, committed, coordinatorEpoch: 0 }, Date.now());
}

/** A coordinator that assigns t/0 to the one member, starts it at `committed`, and records requests. */
class ScriptedCoordinator implements GroupTransport {
  readonly offsetFetches: OffsetFetchRequest[] = [];
  readonly offsetCommits: OffsetCommitRequest[] = [];
  /** What heartbeats assign (t/0 by default; [] revokes it). */
  assignment = [{ topic: 't', partitions: [0] }];
  /** The next heartbeat of a member in the group is answered FENCED_MEMBER_EPOCH. */
  fenceNext = false;
  /** OffsetFetch answers UNSTABLE_OFFSET_COMMIT for t/0 this many times first. */
  unstableAnswers = 0;
  committed = -1;

  async heartbeat(req: ConsumerGroupHeartbeatRequest): Promise<ConsumerGroupHeartbeatResponse> {
    const leaving = req.memberEpoch === -1;
    if (this.fenceNext && req.memberEpoch > 0) {
      this.fenceNext = false;
      return { errorCode: ErrorCode.FENCED_MEMBER_EPOCH, errorMessage: 'fenced', memberId: req.memberId, memberEpoch: -1, heartbeatIntervalMs: 100, assignment: null };
    }
    return { errorCode: 0, errorMessage: null, memberId: req.memberId, memberEpoch: leaving ? -1 : 7, heartbeatIntervalMs: 100, assignment: leaving ? [] : this.assignment };
  }

  async offsetCommit(req: OffsetCommitRequest): Promise<OffsetCommitResponse> {
    this.offsetCommits.push(req);
    for (const t of req.topics) for (const p of t.partitions) if (t.topic === 't' && p.partition === 0) this.committed = p.offset;
    return { errorCode: 0, errorMessage: null, topics: req.topics.map((t) => ({ topic: t.topic, partitions: t.partitions.map((p) => ({ partition: p.partition, errorCode: 0 })) })) } as OffsetCommitResponse;
  }

  async offsetFetch(req: OffsetFetchRequest): Promise<OffsetFetchResponse> {
    this.offsetFetches.push(req);
    const unstable = this.unstableAnswers > 0;
    if (unstable) this.unstableAnswers--;
    return {
      errorCode: 0,
      errorMessage: null,
      topics: (req.topics ?? []).map((t) => ({
        topic: t.topic,
        partitions: t.partitions.map((partition) =>
          unstable
            ? { partition, offset: -1, metadata: null, commitTimestampMs: -1, errorCode: ErrorCode.UNSTABLE_OFFSET_COMMIT }
            : { partition, offset: this.committed, metadata: null, commitTimestampMs: this.committed >= 0 ? Date.now() : -1, errorCode: 0 },
        ),
      })),
    };
  }
}

function member(broker: FakeBroker, transport: GroupTransport, extra: Partial<GroupConsumerOptions>): GroupConsumer {
  return new GroupConsumer({ bootstrap: broker.bootstrap, groupId: 'g', topics: ['t'], autoOffsetReset: 'earliest', maxWaitMs: 50, retryBackoffMs: 20, transport, ...extra });
}

async function until(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('exactly-once: stable offsets (UNSTABLE_OFFSET_COMMIT retried), read_committed, pendingOffsets past markers and aborted records, no commits of its own', async () => {
  await withFake(async (broker) => {
    broker.appendBatch('t', txn(1, 0, ['a'])); // 0, aborted
    broker.appendBatch('t', marker(1, false)); // 1
    broker.appendBatch('t', txn(2, 0, ['b1', 'b2'])); // 2-3, committed
    broker.appendBatch('t', marker(2, true)); // 4
    const coord = new ScriptedCoordinator();
    coord.unstableAnswers = 2;
    coord.committed = 0;
    const c = member(broker, coord, { delivery: 'exactly-once' });
    try {
      assert.equal(c.isolation, 'read_committed');
      assert.equal(c.deliveryMode, 'exactly-once', 'deliveryMode is the same setting');
      const got: string[] = [];
      await until(async () => {
        for (const m of await c.poll(100)) got.push(`${m.offset}:${m.value}`);
        return c.pendingOffsets().some((o) => o.offset === 5);
      }, 'pending offset 5');
      assert.deepEqual(got, ['2:b1', '3:b2']);
      assert.ok(coord.offsetFetches.length >= 3, `UNSTABLE answered twice, then retried: ${coord.offsetFetches.length} OffsetFetch`);
      assert.ok(coord.offsetFetches.every((r) => r.requireStable === true), 'read_committed asks for stable offsets');
      assert.ok(broker.fetches.every((f) => f.isolationLevel === READ_COMMITTED));
      // Past the commit marker at 4: a restarted pipeline does not start before it.
      assert.deepEqual(c.pendingOffsets(), [{ topic: 't', partition: 0, offset: 5 }]);
      assert.deepEqual(c.groupMetadata(), { groupId: 'g', memberId: c.memberId, memberEpoch: 7 });
      assert.equal(c.endOffset('t', 0), 5);
      // Only aborted data and a marker arrive: the poll hands out nothing, pendingOffsets still moves.
      broker.appendBatch('t', txn(3, 0, ['x'])); // 5
      broker.appendBatch('t', marker(3, false)); // 6
      await until(async () => {
        assert.deepEqual(await c.poll(100), []);
        return c.pendingOffsets()[0]!.offset === 7;
      }, 'pending offset 7');
      assert.equal(c.position('t', 0), 7);
    } finally {
      await c.close();
    }
    assert.deepEqual(coord.offsetCommits, [], 'exactly-once commits nothing itself (the transaction does), also not on close');
  });
});

test('exactly-once: a revoked partition is released only when the application polls again (its transaction is done), without a commit', async () => {
  await withFake(async (broker) => {
    broker.appendBatch('t', txn(1, 0, ['a', 'b'])); // 0-1
    broker.appendBatch('t', marker(1, true)); // 2
    const coord = new ScriptedCoordinator();
    const revokedAt: number[] = [];
    const c = member(broker, coord, { delivery: 'exactly-once', onAssignmentChange: (e) => e.revoked.length > 0 && revokedAt.push(Date.now()) });
    try {
      let held: unknown[] = [];
      await until(async () => (held = await c.poll(100)).length > 0, 'a batch');
      assert.equal(held.length, 2);
      coord.assignment = []; // the coordinator takes t/0 away while the application holds the batch
      await new Promise((r) => setTimeout(r, 800));
      assert.deepEqual(revokedAt, [], 'not released while the application holds the batch');
      assert.deepEqual(c.pendingOffsets(), [{ topic: 't', partition: 0, offset: 3 }], 'still owned: its offsets can go into the transaction');
      const polledAt = Date.now();
      await c.poll(100);
      await until(() => revokedAt.length > 0, 'the release');
      assert.ok(revokedAt[0]! >= polledAt, 'released after the application came back to poll()');
    } finally {
      await c.close();
    }
    assert.deepEqual(coord.offsetCommits, [], 'no commit of its own on revocation');
  });
});

test('exactly-once: after a loss while the application holds records, pendingOffsets() and groupMetadata() refuse; the next poll goes on from the committed offsets', async () => {
  await withFake(async (broker) => {
    broker.appendBatch('t', txn(1, 0, ['a', 'b'])); // 0-1
    broker.appendBatch('t', marker(1, true)); // 2
    const coord = new ScriptedCoordinator();
    coord.committed = 0;
    const c = member(broker, coord, { delivery: 'exactly-once' });
    try {
      let held: Array<{ offset: number }> = [];
      await until(async () => (held = await c.poll(100)).length > 0, 'a batch');
      assert.deepEqual(held.map((m) => m.offset), [0, 1]);
      assert.deepEqual(c.pendingOffsets(), [{ topic: 't', partition: 0, offset: 3 }]);
      coord.fenceNext = true; // the coordinator fenced this member meanwhile: t/0 is lost
      await until(() => c.assignment().length === 0 || !coord.fenceNext, 'the fencing heartbeat');
      await until(() => {
        try {
          c.pendingOffsets();
          return false;
        } catch (e) {
          return e instanceof SluiceError && e.code === ErrorCode.FENCED_MEMBER_EPOCH;
        }
      }, 'pendingOffsets to refuse');
      assert.throws(() => c.groupMetadata(), (e: unknown) => e instanceof SluiceError && e.code === ErrorCode.FENCED_MEMBER_EPOCH);
      // The application aborts and polls again: the member rejoined, t/0 restarts at the committed offset 0.
      const again: number[] = [];
      await until(async () => {
        for (const m of await c.poll(100)) again.push(m.offset);
        return again.length >= 2;
      }, 'the records again');
      assert.deepEqual(again, [0, 1]);
      assert.deepEqual(c.pendingOffsets(), [{ topic: 't', partition: 0, offset: 3 }]);
    } finally {
      await c.close();
    }
  });
});

test('at-least-once: committed offsets move past a trailing commit marker and control records are never returned', async () => {
  await withFake(async (broker) => {
    broker.appendBatch('t', txn(1, 0, ['a', 'b'])); // 0-1
    broker.appendBatch('t', marker(1, true)); // 2
    const coord = new ScriptedCoordinator();
    const c = member(broker, coord, { deliveryMode: 'at-least-once' });
    try {
      assert.equal(c.isolation, 'read_uncommitted');
      const got: number[] = [];
      await until(async () => {
        for (const m of await c.poll(100)) got.push(m.offset);
        return c.position('t', 0) === 3;
      }, 'position 3');
      assert.deepEqual(got, [0, 1]);
      await c.commit();
      assert.equal(coord.committed, 3, 'the marker is consumed with the batch before it: lag 0, not 1');
    } finally {
      await c.close();
    }
  });
});

test('at-least-once iterator: the consumed offset includes the marker after the last message', async () => {
  await withFake(async (broker) => {
    broker.appendBatch('t', txn(1, 0, ['a'])); // 0
    broker.appendBatch('t', marker(1, true)); // 1
    const coord = new ScriptedCoordinator();
    const c = member(broker, coord, {});
    try {
      const it = c[Symbol.asyncIterator]();
      const first = await it.next();
      assert.equal(first.value?.offset, 0);
      // Ask for the next message (none comes): the first is consumed, and with it the marker.
      const pending = it.next();
      await until(() => c.consumedOffsets()[0]?.offset === 2, 'consumed offset 2');
      await c.close();
      assert.equal((await pending).done, true);
    } finally {
      await c.close();
    }
  });
});

test('delivery options: exactly-once needs read_committed and no auto-commit; delivery and deliveryMode must agree', async () => {
  await withFake(async (broker) => {
    const coord = new ScriptedCoordinator();
    assert.throws(() => member(broker, coord, { delivery: 'exactly-once', isolation: 'read_uncommitted' }), /read_committed/);
    assert.throws(() => member(broker, coord, { delivery: 'exactly-once', autoCommit: true }), /transaction/);
    assert.throws(() => member(broker, coord, { delivery: 'exactly-once', deliveryMode: 'at-least-once' }), /disagree/);
    assert.throws(() => member(broker, coord, { delivery: 'twice' as never }), /exactly-once/);
    const eos = member(broker, coord, { delivery: 'exactly-once' });
    await assert.rejects(eos.run({ eachMessage: async () => {} }), /run\(\) does not do exactly-once/);
    await eos.close();
    const ok = member(broker, coord, { delivery: 'at-most-once', isolation: 'read_committed' });
    assert.equal(ok.delivery, 'at-most-once');
    assert.equal(ok.isolation, 'read_committed');
    await ok.close();
  });
});
