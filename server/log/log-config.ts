/**
 * Topic configuration as the log sees it: the string keys Kafka users know, parsed once into
 * a typed LogConfig whose field names carry their units.
 *
 * Invariants:
 * - A LogConfig is complete (every field set) and valid; it is only produced by
 *   parseLogConfig or DEFAULT_LOG_CONFIG, so the log never re-checks values.
 * - Parsing is all-or-nothing: an unknown key or a bad value throws
 *   SluiceError(INVALID_CONFIG) naming the key, and nothing is returned.
 * - topicConfigToStrings(parseLogConfig(x)) lists every key, so describe output shows the
 *   effective value, defaults included; parsing that output gives the same LogConfig.
 * - local.retention.ms|bytes (when not -2) at most retention.ms|bytes (unless that is -1).
 * - archive.enable=true only with cleanup.policy=delete (whether the broker has an archive
 *   store is the topic manager's check: it is the broker's setting, not the topic's).
 * - Sizes are at most 2^31 - 1 bytes: segment positions are stored as uint32 in the offset
 *   index, and Kafka uses the same int32 bounds, so configs move between the two unchanged.
 */
import { ErrorCode, SluiceError } from '../../protocol/errors.ts';

/**
 * Kafka's forms: `delete` drops old segments (retention), `compact` keeps the latest record of
 * every key (log-cleaner.ts), `compact,delete` does both. "delete,compact" parses to the latter.
 */
export type CleanupPolicy = 'delete' | 'compact' | 'compact,delete';

export function compacts(policy: CleanupPolicy): boolean {
  return policy !== 'delete';
}

/** Whether retention.ms / retention.bytes delete segments; a `compact`-only log keeps them all. */
export function deletes(policy: CleanupPolicy): boolean {
  return policy !== 'compact';
}

export interface LogConfig {
  /** Segments whose newest timestamp is older than this are deleted; -1 keeps them forever. */
  readonly retentionMs: number;
  /** Per partition; oldest segments are deleted while the rest still hold this much; -1 = unlimited. */
  readonly retentionBytes: number;
  /** The active segment rolls before an append would make it larger than this. */
  readonly segmentBytes: number;
  /** The active segment rolls once its first batch is this old. */
  readonly segmentMs: number;
  /** One offset-index entry per this many log bytes; 0 indexes every batch. */
  readonly indexIntervalBytes: number;
  /** fsync once this many messages are unflushed. */
  readonly flushMessages: number;
  /** fsync once the oldest unflushed message waited this long. */
  readonly flushMs: number;
  /** Acknowledge a produce only after an fsync covers it. */
  readonly flushBeforeAck: boolean;
  /** Largest record batch accepted, header included. */
  readonly maxMessageBytes: number;
  readonly cleanupPolicy: CleanupPolicy;
  /** Compacted logs: a tombstone (null value) is removed once its timestamp is this old. */
  readonly deleteRetentionMs: number;
  /** Compacted logs: a segment is cleaned only once its newest record is this old. */
  readonly minCompactionLagMs: number;
  /**
   * Tiered storage (SPEC §7.10): sealed segments below the high watermark are uploaded to the
   * broker's archive store; retention.ms/bytes then bound archive + local together, and
   * local.retention.ms/bytes the local part. Needs cleanup.policy=delete and a store.
   */
  readonly archiveEnable: boolean;
  /** With archiveEnable: local segments older than this may go (once archived); -2 = retention.ms. */
  readonly localRetentionMs: number;
  /** With archiveEnable: local bytes kept per partition; -2 = retention.bytes. */
  readonly localRetentionBytes: number;
}

/** local.retention.* value meaning "the same as the total retention" (Kafka's -2). */
export const LOCAL_RETENTION_AS_TOTAL = -2;

/** The local retention in force: local.retention.ms, or retention.ms for -2. */
export function effectiveLocalRetentionMs(cfg: LogConfig): number {
  return cfg.localRetentionMs === LOCAL_RETENTION_AS_TOTAL ? cfg.retentionMs : cfg.localRetentionMs;
}

/** The local retention in force: local.retention.bytes, or retention.bytes for -2. */
export function effectiveLocalRetentionBytes(cfg: LogConfig): number {
  return cfg.localRetentionBytes === LOCAL_RETENTION_AS_TOTAL ? cfg.retentionBytes : cfg.localRetentionBytes;
}

const INT32_MAX = 2_147_483_647;

export const DEFAULT_LOG_CONFIG: LogConfig = Object.freeze({
  retentionMs: 1_209_600_000,
  retentionBytes: -1,
  segmentBytes: 1_073_741_824,
  segmentMs: 604_800_000,
  indexIntervalBytes: 4096,
  flushMessages: 50_000,
  flushMs: 1000,
  flushBeforeAck: false,
  maxMessageBytes: 8_388_608,
  cleanupPolicy: 'delete',
  deleteRetentionMs: 86_400_000,
  minCompactionLagMs: 0,
  archiveEnable: false,
  localRetentionMs: LOCAL_RETENTION_AS_TOTAL,
  localRetentionBytes: LOCAL_RETENTION_AS_TOTAL,
});

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

interface KeySpec {
  field: keyof LogConfig;
  parse(value: string, key: string): LogConfig[keyof LogConfig];
}

