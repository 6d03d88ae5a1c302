/**
 * LogIo: the seam between the log and the file system, for the operations whose failure the
 * log must survive: writing segment bytes, fsync, reading segment bytes, renaming a file over
 * another (segment replacement, recovery rewrite, durable checkpoint writes).
 *
 * Invariants:
 * - Segment files are written, fsynced, read and renamed only through `io` (segment.ts,
 *   recovery.ts, batch-cursor.ts), and so are the synchronous durable replacements of
 *   durable-file.ts (epoch and high watermark checkpoints, index files); the asynchronous
 *   writeFileDurable writes and syncs through a FileHandle and only renames through `io`.
 *   durable-file.ts is shared with the metadata store, whose checkpoint writes therefore pass
 *   the seam too (its journal's fdatasync does not); the log tests that inject faults open no
 *   metadata store.
 *   Opening, closing, stat, truncate and unlink stay direct: they are not what the fault
 *   tests are about, and cleanup after a fault must not fail.
 * - `io` is the real file system in the broker. setLogIo exists for tests only: they swap in a
 *   FaultInjectingIo and put the real one back (the returned function) when done. Nothing in
 *   server/ calls it. For tests of a whole broker process, the environment variable
 *   SLUICE_TEST_LOG_FAULTS (a JSON array of Fault) starts the process with a FaultInjectingIo
 *   armed with those faults; it is for tests only, and unset (always, outside tests) it costs
 *   nothing.
 * - The real implementation adds no work to the hot path beyond one property lookup per call.
 *
 * FaultInjectingIo: forwards to the real file system until a fault armed with inject() fires.
 * A write fault may first write part of the buffer for real (a short write, as a full disk or
 * a crash half way gives) and then fail the next write, which is what the append loop sees.
 */
import fs from 'node:fs';

export type LogIoOp = 'write' | 'fsync' | 'read' | 'rename';

export interface LogIo {
  writeSync(fd: number, buf: Uint8Array, offset: number, length: number, position: number): number;
  /** fsync (metadata too) of a file, blocking: recovery and durable replacement. */
  fsyncSync(fd: number): void;
  fdatasyncSync(fd: number): void;
  /** fdatasync on the thread pool: the flush path, which must not block the event loop. */
  fdatasync(fd: number): Promise<void>;
  readSync(fd: number, buf: Uint8Array, offset: number, length: number, position: number): number;
  read(fd: number, buf: Uint8Array, offset: number, length: number, position: number): Promise<number>;
  renameSync(from: string, to: string): void;
  rename(from: string, to: string): Promise<void>;
}

export const realIo: LogIo = {
  writeSync: (fd, buf, offset, length, position) => fs.writeSync(fd, buf, offset, length, position),
  fsyncSync: (fd) => fs.fsyncSync(fd),
  fdatasyncSync: (fd) => fs.fdatasyncSync(fd),
  fdatasync: (fd) => new Promise((resolve, reject) => fs.fdatasync(fd, (err) => (err ? reject(err) : resolve()))),
  readSync: (fd, buf, offset, length, position) => fs.readSync(fd, buf, offset, length, position),
  read: (fd, buf, offset, length, position) => new Promise((resolve, reject) => fs.read(fd, buf, offset, length, position, (err, n) => (err ? reject(err) : resolve(n)))),
  renameSync: (from, to) => fs.renameSync(from, to),
  rename: (from, to) => fs.promises.rename(from, to),
};

/** The implementation the log uses; see setLogIo. */
export let io: LogIo = realIo;

/** Tests only: replaces the log's file system; returns the function that restores the previous one. */
export function setLogIo(next: LogIo): () => void {
  const previous = io;
  io = next;
  return () => {
    io = previous;
  };
}

export interface Fault {
  op: LogIoOp;
  /** Calls of `op` that succeed before the fault fires; default 0. */
  after?: number;
  /** How many calls fail once it fires; default Infinity (until clear()). */
  times?: number;
  /** Write faults: bytes written for real by the first failing call (a short write); the error comes with the next call. */
  partialBytes?: number;
  /** Rename faults: only renames whose target ends with this. */
  toSuffix?: string;
  /** Fsync faults: only the asynchronous fdatasync, i.e. the flush path of segments (not recovery, truncation or checkpoints). */
  asyncOnly?: boolean;
}

