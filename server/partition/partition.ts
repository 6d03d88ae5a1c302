/**
 * One partition as this broker serves it: its local log, its role (given by the replica
 * manager from the metadata store's partition state), and on the leader the bookkeeping that
 * produce and fetch need: followers' progress, the high watermark, acks=all producers waiting
 * for it, and fetches parked on it. The API handlers reach a partition through the registry
 * (topic-manager.ts) once per request entry and do everything else through this object:
 * `servable()` decides whether and with which error, `appendAsLeader()` writes, `read()` reads.
 *
 * Invariants:
 * - Only the leader appends through appendAsLeader, stamping its current leader epoch; a
 *   partition that is not the leader refuses with NOT_LEADER and writes nothing.
 * - The high watermark is the smallest log end offset among the in-sync replicas (the leader
 *   included) and never moves back (PartitionLog.updateHighWatermark); every move resolves
 *   the acks=all waiters it passes and wakes the fetches parked here.
 * - Every leader append wakes the parked fetches (followers read up to the log end), and so
 *   does a transaction marker (appendTxnMarker: it moves the last stable offset that
 *   read_committed fetches wait on). A duplicate idempotent batch writes nothing, wakes nobody.
 * - role is 'none' until the replica manager applies a state under this broker's
 *   registration; `state` is null exactly then.
 * Not for concurrent use (the event loop is the lock): appendAsLeader runs to completion.
 */
import { NO_LEADER_EPOCH } from '../../protocol/apis/fetch.ts';
import { ErrorCode, SluiceError } from '../../protocol/errors.ts';
import type { TxnMarker } from '../../protocol/record-batch.ts';
import type { ReplicationConfig } from '../cluster/replication-config.ts';
import type { AppendResult, PartitionLog, ReadResult } from '../log/partition-log.ts';
import type { TimestampLookup } from '../log/log-reader.ts';
import { archiveSettled, consumerLogStartOffset, offsetForTimestampBothTiers, readBothTiers, type ArchiveSource } from '../archive/archive-reads.ts';
import type { TagFilter } from '../log/filtered-reader.ts';
import type { AppendOrigin as LogAppendOrigin } from '../log/producer-state.ts';
import type { PartitionState } from '../metadata/cluster-store.ts';
import type { TopicRecord } from '../metadata/metadata-store.ts';
import { wakeParkedFetches, type FetchParking } from './delayed-fetches.ts';
import { DelayReleaser } from '../delay/releaser.ts';
import type { PartitionArchive } from '../archive/partition-archive.ts';
import { isInternalTopic } from './topic-names.ts';

/** Checks that a transactional batch may begin its producer's transaction on topic/partition (throws SluiceError); see AppendOptions.verifyTxnStart. */
export type TxnStartVerifier = (topic: string, partition: number, producerId: number, producerEpoch: number) => void;

export interface FollowerProgress {
  logEndOffset: number;
  lastCaughtUpMs: number;
  /** Time of the follower's previous fetch, and the leader's log end then (Kafka's caught-up rule). */
  lastFetchMs: number;
  lastFetchLeaderLogEnd: number;
  /** Its fetch connection closed and no fetch came since: out of the ISR at the next check. */
  disconnected: boolean;
  /** It has fetched from this leader at least once (until then it gets a longer window, see replica-manager.ts). */
  fetched: boolean;
}

export interface HighWatermarkWaiter {
  offset: number;
  resolve: () => void;
}

/**
 * Who appends: a client's Produce ('client'), whose idempotent batches get the sequence checks
 * of SPEC §6.6, or a coordinator of this broker ('coordinator': the group coordinator writing
 * a transaction's offsets, SPEC §6.24), whose batches carry a producer's id and epoch but no
 * sequence of that producer's own, so only the epoch is checked (Kafka's AppendOrigin).
 */
export type AppendOrigin = LogAppendOrigin;

/** What is asking to be served; each has its own error order (SPEC §6.6, §6.7, §6.8). */
export type ServeKind = 'produce' | 'consumer-fetch' | 'follower-fetch' | 'list-offsets' | 'txn-marker';

/** What the registry knows of a topic, as servable() needs it. */
export interface ServedTopic {
  record: TopicRecord;
  /** Local replicas by partition number; partitions this broker does not hold are absent. */
  partitions: Map<number, Partition>;
}

