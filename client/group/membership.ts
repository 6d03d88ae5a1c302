/**
 * One member's side of a consumer group (KIP-848 style): the heartbeat loop and the
 * reconciliation of what the member owns with what the coordinator assigns.
 *
 * Invariants:
 * - `owned` is what this member consumes (or is still finishing). A partition leaves `owned`
 *   only after the revoke hook resolved (fetching stopped, processed offsets committed), and
 *   the next heartbeat, sent at once, reports the smaller set: the coordinator hands a
 *   partition to another member only after that, so no partition has two owners.
 * - Revocations are reconciled before additions, one step at a time, never two at once; a
 *   newer target from a heartbeat that arrives meanwhile is picked up by the same loop.
 * - `generation` increases whenever everything is lost at once (fenced, session expired on
 *   our side, left); a reconciliation step that started in an older generation has no effect.
 * - Heartbeats run on timers, independent of poll(); at most one is in flight.
 *
 * Errors: UNKNOWN_MEMBER_ID / FENCED_MEMBER_EPOCH → lose everything without committing and
 * rejoin with epoch 0 (same memberId). Coordinator moved / unreachable → retry with
 * exponential backoff (re-finding it). If no heartbeat succeeded for sessionTimeoutMs the
 * coordinator has surely expired the session: the member drops its partitions then too,
 * rather than keep consuming as a zombie. Other errors (invalid regex, assignor, timeouts)
 * are fatal: reported through hooks.fatal and the loop stops.
 */
import type { ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse, TopicPartitions } from '../../protocol/apis/consumer-group-heartbeat.ts';
import { ErrorCode, SluiceError, errorInfo } from '../../protocol/errors.ts';
import { isCoordinatorError, isFencedCode, type GroupTransport } from './coordinator.ts';

export interface TopicPartition { topic: string; partition: number }

export interface AssignmentChange {
  assigned: TopicPartition[];
  revoked: TopicPartition[];
  owned: TopicPartition[];
  memberEpoch: number;
  /** true when the revoked partitions were lost (fenced, left) rather than handed over cleanly. */
  lost: boolean;
}

export interface MembershipHooks {
  /** Stop fetching `partitions`, finish and commit them; the membership releases them when this resolves. */
  revoke(partitions: TopicPartition[]): Promise<void>;
  /** Start consuming newly assigned partitions. Retriable failures (coordinator moved) are retried. */
  assign(partitions: TopicPartition[]): Promise<void>;
  /** Drop partitions at once, WITHOUT committing (the member is a zombie or leaving). */
  lose(partitions: TopicPartition[]): void;
  /** After every step that changed the owned set. */
  changed(e: AssignmentChange): void;
  /** A non-retriable heartbeat error; the loop has stopped. */
  fatal(err: Error): void;
}

export type Subscription = { topics: string[] } | { pattern: string };

export interface MembershipOptions {
  groupId: string;
  memberId: string;
  subscription: Subscription;
  assignor: string;
  sessionTimeoutMs: number;
  rebalanceTimeoutMs: number;
  /** First retry delay after a failed heartbeat; doubles up to retryBackoffMaxMs. Default 100. */
  retryBackoffMs?: number;
  retryBackoffMaxMs?: number;
  /** Bound on the leave heartbeat. Default 5000. */
  leaveTimeoutMs?: number;
}

export type MemberState = 'unjoined' | 'joining' | 'reconciling' | 'stable' | 'failed';

const HEARTBEAT_INTERVAL_MS_DEFAULT = 1000;

export function tpKey(topic: string, partition: number): string {
  return `${topic}\u0000${partition}`;
}

export function toTopicPartitions(list: Iterable<TopicPartition>): TopicPartitions[] {
  const byTopic = new Map<string, number[]>();
  for (const tp of list) {
    let ps = byTopic.get(tp.topic);
    if (!ps) byTopic.set(tp.topic, (ps = []));
    ps.push(tp.partition);
  }
  return [...byTopic].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([topic, partitions]) => ({ topic, partitions: partitions.sort((a, b) => a - b) }));
}

