/**
 * The append-only file of metadata changes behind the embedded store
 * (`<data-dir>/__metadata/metadata.journal`): a change costs one small append and one
 * fdatasync shared by every change that arrived meanwhile, instead of rewriting and fsyncing
 * the whole metadata document (2 MB at 10,000 partitions) on the event loop.
 *
 * Record: `u32 payloadBytes | u32 crc32c(payload) | payload` (big-endian; payload is UTF-8
 * JSON carrying a sequence number).
 *
 * Invariants:
 * - `sizeBytes` is the length of the durable, whole-record prefix of the file. A batch is
 *   written at sizeBytes and counts only after its fdatasync succeeded.
 * - After a failed write or sync (ENOSPC, EIO) the file is cut back to sizeBytes before
 *   anything else is written, so a torn record is never followed by a good one; until the
 *   cut succeeds every append fails.
 * - Reading stops at the first record that is short, oversized or fails its CRC: that is a
 *   tail no caller was ever told was durable, and open() cuts it off.
 * - All I/O after open() goes through the thread pool (callback API), never the event loop.
 */
import fs from 'node:fs';
import { promisify } from 'node:util';
import { crc32c } from '../../protocol/crc32c.ts';
import { fdatasync } from '../log/durable-file.ts';

const HEADER_BYTES = 8;
/** A record larger than this is corruption, not a change (the largest, a 10,000-partition topic, is ~1.5 MB). */
export const JOURNAL_RECORD_BYTES_MAX = 64 * 1024 * 1024;

const write = promisify(fs.write);
const ftruncate = promisify(fs.ftruncate);
const close = promisify(fs.close);

export function encodeRecord(payload: unknown): Buffer {
  const body = Buffer.from(JSON.stringify(payload), 'utf8');
  if (body.length > JOURNAL_RECORD_BYTES_MAX) throw new Error(`metadata change of ${body.length} bytes exceeds ${JOURNAL_RECORD_BYTES_MAX}`);
  const out = Buffer.allocUnsafe(HEADER_BYTES + body.length);
  out.writeUInt32BE(body.length, 0);
  out.writeUInt32BE(crc32c(body), 4);
  body.copy(out, HEADER_BYTES);
  return out;
}

export class MetadataJournal {
  private cutPending = false;

  private constructor(
    readonly path: string,
    private readonly fd: number,
    private size: number,
  ) {}

  /**
   * Opens (creating) the journal and returns its whole records' payloads; a torn or corrupt
   * tail is cut off (and reported through `tornBytes`). Synchronous: start-up only.
   */
  static open(path: string): { journal: MetadataJournal; payloads: unknown[]; tornBytes: number } {
    const fd = fs.openSync(path, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o644);
    const bytes = fs.readFileSync(path);
    const payloads: unknown[] = [];
    let pos = 0;
    while (pos + HEADER_BYTES <= bytes.length) {
      const length = bytes.readUInt32BE(pos);
      if (length > JOURNAL_RECORD_BYTES_MAX || pos + HEADER_BYTES + length > bytes.length) break;
      const body = bytes.subarray(pos + HEADER_BYTES, pos + HEADER_BYTES + length);
      if (crc32c(body) !== bytes.readUInt32BE(pos + 4)) break;
      let payload: unknown;
      try {
        payload = JSON.parse(body.toString('utf8'));
      } catch {
        break;
      }
      payloads.push(payload);
      pos += HEADER_BYTES + length;
    }
    const tornBytes = bytes.length - pos;
    if (tornBytes > 0) {
      fs.ftruncateSync(fd, pos);
      fs.fsyncSync(fd);
    }
    return { journal: new MetadataJournal(path, fd, pos), payloads, tornBytes };
  }

  get sizeBytes(): number {
    return this.size;
  }

  /** Appends whole records and resolves once they are durable; rejects with the I/O error. */
  async append(records: Buffer): Promise<void> {
    if (this.cutPending) {
      await ftruncate(this.fd, this.size);
      this.cutPending = false;
    }
    try {
      let done = 0;
      while (done < records.length) done += (await write(this.fd, records, done, records.length - done, this.size + done)).bytesWritten;
      await fdatasync(this.fd);
    } catch (e) {
      // Part of the batch may be in the file (a short write before ENOSPC): cut it back now,
      // or before the next append if that fails too.
      this.cutPending = true;
      await ftruncate(this.fd, this.size).then(
        () => (this.cutPending = false),
        () => {},
      );
      throw e;
    }
    this.size += records.length;
  }

  /** Empties the journal (its changes are in a durable snapshot now). */
  async reset(): Promise<void> {
    await ftruncate(this.fd, 0);
    // From here on the file is empty whether or not the sync below succeeds: the next append
    // must go to offset 0, not leave a hole that would end the journal when read.
    this.size = 0;
    this.cutPending = false;
    await fdatasync(this.fd);
  }

  async close(): Promise<void> {
    await close(this.fd);
  }
}
