/**
 * CreatePartitions (key 15): raises a topic's partition count to `count` (never lowers it).
 * Keys then map to different partitions, as in Kafka; consumer groups subscribed to the
 * topic are assigned the new partitions at their next heartbeat.
 */
import type { Schema } from '../schema.ts';

export interface CreatePartitionsRequest { topics: Array<{ topic: string; count: number }>; validateOnly: boolean }
export interface CreatePartitionsResponse { topics: Array<{ topic: string; errorCode: number; errorMessage: string | null }> }

export const createPartitionsRequestSchema: Schema = {
  fields: { topics: { array: { fields: { topic: 'string', count: 'int' } } }, validateOnly: 'bool' },
};
export const createPartitionsResponseSchema: Schema = {
  fields: { topics: { array: { fields: { topic: 'string', errorCode: 'int', errorMessage: 'string?' } } } },
};
