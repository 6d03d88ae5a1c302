/**
 * LogManager: owns the data directory's partition logs and the background work on them.
 *
 * Layout: `<dataDir>/<topic>-<partition>/` per partition (segment files inside, see
 * segment.ts), and `<dataDir>/.clean-shutdown`, an empty marker file.
 *
 * Invariants:
 * - The marker is read and deleted (durably) when the manager is constructed, before any log
 *   is opened or written: a crash at any later point leaves no marker, so the next start
 *   recovers. close() writes it only after every log closed without error.
 * - Topic configs are not stored here; the broker's metadata store passes them in.
 * - Background work: a retention check every retentionCheckIntervalMs and a flush check
 *   (PartitionLog.maybeFlush) every flushCheckIntervalMs. Both only start work; a slow fsync
 *   never stacks up calls, because a partition runs at most one flush cycle at a time.
 * - Compaction of logs whose cleanup.policy includes compact every cleanerIntervalMs: one
 *   partition after another, never two passes at once (a pass still running when the timer
 *   fires again is not doubled), each partition bounded by cleanerBytesPerRunMax.
 * - Directory names are only made from validated topic names ([a-zA-Z0-9._-], not "." or
 *   ".."), so a name can never point outside dataDir.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ErrorCode, SluiceError } from '../../protocol/errors.ts';
import type { Logger } from '../logger.ts';
import { fsyncDirSync, unlinkIfExistsSync, writeFileDurableSync } from './durable-file.ts';
import type { LogConfig } from './log-config.ts';
import { CLEANER_BYTES_PER_RUN_DEFAULT, emptyCompactionResult, type CompactionResult } from './log-cleaner.ts';
import { compacts } from './log-config.ts';
import { PartitionLog } from './partition-log.ts';

export const CLEAN_SHUTDOWN_FILE = '.clean-shutdown';
export const RETENTION_CHECK_INTERVAL_MS_DEFAULT = 60_000;
export const FLUSH_CHECK_INTERVAL_MS_DEFAULT = 100;
export const CLEANER_INTERVAL_MS_DEFAULT = 30_000;
const PARTITION_DIR = /^([a-zA-Z0-9._-]+)-(\d{1,9})$/;

export interface LogManagerOptions {
  logger: Logger;
  retentionCheckIntervalMs?: number;
  flushCheckIntervalMs?: number;
  /** Between compaction passes over the compacted partitions. */
  cleanerIntervalMs?: number;
  /** Segment bytes one partition may rewrite per compaction pass (at least one segment). */
  cleanerBytesPerRunMax?: number;
}

export class LogManager {
  readonly dataDir: string;
  /** Whether the previous run ended with close(); false means its logs get recovered. */
  readonly cleanShutdown: boolean;
  private readonly logger: Logger;
  private readonly retentionCheckIntervalMs: number;
  private readonly flushCheckIntervalMs: number;
  private readonly cleanerIntervalMs: number;
  private readonly cleanerBytesPerRunMax: number;
  private compactionPass: Promise<CompactionResult> | null = null;
  private readonly logs = new Map<string, PartitionLog>();
  private timers: Array<ReturnType<typeof setInterval>> = [];
  private closed = false;

  constructor(dataDir: string, opts: LogManagerOptions) {
    this.dataDir = dataDir;
    this.logger = opts.logger;
    this.retentionCheckIntervalMs = opts.retentionCheckIntervalMs ?? RETENTION_CHECK_INTERVAL_MS_DEFAULT;
    this.flushCheckIntervalMs = opts.flushCheckIntervalMs ?? FLUSH_CHECK_INTERVAL_MS_DEFAULT;
    this.cleanerIntervalMs = opts.cleanerIntervalMs ?? CLEANER_INTERVAL_MS_DEFAULT;
    this.cleanerBytesPerRunMax = opts.cleanerBytesPerRunMax ?? CLEANER_BYTES_PER_RUN_DEFAULT;
    if (!(this.retentionCheckIntervalMs > 0 && this.flushCheckIntervalMs > 0 && this.cleanerIntervalMs > 0)) throw new Error('check intervals must be positive');
    if (!(this.cleanerBytesPerRunMax > 0)) throw new Error('cleanerBytesPerRunMax must be positive');
    fs.mkdirSync(dataDir, { recursive: true });
    this.cleanShutdown = unlinkIfExistsSync(path.join(dataDir, CLEAN_SHUTDOWN_FILE));
    fsyncDirSync(dataDir);
    if (!this.cleanShutdown) this.logger.info('no clean shutdown marker: partition logs will be recovered as they load', { dataDir });
  }

