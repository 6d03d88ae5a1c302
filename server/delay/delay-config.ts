/**
 * The broker settings of delayed delivery (SPEC §8.8, §7.9), as a partition log needs them.
 * The broker's values come from server/config/broker-config.ts; these defaults are for logs
 * opened without them (tests, tools).
 */

const DAY_MS = 86_400_000;

export interface DelayConfig {
  /** Largest delivery time a producer may ask for, relative to the leader's clock (SPEC §8.8). */
  delayedDeliveryMsMax: number;
  /** The active segment rolls once it holds this many SCHEDULED wrappers (bounds its in-memory delay entries, SPEC §7.9). */
  delayedEntriesPerSegmentMax: number;
  /** Cancelled-but-not-yet-due messages a partition holds at most (SPEC §6.26). */
  delayedCancelsPendingMax: number;
  /** Released messages appended in one record set at most, before the releaser lets other work run. */
  delayedReleaseSliceEntriesMax: number;
  /** Bytes of released batches appended in one record set at most (at least one pair is always appended). */
  delayedReleaseSliceBytesMax: number;
}

/** 400 days: the issue asks for at least 90 days; margin for "deliver in a year" and clock skew. */
export const DELAYED_DELIVERY_MS_MAX_DEFAULT = 400 * DAY_MS;
export const DELAYED_CANCELS_PENDING_MAX_DEFAULT = 1_000_000;
export const DELAYED_ENTRIES_PER_SEGMENT_MAX_DEFAULT = 100_000;
export const DELAYED_RELEASE_SLICE_ENTRIES_MAX_DEFAULT = 500;
export const DELAYED_RELEASE_SLICE_BYTES_MAX_DEFAULT = 1024 * 1024;

export const DEFAULT_DELAY_CONFIG: DelayConfig = {
  delayedDeliveryMsMax: DELAYED_DELIVERY_MS_MAX_DEFAULT,
  delayedCancelsPendingMax: DELAYED_CANCELS_PENDING_MAX_DEFAULT,
  delayedEntriesPerSegmentMax: DELAYED_ENTRIES_PER_SEGMENT_MAX_DEFAULT,
  delayedReleaseSliceEntriesMax: DELAYED_RELEASE_SLICE_ENTRIES_MAX_DEFAULT,
  delayedReleaseSliceBytesMax: DELAYED_RELEASE_SLICE_BYTES_MAX_DEFAULT,
};
