/** Metadata (key 1): brokers, and each topic's partitions with leader and replicas. */
import type { Schema } from '../schema.ts';

/** topics: null asks for every topic. */
export interface MetadataRequest { topics: string[] | null }
export interface BrokerInfo { nodeId: number; host: string; port: number }
export interface PartitionMetadata { partition: number; errorCode: number; leader: number; leaderEpoch: number; replicas: number[]; isr: number[] }
export interface TopicMetadata { topic: string; errorCode: number; partitions: PartitionMetadata[] }
export interface MetadataResponse { clusterId: string; controllerId: number; brokers: BrokerInfo[]; topics: TopicMetadata[] }

export const metadataRequestSchema: Schema = { fields: { topics: { array: 'string', nullable: true } } };
export const metadataResponseSchema: Schema = {
  fields: {
    clusterId: 'string',
    controllerId: 'int',
    brokers: { array: { fields: { nodeId: 'int', host: 'string', port: 'int' } } },
    topics: {
      array: {
        fields: {
          topic: 'string',
          errorCode: 'int',
          partitions: { array: { fields: { partition: 'int', errorCode: 'int', leader: 'int', leaderEpoch: 'int', replicas: { array: 'int' }, isr: { array: 'int' } } } },
        },
      },
    },
  },
};
