/**
 * SegmentDelays: the delayed-delivery content of one segment (SPEC §7.9 "delay index"): its
 * SCHEDULED wrappers' keys, its CANCELLED markers' keys, its newest RELEASED marker (key and own
 * offset). Built as batches are appended to the active segment (and by scanning a segment),
 * written as the sidecar file `<baseOffset>.delays` when the segment rolls, read back at open so
 * that opening a log does not scan its closed segments.
 *
 * File format (big-endian; CRC-32C as in SPEC §11): `SDLY`, int16 version 0, uint32 crc of every
 * byte after it, int64 segment base offset, int64 segment next offset, int64 + int64 newest
 * RELEASED key (-1, -1 when none), int64 that marker's own offset (-1), int32 scheduled count N,
 * int32 cancelled count M, N × (int64 deliverAtMs, int64 wrapper offset) sorted by key, M ×
 * (int64 deliverAtMs, int64 wrapper offset) sorted by offset.
 *
 * Invariants:
 * - A pure function of the segment's bytes: a missing or damaged file (magic, version, crc,
 *   lengths, offsets not those of its segment) is ignored and rebuilt by scanning the segment.
 * - Written whole (temporary file, then rename); never appended to.
 */
import fs from 'node:fs';
import { crc32c } from '../../protocol/crc32c.ts';
import { compareKey, CONTROL_TYPE_CANCELLED, CONTROL_TYPE_RELEASED, CONTROL_TYPE_SCHEDULED, controlTypeAt, readDelayMarker, readScheduled } from '../../protocol/delayed-batch.ts';
import { readInt32, readInt64, writeInt32, writeInt64 } from '../../protocol/record-batch.ts';

export const DELAYS_SUFFIX = '.delays';
const MAGIC = [0x53, 0x44, 0x4c, 0x59]; // "SDLY"
const VERSION = 0;
/** magic 4, version 2, crc 4, base 8, next 8, release key 16, release marker offset 8, counts 8. */
export const SEGMENT_DELAYS_HEADER_BYTES = 58;
const CRC_FROM = 10;

export class SegmentDelays {
  scheduledAt: number[] = [];
  scheduledOffset: number[] = [];
  cancelledAt: number[] = [];
  cancelledOffset: number[] = [];
  releaseAtMs = -1;
  releaseOffset = -1;
  releaseMarkerOffset = -1;
  /** Decoded without its scheduled keys (withScheduled false): how many the file holds; -1 otherwise. */
  fileScheduledCount = -1;

  get scheduledCount(): number {
    return this.scheduledAt.length;
  }

  /** One delayed-delivery control batch (whole in b at pos), in log order. */
  note(b: Uint8Array, pos: number): void {
    const type = controlTypeAt(b, pos);
    if (type === CONTROL_TYPE_SCHEDULED) {
      const e = readScheduled(b, pos);
      if (e === null) return;
      this.scheduledAt.push(e.effectiveDeliverAtMs);
      this.scheduledOffset.push(e.wrapperOffset);
    } else if (type === CONTROL_TYPE_RELEASED || type === CONTROL_TYPE_CANCELLED) {
      const m = readDelayMarker(b, pos);
      if (m === null) return;
      if (type === CONTROL_TYPE_CANCELLED) {
        this.cancelledAt.push(m.deliverAtMs);
        this.cancelledOffset.push(m.wrapperOffset);
      } else {
        if (compareKey(m.deliverAtMs, m.wrapperOffset, this.releaseAtMs, this.releaseOffset) > 0) {
          this.releaseAtMs = m.deliverAtMs;
          this.releaseOffset = m.wrapperOffset;
        }
        this.releaseMarkerOffset = m.offset;
      }
    }
  }