/**
 * The local partition that can serve `kind`, or the error the SPEC gives, checked in its order:
 * - produce (§6.6): internal topic INVALID_TOPIC; unknown topic or partition
 *   UNKNOWN_TOPIC_OR_PARTITION; not the leader NOT_LEADER. (Shutdown and acks come before, in
 *   the handler; min.insync.replicas after, in appendAsLeader.)
 * - fetch (§6.7): UNKNOWN_TOPIC_OR_PARTITION; INVALID_TOPIC for an internal topic read by a
 *   consumer; FENCED_LEADER_EPOCH / UNKNOWN_LEADER_EPOCH; NOT_LEADER.
 * - list-offsets (§6.8): UNKNOWN_TOPIC_OR_PARTITION; INVALID_TOPIC; NOT_LEADER.
 * - txn-marker (§6.23): as produce, but internal topics are allowed.
 * Throws SluiceError; the success path allocates nothing.
 */
export function servable(kind: ServeKind, t: ServedTopic | undefined, topic: string, partition: number, currentLeaderEpoch = NO_LEADER_EPOCH): Partition {
  const internal = isInternalTopic(topic);
  if (kind === 'produce' && internal) throw new SluiceError(ErrorCode.INVALID_TOPIC, `${topic} is written by the broker only`);
  if (t === undefined || partition < 0 || partition >= t.record.partitions) {
    throw new SluiceError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `${topic}/${partition} does not exist`);
  }
  if (internal && (kind === 'consumer-fetch' || kind === 'list-offsets')) throw new SluiceError(ErrorCode.INVALID_TOPIC, `${topic} is read by the broker only`);
  const p = t.partitions.get(partition);
  if (p === undefined) throw new SluiceError(ErrorCode.NOT_LEADER, `this broker holds no replica of ${topic}/${partition}`);
  p.checkLeader(currentLeaderEpoch);
  return p;
}

export class Partition implements FetchParking {
  role: 'none' | 'leader' | 'follower' = 'none';
  /** The store's state as last applied by the replica manager; null while role is 'none'. */
  state: PartitionState | null = null;
  /** Leader only: the followers' progress, by broker id. */
  followers = new Map<number, FollowerProgress>();
  /**
   * The log end when this broker became leader. A follower rejoins the ISR only once it has
   * that much too: the high watermark may lag data acknowledged under the previous leader,
   * and a follower short of it must not become electable (Kafka's KAFKA-7128).
   */
  leaderStartOffset = 0;
  /** acks=all producers waiting for the high watermark. */
  hwWaiters: HighWatermarkWaiter[] = [];
  isrChangeInFlight = false;
  /** Wake-ups of the fetches parked on this partition (delayed-fetches.ts). */
  readonly parkedFetches = new Set<() => void>();
  /**
   * Where consumer reads below the local log start go (server/archive/archive-reads.ts); null:
   * this partition has no archive to read (archive off, or no store configured).
   */
  archiveSource: ArchiveSource | null = null;
  /** Releases delayed messages while this broker leads (server/delay/releaser.ts); the replica manager starts and stops it. */
  readonly releaser: DelayReleaser;
  /**
   * Tiered storage (SPEC §7.10, server/archive/partition-archive.ts): the archived segments,
   * the archive state and the store, when the topic has archive.enable=true and the broker an
   * archive store; null otherwise. The replica manager starts its uploader on leadership.
   */
  archive: PartitionArchive | null = null;

  constructor(
    readonly topic: string,
    readonly partition: number,
    readonly log: PartitionLog,
    /** This broker's id: the leader's own entry in the ISR. */
    private readonly localBrokerId: number,
    /** The topic's replication settings (min.insync.replicas). */
    private readonly replication: ReplicationConfig,
  ) {
    this.releaser = new DelayReleaser(this, log.logger);
  }

  get isLeader(): boolean {
    return this.role === 'leader';
  }

  get leaderEpoch(): number {
    return this.state?.leaderEpoch ?? -1;
  }

