/**
 * The aborted-transaction index of one segment: `<baseOffset>.txnindex` next to its .log
 * (SPEC §7.7). One entry per abort marker stored in that segment, in offset order:
 *
 *   producerId int64 | firstOffset int64 | lastOffset int64 (the marker) | crc uint32
 *
 * 28 bytes, big-endian; crc is CRC-32C (SPEC §11) of the 24 bytes before it. Entries are only
 * appended (fdatasynced: markers are rare and a lost entry would show aborted records to
 * read_committed consumers), and the file is deleted with its segment.
 *
 * Invariants:
 * - Recovery: open replays the batches after the producer-state snapshot (producer-snapshot.ts)
 *   and rewrites the index of every segment from what it finds (entries for markers below the
 *   snapshot come from the files). A file removed by hand below the snapshot is therefore not
 *   rebuilt; removing the .snapshot files too makes open replay, and rebuild, everything.
 * - decodeTxnIndex never throws: it returns the entries up to the first short or damaged one
 *   (a torn append at a crash) and how many bytes were good; the caller rebuilds the rest
 *   from the log (recovery replays the batches after the producer-state snapshot).
 * - Entries in a file have increasing lastOffset, within the segment's offsets.
 */
import fs from 'node:fs';
import { crc32c } from '../../protocol/crc32c.ts';
import { readInt32, readInt64, writeInt32, writeInt64 } from '../../protocol/record-batch.ts';
import path from 'node:path';
import { fsyncDirSync, unlinkIfExistsSync } from './durable-file.ts';

export const TXN_INDEX_SUFFIX = '.txnindex';
export const TXN_INDEX_ENTRY_BYTES = 28;

export interface AbortedTxn {
  producerId: number;
  firstOffset: number;
  /** The abort marker's offset. */
  lastOffset: number;
}

export function encodeTxnIndexEntry(e: AbortedTxn): Buffer {
  const b = Buffer.alloc(TXN_INDEX_ENTRY_BYTES);
  writeInt64(b, 0, e.producerId);
  writeInt64(b, 8, e.firstOffset);
  writeInt64(b, 16, e.lastOffset);
  writeInt32(b, 24, crc32c(b, 0, 24));
  return b;
}

/** The intact entries at the start of `b` (see the top of the file). */
export function decodeTxnIndex(b: Uint8Array): { entries: AbortedTxn[]; validBytes: number } {
  const entries: AbortedTxn[] = [];
  let pos = 0;
  for (; pos + TXN_INDEX_ENTRY_BYTES <= b.length; pos += TXN_INDEX_ENTRY_BYTES) {
    if (readInt32(b, pos + 24) >>> 0 !== crc32c(b, pos, pos + 24)) break;
    const producerId = readInt64(b, pos);
    const firstOffset = readInt64(b, pos + 8);
    const lastOffset = readInt64(b, pos + 16);
    if (!(producerId >= 0 && firstOffset >= 0 && lastOffset >= firstOffset && Number.isSafeInteger(lastOffset))) break;
    entries.push({ producerId, firstOffset, lastOffset });
  }
  return { entries, validBytes: pos };
}

/** The entries of the file, [] when it does not exist. */
export function readTxnIndexSync(filePath: string): AbortedTxn[] {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(filePath);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  return decodeTxnIndex(bytes).entries;
}

/** Appends one entry and fdatasyncs it (and the directory when this created the file). */
export function appendTxnIndexSync(filePath: string, e: AbortedTxn): void {
  const created = !fs.existsSync(filePath);
  const fd = fs.openSync(filePath, 'a');
  try {
    fs.writeSync(fd, encodeTxnIndexEntry(e));
    fs.fdatasyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  if (created) fsyncDirSync(path.dirname(filePath));
}

/** Replaces the file's content with `entries` (none: the file is removed). Not atomic: a torn file decodes to a prefix, and recovery rebuilds. */
export function writeTxnIndexSync(filePath: string, entries: readonly AbortedTxn[]): void {
  if (entries.length === 0) {
    unlinkIfExistsSync(filePath);
    return;
  }
  const fd = fs.openSync(filePath, 'w');
  try {
    fs.writeSync(fd, Buffer.concat(entries.map(encodeTxnIndexEntry)));
    fs.fdatasyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}