  /** The file's bytes for a segment [baseOffset, nextOffset). */
  encode(baseOffset: number, nextOffset: number): Buffer {
    const n = this.scheduledAt.length;
    const m = this.cancelledAt.length;
    const order = Array.from({ length: n }, (_, i) => i).sort((x, y) => compareKey(this.scheduledAt[x]!, this.scheduledOffset[x]!, this.scheduledAt[y]!, this.scheduledOffset[y]!));
    const corder = Array.from({ length: m }, (_, i) => i).sort((x, y) => this.cancelledOffset[x]! - this.cancelledOffset[y]!);
    const b = Buffer.alloc(SEGMENT_DELAYS_HEADER_BYTES + 16 * (n + m));
    b.set(MAGIC, 0);
    b.writeInt16BE(VERSION, 4);
    writeInt64(b, 10, baseOffset);
    writeInt64(b, 18, nextOffset);
    writeInt64(b, 26, this.releaseAtMs);
    writeInt64(b, 34, this.releaseOffset);
    writeInt64(b, 42, this.releaseMarkerOffset);
    writeInt32(b, 50, n);
    writeInt32(b, 54, m);
    let p = SEGMENT_DELAYS_HEADER_BYTES;
    for (const i of order) {
      writeInt64(b, p, this.scheduledAt[i]!);
      writeInt64(b, p + 8, this.scheduledOffset[i]!);
      p += 16;
    }
    for (const i of corder) {
      writeInt64(b, p, this.cancelledAt[i]!);
      writeInt64(b, p + 8, this.cancelledOffset[i]!);
      p += 16;
    }
    writeInt32(b, 6, crc32c(b, CRC_FROM, b.length));
    return b;
  }

  /** The content of a file's bytes for the segment [baseOffset, nextOffset), or null when they are not a valid one. */
  static decode(b: Uint8Array, baseOffset: number, nextOffset: number, withScheduled = true): SegmentDelays | null {
    if (b.length < SEGMENT_DELAYS_HEADER_BYTES) return null;
    for (let i = 0; i < 4; i++) if (b[i] !== MAGIC[i]) return null;
    if (((b[4]! << 8) | b[5]!) !== VERSION) return null;
    if ((readInt32(b, 6) >>> 0) !== crc32c(b, CRC_FROM, b.length)) return null;
    if (readInt64(b, 10) !== baseOffset || readInt64(b, 18) !== nextOffset) return null;
    const n = readInt32(b, 50);
    const m = readInt32(b, 54);
    if (n < 0 || m < 0 || b.length !== SEGMENT_DELAYS_HEADER_BYTES + 16 * (n + m)) return null;
    const sd = new SegmentDelays();
    sd.fileScheduledCount = n;
    sd.releaseAtMs = readInt64(b, 26);
    sd.releaseOffset = readInt64(b, 34);
    sd.releaseMarkerOffset = readInt64(b, 42);
    let p = SEGMENT_DELAYS_HEADER_BYTES;
    for (let i = 0; i < n; i++, p += 16) {
      const off = readInt64(b, p + 8);
      if (off < baseOffset || off >= nextOffset) return null;
      if (!withScheduled) continue;
      sd.scheduledAt.push(readInt64(b, p));
      sd.scheduledOffset.push(off);
    }
    for (let i = 0; i < m; i++, p += 16) {
      sd.cancelledAt.push(readInt64(b, p));
      sd.cancelledOffset.push(readInt64(b, p + 8));
    }
    const markerOk = sd.releaseMarkerOffset === -1 ? sd.releaseOffset === -1 : sd.releaseMarkerOffset >= baseOffset && sd.releaseMarkerOffset < nextOffset;
    return markerOk ? sd : null;
  }

  /** Writes the sidecar file whole (temporary file, then rename). Throws on I/O errors. */
  writeSync(file: string, baseOffset: number, nextOffset: number): void {
    const tmp = `${file}.tmp`;
    fs.writeFileSync(tmp, this.encode(baseOffset, nextOffset));
    fs.renameSync(tmp, file);
  }

  /** The sidecar file's content, or null when it is missing or not valid for this segment. */
  static readSync(file: string, baseOffset: number, nextOffset: number, withScheduled = true): SegmentDelays | null {
    let b: Buffer;
    try {
      b = fs.readFileSync(file);
    } catch {
      return null;
    }
    return SegmentDelays.decode(b, baseOffset, nextOffset, withScheduled);
  }
}
