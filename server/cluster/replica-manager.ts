/**
 * This broker's role for every partition it holds a replica of, driven by the partition
 * states in the metadata store: leader (takes produce and fetch, tracks its followers, owns
 * the high watermark and proposes ISR changes) or follower (copies the leader's log through a
 * ReplicaFetcher).
 *
 * Invariants (leader side):
 * - The high watermark is the smallest log end offset among the in-sync replicas (the leader
 *   included); it never moves back. Consumers read below it only, so nothing a consumer was
 *   shown can be lost by a failover to an in-sync replica.
 * - A follower is in sync while it has fetched up to the leader's log end within
 *   replicaLagTimeMaxMs. The leader shrinks and expands the ISR by compare-and-set on the
 *   partition state (the epoch check makes a deposed leader's write fail), and acts on the
 *   new ISR only once the store has it.
 * - acks=all completes when the high watermark passes the batch, i.e. every ISR member has it;
 *   it is refused before appending when the ISR is smaller than min.insync.replicas.
 * - A follower whose fetch connection closed (its process died: kill -9 closes the socket at
 *   once) is dropped from the ISR right away instead of after replicaLagTimeMaxMs; one that
 *   stopped fetching with its connection open (paused, partitioned) after the lag time. Either
 *   way the shrink is in the store before the high watermark moves without it.
 * - Leadership needs the controller's word for THIS incarnation: this broker leads only while
 *   it is registered and the state's leaderBrokerEpoch is its own broker epoch. Before its
 *   registration (a restart) it takes no role at all: no produce as leader at an old epoch, no
 *   ISR proposals, no fetching (activate() starts it).
 * On a single broker every partition has one replica: the leader is the ISR, and the high
 * watermark follows the log end as before.
 * The per-partition state (role, followers' progress, high watermark and its waiters) lives on
 * the Partition objects (partition/partition.ts) the topic registry hands over; this class
 * decides the roles and the ISR, across partitions.
 */
import type { Logger } from '../logger.ts';
import type { ClusterMetadataStore, PartitionState } from '../metadata/cluster-store.ts';
import type { Partition, ReplicaListener } from '../partition/partition.ts';
import type { ReplicaFetchers } from './replica-fetchers.ts';

/** How long a follower that has not fetched from this leader yet may take to start, before it counts as lagging. */
const FIRST_FETCH_WINDOW_MS = 5_000;

export interface ReplicationSettings {
  replicaLagTimeMaxMs: number;
  /** How often the leader checks its followers for ISR changes. */
  isrCheckIntervalMs: number;
}

/** The follower's fetch connection, as far as the leader needs it: to learn when it closes. */
export interface FollowerConnection {
  once(event: 'close', listener: () => void): unknown;
}

export class ReplicaManager implements ReplicaListener {
  /** The partitions this broker has a role for (leader or follower). */
  private readonly replicas = new Set<Partition>();
  /** States received before this broker registered, applied by activate(). */
  private readonly pending = new Map<Partition, PartitionState>();
  /** Per follower broker, the connection its latest fetch came on (one per leader-follower pair). */
  private readonly followerConnections = new Map<number, FollowerConnection>();
  private readonly watchedConnections = new WeakSet<FollowerConnection>();
  private unwatch: (() => void) | null = null;
  private timer: NodeJS.Timeout | null = null;
  /** After stop(): no more ISR changes (followers' connections close while this broker shuts down). */
  private stopped = false;
  /** Called when this broker starts or stops leading a partition (the group coordinator follows its offsets partitions). */
  onLeadership: (topic: string, partition: number, leader: boolean) => void = () => {};
  /** When periodicIsrCheck last ran (0: not yet), to tell the leader's own stalls from followers' lag. */
  private lastPeriodicCheckMs = 0;
  /** ISR changes this broker made as leader (written to the store), since start: read by the metrics (replication-metrics.ts). */
  readonly isrChanges = { shrinks: 0, expands: 0 };

