/**
 * EndTxn (key 21): commit or abort the current transaction (SPEC §6.22). The coordinator
 * answers once the decision is durable in `__transaction_state`; the markers it then writes
 * to the transaction's partitions make the outcome visible to read_committed consumers.
 */
import type { Schema } from '../schema.ts';

export interface EndTxnRequest { transactionalId: string; producerId: number; producerEpoch: number; committed: boolean }
export interface EndTxnResponse { errorCode: number; errorMessage: string | null }

export const endTxnRequestSchema: Schema = {
  fields: { transactionalId: 'string', producerId: 'int', producerEpoch: 'int', committed: 'bool' },
};
export const endTxnResponseSchema: Schema = { fields: { errorCode: 'int', errorMessage: 'string?' } };
