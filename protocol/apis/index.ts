/** Request and response shapes per API key, for code that dispatches on the key. */
import { ApiKey } from '../api-keys.ts';
import type { Schema } from '../schema.ts';
import { apiVersionsRequestSchema, apiVersionsResponseSchema } from './api-versions.ts';
import { createTopicsRequestSchema, createTopicsResponseSchema } from './create-topics.ts';
import { deleteTopicsRequestSchema, deleteTopicsResponseSchema } from './delete-topics.ts';
import { describeTopicsRequestSchema, describeTopicsResponseSchema } from './describe-topics.ts';
import { fetchRequestSchema, fetchResponseSchema } from './fetch.ts';
import { listOffsetsRequestSchema, listOffsetsResponseSchema } from './list-offsets.ts';
import { metadataRequestSchema, metadataResponseSchema } from './metadata.ts';
import { produceRequestSchema, produceResponseSchema } from './produce.ts';
import { consumerGroupHeartbeatRequestSchema, consumerGroupHeartbeatResponseSchema } from './consumer-group-heartbeat.ts';
import { createPartitionsRequestSchema, createPartitionsResponseSchema } from './create-partitions.ts';
import { findCoordinatorRequestSchema, findCoordinatorResponseSchema } from './find-coordinator.ts';
import { deleteGroupsRequestSchema, deleteGroupsResponseSchema, describeGroupsRequestSchema, describeGroupsResponseSchema, listGroupsRequestSchema, listGroupsResponseSchema } from './groups.ts';
import { offsetCommitRequestSchema, offsetCommitResponseSchema } from './offset-commit.ts';
import { offsetFetchRequestSchema, offsetFetchResponseSchema } from './offset-fetch.ts';
import { offsetForLeaderEpochRequestSchema, offsetForLeaderEpochResponseSchema } from './offset-for-leader-epoch.ts';
import { alterPartitionReassignmentsRequestSchema, alterPartitionReassignmentsResponseSchema } from './alter-partition-reassignments.ts';
import { initProducerIdRequestSchema, initProducerIdResponseSchema } from './init-producer-id.ts';
import { addPartitionsToTxnRequestSchema, addPartitionsToTxnResponseSchema } from './add-partitions-to-txn.ts';
import { addOffsetsToTxnRequestSchema, addOffsetsToTxnResponseSchema } from './add-offsets-to-txn.ts';
import { endTxnRequestSchema, endTxnResponseSchema } from './end-txn.ts';
import { writeTxnMarkersRequestSchema, writeTxnMarkersResponseSchema } from './write-txn-markers.ts';
import { txnOffsetCommitRequestSchema, txnOffsetCommitResponseSchema } from './txn-offset-commit.ts';
import { listDelayedRequestSchema, listDelayedResponseSchema } from './list-delayed.ts';
import { cancelDelayedRequestSchema, cancelDelayedResponseSchema } from './cancel-delayed.ts';
import { describeArchiveRequestSchema, describeArchiveResponseSchema } from './describe-archive.ts';
import { saslAuthenticateRequestSchema, saslAuthenticateResponseSchema, saslHandshakeRequestSchema, saslHandshakeResponseSchema } from './sasl.ts';
import { alterTopicConfigsRequestSchema, alterTopicConfigsResponseSchema } from './alter-topic-configs.ts';

export const requestSchemas: Record<number, Schema> = {
  [ApiKey.API_VERSIONS]: apiVersionsRequestSchema,
  [ApiKey.METADATA]: metadataRequestSchema,
  [ApiKey.CREATE_TOPICS]: createTopicsRequestSchema,
  [ApiKey.DELETE_TOPICS]: deleteTopicsRequestSchema,
  [ApiKey.DESCRIBE_TOPICS]: describeTopicsRequestSchema,
  [ApiKey.PRODUCE]: produceRequestSchema,
  [ApiKey.FETCH]: fetchRequestSchema,
  [ApiKey.LIST_OFFSETS]: listOffsetsRequestSchema,
  [ApiKey.FIND_COORDINATOR]: findCoordinatorRequestSchema,
  [ApiKey.CONSUMER_GROUP_HEARTBEAT]: consumerGroupHeartbeatRequestSchema,
  [ApiKey.OFFSET_COMMIT]: offsetCommitRequestSchema,
  [ApiKey.OFFSET_FETCH]: offsetFetchRequestSchema,
  [ApiKey.LIST_GROUPS]: listGroupsRequestSchema,
  [ApiKey.DESCRIBE_GROUPS]: describeGroupsRequestSchema,
  [ApiKey.DELETE_GROUPS]: deleteGroupsRequestSchema,
  [ApiKey.CREATE_PARTITIONS]: createPartitionsRequestSchema,
  [ApiKey.OFFSET_FOR_LEADER_EPOCH]: offsetForLeaderEpochRequestSchema,
  [ApiKey.ALTER_PARTITION_REASSIGNMENTS]: alterPartitionReassignmentsRequestSchema,
  [ApiKey.INIT_PRODUCER_ID]: initProducerIdRequestSchema,
  [ApiKey.ADD_PARTITIONS_TO_TXN]: addPartitionsToTxnRequestSchema,
  [ApiKey.ADD_OFFSETS_TO_TXN]: addOffsetsToTxnRequestSchema,
  [ApiKey.END_TXN]: endTxnRequestSchema,
  [ApiKey.WRITE_TXN_MARKERS]: writeTxnMarkersRequestSchema,
  [ApiKey.TXN_OFFSET_COMMIT]: txnOffsetCommitRequestSchema,
  [ApiKey.LIST_DELAYED]: listDelayedRequestSchema,
  [ApiKey.CANCEL_DELAYED]: cancelDelayedRequestSchema,
  [ApiKey.DESCRIBE_ARCHIVE]: describeArchiveRequestSchema,
  [ApiKey.SASL_HANDSHAKE]: saslHandshakeRequestSchema,
  [ApiKey.SASL_AUTHENTICATE]: saslAuthenticateRequestSchema,
  [ApiKey.ALTER_TOPIC_CONFIGS]: alterTopicConfigsRequestSchema,
};

