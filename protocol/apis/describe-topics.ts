/**
 * DescribeTopics (key 4): each topic's effective config (defaults merged with overrides)
 * and per-partition log state. topics: null describes every topic.
 */
import type { Schema } from '../schema.ts';

export interface DescribeTopicsRequest { topics: string[] | null }
export interface PartitionDescription { partition: number; logStartOffset: number; logEndOffset: number; sizeBytes: number; segments: number }
export interface TopicDescription { topic: string; errorCode: number; configs: Record<string, string>; partitions: PartitionDescription[] }
export interface DescribeTopicsResponse { topics: TopicDescription[] }

export const describeTopicsRequestSchema: Schema = { fields: { topics: { array: 'string', nullable: true } } };
export const describeTopicsResponseSchema: Schema = {
  fields: {
    topics: {
      array: {
        fields: {
          topic: 'string',
          errorCode: 'int',
          configs: 'stringMap',
          partitions: { array: { fields: { partition: 'int', logStartOffset: 'int', logEndOffset: 'int', sizeBytes: 'int', segments: 'int' } } },
        },
      },
    },
  },
};
