/**
 * Dispatch: checks the API key and version, decodes and type-checks the control section,
 * and calls the handler. Request-level problems become a response with a header errorCode;
 * the connection stays open.
 */
import { ApiKey, supportedVersions } from '../../protocol/api-keys.ts';
import type {
  AlterPartitionReassignmentsRequest,
  ConsumerGroupHeartbeatRequest,
  CreatePartitionsRequest,
  AlterTopicConfigsRequest,
  CreateTopicsRequest,
  DeleteGroupsRequest,
  DeleteTopicsRequest,
  DescribeGroupsRequest,
  DescribeTopicsRequest,
  FetchRequest,
  FindCoordinatorRequest,
  InitProducerIdRequest,
  AddPartitionsToTxnRequest,
  AddOffsetsToTxnRequest,
  EndTxnRequest,
  TxnOffsetCommitRequest,
  ListOffsetsRequest,
  MetadataRequest,
  OffsetCommitRequest,
  OffsetFetchRequest,
  OffsetForLeaderEpochRequest,
  ProduceRequest,
  ListDelayedRequest,
  CancelDelayedRequest,
} from '../../protocol/apis/index.ts';
import { handleCancelDelayed, handleListDelayed } from './delayed.ts';
import { handleDescribeArchive } from './archive.ts';
import type { DescribeArchiveRequest } from '../../protocol/apis/describe-archive.ts';
import { requestSchemas } from '../../protocol/apis/index.ts';
import { decodeBody } from '../../protocol/body.ts';
import { ErrorCode } from '../../protocol/errors.ts';
import type { RequestHeader } from '../../protocol/header.ts';
import { check } from '../../protocol/schema.ts';
import type { FollowerConnection } from '../cluster/replica-manager.ts';
import { NO_REPLY, type HandlerResult } from '../network/reply.ts';
import type { MetadataResponse } from '../../protocol/apis/metadata.ts';
import type { BrokerContext } from './context.ts';
import { handleFetch } from './fetch.ts';
import { handleDeleteGroups, handleDescribeGroups, handleFindCoordinator, handleHeartbeat, handleListGroups, handleOffsetCommit, handleOffsetFetch, handleTxnOffsetCommit } from './groups.ts';
import { handleListOffsets } from './list-offsets.ts';
import { apiVersions, handleApiVersions, handleMetadata } from './metadata.ts';
import { handleOffsetForLeaderEpoch } from './offset-for-leader-epoch.ts';
import { handleProduce } from './produce.ts';
import { handleAlterPartitionReassignments } from './reassignments.ts';
import { handleWriteTxnMarkers } from './txn-markers.ts';
import type { WriteTxnMarkersRequest } from '../../protocol/apis/write-txn-markers.ts';
import { handleAddOffsetsToTxn, handleAddPartitionsToTxn, handleEndTxn, handleInitProducerId } from './transactions.ts';
import { handleAlterTopicConfigs, handleCreatePartitions, handleCreateTopics, handleDeleteTopics, handleDescribeTopics } from './topics.ts';

/**
 * `principal`: the user the connection authenticated as (SPEC §2.6), null if none. With an
 * authorizer in the context (authentication required) every request but ApiVersions is
 * checked against the ACLs before its handler runs (SPEC §2.7, server/security/authorizer.ts).
 */
