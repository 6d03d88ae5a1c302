/**
 * LogLoader: opening a partition directory (Kafka's LogLoader). Finds the segments, deletes
 * leftovers of interrupted work, opens every segment (a recovery scan of the active one after
 * a crash, of any whose indexes are unusable), then loads the leader epoch cache and the high
 * watermark and brings both in line with the log as it is. Synchronous: it runs before the
 * broker serves.
 *
 * Invariants of what loadPartitionLog returns:
 * - segments is non-empty, sorted by base offset, and no segment overlaps the previous one
 *   (an overlap is refused with STORAGE_ERROR: the directory is not a log this code wrote).
 * - Sealed segments that were rebuilt by a scan have their indexes on disk; the active
 *   segment has no index files (segment.ts). No `*.tmp`, `*.recovering`, `*.cleaned` file and
 *   no index without its .log is left. The directory was fsynced if any of that changed it;
 *   opening a directory as open() left it (or as emptyLogFiles() made it) writes nothing.
 * - The epoch cache holds no entry at or past the log end or below the log start, and is
 *   persisted if that changed it; a missing or damaged checkpoint is rebuilt from the batches.
 * - The high watermark lies in [logStartOffset, logEndOffset] (asserted).
 */
import type { DelayConfig } from '../delay/delay-config.ts';
import fs from 'node:fs';
import path from 'node:path';
import { ErrorCode, SluiceError } from '../../protocol/errors.ts';
import { assert } from '../assert.ts';
import type { Logger } from '../logger.ts';
import { encodeCheckpoint, readCheckpointSync, writeCheckpointSync } from './checkpoint-file.ts';
import { fsyncDirSync, TMP_SUFFIX, unlinkIfExistsSync } from './durable-file.ts';
import type { FileHandleCache } from './file-handle-cache.ts';
import { LEADER_EPOCH_CHECKPOINT_FILE, LEADER_EPOCH_CHECKPOINT_VERSION, LeaderEpochCache } from './leader-epoch-cache.ts';
import type { LogConfig } from './log-config.ts';
import type { ProducerStateConfig } from './producer-state.ts';
import { TXN_INDEX_SUFFIX } from './txn-index.ts';
import { TAG_INDEX_SUFFIX } from './tag-index.ts';
import { DELAYS_SUFFIX } from '../delay/segment-delays.ts';
import { RECOVERING_SUFFIX } from './recovery.ts';
import { CLEANED_SUFFIX, INDEX_SUFFIX, LOG_SUFFIX, LogSegment, segmentFileName, TIME_INDEX_SUFFIX } from './segment.ts';

const SEGMENT_FILE = /^(\d{20})\.log$/;
export const HIGH_WATERMARK_CHECKPOINT_FILE = 'replication-offset-checkpoint';
export const HIGH_WATERMARK_CHECKPOINT_VERSION = 0;

export interface PartitionLogOpenOptions {
  /** False after a crash: the active segment (and any without usable indexes) is scanned and repaired. */
  cleanShutdown: boolean;
  logger: Logger;
  nowMs?: number;
  /** The fd cache of the segment files (the LogManager's); default: one shared by every caller that passes none. */
  files?: FileHandleCache;
  /** Bounds of the producer state (producer-state.ts); defaults when omitted. */
  producerState?: ProducerStateConfig;
  /** Delayed-delivery settings (server/delay/delay-config.ts); defaults when omitted. */
  delay?: DelayConfig;
  /** Told the duration of every flush cycle (log-flusher.ts onCycle; the flush latency metric). */
  onFlushCycle?: (durationMs: number) => void;
}

export interface LoadedLog {
  segments: LogSegment[];
  epochs: LeaderEpochCache;
  highWatermark: number;
}

/** See PartitionLog.emptyLogFiles. */
export function emptyLogFiles(): Array<{ name: string; bytes: Buffer }> {
  return [
    { name: segmentFileName(0, LOG_SUFFIX), bytes: Buffer.alloc(0) },
    { name: LEADER_EPOCH_CHECKPOINT_FILE, bytes: encodeCheckpoint(LEADER_EPOCH_CHECKPOINT_VERSION, []) },
    { name: HIGH_WATERMARK_CHECKPOINT_FILE, bytes: encodeCheckpoint(HIGH_WATERMARK_CHECKPOINT_VERSION, [[0]]) },
  ];
}

