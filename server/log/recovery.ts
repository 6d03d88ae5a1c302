/**
 * Recovery of one segment's .log after an unclean shutdown (or when its indexes are missing or
 * fail their sanity check): every batch is validated in full, in order, and the file is cut
 * back to what can be trusted.
 *
 * Invariants after recoverSegmentFile returns:
 * - The file holds only batches that pass validateBatch (CRC-32C included), with base offsets
 *   increasing and never below the segment's base offset; it is fsynced.
 * - A torn tail (a header or batch that overruns the file, a length that makes no sense, or
 *   garbage that does not validate and is not followed by a valid batch) is truncated away.
 * - A batch in the middle whose framing is intact but whose content is corrupt, and which is
 *   followed directly by a valid batch, is dropped alone: the file is rewritten without it
 *   (`<name>.log.recovering`, fsync, rename over the original) and a warning names the offset
 *   range that was lost, so every intact batch is still served. Two corrupt batches in a row
 *   are not told apart from a torn tail: everything from the first is truncated.
 * - onBatch is called for every kept batch, in order, with its position in the final file, so
 *   the caller rebuilds its indexes in the same pass.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ErrorCode } from '../../protocol/errors.ts';
import { BATCH_HEADER_BYTES, BATCH_LOG_OVERHEAD, newBatchInfo, validateBatch } from '../../protocol/record-batch.ts';
import type { Logger } from '../logger.ts';
import { FileBatchCursor, readFullySync } from './batch-cursor.ts';
import { fsyncDirSync } from './durable-file.ts';
import { io } from './log-io.ts';

export const RECOVERING_SUFFIX = '.recovering';
/** Bytes read from disk at a time while scanning; a larger batch gets a buffer of its own. */
const SCAN_CHUNK_BYTES = 8 * 1024 * 1024;

export interface RecoveredBatch {
  baseOffset: number;
  lastOffset: number;
  maxTimestampMs: number;
  /** Position in the recovered file. */
  position: number;
  sizeBytes: number;
}

export interface DroppedBatch {
  firstOffset: number;
  lastOffset: number;
  sizeBytes: number;
  problem: string;
}

export interface RecoveryResult {
  sizeBytes: number;
  /** Offset after the last kept batch; the segment's base offset when none was kept. */
  nextOffset: number;
  batchCount: number;
  truncatedBytes: number;
  dropped: DroppedBatch[];
}

type Check = { ok: true; sizeBytes: number; baseOffset: number; lastOffset: number; maxTimestampMs: number } | { ok: false; framedSizeBytes: number; problem: string };

/** Scans, repairs and fsyncs the segment file at logPath. Synchronous: it runs before the log serves anything. */
export function recoverSegmentFile(logPath: string, baseOffset: number, logger: Logger, onBatch: (b: RecoveredBatch) => void): RecoveryResult {
  const fd = fs.openSync(logPath, 'r+');
  try {
    const reader = new FileBatchCursor(fd, fs.fstatSync(fd).size, SCAN_CHUNK_BYTES, logPath);
    const info = newBatchInfo();
    const check = (pos: number, minBaseOffset: number): Check => {
      if (!reader.seek(pos, BATCH_LOG_OVERHEAD)) return { ok: false, framedSizeBytes: -1, problem: 'batch header overruns the file' };
      const size = reader.sizeBytes;
      if (!(size >= BATCH_HEADER_BYTES && reader.seek(pos, size))) return { ok: false, framedSizeBytes: -1, problem: `batch length ${size} does not fit the file` };
      const code = validateBatch(reader.buf, reader.at, reader.at + size, info, true);
      if (code !== ErrorCode.NONE) return { ok: false, framedSizeBytes: size, problem: info.problem };
      const base = reader.baseOffset;
      if (base < minBaseOffset) return { ok: false, framedSizeBytes: size, problem: `base offset ${base} is below the expected ${minBaseOffset}` };
      return { ok: true, sizeBytes: size, baseOffset: base, lastOffset: base + info.lastOffsetDelta, maxTimestampMs: info.maxTimestamp };
    };

    const keptRanges: Array<[number, number]> = [];
    const dropped: DroppedBatch[] = [];
    let pos = 0;
    let outPos = 0;
    let nextOffset = baseOffset;
    let batchCount = 0;
    let stopProblem = '';
    while (pos < reader.fileEnd) {
      const c = check(pos, nextOffset);
      if (c.ok) {
        onBatch({ baseOffset: c.baseOffset, lastOffset: c.lastOffset, maxTimestampMs: c.maxTimestampMs, position: outPos, sizeBytes: c.sizeBytes });
        const last = keptRanges[keptRanges.length - 1];
        if (last && last[1] === pos) last[1] = pos + c.sizeBytes;
        else keptRanges.push([pos, pos + c.sizeBytes]);
        pos += c.sizeBytes;
        outPos += c.sizeBytes;
        nextOffset = c.lastOffset + 1;
        batchCount++;
        continue;
      }
      // Intact framing followed by a valid batch: this one batch is damaged, not the tail.
      const after = c.framedSizeBytes > 0 && pos + c.framedSizeBytes < reader.fileEnd ? check(pos + c.framedSizeBytes, nextOffset) : null;
      if (after?.ok) {
        const lost: DroppedBatch = { firstOffset: nextOffset, lastOffset: after.baseOffset - 1, sizeBytes: c.framedSizeBytes, problem: c.problem };
        dropped.push(lost);
        logger.warn('dropped a corrupt batch from the middle of a segment; its records are lost', { segment: logPath, position: pos, ...lost });
        pos += c.framedSizeBytes;
        continue;
      }
      stopProblem = c.problem;
      break;
    }
    const truncatedBytes = reader.fileEnd - pos;
    if (truncatedBytes > 0) {
      logger.warn('truncated a torn or corrupt segment tail', { segment: logPath, position: pos, truncatedBytes, firstLostOffset: nextOffset, problem: stopProblem });
    }
    if (dropped.length > 0) {
      rewriteWithout(fd, logPath, keptRanges);
    } else {
      if (truncatedBytes > 0) fs.ftruncateSync(fd, pos);
      // Also makes durable what a crashed process left in the page cache: all of it is served now.
      io.fsyncSync(fd);
    }
    return { sizeBytes: outPos, nextOffset, batchCount, truncatedBytes, dropped };
  } finally {
    fs.closeSync(fd);
  }
}

/** Copies keptRanges into `<logPath>.recovering`, fsyncs it and renames it over logPath. */
function rewriteWithout(fd: number, logPath: string, keptRanges: Array<[number, number]>): void {
  const tmp = logPath + RECOVERING_SUFFIX;
  const out = fs.openSync(tmp, 'w');
  try {
    let outPos = 0;
    for (const [start, end] of keptRanges) {
      for (let p = start; p < end; p += SCAN_CHUNK_BYTES) {
        const buf = Buffer.allocUnsafe(Math.min(SCAN_CHUNK_BYTES, end - p));
        readFullySync(fd, buf, p);
        let written = 0;
        while (written < buf.length) written += io.writeSync(out, buf, written, buf.length - written, outPos + written);
        outPos += buf.length;
      }
    }
    io.fsyncSync(out);
  } finally {
    fs.closeSync(out);
  }
  io.renameSync(tmp, logPath);
  fsyncDirSync(path.dirname(logPath));
}
