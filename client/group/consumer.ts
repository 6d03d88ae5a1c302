/**
 * GroupConsumer: a consumer in a consumer group. The coordinator (server-side assignors,
 * KIP-848 style) decides which partitions this member reads; the member reads them with the
 * same fetch engine as the manual Consumer (pipelined fetches, CRC checks, offset resets) and
 * commits its progress to the group.
 *
 * Pieces: GroupMembership (membership.ts) runs the heartbeat and reconciles the
 * assignment through the hooks below; OffsetCommitter (offset-committer.ts) commits;
 * GroupRunner (runner.ts) is the optional run loop with retry topics and a DLQ.
 *
 * Delivery modes (deliveryMode):
 * - 'at-least-once' (default): an offset is committed only after the application consumed
 *   the message. As in Kafka, the messages poll() returned count as consumed when the
 *   application calls poll() again or commit(); the async iterator counts a message as
 *   consumed when the loop asks for the next one; run() when its handler returned (or the
 *   message was republished to a retry topic/DLQ). Auto-commit (autoCommit, default true)
 *   commits consumed positions every autoCommitIntervalMs, before a revoked partition is
 *   released, and on close(). A crash may repeat messages, never lose them.
 * - 'at-most-once': the offsets of a batch are committed (synchronously, durably) BEFORE
 *   poll() returns it. If that commit fails poll() throws and the batch is not returned (it
 *   will be fetched again). A crash may lose messages, never repeat them.
 *
 * Invariants:
 * - Messages of a partition are returned only while this member owns it and it is not being
 *   revoked: revocation stops fetching at once.
 * - A revoked partition is released (reported to the coordinator) only after the messages
 *   the application holds of it were consumed (or the rebalance timeout passed), and, with
 *   auto-commit in at-least-once mode, after the consumed offset was committed.
 * - A lost partition (fenced, session expired, left after maxPollIntervalMs) is dropped at
 *   once WITHOUT committing: this member is a zombie and its commits would be refused.
 * - At-least-once commits only cover delivered records: `consumed` never passes `delivered`
 *   (what poll() handed out, tracked here rather than read from the fetch engine, whose
 *   position also moves on its own resets). Checked on every update (cheap), it throws if
 *   broken. A record the engine returned but poll() does not hand out (its partition is not
 *   active yet or any more) rewinds the engine to it when the engine still reads the partition.
 * - One poll() at a time.
 */
import { randomUUID } from 'node:crypto';
import type { TopicPartitions } from '../../protocol/apis/consumer-group-heartbeat.ts';
import { ErrorCode, SluiceError } from '../../protocol/errors.ts';
import { Cluster } from '../cluster.ts';
import { Consumer, type AutoOffsetReset, type ConsumerOptions, type Message } from '../consumer.ts';
import { CoordinatorClient, type GroupTransport } from './coordinator.ts';
import { GroupMembership, toTopicPartitions, tpKey, type AssignmentChange, type Subscription, type TopicPartition } from './membership.ts';
import { GroupRunner, type RunOptions } from './runner.ts';
import { OffsetCommitter, type CommitCallback, type TopicPartitionOffsetCommit } from './offset-committer.ts';

export type DeliveryMode = 'at-least-once' | 'at-most-once';
export type Assignor = 'uniform' | 'range' | 'round-robin';

export interface GroupConsumerOptions extends Omit<ConsumerOptions, 'autoOffsetReset'> {
  groupId: string;
  /** Topics to subscribe to (or topicPattern, or subscribe() later). */
  topics?: string[];
  /** A regular expression (JavaScript syntax, matched by the broker) over topic names. */
  topicPattern?: string;
  /** Server-side assignor. Default 'uniform' (balanced and sticky). */
  assignor?: Assignor;
  /** The coordinator removes the member after this long without a heartbeat. Default 10000 (1000-300000). */
  sessionTimeoutMs?: number;
  /** How long the member may take to release revoked partitions. Default 30000. */
  rebalanceTimeoutMs?: number;
  /** Leave the group when the application does not call poll() for this long; rejoin on the next poll(). Default 300000. */
  maxPollIntervalMs?: number;
  /** Commit consumed offsets automatically (interval, revocation, close). Default true. */
  autoCommit?: boolean;
  autoCommitIntervalMs?: number;
  /** Where to start a partition the group has no committed offset for. Default 'latest'. */
  autoOffsetReset?: AutoOffsetReset;
  deliveryMode?: DeliveryMode;
  /** Called after every change of the owned partitions (awaited errors are ignored). */
  onAssignmentChange?: (e: AssignmentChange) => void;
  /** The member id; default a random UUID, kept for the consumer's lifetime. */
  memberId?: string;
  /** Replaces the network coordinator (tests). */
  transport?: GroupTransport;
}

