/**
 * LogFlusher: when a partition log's data becomes durable. Group commit for flush.before.ack
 * (waitForFlush), the periodic policy (flush.messages, flush.ms), and sealing rolled segments
 * (fsync, then their index files). PartitionLog owns the segments and tells the flusher what
 * it wrote (markDirty, noteAppend, segmentRolled); the flusher reads the log through a
 * FlushableLog view.
 *
 * Invariants:
 * - Group commit: at most one flush cycle runs at a time. A cycle fdatasyncs every segment
 *   written before it started, then resolves every waiter it covers. A waiter arriving
 *   while a cycle runs waits for that cycle when its offset was written before the cycle
 *   started, otherwise for the next one, which all such waiters share.
 * - flushedOffset only moves forward, except through truncation (truncated/resetAt), and
 *   never passes the log end (asserted).
 * - Index files of a sealed segment are written only after its .log is durable: their
 *   presence vouches for it (segment.ts).
 * - After an fsync failure (`failure` set) the flusher refuses every flush and wait with
 *   STORAGE_ERROR, and PartitionLog refuses appends, until the broker restarts and recovers
 *   the log: after a failed fsync the page cache may have dropped the dirty pages, so retrying
 *   and reporting success could lie. `failure` is never cleared.
 * - Bounds: the waiters are bounded by the appends in flight (one per produce partition that
 *   waits on flush.before.ack, each bounded by the broker's request limits); a cycle fsyncs at
 *   most the segments rolled since the previous one, plus the active one.
 */
import { ErrorCode, SluiceError } from '../../protocol/errors.ts';
import { InvariantError } from '../assert.ts';
import type { Logger } from '../logger.ts';
import { fsyncDir } from './durable-file.ts';
import type { LogSegment } from './segment.ts';

/** What the flusher needs from a log; PartitionLog builds one over its private state. */
export interface FlushableLog {
  readonly dir: string;
  readonly logger: Logger;
  logEndOffset(): number;
  activeSegment(): LogSegment;
  /** Deleted: its directory may now be another log's, so nothing is written there by path. */
  isDeleted(): boolean;
}

interface FlushWaiter {
  cycle: number;
  resolve(): void;
  reject(e: Error): void;
}

export class LogFlusher {
  private readonly log: FlushableLog;
  private flushedEnd: number;
  private firstUnflushedAppendMs = -1;
  private readonly dirty = new Set<LogSegment>();
  private dirNeedsSync = false;
  private cyclesStarted = 0;
  private cyclesDone = 0;
  private cycleTargetEnd = 0;
  private requested = false;
  private waiters: FlushWaiter[] = [];
  private loop: Promise<void> | null = null;
  private fsyncs = 0;
  private error: Error | null = null;
  /** Told the duration of every successful flush cycle (the broker's flush latency metric); null: nobody listens. */
  onCycle: ((durationMs: number) => void) | null = null;

  /** flushedEnd: what is durable already (open() found it on disk: recovery fsynced what it scanned, a clean close flushed). */
  constructor(log: FlushableLog, flushedEnd: number) {
    this.log = log;
    this.flushedEnd = flushedEnd;
  }

  /** Every offset below this is covered by a completed fsync. */
  get flushedOffset(): number {
    return this.flushedEnd;
  }

  /** fdatasync calls on segment files so far. */
  get fsyncCount(): number {
    return this.fsyncs;
  }

  /** The fsync failure that took the log offline, or a breached invariant (see server/assert.ts); null while healthy. */
  get failure(): Error | null {
    return this.error;
  }

  /** Takes the log offline for writes (see the top); the first failure is kept. */
  fail(e: Error): void {
    this.error ??= e;
  }

  /** The running flush cycles, if any: resolves when they end. Never rejects. */
  get running(): Promise<void> | null {
    return this.loop;
  }

  /** Written since its last fsync: not sealed yet (the cleaner leaves such a segment alone). */
  isDirty(seg: LogSegment): boolean {
    return this.dirty.has(seg);
  }

  markDirty(seg: LogSegment): void {
    this.dirty.add(seg);
  }

  /** The segment is gone (deleted, truncated away): nothing of it to flush. */
  forget(seg: LogSegment): void {
    this.dirty.delete(seg);
  }

  /** After an append that ended at the log end: starts the flush.ms clock if it is not running. */
  noteAppend(nowMs: number): void {
    if (this.firstUnflushedAppendMs < 0) this.firstUnflushedAppendMs = nowMs;
  }

  /** A roll sealed `old` and created a file: both must reach the disk, now rather than at the next scheduled flush (a crash could tear it until then). */
  segmentRolled(old: LogSegment): void {
    this.dirty.add(old);
    this.dirNeedsSync = true;
    this.request();
  }

  /** Truncation moved the log end back to endOffset. */
  truncated(endOffset: number): void {
    this.flushedEnd = Math.min(this.flushedEnd, endOffset);
    if (this.flushedEnd >= endOffset) this.firstUnflushedAppendMs = -1;
  }