export const responseSchemas: Record<number, Schema> = {
  [ApiKey.API_VERSIONS]: apiVersionsResponseSchema,
  [ApiKey.METADATA]: metadataResponseSchema,
  [ApiKey.CREATE_TOPICS]: createTopicsResponseSchema,
  [ApiKey.DELETE_TOPICS]: deleteTopicsResponseSchema,
  [ApiKey.DESCRIBE_TOPICS]: describeTopicsResponseSchema,
  [ApiKey.PRODUCE]: produceResponseSchema,
  [ApiKey.FETCH]: fetchResponseSchema,
  [ApiKey.LIST_OFFSETS]: listOffsetsResponseSchema,
  [ApiKey.FIND_COORDINATOR]: findCoordinatorResponseSchema,
  [ApiKey.CONSUMER_GROUP_HEARTBEAT]: consumerGroupHeartbeatResponseSchema,
  [ApiKey.OFFSET_COMMIT]: offsetCommitResponseSchema,
  [ApiKey.OFFSET_FETCH]: offsetFetchResponseSchema,
  [ApiKey.LIST_GROUPS]: listGroupsResponseSchema,
  [ApiKey.DESCRIBE_GROUPS]: describeGroupsResponseSchema,
  [ApiKey.DELETE_GROUPS]: deleteGroupsResponseSchema,
  [ApiKey.CREATE_PARTITIONS]: createPartitionsResponseSchema,
  [ApiKey.OFFSET_FOR_LEADER_EPOCH]: offsetForLeaderEpochResponseSchema,
  [ApiKey.ALTER_PARTITION_REASSIGNMENTS]: alterPartitionReassignmentsResponseSchema,
  [ApiKey.INIT_PRODUCER_ID]: initProducerIdResponseSchema,
  [ApiKey.ADD_PARTITIONS_TO_TXN]: addPartitionsToTxnResponseSchema,
  [ApiKey.ADD_OFFSETS_TO_TXN]: addOffsetsToTxnResponseSchema,
  [ApiKey.END_TXN]: endTxnResponseSchema,
  [ApiKey.WRITE_TXN_MARKERS]: writeTxnMarkersResponseSchema,
  [ApiKey.TXN_OFFSET_COMMIT]: txnOffsetCommitResponseSchema,
  [ApiKey.LIST_DELAYED]: listDelayedResponseSchema,
  [ApiKey.CANCEL_DELAYED]: cancelDelayedResponseSchema,
  [ApiKey.DESCRIBE_ARCHIVE]: describeArchiveResponseSchema,
  [ApiKey.SASL_HANDSHAKE]: saslHandshakeResponseSchema,
  [ApiKey.SASL_AUTHENTICATE]: saslAuthenticateResponseSchema,
  [ApiKey.ALTER_TOPIC_CONFIGS]: alterTopicConfigsResponseSchema,
};

export * from './api-versions.ts';
export * from './create-topics.ts';
export * from './delete-topics.ts';
export * from './describe-topics.ts';
export * from './fetch.ts';
export * from './list-offsets.ts';
export * from './metadata.ts';
export * from './produce.ts';
export * from './consumer-group-heartbeat.ts';
export * from './create-partitions.ts';
export * from './find-coordinator.ts';
export * from './groups.ts';
export * from './offset-commit.ts';
export * from './offset-fetch.ts';
export * from './offset-for-leader-epoch.ts';
export * from './alter-partition-reassignments.ts';
export * from './init-producer-id.ts';
export * from './add-partitions-to-txn.ts';
export * from './add-offsets-to-txn.ts';
export * from './end-txn.ts';
export * from './write-txn-markers.ts';
export * from './txn-offset-commit.ts';
export * from './list-delayed.ts';
export * from './cancel-delayed.ts';
export * from './sasl.ts';
export * from './alter-topic-configs.ts';