interface Revoking {
  tp: TopicPartition;
  /** What the application was handed when revocation started (delivered.next). */
  position: number;
  /** The application said it will not process more of it (skipped the rest of its batch). */
  settled: boolean;
}

const SESSION_TIMEOUT_MS_MIN = 1000;
const SESSION_TIMEOUT_MS_MAX = 300_000;

function positiveInt(v: number, name: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (!Number.isSafeInteger(v) || v < min || v > max) throw new TypeError(`${name} must be an integer in [${min}, ${max}], not ${v}`);
  return v;
}

export class GroupConsumer {
  readonly groupId: string;
  readonly deliveryMode: DeliveryMode;
  /** Bootstrap and client id, for helpers (the runner's producer and admin). */
  readonly bootstrap: string | string[];
  readonly clientId: string;
  private readonly engine: Consumer;
  private readonly cluster: Cluster;
  private readonly membership: GroupMembership;
  private readonly committer: OffsetCommitter;
  private readonly autoCommit: boolean;
  private readonly autoCommitIntervalMs: number;
  private readonly maxPollIntervalMs: number;
  private readonly rebalanceTimeoutMs: number;
  private readonly maxWaitMs: number;
  private readonly onAssignmentChange: ((e: AssignmentChange) => void) | undefined;
  private subscription: Subscription | null;

  /** Next offset per owned partition that the application has consumed: what commits send. */
  private readonly consumed = new Map<string, number>();
  /**
   * Per owned partition: `next`, the offset after the last record handed to the application
   * (or the start / seek offset), and `max`, the highest `next` since the partition was
   * assigned: the bound at-least-once commits must stay within.
   */
  private readonly delivered = new Map<string, { next: number; max: number }>();
  private readonly revoking = new Map<string, Revoking>();
  /** poll() returned messages the application has not yet consumed. */
  private holding = false;
  private progressWaiters: Array<{ done: () => boolean; resolve: () => void }> = [];
  private assignmentWaiter: (() => void) | null = null;
  private lossGeneration = 0;
  private pendingError: Error | null = null;
  private pollTimer: NodeJS.Timeout | null = null;
  private started = false;
  private leftForPollTimeout = false;
  private polling = false;
  private closed = false;
  private runner: GroupRunner | null = null;

