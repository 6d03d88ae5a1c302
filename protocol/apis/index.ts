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

export const requestSchemas: Record<number, Schema> = {
  [ApiKey.API_VERSIONS]: apiVersionsRequestSchema,
  [ApiKey.METADATA]: metadataRequestSchema,
  [ApiKey.CREATE_TOPICS]: createTopicsRequestSchema,
  [ApiKey.DELETE_TOPICS]: deleteTopicsRequestSchema,
  [ApiKey.DESCRIBE_TOPICS]: describeTopicsRequestSchema,
  [ApiKey.PRODUCE]: produceRequestSchema,
  [ApiKey.FETCH]: fetchRequestSchema,
  [ApiKey.LIST_OFFSETS]: listOffsetsRequestSchema,
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
};

export * from './api-versions.ts';
export * from './create-topics.ts';
export * from './delete-topics.ts';
export * from './describe-topics.ts';
export * from './fetch.ts';
export * from './list-offsets.ts';
export * from './metadata.ts';
export * from './produce.ts';
