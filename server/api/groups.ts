/** Consumer-group APIs: FindCoordinator, ConsumerGroupHeartbeat, OffsetCommit/Fetch, group admin. */
import type { ConsumerGroupHeartbeatRequest } from '../../protocol/apis/consumer-group-heartbeat.ts';
import type { FindCoordinatorRequest, FindCoordinatorResponse } from '../../protocol/apis/find-coordinator.ts';
import type { DeleteGroupsRequest, DescribeGroupsRequest } from '../../protocol/apis/groups.ts';
import type { OffsetCommitRequest } from '../../protocol/apis/offset-commit.ts';
import type { OffsetFetchRequest } from '../../protocol/apis/offset-fetch.ts';
import { ErrorCode } from '../../protocol/errors.ts';
import { OFFSETS_TOPIC, offsetsPartitionFor } from '../group/offset-store.ts';
import type { HandlerResult } from '../network/reply.ts';
import type { BrokerContext } from './context.ts';

/** A group's coordinator is the leader of the offsets-topic partition its id hashes to. */
export function handleFindCoordinator(ctx: BrokerContext, req: FindCoordinatorRequest): HandlerResult {
  const fail = (code: ErrorCode, message: string): HandlerResult => ({ control: { errorCode: code, errorMessage: message, nodeId: -1, host: '', port: -1 } satisfies FindCoordinatorResponse });
  if (req.keyType !== 'group') return fail(ErrorCode.MALFORMED_REQUEST, `keyType ${JSON.stringify(req.keyType)} is not 'group'`);
  const state = ctx.topics.partitionState(OFFSETS_TOPIC, offsetsPartitionFor(req.key));
  const broker = state && ctx.store.liveBrokers().find((b) => b.brokerId === state.leader);
  if (!broker) return fail(ErrorCode.COORDINATOR_NOT_AVAILABLE, 'the offsets topic has no live leader for this group yet');
  const response: FindCoordinatorResponse = { errorCode: 0, errorMessage: null, nodeId: broker.brokerId, host: broker.host, port: broker.port };
  return { control: response };
}

export function handleHeartbeat(ctx: BrokerContext, req: ConsumerGroupHeartbeatRequest, clientId: string, clientHost: string): HandlerResult {
  return { control: ctx.groups.heartbeat(req, clientId, clientHost) };
}

export async function handleOffsetCommit(ctx: BrokerContext, req: OffsetCommitRequest): Promise<HandlerResult> {
  return { control: await ctx.groups.commitOffsets(req) };
}

export function handleOffsetFetch(ctx: BrokerContext, req: OffsetFetchRequest): HandlerResult {
  return { control: ctx.groups.fetchOffsets(req) };
}

export function handleListGroups(ctx: BrokerContext): HandlerResult {
  return { control: ctx.groups.listGroups() };
}

export function handleDescribeGroups(ctx: BrokerContext, req: DescribeGroupsRequest): HandlerResult {
  return { control: ctx.groups.describeGroups(req.groupIds) };
}

export async function handleDeleteGroups(ctx: BrokerContext, req: DeleteGroupsRequest): Promise<HandlerResult> {
  return { control: await ctx.groups.deleteGroups(req.groupIds) };
}
