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
 * - Topic ids fence directories (Kafka's KIP-516): a partition dir holds `partition.metadata`
 *   with the id of the topic that made it. A dir whose id is not the topic's being opened
 *   belongs to a deleted topic of the same name; it is moved aside, never reused.
 * - Deletion renames the partition dir to `<topic>-<partition>.<random>-delete` synchronously,
 *   before deletePartition/deleteTopic return their promise: from then on `<topic>-<partition>`
 *   is free for a new topic, and the background removal only ever touches the renamed dir, so
 *   it cannot remove a new topic's files. Leftover `-delete` dirs (a crash during removal) are
 *   removed by removeDeletedDirs().
 * - Segment files hold no fd of their own: they share one FileHandleCache of at most
 *   segmentFilesOpenMax fds (by default a quarter of the process's open-files limit), so the
 *   number of partitions is bounded by disk and memory, not by `ulimit -n`.
 * - New partitions are made by prepareNewPartitions before the topic is stored: the files of
 *   an empty log are written and fsynced off the event loop, at most
 *   PREPARE_CONCURRENCY_MAX partitions at a time, and opening them afterwards waits for no
 *   fsync. A failure removes every directory it made, so nothing half made stays behind.
 */
import type { DelayConfig } from '../delay/delay-config.ts';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ErrorCode, SluiceError } from '../../protocol/errors.ts';
import { isInvariantError } from '../assert.ts';
import type { Logger } from '../logger.ts';
import { fsyncDir, fsyncDirSync, unlinkIfExistsSync, writeFileDurableSync } from './durable-file.ts';
import { FileHandleCache, openFilesSoftLimit, segmentFilesOpenMaxFor } from './file-handle-cache.ts';
import type { LogConfig } from './log-config.ts';
import { CLEANER_BYTES_PER_RUN_DEFAULT, emptyCompactionResult, type CompactionResult } from './log-cleaner.ts';
import { compacts } from './log-config.ts';
import { PartitionLog } from './partition-log.ts';
import type { ProducerStateConfig } from './producer-state.ts';

export const CLEAN_SHUTDOWN_FILE = '.clean-shutdown';
export const RETENTION_CHECK_INTERVAL_MS_DEFAULT = 60_000;
export const FLUSH_CHECK_INTERVAL_MS_DEFAULT = 100;
export const CLEANER_INTERVAL_MS_DEFAULT = 30_000;
const PARTITION_DIR = /^([a-zA-Z0-9._-]+)-(\d{1,9})$/;
/** A partition dir renamed for removal; never matches PARTITION_DIR (it does not end in digits). */
const DELETED_DIR = /^[a-zA-Z0-9._-]+-\d{1,9}\.[0-9a-f]{32}-delete$/;
const DELETED_DIR_SUFFIX = '-delete';
/** Holds the topic id of the topic that made the partition dir (Kafka's file name and format). */
export const PARTITION_METADATA_FILE = 'partition.metadata';
const PARTITION_METADATA_VERSION = 0;
/** New partition directories written at once by prepareNewPartitions (each holds at most one fd at a time). */
export const PREPARE_CONCURRENCY_MAX = 8;

export interface LogManagerOptions {
  logger: Logger;
  retentionCheckIntervalMs?: number;
  flushCheckIntervalMs?: number;
  /** Between compaction passes over the compacted partitions. */
  cleanerIntervalMs?: number;
  /** Segment bytes one partition may rewrite per compaction pass (at least one segment). */
  cleanerBytesPerRunMax?: number;
  /** Segment file fds kept open at most (see file-handle-cache.ts); default from the open-files limit. */
  segmentFilesOpenMax?: number;
  /** Bounds of every partition's producer state (producer-state.ts). */
  producerState?: ProducerStateConfig;
  /** Delayed-delivery settings of every partition (server/delay/delay-config.ts). */
  delay?: DelayConfig;
  /** Told the duration of every partition's flush cycles (the broker's flush latency metric). */
  onFlushCycle?: (durationMs: number) => void;
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
  private readonly producerState: ProducerStateConfig | undefined;
  private readonly delay: DelayConfig | undefined;
  private readonly onFlushCycle: ((durationMs: number) => void) | undefined;
  private compactionPass: Promise<CompactionResult> | null = null;
  /** The fds of every segment file of this manager's logs. */
  readonly files: FileHandleCache;
  private readonly logs = new Map<string, PartitionLog>();
  /** Removals of renamed-aside directories in progress. */
  private readonly removing = new Set<Promise<void>>();
  /** Logs prepareNewPartitions made and opened, until loadPartition takes them (or discardPrepared drops them). */
  private readonly prepared = new Map<string, { topicId: string; log: PartitionLog }>();
  private timers: Array<ReturnType<typeof setInterval>> = [];
  private closed = false;

  constructor(dataDir: string, opts: LogManagerOptions) {
    this.dataDir = dataDir;
    this.logger = opts.logger;
    this.retentionCheckIntervalMs = opts.retentionCheckIntervalMs ?? RETENTION_CHECK_INTERVAL_MS_DEFAULT;
    this.flushCheckIntervalMs = opts.flushCheckIntervalMs ?? FLUSH_CHECK_INTERVAL_MS_DEFAULT;
    this.cleanerIntervalMs = opts.cleanerIntervalMs ?? CLEANER_INTERVAL_MS_DEFAULT;
    this.cleanerBytesPerRunMax = opts.cleanerBytesPerRunMax ?? CLEANER_BYTES_PER_RUN_DEFAULT;
    this.producerState = opts.producerState;
    this.delay = opts.delay;
    this.onFlushCycle = opts.onFlushCycle;
    if (!(this.retentionCheckIntervalMs > 0 && this.flushCheckIntervalMs > 0 && this.cleanerIntervalMs > 0)) throw new Error('check intervals must be positive');
    if (!(this.cleanerBytesPerRunMax > 0)) throw new Error('cleanerBytesPerRunMax must be positive');
    this.files = new FileHandleCache(opts.segmentFilesOpenMax ?? segmentFilesOpenMaxFor(openFilesSoftLimit()));
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
  createPartition(topic: string, partition: number, config: LogConfig, topicId?: string): PartitionLog {
    const name = this.unloaded(topic, partition);
    const dir = path.join(this.dataDir, name);
    if (fs.existsSync(dir)) {
      this.logger.warn('removing leftover directory before creating the partition', { dir });
      fs.rmSync(dir, { recursive: true, force: true });
    }
    return this.openLog(name, config, topicId);
  }

  /**
   * An existing partition, recovered first if the last shutdown was not clean. With a topicId,
   * a directory made by another topic id (a deleted topic of the same name) is moved aside and
   * the partition starts empty; one without partition.metadata (made before topic ids) is
   * adopted.
   */
  loadPartition(topic: string, partition: number, config: LogConfig, topicId?: string): PartitionLog {
    const name = this.unloaded(topic, partition);
    const dir = path.join(this.dataDir, name);
    const pre = this.prepared.get(name);
    if (pre) {
      this.prepared.delete(name);
      if (pre.topicId === topicId) {
        pre.log.setConfig(config);
        this.logs.set(name, pre.log);
        return pre.log;
      }
      // Made for another topic id: close it; the directory is judged by its id below.
      void pre.log.delete(null);
    }
    if (topicId !== undefined && fs.existsSync(dir)) {
      const found = readPartitionTopicId(dir);
      if (found !== null && found !== topicId) {
        this.logger.warn('partition directory belongs to a deleted topic of the same name; removing it', { dir: name, dirTopicId: found, topicId });
        void this.removeInBackground(this.renameForDeletion(name));
      }
    }
    // A new replica (topic just created, or moved here) starts empty; after a data loss this
    // line is the trace of it, and the followers' copy is what refills it.
    if (!fs.existsSync(dir)) this.logger.info('partition directory created empty', { dir: name });
    return this.openLog(name, config, topicId);
  }

  /**
   * Writes the directories of new, empty partitions of topicId (see the top of the file), off
   * the event loop and PREPARE_CONCURRENCY_MAX at a time, opens each (a short synchronous step
   * between awaits, so other work interleaves), then fsyncs the data dir. loadPartition with
   * the same topic id then takes the open log at once. A directory of the same name with
   * another topic id is moved aside first; one of this topic id is kept (and opened later by
   * loadPartition). On failure every directory made here is closed and removed, and the error
   * is thrown. leaderEpochOf(partition): the epoch this broker leads it in from the start, if it does.
   */
  async prepareNewPartitions(topic: string, partitions: readonly number[], topicId: string, config: LogConfig, leaderEpochOf: (partition: number) => number | undefined = () => undefined): Promise<void> {
    if (this.closed) throw new SluiceError(ErrorCode.BROKER_SHUTTING_DOWN, 'log manager is closed');
    const names = partitions.map((p) => LogManager.dirName(topic, p));
    const epochs = partitions.map((p) => leaderEpochOf(p));
    const made: string[] = [];
    let next = 0;
    let failed = false;
    const worker = async (): Promise<void> => {
      while (next < names.length && !failed) {
        const i = next++;
        const name = names[i]!;
        if (this.logs.has(name) || this.prepared.has(name)) continue; // open already: nothing to prepare
        const dir = path.join(this.dataDir, name);
        if (fs.existsSync(dir)) {
          if (readPartitionTopicId(dir) === topicId) continue;
          this.logger.warn('partition directory belongs to a deleted topic of the same name; removing it', { dir: name, topicId });
          void this.removeInBackground(this.renameForDeletion(name));
        }
        made.push(name);
        await fs.promises.mkdir(dir);
        // The topic id first: whatever is in the directory afterwards is known to be this topic's.
        const files = [{ name: PARTITION_METADATA_FILE, bytes: partitionMetadataBytes(topicId) }, ...PartitionLog.emptyLogFiles()];
        for (const f of files) await writeNewFile(path.join(dir, f.name), f.bytes);
        await fsyncDir(dir);
        if (failed || this.closed) break;
        // Deleted (renamed aside) while this was writing it: not ours to open any more.
        if (readPartitionTopicId(dir) !== topicId) throw new SluiceError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `${name} was deleted while it was being created`);
        // Everything is on disk as open() leaves it: no recovery, no write, no fsync.
        const log = PartitionLog.open(dir, config, { cleanShutdown: true, logger: this.logger, files: this.files, producerState: this.producerState, delay: this.delay, onFlushCycle: this.onFlushCycle });
        this.prepared.set(name, { topicId, log });
        // What the replica manager does first on a new leader (a synchronous checkpoint write):
        // done here, one partition per slice, instead of for every partition in one go later.
        const epoch = epochs[i];
        if (epoch !== undefined) log.beginLeaderEpoch(epoch);
      }
    };
    // Every worker ends before anything is discarded: none is left writing into a moved directory.
    const results = await Promise.allSettled(Array.from({ length: Math.min(PREPARE_CONCURRENCY_MAX, names.length) }, () => worker().catch((e: unknown) => {
      failed = true;
      throw e;
    })));
    const failure = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    try {
      if (failure) throw failure.reason;
      await fsyncDir(this.dataDir);
    } catch (e) {
      this.discardPrepared(made, topicId);
      throw e;
    }
  }

  /**
   * Closes and removes what prepareNewPartitions made for topicId under names that loadPartition
   * did not take (the topic was not stored after all). A directory is only removed while it
   * still holds topicId: by now the name may be a newer topic's.
   */
  discardPrepared(names: readonly string[], topicId: string): void {
    for (const name of names) {
      if (this.logs.has(name)) continue;
      const pre = this.prepared.get(name);
      if (pre && pre.topicId !== topicId) continue;
      this.prepared.delete(name);
      let renamed: string | null = null;
      try {
        if (readPartitionTopicId(path.join(this.dataDir, name)) === topicId) renamed = this.renameForDeletion(name);
      } catch (error) {
        this.logger.error('failed to remove a partition directory made for a topic that was not created', { dir: name, error });
      }
      void (pre ? pre.log.delete(renamed) : Promise.resolve()).then(() => this.removeInBackground(renamed));
    }
  }

  get(topic: string, partition: number): PartitionLog | undefined {
    return this.logs.get(`${topic}-${partition}`);
  }

  /** Whether the partition has a directory (or a prepared log): false for a replica that starts here. */
  hasPartitionDir(topic: string, partition: number): boolean {
    const name = LogManager.dirName(topic, partition);
    return this.prepared.has(name) || fs.existsSync(path.join(this.dataDir, name));
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

  /**
   * Closes and deletes one partition's log (a replica moved to another broker). The directory
   * is renamed aside before this returns (see the top of the file); the promise resolves once
   * it is gone.
   */
  deletePartition(topic: string, partition: number): Promise<void> {
    return this.deleteDirs([LogManager.dirName(topic, partition)]);
  }

  /**
   * Deletes the topic's loaded partitions and any directory of partitions 0..partitionCount-1.
   * Every directory is renamed aside before this returns; the promise resolves once all are gone.
   */
  deleteTopic(topic: string, partitionCount = 0): Promise<void> {
    const names = new Set<string>();
    for (const name of this.logs.keys()) if (name.slice(0, name.lastIndexOf('-')) === topic) names.add(name);
    for (let p = 0; p < partitionCount; p++) names.add(LogManager.dirName(topic, p));
    return this.deleteDirs([...names]);
  }

  /** The synchronous part (detach, rename) for every name first, then the removals. */
  private deleteDirs(names: readonly string[]): Promise<void> {
    const removals: Array<Promise<void>> = [];
    for (const name of names) {
      const log = this.logs.get(name) ?? this.prepared.get(name)?.log;
      this.logs.delete(name);
      this.prepared.delete(name);
      let renamed: string | null;
      try {
        renamed = this.renameForDeletion(name);
      } catch (e) {
        // The log stays detached and is closed, but its files stay: removing them by the old
        // name could hit a new topic's. The next start removes them (orphan, or another topic id).
        void log?.delete(null);
        removals.push(Promise.reject(e));
        continue;
      }
      if (log) removals.push(log.delete(renamed).then(() => this.removeInBackground(renamed)));
      else removals.push(this.removeInBackground(renamed));
    }
    return Promise.all(removals).then(() => undefined);
  }

  /**
   * Renames a partition dir to its `-delete` name and fsyncs the data dir, so the name is free
   * for a new topic even across a crash. Null when the directory does not exist.
   */
  private renameForDeletion(name: string): string | null {
    const from = path.join(this.dataDir, name);
    const to = path.join(this.dataDir, `${name}.${randomUUID().replaceAll('-', '')}${DELETED_DIR_SUFFIX}`);
    try {
      fs.renameSync(from, to);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw e;
    }
    fsyncDirSync(this.dataDir);
    return to;
  }

  /** Removes a renamed-aside directory without blocking the event loop; never rejects. close() waits for it. */
  private removeInBackground(dir: string | null): Promise<void> {
    if (dir === null) return Promise.resolve();
    const removal = fs.promises.rm(dir, { recursive: true, force: true }).then(
      () => undefined,
      // Left for removeDeletedDirs at the next start; the name is already free.
      (error: unknown) => this.logger.error('failed to remove a deleted partition directory', { dir, error }),
    );
    this.removing.add(removal);
    void removal.finally(() => this.removing.delete(removal));
    return removal;
  }

  /** Removes `-delete` dirs a crash left behind (in the background); returns how many there were. */
  removeDeletedDirs(): number {
    const dirs = fs.readdirSync(this.dataDir, { withFileTypes: true }).filter((e) => e.isDirectory() && DELETED_DIR.test(e.name));
    for (const d of dirs) void this.removeInBackground(path.join(this.dataDir, d.name));
    return dirs.length;
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
        // Idle producers go on the same cadence: cheap (one pass over a bounded map) and never urgent.
        log.expireProducers(nowMs);
        deleted += log.applyRetention(nowMs);
      } catch (error) {
        // An InvariantError already took that partition offline (server/assert.ts); the others go on.
        this.logger.error(isInvariantError(error) ? 'invariant breached in retention; the partition is offline' : 'retention failed', { dir: log.dir, error });
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
        // An InvariantError already took that partition offline (server/assert.ts); the others go on.
        this.logger.error(isInvariantError(error) ? 'invariant breached in compaction; the partition is offline' : 'compaction failed', { dir: log.dir, error });
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
    const open = [...this.logs.values(), ...[...this.prepared.values()].map((p) => p.log)];
    this.prepared.clear();
    const results = await Promise.allSettled(open.map((log) => log.close()));
    this.logs.clear();
    await Promise.all(this.removing);
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

  private openLog(name: string, config: LogConfig, topicId: string | undefined): PartitionLog {
    const dir = path.join(this.dataDir, name);
    const log = PartitionLog.open(dir, config, { cleanShutdown: this.cleanShutdown, logger: this.logger, files: this.files, producerState: this.producerState, delay: this.delay, onFlushCycle: this.onFlushCycle });
    try {
      if (topicId !== undefined && readPartitionTopicId(dir) !== topicId) writePartitionTopicId(dir, topicId);
    } catch (e) {
      void log.close();
      throw e;
    }
    this.logs.set(name, log);
    return log;
  }
}

/** The topic id in a partition dir's partition.metadata; null when it has none (or an unreadable one). */
export function readPartitionTopicId(dir: string): string | null {
  let text: string;
  try {
    text = fs.readFileSync(path.join(dir, PARTITION_METADATA_FILE), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  const m = /^version: (\d+)\ntopic_id: (\S+)\n?$/.exec(text);
  return m && Number(m[1]) === PARTITION_METADATA_VERSION ? m[2]! : null;
}

function partitionMetadataBytes(topicId: string): Buffer {
  return Buffer.from(`version: ${PARTITION_METADATA_VERSION}\ntopic_id: ${topicId}\n`);
}

function writePartitionTopicId(dir: string, topicId: string): void {
  writeFileDurableSync(path.join(dir, PARTITION_METADATA_FILE), partitionMetadataBytes(topicId));
}

/**
 * Writes a file that must not exist yet, in a directory nobody reads yet, and fdatasyncs it
 * (an empty one needs no sync: the directory's fsync makes its entry durable).
 */
async function writeNewFile(filePath: string, bytes: Uint8Array): Promise<void> {
  const handle = await fs.promises.open(filePath, 'wx');
  try {
    let written = 0;
    while (written < bytes.length) written += (await handle.write(bytes, written, bytes.length - written, written)).bytesWritten;
    if (bytes.length > 0) await handle.datasync();
  } finally {
    await handle.close();
  }
}
