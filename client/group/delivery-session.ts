/**
 * DeliverySession: what a group member has handed to the application and what the
 * application has consumed, per owned partition. GroupConsumer (consumer.ts: poll(), the
 * iterator, commits, the membership hooks) and GroupRunner (runner.ts: run()) both record
 * delivery through it; neither calls into the other for that.
 *
 * Per owned partition:
 * - `consumed`: the next offset the application has consumed, what at-least-once commits send.
 * - `delivered`: `next`, the offset after the last record handed out (or the start / seek
 *   offset), and `max`, the highest `next` since the partition was assigned.
 * - `revoking`: the partition is being revoked; `position` is what had been handed out when
 *   revocation started, `settled` that the application will process no more of it.
 *
 * Batches the engine walked without handing them out (transaction markers, aborted
 * transactions: FetchEngine.skippedInLastPoll) count as delivered, so commits, pending
 * offsets and lag move past them even when a poll returns nothing.
 *
 * Invariants:
 * - At-least-once commits only cover delivered records: `consumed` never passes
 *   `delivered.max` (tracked here rather than read from the fetch engine, whose position also
 *   moves on its own resets). Checked on every update (cheap), it throws if broken.
 * - A record the engine returned but that is not handed out (its partition is not active yet
 *   or any more) rewinds the engine to it when the engine still reads the partition, so it is
 *   fetched and handed out later rather than skipped.
 * - A partition is active (its records may be processed) only while it is owned, not being
 *   revoked, and its start offset is known (it has a `consumed` entry).
 * - Waiters for progress (revocations waiting for the application) are bounded by their own
 *   timeout and all released when partitions are lost.
 */
import type { FetchEngine, Message, SkippedTo } from '../fetch-engine.ts';
import { tpKey, type TopicPartition } from './membership.ts';
import type { TopicPartitionOffsetCommit } from './offset-committer.ts';

/** See GroupConsumer (consumer.ts) for what each mode guarantees. */
export type DeliveryMode = 'at-least-once' | 'at-most-once' | 'exactly-once';

/** A partition being revoked. */
export interface Revoking {
  tp: TopicPartition;
  /** What the application was handed when revocation started (delivered.next). */
  position: number;
  /** The application said it will not process more of it (skipped the rest of its batch). */
  settled: boolean;
}

export class DeliverySession {
  private readonly consumed = new Map<string, number>();
  private readonly delivered = new Map<string, { next: number; max: number }>();
  private readonly revoking = new Map<string, Revoking>();
  /** poll() returned messages the application has not yet consumed. */
  private holding = false;
  private progressWaiters: Array<{ done: () => boolean; resolve: () => void }> = [];
  /**
   * Whether what the application consumed is tracked: at-least-once commits it; exactly-once
   * commits nothing itself (the producer's transaction does) but a revocation still waits
   * until the application is done with what it holds. at-most-once committed before delivery.
   */
  private readonly tracksConsumption: boolean;

  constructor(
    private readonly engine: FetchEngine,
    readonly deliveryMode: DeliveryMode,
    /** Whether the member owns the partition now (the membership's view). */
    private readonly owns: (topic: string, partition: number) => boolean,
  ) {
    this.tracksConsumption = deliveryMode !== 'at-most-once';
  }

  /** Owned and not being revoked: its messages may still be processed. */
  isActive(topic: string, partition: number): boolean {
    const key = tpKey(topic, partition);
    return this.owns(topic, partition) && !this.revoking.has(key) && this.consumed.has(key);
  }

  /** The application consumed a partition up to (excluding) `next`. */
  markConsumed(topic: string, partition: number, next: number): void {
    if (!this.tracksConsumption) return;
    const key = tpKey(topic, partition);
    if (!this.consumed.has(key)) return; // no longer owned
    this.setConsumed(key, next);
    if (this.progressWaiters.length > 0 && this.revoking.has(key)) this.notifyProgress();
  }

  /** The application will process nothing more of a revoked partition in the batch it holds. */
  settleRevoking(topic: string, partition: number): void {
    const r = this.revoking.get(tpKey(topic, partition));
    if (r && !r.settled) {
      r.settled = true;
      this.notifyProgress();
    }
  }

