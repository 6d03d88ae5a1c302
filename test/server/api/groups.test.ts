// The group API handlers (SPEC §6.9–6.15): FindCoordinator answers from the metadata (the
// leader of the group's __consumer_offsets partition, murmur2 mod 8, with its advertised
// address), with MALFORMED_REQUEST in the body for a keyType other than 'group' and
// COORDINATOR_NOT_AVAILABLE without a live leader; the other handlers pass the request to the
// coordinator and answer what it answers, after refusing requests over the entry limits with
// MALFORMED_REQUEST (a request-level error: nothing reaches the coordinator). Then the same
// handlers over a real GroupCoordinator for the per-group errors of an unknown group.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ConsumerGroupHeartbeatRequest } from '../../../protocol/apis/consumer-group-heartbeat.ts';
import type { FindCoordinatorRequest, FindCoordinatorResponse } from '../../../protocol/apis/find-coordinator.ts';
import type { DeleteGroupsResponse, DescribeGroupsResponse, ListGroupsResponse } from '../../../protocol/apis/groups.ts';
import type { OffsetCommitRequest, OffsetCommitResponse } from '../../../protocol/apis/offset-commit.ts';
import type { OffsetFetchRequest, OffsetFetchResponse } from '../../../protocol/apis/offset-fetch.ts';
import { ErrorCode, SluiceError } from '../../../protocol/errors.ts';
import { murmur2 } from '../../../protocol/murmur2.ts';
import type { BrokerContext } from '../../../server/api/context.ts';
import * as api from '../../../server/api/groups.ts';
import { DEFAULT_COORDINATOR_CONFIG, GroupCoordinator } from '../../../server/group/group-coordinator.ts';
import { TXN_STATE_TOPIC } from '../../../server/txn/transaction-log.ts';
import { OFFSETS_TOPIC, OFFSETS_TOPIC_PARTITIONS, OffsetStore } from '../../../server/group/offset-store.ts';
import type { BrokerRegistration, PartitionState } from '../../../server/metadata/cluster-store.ts';
import { recordingLogger } from '../log/helpers.ts';
import { openStack, replying, replyingAsync } from './stack.ts';

const handleFindCoordinator = replying(api.handleFindCoordinator);
const handleHeartbeat = replying(api.handleHeartbeat);
const handleOffsetFetch = replying(api.handleOffsetFetch);
const handleListGroups = replying(api.handleListGroups);
const handleOffsetCommit = replyingAsync(api.handleOffsetCommit);
const handleDescribeGroups = replyingAsync(api.handleDescribeGroups);
const handleDeleteGroups = replyingAsync(api.handleDeleteGroups);

/** SPEC §7.4: (murmur2(groupId) AND 0x7fffffff) mod 8. */
const specPartition = (groupId: string) => (murmur2(new TextEncoder().encode(groupId)) & 0x7fffffff) % 8;

function findContext(states: Map<number, PartitionState>, live: BrokerRegistration[], txnStates = new Map<number, PartitionState>()): { ctx: BrokerContext; asked: Array<[string, number]> } {
  const asked: Array<[string, number]> = [];
  const topics = { partitionState: (topic: string, partition: number) => (asked.push([topic, partition]), topic === OFFSETS_TOPIC ? states.get(partition) : topic === TXN_STATE_TOPIC ? txnStates.get(partition) : undefined) };
  const store = { liveBrokers: () => live };
  return { ctx: { topics, store } as unknown as BrokerContext, asked };
}
const state = (leader: number): PartitionState => ({ leader, leaderEpoch: 0, replicas: [1, 2, 3], isr: [1, 2, 3], partitionEpoch: 1 });
const brokers: BrokerRegistration[] = [1, 2, 3].map((id) => ({ brokerId: id, host: `h${id}`, port: 9000 + id, startedAtMs: 0 }));
const find = (ctx: BrokerContext, req: FindCoordinatorRequest) => handleFindCoordinator(ctx, req).control as FindCoordinatorResponse;

