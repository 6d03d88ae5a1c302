/**
 * DelayReleaser: the leader's releases of one partition's delayed messages (SPEC §7.9). Runs
 * only while this broker leads the partition: started when it becomes leader (or loads the
 * log as leader), stopped when it stops leading, the replica goes, or the broker shuts down.
 *
 * Invariants:
 * - Releases in key order (PendingDelays.takeDue), never before a key's time by this broker's
 *   clock, each as a RELEASED marker immediately followed by the released batch, several pairs
 *   in one append (one record set, so a pair is never split by this leader).
 * - First thing after start: a log whose last batch is a RELEASED marker gets its released
 *   batch (torn tail: a crash or a partial fetch cut the pair).
 * - Bounded work per turn: at most delayedReleaseSliceEntriesMax pairs and about
 *   delayedReleaseSliceBytesMax bytes per append, then setImmediate, so produce and fetch run
 *   in between. One run at a time; a stop (or restart in a new epoch) makes a run in progress
 *   put its keys back without appending.
 * - One timer, armed for the next due key (at most TIMER_MS_MAX ahead; re-armed on expiry),
 *   re-armed earlier when a produce schedules an earlier key (rearmIfEarlier).
 */
import { buildReleased, buildReleaseMarker } from '../../protocol/delayed-batch.ts';
import type { Logger } from '../logger.ts';
import type { PartitionLog } from '../log/partition-log.ts';
import type { DelayKey } from './pending-delays.ts';

/** Longest single timer: a far key is looked at again after this, which also bounds clock jumps. */
const TIMER_MS_MAX = 60_000;
/** Wait after a failed release append (storage error, lost leadership racing us) before trying again. */
const RETRY_BACKOFF_MS = 1000;
/**
 * Wrapper reads are synchronous while they are fast (their pages are in the page cache, the
 * usual case: they were written minutes or hours ago and are read once). A slice whose
 * synchronous reads together take longer than this switches to asynchronous reads for the rest
 * of the slice and for SYNC_READ_COOLDOWN_MS, so pages that must come from the disk never hold
 * the event loop for long.
 */
const SYNC_READ_SLICE_MS_MAX = 10;
const SYNC_READ_COOLDOWN_MS = 10_000;

/** What the releaser needs of its partition (partition.ts implements it). */
export interface ReleasingPartition {
  readonly topic: string;
  readonly partition: number;
  readonly log: PartitionLog;
  readonly isLeader: boolean;
  /** Appends the batches in one record set as the leader (stamps the epoch, moves the high watermark). */
  appendDelayBatches(batches: readonly Uint8Array[]): unknown;
}

export class DelayReleaser {
  private timer: NodeJS.Timeout | null = null;
  /** When the armed timer fires (Infinity: none armed). */
  private armedForMs = Infinity;
  private running = false;
  private active = false;
  /** Bumped by start and stop: a run that sees another value stops without appending. */
  private generation = 0;
  /** Released messages since start (diagnostics, tests). */
  released = 0;
  /** Until then wrapper reads are asynchronous (see SYNC_READ_SLICE_MS_MAX). */
  private asyncReadsUntilMs = 0;

