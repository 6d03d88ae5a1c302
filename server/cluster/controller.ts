/**
 * The controller: one broker at a time, elected through the metadata store. It keeps every
 * partition led by a live in-sync replica: when a broker's registration disappears it moves
 * leadership of the partitions that broker led to another live ISR member (bumping the
 * leader epoch) and drops the dead broker from every ISR; when a broker comes back it gives
 * leaderless partitions whose ISR names it a leader again. Unclean election (a replica
 * outside the ISR) happens only for topics with unclean.leader.election.enable=true, and
 * loses the writes that replica lacks.
 *
 * Broker epochs (Kafka's, KIP-380): every registration has a new broker epoch, and each
 * partition state names the epoch of its leader's registration at election. A leader that
 * is live under a different epoch restarted (or lost and renewed its session) since it was
 * elected: it is a new incarnation that may lack what it wrote before the crash, and must
 * never resume at the old leaderEpoch. The controller treats it like a failed leader: another
 * in-sync replica takes over at leaderEpoch + 1 and the restarted broker leaves the ISR (it
 * rejoins after catching up); when it is the only in-sync replica it is elected again, at
 * leaderEpoch + 1.
 *
 * Reassignment (adding a broker, draining one): the new replicas join first and catch up,
 * throttled; once every target replica is in sync the controller drops the others, moving
 * leadership first if the leader is leaving.
 *
 * Every write is a compare-and-set on the partition epoch, fenced by this controller's epoch,
 * so a deposed controller's decision can never overwrite a newer one. Work is serialised:
 * one reconciliation pass at a time, re-run when events arrived meanwhile.
 */
import { ErrorCode, SluiceError } from '../../protocol/errors.ts';
import type { Logger } from '../logger.ts';
import { NO_LEADER, type ClusterMetadataStore, type PartitionState } from '../metadata/cluster-store.ts';
import { splitReplicationConfig } from './replication-config.ts';

export class Controller {
  private controllerEpoch = -1;
  private running = false;
  private again = false;
  private unwatch: (() => void) | null = null;
  private idleWaiters: Array<() => void> = [];

  constructor(
    private readonly brokerId: number,
    private readonly store: ClusterMetadataStore,
    /** Runs after each pass: creates broker-owned topics once enough brokers are live. */
    private readonly afterPass: () => Promise<void>,
    private readonly log: Logger,
  ) {}

  /** Resolves when no reconciliation pass is running or scheduled. */
  whenIdle(): Promise<void> {
    if (!this.running) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  get active(): boolean {
    return this.controllerEpoch >= 0;
  }

  onElected(controllerEpoch: number): void {
    this.controllerEpoch = controllerEpoch;
    this.log.info('elected controller', { brokerId: this.brokerId, controllerEpoch });
    this.unwatch = this.store.watch((e) => {
      if (e.kind === 'broker' || e.kind === 'partition' || e.kind === 'topic') this.schedule();
    });
    this.schedule();
  }

  onResigned(): void {
    this.log.info('no longer controller', { brokerId: this.brokerId, controllerEpoch: this.controllerEpoch });
    this.controllerEpoch = -1;
    this.unwatch?.();
    this.unwatch = null;
  }

  /**
   * AlterPartitionReassignments: validates the target and writes the first step. Throws
   * SluiceError; resolves once the store has the new state.
   */
  async reassign(topic: string, partition: number, target: number[] | null, throttleBytesPerSec: number): Promise<void> {
    if (!this.active) throw new SluiceError(ErrorCode.NOT_CONTROLLER, `broker ${this.brokerId} is not the controller`);
    const live = new Set(this.store.liveBrokers().map((b) => b.brokerId));
    if (target !== null) {
      if (target.length === 0 || new Set(target).size !== target.length) throw new SluiceError(ErrorCode.INVALID_REPLICATION_FACTOR, `target replicas ${JSON.stringify(target)} must be distinct and not empty`);
      const dead = target.filter((b) => !live.has(b));
      if (dead.length > 0) throw new SluiceError(ErrorCode.INVALID_REPLICATION_FACTOR, `target brokers ${dead.join(',')} are not live`);
    }
    for (let attempt = 0; attempt < 10; attempt++) {
      const state = this.store.partitionState(topic, partition);
      if (!state) throw new SluiceError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `${topic}/${partition}`);
      // Nothing to move or cancel: a metadata write (and a reconciliation pass) would change nothing.
      if (!state.targetReplicas && (target === null || sameOrder(target, state.replicas))) return;
      const next = startReassignment(state, target, Math.max(throttleBytesPerSec, 0));
      if (await this.store.compareAndSetPartitionState(topic, partition, state.partitionEpoch, next, { controllerEpoch: this.controllerEpoch })) {
        this.log.info(target ? 'reassignment started' : 'reassignment cancelled', { topic, partition, replicas: next.replicas.join(','), target: target?.join(',') ?? '' });
        this.schedule();
        return;
      }
    }
    throw new SluiceError(ErrorCode.REQUEST_TIMED_OUT, `${topic}/${partition} kept changing; try again`);
  }