  constructor(
    private readonly brokerId: number,
    private readonly store: ClusterMetadataStore,
    private readonly fetchers: ReplicaFetchers,
    private readonly settings: ReplicationSettings,
    private readonly log: Logger,
  ) {}

  start(): void {
    this.timer = setInterval(() => this.periodicIsrCheck(), this.settings.isrCheckIntervalMs);
    this.timer.unref();
    // A renewed session is a new incarnation: what this broker led under the old one it leads
    // again only once the controller has elected it under the new broker epoch.
    this.unwatch = this.store.watch((e) => {
      if (e.kind === 'reregistered') this.reapplyAll();
    });
  }

  /** The partitions this broker has a role for (leader or follower); for the metrics, read-only. */
  get partitions(): ReadonlySet<Partition> {
    return this.replicas;
  }

  /** Called once this broker is registered: takes up the roles its partitions' states give it. */
  activate(): void {
    const pending = [...this.pending];
    this.pending.clear();
    for (const [p, state] of pending) this.onPartitionState(p, state);
  }

  private reapplyAll(): void {
    for (const p of [...this.replicas]) this.onPartitionState(p, p.state!);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.unwatch?.();
    this.unwatch = null;
    for (const p of this.replicas) {
      p.releaser.stop();
      p.archive?.stop();
      p.settleHighWatermarkWaiters();
    }
    this.fetchers.stopAll();
  }

  onPartitionState(p: Partition, state: PartitionState): void {
    const { topic, partition, log } = p;
    const ownEpoch = this.store.ownBrokerEpoch();
    const known = this.replicas.has(p);
    if (ownEpoch === undefined && !known) {
      this.pending.set(p, state); // not registered yet: no role at all
      return;
    }
    const prevState = known ? p.state! : null;
    if (prevState && prevState.partitionEpoch > state.partitionEpoch) return; // a late, older event
    // Named leader, but under a registration that is not ours (a previous incarnation's, or
    // ours is being renewed): wait for the controller to elect this incarnation.
    const confirmed = ownEpoch !== undefined && (state.leaderBrokerEpoch ?? 0) === ownEpoch;
    const role = state.leader === this.brokerId && confirmed ? 'leader' : 'follower';
    const leaderChanged = !prevState || p.role !== role || prevState.leaderEpoch !== state.leaderEpoch;
    const wasLeader = known && p.role === 'leader';
    p.state = state;
    p.role = role;
    this.replicas.add(p);
    log.replicated = state.replicas.length > 1;
    if (role === 'leader') {
      if (leaderChanged) {
        this.fetchers.remove(topic, partition);
        p.followers = new Map();
        p.leaderStartOffset = log.logEndOffset;
        // Record where this epoch starts before the first write, so followers asking where
        // the previous epoch ended get the right answer at once.
        if (log.latestEpoch() < state.leaderEpoch) log.beginLeaderEpoch(state.leaderEpoch);
        this.log.info('became leader', { topic, partition, leaderEpoch: state.leaderEpoch, isr: state.isr.join(',') });
      }
      // Track exactly the current replicas (a reassignment adds and removes some); a newcomer
      // gets FIRST_FETCH_WINDOW_MS to show up before the leader may drop it.
      const now = Date.now();
      for (const b of state.replicas) if (b !== this.brokerId && !p.followers.has(b)) p.followers.set(b, { logEndOffset: -1, lastCaughtUpMs: now, lastFetchMs: now, lastFetchLeaderLogEnd: -1, disconnected: false, fetched: false });
      for (const b of [...p.followers.keys()]) if (!state.replicas.includes(b)) p.followers.delete(b);
      p.advanceHighWatermark();
      // Delayed releases (SPEC §7.9) from the log's frontier, for this leadership.
      if (leaderChanged || !p.releaser.isActive) p.releaser.start();
      // Archive uploads and archive retention (SPEC §7.10) from the committed archive state.
      if (p.archive && (leaderChanged || !p.archive.isLeading)) p.archive.startLeading();
      if (!wasLeader) this.onLeadership(topic, partition, true);
    } else {
      p.releaser.stop();
      if (p.archive && (leaderChanged || p.archive.isLeading)) p.archive.startFollowing();
      if (wasLeader) {
        // Fetches parked on a partition this broker no longer leads answer now.
        p.wakeParkedFetches();
        this.onLeadership(topic, partition, false);
      }
      p.settleHighWatermarkWaiters();
      // Catch-up of a replica joining through a reassignment is throttled until it is in sync.
      const throttle = state.targetReplicas && !state.isr.includes(this.brokerId) ? (state.throttleBytesPerSec ?? 0) : 0;
      if (leaderChanged) {
        // add() replaces the entry in place when the leader broker stays (a new epoch), so
        // the fetch connection it shares with other partitions stays open.
        if (state.leader < 0 || state.leader === this.brokerId) this.fetchers.remove(topic, partition);
        if (state.leader === this.brokerId) {
          this.log.info('named leader under an earlier registration; waiting for the controller', { topic, partition, leaderEpoch: state.leaderEpoch, leaderBrokerEpoch: state.leaderBrokerEpoch ?? 0, brokerEpoch: ownEpoch ?? -1 });
        } else if (state.leader >= 0) {
          this.fetchers.add(state.leader, { topic, partition, log, leaderEpoch: state.leaderEpoch, throttleBytesPerSec: throttle });
          this.log.info('following', { topic, partition, leader: state.leader, leaderEpoch: state.leaderEpoch });
        }
      } else {
        this.fetchers.setThrottle(topic, partition, throttle);
      }
    }
  }