  static dirName(topic: string, partition: number): string {
    const name = `${topic}-${partition}`;
    if (!Number.isInteger(partition) || partition < 0 || !PARTITION_DIR.test(name) || topic === '.' || topic === '..') {
      throw new SluiceError(ErrorCode.INVALID_TOPIC, `no partition directory for ${JSON.stringify(topic)} partition ${partition}`);
    }
    return name;
  }

  /** A new, empty partition. Leftover files of an earlier topic with the same name are removed. */
  createPartition(topic: string, partition: number, config: LogConfig): PartitionLog {
    const name = this.unloaded(topic, partition);
    const dir = path.join(this.dataDir, name);
    if (fs.existsSync(dir)) {
      this.logger.warn('removing leftover directory before creating the partition', { dir });
      fs.rmSync(dir, { recursive: true, force: true });
    }
    return this.openLog(name, config);
  }

  /** An existing partition, recovered first if the last shutdown was not clean. */
  loadPartition(topic: string, partition: number, config: LogConfig): PartitionLog {
    const name = this.unloaded(topic, partition);
    // A new replica (topic just created, or moved here) starts empty; after a data loss this
    // line is the trace of it, and the followers' copy is what refills it.
    if (!fs.existsSync(path.join(this.dataDir, name))) this.logger.info('partition directory created empty', { dir: name });
    return this.openLog(name, config);
  }

  get(topic: string, partition: number): PartitionLog | undefined {
    return this.logs.get(`${topic}-${partition}`);
  }

  /** Names of the partition directories on disk, loaded or not. */
  partitionDirs(): string[] {
    return fs
      .readdirSync(this.dataDir, { withFileTypes: true })
      .filter((e) => e.isDirectory() && PARTITION_DIR.test(e.name))
      .map((e) => e.name)
      .sort();
  }

  /** Removes a partition directory that no loaded log uses (an orphan). */
  removeDir(name: string): void {
    if (!PARTITION_DIR.test(name) || name.startsWith('.')) throw new Error(`${JSON.stringify(name)} is not a partition directory name`);
    if (this.logs.has(name)) throw new Error(`${name} is in use`);
    fs.rmSync(path.join(this.dataDir, name), { recursive: true, force: true });
  }

  /** Closes and deletes one partition's log (a replica moved to another broker). */
  async deletePartition(topic: string, partition: number): Promise<void> {
    const name = LogManager.dirName(topic, partition);
    const log = this.logs.get(name);
    this.logs.delete(name);
    if (log) await log.delete();
    else fs.rmSync(path.join(this.dataDir, name), { recursive: true, force: true });
    fsyncDirSync(this.dataDir);
  }

  /** Deletes the topic's loaded partitions and any directory of partitions 0..partitionCount-1. */
  async deleteTopic(topic: string, partitionCount = 0): Promise<void> {
    const names = new Set<string>();
    for (const name of this.logs.keys()) if (name.slice(0, name.lastIndexOf('-')) === topic) names.add(name);
    for (let p = 0; p < partitionCount; p++) names.add(LogManager.dirName(topic, p));
    for (const name of names) {
      const log = this.logs.get(name);
      this.logs.delete(name);
      if (log) await log.delete();
      else fs.rmSync(path.join(this.dataDir, name), { recursive: true, force: true });
    }
    fsyncDirSync(this.dataDir);
  }