test('FindCoordinator: the live leader of the group\'s offsets partition, with its address', () => {
  assert.equal(OFFSETS_TOPIC_PARTITIONS, 8);
  // Every partition led by a different broker than its neighbours, so a wrong partition shows.
  const states = new Map(Array.from({ length: 8 }, (_, p) => [p, state((p % 3) + 1)] as const));
  const { ctx, asked } = findContext(states, brokers);
  const groups = ['g', 'orders', 'payments-consumer', 'x', 'ζ-group', ''];
  assert.ok(new Set(groups.map(specPartition)).size > 2, 'the groups spread over several partitions');
  for (const g of groups) {
    const leader = (specPartition(g) % 3) + 1;
    assert.deepEqual(find(ctx, { key: g, keyType: 'group' }), { errorCode: 0, errorMessage: null, nodeId: leader, host: `h${leader}`, port: 9000 + leader }, `group ${JSON.stringify(g)}`);
  }
  assert.deepEqual(asked, groups.map((g) => [OFFSETS_TOPIC, specPartition(g)]));
});

test('FindCoordinator keyType transaction: the live leader of the id\'s __transaction_state partition (SPEC §7.6)', () => {
  // Transaction state partitions led by brokers other than the offsets partitions' leaders.
  const offsets = new Map(Array.from({ length: 8 }, (_, p) => [p, state(1)] as const));
  const txn = new Map(Array.from({ length: 8 }, (_, p) => [p, state((p % 2) + 2)] as const));
  const { ctx, asked } = findContext(offsets, brokers, txn);
  for (const id of ['tx-a', 'tx-b', 'payments', 'ζ']) {
    const leader = (specPartition(id) % 2) + 2;
    assert.deepEqual(find(ctx, { key: id, keyType: 'transaction' }), { errorCode: 0, errorMessage: null, nodeId: leader, host: `h${leader}`, port: 9000 + leader }, id);
  }
  assert.deepEqual(asked.map(([t]) => t), [TXN_STATE_TOPIC, TXN_STATE_TOPIC, TXN_STATE_TOPIC, TXN_STATE_TOPIC]);
  assert.equal(find(findContext(offsets, brokers).ctx, { key: 'tx-a', keyType: 'transaction' }).errorCode, ErrorCode.COORDINATOR_NOT_AVAILABLE, 'no __transaction_state yet');
});

test('FindCoordinator: keyType other than group or transaction is MALFORMED_REQUEST in the body; no live leader is COORDINATOR_NOT_AVAILABLE', () => {
  const g = 'g';
  const p = specPartition(g);
  const failed = (code: number) => ({ errorCode: code, nodeId: -1, host: '', port: -1 });
  const strip = (r: FindCoordinatorResponse) => {
    assert.equal(typeof r.errorMessage, 'string', 'an error says what was wrong');
    return { errorCode: r.errorCode, nodeId: r.nodeId, host: r.host, port: r.port };
  };
  const ok = findContext(new Map([[p, state(2)]]), brokers);
  assert.deepEqual(strip(find(ok.ctx, { key: g, keyType: 'broker' as 'group' })), failed(ErrorCode.MALFORMED_REQUEST));
  assert.deepEqual(ok.asked, [], 'the keyType is checked before anything is looked up');
  // The offsets topic does not exist yet.
  assert.deepEqual(strip(find(findContext(new Map(), brokers).ctx, { key: g, keyType: 'group' })), failed(ErrorCode.COORDINATOR_NOT_AVAILABLE));
  // Offline partition.
  assert.deepEqual(strip(find(findContext(new Map([[p, state(-1)]]), brokers).ctx, { key: g, keyType: 'group' })), failed(ErrorCode.COORDINATOR_NOT_AVAILABLE));
  // A leader that is no longer live.
  assert.deepEqual(strip(find(findContext(new Map([[p, state(2)]]), brokers.filter((b) => b.brokerId !== 2)).ctx, { key: g, keyType: 'group' })), failed(ErrorCode.COORDINATOR_NOT_AVAILABLE));
  assert.equal(find(ok.ctx, { key: g, keyType: 'group' }).nodeId, 2);
});

/** A coordinator that records each call and answers a distinct object. */
function recordingGroups() {
  const calls: Array<[string, unknown[]]> = [];
  const answer = (name: string) => (...args: unknown[]) => {
    calls.push([name, args]);
    return { answeredBy: name, call: calls.length };
  };
  const groups = {
    heartbeat: answer('heartbeat'),
    commitOffsets: async (...args: unknown[]) => answer('commitOffsets')(...args),
    fetchOffsets: answer('fetchOffsets'),
    listGroups: answer('listGroups'),
    describeGroups: (ids: string[]) => {
      calls.push(['describeGroups', [ids]]);
      return { groups: ids.map((groupId) => ({ groupId, errorCode: 0, described: true })) };
    },
    deleteGroups: async (...args: unknown[]) => answer('deleteGroups')(...args),
  };
  return { ctx: { groups } as unknown as BrokerContext, calls };
}

