/**
 * Producer-state snapshots (SPEC §7.7): `<20-digit offset>.snapshot` in the partition
 * directory holds the producer state (producer-state.ts) as it was with the log ending at
 * `offset`, so that opening or truncating the log replays only the batches after it.
 *
 * Format (big-endian), version 0:
 *
 *   magic "SPSN" (4) | version int16 (0) | crc uint32 | offset int64 | count int32 | entries
 *   entry: producerId int64 | epoch int16 | lastTimestampMs int64 | txnFirstOffset int64 |
 *          coordinatorEpoch int32 | batchCount int8 (0..5) |
 *          batchCount x (firstSeq int32 | lastSeq int32 | firstOffset int64 | lastOffset int64)
 *
 * crc is CRC-32C (SPEC §11) of every byte after it (offset to the end).
 *
 * Invariants:
 * - decodeSnapshot never throws: any damage (short, bad magic, version, crc, counts, values
 *   that cannot describe a log ending at `offset`, trailing bytes) gives null, and the caller
 *   ignores the file and replays the log instead.
 * - Files are written whole (temp file, rename), only at a segment roll and at a clean close
 *   (then fsynced too: durable-file.ts); the newest SNAPSHOTS_KEPT are kept.
 */
import fs from 'node:fs';
import path from 'node:path';
import { crc32c } from '../../protocol/crc32c.ts';
import { PRODUCER_EPOCH_MAX, readInt32, readInt64, SEQUENCE_MAX, writeInt32, writeInt64 } from '../../protocol/record-batch.ts';
import { TMP_SUFFIX, unlinkIfExistsSync, writeFileDurableSync } from './durable-file.ts';
import { PRODUCER_BATCHES_KEPT, type BatchMeta, type ProducerEntry } from './producer-state.ts';

export const SNAPSHOT_SUFFIX = '.snapshot';
export const SNAPSHOTS_KEPT = 3;
const SNAPSHOT_FILE = /^(\d{20})\.snapshot$/;
const MAGIC = [0x53, 0x50, 0x53, 0x4e]; // "SPSN"
const VERSION = 0;
const HEADER_BYTES = 22;
const CRC_AT = 6;
const ENTRY_FIXED_BYTES = 8 + 2 + 8 + 8 + 4 + 1;
const BATCH_BYTES = 24;

export function snapshotFileName(offset: number): string {
  return String(offset).padStart(20, '0') + SNAPSHOT_SUFFIX;
}

export function encodeSnapshot(offset: number, entries: readonly ProducerEntry[]): Buffer {
  let size = HEADER_BYTES;
  for (const e of entries) size += ENTRY_FIXED_BYTES + e.batches.length * BATCH_BYTES;
  const b = Buffer.alloc(size);
  b.set(MAGIC, 0);
  b.writeInt16BE(VERSION, 4);
  writeInt64(b, 10, offset);
  writeInt32(b, 18, entries.length);
  let p = HEADER_BYTES;
  for (const e of entries) {
    writeInt64(b, p, e.producerId);
    b.writeInt16BE(e.epoch, p + 8);
    writeInt64(b, p + 10, e.lastTimestampMs);
    writeInt64(b, p + 18, e.txnFirstOffset);
    writeInt32(b, p + 26, e.coordinatorEpoch);
    b[p + 30] = e.batches.length;
    p += ENTRY_FIXED_BYTES;
    for (const m of e.batches) {
      writeInt32(b, p, m.firstSeq);
      writeInt32(b, p + 4, m.lastSeq);
      writeInt64(b, p + 8, m.firstOffset);
      writeInt64(b, p + 16, m.lastOffset);
      p += BATCH_BYTES;
    }
  }
  writeInt32(b, CRC_AT, crc32c(b, CRC_AT + 4, size));
  return b;
}

