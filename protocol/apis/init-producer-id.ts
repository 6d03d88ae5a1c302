/**
 * InitProducerId (key 18): gives a producer its producer id and epoch (SPEC §6.19).
 * Without a transactionalId any broker answers, with a new producer id at epoch 0 (the
 * idempotent producer). With one, the transaction coordinator answers: the same producer id
 * as before for that transactional id with the epoch bumped, which fences every older
 * instance, after aborting (or completing) a transaction the old instance left open.
 * producerId/producerEpoch other than -1 ask to bump an existing producer's epoch (Kafka's
 * KIP-360), so a producer can recover from UNKNOWN_PRODUCER_ID without losing its id.
 */
import type { Schema } from '../schema.ts';

export interface InitProducerIdRequest {
  transactionalId: string | null;
  /** Only with a transactionalId: how long a transaction may stay open before the coordinator aborts it. */
  transactionTimeoutMs: number;
  producerId: number;
  producerEpoch: number;
}
export interface InitProducerIdResponse { errorCode: number; errorMessage: string | null; producerId: number; producerEpoch: number }

export const initProducerIdRequestSchema: Schema = {
  fields: { transactionalId: 'string?', transactionTimeoutMs: 'int', producerId: 'int', producerEpoch: 'int' },
};
export const initProducerIdResponseSchema: Schema = {
  fields: { errorCode: 'int', errorMessage: 'string?', producerId: 'int', producerEpoch: 'int' },
};