/** Opens (or creates) the partition directory; see the top of this file. */
export function loadPartitionLog(dir: string, config: LogConfig, opts: PartitionLogOpenOptions): LoadedLog {
  const nowMs = opts.nowMs ?? Date.now();
  // Whether this open changed the directory's entries, and so must fsync it. Opening a
  // directory left as open() leaves it (or as emptyLogFiles() made it) costs no fsync.
  let dirChanged = fs.mkdirSync(dir, { recursive: true }) !== undefined;
  const names = fs.readdirSync(dir);
  const bases: number[] = [];
  for (const name of names) {
    const m = SEGMENT_FILE.exec(name);
    if (m) bases.push(Number(m[1]));
    // Leftovers of an interrupted atomic write or recovery rewrite: the original is intact.
    else if (name.endsWith(TMP_SUFFIX) || name.endsWith(RECOVERING_SUFFIX) || name.endsWith(CLEANED_SUFFIX)) dirChanged = unlinkIfExistsSync(path.join(dir, name)) || dirChanged;
  }
  bases.sort((a, b) => a - b);
  const baseSet = new Set(bases);
  for (const name of names) {
    // Index files whose .log is gone (a delete interrupted half way) would confuse a future segment.
    // So would an aborted-transaction, tag or delay index (its entries would be taken for the new segment's).
    const suffix = name.endsWith(INDEX_SUFFIX) ? INDEX_SUFFIX : name.endsWith(TIME_INDEX_SUFFIX) ? TIME_INDEX_SUFFIX : name.endsWith(TXN_INDEX_SUFFIX) ? TXN_INDEX_SUFFIX : name.endsWith(TAG_INDEX_SUFFIX) ? TAG_INDEX_SUFFIX : name.endsWith(DELAYS_SUFFIX) ? DELAYS_SUFFIX : '';
    if (suffix && !baseSet.has(Number(name.slice(0, -suffix.length)))) dirChanged = unlinkIfExistsSync(path.join(dir, name)) || dirChanged;
  }
  const segments: LogSegment[] = [];
  for (let i = 0; i < bases.length; i++) {
    const recover = !opts.cleanShutdown && i === bases.length - 1;
    const seg = LogSegment.open(dir, bases[i]!, { recover, indexIntervalBytes: config.indexIntervalBytes, nowMs, logger: opts.logger, files: opts.files });
    const prev = segments[segments.length - 1];
    if (prev && prev.nextOffset > seg.baseOffset) {
      for (const s of [...segments, seg]) s.close();
      throw new SluiceError(ErrorCode.STORAGE_ERROR, `${dir}: segment ${seg.baseOffset} overlaps the previous one, which ends at ${prev.nextOffset - 1}`);
    }
    segments.push(seg);
  }
  if (segments.length === 0) {
    segments.push(LogSegment.create(dir, 0, opts.files));
    dirChanged = true;
  }
  // A rebuilt sealed segment was fsynced by recovery, so its indexes may go to disk now.
  for (let i = 0; i < segments.length - 1; i++) if (segments[i]!.recovered) segments[i]!.persistIndexesSync();
  // The active segment's index files would go stale with its next append; see segment.ts.
  if (segments[segments.length - 1]!.deleteIndexFilesSync()) dirChanged = true;
  if (dirChanged) fsyncDirSync(dir);
  let epochs: LeaderEpochCache;
  let highWatermark: number;
  try {
    epochs = openEpochCache(dir, segments, opts.logger);
    highWatermark = openHighWatermark(dir, segments, opts.logger);
    const logEndOffset = segments[segments.length - 1]!.nextOffset;
    assert(highWatermark >= segments[0]!.baseOffset && highWatermark <= logEndOffset, () => `${dir}: high watermark ${highWatermark} outside [${segments[0]!.baseOffset}, ${logEndOffset}]`);
  } catch (e) {
    for (const s of segments) s.close();
    throw e;
  }
  return { segments, epochs, highWatermark };
}

/**
 * The checkpoint if it is usable, else the cache rebuilt from the batch headers of every
 * segment; then trimmed to the log as it is (a crash may have left entries past its end, see
 * leader-epoch-cache.ts) and persisted if anything changed.
 */
function openEpochCache(dir: string, segments: readonly LogSegment[], logger: Logger): LeaderEpochCache {
  const loaded = LeaderEpochCache.load(dir);
  let cache = loaded.cache;
  let changed = false;
  if (!cache) {
    if (loaded.problem !== 'missing') logger.warn('leader epoch checkpoint unusable, rebuilding it from the log', { dir, problem: loaded.problem });
    cache = new LeaderEpochCache(dir);
    for (const seg of segments) {
      seg.scanHeadersSync(0, (b) => {
        const epoch = b.partitionLeaderEpoch;
        if (epoch >= 0 && epoch < cache!.latestEpoch()) logger.warn('leader epochs go backwards in the log; the later batches win', { dir, offset: b.baseOffset, epoch });
        cache!.assign(epoch, b.baseOffset, 'repair');
        return true;
      });
    }
    changed = true; // written even when empty, so the next open does not scan again
  }
  const endOffset = segments[segments.length - 1]!.nextOffset;
  if (cache.truncateFromEnd(endOffset)) changed = true;
  if (cache.truncateFromStart(segments[0]!.baseOffset)) changed = true;
  if (changed) cache.persistSync();
  return cache;
}

/**
 * The checkpointed high watermark clamped into [logStartOffset, logEndOffset]. Missing: the
 * log end (a new log is empty; a log from before replication holds only committed data),
 * written at once so that a crash later finds it. Damaged: the log start, the safe side.
 */
function openHighWatermark(dir: string, segments: readonly LogSegment[], logger: Logger): number {
  const file = path.join(dir, HIGH_WATERMARK_CHECKPOINT_FILE);
  const startOffset = segments[0]!.baseOffset;
  const endOffset = segments[segments.length - 1]!.nextOffset;
  const read = readCheckpointSync(file, HIGH_WATERMARK_CHECKPOINT_VERSION, 1);
  if (read.kind === 'ok' && read.entries.length === 1) return Math.max(startOffset, Math.min(read.entries[0]![0]!, endOffset));
  const hw = read.kind === 'missing' ? endOffset : startOffset;
  if (read.kind !== 'missing') logger.warn('high watermark checkpoint unusable; starting from the log start offset', { dir, problem: read.kind === 'corrupt' ? read.problem : 'not one entry' });
  writeCheckpointSync(file, HIGH_WATERMARK_CHECKPOINT_VERSION, [[hw]]);
  return hw;
}
