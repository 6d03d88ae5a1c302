/**
 * Where a partition's archived segments live inside an archive store (SPEC §7.10):
 *
 *   <topic>-<topicId>/<partition>/<baseOffset:20 digits>-<lastOffset:20 digits><suffix>
 *
 * suffix is one of the local segment's file suffixes (.log, .index, .timeindex, .txnindex,
 * .tags, .delays) or .manifest, the object written last that makes the segment visible
 * (segment-manifest.ts).
 *
 * Why this shape:
 * - The topic id is in the path, so a topic deleted and created again under the same name
 *   never reads the old incarnation's archive.
 * - Offsets are zero-padded, so a store's lexical listing is offset order.
 * - Both offsets are in the name: replicas roll segments independently, so after a leader
 *   change the new leader's next segment may overlap the old leader's last upload. Overlaps
 *   hold identical bytes for identical offsets (everything uploaded is below the high
 *   watermark), and distinct names mean no upload ever overwrites another leader's object.
 *
 * Invariants: keys are ASCII without '..' segments (topic names are [a-zA-Z0-9._-] and never
 * '.' or '..'); parseSegmentKey(segmentKey(x)) === x.
 */
import { assert } from '../assert.ts';

export const MANIFEST_SUFFIX = '.manifest';
const OFFSET_DIGITS = 20;

export interface SegmentKeyParts {
  baseOffset: number;
  lastOffset: number;
  suffix: string;
}

/** The folder of one partition, ending in '/': the prefix its listing uses. */
export function partitionPrefix(topic: string, topicId: string, partition: number): string {
  assert(Number.isInteger(partition) && partition >= 0, `bad partition ${partition}`);
  return `${topic}-${topicId}/${partition}/`;
}

export function segmentKey(topic: string, topicId: string, partition: number, baseOffset: number, lastOffset: number, suffix: string): string {
  assert(Number.isSafeInteger(baseOffset) && baseOffset >= 0 && lastOffset >= baseOffset && Number.isSafeInteger(lastOffset), `bad segment range ${baseOffset}-${lastOffset}`);
  assert(/^\.[a-z]+$/.test(suffix), `bad suffix ${suffix}`);
  return `${partitionPrefix(topic, topicId, partition)}${pad(baseOffset)}-${pad(lastOffset)}${suffix}`;
}

/** The offsets and suffix of a key inside a partition's folder (the part after partitionPrefix), or null. */
export function parseSegmentKey(name: string): SegmentKeyParts | null {
  const m = /^(\d{20})-(\d{20})(\.[a-z]+)$/.exec(name);
  if (!m) return null;
  const baseOffset = Number(m[1]);
  const lastOffset = Number(m[2]);
  if (!Number.isSafeInteger(baseOffset) || !Number.isSafeInteger(lastOffset) || lastOffset < baseOffset) return null;
  return { baseOffset, lastOffset, suffix: m[3]! };
}

function pad(n: number): string {
  return String(n).padStart(OFFSET_DIGITS, '0');
}
