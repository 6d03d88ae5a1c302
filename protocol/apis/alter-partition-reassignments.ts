/**
 * AlterPartitionReassignments (key 17), sent to the controller: moves a partition to a new
 * replica set. The controller first adds the new replicas (the partition then has the union
 * of old and new), and once every target replica is in sync it drops the ones not in the
 * target (moving leadership first when the leader is one of them). Catch-up of the new
 * replicas is limited to throttleBytesPerSec per partition (0: unlimited). replicas null
 * cancels a reassignment in progress (new replicas not yet in sync are dropped).
 */
import type { Schema } from '../schema.ts';

export interface PartitionReassignment { topic: string; partition: number; replicas: number[] | null; throttleBytesPerSec: number }
export interface AlterPartitionReassignmentsRequest { partitions: PartitionReassignment[] }
export interface AlterPartitionReassignmentsResponse { partitions: Array<{ topic: string; partition: number; errorCode: number; errorMessage: string | null }> }

export const alterPartitionReassignmentsRequestSchema: Schema = {
  fields: { partitions: { array: { fields: { topic: 'string', partition: 'int', replicas: { array: 'int', nullable: true }, throttleBytesPerSec: 'int' } } } },
};
export const alterPartitionReassignmentsResponseSchema: Schema = {
  fields: { partitions: { array: { fields: { topic: 'string', partition: 'int', errorCode: 'int', errorMessage: 'string?' } } } },
};