const heartbeatReq = (names: number, owned: number): ConsumerGroupHeartbeatRequest => ({
  groupId: 'g', memberId: 'm', memberEpoch: 0, rebalanceTimeoutMs: null, sessionTimeoutMs: null,
  subscribedTopicNames: Array.from({ length: names }, (_, i) => `t${i}`), subscribedTopicRegex: null, assignor: null,
  ownedPartitions: [{ topic: 't0', partitions: Array.from({ length: owned }, (_, i) => i) }],
});
const commitReq = (n: number): OffsetCommitRequest => ({ groupId: 'g', memberId: 'm', memberEpoch: 1, topics: [{ topic: 't', partitions: Array.from({ length: n }, (_, partition) => ({ partition, offset: 1, metadata: null })) }] });
const fetchReq = (n: number): OffsetFetchRequest => ({ groupId: 'g', memberId: null, memberEpoch: -1, topics: [{ topic: 't', partitions: Array.from({ length: n }, (_, i) => i) }] });
const ids = (n: number) => Array.from({ length: n }, (_, i) => `g${i}`);

function assertMalformed(fn: () => unknown): void {
  assert.throws(fn, (e: unknown) => e instanceof SluiceError && e.code === ErrorCode.MALFORMED_REQUEST);
}
async function assertMalformedAsync(fn: () => Promise<unknown>): Promise<void> {
  await assert.rejects(fn, (e: unknown) => e instanceof SluiceError && e.code === ErrorCode.MALFORMED_REQUEST);
}

test('heartbeat, commit, fetch, list, describe and delete go to the coordinator, whose answer is the response', async () => {
  const { ctx, calls } = recordingGroups();
  const hb = heartbeatReq(2, 3);
  assert.deepEqual(handleHeartbeat(ctx, hb, 'client-1', '10.0.0.1').control, { answeredBy: 'heartbeat', call: 1 });
  assert.deepEqual(calls.at(-1), ['heartbeat', [hb, 'client-1', '10.0.0.1']]);
  const commit = commitReq(2);
  assert.deepEqual((await handleOffsetCommit(ctx, commit)).control, { answeredBy: 'commitOffsets', call: 2 });
  assert.deepEqual(calls.at(-1), ['commitOffsets', [commit]]);
  const fetch = fetchReq(2);
  assert.deepEqual(handleOffsetFetch(ctx, fetch).control, { answeredBy: 'fetchOffsets', call: 3 });
  assert.deepEqual(calls.at(-1), ['fetchOffsets', [fetch]]);
  assert.deepEqual(handleOffsetFetch(ctx, { ...fetch, topics: null }).control, { answeredBy: 'fetchOffsets', call: 4 }, 'topics nil: every committed offset');
  assert.deepEqual(handleListGroups(ctx).control, { answeredBy: 'listGroups', call: 5 });
  assert.deepEqual((await handleDeleteGroups(ctx, { groupIds: ['a', 'b', 'a'] })).control, { answeredBy: 'deleteGroups', call: 6 });
  assert.deepEqual(calls.at(-1), ['deleteGroups', [['a', 'b', 'a']]]);
  // DescribeGroups: one result per request entry, same order, however the work is sliced.
  const described = (await handleDescribeGroups(ctx, { groupIds: ['c', 'a', 'b', 'a'] })).control as { groups: Array<{ groupId: string }> };
  assert.deepEqual(described.groups.map((g) => g.groupId), ['c', 'a', 'b', 'a']);
  const asked = calls.filter(([name]) => name === 'describeGroups').flatMap(([, args]) => args[0] as string[]);
  assert.deepEqual(asked, ['c', 'a', 'b', 'a']);
});