function integer(min: number, max: number) {
  return (value: string, key: string): number => {
    // Strict decimal only: Number('') is 0 and Number('1e3') is 1000, neither is a config value.
    if (!/^-?\d{1,16}$/.test(value)) throw invalid(key, value, 'not an integer');
    const n = Number(value);
    if (n < min || n > max) throw invalid(key, value, `must be between ${min} and ${max}`);
    return n;
  };
}

function boolean(value: string, key: string): boolean {
  if (value === 'true') return true;
  if (value === 'false') return false;
  throw invalid(key, value, 'must be true or false');
}

function cleanupPolicy(value: string, key: string): CleanupPolicy {
  const parts = new Set(value.split(',').map((s) => s.trim()));
  const known = [...parts].every((p) => p === 'delete' || p === 'compact');
  if (!known || value.split(',').length !== parts.size) throw invalid(key, value, 'must be "delete", "compact" or "compact,delete"');
  if (parts.size === 2) return 'compact,delete';
  return parts.has('compact') ? 'compact' : 'delete';
}

function invalid(key: string, value: string, why: string): SluiceError {
  return new SluiceError(ErrorCode.INVALID_CONFIG, `${key}=${JSON.stringify(value)}: ${why}`);
}

// A Map, not an object literal, so that keys like "__proto__" or "toString" are simply unknown.
const KEYS = new Map<string, KeySpec>([
  ['retention.ms', { field: 'retentionMs', parse: integer(-1, Number.MAX_SAFE_INTEGER) }],
  ['retention.bytes', { field: 'retentionBytes', parse: integer(-1, Number.MAX_SAFE_INTEGER) }],
  ['segment.bytes', { field: 'segmentBytes', parse: integer(1024, INT32_MAX) }],
  ['segment.ms', { field: 'segmentMs', parse: integer(1, Number.MAX_SAFE_INTEGER) }],
  ['index.interval.bytes', { field: 'indexIntervalBytes', parse: integer(0, INT32_MAX) }],
  ['flush.messages', { field: 'flushMessages', parse: integer(1, Number.MAX_SAFE_INTEGER) }],
  ['flush.ms', { field: 'flushMs', parse: integer(0, Number.MAX_SAFE_INTEGER) }],
  ['flush.before.ack', { field: 'flushBeforeAck', parse: boolean }],
  ['max.message.bytes', { field: 'maxMessageBytes', parse: integer(0, INT32_MAX) }],
  ['cleanup.policy', { field: 'cleanupPolicy', parse: cleanupPolicy }],
  ['delete.retention.ms', { field: 'deleteRetentionMs', parse: integer(0, Number.MAX_SAFE_INTEGER) }],
  ['min.compaction.lag.ms', { field: 'minCompactionLagMs', parse: integer(0, Number.MAX_SAFE_INTEGER) }],
  ['archive.enable', { field: 'archiveEnable', parse: boolean }],
  ['local.retention.ms', { field: 'localRetentionMs', parse: integer(-2, Number.MAX_SAFE_INTEGER) }],
  ['local.retention.bytes', { field: 'localRetentionBytes', parse: integer(-2, Number.MAX_SAFE_INTEGER) }],
]);

export const LOG_CONFIG_KEYS: readonly string[] = [...KEYS.keys()];

/**
 * Parses topic config strings over `base` (the defaults unless the broker has its own).
 * Keys absent from `strings` keep their value from `base`.
 */
export function parseLogConfig(strings: Readonly<Record<string, string>>, base: LogConfig = DEFAULT_LOG_CONFIG): LogConfig {
  const out: Mutable<LogConfig> = { ...base };
  for (const [key, value] of Object.entries(strings)) {
    const spec = KEYS.get(key);
    if (!spec) throw new SluiceError(ErrorCode.INVALID_CONFIG, `unknown topic config key ${JSON.stringify(key)}`);
    if (typeof value !== 'string') throw invalid(key, String(value), 'must be a string');
    (out as Record<string, unknown>)[spec.field] = spec.parse(value, key);
  }
  // The local tier is part of the total (Kafka's rule): local.retention.* at most retention.*
  // (-1 = unlimited, so a limited total with an unlimited local part is refused).
  for (const [localKey, totalKey, local, total] of [
    ['local.retention.ms', 'retention.ms', out.localRetentionMs, out.retentionMs],
    ['local.retention.bytes', 'retention.bytes', out.localRetentionBytes, out.retentionBytes],
  ] as const) {
    if (local === LOCAL_RETENTION_AS_TOTAL || total === -1) continue;
    if (local === -1 || local > total) throw invalid(localKey, String(local), `must not exceed ${totalKey} (${total})`);
  }
  if (out.archiveEnable && out.cleanupPolicy !== 'delete') {
    // Kafka refuses tiered storage on compacted topics: an archived segment is immutable, and
    // compaction rewrites segments (SPEC §7.10).
    throw invalid('archive.enable', 'true', `needs cleanup.policy=delete (it is ${out.cleanupPolicy})`);
  }
  return Object.freeze(out);
}

/** Every key with its effective value, for DescribeConfigs-style output. */
export function topicConfigToStrings(cfg: LogConfig): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, spec] of KEYS) out[key] = String(cfg[spec.field]);
  return out;
}
