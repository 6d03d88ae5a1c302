/**
 * GroupConsumer: a consumer in a consumer group. The coordinator (server-side assignors,
 * KIP-848 style) decides which partitions this member reads; the member reads them with the
 * same fetch engine as the manual Consumer (pipelined fetches, CRC checks, offset resets) and
 * commits its progress to the group.
 *
 * Pieces: GroupMembership (membership.ts) runs the heartbeat and reconciles the
 * assignment through the hooks below; OffsetCommitter (offset-committer.ts) commits;
 * DeliverySession (delivery-session.ts) tracks what was handed out and consumed per
 * partition; GroupRunner (runner.ts) is the optional run loop with retry topics and a DLQ,
 * recording delivery through the same session. The fetch engine (../fetch-engine.ts) reads.
 * All of them share ONE Cluster (metadata cache): the coordinator uses it, the engine and the
 * runner's producer and admin use lanes of it (connections of their own, see cluster.ts).
 *
 * Delivery modes (option `delivery`; `deliveryMode` is the older name of the same option):
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
 * - 'exactly-once': for consume-transform-produce. Reads read_committed (isolation) and
 *   commits nothing itself (no auto-commit): the application commits the offsets in its
 *   producer's transaction, with the records it produced from them:
 *     const msgs = await consumer.poll();
 *     await producer.transaction(async (tx) => {
 *       for (const m of msgs) await tx.send({ topic: 'out', value: transform(m) });
 *       await tx.sendOffsets(consumer, consumer.pendingOffsets());
 *     });
 *   pendingOffsets() are the offsets after everything poll() handed out; groupMetadata()
 *   identifies the member to the coordinator, which refuses the offsets of a member that
 *   was fenced (KIP-447). A revoked partition is released only once the application calls
 *   poll() again (its transaction is done) or after rebalanceTimeoutMs. A partition whose
 *   offsets are in a transaction not yet ended is not read until it ends: its OffsetFetch
 *   asks requireStable and UNSTABLE_OFFSET_COMMIT is retried with backoff. If the member
 *   loses its partitions (fenced, session expired) while the application holds records,
 *   pendingOffsets() and groupMetadata() throw FENCED_MEMBER_EPOCH, so the transaction
 *   aborts; the next poll() starts over from the committed offsets. After a transaction
 *   aborted for any other reason the positions are past what was committed: close the
 *   consumer (and producer) and start again, which resumes from the committed offsets.
 *
 * Invariants:
 * - Messages of a partition are returned only while this member owns it and it is not being
 *   revoked: revocation stops fetching at once.
 * - A revoked partition is released (reported to the coordinator) only after the messages
 *   the application holds of it were consumed (or the rebalance timeout passed), and, with
 *   auto-commit in at-least-once mode, after the consumed offset was committed.
 * - A lost partition (fenced, session expired, left after maxPollIntervalMs) is dropped at
 *   once WITHOUT committing: this member is a zombie and its commits would be refused.
 * - At-least-once commits only cover delivered records (DeliverySession: `consumed` never
 *   passes `delivered`, checked on every update). A record the engine returned but poll()
 *   does not hand out (its partition is not active yet or any more) rewinds the engine to it
 *   when the engine still reads the partition.
 * - One poll() at a time.
 */
import { randomUUID } from 'node:crypto';
import type { TopicPartitions } from '../../protocol/apis/consumer-group-heartbeat.ts';
import { ErrorCode, SluiceError } from '../../protocol/errors.ts';
import { Cluster } from '../cluster.ts';
import type { AutoOffsetReset, ConsumerOptions, IsolationLevel, Message } from '../consumer.ts';
import { FetchEngine, resolveFetchSettings } from '../fetch-engine.ts';
import { WakeSignal } from '../wake-signal.ts';
import { CoordinatorClient, type GroupTransport } from './coordinator.ts';
import { DeliverySession, type DeliveryMode } from './delivery-session.ts';
import { GroupMembership, toTopicPartitions, tpKey, type AssignmentChange, type Subscription, type TopicPartition } from './membership.ts';
import { GroupRunner, type RunOptions } from './runner.ts';
import { OffsetCommitter, type CommitCallback, type TopicPartitionOffsetCommit } from './offset-committer.ts';

