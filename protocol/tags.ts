/**
 * Tag sets (SPEC §8.7): the value of a batch's `sluice-tags` record header. Shared by the
 * broker (checks the syntax on produce, reads a batch's tag set for its tag index) and the
 * clients (canonicalise what the application gives, decode what a fetch returns).
 *
 * Syntax: tags joined by `,`; each tag 1..TAG_BYTES_MAX bytes of `[A-Za-z0-9._:/-]`; at most
 * TAGS_PER_SET_MAX tags; sorted by bytes, no duplicates. The value is canonical, so a tag
 * set's identity is its bytes: the broker compares and indexes bytes, never rewrites them.
 *
 * Invariants: checkTagSetBytes allocates nothing and reads only [at, at + length); every
 * value it accepts is what encodeTagSet(canonicalTags(parseTagSet(value))) produces.
 */
import { ErrorCode, SluiceError } from './errors.ts';
import { BATCH_HEADER_BYTES as BATCH_RECORDS_AT, HEADER_TAGS, type RecordHeader } from './record-batch.ts';
import { readVarint, varintEnd } from './varint.ts';

export const TAG_BYTES_MAX = 64;
export const TAGS_PER_SET_MAX = 16;
/** Longest canonical value: 16 tags of 64 bytes and 15 commas. */
export const TAG_SET_BYTES_MAX = TAGS_PER_SET_MAX * TAG_BYTES_MAX + TAGS_PER_SET_MAX - 1;
const COMMA = 0x2c;

/** Whether byte c may appear in a tag: [A-Za-z0-9._:/-]. */
export function isTagByte(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) || c === 0x2e || c === 0x5f || c === 0x3a || c === 0x2f || c === 0x2d;
}

/** Problem with one tag as a string, '' when valid. */
export function tagProblem(tag: string): string {
  if (typeof tag !== 'string') return `tag ${String(tag)} is not a string`;
  if (tag.length < 1 || tag.length > TAG_BYTES_MAX) return `tag ${JSON.stringify(tag.slice(0, 80))} must be 1 to ${TAG_BYTES_MAX} bytes`;
  for (let i = 0; i < tag.length; i++) {
    if (!isTagByte(tag.charCodeAt(i))) return `tag ${JSON.stringify(tag.slice(0, 80))} has ${JSON.stringify(tag[i])}; tags are made of A-Z a-z 0-9 . _ : / -`;
  }
  return '';
}

/**
 * The problem with a stored or produced `sluice-tags` value at b[at, at + length), '' when it
 * is a canonical tag set. Byte comparisons only: no string is built.
 */
export function checkTagSetBytes(b: Uint8Array, at: number, length: number): string {
  if (length === 0) return 'the sluice-tags value is empty: a batch without tags has no sluice-tags header';
  if (length > TAG_SET_BYTES_MAX) return `the sluice-tags value has ${length} bytes, more than ${TAG_SET_BYTES_MAX}`;
  const end = at + length;
  let tags = 0;
  let prevStart = -1;
  let prevLen = 0;
  let start = at;
  for (let i = at; i <= end; i++) {
    if (i < end && b[i] !== COMMA) {
      if (!isTagByte(b[i]!)) return `byte 0x${b[i]!.toString(16)} at ${i - at} of the sluice-tags value is not allowed in a tag (A-Z a-z 0-9 . _ : / -)`;
      continue;
    }
    const len = i - start;
    if (len === 0) return `empty tag at ${start - at} of the sluice-tags value`;
    if (len > TAG_BYTES_MAX) return `tag ${tags + 1} of the sluice-tags value has ${len} bytes, more than ${TAG_BYTES_MAX}`;
    if (++tags > TAGS_PER_SET_MAX) return `the sluice-tags value has more than ${TAGS_PER_SET_MAX} tags`;
    if (prevStart >= 0) {
      const cmp = compareBytes(b, prevStart, prevLen, b, start, len);
      if (cmp === 0) return `tag ${tags} of the sluice-tags value repeats the previous one`;
      if (cmp > 0) return `tags of the sluice-tags value are not sorted (tag ${tags} sorts before tag ${tags - 1}): the value must be canonical`;
    }
    prevStart = start;
    prevLen = len;
    start = i + 1;
  }
  return '';
}

function compareBytes(a: Uint8Array, aAt: number, aLen: number, b: Uint8Array, bAt: number, bLen: number): number {
  const n = Math.min(aLen, bLen);
  for (let i = 0; i < n; i++) {
    const d = a[aAt + i]! - b[bAt + i]!;
    if (d !== 0) return d;
  }
  return aLen - bLen;
}

