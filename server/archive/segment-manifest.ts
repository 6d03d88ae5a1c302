/**
 * The manifest of one archived segment (SPEC §7.10): a small JSON object written after every
 * other object of the segment, so that its presence is what makes the segment visible in the
 * archive. Readers trust a segment only through its manifest and only below the partition's
 * committed archive end (archive state, held in the metadata store).
 *
 * Invariants (checked by decodeManifest, which refuses anything else):
 * - version is 1; baseOffset <= lastOffset, both safe integers >= 0;
 * - files lists every object of the segment by suffix with its size; '.log' and '.index' are
 *   always present and files['.log'] === sizeBytes;
 * - logCrc32 is the CRC-32 (IEEE, the crc-32 package) of the whole .log object, as uint32:
 *   a reader can verify a downloaded segment end to end;
 * - leaderEpochs lists the (epoch, startOffset) entries of the leader epoch cache that fall in
 *   [baseOffset, lastOffset], plus the one in force at baseOffset, sorted, so a follower that
 *   restarts from the archive can rebuild its epoch cache.
 */
import { assert } from '../assert.ts';

export const MANIFEST_VERSION = 1;
/** A manifest is small; anything larger is not one of ours. */
export const MANIFEST_BYTES_MAX = 64 * 1024;

export interface SegmentManifest {
  version: 1;
  topic: string;
  topicId: string;
  partition: number;
  baseOffset: number;
  lastOffset: number;
  /** Smallest and largest batch maxTimestamp in the segment (ms since the epoch); -1 if none. */
  firstTimestampMs: number;
  maxTimestampMs: number;
  leaderEpochs: Array<{ epoch: number; startOffset: number }>;
  /** Size of the .log object. */
  sizeBytes: number;
  logCrc32: number;
  /** Suffix ('.log', '.index', ...) to object size in bytes. */
  files: Record<string, number>;
  /** Broker that uploaded it and when, for operators. */
  uploadedBy: number;
  uploadedAtMs: number;
}

export function encodeManifest(m: SegmentManifest): Uint8Array {
  checkManifest(m);
  const bytes = new TextEncoder().encode(JSON.stringify(m));
  assert(bytes.length <= MANIFEST_BYTES_MAX, `manifest of ${bytes.length} bytes`);
  return bytes;
}

/** Throws Error naming the first problem; never returns a manifest that breaks the invariants. */
export function decodeManifest(bytes: Uint8Array): SegmentManifest {
  if (bytes.length > MANIFEST_BYTES_MAX) throw new Error(`manifest of ${bytes.length} bytes exceeds ${MANIFEST_BYTES_MAX}`);
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (e) {
    throw new Error(`manifest is not UTF-8 JSON: ${(e as Error).message}`);
  }
  checkManifest(value);
  return value;
}

function checkManifest(v: unknown): asserts v is SegmentManifest {
  const fail = (why: string): never => {
    throw new Error(`bad manifest: ${why}`);
  };
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail('not an object');
  const m = v as Record<string, unknown>;
  const int = (k: string, min: number): number => {
    const x = m[k];
    if (typeof x !== 'number' || !Number.isSafeInteger(x) || x < min) fail(`${k} must be an integer >= ${min}`);
    return x as number;
  };
  if (m.version !== MANIFEST_VERSION) fail(`version ${String(m.version)} is not ${MANIFEST_VERSION}`);
  if (typeof m.topic !== 'string' || m.topic.length === 0) fail('topic must be a non-empty string');
  if (typeof m.topicId !== 'string' || m.topicId.length === 0) fail('topicId must be a non-empty string');
  int('partition', 0);
  const base = int('baseOffset', 0);
  const last = int('lastOffset', 0);
  if (last < base) fail(`lastOffset ${last} < baseOffset ${base}`);
  int('firstTimestampMs', -1);
  int('maxTimestampMs', -1);
  const size = int('sizeBytes', 0);
  const crc = int('logCrc32', 0);
  if (crc > 0xffff_ffff) fail('logCrc32 must be a uint32');
  int('uploadedBy', -1);
  int('uploadedAtMs', 0);
  if (!Array.isArray(m.leaderEpochs)) fail('leaderEpochs must be an array');
  let prev = -1;
  for (const e of m.leaderEpochs as unknown[]) {
    if (typeof e !== 'object' || e === null) fail('leaderEpochs entry must be an object');
    const { epoch, startOffset } = e as Record<string, unknown>;
    if (typeof epoch !== 'number' || !Number.isSafeInteger(epoch) || epoch < 0 || epoch <= prev) fail('leaderEpochs epochs must be increasing integers >= 0');
    if (typeof startOffset !== 'number' || !Number.isSafeInteger(startOffset) || startOffset < 0 || startOffset > last) fail('leaderEpochs startOffset must be an integer in range');
    prev = epoch as number;
  }
  if (typeof m.files !== 'object' || m.files === null || Array.isArray(m.files)) fail('files must be an object');
  const files = m.files as Record<string, unknown>;
  for (const [suffix, n] of Object.entries(files)) {
    if (!/^\.[a-z]+$/.test(suffix)) fail(`files key ${JSON.stringify(suffix)} is not a suffix`);
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) fail(`files[${suffix}] must be a size`);
  }
  if (files['.log'] !== size) fail('files[".log"] must equal sizeBytes');
  if (files['.index'] === undefined) fail('files[".index"] is missing');
}