export type { DeliveryMode } from './delivery-session.ts';
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
  /** Commit consumed offsets automatically (interval, revocation, close). Default true; false (and only false) with exactly-once. */
  autoCommit?: boolean;
  autoCommitIntervalMs?: number;
  /** Where to start a partition the group has no committed offset for. Default 'latest'. */
  autoOffsetReset?: AutoOffsetReset;
  /** 'at-least-once' (default), 'at-most-once' or 'exactly-once': see the file comment. */
  delivery?: DeliveryMode;
  /** The older name of `delivery` (give one of them, or the same value for both). */
  deliveryMode?: DeliveryMode;
  /** Default 'read_uncommitted', 'read_committed' with exactly-once (which requires it). */
  isolation?: IsolationLevel;
  /** Called after every change of the owned partitions (awaited errors are ignored). */
  onAssignmentChange?: (e: AssignmentChange) => void;
  /** The member id; default a random UUID, kept for the consumer's lifetime. */
  memberId?: string;
  /** Replaces the network coordinator (tests). */
  transport?: GroupTransport;
}

const SESSION_TIMEOUT_MS_MIN = 1000;
const SESSION_TIMEOUT_MS_MAX = 300_000;

function positiveInt(v: number, name: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (!Number.isSafeInteger(v) || v < min || v > max) throw new TypeError(`${name} must be an integer in [${min}, ${max}], not ${v}`);
  return v;
}

/** The member as the group coordinator knows it: what a transaction's offsets commit carries (KIP-447). */
export interface ConsumerGroupMetadata {
  groupId: string;
  memberId: string;
  memberEpoch: number;
}

const DELIVERY_MODES: readonly DeliveryMode[] = ['at-least-once', 'at-most-once', 'exactly-once'];

export class GroupConsumer {
  readonly groupId: string;
  readonly delivery: DeliveryMode;
  /** The same as `delivery` (its older name). */
  readonly deliveryMode: DeliveryMode;
  readonly isolation: IsolationLevel;
  /** Bootstrap and client id, for helpers (the runner's producer and admin). */
  readonly bootstrap: string | string[];
  readonly clientId: string;
  private readonly engine: FetchEngine;
  /** The member's one metadata cache; the coordinator's connections (the engine has a lane). */
  private readonly cluster: Cluster;
  private readonly engineCluster: Cluster;
  private readonly session: DeliverySession;
  private readonly membership: GroupMembership;
  private readonly committer: OffsetCommitter;
  private readonly autoCommit: boolean;
  private readonly autoCommitIntervalMs: number;
  private readonly maxPollIntervalMs: number;
  private readonly rebalanceTimeoutMs: number;
  private readonly maxWaitMs: number;
  private readonly onAssignmentChange: ((e: AssignmentChange) => void) | undefined;
  private subscription: Subscription | null;