  /** Returns if this broker leads the partition at currentLeaderEpoch (-1: any); throws otherwise. */
  checkLeader(currentLeaderEpoch = NO_LEADER_EPOCH): void {
    const state = this.state;
    if (state === null) throw new SluiceError(ErrorCode.NOT_LEADER, `this broker holds no replica of ${this.topic}/${this.partition}`);
    if (currentLeaderEpoch >= 0 && currentLeaderEpoch < state.leaderEpoch) throw new SluiceError(ErrorCode.FENCED_LEADER_EPOCH, `leader epoch ${currentLeaderEpoch} < ${state.leaderEpoch}`);
    if (currentLeaderEpoch > state.leaderEpoch) throw new SluiceError(ErrorCode.UNKNOWN_LEADER_EPOCH, `leader epoch ${currentLeaderEpoch} > ${state.leaderEpoch}`);
    if (this.role !== 'leader') throw new SluiceError(ErrorCode.NOT_LEADER, `broker ${this.localBrokerId} is not the leader of ${this.topic}/${this.partition} (leader ${state.leader})`);
  }

  /**
   * The leader's append: with requiredAcks -1, refuses (NOT_ENOUGH_REPLICAS) before writing
   * when the ISR is smaller than min.insync.replicas; stamps the leader epoch; moves the high
   * watermark (at once when no follower is in the ISR) and wakes parked fetches.
   */
  /** The verifier bound to this partition, made once (not per append: the plain path allocates nothing for it). */
  private txnVerifier: { of: TxnStartVerifier; bound: (producerId: number, producerEpoch: number) => void } | null = null;

  private boundTxnVerifier(v: TxnStartVerifier): (producerId: number, producerEpoch: number) => void {
    if (this.txnVerifier?.of !== v) this.txnVerifier = { of: v, bound: (producerId, producerEpoch) => v(this.topic, this.partition, producerId, producerEpoch) };
    return this.txnVerifier.bound;
  }

  appendAsLeader(records: Buffer, requiredAcks: number, origin: AppendOrigin = 'client', verifyTxnStart?: TxnStartVerifier): AppendResult {
    this.checkLeader();
    const state = this.state!;
    if (requiredAcks === -1 && state.isr.length < this.replication.minInsyncReplicas) {
      throw new SluiceError(ErrorCode.NOT_ENOUGH_REPLICAS, `${this.topic}/${this.partition} has ${state.isr.length} in-sync replicas (${state.isr.join(',')}), min.insync.replicas is ${this.replication.minInsyncReplicas}`);
    }
    const verify = verifyTxnStart && this.boundTxnVerifier(verifyTxnStart);
    const appended = this.log.append(records, Date.now(), { leaderEpoch: state.leaderEpoch, origin, verifyTxnStart: verify });
    // A duplicate wrote nothing: no one to wake (its acks wait on the original offsets).
    if (appended.duplicate) return appended;
    // A new delayed message may fall due before the releaser's timer.
    if (appended.wrapped !== undefined) this.releaser.rearmIfEarlier();
    // Followers long-poll at the log end: wake them so the batch is replicated now, not after
    // their wait. A high watermark that moved has woken every parked fetch already.
    if (!this.advanceHighWatermark()) wakeParkedFetches(this);
    return appended;
  }

  /**
   * Leader only: appends delayed-delivery batches the broker built (RELEASED / CANCELLED
   * markers, released batches; SPEC §7.9) in one record set stamped with the leader epoch, and
   * moves the high watermark / wakes fetches like any append.
   */
  appendDelayBatches(batches: readonly Uint8Array[]): AppendResult {
    this.checkLeader();
    const appended = this.log.appendDelayBatches(batches, Date.now(), this.state!.leaderEpoch);
    if (!this.advanceHighWatermark()) wakeParkedFetches(this);
    return appended;
  }

  /**
   * Whole batches from fetchOffset: a follower reads up to the log end, a consumer up to the
   * high watermark, or with readCommitted up to the last stable offset (SPEC §6.7).
   */
  read(fetchOffset: number, maxBytes: number, follower: boolean, readCommitted = false, filter?: TagFilter, archiveDeadlineMs?: number): Promise<ReadResult> {
    const log = this.log;
    const maxOffset = follower ? log.logEndOffset : readCommitted ? log.lastStableOffset : log.highWatermark;
    // Consumers read both tiers (SPEC §7.10); followers copy the local log only.
    if (!follower && this.archiveSource) return readBothTiers(log, this.archiveSource, fetchOffset, maxBytes, maxOffset, readCommitted, filter, archiveDeadlineMs);
    return log.read(fetchOffset, maxBytes, filter ? { maxOffset, filter } : { maxOffset });
  }

