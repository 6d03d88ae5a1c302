/** DeleteTopics (key 3): removes topics and all their data. */
import type { Schema } from '../schema.ts';

export interface DeleteTopicsRequest { topics: string[] }
export interface DeleteTopicResult { topic: string; errorCode: number }
export interface DeleteTopicsResponse { topics: DeleteTopicResult[] }

export const deleteTopicsRequestSchema: Schema = { fields: { topics: { array: 'string' } } };
export const deleteTopicsResponseSchema: Schema = {
  fields: { topics: { array: { fields: { topic: 'string', errorCode: 'int' } } } },
};