  /** The log was emptied and restarts at offset; every segment was deleted and the directory fsynced. */
  resetAt(offset: number): void {
    this.dirty.clear();
    this.flushedEnd = offset;
    this.firstUnflushedAppendMs = -1;
    this.dirNeedsSync = false;
  }

  /** Resolves once every segment written before the call is fsynced (and sealed ones indexed). */
  flush(): Promise<void> {
    if (this.error) return Promise.reject(this.storageError());
    const running = this.cyclesStarted > this.cyclesDone;
    const nothingNew = this.dirty.size === 0 && !this.dirNeedsSync;
    return nothingNew && !running ? Promise.resolve() : this.enqueueWaiter(running && nothingNew ? this.cyclesStarted : this.cyclesStarted + 1);
  }

  /**
   * Resolves once the record at lastOffset is durable: the promise behind flush.before.ack.
   * Concurrent callers share fsyncs (group commit, see the top of this file).
   */
  waitForFlush(lastOffset: number): Promise<void> {
    if (lastOffset < this.flushedEnd) return Promise.resolve();
    if (this.error) return Promise.reject(this.storageError());
    const endOffset = this.log.logEndOffset();
    if (lastOffset >= endOffset) return Promise.reject(new Error(`waitForFlush(${lastOffset}): not appended yet, log end is ${endOffset}`));
    const running = this.cyclesStarted > this.cyclesDone;
    const cycle = running && lastOffset < this.cycleTargetEnd ? this.cyclesStarted : this.cyclesStarted + 1;
    return this.enqueueWaiter(cycle);
  }

  /** The periodic policy: start a flush when flushMessages messages are unflushed or the oldest has waited flushMs. Never waits. */
  maybeFlush(nowMs: number, flushMessages: number, flushMs: number): void {
    const unflushedMessages = this.log.logEndOffset() - this.flushedEnd;
    if (unflushedMessages <= 0) return;
    if (unflushedMessages >= flushMessages || nowMs - this.firstUnflushedAppendMs >= flushMs) this.request();
  }

  storageError(): SluiceError {
    return new SluiceError(ErrorCode.STORAGE_ERROR, `${this.log.dir}: ${this.error?.message ?? 'flush failed'}`);
  }

  private request(): void {
    this.requested = true;
    this.loop ??= this.runCycles();
  }

  private enqueueWaiter(cycle: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.waiters.push({ cycle, resolve, reject });
      this.loop ??= this.runCycles();
    });
  }

  /** Runs flush cycles back to back while anyone waits for one. Never rejects. */
  private async runCycles(): Promise<void> {
    // Let the caller finish its synchronous work (e.g. more appends of the same request) first.
    await Promise.resolve();
    while ((this.requested || this.waiters.length > 0) && !this.error) {
      this.requested = false;
      const cycle = ++this.cyclesStarted;
      const targetEnd = this.log.logEndOffset();
      this.cycleTargetEnd = targetEnd;
      const cycleStartMs = Date.now();
      const segments = [...this.dirty];
      this.dirty.clear();
      const active = this.log.activeSegment();
      const syncDir = this.dirNeedsSync;
      this.dirNeedsSync = false;
      let error: Error | null = null;
      try {
        for (const seg of segments) {
          await seg.flush();
          this.fsyncs++;
        }
        if (syncDir && !this.log.isDeleted()) await fsyncDir(this.log.dir);
        // Index files only after the .log is durable: their presence vouches for it. Not once
        // deleted: they are written by path, and the path may now be a new topic's directory.
        for (const seg of segments) if (seg !== active && seg.isOpen && !this.log.isDeleted()) await seg.persistIndexes();
      } catch (e) {
        error = e as Error;
      }
      this.cyclesDone = cycle;
      // A truncation waits for the cycles to end, so the log end cannot have gone below targetEnd meanwhile.
      // A breach takes the log offline like an fsync failure (server/assert.ts); this loop must not reject.
      if (!error && targetEnd > this.log.logEndOffset()) error = new InvariantError(`${this.log.dir}: flushed up to ${targetEnd}, past the log end ${this.log.logEndOffset()}`);
      if (error) {
        this.error = error;
        if (error instanceof InvariantError) this.log.logger.error('invariant breached in a flush cycle; the partition refuses writes until the broker restarts', { dir: this.log.dir, error });
        else this.log.logger.error('fsync failed; the partition refuses writes until the broker restarts', { dir: this.log.dir, error });
      } else {
        this.onCycle?.(Date.now() - cycleStartMs);
        this.flushedEnd = Math.max(this.flushedEnd, targetEnd);
        this.firstUnflushedAppendMs = this.log.logEndOffset() > this.flushedEnd ? cycleStartMs : -1;
      }
      const waiters = this.waiters;
      this.waiters = [];
      for (const w of waiters) {
        if (error) w.reject(this.storageError());
        else if (w.cycle <= cycle) w.resolve();
        else this.waiters.push(w);
      }
    }
    for (const w of this.waiters.splice(0)) w.reject(this.storageError());
    this.loop = null;
  }
}