  /** Wakes a poll() waiting for partitions (assignment changed, failure, close). */
  private readonly assignmentChanged = new WakeSignal();
  private lossGeneration = 0;
  /** lossGeneration when poll() last handed out records: a loss since means they may be someone else's now. */
  private handedOutLossGeneration = 0;
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
    if (options.delivery !== undefined && options.deliveryMode !== undefined && options.delivery !== options.deliveryMode) {
      throw new TypeError(`delivery ${String(options.delivery)} and deliveryMode ${String(options.deliveryMode)} disagree: give one of them`);
    }
    this.delivery = this.deliveryMode = options.delivery ?? options.deliveryMode ?? 'at-least-once';
    if (!DELIVERY_MODES.includes(this.delivery)) throw new TypeError(`delivery must be 'at-least-once', 'at-most-once' or 'exactly-once', not ${String(this.delivery)}`);
    const exactlyOnce = this.delivery === 'exactly-once';
    this.isolation = options.isolation ?? (exactlyOnce ? 'read_committed' : 'read_uncommitted');
    if (exactlyOnce && this.isolation !== 'read_committed') throw new TypeError(`delivery 'exactly-once' reads read_committed, not ${String(this.isolation)}: aborted records would be processed`);
    if (exactlyOnce && options.autoCommit === true) throw new TypeError("delivery 'exactly-once' commits offsets in the producer's transaction (tx.sendOffsets), not by autoCommit");
    this.autoCommit = options.autoCommit ?? !exactlyOnce;
    this.autoCommitIntervalMs = positiveInt(options.autoCommitIntervalMs ?? 5000, 'autoCommitIntervalMs', 1);
    this.maxPollIntervalMs = positiveInt(options.maxPollIntervalMs ?? 300_000, 'maxPollIntervalMs', 1);
    const sessionTimeoutMs = positiveInt(options.sessionTimeoutMs ?? 10_000, 'sessionTimeoutMs', SESSION_TIMEOUT_MS_MIN, SESSION_TIMEOUT_MS_MAX);
    this.rebalanceTimeoutMs = positiveInt(options.rebalanceTimeoutMs ?? 30_000, 'rebalanceTimeoutMs', 1);
    this.maxWaitMs = options.maxWaitMs ?? 500;
    this.onAssignmentChange = options.onAssignmentChange;
    this.subscription = options.topicPattern !== undefined ? patternSubscription(options.topicPattern) : options.topics ? namesSubscription(options.topics) : null;
    const { assignor, transport, memberId } = options;
    const fetchSettings = resolveFetchSettings({ ...options, autoOffsetReset: options.autoOffsetReset ?? 'latest', isolation: this.isolation });
    const requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
    const connectTimeout = options.connectTimeoutMs !== undefined ? { connectTimeoutMs: options.connectTimeoutMs } : {};
    this.cluster = new Cluster({ bootstrap: options.bootstrap, clientId: this.clientId, requestTimeoutMs, ...connectTimeout, tls: options.tls, sasl: options.sasl });
    // Fetches get connections of their own: a parked Fetch would delay heartbeats (SPEC 5.1).
    this.engineCluster = this.cluster.lane({ clientId: this.clientId, requestTimeoutMs: fetchSettings.requestTimeoutMs, ...connectTimeout });
    this.engine = new FetchEngine(this.engineCluster, fetchSettings);
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
    this.session = new DeliverySession(this.engine, this.deliveryMode, (topic, partition) => this.membership.owns(topic, partition));
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

  /**
   * The member as the coordinator knows it now, for a transaction's offsets
   * (tx.sendOffsets(consumer, offsets)): the coordinator refuses them when this member was
   * fenced or its epoch is stale, so a zombie cannot commit (KIP-447).
   */
  groupMetadata(): ConsumerGroupMetadata {
    this.assertNotLostSinceHandOut();
    return { groupId: this.groupId, memberId: this.membership.memberId, memberEpoch: this.membership.memberEpoch };
  }

  /**
   * The offsets to commit for everything poll() has handed out (and the transaction markers
   * and aborted records it passed), per owned partition: the next offset to read. With
   * exactly-once delivery, commit them in the transaction that holds what was produced from
   * those messages: `await tx.sendOffsets(consumer, consumer.pendingOffsets())`.
   */
  pendingOffsets(): TopicPartitionOffsetCommit[] {
    this.assertNotLostSinceHandOut();
    return this.session.deliveredOffsets(this.membership.ownedPartitions());
  }

  /**
   * pendingOffsets() and groupMetadata() refuse while the records poll() handed out belong to
   * partitions this member has lost since (fenced, session expired): a transaction holding
   * what was produced from them must abort, or another member processes them again and both
   * outputs commit. A loss drops every partition, so after the abort the next poll() goes on
   * from the committed offsets; nothing else is needed.
   */
  private assertNotLostSinceHandOut(): void {
    if (this.lossGeneration !== this.handedOutLossGeneration) {
      throw new SluiceError(ErrorCode.FENCED_MEMBER_EPOCH, `group ${this.groupId}: this member lost its partitions since poll() handed out the records in hand; abort the transaction and poll() again`);
    }
  }

  /**
   * The end of what this member reads of an owned partition as of the last Fetch: the last
   * stable offset under read_committed, else the high watermark (-1 before the first Fetch).
   * The lag is endOffset() - position().
   */
  endOffset(topic: string, partition: number): number {
    return this.engine.endOffset(topic, partition);
  }

