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