  /** Rewinds partitions to the first of these (unprocessed) messages, so they are delivered again. */
  rewind(unprocessed: readonly Message[]): void {
    if (!this.tracksConsumption) return;
    const first = new Map<string, Message>();
    for (const m of unprocessed) {
      const k = tpKey(m.topic, m.partition);
      const f = first.get(k);
      if (!f || m.offset < f.offset) first.set(k, m);
    }
    for (const m of first.values()) {
      if (this.isActive(m.topic, m.partition)) this.seek(m.topic, m.partition, m.offset);
      else this.settleRevoking(m.topic, m.partition);
    }
  }

  /** The application finished (or abandoned, after rewind) the batch it holds. */
  batchDone(): void {
    this.holding = false;
    this.notifyProgress();
  }

  /** at-least-once, exactly-once: everything handed out so far is consumed. Ends the batch in hand. */
  markHeldConsumed(): void {
    if (this.tracksConsumption) {
      // What was handed out, not the engine's position: that may have run ahead of delivery.
      for (const [k, d] of this.delivered) if (this.consumed.has(k) && !this.revoking.has(k)) this.setConsumed(k, d.next);
      for (const [k, r] of this.revoking) if (!r.settled && this.consumed.has(k)) this.setConsumed(k, r.position);
    }
    this.batchDone();
  }

  /** Moves the fetch position of an owned partition; what counts as handed out moves with it. */
  seek(topic: string, partition: number, offset: number): void {
    if (!Number.isSafeInteger(offset) || offset < 0) throw new TypeError(`offset must be a non-negative integer, not ${String(offset)}`);
    this.engine.seek(topic, partition, offset);
    // An explicit seek moves what counts as handed out (a seek forward skips records on purpose).
    const d = this.delivered.get(tpKey(topic, partition));
    if (!d) return;
    d.next = offset;
    if (offset > d.max) d.max = offset;
  }

  /** Stops returning (and fetching) a partition until resume(); its position stays. */
  pause(topic: string, partition: number): void {
    this.engine.pause(topic, partition);
  }

  resume(topic: string, partition: number): void {
    this.engine.resume(topic, partition);
  }

  /** The consumed offsets of these partitions (those with a known start). */
  consumedOffsets(partitions: readonly TopicPartition[]): TopicPartitionOffsetCommit[] {
    const out: TopicPartitionOffsetCommit[] = [];
    for (const tp of partitions) {
      const o = this.consumed.get(tpKey(tp.topic, tp.partition));
      if (o !== undefined) out.push({ topic: tp.topic, partition: tp.partition, offset: o });
    }
    return out;
  }

  /**
   * Where the application's next records start, per partition (those with a known start):
   * everything handed out so far, and the batches the engine passed without handing them out.
   * What an exactly-once application commits in its transaction after processing what it got.
   */
  deliveredOffsets(partitions: readonly TopicPartition[]): TopicPartitionOffsetCommit[] {
    const out: TopicPartitionOffsetCommit[] = [];
    for (const tp of partitions) {
      const k = tpKey(tp.topic, tp.partition);
      const d = this.delivered.get(k);
      if (d !== undefined && this.consumed.has(k)) out.push({ topic: tp.topic, partition: tp.partition, offset: d.next });
    }
    return out;
  }

  // ---- handing out ----

  /** The messages of active partitions (see the invariants for the others). */
  keepActive(msgs: Message[]): Message[] {
    return this.someInactive(msgs) ? this.dropInactive(msgs) : msgs;
  }

  /** at-most-once: these offsets were committed before the batch is handed out. */
  committedBeforeDelivery(offsets: Iterable<[string, TopicPartitionOffsetCommit]>): void {
    for (const [k, o] of offsets) if (this.consumed.has(k)) this.consumed.set(k, o.offset);
  }

  /** The batch is handed to the application now. */
  handOut(msgs: readonly Message[]): void {
    for (const m of msgs) {
      const d = this.delivered.get(tpKey(m.topic, m.partition));
      if (!d) continue;
      d.next = m.offset + 1;
      if (d.next > d.max) d.max = d.next;
    }
    this.holding = msgs.length > 0;
  }

  /**
   * The engine moved active partitions past batches it did not hand out (after handOut of the
   * same poll). They count as delivered: nothing in them is for the application.
   */
  passSkipped(skips: readonly SkippedTo[]): void {
    for (const s of skips) {
      if (!this.isActive(s.topic, s.partition)) continue;
      const d = this.delivered.get(tpKey(s.topic, s.partition));
      if (d === undefined || s.next <= d.next) continue;
      d.next = s.next;
      if (d.next > d.max) d.max = d.next;
    }
  }

