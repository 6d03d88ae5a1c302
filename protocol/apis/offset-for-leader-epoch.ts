/**
 * OffsetForLeaderEpoch (key 16): a follower (or a new leader's former peer) asks the leader
 * where a leader epoch ended in the leader's log: endOffset is the first offset of the next
 * larger epoch the leader knows, or its log end offset when the asked epoch is its latest.
 * The follower truncates its log to min(endOffset, its own log end) before fetching, which
 * removes a tail the new leader never had (Kafka's KIP-101/KIP-279). When the leader has no
 * entry at or below the epoch, it answers leaderEpoch -1, endOffset -1.
 */
import type { Schema } from '../schema.ts';

export interface OffsetForLeaderEpochRequest {
  replicaId: number;
  topics: Array<{ topic: string; partitions: Array<{ partition: number; currentLeaderEpoch: number; leaderEpoch: number }> }>;
}
export interface OffsetForLeaderEpochPartition { partition: number; errorCode: number; leaderEpoch: number; endOffset: number }
export interface OffsetForLeaderEpochResponse { topics: Array<{ topic: string; partitions: OffsetForLeaderEpochPartition[] }> }

export const offsetForLeaderEpochRequestSchema: Schema = {
  fields: {
    replicaId: 'int',
    topics: { array: { fields: { topic: 'string', partitions: { array: { fields: { partition: 'int', currentLeaderEpoch: 'int', leaderEpoch: 'int' } } } } } },
  },
};
export const offsetForLeaderEpochResponseSchema: Schema = {
  fields: {
    topics: {
      array: { fields: { topic: 'string', partitions: { array: { fields: { partition: 'int', errorCode: 'int', leaderEpoch: 'int', endOffset: 'int' } } } } },
    },
  },
};
