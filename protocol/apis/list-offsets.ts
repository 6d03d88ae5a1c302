/**
 * ListOffsets (key 7). timestamp -2 asks for the earliest offset (log start), -1 for the
 * latest (log end, the offset the next record will get), any other value for the first
 * offset whose record timestamp is >= it (log end offset and timestamp -1 when none is).
 */
import type { Schema } from '../schema.ts';

export const EARLIEST_TIMESTAMP = -2;
export const LATEST_TIMESTAMP = -1;

export interface ListOffsetsPartition { partition: number; timestamp: number }
export interface ListOffsetsTopic { topic: string; partitions: ListOffsetsPartition[] }
export interface ListOffsetsRequest {
  /** Optional, default READ_UNCOMMITTED (0). READ_COMMITTED (1): -1 (latest) is the last stable offset, and timestamps search below it. */
  isolationLevel?: number;
  topics: ListOffsetsTopic[];
}
export interface ListOffsetsPartitionResult { partition: number; errorCode: number; offset: number; timestamp: number }
export interface ListOffsetsTopicResult { topic: string; partitions: ListOffsetsPartitionResult[] }
export interface ListOffsetsResponse { topics: ListOffsetsTopicResult[] }

export const listOffsetsRequestSchema: Schema = {
  fields: { isolationLevel: 'int', topics: { array: { fields: { topic: 'string', partitions: { array: { fields: { partition: 'int', timestamp: 'int' } } } } } } },
  optional: ['isolationLevel'],
};
export const listOffsetsResponseSchema: Schema = {
  fields: {
    topics: {
      array: {
        fields: { topic: 'string', partitions: { array: { fields: { partition: 'int', errorCode: 'int', offset: 'int', timestamp: 'int' } } } },
      },
    },
  },
};
