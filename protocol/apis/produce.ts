/**
 * Produce (key 5). Control: acks, timeoutMs and, per topic and partition, recordsBytes: the
 * size of that partition's record set in the data section (one or more whole batches).
 * With acks = 0 the broker sends no response at all, as in Kafka.
 */
import type { Schema } from '../schema.ts';

export interface ProducePartition { partition: number; recordsBytes: number }
export interface ProduceTopic { topic: string; partitions: ProducePartition[] }
export interface ProduceRequest { acks: number; timeoutMs: number; topics: ProduceTopic[] }
export interface ProducePartitionResult { partition: number; errorCode: number; baseOffset: number; logStartOffset: number; errorMessage: string | null }
export interface ProduceTopicResult { topic: string; partitions: ProducePartitionResult[] }
export interface ProduceResponse { topics: ProduceTopicResult[] }

export const produceRequestSchema: Schema = {
  fields: {
    acks: 'int',
    timeoutMs: 'int',
    topics: { array: { fields: { topic: 'string', partitions: { array: { fields: { partition: 'int', recordsBytes: 'int' } } } } } },
  },
};
export const produceResponseSchema: Schema = {
  fields: {
    topics: {
      array: {
        fields: {
          topic: 'string',
          partitions: { array: { fields: { partition: 'int', errorCode: 'int', baseOffset: 'int', logStartOffset: 'int', errorMessage: 'string?' } } },
        },
      },
    },
  },
};
