/**
 * The membership state machine (client/group/membership.ts) against a scripted in-process
 * coordinator: revocation is reconciled (and reported) before new partitions are taken,
 * fenced members drop everything without committing and rejoin with epoch 0, and owned
 * partitions are reported when they change.
 */
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import type { ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse, TopicPartitions } from '../../../protocol/apis/consumer-group-heartbeat.ts';
import type { OffsetCommitResponse, OffsetFetchResponse } from '../../../protocol/apis/index.ts';
import { ErrorCode } from '../../../protocol/errors.ts';
import type { GroupTransport } from '../../../client/group/coordinator.ts';
import { GroupMembership, type AssignmentChange, type TopicPartition } from '../../../client/group/membership.ts';

type Respond = (req: ConsumerGroupHeartbeatRequest) => Partial<ConsumerGroupHeartbeatResponse>;

class FakeCoordinator implements GroupTransport {
  readonly requests: ConsumerGroupHeartbeatRequest[] = [];
  constructor(public respond: Respond) {}
  async heartbeat(req: ConsumerGroupHeartbeatRequest): Promise<ConsumerGroupHeartbeatResponse> {
    this.requests.push(structuredClone(req));
    await new Promise((r) => setTimeout(r, 1));
    return { errorCode: 0, errorMessage: null, memberId: req.memberId, memberEpoch: Math.max(1, req.memberEpoch), heartbeatIntervalMs: 20, assignment: null, ...this.respond(req) };
  }
  async offsetCommit(): Promise<OffsetCommitResponse> { throw new Error('not used'); }
  async offsetFetch(): Promise<OffsetFetchResponse> { throw new Error('not used'); }
}

const tps = (topic: string, ...ps: number[]): TopicPartitions[] => [{ topic, partitions: ps }];
const fmt = (l: TopicPartition[]): string => l.map((x) => `${x.topic}-${x.partition}`).sort().join(',');

