/**
 * CancelDelayed (key 25, SPEC §6.26): cancels pending delayed messages by id (the SCHEDULED
 * wrapper's offset), sent to the partitions' leader. Per offset: 0 = cancelled (a CANCELLED
 * marker is in the log, so the message will never be released), DELAYED_MESSAGE_NOT_FOUND (52)
 * = not pending (never scheduled, already released or cancelled), or the partition's error
 * (NOT_LEADER, UNKNOWN_TOPIC_OR_PARTITION, …) on every offset of it.
 */
import type { Schema } from '../schema.ts';

/** Offsets of one CancelDelayed, all partitions together (SPEC §6.26). */
export const CANCEL_DELAYED_OFFSETS_MAX = 10_000;

export interface CancelDelayedRequest {
  topic: string;
  partitions: Array<{ partition: number; offsets: number[] }>;
}
export interface CancelDelayedResult { offset: number; errorCode: number; errorMessage?: string | null }
export interface CancelDelayedResponse {
  topics: Array<{ topic: string; partitions: Array<{ partition: number; results: CancelDelayedResult[] }> }>;
}

export const cancelDelayedRequestSchema: Schema = {
  fields: { topic: 'string', partitions: { array: { fields: { partition: 'int', offsets: { array: 'int' } } } } },
};
export const cancelDelayedResponseSchema: Schema = {
  fields: {
    topics: {
      array: {
        fields: {
          topic: 'string',
          partitions: {
            array: {
              fields: {
                partition: 'int',
                results: { array: { fields: { offset: 'int', errorCode: 'int', errorMessage: 'string?' }, optional: ['errorMessage'] } },
              },
            },
          },
        },
      },
    },
  },
};
