/**
 * WriteTxnMarkers (key 22), broker to broker: a transaction coordinator asks a partition's
 * leader to append the commit or abort marker (a control batch, SPEC §8.6) of a producer's
 * transaction (SPEC §6.23). Internal topics (`__consumer_offsets`) are allowed. Retried by
 * the coordinator until every partition has its marker.
 */
import type { Schema } from '../schema.ts';

export interface WriteTxnMarker {
  producerId: number;
  producerEpoch: number;
  committed: boolean;
  coordinatorEpoch: number;
  topics: Array<{ topic: string; partitions: number[] }>;
}
export interface WriteTxnMarkersRequest { markers: WriteTxnMarker[] }
export interface WriteTxnMarkersResponse {
  markers: Array<{ producerId: number; topics: Array<{ topic: string; partitions: Array<{ partition: number; errorCode: number }> }> }>;
}

export const writeTxnMarkersRequestSchema: Schema = {
  fields: {
    markers: {
      array: {
        fields: {
          producerId: 'int',
          producerEpoch: 'int',
          committed: 'bool',
          coordinatorEpoch: 'int',
          topics: { array: { fields: { topic: 'string', partitions: { array: 'int' } } } },
        },
      },
    },
  },
};
export const writeTxnMarkersResponseSchema: Schema = {
  fields: {
    markers: {
      array: {
        fields: {
          producerId: 'int',
          topics: { array: { fields: { topic: 'string', partitions: { array: { fields: { partition: 'int', errorCode: 'int' } } } } } },
        },
      },
    },
  },
};