  private schedule(): void {
    if (!this.active) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    void (async () => {
      try {
        do {
          this.again = false;
          await this.reconcile();
          await this.afterPass();
        } while (this.again && this.active);
      } catch (e) {
        this.log.error('controller pass failed', { error: e as Error });
        setTimeout(() => this.schedule(), 1000).unref();
      } finally {
        this.running = false;
        for (const w of this.idleWaiters.splice(0)) w();
      }
    })();
  }

  /** One pass over every partition; returns after writing whatever needed to change. */
  private async reconcile(): Promise<void> {
    const live = new Set(this.store.liveBrokers().map((b) => b.brokerId));
    const brokerEpochs = new Map<number, number>();
    for (const b of live) {
      const epoch = this.store.brokerEpoch(b);
      if (epoch !== undefined) brokerEpochs.set(b, epoch);
    }
    for (const topic of this.store.listTopics()) {
      const unclean = splitReplicationConfig(topic.configs).replication.uncleanLeaderElection;
      for (let p = 0; p < topic.partitions; p++) {
        const state = this.store.partitionState(topic.name, p);
        if (!state) continue;
        const next = decide(state, live, unclean, brokerEpochs) ?? completeReassignment(state, brokerEpochs);
        if (!next) continue;
        const ok = await this.store.compareAndSetPartitionState(topic.name, p, state.partitionEpoch, next, { controllerEpoch: this.controllerEpoch });
        if (ok) {
          this.log.info('partition state changed', { topic: topic.name, partition: p, leader: next.leader, leaderEpoch: next.leaderEpoch, leaderBrokerEpoch: next.leaderBrokerEpoch ?? 0, isr: next.isr.join(',') });
        } else {
          this.again = true; // someone (a leader's ISR change) moved first: look again
        }
      }
    }
  }
}

type NextState = Omit<PartitionState, 'partitionEpoch'>;

/** The leaderBrokerEpoch field for a state led by leader: kept as it was, or (elect) the leader's current one. */
function leaderStamp(state: PartitionState, leader: number, brokerEpochs: ReadonlyMap<number, number> | undefined, elect: boolean): Pick<NextState, 'leaderBrokerEpoch'> {
  const epoch = elect ? brokerEpochs?.get(leader) : state.leaderBrokerEpoch;
  return epoch === undefined ? {} : { leaderBrokerEpoch: epoch };
}

/**
 * Starts (target) or cancels (null) a reassignment: the partition gets the union of its
 * replicas and the target, and reconcile() finishes the move once the target is in sync.
 */
export function startReassignment(state: PartitionState, target: number[] | null, throttleBytesPerSec: number): NextState {
  if (target === null) {
    // Cancel: keep the original replicas that are still listed first, drop joiners not in sync.
    const replicas = state.replicas.filter((b) => !state.targetReplicas || !state.targetReplicas.includes(b) || state.isr.includes(b));
    return { leader: state.leader, leaderEpoch: state.leaderEpoch, ...leaderStamp(state, state.leader, undefined, false), replicas, isr: state.isr.filter((b) => replicas.includes(b)) };
  }
  const replicas = [...state.replicas, ...target.filter((b) => !state.replicas.includes(b))];
  return { leader: state.leader, leaderEpoch: state.leaderEpoch, ...leaderStamp(state, state.leader, undefined, false), replicas, isr: state.isr, targetReplicas: [...target], throttleBytesPerSec };
}