  // ---- assignment changes ----

  /**
   * Newly assigned partitions start being delivered. Nothing of them was fetched yet
   * (addPartitions makes them fetchable together, and this runs before any I/O): the
   * engine's position is the start offset.
   */
  start(partitions: readonly TopicPartition[]): void {
    for (const tp of partitions) {
      const start = this.engine.position(tp.topic, tp.partition);
      const k = tpKey(tp.topic, tp.partition);
      this.delivered.set(k, { next: start, max: start });
      this.consumed.set(k, start);
    }
  }

  /** Marks partitions as being revoked and stops fetching them at once. */
  beginRevoke(partitions: readonly TopicPartition[]): Revoking[] {
    const entries: Revoking[] = [];
    for (const tp of partitions) {
      const k = tpKey(tp.topic, tp.partition);
      const position = this.delivered.get(k)?.next ?? this.consumed.get(k) ?? 0;
      const r: Revoking = { tp, position, settled: false };
      this.revoking.set(k, r);
      entries.push(r);
    }
    this.engine.unassign(partitions);
    return entries;
  }

  /** The application holds nothing of these revoked partitions any more (consumed or settled). */
  revokedConsumed(entries: readonly Revoking[]): boolean {
    return !this.holding || entries.every((r) => r.settled || (this.consumed.get(tpKey(r.tp.topic, r.tp.partition)) ?? r.position) >= r.position);
  }

  /** Resolves when done() holds after some progress, or after timeoutMs. */
  waitProgress(done: () => boolean, timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(finish, timeoutMs);
      const entry = { done, resolve: finish };
      const self = this;
      function finish(): void {
        clearTimeout(timer);
        self.progressWaiters = self.progressWaiters.filter((w) => w !== entry);
        resolve();
      }
      this.progressWaiters.push(entry);
    });
  }

  /** Partitions lost at once: fetching stops and revocations waiting for the application give up (then forget() them). */
  lose(partitions: readonly TopicPartition[]): void {
    this.engine.unassign(partitions);
    const waiters = this.progressWaiters;
    this.progressWaiters = [];
    for (const w of waiters) w.resolve();
  }

  /** Partitions left the member: nothing of them is tracked any more. */
  forget(partitions: readonly TopicPartition[]): void {
    for (const tp of partitions) {
      const k = tpKey(tp.topic, tp.partition);
      this.revoking.delete(k);
      this.consumed.delete(k);
      this.delivered.delete(k);
    }
  }

  // ---- internals ----

  /** The only place at-least-once progress is recorded; asserts it stays within what was delivered. */
  private setConsumed(k: string, next: number): void {
    const d = this.delivered.get(k);
    if (d && next > d.max) {
      throw new Error(`at-least-once violated: ${k.replace('\u0000', '/')} would be committed up to ${next}, past the last record delivered (next ${d.max})`);
    }
    this.consumed.set(k, next);
  }

  /** Ownership is checked once per run of messages from one partition, not per message (hot path). */
  private someInactive(msgs: Message[]): boolean {
    let topic: string | null = null;
    let partition = -1;
    for (const m of msgs) {
      if (m.partition === partition && m.topic === topic) continue;
      topic = m.topic;
      partition = m.partition;
      if (!this.isActive(topic, partition)) return true;
    }
    return false;
  }

  /**
   * The messages of active partitions. The engine's position already moved past the others:
   * where it still reads such a partition (its assignment is not complete yet), it is rewound
   * to the first dropped record. Revoked and lost partitions left the engine; their commits
   * use `delivered`.
   */
  private dropInactive(msgs: Message[]): Message[] {
    const kept: Message[] = [];
    const firstDropped = new Map<string, Message>();
    for (const m of msgs) {
      if (this.isActive(m.topic, m.partition)) kept.push(m);
      else {
        const k = tpKey(m.topic, m.partition);
        if (!firstDropped.has(k)) firstDropped.set(k, m);
      }
    }
    for (const m of firstDropped.values()) {
      if (this.engine.isAssigned(m.topic, m.partition)) this.engine.seek(m.topic, m.partition, m.offset);
    }
    return kept;
  }

  private notifyProgress(): void {
    if (this.progressWaiters.length === 0) return;
    const still: typeof this.progressWaiters = [];
    for (const w of this.progressWaiters) (w.done() ? w.resolve() : still.push(w));
    this.progressWaiters = still;
  }
}
