/**
 * OffsetIndex: the sparse map from offset to file position of one segment, `<base>.index`.
 *
 * File layout: N entries of 8 bytes, big-endian:
 *   relativeOffset uint32   baseOffset of an indexed batch, minus the segment's base offset
 *   position       uint32   byte position of that batch in the segment's .log
 *
 * Invariants:
 * - Sparse: the segment adds an entry when at least `index.interval.bytes` of log were written
 *   since the previous one, so lookup gives a position at or before the wanted batch and the
 *   reader walks forward from there. No entry for position 0: "no entry <= target" means
 *   "start of the segment".
 * - Relative offsets and positions are strictly increasing; every position is the start of a
 *   whole batch below the log's size. load() checks exactly this and reports a problem
 *   instead of an index, so the caller rebuilds the index from the log.
 * - The in-memory arrays are the truth while the segment is open; the file is rewritten
 *   whole (atomically) by persist, never appended to, so it is never torn.
 * - Not safe for concurrent mutation; the owning segment is the only writer.
 */
import fs from 'node:fs';
import { writeFileDurable, writeFileDurableSync } from './durable-file.ts';

export const OFFSET_INDEX_ENTRY_BYTES = 8;
const UINT32_MAX = 0xffff_ffff;
const INITIAL_CAPACITY_ENTRIES = 64;

export interface IndexEntry {
  offset: number;
  position: number;
}

export type IndexLoad<T> = { index: T; problem: '' } | { index: null; problem: string };

export class OffsetIndex {
  readonly path: string;
  readonly baseOffset: number;
  private relativeOffsets = new Uint32Array(INITIAL_CAPACITY_ENTRIES);
  private positions = new Uint32Array(INITIAL_CAPACITY_ENTRIES);
  private count = 0;

  constructor(path: string, baseOffset: number) {
    this.path = path;
    this.baseOffset = baseOffset;
  }

  get entryCount(): number {
    return this.count;
  }

  /** The last entry, or null when the index is empty. */
  lastEntry(): IndexEntry | null {
    if (this.count === 0) return null;
    return { offset: this.baseOffset + this.relativeOffsets[this.count - 1]!, position: this.positions[this.count - 1]! };
  }

  append(offset: number, position: number): void {
    const relative = offset - this.baseOffset;
    if (!(relative >= 0 && relative <= UINT32_MAX && position >= 0 && position <= UINT32_MAX)) {
      throw new Error(`offset index ${this.path}: entry (${offset}, ${position}) does not fit uint32 fields`);
    }
    if (this.count > 0 && (relative <= this.relativeOffsets[this.count - 1]! || position <= this.positions[this.count - 1]!)) {
      throw new Error(`offset index ${this.path}: entry (${offset}, ${position}) is not after the last one`);
    }
    if (this.count === this.positions.length) this.grow();
    this.relativeOffsets[this.count] = relative;
    this.positions[this.count] = position;
    this.count++;
  }

  /** The largest entry whose offset is <= targetOffset; (baseOffset, 0) when there is none. */
  lookup(targetOffset: number): IndexEntry {
    const relative = targetOffset - this.baseOffset;
    let lo = 0;
    let hi = this.count - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (this.relativeOffsets[mid]! <= relative) {
        found = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    if (found < 0) return { offset: this.baseOffset, position: 0 };
    return { offset: this.baseOffset + this.relativeOffsets[found]!, position: this.positions[found]! };
  }

  clear(): void {
    this.count = 0;
  }

  /** Drops the entries for offsets >= offset (a truncated log removed their batches). */
  truncateTo(offset: number): void {
    const relative = offset - this.baseOffset;
    while (this.count > 0 && this.relativeOffsets[this.count - 1]! >= relative) this.count--;
  }

  toBytes(): Buffer {
    const out = Buffer.allocUnsafe(this.count * OFFSET_INDEX_ENTRY_BYTES);
    for (let i = 0; i < this.count; i++) {
      out.writeUInt32BE(this.relativeOffsets[i]!, i * OFFSET_INDEX_ENTRY_BYTES);
      out.writeUInt32BE(this.positions[i]!, i * OFFSET_INDEX_ENTRY_BYTES + 4);
    }
    return out;
  }

  persistSync(): void {
    writeFileDurableSync(this.path, this.toBytes());
  }

  persist(): Promise<void> {
    return writeFileDurable(this.path, this.toBytes());
  }

  /** Reads and sanity-checks `path` against a log of logSizeBytes; a problem means "rebuild". */
  static load(path: string, baseOffset: number, logSizeBytes: number): IndexLoad<OffsetIndex> {
    let bytes: Buffer;
    try {
      bytes = fs.readFileSync(path);
    } catch (e) {
      return { index: null, problem: `cannot read: ${(e as Error).message}` };
    }
    return OffsetIndex.decode(path, baseOffset, bytes, logSizeBytes);
  }

  /**
   * Parses an index file's bytes (a local file, or an archived segment's .index object) with
   * load's checks; never throws: a problem means "do not use it".
   */
  static decode(path: string, baseOffset: number, bytes: Uint8Array, logSizeBytes: number): IndexLoad<OffsetIndex> {
    if (bytes.length % OFFSET_INDEX_ENTRY_BYTES !== 0) return { index: null, problem: `size ${bytes.length} is not a multiple of ${OFFSET_INDEX_ENTRY_BYTES}` };
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const index = new OffsetIndex(path, baseOffset);
    for (let p = 0; p < bytes.length; p += OFFSET_INDEX_ENTRY_BYTES) {
      const relative = view.getUint32(p);
      const position = view.getUint32(p + 4);
      if (position >= logSizeBytes) return { index: null, problem: `entry ${p / OFFSET_INDEX_ENTRY_BYTES} position ${position} is past the log size ${logSizeBytes}` };
      const last = index.lastEntry();
      if (last && (relative <= last.offset - baseOffset || position <= last.position)) {
        return { index: null, problem: `entry ${p / OFFSET_INDEX_ENTRY_BYTES} is not after the previous one` };
      }
      if (!Number.isSafeInteger(baseOffset + relative)) return { index: null, problem: `entry ${p / OFFSET_INDEX_ENTRY_BYTES} offset overflows` };
      index.append(baseOffset + relative, position);
    }
    return { index, problem: '' };
  }

  private grow(): void {
    const capacity = this.positions.length * 2;
    const relativeOffsets = new Uint32Array(capacity);
    const positions = new Uint32Array(capacity);
    relativeOffsets.set(this.relativeOffsets);
    positions.set(this.positions);
    this.relativeOffsets = relativeOffsets;
    this.positions = positions;
  }
}
