/** CreateTopics (key 2). configs are topic config overrides, values as strings. */
import type { Schema } from '../schema.ts';

export interface CreatableTopic { topic: string; partitions: number; replicationFactor: number; configs: Record<string, string> }
export interface CreateTopicsRequest { topics: CreatableTopic[]; validateOnly: boolean }
export interface CreateTopicResult { topic: string; errorCode: number; errorMessage: string | null }
export interface CreateTopicsResponse { topics: CreateTopicResult[] }

export const createTopicsRequestSchema: Schema = {
  fields: {
    topics: { array: { fields: { topic: 'string', partitions: 'int', replicationFactor: 'int', configs: 'stringMap' } } },
    validateOnly: 'bool',
  },
};
export const createTopicsResponseSchema: Schema = {
  fields: { topics: { array: { fields: { topic: 'string', errorCode: 'int', errorMessage: 'string?' }, } } },
};
