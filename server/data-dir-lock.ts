/**
 * Exclusive ownership of a data directory by one broker process, through `<dataDir>/.lock`
 * (Kafka has the same file). Two brokers writing the same logs lose acknowledged messages, and
 * a broker that merely recovers another one's logs truncates them under its producers, so the
 * lock is taken before anything else in the directory is opened, read or recovered.
 *
 * Node has no flock, so the lock is a file whose content names its holder:
 * `{ pid, hostname, bootId, startTicks, host, port, dataDir, token, acquiredAtMs }`.
 *
 * Invariants:
 * - `.lock` only ever appears whole: its content is written to a private temp file, fsynced,
 *   and hard-linked to `.lock`. link() fails with EEXIST when `.lock` exists, so of two
 *   brokers started at the same instant exactly one gets it (an atomic test-and-set).
 * - A lock is stale when its holder is provably gone: same host (hostname) and either the pid
 *   is dead, or the pid belongs to a process that started at another time (pid reuse after
 *   kill -9: /proc/<pid>/stat start time), or the machine rebooted since (boot id).
 * - A lock from another hostname (another machine on a shared filesystem, or another
 *   container: a re-created container gets a new hostname) cannot be checked that way, so the
 *   holder renews the lock file's mtime every `lockRenewIntervalMs`; such a lock is stale
 *   once it has not been renewed for `foreignLockExpiryMs`. Until then the broker refuses.
 * - A stale lock is taken over at once (a restart right after kill -9 must work), never by
 *   check-then-delete: it is renamed aside to a private name, and only if the file moved is
 *   the very lock judged stale (same token) is it discarded; otherwise it is linked back.
 *   Residual window: a third broker starting within the microseconds between that rename and
 *   the link back could take the lock at the same time; two contenders alone cannot race.
 * - Release removes `.lock` only while it still carries this holder's token.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fsyncDirSync } from './log/durable-file.ts';

export const LOCK_FILE = '.lock';
/** Attempts at link/take-over before giving up; each loses only to another broker's progress. */
const ACQUIRE_ATTEMPTS_MAX = 20;
/** How often the holder touches the lock file (its mtime is its heartbeat for other hosts). */
export const LOCK_RENEW_INTERVAL_MS = 2_000;
/** A lock held from another hostname and not renewed for this long is stale. */
export const FOREIGN_LOCK_EXPIRY_MS = 15_000;

export interface LockHolder {
  pid: number;
  hostname: string;
  /** /proc/sys/kernel/random/boot_id, '' where there is none. */
  bootId: string;
  /** Start time of the process in clock ticks since boot (/proc/<pid>/stat field 22); -1 where unknown. */
  startTicks: number;
  host: string;
  port: number;
  dataDir: string;
  /** Unique per acquisition: tells this lock from an earlier one by a process with the same pid. */
  token: string;
  acquiredAtMs: number;
}

/** The data directory is held by another live broker (or one whose liveness cannot be told). */
export class DataDirLockedError extends Error {
  constructor(
    message: string,
    readonly holder: LockHolder | null,
  ) {
    super(message);
    this.name = 'DataDirLockedError';
  }
}

/** Tokens of the locks this process holds: two brokers in one process must exclude each other too. */
const heldInThisProcess = new Set<string>();

function readBootId(): string {
  try {
    return fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return '';
  }
}

/** Field 22 of /proc/<pid>/stat (after the parenthesised command, which may hold spaces); -1 if unreadable. */
export function processStartTicks(pid: number): number {
  let stat: string;
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return -1;
  }
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[19]); // fields[0] is field 3 (state), so field 22 is fields[19]
  return Number.isFinite(ticks) ? ticks : -1;
}

function pidExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: it exists but belongs to someone else.
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

type Liveness = { alive: true; why: string } | { alive: false; why: string };

function liveness(h: LockHolder, renewedAtMs: number): Liveness {
  if (h.hostname !== os.hostname()) {
    const ageMs = Date.now() - renewedAtMs;
    if (ageMs > FOREIGN_LOCK_EXPIRY_MS) return { alive: false, why: `held from host ${h.hostname}, not renewed for ${Math.round(ageMs / 1000)} s` };
    return { alive: true, why: `held from host ${h.hostname}, renewed ${Math.round(ageMs / 1000)} s ago; a lock not renewed for ${FOREIGN_LOCK_EXPIRY_MS / 1000} s is stale` };
  }
  const bootId = readBootId();
  if (h.bootId && bootId && h.bootId !== bootId) return { alive: false, why: 'the machine rebooted since' };
  if (h.pid === process.pid) {
    // Same pid as this process: either this very process holds it (another Broker instance
    // here), or a process before a restart (e.g. pid 1 in a container) left it.
    const same = h.startTicks === processStartTicks(process.pid) && (!h.bootId || h.bootId === bootId);
    if (same && heldInThisProcess.has(h.token)) return { alive: true, why: 'held by this process' };
    return { alive: false, why: `pid ${h.pid} is now this process` };
  }
  if (!pidExists(h.pid)) return { alive: false, why: `pid ${h.pid} is not running` };
  const ticks = processStartTicks(h.pid);
  if (ticks >= 0 && h.startTicks >= 0 && ticks !== h.startTicks) return { alive: false, why: `pid ${h.pid} is another process now (pid reused)` };
  return { alive: true, why: `pid ${h.pid} is running` };
}

