/**
 * AddOffsetsToTxn (key 20): the transaction will commit offsets for a consumer group
 * (SPEC §6.21). The coordinator adds the group's `__consumer_offsets` partition to the
 * transaction; the producer then sends TxnOffsetCommit to the group's coordinator.
 */
import type { Schema } from '../schema.ts';

export interface AddOffsetsToTxnRequest { transactionalId: string; producerId: number; producerEpoch: number; groupId: string }
export interface AddOffsetsToTxnResponse { errorCode: number; errorMessage: string | null }

export const addOffsetsToTxnRequestSchema: Schema = {
  fields: { transactionalId: 'string', producerId: 'int', producerEpoch: 'int', groupId: 'string' },
};
export const addOffsetsToTxnResponseSchema: Schema = { fields: { errorCode: 'int', errorMessage: 'string?' } };
