/**
 * OffsetCommit (key 10): stores, per partition, the next offset the group should read.
 * A member commits with its memberId and its current (or previous) memberEpoch; any other
 * epoch or an unknown member is refused (STALE_MEMBER_EPOCH / UNKNOWN_MEMBER_ID), so a
 * fenced zombie cannot overwrite progress. memberId '' with memberEpoch -1 commits on behalf of no
 * member (admin tools, manually assigned consumers) and is accepted only while the group
 * has no members (NON_EMPTY_GROUP otherwise). A commit is durable (fsynced) when answered.
 */
import type { Schema } from '../schema.ts';

/** UTF-8 bytes (SPEC §6.11). */
export const OFFSET_METADATA_BYTES_MAX = 4096;

export interface OffsetCommitPartition { partition: number; offset: number; metadata: string | null }
export interface OffsetCommitTopic { topic: string; partitions: OffsetCommitPartition[] }
export interface OffsetCommitRequest { groupId: string; memberId: string; memberEpoch: number; topics: OffsetCommitTopic[] }
export interface OffsetCommitPartitionResult { partition: number; errorCode: number }
export interface OffsetCommitResponse { errorCode: number; errorMessage: string | null; topics: Array<{ topic: string; partitions: OffsetCommitPartitionResult[] }> }

export const offsetCommitRequestSchema: Schema = {
  fields: {
    groupId: 'string',
    memberId: 'string',
    memberEpoch: 'int',
    topics: { array: { fields: { topic: 'string', partitions: { array: { fields: { partition: 'int', offset: 'int', metadata: 'string?' }, optional: ['metadata'] } } } } },
  },
};
export const offsetCommitResponseSchema: Schema = {
  fields: {
    errorCode: 'int',
    errorMessage: 'string?',
    topics: { array: { fields: { topic: 'string', partitions: { array: { fields: { partition: 'int', errorCode: 'int' } } } } } },
  },
};