  /** The log start offset consumers are told (Fetch, ListOffsets, Produce, describe): the archive's start when it has one (SPEC §7.10). */
  get consumerLogStartOffset(): number {
    return consumerLogStartOffset(this.log, this.archiveSource);
  }

  /**
   * ListOffsets earliest: consumerLogStartOffset once a new leader has loaded its archive
   * (bounded wait); ARCHIVE_UNAVAILABLE (retriable) while it is still loading.
   */
  async earliestOffset(deadlineMs?: number): Promise<number> {
    if (!(await archiveSettled(this.archiveSource, deadlineMs))) throw new SluiceError(ErrorCode.ARCHIVE_UNAVAILABLE, `the archive of ${this.topic}/${this.partition} is still loading`);
    return this.consumerLogStartOffset;
  }

  /** ListOffsets by timestamp over both tiers: the first record with timestamp >= timestampMs, or null. */
  offsetForTimestamp(timestampMs: number, archiveDeadlineMs?: number): Promise<TimestampLookup | null> {
    return this.archiveSource ? offsetForTimestampBothTiers(this.log, this.archiveSource, timestampMs, archiveDeadlineMs) : this.log.offsetForTimestamp(timestampMs);
  }

  /**
   * Leader only: appends a transaction marker (SPEC §6.23) stamped with the leader epoch, like
   * an append (TRANSACTION_COORDINATOR_FENCED / INVALID_PRODUCER_EPOCH checks in the log);
   * returns its offset. The caller waits for the high watermark to pass it.
   */
  appendTxnMarker(marker: TxnMarker): number {
    this.checkLeader();
    const offset = this.log.appendControl(marker, Date.now(), this.state!.leaderEpoch);
    // The marker moves the last stable offset once replicated: read_committed fetches parked
    // here must look again, and followers should copy it now.
    if (!this.advanceHighWatermark()) wakeParkedFetches(this);
    return offset;
  }

  /** Leader only: the high watermark becomes the smallest log end in the ISR, if that is higher; true if it moved. */
  advanceHighWatermark(): boolean {
    const state = this.state!;
    let hw = this.log.logEndOffset;
    for (const b of state.isr) {
      if (b === this.localBrokerId) continue;
      const f = this.followers.get(b);
      hw = Math.min(hw, f ? Math.max(f.logEndOffset, 0) : 0);
    }
    if (hw <= this.log.highWatermark) return false;
    this.log.updateHighWatermark(hw);
    if (this.hwWaiters.length > 0) {
      const ready = this.hwWaiters.filter((w) => w.offset <= hw);
      if (ready.length > 0) {
        this.hwWaiters = this.hwWaiters.filter((w) => w.offset > hw);
        for (const w of ready) w.resolve();
      }
    }
    wakeParkedFetches(this);
    return true;
  }

  /** Resolves when the high watermark reaches offset; rejects on timeout or when this broker stops leading. */
  waitForHighWatermark(offset: number, timeoutMs: number): Promise<void> {
    this.checkLeader();
    if (this.log.highWatermark >= offset) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.hwWaiters = this.hwWaiters.filter((w) => w !== waiter);
        reject(new SluiceError(ErrorCode.REQUEST_TIMED_OUT, `not replicated to every in-sync replica within ${timeoutMs} ms`));
      }, Math.max(timeoutMs, 0));
      const waiter = {
        offset,
        resolve: () => {
          clearTimeout(timer);
          if (this.role === 'leader' && this.log.highWatermark >= offset) resolve();
          else reject(new SluiceError(ErrorCode.NOT_LEADER, `${this.topic}/${this.partition} lost leadership before the write was replicated`));
        },
      };
      this.hwWaiters.push(waiter);
    });
  }

  /** Leadership lost or replica gone: the acks=all waiters settle (NOT_LEADER unless already replicated). */
  settleHighWatermarkWaiters(): void {
    const waiters = this.hwWaiters;
    this.hwWaiters = [];
    for (const w of waiters) w.resolve();
  }

  /** Parked fetches read again now (this broker stopped leading, or the partition is gone: they answer with the error). */
  wakeParkedFetches(): void {
    wakeParkedFetches(this);
  }
}

/** Told when this broker starts or stops holding a replica, and when a partition's state changes. */
export interface ReplicaListener {
  onPartitionState(partition: Partition, state: PartitionState): void;
  onReplicaRemoved(partition: Partition): void;
}