  constructor(options: GroupConsumerOptions) {
    if (typeof options.groupId !== 'string' || options.groupId.length === 0) throw new TypeError('groupId must be a non-empty string');
    if (options.topics && options.topicPattern !== undefined) throw new TypeError('give topics or topicPattern, not both');
    this.groupId = options.groupId;
    this.bootstrap = options.bootstrap;
    this.clientId = options.clientId ?? 'sluice-group-consumer';
    this.deliveryMode = options.deliveryMode ?? 'at-least-once';
    if (this.deliveryMode !== 'at-least-once' && this.deliveryMode !== 'at-most-once') throw new TypeError(`deliveryMode must be 'at-least-once' or 'at-most-once', not ${String(this.deliveryMode)}`);
    this.autoCommit = options.autoCommit ?? true;
    this.autoCommitIntervalMs = positiveInt(options.autoCommitIntervalMs ?? 5000, 'autoCommitIntervalMs', 1);
    this.maxPollIntervalMs = positiveInt(options.maxPollIntervalMs ?? 300_000, 'maxPollIntervalMs', 1);
    const sessionTimeoutMs = positiveInt(options.sessionTimeoutMs ?? 10_000, 'sessionTimeoutMs', SESSION_TIMEOUT_MS_MIN, SESSION_TIMEOUT_MS_MAX);
    this.rebalanceTimeoutMs = positiveInt(options.rebalanceTimeoutMs ?? 30_000, 'rebalanceTimeoutMs', 1);
    this.maxWaitMs = options.maxWaitMs ?? 500;
    this.onAssignmentChange = options.onAssignmentChange;
    this.subscription = options.topicPattern !== undefined ? patternSubscription(options.topicPattern) : options.topics ? namesSubscription(options.topics) : null;
    const { groupId: _g, topics: _t, topicPattern: _p, assignor, transport, memberId, ...engineOptions } = options;
    this.engine = new Consumer({ ...engineOptions, clientId: this.clientId, autoOffsetReset: options.autoOffsetReset ?? 'latest' });
    const requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
    this.cluster = new Cluster({
      bootstrap: options.bootstrap,
      clientId: this.clientId,
      requestTimeoutMs,
      ...(options.connectTimeoutMs !== undefined ? { connectTimeoutMs: options.connectTimeoutMs } : {}),
    });
    const coordinator = transport ?? new CoordinatorClient(this.cluster, this.groupId, Math.min(requestTimeoutMs, sessionTimeoutMs));
    this.membership = new GroupMembership(
      coordinator,
      {
        revoke: (ps) => this.onRevoke(ps),
        assign: (ps) => this.onAssign(coordinator, ps),
        lose: (ps) => this.onLose(ps),
        changed: (e) => this.onChanged(e),
        fatal: (e) => this.fail(e),
      },
      {
        groupId: this.groupId,
        memberId: memberId ?? randomUUID(),
        subscription: this.subscription ?? { topics: [] },
        assignor: assignor ?? 'uniform',
        sessionTimeoutMs,
        rebalanceTimeoutMs: this.rebalanceTimeoutMs,
        ...(options.retryBackoffMs !== undefined ? { retryBackoffMs: options.retryBackoffMs } : {}),
      },
    );
    this.committer = new OffsetCommitter({
      groupId: this.groupId,
      transport: coordinator,
      member: () => ({ memberId: this.membership.memberId, memberEpoch: this.membership.memberEpoch }),
      onFenced: () => this.membership.fenced(),
      commitTimeoutMs: requestTimeoutMs,
      ...(options.retryBackoffMs !== undefined ? { retryBackoffMs: options.retryBackoffMs } : {}),
    });
  }

  get memberId(): string { return this.membership.memberId; }
  /** The member epoch from the last heartbeat (0: not in the group). */
  get memberEpoch(): number { return this.membership.memberEpoch; }

  /** The partitions this member owns now. */
  assignment(): TopicPartition[] {
    return this.membership.ownedPartitions();
  }

  /** The current subscription: topic names, a pattern, or null. */
  subscriptionOf(): Subscription | null {
    return this.subscription;
  }

  /** Changes the subscription: topic names or a regular expression. Takes effect with the next heartbeat (a rebalance). */
  subscribe(topics: string[] | string): void {
    this.assertOpen();
    this.subscription = typeof topics === 'string' ? patternSubscription(topics) : namesSubscription(topics);
    this.membership.setSubscription(this.subscription);
  }

  /**
   * The next messages of owned partitions; joins the group on the first call (and after
   * leaving for maxPollIntervalMs). Waits up to timeoutMs (default maxWaitMs) and returns []
   * when nothing arrived. In at-least-once mode, calling poll() marks what the previous
   * poll() returned as consumed; in at-most-once mode the returned batch is already committed.
   */
  poll(timeoutMs = this.maxWaitMs): Promise<Message[]> {
    return this.pollInternal(timeoutMs, true);
  }

  /**
   * Yields messages one by one until close(). In at-least-once mode a message counts as
   * consumed when the loop asks for the next one; leaving the loop (break, throw) rewinds to
   * the last message yielded, which is therefore delivered again (it may not have been processed).
   */
  async *[Symbol.asyncIterator](): AsyncGenerator<Message, void, undefined> {
    while (!this.closed) {
      let batch: Message[];
      try {
        batch = await this.pollInternal(this.maxWaitMs, false);
      } catch (e) {
        if (this.closed) return;
        throw e;
      }
      let i = 0;
      try {
        for (; i < batch.length; i++) {
          const m = batch[i]!;
          if (!this._isActive(m.topic, m.partition)) {
            this._settleRevoking(m.topic, m.partition);
            continue;
          }
          yield m;
          this._markConsumed(m.topic, m.partition, m.offset + 1);
        }
      } finally {
        if (i < batch.length) this._rewind(batch.slice(i));
        this._batchDone();
      }
    }
  }