/** The snapshot in b, or null when it is damaged in any way (see the top of the file). */
export function decodeSnapshot(b: Uint8Array): { offset: number; entries: ProducerEntry[] } | null {
  if (b.length < HEADER_BYTES) return null;
  for (let i = 0; i < 4; i++) if (b[i] !== MAGIC[i]) return null;
  if (((b[4]! << 8) | b[5]!) !== VERSION) return null;
  if (readInt32(b, CRC_AT) >>> 0 !== crc32c(b, CRC_AT + 4, b.length)) return null;
  const offset = readInt64(b, 10);
  const count = readInt32(b, 18);
  if (!(offset >= 0 && Number.isSafeInteger(offset)) || count < 0 || count > (b.length - HEADER_BYTES) / ENTRY_FIXED_BYTES) return null;
  const entries: ProducerEntry[] = [];
  const seen = new Set<number>();
  let p = HEADER_BYTES;
  for (let i = 0; i < count; i++) {
    if (p + ENTRY_FIXED_BYTES > b.length) return null;
    const producerId = readInt64(b, p);
    const epoch = (((b[p + 8]! << 8) | b[p + 9]!) << 16) >> 16;
    const lastTimestampMs = readInt64(b, p + 10);
    const txnFirstOffset = readInt64(b, p + 18);
    const coordinatorEpoch = readInt32(b, p + 26);
    const batchCount = b[p + 30]!;
    p += ENTRY_FIXED_BYTES;
    if (!(producerId >= 0 && Number.isSafeInteger(producerId)) || seen.has(producerId)) return null;
    if (epoch < 0 || epoch > PRODUCER_EPOCH_MAX || !Number.isSafeInteger(lastTimestampMs)) return null;
    if (!(txnFirstOffset === -1 || (txnFirstOffset >= 0 && txnFirstOffset < offset)) || coordinatorEpoch < -1) return null;
    if (batchCount > PRODUCER_BATCHES_KEPT || p + batchCount * BATCH_BYTES > b.length) return null;
    const batches: BatchMeta[] = [];
    for (let k = 0; k < batchCount; k++, p += BATCH_BYTES) {
      const m = { firstSeq: readInt32(b, p), lastSeq: readInt32(b, p + 4), firstOffset: readInt64(b, p + 8), lastOffset: readInt64(b, p + 16) };
      if (m.firstSeq < 0 || m.firstSeq > SEQUENCE_MAX || m.lastSeq < 0 || m.lastSeq > SEQUENCE_MAX) return null;
      if (!(m.firstOffset >= 0 && m.firstOffset <= m.lastOffset && m.lastOffset < offset)) return null;
      if (batches.length > 0 && batches[batches.length - 1]!.lastOffset >= m.firstOffset) return null;
      batches.push(m);
    }
    seen.add(producerId);
    entries.push({ producerId, epoch, batches, lastTimestampMs, txnFirstOffset, coordinatorEpoch });
  }
  if (p !== b.length) return null;
  return { offset, entries };
}

/** The offsets of the snapshot files in dir, ascending. */
export function listSnapshots(dir: string): number[] {
  const out: number[] = [];
  for (const name of fs.readdirSync(dir)) {
    const m = SNAPSHOT_FILE.exec(name);
    if (m) out.push(Number(m[1]));
  }
  return out.sort((a, b) => a - b);
}

/**
 * Writes the snapshot (temp file, rename) and deletes all but the newest SNAPSHOTS_KEPT.
 * `durable` adds the fsyncs (a clean close); at a segment roll, on the append path, they are
 * left out: a snapshot lost or torn by a machine crash fails its CRC and is ignored.
 */
export function writeSnapshotSync(dir: string, offset: number, entries: readonly ProducerEntry[], durable: boolean): void {
  const file = path.join(dir, snapshotFileName(offset));
  const bytes = encodeSnapshot(offset, entries);
  if (durable) {
    writeFileDurableSync(file, bytes);
  } else {
    fs.writeFileSync(file + TMP_SUFFIX, bytes);
    fs.renameSync(file + TMP_SUFFIX, file);
  }
  const all = listSnapshots(dir);
  for (const old of all.slice(0, Math.max(0, all.length - SNAPSHOTS_KEPT))) unlinkIfExistsSync(path.join(dir, snapshotFileName(old)));
}

/** Deletes the snapshots above `offset` (a log end that moved back). */
export function deleteSnapshotsAbove(dir: string, offset: number): void {
  for (const o of listSnapshots(dir)) if (o > offset) unlinkIfExistsSync(path.join(dir, snapshotFileName(o)));
}

/** Deletes the snapshots below `offset` (the log start after retention), except the newest snapshot overall. */
export function deleteSnapshotsBelow(dir: string, offset: number): void {
  const all = listSnapshots(dir);
  for (const o of all.slice(0, -1)) if (o < offset) unlinkIfExistsSync(path.join(dir, snapshotFileName(o)));
}

/** The newest intact snapshot at or below maxOffset, or null; damaged ones are reported through onBad and skipped. */
export function latestSnapshot(dir: string, maxOffset: number, onBad: (file: string) => void): { offset: number; entries: ProducerEntry[] } | null {
  const offsets = listSnapshots(dir).filter((o) => o <= maxOffset);
  for (let i = offsets.length - 1; i >= 0; i--) {
    const file = path.join(dir, snapshotFileName(offsets[i]!));
    let decoded: ReturnType<typeof decodeSnapshot> = null;
    try {
      decoded = decodeSnapshot(fs.readFileSync(file));
    } catch {
      decoded = null;
    }
    if (decoded !== null && decoded.offset === offsets[i]) return decoded;
    onBad(file);
  }
  return null;
}
