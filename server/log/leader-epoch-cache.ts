/**
 * LeaderEpochCache (KIP-101, KIP-279): for one partition, the first offset written in each
 * leader epoch, as read from the partitionLeaderEpoch field of the batches. A follower asks
 * the leader endOffsetForEpoch(its latest epoch) and truncates to the answer, so a log that
 * diverged after a leader change is cut back to where it agrees with the leader.
 *
 * Kept in `leader-epoch-checkpoint` in the partition directory (checkpoint-file.ts layout,
 * one "epoch startOffset" line per entry), rewritten whole on every change: epochs change
 * only when leadership does, so the writes are rare.
 *
 * Invariants:
 * - Entries are sorted; epochs and start offsets are both strictly increasing; epochs are
 *   >= 0. Batches stamped -1 ("no epoch": what producers send, and what a log that is never
 *   given an epoch keeps) are not tracked.
 * - Write-ahead (PartitionLog's side): the cache is changed and persisted before the batches
 *   that imply the change are written, and only after batches are removed (truncation). So the
 *   file never misses an epoch the log holds; after a crash it may hold entries at or past the
 *   log end, which the loader (log-loader.ts) drops with truncateFromEnd(logEndOffset).
 * - The latest entry may start at the log end with no batch of its epoch yet (a leader that has
 *   not written in its epoch, see PartitionLog.beginLeaderEpoch). An entry that starts at or
 *   after an offset about to be written has no data, and assign() replaces it freely.
 * - Not safe for concurrent mutation; PartitionLog is the only writer.
 */
import { assert } from '../assert.ts';
import path from 'node:path';
import { ErrorCode, SluiceError } from '../../protocol/errors.ts';
import { readCheckpointSync, writeCheckpointSync } from './checkpoint-file.ts';

export const LEADER_EPOCH_CHECKPOINT_FILE = 'leader-epoch-checkpoint';
const CHECKPOINT_VERSION = 0;
export const LEADER_EPOCH_CHECKPOINT_VERSION = CHECKPOINT_VERSION;
/** The epoch and offset of "no answer", as Kafka's OffsetsForLeaderEpoch returns them. */
export const UNDEFINED_EPOCH = -1;
export const UNDEFINED_EPOCH_OFFSET = -1;
export const LEADER_EPOCH_MAX = 0x7fff_ffff;

export interface EpochEntry {
  readonly epoch: number;
  /** First offset written in this epoch. */
  readonly startOffset: number;
}

export interface EpochEndOffset {
  epoch: number;
  /** Exclusive: the first offset that is not in `epoch` (or the log end for the latest epoch). */
  endOffset: number;
}

/** What assign() does when the new entry would put an epoch after a larger one that has data. */
export type EpochConflict = 'throw' | 'repair';

export type EpochCacheLoad = { cache: LeaderEpochCache; problem: '' } | { cache: null; problem: string };

export class LeaderEpochCache {
  readonly path: string;
  private list: EpochEntry[];

  constructor(dir: string, entries: readonly EpochEntry[] = []) {
    this.path = path.join(dir, LEADER_EPOCH_CHECKPOINT_FILE);
    for (let i = 1; i < entries.length; i++) {
      if (!(entries[i]!.epoch > entries[i - 1]!.epoch && entries[i]!.startOffset > entries[i - 1]!.startOffset)) throw new Error(`leader epoch entries out of order at ${i}`);
    }
    this.list = [...entries];
  }

  /** The checkpoint of `dir`, checked; a problem (the file is missing or damaged) means "rebuild from the log". */
  static load(dir: string): EpochCacheLoad {
    const cache = new LeaderEpochCache(dir);
    const read = readCheckpointSync(cache.path, CHECKPOINT_VERSION, 2);
    if (read.kind === 'missing') return { cache: null, problem: 'missing' };
    if (read.kind === 'corrupt') return { cache: null, problem: read.problem };
    for (const [epoch, startOffset] of read.entries) {
      const last = cache.latestEntry();
      if (epoch! < 0 || epoch! > LEADER_EPOCH_MAX || startOffset! < 0 || (last && (epoch! <= last.epoch || startOffset! <= last.startOffset))) {
        return { cache: null, problem: `entry (${epoch}, ${startOffset}) is out of order or out of range` };
      }
      cache.list.push({ epoch: epoch!, startOffset: startOffset! });
    }
    return { cache, problem: '' };
  }

  /** A copy, oldest first. */
  get entries(): EpochEntry[] {
    return [...this.list];
  }

  latestEntry(): EpochEntry | undefined {
    return this.list[this.list.length - 1];
  }

  /** UNDEFINED_EPOCH (-1) when empty. */
  latestEpoch(): number {
    return this.latestEntry()?.epoch ?? UNDEFINED_EPOCH;
  }

