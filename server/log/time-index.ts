/**
 * TimeIndex: the sparse map from timestamp to offset of one segment, `<base>.timeindex`.
 *
 * File layout: N entries of 12 bytes, big-endian:
 *   timestamp      int64    ms since epoch
 *   relativeOffset uint32   baseOffset of a batch, minus the segment's base offset
 *
 * Meaning of an entry (T, O): the batch at O is the first in the segment whose maxTimestamp
 * reached T, so every batch before O has maxTimestamp < T. Hence, to find the first record with
 * timestamp >= t, start scanning at the O of the largest entry with T <= t (or at the segment
 * start when there is none): no earlier batch can hold such a record.
 *
 * Invariants:
 * - Entries are added at the same index-interval points as the offset index, and only when
 *   the segment's largest timestamp grew since the last entry: timestamps and relative
 *   offsets are strictly increasing. load() checks that and reports a problem instead of an
 *   index, so the caller rebuilds it from the log.
 * - As for OffsetIndex: memory is the truth while open; the file is rewritten whole, atomically.
 */
import fs from 'node:fs';
import { writeFileDurable, writeFileDurableSync } from './durable-file.ts';
import type { IndexLoad } from './offset-index.ts';

export const TIME_INDEX_ENTRY_BYTES = 12;
const UINT32_MAX = 0xffff_ffff;
const INITIAL_CAPACITY_ENTRIES = 64;

export class TimeIndex {
  readonly path: string;
  readonly baseOffset: number;
  // Float64 holds every ms timestamp exactly (they are far below 2^53).
  private timestamps = new Float64Array(INITIAL_CAPACITY_ENTRIES);
  private relativeOffsets = new Uint32Array(INITIAL_CAPACITY_ENTRIES);
  private count = 0;

  constructor(path: string, baseOffset: number) {
    this.path = path;
    this.baseOffset = baseOffset;
  }

  get entryCount(): number {
    return this.count;
  }

  /** Largest timestamp indexed, or -1 when empty. */
  get lastTimestampMs(): number {
    return this.count === 0 ? -1 : this.timestamps[this.count - 1]!;
  }

  /** Offset of the last entry, or -1 when empty. */
  get lastEntryOffset(): number {
    return this.count === 0 ? -1 : this.baseOffset + this.relativeOffsets[this.count - 1]!;
  }

  /** Appends (timestampMs, offset) when timestampMs grew; returns whether an entry was added. */
  maybeAppend(timestampMs: number, offset: number): boolean {
    if (this.count > 0 && timestampMs <= this.timestamps[this.count - 1]!) return false;
    const relative = offset - this.baseOffset;
    if (!(relative >= 0 && relative <= UINT32_MAX) || !Number.isSafeInteger(timestampMs)) {
      throw new Error(`time index ${this.path}: entry (${timestampMs}, ${offset}) does not fit its fields`);
    }
    if (this.count > 0 && relative <= this.relativeOffsets[this.count - 1]!) {
      throw new Error(`time index ${this.path}: offset ${offset} is not after the last entry`);
    }
    if (this.count === this.timestamps.length) this.grow();
    this.timestamps[this.count] = timestampMs;
    this.relativeOffsets[this.count] = relative;
    this.count++;
    return true;
  }

  /**
   * Where to start scanning for the first record with timestamp >= timestampMs: the offset of
   * the largest entry with timestamp <= timestampMs, or the segment's base offset.
   */
  lookup(timestampMs: number): number {
    let lo = 0;
    let hi = this.count - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (this.timestamps[mid]! <= timestampMs) {
        found = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    return found < 0 ? this.baseOffset : this.baseOffset + this.relativeOffsets[found]!;
  }

  clear(): void {
    this.count = 0;
  }

  /** Drops the entries that point at offsets >= offset (a truncated log removed their batches). */
  truncateTo(offset: number): void {
    const relative = offset - this.baseOffset;
    while (this.count > 0 && this.relativeOffsets[this.count - 1]! >= relative) this.count--;
  }

  toBytes(): Buffer {
    const out = Buffer.allocUnsafe(this.count * TIME_INDEX_ENTRY_BYTES);
    for (let i = 0; i < this.count; i++) {
      out.writeBigInt64BE(BigInt(this.timestamps[i]!), i * TIME_INDEX_ENTRY_BYTES);
      out.writeUInt32BE(this.relativeOffsets[i]!, i * TIME_INDEX_ENTRY_BYTES + 8);
    }
    return out;
  }

  persistSync(): void {
    writeFileDurableSync(this.path, this.toBytes());
  }

  persist(): Promise<void> {
    return writeFileDurable(this.path, this.toBytes());
  }

  /** Reads and sanity-checks `path`; a problem means "rebuild". */
  static load(path: string, baseOffset: number): IndexLoad<TimeIndex> {
    let bytes: Buffer;
    try {
      bytes = fs.readFileSync(path);
    } catch (e) {
      return { index: null, problem: `cannot read: ${(e as Error).message}` };
    }
    return TimeIndex.decode(path, baseOffset, bytes);
  }

  /** Parses an index file's bytes (a local file, or an archived .timeindex object) with load's checks; never throws. */
  static decode(path: string, baseOffset: number, bytes: Uint8Array): IndexLoad<TimeIndex> {
    if (bytes.length % TIME_INDEX_ENTRY_BYTES !== 0) return { index: null, problem: `size ${bytes.length} is not a multiple of ${TIME_INDEX_ENTRY_BYTES}` };
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const index = new TimeIndex(path, baseOffset);
    for (let p = 0; p < bytes.length; p += TIME_INDEX_ENTRY_BYTES) {
      const timestampMs = Number(view.getBigInt64(p));
      const relative = view.getUint32(p + 8);
      const n = index.count;
      if (!Number.isSafeInteger(baseOffset + relative)) return { index: null, problem: `entry ${p / TIME_INDEX_ENTRY_BYTES} offset overflows` };
      if (!Number.isSafeInteger(timestampMs) || (n > 0 && (timestampMs <= index.timestamps[n - 1]! || relative <= index.relativeOffsets[n - 1]!))) {
        return { index: null, problem: `entry ${p / TIME_INDEX_ENTRY_BYTES} is not after the previous one` };
      }
      index.maybeAppend(timestampMs, baseOffset + relative);
    }
    return { index, problem: '' };
  }

  private grow(): void {
    const capacity = this.timestamps.length * 2;
    const timestamps = new Float64Array(capacity);
    const relativeOffsets = new Uint32Array(capacity);
    timestamps.set(this.timestamps);
    relativeOffsets.set(this.relativeOffsets);
    this.timestamps = timestamps;
    this.relativeOffsets = relativeOffsets;
  }
}
