/**
 * TxnOffsetCommit (key 23): a transactional producer commits a consumer group's offsets as
 * part of its transaction (SPEC §6.24), sent to the group's coordinator after
 * AddOffsetsToTxn. The offsets take effect when the transaction commits and vanish when it
 * aborts. memberId and memberEpoch are those of the consumer whose records were processed
 * (Kafka's KIP-447): a member that is no longer current is refused, so a zombie instance
 * cannot commit offsets for partitions now assigned to another.
 */
import type { Schema } from '../schema.ts';

export interface TxnOffsetCommitRequest {
  transactionalId: string;
  groupId: string;
  producerId: number;
  producerEpoch: number;
  /** '' with memberEpoch -1: not on behalf of a member (accepted only while the group has no members). */
  memberId: string;
  memberEpoch: number;
  topics: Array<{ topic: string; partitions: Array<{ partition: number; offset: number; metadata: string | null }> }>;
}
export interface TxnOffsetCommitResponse {
  errorCode: number;
  errorMessage: string | null;
  topics: Array<{ topic: string; partitions: Array<{ partition: number; errorCode: number }> }>;
}

export const txnOffsetCommitRequestSchema: Schema = {
  fields: {
    transactionalId: 'string',
    groupId: 'string',
    producerId: 'int',
    producerEpoch: 'int',
    memberId: 'string',
    memberEpoch: 'int',
    // metadata omissible, as in OffsetCommit (SPEC §6.24 "as OffsetCommit", §6.11).
    topics: { array: { fields: { topic: 'string', partitions: { array: { fields: { partition: 'int', offset: 'int', metadata: 'string?' }, optional: ['metadata'] } } } } },
  },
};
export const txnOffsetCommitResponseSchema: Schema = {
  fields: {
    errorCode: 'int',
    errorMessage: 'string?',
    topics: { array: { fields: { topic: 'string', partitions: { array: { fields: { partition: 'int', errorCode: 'int' } } } } } },
  },
};
