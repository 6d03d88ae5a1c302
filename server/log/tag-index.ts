/**
 * TagIndex: the per-segment index a filtered Fetch (SPEC §6.7, §7.8) uses to skip batches
 * whose tag set does not match, without reading them from disk. One per segment,
 * `<base>.tags` beside its `.log`.
 *
 * What it lists: every batch that is not a plain untagged data batch, i.e. every batch with
 * a `sluice-tags` header (SPEC §8.7) and every control batch, in position order, each with its
 * position, size, base and last offset and a tag-set id:
 *   id >= 0              the tag set tagSets[id] (the header value's bytes, canonical)
 *   TAG_SET_TXN_MARKER   a transaction marker (control type 0 or 1): a filtered fetch returns it
 *   TAG_SET_OTHER_CONTROL any other control batch: a filtered fetch never returns it
 * The bytes between two listed batches (and before the first, after the last) are untagged
 * data batches: the empty tag set. So a segment without tags and transactions has no entries,
 * and an untagged topic pays one tiny file per sealed segment.
 *
 * File layout (big-endian), rewritten whole and atomically like the other indexes:
 *   magic int32 0x53544731 ("STG1"), crc int32 CRC-32C of the bytes after it,
 *   tagSetCount int32, per tag set: length int16, bytes;
 *   entryCount int32, per entry: position int32, sizeBytes int32, baseOffset int64,
 *   lastOffset int64, tagSetId int32.
 * A file that is missing, fails its CRC or describes batches outside the .log is not used: the
 * segment rebuilds the index from its batches (segment.ts). Missing ≠ empty: an empty index is
 * a file with zero entries.
 *
 * Invariants: entries are strictly increasing in position and offsets, inside the segment;
 * tag-set ids < tagSets.length; memory is ENTRY_BYTES per listed batch plus the distinct tag
 * sets, at most one entry per 61 bytes of log (TAG_INDEX_ENTRIES_MAX_PER_SEGMENT bounds it).
 * Not safe for concurrent mutation: the owning segment is the only writer.
 */
import fs from 'node:fs';
import { crc32c } from '../../protocol/crc32c.ts';
import { ATTR_CONTROL, BATCH_HEADER_BYTES, attributesAt, batchSizeAt, baseOffsetAt, lastOffsetAt, readInt32, readInt64, writeInt32, writeInt64 } from '../../protocol/record-batch.ts';
import { batchTagsAt, controlTypeAt, foundTagsBytes, TAG_SET_BYTES_MAX } from '../../protocol/tags.ts';
import { assert } from '../assert.ts';
import type { TagExpression } from '../../protocol/tag-expression.ts';
import { writeFileDurable, writeFileDurableSync } from './durable-file.ts';

export const TAG_INDEX_SUFFIX = '.tags';
/**
 * The active segment rolls once its tag index lists this many batches (SPEC §7.8): the index
 * of the active segment stays in memory (28 bytes per entry), and a segment of small tagged
 * batches, or of delayed-delivery wrappers and release markers, would otherwise list millions.
 */
export const ACTIVE_TAG_INDEX_ENTRIES_MAX = 100_000;
export const TAG_SET_TXN_MARKER = -1;
export const TAG_SET_OTHER_CONTROL = -2;
const MAGIC = 0x53544731;
const ENTRY_BYTES = 28;
const INITIAL_CAPACITY_ENTRIES = 16;
/** A segment is at most 4 GiB and a batch at least 61 bytes. */
export const TAG_INDEX_ENTRIES_MAX_PER_SEGMENT = Math.ceil(0xffff_ffff / BATCH_HEADER_BYTES);
const latin1 = new TextDecoder('latin1');

export type TagIndexLoad = { index: TagIndex; problem: '' } | { index: null; problem: string };

export class TagIndex {
  readonly path: string;
  readonly baseOffset: number;
  /** Distinct tag sets of the segment (header values as latin1 strings: one char per byte). */
  readonly tagSets: string[] = [];
  private readonly ids = new Map<string, number>();
  private positions = new Uint32Array(INITIAL_CAPACITY_ENTRIES);
  private sizes = new Uint32Array(INITIAL_CAPACITY_ENTRIES);
  private baseOffsets = new Float64Array(INITIAL_CAPACITY_ENTRIES);
  private lastOffsets = new Float64Array(INITIAL_CAPACITY_ENTRIES);
  private tagSetIds = new Int32Array(INITIAL_CAPACITY_ENTRIES);
  private count = 0;

