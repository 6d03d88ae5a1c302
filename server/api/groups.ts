/** Consumer-group APIs: FindCoordinator, ConsumerGroupHeartbeat, OffsetCommit/Fetch, group admin. */
import type { ConsumerGroupHeartbeatRequest } from '../../protocol/apis/consumer-group-heartbeat.ts';
import type { FindCoordinatorRequest, FindCoordinatorResponse } from '../../protocol/apis/find-coordinator.ts';
import type { DeleteGroupsRequest, DescribeGroupsRequest, DescribeGroupsResponse } from '../../protocol/apis/groups.ts';
import type { OffsetCommitRequest } from '../../protocol/apis/offset-commit.ts';
import type { OffsetFetchRequest } from '../../protocol/apis/offset-fetch.ts';
import type { TxnOffsetCommitRequest } from '../../protocol/apis/txn-offset-commit.ts';
import { ErrorCode } from '../../protocol/errors.ts';
import { OFFSETS_TOPIC, offsetsPartitionFor } from '../group/offset-store.ts';
import type { HandlerResult } from '../network/reply.ts';
import { TXN_STATE_TOPIC, txnStatePartitionFor } from '../txn/transaction-log.ts';
import type { BrokerContext } from './context.ts';
import type { MemberOwner } from '../group/consumer-group.ts';
import {
  checkEntries,
  DELETE_GROUPS_GROUP_IDS_MAX,
  DESCRIBE_GROUPS_GROUP_IDS_MAX,
  HEARTBEAT_OWNED_PARTITIONS_MAX,
  HEARTBEAT_TOPIC_NAMES_MAX,
  OFFSET_COMMIT_PARTITIONS_MAX,
  OFFSET_FETCH_PARTITIONS_MAX,
  partitionEntries,
  yieldToEventLoop,
} from './request-limits.ts';

/**
 * A group's coordinator is the leader of the offsets-topic partition its id hashes to; a
 * transactional id's, the leader of its `__transaction_state` partition (SPEC §6.9, §7.6).
 */
export function handleFindCoordinator(ctx: BrokerContext, req: FindCoordinatorRequest): HandlerResult {
  const fail = (code: ErrorCode, message: string): HandlerResult => ({ control: { errorCode: code, errorMessage: message, nodeId: -1, host: '', port: -1 } satisfies FindCoordinatorResponse });
  if (req.keyType !== 'group' && req.keyType !== 'transaction') return fail(ErrorCode.MALFORMED_REQUEST, `keyType ${JSON.stringify(req.keyType)} is neither 'group' nor 'transaction'`);
  const group = req.keyType === 'group';
  const state = group ? ctx.topics.partitionState(OFFSETS_TOPIC, offsetsPartitionFor(req.key)) : ctx.topics.partitionState(TXN_STATE_TOPIC, txnStatePartitionFor(req.key));
  const broker = state && ctx.store.liveBrokers().find((b) => b.brokerId === state.leader);
  if (!broker) return fail(ErrorCode.COORDINATOR_NOT_AVAILABLE, group ? 'the offsets topic has no live leader for this group yet' : 'the transaction state topic has no live leader for this transactional id yet');
  const response: FindCoordinatorResponse = { errorCode: 0, errorMessage: null, nodeId: broker.brokerId, host: broker.host, port: broker.port };
  return { control: response };
}

/** owner: the connection and principal of the request, which a member id is bound to (group-coordinator.ts). */
export function handleHeartbeat(ctx: BrokerContext, req: ConsumerGroupHeartbeatRequest, clientId: string, clientHost: string, owner?: MemberOwner): HandlerResult {
  checkEntries('ConsumerGroupHeartbeat', 'subscribedTopicNames', req.subscribedTopicNames?.length ?? 0, HEARTBEAT_TOPIC_NAMES_MAX);
  checkEntries('ConsumerGroupHeartbeat', 'ownedPartitions entries', partitionEntries(req.ownedPartitions), HEARTBEAT_OWNED_PARTITIONS_MAX);
  return { control: owner ? ctx.groups.heartbeat(req, clientId, clientHost, Date.now(), owner) : ctx.groups.heartbeat(req, clientId, clientHost) };
}

export async function handleOffsetCommit(ctx: BrokerContext, req: OffsetCommitRequest): Promise<HandlerResult> {
  checkEntries('OffsetCommit', 'partitions', partitionEntries(req.topics), OFFSET_COMMIT_PARTITIONS_MAX);
  return { control: await ctx.groups.commitOffsets(req) };
}

export async function handleTxnOffsetCommit(ctx: BrokerContext, req: TxnOffsetCommitRequest): Promise<HandlerResult> {
  checkEntries('TxnOffsetCommit', 'partitions', partitionEntries(req.topics), OFFSET_COMMIT_PARTITIONS_MAX);
  return { control: await ctx.groups.txnCommitOffsets(req) };
}

export function handleOffsetFetch(ctx: BrokerContext, req: OffsetFetchRequest): HandlerResult {
  checkEntries('OffsetFetch', 'partitions', partitionEntries(req.topics), OFFSET_FETCH_PARTITIONS_MAX);
  return { control: ctx.groups.fetchOffsets(req) };
}

export function handleListGroups(ctx: BrokerContext): HandlerResult {
  return { control: ctx.groups.listGroups() };
}

/** Groups described per event-loop turn: one group of 1000 members over 10000 partitions takes ~10-45 ms. */
const DESCRIBE_GROUPS_PER_TURN = 1;

/** Described in slices, yielding in between, so other clients are served meanwhile. */
export async function handleDescribeGroups(ctx: BrokerContext, req: DescribeGroupsRequest): Promise<HandlerResult> {
  checkEntries('DescribeGroups', 'groupIds', req.groupIds.length, DESCRIBE_GROUPS_GROUP_IDS_MAX);
  const groupsPerTurn = DESCRIBE_GROUPS_PER_TURN;
  const groups: DescribeGroupsResponse['groups'] = [];
  for (let i = 0; i < req.groupIds.length; i += groupsPerTurn) {
    if (i > 0) await yieldToEventLoop();
    groups.push(...ctx.groups.describeGroups(req.groupIds.slice(i, i + groupsPerTurn)).groups);
  }
  return { control: { groups } satisfies DescribeGroupsResponse };
}

export async function handleDeleteGroups(ctx: BrokerContext, req: DeleteGroupsRequest): Promise<HandlerResult> {
  checkEntries('DeleteGroups', 'groupIds', req.groupIds.length, DELETE_GROUPS_GROUP_IDS_MAX);
  return { control: await ctx.groups.deleteGroups(req.groupIds) };
}
