/**
 * Puts a closed partition log's sealed segments into an archive store the way the uploader
 * does (SPEC §7.10: the .log and every index file the segment has, then the manifest, with
 * lastOffset = next segment's base offset - 1), and returns them as ArchivedSegments: the
 * committed archive the read path sees. For the read-side unit tests; the uploader itself
 * (archive-write lane) has its own tests.
 */
import fs from 'node:fs';
import path from 'node:path';
import CRC32 from 'crc-32';
import { segmentKey } from '../../../server/archive/archive-keys.ts';
import type { ArchiveStore } from '../../../server/archive/archive-store.ts';
import { ArchivedSegments } from '../../../server/archive/archived-segments.ts';
import { encodeManifest, MANIFEST_VERSION, type SegmentManifest } from '../../../server/archive/segment-manifest.ts';
import { readInt64 } from '../../../protocol/record-batch.ts';

export const TOPIC = 'hist';
export const TOPIC_ID = 'f00dfeedf00dfeedf00dfeedf00dfeed';
const SUFFIXES = ['.log', '.index', '.timeindex', '.txnindex', '.tags', '.delays'];

/** Bases of the log's segments (from its .log files), sorted. */
export function segmentBases(dir: string): number[] {
  return fs.readdirSync(dir).filter((f) => /^\d{20}\.log$/.test(f)).map((f) => Number(f.slice(0, 20))).sort((a, b) => a - b);
}

/**
 * Uploads the sealed segments (every one but the last) of the closed log in dir, the first
 * `count` of them (default all sealed), and returns the committed list.
 */
export async function archiveSealed(dir: string, store: ArchiveStore, partition = 0, count = Infinity): Promise<ArchivedSegments> {
  const bases = segmentBases(dir);
  const archived = new ArchivedSegments();
  for (let i = 0; i + 1 < bases.length && i < count; i++) {
    const base = bases[i]!;
    const last = bases[i + 1]! - 1;
    const files: Record<string, number> = {};
    let logBytes = Buffer.alloc(0);
    for (const suffix of SUFFIXES) {
      const file = path.join(dir, String(base).padStart(20, '0') + suffix);
      if (!fs.existsSync(file)) continue;
      const bytes = fs.readFileSync(file);
      if (suffix === '.log') logBytes = bytes;
      files[suffix] = bytes.length;
      await store.put(segmentKey(TOPIC, TOPIC_ID, partition, base, last, suffix), bytes);
    }
    if (files['.index'] === undefined) {
      files['.index'] = 0;
      await store.put(segmentKey(TOPIC, TOPIC_ID, partition, base, last, '.index'), new Uint8Array(0));
    }
    const { first, max } = timestamps(logBytes);
    const m: SegmentManifest = {
      version: MANIFEST_VERSION, topic: TOPIC, topicId: TOPIC_ID, partition, baseOffset: base, lastOffset: last,
      firstTimestampMs: first, maxTimestampMs: max, leaderEpochs: [], sizeBytes: logBytes.length,
      logCrc32: CRC32.buf(logBytes) >>> 0, files, uploadedBy: 1, uploadedAtMs: Date.now(),
    };
    await store.put(segmentKey(TOPIC, TOPIC_ID, partition, base, last, '.manifest'), encodeManifest(m));
    archived.add(m);
  }
  return archived;
}

/** Smallest and largest batch maxTimestamp of a .log's bytes (-1 when empty). */
function timestamps(log: Buffer): { first: number; max: number } {
  let first = -1;
  let max = -1;
  for (let p = 0; p + 61 <= log.length; p += log.readInt32BE(p + 8) + 12) {
    const ts = readInt64(log, p + 35);
    if (first < 0 || ts < first) first = ts;
    if (ts > max) max = ts;
  }
  return { first, max };
}
