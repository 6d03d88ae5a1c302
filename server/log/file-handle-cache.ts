/**
 * FileHandleCache: a bounded set of open file descriptors shared by every segment file of a
 * LogManager, so the number of partitions is not bounded by the process's open-files limit
 * (Kafka keeps one fd per segment and needs `ulimit -n` above the segment count; a broker
 * with 10,000 partitions under `ulimit -n 4096` could not start).
 *
 * A CachedFile is a path that is opened on demand: pin() returns an fd (opening the file if it
 * has none), unpin() ends that use. When opening would pass openFilesMax, the least recently
 * used unpinned file is closed first.
 *
 * Invariants:
 * - An fd is closed only while nobody pins it: a read or fsync in flight keeps its fd, so it
 *   can never read another file through a descriptor number the kernel reused.
 * - At most openFilesMax fds are open, except while more than that many files are pinned at
 *   once (I/O in flight on that many files); the excess is closed as soon as it is unpinned.
 * - Files are reopened with 'r+' (never creating, never truncating): a file that was unlinked
 *   fails to reopen (ENOENT), it does not come back empty.
 * - Closing an fd of a file with unsynced writes loses nothing: on Linux the dirty pages belong
 *   to the inode, and fdatasync through a new fd writes them (and reports a writeback error no
 *   fd has seen yet, since Linux 4.16).
 * - Single-threaded (one event loop); pin/unpin/close are synchronous.
 */
import fs from 'node:fs';

/** Used when nobody passes a cache (tests, tools); a LogManager sizes its own from the fd limit. */
export const OPEN_FILES_MAX_DEFAULT = 1024;

export class CachedFile {
  /** -1 while closed. */
  fd = -1;
  pins = 0;
  /** No more pins: the fd is closed at the last unpin, and the file is never reopened. */
  retired = false;

  constructor(
    readonly cache: FileHandleCache,
    /** Changes when the file is renamed (compaction's replacement); the open fd follows the inode. */
    public path: string,
  ) {}

  /** An fd for one use; pair with unpin() in a finally. */
  pin(): number {
    return this.cache.pin(this);
  }

  unpin(): void {
    this.cache.unpin(this);
  }

  /** Closes the fd once unpinned and never opens the file again. */
  retire(): void {
    this.cache.retire(this);
  }
}

export class FileHandleCache {
  /** Files holding an fd, least recently used first (Map keeps insertion order). */
  private readonly open = new Map<CachedFile, true>();
  private opensCount = 0;
  private evictionsCount = 0;

  constructor(readonly openFilesMax: number = OPEN_FILES_MAX_DEFAULT) {
    if (!(Number.isInteger(openFilesMax) && openFilesMax >= 1)) throw new Error(`openFilesMax must be a positive integer, got ${openFilesMax}`);
  }

  /** A file at `path` that exists; `fd`, when given, is an fd already open on it (adopted, counted). */
  file(path: string, fd = -1): CachedFile {
    const f = new CachedFile(this, path);
    if (fd >= 0) {
      this.makeRoom();
      f.fd = fd;
      this.open.set(f, true);
    }
    return f;
  }

  pin(f: CachedFile): number {
    if (f.retired) throw new Error(`${f.path} is closed`);
    if (f.fd < 0) {
      this.makeRoom();
      f.fd = fs.openSync(f.path, 'r+');
      this.opensCount++;
    } else {
      this.open.delete(f); // re-inserted below: now the most recently used
    }
    this.open.set(f, true);
    f.pins++;
    return f.fd;
  }

  unpin(f: CachedFile): void {
    if (f.pins <= 0) throw new Error(`${f.path} is not pinned`);
    f.pins--;
    if (f.pins === 0 && (f.retired || this.open.size > this.openFilesMax)) this.closeFd(f);
  }

  retire(f: CachedFile): void {
    f.retired = true;
    if (f.pins === 0) this.closeFd(f);
  }

  /** Fds open now. */
  get openCount(): number {
    return this.open.size;
  }

  /** Files opened (or reopened) so far. */
  get opens(): number {
    return this.opensCount;
  }

  /** Fds closed to make room so far. */
  get evictions(): number {
    return this.evictionsCount;
  }

  /** Closes least recently used unpinned fds until one more fits (or none is unpinned). */
  private makeRoom(): void {
    if (this.open.size < this.openFilesMax) return;
    for (const f of this.open.keys()) {
      if (this.open.size < this.openFilesMax) break;
      if (f.pins > 0) continue;
      this.closeFd(f);
      this.evictionsCount++;
    }
  }

  private closeFd(f: CachedFile): void {
    if (f.fd < 0) return;
    const fd = f.fd;
    f.fd = -1;
    this.open.delete(f);
    fs.closeSync(fd);
  }
}

/**
 * The soft open-files limit of this process (`ulimit -n`), or null where it cannot be read
 * (Node has no getrlimit; Linux shows it in /proc/self/limits).
 */
export function openFilesSoftLimit(): number | null {
  try {
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(fs.readFileSync('/proc/self/limits', 'utf8'));
    if (!m) return null;
    return m[1] === 'unlimited' ? Number.MAX_SAFE_INTEGER : Number(m[1]);
  } catch {
    return null;
  }
}

/**
 * Segment fds a LogManager may keep open: a quarter of the soft limit (the rest is for client
 * connections, index and checkpoint writes, and the runtime), at least 16, at most
 * OPEN_FILES_MAX_DEFAULT.
 */
export function segmentFilesOpenMaxFor(softLimit: number | null): number {
  if (softLimit === null) return OPEN_FILES_MAX_DEFAULT;
  return Math.max(16, Math.min(OPEN_FILES_MAX_DEFAULT, Math.floor(softLimit / 4)));
}
