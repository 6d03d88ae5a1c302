/**
 * The archive store in a local directory (`--archive-dir`): one file per object, the key's
 * '/' parts as subdirectories. For a single machine, or a network file system (NFS, an HDFS
 * gateway) mounted at that path and shared by the brokers of a cluster.
 *
 * Invariants (archive-store.ts's contract, made true on a POSIX file system):
 * - An object becomes visible by rename: written to `<file>.part-<random>` in the same
 *   directory, fsynced, renamed over `<file>`, then the directory fsynced. A crash leaves at
 *   worst a `.part-` file, which list() never reports and sweepPartFiles() removes.
 * - Keys never escape the root: a key with an empty, '.' or '..' segment, a backslash or a
 *   NUL is refused (a programming error: archive-keys.ts makes every key).
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fsyncDir } from '../log/durable-file.ts';
import { ArchiveStoreError, type ArchiveObjectInfo, type ArchiveStore, type UploadPacer } from './archive-store.ts';

/** Copy unit of putFile: one pace() call and one write per chunk. */
const COPY_CHUNK_BYTES = 1024 * 1024;
const PART_MARK = '.part-';

export class LocalDirStore implements ArchiveStore {
  readonly kind = 'local' as const;
  private readonly root: string;

  constructor(root: string) {
    this.root = path.resolve(root);
  }

  describe(): string {
    return this.root;
  }

  async put(key: string, body: Uint8Array): Promise<void> {
    await this.writeAtomically(key, async (h) => {
      let written = 0;
      while (written < body.length) written += (await h.write(body, written, body.length - written, written)).bytesWritten;
    });
  }

  async putFile(key: string, filePath: string, sizeBytes: number, pace?: UploadPacer): Promise<void> {
    await this.writeAtomically(key, async (out) => {
      const src = await wrap(key, () => fs.promises.open(filePath, 'r'));
      try {
        const buf = Buffer.allocUnsafe(Math.min(COPY_CHUNK_BYTES, Math.max(1, sizeBytes)));
        let pos = 0;
        while (pos < sizeBytes) {
          const want = Math.min(buf.length, sizeBytes - pos);
          if (pace) await pace(want);
          const { bytesRead } = await src.read(buf, 0, want, pos);
          if (bytesRead === 0) throw new ArchiveStoreError(`${filePath} ended at ${pos} bytes, ${sizeBytes} expected`, false);
          let w = 0;
          while (w < bytesRead) w += (await out.write(buf, w, bytesRead - w, pos + w)).bytesWritten;
          pos += bytesRead;
        }
      } finally {
        await src.close();
      }
    });
  }

  async get(key: string): Promise<Uint8Array> {
    return wrap(key, () => fs.promises.readFile(this.file(key)));
  }

  async getRange(key: string, start: number, endExclusive: number): Promise<Uint8Array> {
    if (!(Number.isSafeInteger(start) && start >= 0 && endExclusive >= start)) throw new ArchiveStoreError(`bad range ${start}-${endExclusive} of ${key}`, false);
    const h = await wrap(key, () => fs.promises.open(this.file(key), 'r'));
    try {
      const buf = Buffer.allocUnsafe(endExclusive - start);
      let got = 0;
      while (got < buf.length) {
        const { bytesRead } = await h.read(buf, got, buf.length - got, start + got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      return got === buf.length ? buf : buf.subarray(0, got);
    } finally {
      await h.close();
    }
  }

  async head(key: string): Promise<ArchiveObjectInfo | null> {
    try {
      const st = await fs.promises.stat(this.file(key));
      return { key, sizeBytes: st.size };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw toStoreError(key, e);
    }
  }

  async list(prefix: string): Promise<ArchiveObjectInfo[]> {
    // The prefix's directory part is walked; the rest filters names in it and below.
    const slash = prefix.lastIndexOf('/');
    const dirKey = slash < 0 ? '' : prefix.slice(0, slash);
    const out: ArchiveObjectInfo[] = [];
    const walk = async (dir: string, keyPrefix: string): Promise<void> => {
      let entries: fs.Dirent[];
      try {
        entries = await fs.promises.readdir(dir, { withFileTypes: true });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw toStoreError(keyPrefix, e);
      }
      for (const e of entries) {
        const key = keyPrefix + e.name;
        if (e.isDirectory()) {
          if (prefix.startsWith(key + '/') || (key + '/').startsWith(prefix)) await walk(path.join(dir, e.name), key + '/');
        } else if (e.isFile() && key.startsWith(prefix) && !e.name.includes(PART_MARK)) {
          const st = await fs.promises.stat(path.join(dir, e.name)).catch(() => null);
          if (st) out.push({ key, sizeBytes: st.size });
        }
      }
    };
    await walk(dirKey === '' ? this.root : this.file(dirKey), dirKey === '' ? '' : dirKey + '/');
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async delete(key: string): Promise<void> {
    try {
      await fs.promises.unlink(this.file(key));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw toStoreError(key, e);
    }
  }

  /** Removes temp files a crash left under prefix; returns how many. */
  async sweepPartFiles(prefix: string): Promise<number> {
    let n = 0;
    const dir = this.file(prefix.replace(/\/+$/, ''));
    const walk = async (d: string): Promise<void> => {
      const entries = await fs.promises.readdir(d, { withFileTypes: true }).catch(() => [] as fs.Dirent[]);
      for (const e of entries) {
        const p = path.join(d, e.name);
        if (e.isDirectory()) await walk(p);
        else if (e.name.includes(PART_MARK)) {
          await fs.promises.unlink(p).catch(() => {});
          n++;
        }
      }
    };
    await walk(dir);
    return n;
  }

  async close(): Promise<void> {}

  private file(key: string): string {
    const parts = key.split('/');
    if (key.length === 0 || key.includes('\\') || key.includes('\0') || parts.some((p) => p === '' || p === '.' || p === '..')) {
      throw new ArchiveStoreError(`bad archive key ${JSON.stringify(key)}`, false);
    }
    return path.join(this.root, ...parts);
  }

  private async writeAtomically(key: string, fill: (h: fs.promises.FileHandle) => Promise<void>): Promise<void> {
    const target = this.file(key);
    const dir = path.dirname(target);
    const tmp = `${target}${PART_MARK}${randomBytes(6).toString('hex')}`;
    try {
      await fs.promises.mkdir(dir, { recursive: true });
      const h = await fs.promises.open(tmp, 'w');
      try {
        await fill(h);
        await h.sync();
      } finally {
        await h.close();
      }
      await fs.promises.rename(tmp, target);
      await fsyncDir(dir);
    } catch (e) {
      await fs.promises.unlink(tmp).catch(() => {});
      throw e instanceof ArchiveStoreError ? e : toStoreError(key, e);
    }
  }
}

async function wrap<T>(key: string, f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    throw e instanceof ArchiveStoreError ? e : toStoreError(key, e);
  }
}

function toStoreError(key: string, e: unknown): ArchiveStoreError {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return new ArchiveStoreError(`archive object ${key} not found`, false, true, { cause: e });
  // Full disk, I/O errors and stale NFS handles can clear up; a permission error will not.
  const retryable = code !== 'EACCES' && code !== 'EPERM' && code !== 'EROFS';
  return new ArchiveStoreError(`archive object ${key}: ${(e as Error).message}`, retryable, false, { cause: e });
}
