/**
 * Fetch (key 6). The broker answers when at least minBytes are available across the
 * requested partitions or maxWaitMs has passed. Each partition's records are whole batches,
 * exactly as stored, recordsBytes long, in the data section in control order.
 * A partition returns at least one whole batch even when it exceeds partitionMaxBytes, so a
 * consumer always makes progress; the response total is otherwise bounded by maxBytes.
 */
import type { Schema } from '../schema.ts';

/** replicaId of a consumer's fetch; a follower broker sends its broker id. */
export const CONSUMER_REPLICA_ID = -1;
/** currentLeaderEpoch when the fetcher does not check it. */
export const NO_LEADER_EPOCH = -1;

export interface FetchPartition {
  partition: number;
  fetchOffset: number;
  partitionMaxBytes: number;
  /** The leader epoch the fetcher believes current; older than the leader's: FENCED_LEADER_EPOCH. Optional, -1. */
  currentLeaderEpoch?: number;
}
export interface FetchTopic { topic: string; partitions: FetchPartition[] }
export interface FetchRequest {
  /** Optional, default -1 (a consumer: reads up to the high watermark). A follower sends its broker id and reads up to the log end. */
  replicaId?: number;
  maxWaitMs: number;
  minBytes: number;
  maxBytes: number;
  topics: FetchTopic[];
}
export interface FetchPartitionResult { partition: number; errorCode: number; highWatermark: number; logStartOffset: number; recordsBytes: number }
export interface FetchTopicResult { topic: string; partitions: FetchPartitionResult[] }
export interface FetchResponse { topics: FetchTopicResult[] }

export const fetchRequestSchema: Schema = {
  fields: {
    replicaId: 'int',
    maxWaitMs: 'int',
    minBytes: 'int',
    maxBytes: 'int',
    topics: {
      array: {
        fields: {
          topic: 'string',
          partitions: { array: { fields: { partition: 'int', fetchOffset: 'int', partitionMaxBytes: 'int', currentLeaderEpoch: 'int' }, optional: ['currentLeaderEpoch'] } },
        },
      },
    },
  },
  optional: ['replicaId'],
};
export const fetchResponseSchema: Schema = {
  fields: {
    topics: {
      array: {
        fields: {
          topic: 'string',
          partitions: { array: { fields: { partition: 'int', errorCode: 'int', highWatermark: 'int', logStartOffset: 'int', recordsBytes: 'int' } } },
        },
      },
    },
  },
};