function fromTopicPartitions(list: readonly TopicPartitions[]): Map<string, TopicPartition> {
  const out = new Map<string, TopicPartition>();
  for (const t of list) for (const p of t.partitions) out.set(tpKey(t.topic, p), { topic: t.topic, partition: p });
  return out;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export class GroupMembership {
  readonly groupId: string;
  private memberIdValue: string;
  private memberEpochValue = 0;
  private heartbeatIntervalMs = HEARTBEAT_INTERVAL_MS_DEFAULT;
  private stateValue: MemberState = 'unjoined';
  private subscription: Subscription;
  private readonly assignor: string;
  private readonly sessionTimeoutMs: number;
  private readonly rebalanceTimeoutMs: number;
  private readonly retryBackoffMs: number;
  private readonly retryBackoffMaxMs: number;
  private readonly leaveTimeoutMs: number;

  private readonly owned = new Map<string, TopicPartition>();
  private target: Map<string, TopicPartition> | null = null;
  private generation = 0;
  private active = false;
  private timer: NodeJS.Timeout | null = null;
  private inFlight: Promise<void> | null = null;
  private promptWanted = false;
  /** Send every field (joining). */
  private sendFull = true;
  private subscriptionDirty = false;
  private ownedDirty = true;
  private lastOkMs = 0;
  /** For reporting only: when a heartbeat last got NONE (null: never), and the last failure since. */
  private answeredAtMs: number | null = null;
  private lastFailureValue: Error | null = null;
  private failures = 0;
  private reconciling = false;

  constructor(private readonly transport: GroupTransport, private readonly hooks: MembershipHooks, opts: MembershipOptions) {
    this.groupId = opts.groupId;
    this.memberIdValue = opts.memberId;
    this.subscription = opts.subscription;
    this.assignor = opts.assignor;
    this.sessionTimeoutMs = opts.sessionTimeoutMs;
    this.rebalanceTimeoutMs = opts.rebalanceTimeoutMs;
    this.retryBackoffMs = opts.retryBackoffMs ?? 100;
    this.retryBackoffMaxMs = opts.retryBackoffMaxMs ?? 5000;
    this.leaveTimeoutMs = opts.leaveTimeoutMs ?? 5000;
  }

  get memberId(): string { return this.memberIdValue; }
  get memberEpoch(): number { return this.memberEpochValue; }
  get state(): MemberState { return this.stateValue; }
  /** True between start() and leave() (or a fatal error). */
  get isActive(): boolean { return this.active; }

  ownedPartitions(): TopicPartition[] {
    return [...this.owned.values()];
  }

  owns(topic: string, partition: number): boolean {
    return this.owned.has(tpKey(topic, partition));
  }

  /**
   * When the coordinator last answered a heartbeat without error (null: never) and the last
   * failure since (a connection error, COORDINATOR_NOT_AVAILABLE...; null when none). For
   * callers that want to give up on a group they cannot reach (sluice consume --group).
   */
  coordinatorStatus(): { lastOkMs: number | null; lastError: Error | null } {
    return { lastOkMs: this.answeredAtMs, lastError: this.lastFailureValue };
  }

  /** Joins (epoch 0) and keeps heartbeating until leave(). No-op while active. */
  start(): void {
    if (this.active) return;
    if (this.stateValue === 'failed') throw new Error('group membership failed; create a new consumer');
    this.active = true;
    this.memberEpochValue = 0;
    this.sendFull = true;
    this.ownedDirty = true;
    this.failures = 0;
    this.lastOkMs = Date.now();
    this.stateValue = 'joining';
    this.schedule(0);
  }

  /** Changes the subscription; sent with the next heartbeat, which is sent now. */
  setSubscription(s: Subscription): void {
    this.subscription = s;
    this.subscriptionDirty = true;
    this.requestHeartbeat();
  }

  /** Sends a heartbeat as soon as possible (after the one in flight). */
  requestHeartbeat(): void {
    if (!this.active) return;
    if (this.inFlight) this.promptWanted = true;
    else this.schedule(0);
  }

  /** Called when a commit says the member was fenced: same as a fenced heartbeat. */
  fenced(): void {
    if (!this.active) return;
    this.loseAll();
    this.schedule(0);
  }

  /**
   * Leaves the group: drops every partition WITHOUT committing (commit first if you want to),
   * then sends a heartbeat with epoch -1 (bounded by leaveTimeoutMs; failures are ignored:
   * the session then expires on the coordinator). start() joins again.
   */
  async leave(): Promise<void> {
    const wasActive = this.active;
    this.active = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.dropAll(true);
    if (this.inFlight) await this.inFlight;
    if (this.stateValue !== 'failed') this.stateValue = 'unjoined';
    if (!wasActive || this.memberEpochValue <= 0) {
      this.memberEpochValue = 0;
      return;
    }
    const req = this.request(-1, true);
    this.memberEpochValue = 0;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.transport.heartbeat(req).catch(() => undefined),
      new Promise<void>((r) => { timer = setTimeout(r, this.leaveTimeoutMs); }),
    ]);
    clearTimeout(timer);
  }

  // ---- heartbeat loop ----

  private schedule(delayMs: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (!this.active) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      if (!this.inFlight) this.inFlight = this.beat().finally(() => { this.inFlight = null; });
    }, delayMs);
  }

  private backoffMs(): number {
    const base = Math.min(this.retryBackoffMaxMs, this.retryBackoffMs * 2 ** Math.min(this.failures - 1, 20));
    return Math.round(base * (0.8 + Math.random() * 0.4));
  }

  private request(memberEpoch: number, full: boolean): ConsumerGroupHeartbeatRequest {
    const sub = full || this.subscriptionDirty;
    const names = 'topics' in this.subscription ? this.subscription.topics : null;
    const regex = 'pattern' in this.subscription ? this.subscription.pattern : null;
    return {
      groupId: this.groupId,
      memberId: this.memberIdValue,
      memberEpoch,
      rebalanceTimeoutMs: full ? this.rebalanceTimeoutMs : null,
      sessionTimeoutMs: full ? this.sessionTimeoutMs : null,
      // Switching to a pattern sends an empty name list, so the names do not linger.
      subscribedTopicNames: sub ? (names ?? []) : null,
      subscribedTopicRegex: sub ? regex : null,
      assignor: full ? this.assignor : null,
      ownedPartitions: full || this.ownedDirty ? toTopicPartitions(this.owned.values()) : null,
    };
  }

  private async beat(): Promise<void> {
    if (!this.active) return;
    if (this.memberEpochValue > 0 && Date.now() - this.lastOkMs > this.sessionTimeoutMs) {
      // The coordinator has expired our session by now; whatever we own is someone else's.
      this.loseAll();
    }
    this.promptWanted = false;
    const full = this.sendFull;
    const subDirty = this.subscriptionDirty;
    const ownedDirty = this.ownedDirty;
    const req = this.request(this.memberEpochValue, full);
    this.subscriptionDirty = false;
    this.ownedDirty = false;
    const gen = this.generation;
    let res: ConsumerGroupHeartbeatResponse;
    try {
      res = await this.transport.heartbeat(req);
    } catch (e) {
      this.lastFailureValue = e as Error;
      if (gen === this.generation) {
        this.ownedDirty ||= ownedDirty;
        this.subscriptionDirty ||= subDirty;
      }
      if (!this.active) return;
      this.failures++;
      if (!isCoordinatorError(e) && !(e instanceof SluiceError && e.retriable)) {
        // Unexpected (a bug or an unsupported broker): keep trying, but slowly.
        this.failures = Math.max(this.failures, 5);
      }
      this.schedule(this.backoffMs());
      return;
    }
    if (gen !== this.generation) {
      // Everything was lost while this was in flight; its answer is about the old membership.
      if (this.active) this.schedule(0);
      return;
    }
    if (res.errorCode === ErrorCode.NONE) {
      this.failures = 0;
      this.lastOkMs = Date.now();
      this.answeredAtMs = this.lastOkMs;
      this.lastFailureValue = null;
      if (res.memberId) this.memberIdValue = res.memberId;
      this.memberEpochValue = res.memberEpoch;
      if (res.heartbeatIntervalMs > 0) this.heartbeatIntervalMs = res.heartbeatIntervalMs;
      if (full) this.sendFull = false;
      if (!this.active) return; // leave() is waiting for us and sends the leave itself
      if (res.assignment) {
        this.target = fromTopicPartitions(res.assignment);
        void this.reconcile();
      }
      if (this.stateValue === 'joining') this.stateValue = 'reconciling';
      this.schedule(this.promptWanted || this.ownedDirty || this.subscriptionDirty ? 0 : this.heartbeatIntervalMs);
      return;
    }
    this.ownedDirty ||= ownedDirty;
    this.subscriptionDirty ||= subDirty;
    if (!this.active) return;
    if (isFencedCode(res.errorCode)) {
      this.loseAll();
      this.failures++;
      // The first rejoin is immediate; repeated fencing backs off.
      this.schedule(this.failures > 1 ? this.backoffMs() : 0);
      return;
    }
    const info = errorInfo(res.errorCode);
    if (info?.retriable) {
      this.lastFailureValue = new SluiceError(res.errorCode as ErrorCode, res.errorMessage ?? `heartbeat of group ${this.groupId}`);
      this.failures++;
      this.schedule(this.backoffMs());
      return;
    }
    this.active = false;
    this.stateValue = 'failed';
    this.dropAll(true);
    this.hooks.fatal(new SluiceError(res.errorCode as ErrorCode, res.errorMessage ?? `heartbeat of group ${this.groupId}`));
  }

  /** Fenced or expired: drop everything without committing and rejoin with epoch 0. */
  private loseAll(): void {
    this.dropAll(true);
    this.memberEpochValue = 0;
    this.sendFull = true;
    this.ownedDirty = true;
    this.stateValue = 'joining';
    this.lastOkMs = Date.now();
  }

  private dropAll(lost: boolean): void {
    this.generation++;
    this.target = null;
    const dropped = [...this.owned.values()];
    this.owned.clear();
    if (dropped.length === 0) return;
    this.hooks.lose(dropped);
    this.hooks.changed({ assigned: [], revoked: dropped, owned: [], memberEpoch: this.memberEpochValue, lost });
  }

  // ---- reconciliation ----

  private async reconcile(): Promise<void> {
    if (this.reconciling) return; // the running loop reads the newest target
    this.reconciling = true;
    const gen = this.generation;
    try {
      while (this.active && gen === this.generation && this.target) {
        const target = this.target;
        const revoked = [...this.owned.entries()].filter(([k]) => !target.has(k)).map(([, tp]) => tp);
        const added = [...target.entries()].filter(([k]) => !this.owned.has(k)).map(([, tp]) => tp);
        if (revoked.length === 0 && added.length === 0) {
          this.stateValue = 'stable';
          return;
        }
        this.stateValue = 'reconciling';
        if (revoked.length > 0) {
          // A failure other than fencing (a commit that could not be made): release anyway.
          // The uncommitted messages are redelivered to the next owner: at-least-once holds.
          if ((await this.runHook(gen, () => this.hooks.revoke(revoked))) === 'stop') return;
          for (const tp of revoked) this.owned.delete(tpKey(tp.topic, tp.partition));
          this.ownedDirty = true;
          this.hooks.changed({ assigned: [], revoked, owned: this.ownedPartitions(), memberEpoch: this.memberEpochValue, lost: false });
          this.requestHeartbeat();
          // Let that heartbeat leave (reporting the release) before taking new partitions.
          await sleep(0);
          continue; // the target may have moved while we waited
        }
        const outcome = await this.runHook(gen, () => this.hooks.assign(added));
        if (outcome === 'stop') return;
        if (outcome === 'failed') {
          this.failures++;
          await sleep(this.backoffMs());
          continue;
        }
        for (const tp of added) this.owned.set(tpKey(tp.topic, tp.partition), tp);
        this.ownedDirty = true;
        this.hooks.changed({ assigned: added, revoked: [], owned: this.ownedPartitions(), memberEpoch: this.memberEpochValue, lost: false });
        this.requestHeartbeat();
      }
    } finally {
      this.reconciling = false;
      // A target that arrived after a loss ended this loop early still needs reconciling.
      if (this.active && gen !== this.generation && this.target) queueMicrotask(() => void this.reconcile());
    }
  }

  /**
   * Runs a revoke/assign hook of reconciliation step `gen`. 'stop': the step is moot (a loss
   * started a newer generation meanwhile, or the hook found the member fenced, which is then
   * handled); 'failed': it threw anything else; 'ok'.
   */
  private async runHook(gen: number, hook: () => Promise<void>): Promise<'ok' | 'failed' | 'stop'> {
    try {
      await hook();
    } catch (e) {
      if (gen !== this.generation) return 'stop';
      if (e instanceof SluiceError && isFencedCode(e.code)) {
        this.fenced();
        return 'stop';
      }
      return 'failed';
    }
    return gen !== this.generation ? 'stop' : 'ok';
  }
}