  constructor(path: string, baseOffset: number) {
    this.path = path;
    this.baseOffset = baseOffset;
  }

  get entryCount(): number {
    return this.count;
  }

  /** Bytes this index holds in memory (arrays and tag sets), for metrics and tests. */
  get memoryBytes(): number {
    let n = this.positions.length * ENTRY_BYTES;
    for (const s of this.tagSets) n += s.length + 64;
    return n;
  }

  position(i: number): number { return this.positions[i]!; }
  sizeBytes(i: number): number { return this.sizes[i]!; }
  baseOffsetOf(i: number): number { return this.baseOffsets[i]!; }
  lastOffsetOf(i: number): number { return this.lastOffsets[i]!; }
  tagSetId(i: number): number { return this.tagSetIds[i]!; }

  /**
   * Notes the stored batch at b[at, end) written at `position` of the segment: listed when it
   * is tagged or a control batch, ignored otherwise. Reads the header and, for a data batch,
   * the first record's headers: the batch was validated before it was stored.
   */
  onBatch(b: Uint8Array, at: number, end: number, position: number): void {
    let id: number;
    if ((attributesAt(b, at) & ATTR_CONTROL) !== 0) {
      const type = controlTypeAt(b, at, end);
      id = type === 0 || type === 1 ? TAG_SET_TXN_MARKER : TAG_SET_OTHER_CONTROL;
    } else {
      const tagsAt = batchTagsAt(b, at, end);
      if (tagsAt < 0) return;
      id = this.idOf(latin1.decode(b.subarray(tagsAt, tagsAt + foundTagsBytes)));
    }
    this.add(position, batchSizeAt(b, at), baseOffsetAt(b, at), lastOffsetAt(b, at), id);
  }

  private idOf(tagSet: string): number {
    let id = this.ids.get(tagSet);
    if (id === undefined) {
      id = this.tagSets.length;
      this.tagSets.push(tagSet);
      this.ids.set(tagSet, id);
    }
    return id;
  }

  add(position: number, sizeBytes: number, baseOffset: number, lastOffset: number, tagSetId: number): void {
    const n = this.count;
    assert(n === 0 || (position >= this.positions[n - 1]! + this.sizes[n - 1]! && baseOffset > this.lastOffsets[n - 1]!), () => `tag index ${this.path}: entry at ${position} (offset ${baseOffset}) is not after the last one`);
    assert(tagSetId >= TAG_SET_OTHER_CONTROL && tagSetId < this.tagSets.length, () => `tag index ${this.path}: tag set id ${tagSetId}`);
    if (n === this.positions.length) this.grow();
    this.positions[n] = position;
    this.sizes[n] = sizeBytes;
    this.baseOffsets[n] = baseOffset;
    this.lastOffsets[n] = lastOffset;
    this.tagSetIds[n] = tagSetId;
    this.count = n + 1;
  }

  private grow(): void {
    const cap = Math.min(this.positions.length * 2, TAG_INDEX_ENTRIES_MAX_PER_SEGMENT);
    assert(cap > this.positions.length, () => `tag index ${this.path}: more than ${TAG_INDEX_ENTRIES_MAX_PER_SEGMENT} entries`);
    const grow = <T extends Uint32Array | Float64Array | Int32Array>(a: T, make: (n: number) => T): T => {
      const out = make(cap);
      out.set(a as never);
      return out;
    };
    this.positions = grow(this.positions, (k) => new Uint32Array(k));
    this.sizes = grow(this.sizes, (k) => new Uint32Array(k));
    this.baseOffsets = grow(this.baseOffsets, (k) => new Float64Array(k));
    this.lastOffsets = grow(this.lastOffsets, (k) => new Float64Array(k));
    this.tagSetIds = grow(this.tagSetIds, (k) => new Int32Array(k));
  }