/** Byte order of ASCII strings (tags are ASCII, so code units are bytes). */
function byBytes(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * The canonical form of an application's tags: sorted by bytes, duplicates removed. Throws
 * SluiceError(INVALID_TAGS) naming the problem for an invalid tag or too many tags.
 */
export function canonicalTags(tags: readonly string[]): string[] {
  if (!Array.isArray(tags)) throw new SluiceError(ErrorCode.INVALID_TAGS, 'tags must be an array of strings');
  for (const t of tags) {
    const problem = tagProblem(t);
    if (problem) throw new SluiceError(ErrorCode.INVALID_TAGS, problem);
  }
  const out = [...new Set(tags)].sort(byBytes);
  if (out.length > TAGS_PER_SET_MAX) throw new SluiceError(ErrorCode.INVALID_TAGS, `${out.length} distinct tags, more than ${TAGS_PER_SET_MAX}`);
  return out;
}

/** The header value of a canonical, non-empty tag list. */
export function tagSetString(canonical: readonly string[]): string {
  return canonical.join(',');
}

const utf8 = new TextEncoder();
const latin1 = new TextDecoder('latin1');

/** The `sluice-tags` header for the tags (canonicalised), or null for none. */
export function tagsHeader(tags: readonly string[]): RecordHeader | null {
  const canonical = canonicalTags(tags);
  if (canonical.length === 0) return null;
  return { key: HEADER_TAGS, value: utf8.encode(tagSetString(canonical)) };
}

/** Tags of a header value (not checked: a consumer reads what the broker accepted). */
export function parseTagSet(value: Uint8Array | null | undefined): string[] {
  if (!value || value.length === 0) return [];
  return latin1.decode(value).split(',');
}

/** The tags of a decoded record: those of its `sluice-tags` header, [] without one. */
export function tagsOfHeaders(headers: readonly RecordHeader[]): string[] {
  for (const h of headers) if (h.key === HEADER_TAGS) return parseTagSet(h.value);
  return [];
}

const HEADER_TAGS_KEY = utf8.encode(HEADER_TAGS);
/** Length of the value batchTagsAt found (a slot, so the walk allocates nothing). */
export let foundTagsBytes = 0;

/**
 * Position of the `sluice-tags` value in the first record of the stored batch at b[pos, end),
 * -1 when it has none (foundTagsBytes is its length). Reads the first record's framing and
 * headers only: the batch is valid (validateBatch checked it on the way in), and the value is
 * the whole batch's (SPEC §8.7). Throws RangeError on bytes that are not a batch.
 */
export function batchTagsAt(b: Uint8Array, pos: number, end: number): number {
  foundTagsBytes = 0;
  let p = pos + BATCH_RECORDS_AT;
  const len = readVarint(b, p, end);
  const recEnd = varintEnd + len;
  if (recEnd > end) throw new RangeError('first record overruns the batch');
  p = varintEnd + 1; // attributes
  readVarint(b, p, recEnd); // timestampDelta
  readVarint(b, varintEnd, recEnd); // offsetDelta
  const keyLen = readVarint(b, varintEnd, recEnd);
  p = varintEnd + Math.max(keyLen, 0);
  const valueLen = readVarint(b, p, recEnd);
  p = varintEnd + Math.max(valueLen, 0);
  const headerCount = readVarint(b, p, recEnd);
  p = varintEnd;
  for (let h = 0; h < headerCount && p < recEnd; h++) {
    const hk = readVarint(b, p, recEnd);
    const keyAt = varintEnd;
    p = keyAt + Math.max(hk, 0);
    const hv = readVarint(b, p, recEnd);
    const valueAt = varintEnd;
    p = valueAt + Math.max(hv, 0);
    if (p > recEnd) throw new RangeError('header overruns the first record');
    if (hk === HEADER_TAGS_KEY.length && hv >= 0 && compareBytes(b, keyAt, hk, HEADER_TAGS_KEY, 0, hk) === 0) {
      foundTagsBytes = hv;
      return valueAt;
    }
  }
  return -1;
}

/**
 * The type of the control batch at b[pos, end) (SPEC §8.6: the int16 after the version in its
 * record's key): 0 abort, 1 commit, larger types are other markers; -1 when the key is too short.
 */
export function controlTypeAt(b: Uint8Array, pos: number, end: number): number {
  let p = pos + BATCH_RECORDS_AT;
  const len = readVarint(b, p, end);
  const recEnd = varintEnd + len;
  p = varintEnd + 1;
  readVarint(b, p, recEnd);
  readVarint(b, varintEnd, recEnd);
  const keyLen = readVarint(b, varintEnd, recEnd);
  const keyAt = varintEnd;
  if (keyLen < 4 || keyAt + 4 > recEnd) return -1;
  return ((b[keyAt + 2]! << 8) | b[keyAt + 3]!) << 16 >> 16;
}