  /** When the coordinator last answered a heartbeat (null: never) and the last failure since. */
  coordinatorStatus(): { lastOkMs: number | null; lastError: Error | null } {
    return this.membership.coordinatorStatus();
  }

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
          if (!this.session.isActive(m.topic, m.partition)) {
            this.session.settleRevoking(m.topic, m.partition);
            continue;
          }
          yield m;
          this.session.markConsumed(m.topic, m.partition, m.offset + 1);
        }
      } finally {
        if (i < batch.length) {
          this.session.rewind(batch.slice(i));
          this.session.batchDone();
        } else {
          // The loop asked for the next message after the last one: the whole batch is
          // consumed, including the markers and aborted records the engine passed after it.
          this.session.markHeldConsumed();
        }
      }
    }
  }

  /** Commits the consumed offsets of owned partitions now and waits until they are durable. */
  async commit(): Promise<void> {
    this.assertOpen();
    this.session.markHeldConsumed();
    await this.committer.commitSync(this.consumedOffsets());
  }

  /** As commit() without waiting; the callback (optional) gets the outcome. Never rejects. */
  commitAsync(cb?: CommitCallback): void {
    this.assertOpen();
    this.session.markHeldConsumed();
    this.committer.commitAsync(this.consumedOffsets(), cb);
  }

  /** Commits exactly these offsets (the NEXT offset to read, i.e. last processed + 1) and waits. */
  async commitOffsets(offsets: readonly TopicPartitionOffsetCommit[]): Promise<void> {
    this.assertOpen();
    await this.committer.commitSync(offsets);
  }

  /** The consumed offsets that a commit would send now. */
  consumedOffsets(): TopicPartitionOffsetCommit[] {
    return this.session.consumedOffsets(this.membership.ownedPartitions());
  }

  /** Moves the fetch position of an owned partition (the next poll() starts there). */
  seek(topic: string, partition: number, offset: number): void {
    this.session.seek(topic, partition, offset);
  }

  /** Offset of the next message poll() returns for an owned partition. */
  position(topic: string, partition: number): number {
    return this.engine.position(topic, partition);
  }

  /** Stops returning (and fetching) a partition until resume(); its position stays. */
  pause(topic: string, partition: number): void {
    this.session.pause(topic, partition);
  }

  resume(topic: string, partition: number): void {
    this.session.resume(topic, partition);
  }

  /**
   * Runs a processing loop until stop() or close(): see GroupRunner (runner.ts) for
   * handler failures, retry topics and the dead-letter topic. Resolves when stopped.
   * Not with delivery 'exactly-once' (throws): see the file comment for that loop.
   */
  async run(options: RunOptions): Promise<void> {
    this.assertOpen();
    if (this.runner) throw new Error('run() is already running');
    if (this.delivery === 'exactly-once') {
      // run() relies on auto-commit and republishes outside any transaction.
      throw new Error("run() does not do exactly-once: poll() and commit each batch's pendingOffsets() in a producer transaction (tx.sendOffsets)");
    }
    const runner = new GroupRunner(
      {
        session: this.session,
        poll: (timeoutMs) => this.pollInternal(timeoutMs ?? this.maxWaitMs, false),
        groupId: this.groupId,
        bootstrap: this.bootstrap,
        clientId: this.clientId,
        cluster: this.cluster,
        subscriptionOf: () => this.subscription,
        subscribe: (topics) => this.subscribe(topics),
      },
      options,
    );
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
    this.assignmentChanged.wake();
    this.engine.close();
    this.engineCluster.close();
    this.cluster.close();
  }

  // ---- poll ----

  private async pollInternal(timeoutMs: number, markHeld: boolean): Promise<Message[]> {
    this.assertOpen();
    if (this.polling) throw new Error('poll() is already running: call it again after it resolves');
    this.polling = true;
    if (this.pollTimer) clearTimeout(this.pollTimer);
    this.pollTimer = null;
    try {
      this.ensureJoined();
      if (markHeld) this.session.markHeldConsumed();
      else this.session.batchDone();
      // The records handed out before are done with; a loss before this matters to them only.
      this.handedOutLossGeneration = this.lossGeneration;
      this.throwPendingError();
      const deadline = Date.now() + timeoutMs;
      if (this.engine.assignment().length === 0) {
        await this.assignmentChanged.wait(timeoutMs);
        this.throwPendingError();
        if (this.closed || this.engine.assignment().length === 0) return [];
      }
      let msgs = await this.engine.poll(Math.max(0, deadline - Date.now()));
      if (this.closed) return [];
      const skipped = this.engine.skippedInLastPoll();
      msgs = this.session.keepActive(msgs);
      if (msgs.length > 0 && this.deliveryMode === 'at-most-once') await this.commitBeforeReturn(msgs);
      this.session.handOut(msgs);
      if (skipped.length > 0) this.session.passSkipped(skipped);
      this.handedOutLossGeneration = this.lossGeneration;
      return msgs;
    } finally {
      this.polling = false;
      if (!this.closed) {
        this.pollTimer = setTimeout(() => this.onPollTimeout(), this.maxPollIntervalMs);
        this.pollTimer.unref?.();
      }
    }
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
        if (this.session.isActive(m.topic, m.partition)) this.session.seek(m.topic, m.partition, m.offset);
      }
      throw e;
    }
    this.session.committedBeforeDelivery(next);
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

  private throwPendingError(): void {
    const e = this.pendingError;
    if (e) {
      this.pendingError = null;
      throw e;
    }
  }

  private fail(e: Error): void {
    this.pendingError = e;
    this.assignmentChanged.wake();
  }

  // ---- membership hooks ----

  private async onAssign(coordinator: GroupTransport, partitions: TopicPartition[]): Promise<void> {
    const gen = this.lossGeneration;
    const res = await coordinator.offsetFetch({
      groupId: this.groupId,
      memberId: this.membership.memberId,
      memberEpoch: this.membership.memberEpoch,
      topics: toTopicPartitions(partitions) as TopicPartitions[],
      // read_committed must not start from an offset an open transaction is about to replace.
      ...(this.isolation === 'read_committed' ? { requireStable: true } : {}),
    });
    let code = res.errorCode;
    const committed = new Map<string, number>();
    for (const t of res.topics) {
      for (const p of t.partitions) {
        if (p.errorCode !== ErrorCode.NONE && code === ErrorCode.NONE) code = p.errorCode;
        committed.set(tpKey(t.topic, p.partition), p.offset);
      }
    }
    if (code === ErrorCode.UNSTABLE_OFFSET_COMMIT) {
      // A transaction has sent offsets for one of these partitions and not ended yet. The
      // error is retriable: the membership retries this step after its backoff (re-reading
      // the target meanwhile, so a revocation is not held up), until the transaction ends
      // (committed, aborted, or aborted by its timeout on the broker).
      throw new SluiceError(code, `group ${this.groupId}: offsets of ${partitions.length} partition(s) are pending in an open transaction; retrying`);
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
    this.session.start(partitions);
    this.assignmentChanged.wake();
  }

  private async onRevoke(partitions: TopicPartition[]): Promise<void> {
    const gen = this.lossGeneration;
    const entries = this.session.beginRevoke(partitions);
    try {
      // exactly-once waits too: the application may be committing these partitions' offsets
      // in its transaction, and the next owner must start after them.
      if (this.deliveryMode !== 'at-most-once') {
        const done = (): boolean => gen !== this.lossGeneration || this.closed || this.session.revokedConsumed(entries);
        if (!done()) await this.session.waitProgress(done, this.rebalanceTimeoutMs);
        if (gen !== this.lossGeneration) return;
        if (this.autoCommit && this.deliveryMode === 'at-least-once') {
          const offsets = this.session.consumedOffsets(entries.map((r) => r.tp));
          await this.committer.commitSync(this.committer.forwardOnly(offsets));
        }
      }
    } finally {
      if (gen === this.lossGeneration) this.forgetPartitions(partitions);
    }
  }

  private onLose(partitions: TopicPartition[]): void {
    this.lossGeneration++;
    this.session.lose(partitions);
    this.forgetPartitions(partitions);
  }

  private forgetPartitions(partitions: TopicPartition[]): void {
    this.session.forget(partitions);
    this.committer.forget(partitions);
    this.runner?.forget(partitions);
  }

  private onChanged(e: AssignmentChange): void {
    this.assignmentChanged.wake();
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