  /** The first entry whose last offset is >= offset (entryCount when none). */
  firstEntryFrom(offset: number): number {
    let lo = 0;
    let hi = this.count;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.lastOffsets[mid]! < offset) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Drops the entries of batches whose last offset is >= offset (the segment cut them). */
  truncateTo(offset: number): void {
    this.count = this.firstEntryFrom(offset);
  }

  encode(): Uint8Array {
    let size = 8 + 4 + 4 + this.count * ENTRY_BYTES;
    const encoded = this.tagSets.map((s) => Buffer.from(s, 'latin1'));
    for (const e of encoded) size += 2 + e.length;
    const out = new Uint8Array(size);
    writeInt32(out, 0, MAGIC);
    let p = 8;
    writeInt32(out, p, encoded.length);
    p += 4;
    for (const e of encoded) {
      out[p] = e.length >>> 8;
      out[p + 1] = e.length;
      out.set(e, p + 2);
      p += 2 + e.length;
    }
    writeInt32(out, p, this.count);
    p += 4;
    for (let i = 0; i < this.count; i++) {
      writeInt32(out, p, this.positions[i]!);
      writeInt32(out, p + 4, this.sizes[i]!);
      writeInt64(out, p + 8, this.baseOffsets[i]!);
      writeInt64(out, p + 16, this.lastOffsets[i]!);
      writeInt32(out, p + 24, this.tagSetIds[i]!);
      p += ENTRY_BYTES;
    }
    writeInt32(out, 4, crc32c(out, 8, size));
    return out;
  }

  /** Parses a file's bytes; every check the layout allows, so a damaged file is never used. */
  static decode(path: string, baseOffset: number, b: Uint8Array, logSizeBytes: number): TagIndexLoad {
    const fail = (problem: string): TagIndexLoad => ({ index: null, problem });
    if (b.length < 16) return fail(`${b.length} bytes, shorter than the header`);
    if (readInt32(b, 0) !== MAGIC) return fail('bad magic');
    if ((readInt32(b, 4) >>> 0) !== crc32c(b, 8, b.length)) return fail('CRC-32C mismatch');
    const idx = new TagIndex(path, baseOffset);
    let p = 8;
    const tagSetCount = readInt32(b, p);
    p += 4;
    if (tagSetCount < 0 || tagSetCount * 3 > b.length - p) return fail(`tag set count ${tagSetCount}`);
    for (let i = 0; i < tagSetCount; i++) {
      if (p + 2 > b.length) return fail('tag sets overrun the file');
      const len = (b[p]! << 8) | b[p + 1]!;
      if (len === 0 || len > TAG_SET_BYTES_MAX || p + 2 + len > b.length) return fail(`tag set ${i} of ${len} bytes`);
      const s = latin1.decode(b.subarray(p + 2, p + 2 + len));
      if (idx.ids.has(s)) return fail(`tag set ${i} repeats an earlier one`);
      idx.idOf(s);
      p += 2 + len;
    }
    if (p + 4 > b.length) return fail('no entry count');
    const entryCount = readInt32(b, p);
    p += 4;
    if (entryCount < 0 || p + entryCount * ENTRY_BYTES !== b.length) return fail(`entry count ${entryCount} does not match the file size`);
    let prevEnd = 0;
    let prevLast = baseOffset - 1;
    for (let i = 0; i < entryCount; i++, p += ENTRY_BYTES) {
      const position = readInt32(b, p) >>> 0;
      const size = readInt32(b, p + 4) >>> 0;
      const base = readInt64(b, p + 8);
      const last = readInt64(b, p + 16);
      const id = readInt32(b, p + 24);
      if (position < prevEnd || size < BATCH_HEADER_BYTES || position + size > logSizeBytes) return fail(`entry ${i} (position ${position}, ${size} bytes) is outside the log or overlaps the previous one`);
      if (!(base > prevLast && last >= base && Number.isSafeInteger(last))) return fail(`entry ${i} offsets ${base}..${last} do not follow ${prevLast}`);
      if (id < TAG_SET_OTHER_CONTROL || id >= tagSetCount) return fail(`entry ${i} tag set id ${id}`);
      idx.add(position, size, base, last, id);
      prevEnd = position + size;
      prevLast = last;
    }
    return { index: idx, problem: '' };
  }