  /** Commits the consumed offsets of owned partitions now and waits until they are durable. */
  async commit(): Promise<void> {
    this.assertOpen();
    this.markHeldConsumed();
    await this.committer.commitSync(this.consumedOffsets());
  }

  /** As commit() without waiting; the callback (optional) gets the outcome. Never rejects. */
  commitAsync(cb?: CommitCallback): void {
    this.assertOpen();
    this.markHeldConsumed();
    this.committer.commitAsync(this.consumedOffsets(), cb);
  }

  /** Commits exactly these offsets (the NEXT offset to read, i.e. last processed + 1) and waits. */
  async commitOffsets(offsets: readonly TopicPartitionOffsetCommit[]): Promise<void> {
    this.assertOpen();
    await this.committer.commitSync(offsets);
  }

  /** The consumed offsets that a commit would send now. */
  consumedOffsets(): TopicPartitionOffsetCommit[] {
    const out: TopicPartitionOffsetCommit[] = [];
    for (const tp of this.membership.ownedPartitions()) {
      const o = this.consumed.get(tpKey(tp.topic, tp.partition));
      if (o !== undefined) out.push({ topic: tp.topic, partition: tp.partition, offset: o });
    }
    return out;
  }

  /** Moves the fetch position of an owned partition (the next poll() starts there). */
  seek(topic: string, partition: number, offset: number): void {
    if (!Number.isSafeInteger(offset) || offset < 0) throw new TypeError(`offset must be a non-negative integer, not ${String(offset)}`);
    this.engine.seek(topic, partition, offset);
    this.noteSeek(topic, partition, offset);
  }

  /** Offset of the next message poll() returns for an owned partition. */
  position(topic: string, partition: number): number {
    return this.engine.position(topic, partition);
  }

  /** Stops returning (and fetching) a partition until resume(); its position stays. */
  pause(topic: string, partition: number): void {
    this.engine.pause(topic, partition);
  }

  resume(topic: string, partition: number): void {
    this.engine.resume(topic, partition);
  }

  /**
   * Runs a processing loop until stop() or close(): see GroupRunner (runner.ts) for
   * handler failures, retry topics and the dead-letter topic. Resolves when stopped.
   */
  async run(options: RunOptions): Promise<void> {
    this.assertOpen();
    if (this.runner) throw new Error('run() is already running');
    const runner = new GroupRunner(this, options);
    this.runner = runner;
    try {
      await runner.run();
    } finally {
      if (this.runner === runner) this.runner = null;
    }
  }

  /** Stops run() after the message in hand; resolves when it returned. The consumer stays open. */
  async stop(): Promise<void> {
    await this.runner?.stop();
  }

  /**
   * Stops run(), commits consumed offsets (at-least-once with autoCommit; what poll() returned
   * last is NOT consumed until poll()/commit() — call commit() first to include it), leaves
   * the group (epoch -1) and closes the connections. Idempotent.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.runner?.stop().catch(() => {});
    this.closed = true;
    if (this.pollTimer) clearTimeout(this.pollTimer);
    this.committer.stopAuto();
    if (this.membership.isActive && this.autoCommit && this.deliveryMode === 'at-least-once') {
      await this.committer.commitSync(this.committer.forwardOnly(this.consumedOffsets())).catch(() => {});
    }
    await this.committer.drain();
    await this.membership.leave();
    this.wakeAssignment();
    await this.engine.close();
    this.cluster.close();
  }

  // ---- internals used by GroupRunner and the iterator (not part of the public contract) ----

  /** poll() for the runner: nothing is marked consumed implicitly; the runner marks each message. */
  _pollExplicit(timeoutMs = this.maxWaitMs): Promise<Message[]> {
    return this.pollInternal(timeoutMs, false);
  }

  /** Owned and not being revoked: its messages may still be processed. */
  _isActive(topic: string, partition: number): boolean {
    const key = tpKey(topic, partition);
    return this.membership.owns(topic, partition) && !this.revoking.has(key) && this.consumed.has(key);
  }

  /** The application consumed a partition up to (excluding) `next`. */
  _markConsumed(topic: string, partition: number, next: number): void {
    if (this.deliveryMode !== 'at-least-once') return;
    const key = tpKey(topic, partition);
    if (!this.consumed.has(key)) return; // no longer owned
    this.setConsumed(key, next);
    if (this.progressWaiters.length > 0 && this.revoking.has(key)) this.notifyProgress();
  }