  /** Applies a new config to every loaded partition of the topic. */
  updateTopicConfig(topic: string, config: LogConfig): void {
    for (const [name, log] of this.logs) if (name.slice(0, name.lastIndexOf('-')) === topic) log.setConfig(config);
  }

  start(): void {
    if (this.timers.length > 0 || this.closed) return;
    this.timers.push(setInterval(() => this.runRetention(Date.now()), this.retentionCheckIntervalMs));
    this.timers.push(setInterval(() => this.runFlushChecks(Date.now()), this.flushCheckIntervalMs));
    this.timers.push(setInterval(() => void this.runCompaction(Date.now()), this.cleanerIntervalMs));
    // Background checks must not keep a process alive on their own (Node and Bun have unref).
    for (const t of this.timers) (t as { unref?: () => void }).unref?.();
  }

  /** One retention pass over every partition; returns the number of segments deleted. */
  runRetention(nowMs: number): number {
    let deleted = 0;
    for (const log of this.logs.values()) {
      try {
        deleted += log.applyRetention(nowMs);
      } catch (error) {
        this.logger.error('retention failed', { dir: log.dir, error });
      }
    }
    return deleted;
  }

  /**
   * One compaction pass over every loaded compacted partition, one at a time; returns the
   * totals. Joins the pass in progress if there is one. Never rejects: failures are logged.
   */
  runCompaction(nowMs: number): Promise<CompactionResult> {
    this.compactionPass ??= this.compactAll(nowMs).finally(() => {
      this.compactionPass = null;
    });
    return this.compactionPass;
  }

  private async compactAll(nowMs: number): Promise<CompactionResult> {
    const total = emptyCompactionResult();
    for (const log of [...this.logs.values()]) {
      if (this.closed) break;
      if (!compacts(log.config.cleanupPolicy)) continue;
      try {
        const r = await log.compact(nowMs, { maxBytesPerRun: this.cleanerBytesPerRunMax });
        total.segmentsRewritten += r.segmentsRewritten;
        total.segmentsDeleted += r.segmentsDeleted;
        total.recordsRemoved += r.recordsRemoved;
        total.batchesRemoved += r.batchesRemoved;
        total.bytesBefore += r.bytesBefore;
        total.bytesAfter += r.bytesAfter;
        total.complete &&= r.complete;
        total.nextDueMs = Math.min(total.nextDueMs, r.nextDueMs);
      } catch (error) {
        total.complete = false;
        this.logger.error('compaction failed', { dir: log.dir, error });
      }
    }
    return total;
  }

  runFlushChecks(nowMs: number): void {
    for (const log of this.logs.values()) log.maybeFlush(nowMs);
  }

  /** Stops the checks, closes every log, then writes the clean shutdown marker if all closed cleanly. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    const results = await Promise.allSettled([...this.logs.values()].map((log) => log.close()));
    this.logs.clear();
    const failed = results.filter((r) => r.status === 'rejected');
    for (const r of failed) this.logger.error('closing a partition log failed', { error: (r as PromiseRejectedResult).reason });
    if (failed.length > 0) return; // no marker: the next start recovers
    writeFileDurableSync(path.join(this.dataDir, CLEAN_SHUTDOWN_FILE), new Uint8Array(0));
  }

  private unloaded(topic: string, partition: number): string {
    if (this.closed) throw new SluiceError(ErrorCode.BROKER_SHUTTING_DOWN, 'log manager is closed');
    const name = LogManager.dirName(topic, partition);
    if (this.logs.has(name)) throw new SluiceError(ErrorCode.TOPIC_ALREADY_EXISTS, `partition ${name} is already open`);
    return name;
  }

  private openLog(name: string, config: LogConfig): PartitionLog {
    const log = PartitionLog.open(path.join(this.dataDir, name), config, { cleanShutdown: this.cleanShutdown, logger: this.logger });
    this.logs.set(name, log);
    return log;
  }
}
