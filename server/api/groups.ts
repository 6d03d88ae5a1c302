/** Consumer-group APIs: FindCoordinator, ConsumerGroupHeartbeat, OffsetCommit/Fetch, group admin. */
import type { ConsumerGroupHeartbeatRequest } from '../../protocol/apis/consumer-group-heartbeat.ts';
import type { FindCoordinatorRequest, FindCoordinatorResponse } from '../../protocol/apis/find-coordinator.ts';
import type { DeleteGroupsRequest, DescribeGroupsRequest } from '../../protocol/apis/groups.ts';
import type { OffsetCommitRequest } from '../../protocol/apis/offset-commit.ts';
import type { OffsetFetchRequest } from '../../protocol/apis/offset-fetch.ts';
import { ErrorCode } from '../../protocol/errors.ts';
import type { HandlerResult } from '../network/reply.ts';
import type { BrokerContext } from './context.ts';

export function handleFindCoordinator(ctx: BrokerContext, req: FindCoordinatorRequest): HandlerResult {
  const response: FindCoordinatorResponse =
    req.keyType === 'group'
      ? { errorCode: 0, errorMessage: null, nodeId: ctx.config.brokerId, host: ctx.config.advertisedHost, port: ctx.config.advertisedPort }
      : { errorCode: ErrorCode.MALFORMED_REQUEST, errorMessage: `keyType ${JSON.stringify(req.keyType)} is not 'group'`, nodeId: -1, host: '', port: -1 };
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