async function until(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function recorder() {
  const log: string[] = [];
  const changes: AssignmentChange[] = [];
  let revokeDelayMs = 0;
  const hooks = {
    revoke: async (ps: TopicPartition[]) => {
      log.push(`revoke-start ${fmt(ps)}`);
      await new Promise((r) => setTimeout(r, revokeDelayMs));
      log.push(`revoke-done ${fmt(ps)}`);
    },
    assign: async (ps: TopicPartition[]) => { log.push(`assign ${fmt(ps)}`); },
    lose: (ps: TopicPartition[]) => { log.push(`lose ${fmt(ps)}`); },
    changed: (e: AssignmentChange) => { changes.push(e); },
    fatal: (e: Error) => { log.push(`fatal ${e.message}`); },
  };
  return { log, changes, hooks, setRevokeDelay: (ms: number) => { revokeDelayMs = ms; } };
}

const baseOptions = { groupId: 'g', memberId: 'm-1', subscription: { topics: ['t'] }, assignor: 'uniform', sessionTimeoutMs: 10_000, rebalanceTimeoutMs: 30_000, retryBackoffMs: 10 };

test('revocation completes and is reported before new partitions are assigned', async () => {
  let phase: 'first' | 'move' = 'first';
  const coord = new FakeCoordinator((req) => {
    if (phase === 'first') return { memberEpoch: 1, assignment: tps('t', 0, 1) };
    // The coordinator moves t-1 away and gives t-2 (free) in the same answer.
    return { memberEpoch: 2, assignment: tps('t', 0, 2) };
  });
  const r = recorder();
  const m = new GroupMembership(coord, r.hooks, baseOptions);
  m.start();
  try {
    await until(() => fmt(m.ownedPartitions()) === 't-0,t-1', 'first assignment');
    r.setRevokeDelay(100);
    const from = coord.requests.length;
    phase = 'move';
    await until(() => fmt(m.ownedPartitions()) === 't-0,t-2', 'second assignment');
    assert.deepEqual(r.log, ['assign t-0,t-1', 'revoke-start t-1', 'revoke-done t-1', 'assign t-2']);
    // Owned partitions are reported as they change: first without t-1, then with t-2.
    await until(() => coord.requests.some((q) => q.ownedPartitions && fmt(q.ownedPartitions.flatMap((t) => t.partitions.map((p) => ({ topic: t.topic, partition: p })))) === 't-0,t-2'), 'report of t-0,t-2');
    const reported = coord.requests.slice(from).filter((q) => q.ownedPartitions !== null).map((q) => fmt(q.ownedPartitions!.flatMap((t) => t.partitions.map((p) => ({ topic: t.topic, partition: p })))));
    // A heartbeat between revoke-done and the assignment of t-2 reports 't-0'; when t-2 is
    // assigned before the next heartbeat leaves (a busy machine), the first report after the
    // revocation is already 't-0,t-2'. Either way t-1 and t-2 are never reported together, and
    // nothing reports t-1 once a report without it went out.
    const iShrunk = reported.indexOf('t-0');
    const iGrown = reported.indexOf('t-0,t-2');
    assert.ok(iGrown >= 0 && (iShrunk < 0 || iShrunk < iGrown), `reports in order: ${JSON.stringify(reported)}`);
    assert.ok(!reported.some((x) => x.includes('t-1') && x.includes('t-2')), `t-1 and t-2 never owned together: ${JSON.stringify(reported)}`);
    const firstWithout = reported.findIndex((x) => !x.includes('t-1'));
    assert.ok(reported.slice(firstWithout).every((x) => !x.includes('t-1')), `t-1 not reported again: ${JSON.stringify(reported)}`);
    assert.deepEqual(r.changes.map((c) => [fmt(c.assigned), fmt(c.revoked), fmt(c.owned)]), [['t-0,t-1', '', 't-0,t-1'], ['', 't-1', 't-0'], ['t-2', '', 't-0,t-2']]);
    // Once stable, heartbeats carry ownedPartitions null ("unchanged").
    const n = coord.requests.length;
    await until(() => coord.requests.length >= n + 3, 'more heartbeats');
    assert.ok(coord.requests.slice(n + 1).every((q) => q.ownedPartitions === null && q.subscribedTopicNames === null && q.memberEpoch === 2));
    assert.equal(m.state, 'stable');
  } finally {
    await m.leave();
  }
  const last = coord.requests.at(-1)!;
  assert.equal(last.memberEpoch, -1, 'leave sends epoch -1');
});

test('fenced: partitions are lost without revoke/commit, then the member rejoins with epoch 0', async () => {
  let fence = false;
  let joins = 0;
  const coord = new FakeCoordinator((req) => {
    if (req.memberEpoch === 0) {
      joins++;
      return { memberEpoch: joins * 10, assignment: tps('t', 0, 1) };
    }
    if (fence) {
      fence = false;
      return { errorCode: ErrorCode.FENCED_MEMBER_EPOCH, errorMessage: 'fenced', memberEpoch: -1, assignment: null };
    }
    return { memberEpoch: req.memberEpoch, assignment: tps('t', 0, 1) };
  });
  const r = recorder();
  const m = new GroupMembership(coord, r.hooks, baseOptions);
  m.start();
  try {
    await until(() => m.ownedPartitions().length === 2, 'assignment');
    assert.equal(m.memberEpoch, 10);
    const from = coord.requests.length;
    fence = true;
    await until(() => joins === 2 && m.ownedPartitions().length === 2, 'rejoin and reassignment');
    assert.deepEqual(r.log, ['assign t-0,t-1', 'lose t-0,t-1', 'assign t-0,t-1']);
    assert.ok(!r.log.some((l) => l.startsWith('revoke')), 'a fenced member does not revoke (commit)');
    const lost = r.changes.find((c) => c.lost)!;
    assert.equal(fmt(lost.revoked), 't-0,t-1');
    const rejoin = coord.requests.slice(from).find((q) => q.memberEpoch === 0)!;
    assert.equal(rejoin.memberId, 'm-1', 'same member id');
    assert.deepEqual(rejoin.subscribedTopicNames, ['t']);
    assert.equal(rejoin.assignor, 'uniform');
    assert.equal(rejoin.sessionTimeoutMs, 10_000);
    assert.deepEqual(rejoin.ownedPartitions, [], 'rejoin reports nothing owned');
    assert.equal(m.memberEpoch, 20);
  } finally {
    await m.leave();
  }
});

test('a revoke hook failing with UNKNOWN_MEMBER_ID (commit refused) is treated as fenced', async () => {
  let phase = 0;
  const coord = new FakeCoordinator((req) => {
    if (req.memberEpoch === 0) return { memberEpoch: 1, assignment: phase === 0 ? tps('t', 0, 1) : tps('t', 0) };
    return { memberEpoch: 2, assignment: phase === 0 ? tps('t', 0, 1) : tps('t', 0) };
  });
  const log: string[] = [];
  const { SluiceError } = await import('../../../protocol/errors.ts');
  const m = new GroupMembership(coord, {
    revoke: async () => { log.push('revoke'); throw new SluiceError(ErrorCode.UNKNOWN_MEMBER_ID, 'commit refused'); },
    assign: async (ps) => { log.push(`assign ${fmt(ps)}`); },
    lose: (ps) => { log.push(`lose ${fmt(ps)}`); },
    changed: () => {},
    fatal: () => {},
  }, baseOptions);
  m.start();
  try {
    await until(() => m.ownedPartitions().length === 2, 'assignment');
    phase = 1;
    await until(() => log.includes('lose t-0,t-1') && fmt(m.ownedPartitions()) === 't-0', 'fenced and rejoined');
    assert.deepEqual(log.slice(0, 3), ['assign t-0,t-1', 'revoke', 'lose t-0,t-1']);
  } finally {
    await m.leave();
  }
});

test('coordinator errors are retried with backoff; a fatal error stops the loop', async () => {
  let calls = 0;
  const coord = new FakeCoordinator(() => {
    calls++;
    if (calls <= 2) return { errorCode: ErrorCode.COORDINATOR_NOT_AVAILABLE, assignment: null };
    return { errorCode: ErrorCode.INVALID_REGULAR_EXPRESSION, errorMessage: 'bad regex', assignment: null };
  });
  const r = recorder();
  const m = new GroupMembership(coord, r.hooks, baseOptions);
  m.start();
  await until(() => r.log.some((l) => l.startsWith('fatal')), 'fatal');
  assert.equal(m.state, 'failed');
  assert.equal(m.isActive, false);
  assert.equal(calls, 3);
  await m.leave();
});