export function createRouter(ctx: BrokerContext) {
  return function route(header: RequestHeader, frame: Buffer, remoteHost: string, socket?: FollowerConnection, principal: string | null = null): Promise<HandlerResult> | HandlerResult {
    const range = supportedVersions[header.apiKey];
    if (!range) {
      return { errorCode: ErrorCode.UNKNOWN_API, control: { message: `API key ${header.apiKey} is not known to this broker` } };
    }
    if (header.apiVersion < range.min || header.apiVersion > range.max) {
      return {
        errorCode: ErrorCode.UNSUPPORTED_VERSION,
        control: { message: `API key ${header.apiKey} version ${header.apiVersion} is not supported (${range.min}-${range.max})`, ...apiVersions() },
      };
    }
    const body = decodeBody(frame, header.bodyOffset);
    const control = check<unknown>(requestSchemas[header.apiKey]!, body.control);
    // Only Produce carries record sets (SPEC §4.1); stray bytes elsewhere mean the client
    // framed the body wrongly, and guessing what it meant could act on a misread request.
    if (header.apiKey !== ApiKey.PRODUCE && body.data.length > 0) {
      return { errorCode: ErrorCode.MALFORMED_REQUEST, control: { message: `API key ${header.apiKey} carries no record sets, but its data section has ${body.data.length} bytes` } };
    }
    if (ctx.authorizer && header.apiKey !== ApiKey.API_VERSIONS) {
      const denied = ctx.authorizer.check(principal, header.apiKey, control);
      if (denied) return { errorCode: ErrorCode.AUTHORIZATION_FAILED, control: { message: denied } };
      if (header.apiKey === ApiKey.METADATA) {
        const r = handleMetadata(ctx, control as MetadataRequest);
        return r === NO_REPLY ? r : { ...r, control: ctx.authorizer.filterMetadata(principal, control as MetadataRequest, r.control as MetadataResponse) };
      }
    }
    switch (header.apiKey) {
      case ApiKey.PRODUCE:
        return handleProduce(ctx, control as ProduceRequest, body.data);
      case ApiKey.FETCH:
        return handleFetch(ctx, control as FetchRequest, socket);
      case ApiKey.LIST_OFFSETS:
        return handleListOffsets(ctx, control as ListOffsetsRequest);
      case ApiKey.METADATA:
        return handleMetadata(ctx, control as MetadataRequest);
      case ApiKey.API_VERSIONS:
        return handleApiVersions();
      case ApiKey.CREATE_TOPICS:
        return handleCreateTopics(ctx, control as CreateTopicsRequest);
      case ApiKey.DELETE_TOPICS:
        return handleDeleteTopics(ctx, control as DeleteTopicsRequest);
      case ApiKey.DESCRIBE_TOPICS:
        return handleDescribeTopics(ctx, control as DescribeTopicsRequest);
      case ApiKey.CREATE_PARTITIONS:
        return handleCreatePartitions(ctx, control as CreatePartitionsRequest);
      case ApiKey.ALTER_TOPIC_CONFIGS:
        return handleAlterTopicConfigs(ctx, control as AlterTopicConfigsRequest);
      case ApiKey.FIND_COORDINATOR:
        return handleFindCoordinator(ctx, control as FindCoordinatorRequest);
      case ApiKey.CONSUMER_GROUP_HEARTBEAT:
        return handleHeartbeat(ctx, control as ConsumerGroupHeartbeatRequest, header.clientId ?? '', remoteHost, socket ? { principal, connection: socket } : undefined);
      case ApiKey.OFFSET_COMMIT:
        return handleOffsetCommit(ctx, control as OffsetCommitRequest);
      case ApiKey.OFFSET_FETCH:
        return handleOffsetFetch(ctx, control as OffsetFetchRequest);
      case ApiKey.LIST_GROUPS:
        return handleListGroups(ctx);
      case ApiKey.DESCRIBE_GROUPS:
        return handleDescribeGroups(ctx, control as DescribeGroupsRequest);
      case ApiKey.DELETE_GROUPS:
        return handleDeleteGroups(ctx, control as DeleteGroupsRequest);
      case ApiKey.OFFSET_FOR_LEADER_EPOCH:
        return handleOffsetForLeaderEpoch(ctx, control as OffsetForLeaderEpochRequest);
      case ApiKey.ALTER_PARTITION_REASSIGNMENTS:
        return handleAlterPartitionReassignments(ctx, control as AlterPartitionReassignmentsRequest);
      case ApiKey.WRITE_TXN_MARKERS:
        return handleWriteTxnMarkers(ctx, control as WriteTxnMarkersRequest);
      case ApiKey.INIT_PRODUCER_ID:
        return handleInitProducerId(ctx, control as InitProducerIdRequest);
      case ApiKey.ADD_PARTITIONS_TO_TXN:
        return handleAddPartitionsToTxn(ctx, control as AddPartitionsToTxnRequest);
      case ApiKey.ADD_OFFSETS_TO_TXN:
        return handleAddOffsetsToTxn(ctx, control as AddOffsetsToTxnRequest);
      case ApiKey.END_TXN:
        return handleEndTxn(ctx, control as EndTxnRequest);
      case ApiKey.TXN_OFFSET_COMMIT:
        return handleTxnOffsetCommit(ctx, control as TxnOffsetCommitRequest);
      case ApiKey.LIST_DELAYED:
        return handleListDelayed(ctx, control as ListDelayedRequest);
      case ApiKey.CANCEL_DELAYED:
        return handleCancelDelayed(ctx, control as CancelDelayedRequest);
      case ApiKey.DESCRIBE_ARCHIVE:
        return handleDescribeArchive(ctx, control as DescribeArchiveRequest);
    }
    return { errorCode: ErrorCode.UNKNOWN_API, control: { message: `API key ${header.apiKey} has no handler` } };
  };
}