  /** The application will process nothing more of a revoked partition in the batch it holds. */
  _settleRevoking(topic: string, partition: number): void {
    const r = this.revoking.get(tpKey(topic, partition));
    if (r && !r.settled) {
      r.settled = true;
      this.notifyProgress();
    }
  }

  /** Rewinds partitions to the first of these (unprocessed) messages, so they are delivered again. */
  _rewind(unprocessed: readonly Message[]): void {
    if (this.deliveryMode !== 'at-least-once') return;
    const first = new Map<string, Message>();
    for (const m of unprocessed) {
      const k = tpKey(m.topic, m.partition);
      const f = first.get(k);
      if (!f || m.offset < f.offset) first.set(k, m);
    }
    for (const m of first.values()) {
      if (this._isActive(m.topic, m.partition)) this.seek(m.topic, m.partition, m.offset);
      else this._settleRevoking(m.topic, m.partition);
    }
  }

  /** The application finished (or abandoned, after _rewind) the batch it holds. */
  _batchDone(): void {
    this.holding = false;
    this.notifyProgress();
  }

  // ---- poll ----

  /** Ownership is checked once per run of messages from one partition, not per message (hot path). */
  private someInactive(msgs: Message[]): boolean {
    let topic: string | null = null;
    let partition = -1;
    for (const m of msgs) {
      if (m.partition === partition && m.topic === topic) continue;
      topic = m.topic;
      partition = m.partition;
      if (!this._isActive(topic, partition)) return true;
    }
    return false;
  }

  private async pollInternal(timeoutMs: number, markHeld: boolean): Promise<Message[]> {
    this.assertOpen();
    if (this.polling) throw new Error('poll() is already running: call it again after it resolves');
    this.polling = true;
    if (this.pollTimer) clearTimeout(this.pollTimer);
    this.pollTimer = null;
    try {
      this.ensureJoined();
      if (markHeld) this.markHeldConsumed();
      else this._batchDone();
      this.throwPendingError();
      const deadline = Date.now() + timeoutMs;
      if (this.engine.assignment().length === 0) {
        await this.waitForAssignment(timeoutMs);
        this.throwPendingError();
        if (this.closed || this.engine.assignment().length === 0) return [];
      }
      let msgs = await this.engine.poll(Math.max(0, deadline - Date.now()));
      if (this.closed) return [];
      if (this.someInactive(msgs)) msgs = this.dropInactive(msgs);
      if (msgs.length > 0 && this.deliveryMode === 'at-most-once') await this.commitBeforeReturn(msgs);
      for (const m of msgs) this.noteDelivered(m);
      this.holding = msgs.length > 0;
      return msgs;
    } finally {
      this.polling = false;
      if (!this.closed) {
        this.pollTimer = setTimeout(() => this.onPollTimeout(), this.maxPollIntervalMs);
        this.pollTimer.unref?.();
      }
    }
  }

