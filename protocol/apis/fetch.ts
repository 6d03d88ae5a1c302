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
/** isolationLevel: every record below the high watermark, transactional or not (the default). */
export const READ_UNCOMMITTED = 0;
/** isolationLevel: only below the last stable offset; the response lists aborted transactions to drop (SPEC §6.7). */
export const READ_COMMITTED = 1;

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
  /** Optional, default READ_UNCOMMITTED (0); READ_COMMITTED (1) reads up to the last stable offset. */
  isolationLevel?: number;
  maxWaitMs: number;
  minBytes: number;
  maxBytes: number;
  topics: FetchTopic[];
  /**
   * Optional, nil/absent = unfiltered. A tag expression (SPEC §6.7, protocol/tag-expression.ts):
   * only batches whose tag set matches are returned, and each partition says where to fetch next.
   */
  tagExpression?: string | null;
}
/** A transaction aborted within the returned range: drop this producer's transactional records from firstOffset to its abort marker. */
export interface AbortedTransaction { producerId: number; firstOffset: number }
export interface FetchPartitionResult {
  partition: number;
  errorCode: number;
  highWatermark: number;
  /** Offsets below it belong to no open transaction (-1 with highWatermark -1). */
  lastStableOffset: number;
  logStartOffset: number;
  /** READ_COMMITTED only (empty otherwise): the aborted transactions the returned batches touch, by firstOffset. */
  abortedTransactions: AbortedTransaction[];
  recordsBytes: number;
  /**
   * Filtered fetch only (absent otherwise, which means -1): the offset to fetch next, just
   * after the last batch the broker examined, matching or not (SPEC §6.7).
   */
  nextFetchOffset?: number;
}
export interface FetchTopicResult { topic: string; partitions: FetchPartitionResult[] }
export interface FetchResponse { topics: FetchTopicResult[] }

export const fetchRequestSchema: Schema = {
  fields: {
    replicaId: 'int',
    isolationLevel: 'int',
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
    tagExpression: 'string?',
  },
  optional: ['replicaId', 'isolationLevel', 'tagExpression'],
};
export const fetchResponseSchema: Schema = {
  fields: {
    topics: {
      array: {
        fields: {
          topic: 'string',
          partitions: {
            array: {
              fields: {
                partition: 'int',
                errorCode: 'int',
                highWatermark: 'int',
                lastStableOffset: 'int',
                logStartOffset: 'int',
                abortedTransactions: { array: { fields: { producerId: 'int', firstOffset: 'int' } } },
                recordsBytes: 'int',
                nextFetchOffset: 'int',
              },
              optional: ['nextFetchOffset'],
            },
          },
        },
      },
    },
  },
};