interface ArmedFault extends Required<Fault> {
  shortWriteDone: boolean;
}

export class FaultInjectingIo implements LogIo {
  private readonly faults: ArmedFault[] = [];
  /** Failures injected so far, per operation. */
  readonly injected: Record<LogIoOp, number> = { write: 0, fsync: 0, read: 0, rename: 0 };

  inject(fault: Fault): this {
    this.faults.push({ op: fault.op, after: fault.after ?? 0, times: fault.times ?? Infinity, partialBytes: fault.partialBytes ?? 0, toSuffix: fault.toSuffix ?? '', asyncOnly: fault.asyncOnly ?? false, shortWriteDone: false });
    return this;
  }

  /** The disk is healthy again. */
  clear(): void {
    this.faults.length = 0;
  }

  /** The armed fault that fires for this call of op, if any; counts the call against `after`. */
  private fire(op: LogIoOp, to = '', sync = false): ArmedFault | null {
    for (const f of this.faults) {
      if (f.op !== op || f.times <= 0 || !to.endsWith(f.toSuffix) || (sync && f.asyncOnly)) continue;
      if (f.after > 0) {
        f.after--;
        continue;
      }
      return f;
    }
    return null;
  }

  private fail(f: ArmedFault, what: string): never {
    f.times--;
    this.injected[f.op]++;
    const e = new Error(`EIO: injected ${what} failure`) as NodeJS.ErrnoException;
    e.code = 'EIO';
    throw e;
  }

  writeSync(fd: number, buf: Uint8Array, offset: number, length: number, position: number): number {
    const f = this.fire('write');
    if (!f) return realIo.writeSync(fd, buf, offset, length, position);
    if (f.partialBytes > 0 && !f.shortWriteDone && length > 1) {
      f.shortWriteDone = true;
      return realIo.writeSync(fd, buf, offset, Math.min(f.partialBytes, length - 1), position);
    }
    return this.fail(f, 'write');
  }

  fsyncSync(fd: number): void {
    const f = this.fire('fsync', '', true);
    if (f) this.fail(f, 'fsync');
    realIo.fsyncSync(fd);
  }

  fdatasyncSync(fd: number): void {
    const f = this.fire('fsync', '', true);
    if (f) this.fail(f, 'fdatasync');
    realIo.fdatasyncSync(fd);
  }

  async fdatasync(fd: number): Promise<void> {
    const f = this.fire('fsync');
    if (f) this.fail(f, 'fdatasync');
    return realIo.fdatasync(fd);
  }

  readSync(fd: number, buf: Uint8Array, offset: number, length: number, position: number): number {
    const f = this.fire('read');
    if (f) this.fail(f, 'read');
    return realIo.readSync(fd, buf, offset, length, position);
  }

  async read(fd: number, buf: Uint8Array, offset: number, length: number, position: number): Promise<number> {
    const f = this.fire('read');
    if (f) this.fail(f, 'read');
    return realIo.read(fd, buf, offset, length, position);
  }

  renameSync(from: string, to: string): void {
    const f = this.fire('rename', to);
    if (f) this.fail(f, 'rename');
    realIo.renameSync(from, to);
  }

  async rename(from: string, to: string): Promise<void> {
    const f = this.fire('rename', to);
    if (f) this.fail(f, 'rename');
    return realIo.rename(from, to);
  }
}

/** See SLUICE_TEST_LOG_FAULTS at the top. A value that does not parse stops the process: a test asked for faults it would not get. */
const faultsFromEnv = process.env.SLUICE_TEST_LOG_FAULTS;
if (faultsFromEnv) {
  const faults = new FaultInjectingIo();
  for (const f of JSON.parse(faultsFromEnv) as Fault[]) faults.inject(f);
  io = faults;
}
