/**
 * Small durability helpers shared by the log files: whole-file replacement that is atomic and
 * durable, and callback-based fdatasync so that a flush never blocks the event loop.
 *
 * Invariants:
 * - writeFileDurable*(path) leaves either the old or the new content at `path`, never a mix:
 *   it writes `<path>.tmp`, fsyncs it, renames it over `path`, then fsyncs the directory
 *   (a rename is only durable once its directory is). Leftover `*.tmp` files are garbage
 *   that the loader (log-loader.ts) deletes.
 * - fsyncDir is best effort: some platforms cannot open a directory for fsync (Windows);
 *   there the rename is as durable as the platform makes it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { io } from './log-io.ts';

export const TMP_SUFFIX = '.tmp';

export function writeFileDurableSync(filePath: string, bytes: Uint8Array): void {
  const tmp = filePath + TMP_SUFFIX;
  const fd = fs.openSync(tmp, 'w');
  try {
    let written = 0;
    while (written < bytes.length) written += io.writeSync(fd, bytes, written, bytes.length - written, written);
    io.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  io.renameSync(tmp, filePath);
  fsyncDirSync(path.dirname(filePath));
}

export async function writeFileDurable(filePath: string, bytes: Uint8Array): Promise<void> {
  const tmp = filePath + TMP_SUFFIX;
  const handle = await fs.promises.open(tmp, 'w');
  try {
    let written = 0;
    while (written < bytes.length) written += (await handle.write(bytes, written, bytes.length - written, written)).bytesWritten;
    await handle.sync();
  } finally {
    await handle.close();
  }
  await io.rename(tmp, filePath);
  await fsyncDir(path.dirname(filePath));
}

/**
 * fdatasync through the callback API: the thread pool waits for the disk, not the event loop.
 * Direct, not through log-io.ts: its caller is the metadata journal, which is not under the
 * log (segments fsync through io.fdatasync).
 */
export function fdatasync(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fs.fdatasync(fd, (err) => (err ? reject(err) : resolve())));
}

export function fsyncDirSync(dir: string): void {
  let fd: number;
  try {
    fd = fs.openSync(dir, 'r');
  } catch {
    return;
  }
  try {
    fs.fsyncSync(fd);
  } catch {
    // Not supported for directories on this platform; nothing better to do.
  } finally {
    fs.closeSync(fd);
  }
}

export async function fsyncDir(dir: string): Promise<void> {
  let handle: fs.promises.FileHandle;
  try {
    handle = await fs.promises.open(dir, 'r');
  } catch {
    return;
  }
  try {
    await handle.sync();
  } catch {
    // See fsyncDirSync.
  } finally {
    await handle.close();
  }
}

export function unlinkIfExistsSync(filePath: string): boolean {
  try {
    fs.unlinkSync(filePath);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
}