  /**
   * The messages of active partitions. The engine's position already moved past the others:
   * where it still reads such a partition (its assignment is not complete yet), it is rewound
   * to the first dropped record, so that record is fetched and handed out again later rather
   * than skipped. Revoked and lost partitions left the engine; their commits use `delivered`.
   */
  private dropInactive(msgs: Message[]): Message[] {
    const kept: Message[] = [];
    const firstDropped = new Map<string, Message>();
    for (const m of msgs) {
      if (this._isActive(m.topic, m.partition)) kept.push(m);
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

  /** at-most-once: commit the batch's end offsets, or rewind and throw. */
  private async commitBeforeReturn(msgs: Message[]): Promise<void> {
    const first = new Map<string, Message>();
    const next = new Map<string, TopicPartitionOffsetCommit>();
    for (const m of msgs) {
      const k = tpKey(m.topic, m.partition);
      if (!first.has(k)) first.set(k, m);
      next.set(k, { topic: m.topic, partition: m.partition, offset: m.offset + 1 });
    }
    try {
      await this.committer.commitSync([...next.values()]);
    } catch (e) {
      for (const m of first.values()) {
        if (this._isActive(m.topic, m.partition)) this.seek(m.topic, m.partition, m.offset);
      }
      throw e;
    }
    for (const [k, o] of next) if (this.consumed.has(k)) this.consumed.set(k, o.offset);
  }

  private ensureJoined(): void {
    if (this.started && !this.leftForPollTimeout) return;
    if (!this.subscription) throw new Error('no subscription: pass topics or topicPattern, or call subscribe()');
    this.started = true;
    this.leftForPollTimeout = false;
    this.membership.start();
    if (this.autoCommit && this.deliveryMode === 'at-least-once') {
      this.committer.startAuto(this.autoCommitIntervalMs, () => this.consumedOffsets(), () => {
        // A failed auto-commit is retried on the next interval; fencing is handled by the membership.
      });
    }
  }

  /** Kafka's max.poll.interval.ms: the application is stuck; let its partitions move. */
  private onPollTimeout(): void {
    this.pollTimer = null;
    if (this.closed || this.polling || !this.started) return;
    this.leftForPollTimeout = true;
    this.committer.stopAuto();
    void this.membership.leave();
  }

  /** at-least-once: everything poll() returned so far is consumed. */
  private markHeldConsumed(): void {
    if (this.deliveryMode === 'at-least-once') {
      // What was handed out, not the engine's position: that may have run ahead of delivery.
      for (const [k, d] of this.delivered) if (this.consumed.has(k) && !this.revoking.has(k)) this.setConsumed(k, d.next);
      for (const [k, r] of this.revoking) if (!r.settled && this.consumed.has(k)) this.setConsumed(k, r.position);
    }
    this._batchDone();
  }

  /** The only place at-least-once progress is recorded; asserts it stays within what was delivered. */
  private setConsumed(k: string, next: number): void {
    const d = this.delivered.get(k);
    if (d && next > d.max) {
      throw new Error(`at-least-once violated: ${k.replace('\u0000', '/')} would be committed up to ${next}, past the last record delivered (next ${d.max})`);
    }
    this.consumed.set(k, next);
  }

  private noteDelivered(m: Message): void {
    const d = this.delivered.get(tpKey(m.topic, m.partition));
    if (!d) return;
    d.next = m.offset + 1;
    if (d.next > d.max) d.max = d.next;
  }

  /** An explicit seek moves what counts as handed out (a seek forward skips records on purpose). */
  private noteSeek(topic: string, partition: number, offset: number): void {
    const d = this.delivered.get(tpKey(topic, partition));
    if (!d) return;
    d.next = offset;
    if (offset > d.max) d.max = offset;
  }

  private throwPendingError(): void {
    const e = this.pendingError;
    if (e) {
      this.pendingError = null;
      throw e;
    }
  }

  private fail(e: Error): void {
    this.pendingError = e;
    this.wakeAssignment();
  }

  private waitForAssignment(timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, timeoutMs);
      const self = this;
      function done(): void {
        clearTimeout(timer);
        if (self.assignmentWaiter === done) self.assignmentWaiter = null;
        resolve();
      }
      this.assignmentWaiter = done;
    });
  }

  private wakeAssignment(): void {
    const w = this.assignmentWaiter;
    this.assignmentWaiter = null;
    w?.();
  }

  private notifyProgress(): void {
    if (this.progressWaiters.length === 0) return;
    const still: typeof this.progressWaiters = [];
    for (const w of this.progressWaiters) (w.done() ? w.resolve() : still.push(w));
    this.progressWaiters = still;
  }

  // ---- membership hooks ----

  private async onAssign(coordinator: GroupTransport, partitions: TopicPartition[]): Promise<void> {
    const gen = this.lossGeneration;
    const res = await coordinator.offsetFetch({
      groupId: this.groupId,
      memberId: this.membership.memberId,
      memberEpoch: this.membership.memberEpoch,
      topics: toTopicPartitions(partitions) as TopicPartitions[],
    });
    let code = res.errorCode;
    const committed = new Map<string, number>();
    for (const t of res.topics) {
      for (const p of t.partitions) {
        if (p.errorCode !== ErrorCode.NONE && code === ErrorCode.NONE) code = p.errorCode;
        committed.set(tpKey(t.topic, p.partition), p.offset);
      }
    }
    if (code !== ErrorCode.NONE) {
      // Fenced: the membership rejoins. Anything else (STALE epoch, coordinator moved) is retried.
      throw new SluiceError(code as ErrorCode, res.errorMessage ?? `offset fetch for group ${this.groupId}`);
    }
    if (gen !== this.lossGeneration || this.closed) throw new SluiceError(ErrorCode.FENCED_MEMBER_EPOCH, 'lost while assigning');
    const list = partitions.map((tp) => {
      const o = committed.get(tpKey(tp.topic, tp.partition)) ?? -1;
      return o >= 0 ? { topic: tp.topic, partition: tp.partition, offset: o } : { topic: tp.topic, partition: tp.partition };
    });
    try {
      await this.engine.addPartitions(list);
    } catch (e) {
      if (e instanceof SluiceError && e.retriable) throw e;
      // Not retriable (autoOffsetReset 'none' without a committed offset, a deleted topic):
      // the partitions stay owned but unread; poll() reports why.
      this.fail(e as Error);
      return;
    }
    if (gen !== this.lossGeneration || this.closed) {
      this.engine.unassign(partitions);
      throw new SluiceError(ErrorCode.FENCED_MEMBER_EPOCH, 'lost while assigning');
    }
    for (const tp of partitions) {
      // Nothing of these partitions was fetched yet (addPartitions makes them fetchable
      // together, and this runs before any I/O): the position is the start offset.
      const start = this.engine.position(tp.topic, tp.partition);
      const k = tpKey(tp.topic, tp.partition);
      this.delivered.set(k, { next: start, max: start });
      this.consumed.set(k, start);
    }
    this.wakeAssignment();
  }

  private async onRevoke(partitions: TopicPartition[]): Promise<void> {
    const gen = this.lossGeneration;
    const entries: Revoking[] = [];
    for (const tp of partitions) {
      const k = tpKey(tp.topic, tp.partition);
      const position = this.delivered.get(k)?.next ?? this.consumed.get(k) ?? 0;
      const r: Revoking = { tp, position, settled: false };
      this.revoking.set(k, r);
      entries.push(r);
    }
    this.engine.unassign(partitions);
    try {
      if (this.deliveryMode === 'at-least-once') {
        const done = (): boolean =>
          !this.holding || gen !== this.lossGeneration || this.closed ||
          entries.every((r) => r.settled || (this.consumed.get(tpKey(r.tp.topic, r.tp.partition)) ?? r.position) >= r.position);
        if (!done()) await this.waitProgress(done, this.rebalanceTimeoutMs);
        if (gen !== this.lossGeneration) return;
        if (this.autoCommit) {
          const offsets: TopicPartitionOffsetCommit[] = [];
          for (const r of entries) {
            const o = this.consumed.get(tpKey(r.tp.topic, r.tp.partition));
            if (o !== undefined) offsets.push({ topic: r.tp.topic, partition: r.tp.partition, offset: o });
          }
          await this.committer.commitSync(this.committer.forwardOnly(offsets));
        }
      }
    } finally {
      if (gen === this.lossGeneration) this.forgetPartitions(partitions);
    }
  }

  private waitProgress(done: () => boolean, timeoutMs: number): Promise<void> {
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

  private onLose(partitions: TopicPartition[]): void {
    this.lossGeneration++;
    this.engine.unassign(partitions);
    this.forgetPartitions(partitions);
    // Revocations waiting for the application give up: the partitions are gone.
    const waiters = this.progressWaiters;
    this.progressWaiters = [];
    for (const w of waiters) w.resolve();
  }

  private forgetPartitions(partitions: TopicPartition[]): void {
    for (const tp of partitions) {
      const k = tpKey(tp.topic, tp.partition);
      this.revoking.delete(k);
      this.consumed.delete(k);
      this.delivered.delete(k);
    }
    this.committer.forget(partitions);
    this.runner?.forget(partitions);
  }

  private onChanged(e: AssignmentChange): void {
    this.wakeAssignment();
    if (!this.onAssignmentChange) return;
    try {
      this.onAssignmentChange(e);
    } catch {
      // The application's listener must not break the membership.
    }
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('consumer is closed');
  }
}

function namesSubscription(topics: string[]): Subscription {
  if (!Array.isArray(topics) || topics.some((t) => typeof t !== 'string' || t.length === 0)) throw new TypeError('topics must be an array of topic names');
  return { topics: [...new Set(topics)] };
}

function patternSubscription(pattern: string): Subscription {
  try {
    new RegExp(pattern);
  } catch (e) {
    throw new TypeError(`topicPattern ${JSON.stringify(pattern)} is not a regular expression: ${(e as Error).message}`);
  }
  return { pattern };
}