  /**
   * Records that `epoch` starts at `startOffset` (nothing for epoch < 0, or when the latest
   * entry already is this epoch). Entries starting at or after startOffset are dropped first:
   * they hold no data, as startOffset is where the next batch goes. If an epoch larger than
   * `epoch` still holds data below startOffset, the log would step back in epochs:
   * 'throw' refuses with FENCED_LEADER_EPOCH and changes nothing; 'repair' (rebuilding from
   * a log that has this) drops the larger epochs, as Kafka does. Returns whether the cache changed.
   */
  assign(epoch: number, startOffset: number, onConflict: EpochConflict = 'throw'): boolean {
    if (epoch < 0) return false;
    if (!(Number.isSafeInteger(startOffset) && startOffset >= 0 && Number.isInteger(epoch) && epoch <= LEADER_EPOCH_MAX)) {
      throw new Error(`leader epoch entry (${epoch}, ${startOffset}) is out of range`);
    }
    const last = this.latestEntry();
    if (last && last.epoch === epoch && last.startOffset <= startOffset) return false;
    let keep = this.list.length;
    while (keep > 0 && this.list[keep - 1]!.startOffset >= startOffset) keep--;
    if (keep > 0 && this.list[keep - 1]!.epoch > epoch) {
      if (onConflict === 'throw') {
        const e = this.list[keep - 1]!;
        throw new SluiceError(ErrorCode.FENCED_LEADER_EPOCH, `leader epoch ${epoch} at offset ${startOffset} comes after epoch ${e.epoch}, which holds data from offset ${e.startOffset}: truncate first`);
      }
      while (keep > 0 && this.list[keep - 1]!.epoch >= epoch) keep--;
    }
    const changed = keep < this.list.length || this.list[keep - 1]?.epoch !== epoch;
    this.list.length = keep;
    if (this.latestEpoch() !== epoch) this.list.push({ epoch, startOffset });
    const n = this.list.length;
    assert(n < 2 || (this.list[n - 2]!.epoch < this.list[n - 1]!.epoch && this.list[n - 2]!.startOffset < this.list[n - 1]!.startOffset), () => `${this.path}: epoch entries ${JSON.stringify(this.list.slice(-2))} do not increase`);
    return changed;
  }

  /**
   * Kafka's OffsetsForLeaderEpoch answer for the leader's log:
   * - requested is the latest epoch: (requested, logEndOffset);
   * - requested is between two known epochs, or one of them but not the latest: (largest
   *   known epoch <= requested, start offset of the first epoch after requested);
   * - requested is older than every known epoch: (requested, start offset of the first known
   *   epoch), the data before it is gone from this log anyway;
   * - requested is -1, newer than the latest epoch, or the cache is empty: (-1, -1).
   */
  endOffsetFor(requestedEpoch: number, logEndOffset: number): EpochEndOffset {
    const undefinedAnswer = { epoch: UNDEFINED_EPOCH, endOffset: UNDEFINED_EPOCH_OFFSET };
    const latest = this.latestEntry();
    if (requestedEpoch < 0 || !latest || requestedEpoch > latest.epoch) return undefinedAnswer;
    if (requestedEpoch === latest.epoch) return { epoch: requestedEpoch, endOffset: logEndOffset };
    const higher = this.list.findIndex((e) => e.epoch > requestedEpoch);
    if (higher === 0) return { epoch: requestedEpoch, endOffset: this.list[0]!.startOffset };
    return { epoch: this.list[higher - 1]!.epoch, endOffset: this.list[higher]!.startOffset };
  }

  /** After a truncation to endOffset: drops entries that start at or after it. Returns whether the cache changed. */
  truncateFromEnd(endOffset: number): boolean {
    let keep = this.list.length;
    while (keep > 0 && this.list[keep - 1]!.startOffset >= endOffset) keep--;
    if (keep === this.list.length) return false;
    this.list.length = keep;
    return true;
  }

  /**
   * After retention moved the log start: drops the epochs that ended before startOffset and
   * moves the start of the epoch holding startOffset up to it. Returns whether the cache changed.
   */
  truncateFromStart(startOffset: number): boolean {
    let drop = 0;
    while (drop < this.list.length && this.list[drop]!.startOffset <= startOffset) drop++;
    if (drop === 0 || (drop === 1 && this.list[0]!.startOffset === startOffset)) return false;
    const holder = this.list[drop - 1]!;
    this.list.splice(0, drop, { epoch: holder.epoch, startOffset });
    return true;
  }

  clear(): boolean {
    const changed = this.list.length > 0;
    this.list = [];
    return changed;
  }

  /** Puts back a copy taken from `entries` (undo of a change whose write failed). */
  restore(entries: readonly EpochEntry[]): void {
    this.list = [...entries];
  }

  persistSync(): void {
    writeCheckpointSync(
      this.path,
      CHECKPOINT_VERSION,
      this.list.map((e) => [e.epoch, e.startOffset]),
    );
  }
}