  onReplicaRemoved(p: Partition): void {
    this.pending.delete(p);
    if (!this.replicas.delete(p)) return;
    this.fetchers.remove(p.topic, p.partition);
    p.releaser.stop();
    p.archive?.stop();
    p.settleHighWatermarkWaiters();
    if (p.role === 'leader') {
      // Fetches parked on a deleted or moved partition answer now (with the error).
      p.wakeParkedFetches();
      this.onLeadership(p.topic, p.partition, false);
    }
  }

  /**
   * A follower fetched from fetchOffset: it has everything below it. conn: the connection the
   * fetch came on; when it closes before another one brings a fetch, the follower is gone.
   */
  recordFollowerFetch(p: Partition, replicaId: number, fetchOffset: number, nowMs: number, conn?: FollowerConnection): void {
    if (p.role !== 'leader') return;
    const f = p.followers.get(replicaId);
    if (!f) return;
    if (conn) this.trackConnection(replicaId, conn);
    f.disconnected = false;
    f.logEndOffset = fetchOffset;
    // Caught up: it has the whole log, or everything the leader had at its previous fetch (a
    // follower under steady production is never quite at the end, yet not lagging either).
    if (fetchOffset >= p.log.logEndOffset) f.lastCaughtUpMs = nowMs;
    else if (fetchOffset >= f.lastFetchLeaderLogEnd) f.lastCaughtUpMs = Math.max(f.lastCaughtUpMs, f.lastFetchMs);
    f.lastFetchMs = nowMs;
    f.fetched = true;
    f.lastFetchLeaderLogEnd = p.log.logEndOffset;
    p.advanceHighWatermark();
    const isr = p.state!.isr;
    if (!isr.includes(replicaId) && fetchOffset >= Math.max(p.log.highWatermark, p.leaderStartOffset)) this.proposeIsr(p, [...isr, replicaId].sort((a, b) => a - b), 'expand');
  }

