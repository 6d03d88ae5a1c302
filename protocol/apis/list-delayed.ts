/**
 * ListDelayed (key 24, SPEC §6.25): the pending delayed messages of one partition, sent to its
 * leader. Entries come in release order, the key (deliverAtMs, offset) ascending, strictly
 * after the key (afterDeliverAtMs, afterOffset) when both are given (paging: pass the last
 * entry's key), else from the first pending one. At most `limit` (1 … 1000) entries.
 * A delayed message's id is (topic, partition, offset): offset is its SCHEDULED wrapper's.
 */
import type { Schema } from '../schema.ts';

/** Largest `limit` a ListDelayed may ask for (SPEC §6.25). */
export const LIST_DELAYED_LIMIT_MAX = 1000;

export interface ListDelayedRequest {
  topic: string;
  partition: number;
  /** Page after this key; nil (or omitted) with afterOffset nil = from the start. */
  afterDeliverAtMs?: number | null;
  afterOffset?: number | null;
  limit: number;
}
export interface DelayedEntry {
  /** The SCHEDULED wrapper's offset: the delayed message's id within the partition. */
  offset: number;
  /** When the broker releases it (effective time, ≥ requested). */
  deliverAtMs: number;
  /** The time the producer's `sluice-deliver-at-ms` header asked for. */
  requestedDeliverAtMs: number;
  /** Records of the producer's batch (the offsets the wrapper takes). */
  recordCount: number;
  /** Bytes of the producer's batch. */
  sizeBytes: number;
}
export interface ListDelayedResponse {
  errorCode: number;
  errorMessage?: string | null;
  /** The newest RELEASED marker's key; -1, -1 when the log has none (SPEC §7.9). */
  frontierDeliverAtMs: number;
  frontierOffset: number;
  /** Pending (scheduled, not released, not cancelled) messages of the partition. */
  pendingCount: number;
  entries: DelayedEntry[];
}

export const listDelayedRequestSchema: Schema = {
  fields: { topic: 'string', partition: 'int', afterDeliverAtMs: 'int?', afterOffset: 'int?', limit: 'int' },
  optional: ['afterDeliverAtMs', 'afterOffset'],
};
export const listDelayedResponseSchema: Schema = {
  fields: {
    errorCode: 'int',
    errorMessage: 'string?',
    frontierDeliverAtMs: 'int',
    frontierOffset: 'int',
    pendingCount: 'int',
    entries: { array: { fields: { offset: 'int', deliverAtMs: 'int', requestedDeliverAtMs: 'int', recordCount: 'int', sizeBytes: 'int' } } },
  },
  optional: ['errorMessage'],
};
