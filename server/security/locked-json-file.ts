/**
 * Read-modify-write of a small JSON file that several processes may change (the broker and the
 * `sluice user` / `sluice acl` commands on one data dir): the users file and the ACL file.
 *
 * Invariants:
 * - One writer at a time: `<file>.lock`, created with O_EXCL, is held across the read, the
 *   change and the durable replacement (writeFileDurableSync: temp file, fsync, rename), and
 *   removed after. Readers never take the lock: the rename makes every version whole.
 * - A lock older than LOCK_STALE_MS belongs to a writer that died: it is removed. A writer waits
 *   at most LOCK_WAIT_MS, then fails with STORAGE_ERROR.
 */
import { closeSync, mkdirSync, openSync, readFileSync, statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { ErrorCode, SluiceError } from '../../protocol/errors.ts';
import { writeFileDurableSync } from '../log/durable-file.ts';

const LOCK_STALE_MS = 30_000;
const LOCK_WAIT_MS = 10_000;
const LOCK_RETRY_MS = 50;

/**
 * Under the lock: reads the file's text (null when it does not exist) and passes it to change,
 * which returns the new document to write, or null to leave the file as it is. Resolves whether
 * it wrote.
 */
export async function updateLockedJsonFile(file: string, change: (text: string | null) => unknown): Promise<boolean> {
  mkdirSync(join(file, '..'), { recursive: true });
  const lock = `${file}.lock`;
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      closeSync(openSync(lock, 'wx'));
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      try {
        if (Date.now() - statSync(lock).mtimeMs > LOCK_STALE_MS) unlinkSync(lock);
      } catch {
        // gone meanwhile: try again
      }
      if (Date.now() > deadline) throw new SluiceError(ErrorCode.STORAGE_ERROR, `${lock} held by another writer for over ${LOCK_WAIT_MS} ms`);
      await new Promise((r) => setTimeout(r, LOCK_RETRY_MS));
    }
  }
  try {
    let text: string | null = null;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    const next = change(text);
    if (next === null) return false;
    writeFileDurableSync(file, Buffer.from(`${JSON.stringify(next, null, 2)}\n`));
    return true;
  } finally {
    unlinkSync(lock);
  }
}