function describe(h: LockHolder): string {
  return `sluice broker pid ${h.pid} on host ${h.hostname} (listening on ${h.host}:${h.port}, since ${new Date(h.acquiredAtMs).toISOString()})`;
}

function parseHolder(text: string): LockHolder | null {
  try {
    const h = JSON.parse(text) as LockHolder;
    if (typeof h.pid !== 'number' || typeof h.token !== 'string' || typeof h.hostname !== 'string') return null;
    return h;
  } catch {
    return null;
  }
}

function readIfExists(file: string): string | null {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

function mtimeMsIfExists(file: string): number | null {
  try {
    return fs.statSync(file).mtimeMs;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

function writeWhole(file: string, text: string): void {
  const fd = fs.openSync(file, 'wx');
  try {
    fs.writeSync(fd, text);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

export interface DataDirLockOptions {
  /** Listen address, written in the lock so that a refused broker can name the holder. */
  host: string;
  port: number;
  /** Told when a stale lock is taken over (which holder, and why it was stale). */
  onTakeover?: (previous: LockHolder | null, why: string) => void;
}

export class DataDirLock {
  private released = false;
  private readonly renewTimer: NodeJS.Timeout;

  private constructor(
    readonly lockPath: string,
    private holder: LockHolder,
  ) {
    this.renewTimer = setInterval(() => this.renew(), LOCK_RENEW_INTERVAL_MS);
    this.renewTimer.unref();
  }

  /** Heartbeat for brokers on other hosts (see the invariants); best effort. */
  private renew(): void {
    try {
      const now = new Date();
      fs.utimesSync(this.lockPath, now, now);
    } catch {
      // A missing or unwritable lock file shows at the next start, not as a broker failure.
    }
  }

  /**
   * Takes the lock of dataDir (which must exist) or throws DataDirLockedError naming the
   * holder. Synchronous on purpose: nothing else of the broker may run before it returns.
   */
  static acquire(dataDir: string, opts: DataDirLockOptions): DataDirLock {
    const lockPath = path.join(dataDir, LOCK_FILE);
    const holder: LockHolder = {
      pid: process.pid,
      hostname: os.hostname(),
      bootId: readBootId(),
      startTicks: processStartTicks(process.pid),
      host: opts.host,
      port: opts.port,
      dataDir: path.resolve(dataDir),
      token: randomUUID(),
      acquiredAtMs: Date.now(),
    };
    const tmp = `${lockPath}.${holder.token}.tmp`;
    writeWhole(tmp, JSON.stringify(holder) + '\n');
    try {
      for (let attempt = 0; attempt < ACQUIRE_ATTEMPTS_MAX; attempt++) {
        try {
          fs.linkSync(tmp, lockPath);
          fsyncDirSync(dataDir);
          heldInThisProcess.add(holder.token);
          return new DataDirLock(lockPath, holder);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        }
        const text = readIfExists(lockPath);
        if (text === null) continue; // released in the meantime
        const renewedAtMs = mtimeMsIfExists(lockPath);
        if (renewedAtMs === null) continue;
        const current = parseHolder(text);
        // Every lock this code writes is whole JSON; anything else is not a live broker's.
        const state: Liveness = current ? liveness(current, renewedAtMs) : { alive: false, why: 'the lock file is not a sluice lock (unreadable content)' };
        if (state.alive) {
          throw new DataDirLockedError(`data directory ${holder.dataDir} is in use by ${describe(current!)}; lock file ${lockPath} (${state.why})`, current);
        }
        DataDirLock.takeOver(lockPath, current, text, holder.token);
        opts.onTakeover?.(current, state.why);
      }
      throw new DataDirLockedError(`data directory ${holder.dataDir}: could not take ${lockPath} in ${ACQUIRE_ATTEMPTS_MAX} attempts (other brokers keep starting on it)`, null);
    } finally {
      fs.rmSync(tmp, { force: true });
    }
  }

  /** Removes the stale lock whose content is staleText, and nothing else (see the invariants). */
  private static takeOver(lockPath: string, stale: LockHolder | null, staleText: string, myToken: string): void {
    const aside = `${lockPath}.stale-${myToken}`;
    try {
      fs.renameSync(lockPath, aside);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return; // someone else moved it
      throw e;
    }
    const moved = readIfExists(aside);
    const movedToken = moved === null ? null : parseHolder(moved)?.token;
    const isStale = stale ? movedToken === stale.token : moved === staleText;
    if (!isStale) {
      // Another broker took the stale lock over between our read and our rename: give it back.
      try {
        fs.linkSync(aside, lockPath);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
    }
    fs.rmSync(aside, { force: true });
  }

  get token(): string {
    return this.holder.token;
  }

  /** Records the port actually bound (with port 0), so that a refused broker names it. */
  updatePort(port: number): void {
    if (this.released || port === this.holder.port) return;
    this.holder = { ...this.holder, port };
    const tmp = `${this.lockPath}.${this.holder.token}.tmp`;
    fs.rmSync(tmp, { force: true });
    writeWhole(tmp, JSON.stringify(this.holder) + '\n');
    fs.renameSync(tmp, this.lockPath);
  }

  /** Removes the lock if it is still this holder's. Idempotent. */
  release(): void {
    if (this.released) return;
    this.released = true;
    clearInterval(this.renewTimer);
    heldInThisProcess.delete(this.holder.token);
    const text = readIfExists(this.lockPath);
    if (text !== null && parseHolder(text)?.token === this.holder.token) fs.rmSync(this.lockPath, { force: true });
  }
}
