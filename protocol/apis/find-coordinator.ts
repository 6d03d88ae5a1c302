/**
 * FindCoordinator (key 8): which broker coordinates a consumer group (keyType 'group') or a
 * transactional id (keyType 'transaction'). Clients send group requests (heartbeat, offset
 * commit/fetch) or transaction requests (InitProducerId with a transactionalId,
 * AddPartitionsToTxn, AddOffsetsToTxn, EndTxn) to that broker and ask again on NOT_COORDINATOR.
 */
import type { Schema } from '../schema.ts';

export interface FindCoordinatorRequest { key: string; keyType: 'group' | 'transaction' }
export interface FindCoordinatorResponse { errorCode: number; errorMessage: string | null; nodeId: number; host: string; port: number }

export const findCoordinatorRequestSchema: Schema = { fields: { key: 'string', keyType: 'string' } };
export const findCoordinatorResponseSchema: Schema = {
  fields: { errorCode: 'int', errorMessage: 'string?', nodeId: 'int', host: 'string', port: 'int' },
};