  static load(path: string, baseOffset: number, logSizeBytes: number): TagIndexLoad {
    let bytes: Buffer;
    try {
      bytes = fs.readFileSync(path);
    } catch (e) {
      return { index: null, problem: (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing' : (e as Error).message };
    }
    const r = TagIndex.decode(path, baseOffset, bytes, logSizeBytes);
    return r.index ? r : { index: null, problem: `${path}: ${r.problem}` };
  }

  persistSync(): void {
    writeFileDurableSync(this.path, this.encode());
  }

  async persist(): Promise<void> {
    await writeFileDurable(this.path, this.encode());
  }
}

/** Expressions whose results a tag index keeps (per segment): a few consumers' filters. */
const MATCH_CACHE_EXPRESSIONS_MAX = 8;
const MATCH_UNKNOWN = 0;
const MATCH_YES = 1;
const MATCH_NO = 2;

/** Per-index cache of which tag sets an expression matches, evaluated once per distinct tag set. */
const matchCaches = new WeakMap<TagIndex, Map<string, Int8Array>>();

/** Whether tag set `id` of idx matches expr; evaluated at most once per (index, expression, tag set) while cached. */
export function tagSetMatches(idx: TagIndex, expr: TagExpression, id: number): boolean {
  let byExpr = matchCaches.get(idx);
  if (!byExpr) matchCaches.set(idx, (byExpr = new Map()));
  let table = byExpr.get(expr.source);
  if (!table || table.length <= id) {
    const grown = new Int8Array(Math.max(idx.tagSets.length, id + 1, 8));
    if (table) grown.set(table);
    else if (byExpr.size >= MATCH_CACHE_EXPRESSIONS_MAX) byExpr.delete(byExpr.keys().next().value!);
    byExpr.set(expr.source, (table = grown));
  }
  let m = table[id]!;
  if (m === MATCH_UNKNOWN) {
    m = expr.matches(new Set(idx.tagSets[id]!.split(','))) ? MATCH_YES : MATCH_NO;
    table[id] = m;
  }
  return m === MATCH_YES;
}

/** A segment whose tag index can be dropped from memory and loaded again (LogSegment). */
export interface TagIndexHolder {
  dropTagIndex(): void;
}

/**
 * Memory bound for the tag indexes of sealed segments: they are loaded at a filtered fetch
 * (segment.ts) and kept while used, least recently used dropped beyond bytesMax (they load
 * again from their `.tags` file when needed). Active segments' indexes are not in it: they
 * are needed for every append. Dropping is always safe: a segment reloads or rebuilds its
 * index before any use.
 */
export class SealedTagIndexes {
  private readonly held = new Map<TagIndexHolder, number>();
  private totalBytes = 0;

  constructor(readonly bytesMax: number) {}

  /** holder's index (bytes in memory) was just used: most recently used now. */
  touch(holder: TagIndexHolder, bytes: number): void {
    const had = this.held.get(holder);
    if (had !== undefined) {
      this.held.delete(holder);
      this.totalBytes -= had;
    }
    this.held.set(holder, bytes);
    this.totalBytes += bytes;
    for (const [h, b] of this.held) {
      if (this.totalBytes <= this.bytesMax || h === holder) break;
      this.held.delete(h);
      this.totalBytes -= b;
      h.dropTagIndex();
    }
  }

  /** holder closed, or became the active segment: no longer counted or dropped. */
  forget(holder: TagIndexHolder): void {
    const had = this.held.get(holder);
    if (had === undefined) return;
    this.held.delete(holder);
    this.totalBytes -= had;
  }

  get bytes(): number {
    return this.totalBytes;
  }

  get count(): number {
    return this.held.size;
  }
}

/** Tag indexes of sealed segments held in memory, all partitions of the process together. */
export const SEALED_TAG_INDEXES_BYTES_MAX = 64 * 1024 * 1024;
export const sealedTagIndexes = new SealedTagIndexes(SEALED_TAG_INDEXES_BYTES_MAX);