test('entry limits of SPEC §6: at the limit passes, one over is MALFORMED_REQUEST and the coordinator is not asked', async () => {
  const { ctx, calls } = recordingGroups();
  assertMalformed(() => handleHeartbeat(ctx, heartbeatReq(10_001, 1), 'c', 'h'));
  assertMalformed(() => handleHeartbeat(ctx, heartbeatReq(1, 10_001), 'c', 'h'));
  await assertMalformedAsync(() => handleOffsetCommit(ctx, commitReq(10_001)));
  assertMalformed(() => handleOffsetFetch(ctx, fetchReq(10_001)));
  await assertMalformedAsync(() => handleDescribeGroups(ctx, { groupIds: ids(51) }));
  await assertMalformedAsync(() => handleDeleteGroups(ctx, { groupIds: ids(1001) }));
  assert.equal(calls.length, 0, 'nothing reached the coordinator');
  handleHeartbeat(ctx, heartbeatReq(10_000, 10_000), 'c', 'h');
  await handleOffsetCommit(ctx, commitReq(10_000));
  handleOffsetFetch(ctx, fetchReq(10_000));
  await handleDeleteGroups(ctx, { groupIds: ids(1000) });
  const described = (await handleDescribeGroups(ctx, { groupIds: ids(50) })).control as DescribeGroupsResponse;
  assert.equal(described.groups.length, 50);
  assert.deepEqual(calls.filter(([n]) => n !== 'describeGroups').map(([n]) => n), ['heartbeat', 'commitOffsets', 'fetchOffsets', 'deleteGroups']);
});

test('over a real coordinator: unknown and invalid groups are GROUP_ID_NOT_FOUND, OffsetFetch answers -1, ListGroups lists what exists', async () => {
  const s = await openStack();
  const log = recordingLogger();
  const offsets = new OffsetStore(s.topics, async (partition, records) => {
    const l = s.topics.partition(OFFSETS_TOPIC, partition)!;
    await l.waitForFlush(l.append(records).lastOffset);
  }, log);
  try {
    await offsets.ensureTopic(1);
    for (let p = 0; p < OFFSETS_TOPIC_PARTITIONS; p++) await offsets.loadPartition(p);
    const coordinator = new GroupCoordinator(s.topics, offsets, () => true, DEFAULT_COORDINATOR_CONFIG, log);
    const ctx: BrokerContext = { ...s.ctx, groups: coordinator };
    await s.topics.create('t', 2, 1, {});
    assert.deepEqual((handleListGroups(ctx).control as ListGroupsResponse).groups, []);
    // A commit without a member (memberEpoch -1) creates the group (§6.11).
    const committed = (await handleOffsetCommit(ctx, { groupId: 'g', memberId: '', memberEpoch: -1, topics: [{ topic: 't', partitions: [{ partition: 1, offset: 42, metadata: 'm' }] }] })).control as OffsetCommitResponse;
    assert.equal(committed.errorCode, 0, committed.errorMessage ?? '');
    assert.deepEqual(committed.topics, [{ topic: 't', partitions: [{ partition: 1, errorCode: 0 }] }]);
    const fetched = (handleOffsetFetch(ctx, { groupId: 'g', memberId: null, memberEpoch: -1, topics: [{ topic: 't', partitions: [0, 1] }] }).control as OffsetFetchResponse);
    assert.equal(fetched.errorCode, 0);
    assert.deepEqual(fetched.topics[0]!.partitions.map((p) => [p.partition, p.offset, p.errorCode]), [[0, -1, 0], [1, 42, 0]]);
    assert.deepEqual((handleListGroups(ctx).control as ListGroupsResponse).groups, [{ groupId: 'g', state: 'empty', members: 0 }]);
    const described = (await handleDescribeGroups(ctx, { groupIds: ['nope', 'g', ''] })).control as DescribeGroupsResponse;
    assert.deepEqual(described.groups.map((d) => [d.groupId, d.errorCode, d.state]), [['nope', ErrorCode.GROUP_ID_NOT_FOUND, 'empty'], ['g', 0, 'empty'], ['', ErrorCode.GROUP_ID_NOT_FOUND, 'empty']]);
    const deleted = (await handleDeleteGroups(ctx, { groupIds: ['g', 'nope', 'g', ''] })).control as DeleteGroupsResponse;
    assert.deepEqual(deleted.groups, [
      { groupId: 'g', errorCode: 0 },
      { groupId: 'nope', errorCode: ErrorCode.GROUP_ID_NOT_FOUND },
      { groupId: 'g', errorCode: ErrorCode.GROUP_ID_NOT_FOUND },
      { groupId: '', errorCode: ErrorCode.GROUP_ID_NOT_FOUND },
    ]);
    const after = handleOffsetFetch(ctx, { groupId: 'g', memberId: null, memberEpoch: -1, topics: [{ topic: 't', partitions: [1] }] }).control as OffsetFetchResponse;
    assert.equal(after.topics[0]!.partitions[0]!.offset, -1, 'deleted with its offsets');
  } finally {
    await s.close();
  }
});
