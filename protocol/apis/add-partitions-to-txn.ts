/**
 * AddPartitionsToTxn (key 19): a transactional producer tells its transaction coordinator
 * which partitions the current transaction writes to, before it sends them their first
 * batch (SPEC §6.20). The coordinator starts the transaction with the first such request,
 * and writes a marker to every partition named here when the transaction ends.
 */
import type { Schema } from '../schema.ts';

export interface TxnProducerRef { transactionalId: string; producerId: number; producerEpoch: number }
export interface AddPartitionsToTxnRequest extends TxnProducerRef { topics: Array<{ topic: string; partitions: number[] }> }
export interface AddPartitionsToTxnResponse {
  errorCode: number;
  errorMessage: string | null;
  topics: Array<{ topic: string; partitions: Array<{ partition: number; errorCode: number }> }>;
}

export const addPartitionsToTxnRequestSchema: Schema = {
  fields: {
    transactionalId: 'string',
    producerId: 'int',
    producerEpoch: 'int',
    topics: { array: { fields: { topic: 'string', partitions: { array: 'int' } } } },
  },
};
export const addPartitionsToTxnResponseSchema: Schema = {
  fields: {
    errorCode: 'int',
    errorMessage: 'string?',
    topics: { array: { fields: { topic: 'string', partitions: { array: { fields: { partition: 'int', errorCode: 'int' } } } } } },
  },
};
