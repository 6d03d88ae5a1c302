/**
 * SortedRun: one closed segment's SCHEDULED keys in key order, read through a cursor: from its
 * sidecar file (`<baseOffset>.delays`, segment-delays.ts) a chunk at a time, or from memory
 * when the file could not be written. The leader's scheduler merges the runs of all closed
 * segments with the active segment's in-memory keys (pending-delays.ts), so pending messages
 * of closed segments cost CHUNK_ENTRIES × 16 bytes of memory per segment, not 16 bytes each.
 *
 * Invariants:
 * - The file is immutable once written (segments are sealed); it was validated (crc) when the
 *   run was made, so reads trust it. A read error throws (the caller logs and retries).
 * - The cursor only moves forward; keys before it are done (released, in flight, cancelled and
 *   due, or at or below the frontier).
 */
import fs from 'node:fs';
import { compareKey } from '../../protocol/delayed-batch.ts';
import { readInt64 } from '../../protocol/record-batch.ts';
import { SEGMENT_DELAYS_HEADER_BYTES } from './segment-delays.ts';

/** Keys read from a file at a time (4 KiB). */
export const CHUNK_ENTRIES = 256;
const ENTRY_BYTES = 16;

export class SortedRun {
  /** Next key's index. */
  pos = 0;
  /**
   * Keys of the run that were no longer pending in memory when it was made (in flight, or
   * cancelled and already skipped), by offset: the cursor skips them and the count leaves them
   * out. An entry goes when the cursor or the frontier passes it.
   */
  readonly excluded = new Map<number, number>();
  private chunkStart = 0;
  private chunkLen = 0;
  private readonly chunkAt = new Float64Array(CHUNK_ENTRIES);
  private readonly chunkOff = new Float64Array(CHUNK_ENTRIES);

  private constructor(
    /** The segment's base offset (retention pins at it while the run has pending keys). */
    readonly segmentBase: number,
    readonly count: number,
    private readonly file: string | null,
    private readonly memAt: Float64Array | null,
    private readonly memOff: Float64Array | null,
  ) {}

  /** A run over a validated sidecar file with count scheduled keys. */
  static ofFile(segmentBase: number, file: string, count: number): SortedRun {
    return new SortedRun(segmentBase, count, file, null, null);
  }

  /** A run over keys in memory (sorted here). */
  static ofMemory(segmentBase: number, at: readonly number[], off: readonly number[]): SortedRun {
    const order = Array.from({ length: at.length }, (_, i) => i).sort((x, y) => compareKey(at[x]!, off[x]!, at[y]!, off[y]!));
    return new SortedRun(segmentBase, at.length, null, Float64Array.from(order, (i) => at[i]!), Float64Array.from(order, (i) => off[i]!));
  }

  get done(): boolean {
    return this.pos >= this.count;
  }

  get remaining(): number {
    return this.count - this.pos - this.excluded.size;
  }

  headAt(): number {
    return this.atOf(this.pos);
  }

  headOffset(): number {
    this.load(this.pos);
    return this.memOff !== null ? this.memOff[this.pos]! : this.chunkOff[this.pos - this.chunkStart]!;
  }

  /** Key time at index i (< count). */
  atOf(i: number): number {
    if (this.memAt !== null) return this.memAt[i]!;
    this.load(i);
    return this.chunkAt[i - this.chunkStart]!;
  }

  offsetOf(i: number): number {
    if (this.memOff !== null) return this.memOff[i]!;
    this.load(i);
    return this.chunkOff[i - this.chunkStart]!;
  }

  /** Moves the cursor past every key <= (atMs, offset) (binary search from the cursor). */
  skipTo(atMs: number, offset: number): void {
    if (this.done || compareKey(this.headAt(), this.headOffset(), atMs, offset) > 0) return;
    this.pos = this.firstAfter(atMs, offset);
  }

  /** Index of the first key > (atMs, offset) at or after the cursor, without moving it. */
  firstAfter(atMs: number, offset: number): number {
    let lo = this.pos;
    let hi = this.count;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (compareKey(this.atOf(mid), this.offsetOf(mid), atMs, offset) <= 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Ensures index i is in the chunk (file runs). */
  private load(i: number): void {
    if (this.file === null || (i >= this.chunkStart && i < this.chunkStart + this.chunkLen)) return;
    const n = Math.min(CHUNK_ENTRIES, this.count - i);
    const buf = Buffer.allocUnsafe(n * ENTRY_BYTES);
    const fd = fs.openSync(this.file, 'r');
    try {
      const got = fs.readSync(fd, buf, 0, buf.length, SEGMENT_DELAYS_HEADER_BYTES + i * ENTRY_BYTES);
      if (got !== buf.length) throw new Error(`${this.file}: short read of ${got} bytes at entry ${i}`);
    } finally {
      fs.closeSync(fd);
    }
    for (let k = 0; k < n; k++) {
      this.chunkAt[k] = readInt64(buf, k * ENTRY_BYTES);
      this.chunkOff[k] = readInt64(buf, k * ENTRY_BYTES + 8);
    }
    this.chunkStart = i;
    this.chunkLen = n;
  }
}