  constructor(
    private readonly p: ReleasingPartition,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  get isActive(): boolean {
    return this.active;
  }

  /** Becomes active (again) for the current leadership: completes a torn tail, then releases what is due. */
  start(): void {
    this.generation++;
    this.active = true;
    this.arm(0);
  }

  stop(): void {
    this.generation++;
    this.active = false;
    this.disarm();
  }

  /** A produce scheduled a key: wake earlier if it is due before the armed timer. */
  rearmIfEarlier(): void {
    if (!this.active || this.running) return;
    let due: number;
    try {
      due = this.p.log.delays.nextDueMs();
    } catch (error) {
      // A sidecar that cannot be read: the produce succeeded; the releaser's own retry reports it.
      this.logger.warn('could not read the delay index to re-arm the releaser', { topic: this.p.topic, partition: this.p.partition, error });
      return;
    }
    if (due < this.armedForMs) this.arm(Math.max(0, due - this.now()));
  }

  private disarm(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.armedForMs = Infinity;
  }

  private arm(delayMs: number): void {
    this.disarm();
    const d = Math.min(Math.max(0, delayMs), TIMER_MS_MAX);
    this.armedForMs = this.now() + d;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.armedForMs = Infinity;
      void this.run();
    }, d);
    this.timer.unref?.();
  }

  /** Arms the timer for the next due key (none: nothing armed; a produce re-arms). */
  private armNext(): void {
    if (!this.active) return;
    let due: number;
    try {
      due = this.p.log.delays.nextDueMs();
    } catch (error) {
      this.logger.warn('could not read the delay index; retrying', { topic: this.p.topic, partition: this.p.partition, error });
      this.arm(RETRY_BACKOFF_MS);
      return;
    }
    if (due === Infinity) return;
    this.arm(due - this.now());
  }

  private async run(): Promise<void> {
    if (this.running || !this.active) return;
    this.running = true;
    const gen = this.generation;
    let retryMs = -1;
    try {
      if (!this.p.isLeader) return;
      await this.completeTornTail(gen);
      const cfg = this.p.log.delayConfig;
      for (;;) {
        if (gen !== this.generation || !this.p.isLeader) return;
        const keys = this.p.log.delays.takeDue(this.now(), cfg.delayedReleaseSliceEntriesMax);
        if (keys.length === 0) break;
        const ok = await this.releaseSlice(keys, gen, cfg.delayedReleaseSliceBytesMax);
        if (!ok) {
          retryMs = RETRY_BACKOFF_MS;
          break;
        }
        // Let produce, fetch and replication run between slices.
        await new Promise<void>((r) => setImmediate(r));
      }
    } catch (error) {
      this.logger.warn('delayed release failed; retrying', { topic: this.p.topic, partition: this.p.partition, error });
      retryMs = RETRY_BACKOFF_MS;
    } finally {
      this.running = false;
      if (gen === this.generation && this.active) {
        if (retryMs >= 0) this.arm(retryMs);
        else this.armNext();
      }
    }
  }

  /** Reads the wrappers of keys, appends their pairs (bytes bounded; the rest go back). False when the append failed. */
  private async releaseSlice(keys: DelayKey[], gen: number, bytesMax: number): Promise<boolean> {
    const log = this.p.log;
    const batches: Uint8Array[] = [];
    const taken: DelayKey[] = [];
    let bytes = 0;
    let i = 0;
    let syncReads = this.now() >= this.asyncReadsUntilMs;
    const startedMs = performance.now();
    try {
      for (; i < keys.length; i++) {
        const k = keys[i]!;
        if (bytes >= bytesMax && taken.length > 0) break;
        const w = syncReads ? log.readWrapperSync(k.offset) : await log.readWrapper(k.offset);
        if (syncReads && performance.now() - startedMs > SYNC_READ_SLICE_MS_MAX) {
          syncReads = false;
          this.asyncReadsUntilMs = this.now() + SYNC_READ_COOLDOWN_MS;
        }
        if (gen !== this.generation) break;
        if (w === null || w.entry.effectiveDeliverAtMs !== k.deliverAtMs) {
          // Never expected (retention keeps pending wrappers): skip it rather than stall every later key.
          this.logger.error('delayed message wrapper not found in the log; skipped', { topic: this.p.topic, partition: this.p.partition, offset: k.offset, deliverAtMs: k.deliverAtMs });
          log.delays.abandon(k);
          continue;
        }
        const now = this.now();
        batches.push(buildReleaseMarker(k.deliverAtMs, k.offset, now), buildReleased(w.buf, w.entry));
        bytes += batches[batches.length - 1]!.length;
        taken.push(k);
      }
    } catch (e) {
      log.delays.restore(keys.slice(i));
      log.delays.restore(taken);
      throw e;
    }
    log.delays.restore(keys.slice(i));
    if (gen !== this.generation || !this.p.isLeader || taken.length === 0) {
      log.delays.restore(taken);
      return true;
    }
    try {
      this.p.appendDelayBatches(batches);
      this.released += taken.length;
      return true;
    } catch (error) {
      log.delays.restore(taken);
      this.logger.warn('could not append delayed releases; retrying', { topic: this.p.topic, partition: this.p.partition, count: taken.length, error });
      return false;
    }
  }

  /** A log ending in a RELEASED marker lost the released batch after it: append it (SPEC §7.9). */
  private async completeTornTail(gen: number): Promise<void> {
    const log = this.p.log;
    const d = log.delays;
    if (d.lastReleaseMarkerOffset < 0 || d.lastReleaseMarkerOffset !== log.logEndOffset - 1) return;
    const markerOffset = d.lastReleaseMarkerOffset;
    const w = await log.readWrapper(d.frontierOffset);
    if (gen !== this.generation || !this.p.isLeader || log.logEndOffset !== markerOffset + 1) return;
    if (w === null) {
      this.logger.error('torn delayed release: the wrapper the last RELEASED marker names is not in the log', { topic: this.p.topic, partition: this.p.partition, marker: markerOffset, wrapperOffset: d.frontierOffset });
      return;
    }
    this.p.appendDelayBatches([buildReleased(w.buf, w.entry)]);
    this.released++;
    this.logger.info('completed a torn delayed release', { topic: this.p.topic, partition: this.p.partition, marker: markerOffset, wrapperOffset: d.frontierOffset });
  }
}