  private trackConnection(replicaId: number, conn: FollowerConnection): void {
    this.followerConnections.set(replicaId, conn);
    if (this.watchedConnections.has(conn)) return;
    this.watchedConnections.add(conn);
    conn.once('close', () => {
      if (this.stopped || this.followerConnections.get(replicaId) !== conn) return; // shutting down, or it fetches on a newer one
      this.followerConnections.delete(replicaId);
      for (const r of this.replicas) {
        const f = r.role === 'leader' ? r.followers.get(replicaId) : undefined;
        if (f) f.disconnected = true;
      }
      this.log.info('follower fetch connection closed; dropping it from the ISR', { follower: replicaId });
      this.checkIsr(Date.now());
    });
  }

  /**
   * The periodic check. A leader whose own event loop stalled (a long synchronous task, GC,
   * a starved CPU) served none of its followers' fetches meanwhile, and timers run before the
   * fetches queued during the stall: that time is the leader's, not the followers' lag, so it
   * is credited to them before checking. Without it, a 0.6 s stall of the leader would shrink
   * every ISR to the leader alone under a 0.5 s lag limit.
   */
  private periodicIsrCheck(): void {
    const nowMs = Date.now();
    const stalledMs = this.lastPeriodicCheckMs > 0 ? nowMs - this.lastPeriodicCheckMs - this.settings.isrCheckIntervalMs : 0;
    this.lastPeriodicCheckMs = nowMs;
    if (stalledMs > this.settings.isrCheckIntervalMs) {
      for (const r of this.replicas) {
        if (r.role !== 'leader') continue;
        for (const f of r.followers.values()) f.lastCaughtUpMs = Math.min(nowMs, f.lastCaughtUpMs + stalledMs);
      }
    }
    this.checkIsr(nowMs);
  }

  /**
   * Leader's check (periodic, and at once when a follower's connection closes): drop
   * followers whose connection closed, and followers that are behind the log end and were
   * last caught up longer than the lag limit ago (one waiting at the end is in sync however
   * long it waits).
   */
  private checkIsr(nowMs: number): void {
    if (this.stopped) return;
    for (const r of this.replicas) {
      if (r.role !== 'leader' || r.isrChangeInFlight) continue;
      const lagging = r.state!.isr.filter((b) => {
        if (b === this.brokerId) return false;
        const f = r.followers.get(b);
        if (!f || f.disconnected) return true;
        // A follower that has not fetched from this leader yet (a new topic, a new leader, a
        // reassignment) first has to learn of it from the metadata store and connect: that
        // takes longer than a short lag limit allows, and is not lag.
        const limitMs = f.fetched ? this.settings.replicaLagTimeMaxMs : Math.max(this.settings.replicaLagTimeMaxMs, FIRST_FETCH_WINDOW_MS);
        return f.logEndOffset < r.log.logEndOffset && nowMs - f.lastCaughtUpMs > limitMs;
      });
      if (lagging.length > 0) this.proposeIsr(r, r.state!.isr.filter((b) => !lagging.includes(b)), 'shrink');
    }
  }

  private proposeIsr(r: Partition, isr: number[], why: 'shrink' | 'expand'): void {
    if (r.isrChangeInFlight || this.stopped) return;
    r.isrChangeInFlight = true;
    const expected = r.state!.partitionEpoch;
    // Everything but the ISR stays as it is, a reassignment in progress included.
    const { partitionEpoch: _, ...rest } = r.state!;
    const next = { ...rest, isr };
    this.store
      .compareAndSetPartitionState(r.topic, r.partition, expected, next)
      .then((ok) => {
        if (ok) {
          if (why === 'shrink') this.isrChanges.shrinks++;
          else this.isrChanges.expands++;
          this.log.info(why === 'shrink' ? 'ISR shrunk' : 'ISR expanded', { topic: r.topic, partition: r.partition, isr: isr.join(',') });
        }
        // The store's change event brings the new state (and a fresh high watermark check).
      })
      .catch((e) => this.log.warn('ISR change failed', { topic: r.topic, partition: r.partition, error: e as Error }))
      .finally(() => {
        r.isrChangeInFlight = false;
      });
  }
}
