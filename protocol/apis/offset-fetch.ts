/**
 * OffsetFetch (key 11): a group's committed offsets. topics null returns every partition the
 * group has an offset for. offset -1 means nothing committed. With a memberId, the member's
 * epoch is checked as for OffsetCommit; memberId null reads without a check (admin tools).
 */
import type { Schema } from '../schema.ts';

export interface OffsetFetchRequest {
  groupId: string;
  memberId: string | null;
  memberEpoch: number;
  topics: Array<{ topic: string; partitions: number[] }> | null;
  /** Optional, default false. True: a partition with offsets pending in an open transaction gets UNSTABLE_OFFSET_COMMIT instead of the older offset (KIP-447). */
  requireStable?: boolean;
}
export interface OffsetFetchPartition { partition: number; offset: number; metadata: string | null; commitTimestampMs: number; errorCode: number }
export interface OffsetFetchResponse { errorCode: number; errorMessage: string | null; topics: Array<{ topic: string; partitions: OffsetFetchPartition[] }> }

export const offsetFetchRequestSchema: Schema = {
  fields: {
    groupId: 'string',
    memberId: 'string?',
    memberEpoch: 'int',
    topics: { array: { fields: { topic: 'string', partitions: { array: 'int' } } }, nullable: true },
    requireStable: 'bool',
  },
  optional: ['requireStable'],
};
export const offsetFetchResponseSchema: Schema = {
  fields: {
    errorCode: 'int',
    errorMessage: 'string?',
    topics: {
      array: {
        fields: { topic: 'string', partitions: { array: { fields: { partition: 'int', offset: 'int', metadata: 'string?', commitTimestampMs: 'int', errorCode: 'int' } } } },
      },
    },
  },
};