function sameOrder(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** Finishes a reassignment whose target replicas are all in sync; null while it is not there yet. */
export function completeReassignment(state: PartitionState, brokerEpochs?: ReadonlyMap<number, number>): NextState | null {
  const target = state.targetReplicas;
  if (!target || !target.every((b) => state.isr.includes(b))) return null;
  const isr = state.isr.filter((b) => target.includes(b));
  const leaderStays = target.includes(state.leader);
  const leader = leaderStays ? state.leader : target.find((b) => isr.includes(b))!;
  return {
    leader,
    leaderEpoch: leaderStays ? state.leaderEpoch : state.leaderEpoch + 1,
    ...leaderStamp(state, leader, brokerEpochs, !leaderStays),
    replicas: [...target],
    isr,
  };
}

/**
 * What a partition's state should become given the live brokers, or null when it is fine.
 * With brokerEpochs (live broker → broker epoch), a leader registered under another epoch
 * than the state names is a restarted incarnation and is replaced (see the file comment);
 * without, broker epochs are not checked.
 */
export function decide(state: PartitionState, live: ReadonlySet<number>, unclean: boolean, brokerEpochs?: ReadonlyMap<number, number>): NextState | null {
  const keep = state.targetReplicas ? { targetReplicas: state.targetReplicas, throttleBytesPerSec: state.throttleBytesPerSec ?? 0 } : {};
  const leaderLive = state.leader !== NO_LEADER && live.has(state.leader);
  const restarted = leaderLive && brokerEpochs !== undefined && brokerEpochs.get(state.leader) !== (state.leaderBrokerEpoch ?? 0);
  if (leaderLive && !restarted) {
    const isr = state.isr.filter((b) => live.has(b));
    if (isr.length === state.isr.length) return null;
    return { leader: state.leader, leaderEpoch: state.leaderEpoch, ...leaderStamp(state, state.leader, brokerEpochs, false), replicas: state.replicas, isr, ...keep };
  }
  const candidates = state.isr.filter((b) => b !== state.leader && live.has(b));
  // Prefer replica order (the preferred leader first) among in-sync candidates.
  const ordered = state.replicas.filter((b) => candidates.includes(b));
  if (ordered.length > 0) {
    // A restarted leader leaves the ISR too: its followers' progress is gone with the old
    // leader's memory, and it rejoins once it has caught up with the new leader.
    const isr = state.isr.filter((b) => live.has(b) && !(restarted && b === state.leader));
    return { leader: ordered[0]!, leaderEpoch: state.leaderEpoch + 1, ...leaderStamp(state, ordered[0]!, brokerEpochs, true), replicas: state.replicas, isr, ...keep };
  }
  if (restarted && state.isr.includes(state.leader)) {
    // The only live in-sync replica: it leads again, but at a newer epoch than any it served.
    return { leader: state.leader, leaderEpoch: state.leaderEpoch + 1, ...leaderStamp(state, state.leader, brokerEpochs, true), replicas: state.replicas, isr: state.isr.filter((b) => live.has(b)), ...keep };
  }
  if (state.leader !== NO_LEADER && state.isr.includes(state.leader) && live.has(state.leader)) return null;
  if (unclean) {
    const any = state.replicas.find((b) => live.has(b));
    if (any !== undefined) return { leader: any, leaderEpoch: state.leaderEpoch + 1, ...leaderStamp(state, any, brokerEpochs, true), replicas: state.replicas, isr: [any], ...keep };
  }
  if (state.leader === NO_LEADER) return null;
  // Offline: keep the ISR as it was so that one of its members can lead cleanly when it returns.
  return { leader: NO_LEADER, leaderEpoch: state.leaderEpoch + 1, replicas: state.replicas, isr: state.isr, ...keep };
}
