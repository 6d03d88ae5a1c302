/**
 * Followers' side of replication: one fetcher per leader broker, each a loop that copies the
 * partitions this broker follows from that leader. A partition joins a fetcher needing
 * truncation: the fetcher first asks the leader where this replica's latest leader epoch ended
 * (OffsetForLeaderEpoch) and cuts its log there, so a tail the new leader never had is removed
 * before anything new is appended (Kafka's KIP-101/KIP-279). Then it fetches with the same
 * Fetch API consumers use, marked with replicaId, and appends the leader's bytes unchanged.
 *
 * Bounds: one request in flight per leader; maxWaitMs long polls; errors back off
 * (backoffMs, doubling to backoffMsMax) and reconnect.
 */
import { ApiKey } from '../../protocol/api-keys.ts';
import type { FetchRequest, FetchResponse } from '../../protocol/apis/fetch.ts';
import type { OffsetForLeaderEpochResponse } from '../../protocol/apis/offset-for-leader-epoch.ts';
import { Connection, type ConnectionOptions } from '../../protocol/connection.ts';
import { ErrorCode, SluiceError } from '../../protocol/errors.ts';
import { isInvariantError } from '../assert.ts';
import type { PartitionLog } from '../log/partition-log.ts';
import type { Logger } from '../logger.ts';
import type { ClusterMetadataStore } from '../metadata/cluster-store.ts';

export interface FollowedPartition {
  topic: string;
  partition: number;
  log: PartitionLog;
  leaderEpoch: number;
  /** Catch-up limit in bytes per second; 0 = unlimited. */
  throttleBytesPerSec: number;
}

interface Entry extends FollowedPartition {
  needsTruncation: boolean;
  /** With a throttle: not fetched again before this time (the bytes already taken are paid for). */
  nextFetchMs: number;
}

export interface FetcherSettings {
  /** TLS and SASL towards leaders when the cluster uses them (server/security/tls-listener.ts). */
  security?: Pick<ConnectionOptions, 'tls' | 'sasl'>;
  fetchMaxWaitMs: number;
  fetchMaxBytes: number;
  partitionMaxBytes: number;
  backoffMs: number;
  backoffMsMax: number;
}

const key = (topic: string, partition: number) => `${topic}\u0000${partition}`;

class LeaderFetcher {
  readonly partitions = new Map<string, Entry>();
  private conn: Connection | null = null;
  private running = true;
  private wake: (() => void) | null = null;

  constructor(
    readonly leaderId: number,
    private readonly brokerId: number,
    private readonly store: ClusterMetadataStore,
    private readonly settings: FetcherSettings,
    private readonly log: Logger,
  ) {
    void this.loop();
  }

  stop(): void {
    this.running = false;
    this.conn?.close();
    this.wake?.();
  }

  poke(): void {
    this.wake?.();
  }

  private async loop(): Promise<void> {
    let backoff = this.settings.backoffMs;
    while (this.running) {
      if (this.partitions.size === 0) {
        await new Promise<void>((r) => (this.wake = r));
        this.wake = null;
        continue;
      }
      try {
        const conn = await this.connection();
        await this.truncateWhereNeeded(conn);
        await this.fetchOnce(conn);
        backoff = this.settings.backoffMs;
      } catch (e) {
        if (!this.running) break;
        // A breached invariant took its partition offline (server/assert.ts); it must be seen, not logged at debug.
        if (isInvariantError(e)) this.log.error('invariant breached in a follower append', { leader: this.leaderId, error: e });
        else this.log.debug('replica fetch failed', { leader: this.leaderId, error: e as Error });
        this.conn?.close();
        this.conn = null;
        await new Promise((r) => setTimeout(r, backoff));
        backoff = Math.min(backoff * 2, this.settings.backoffMsMax);
      }
    }
  }

  private async connection(): Promise<Connection> {
    if (this.conn && !this.conn.closed) return this.conn;
    const leader = this.store.liveBrokers().find((b) => b.brokerId === this.leaderId);
    if (!leader) throw new SluiceError(ErrorCode.NOT_LEADER, `leader ${this.leaderId} is not live`);
    this.conn = await Connection.connect(leader.host, leader.port, { ...this.settings.security, clientId: `replica-${this.brokerId}`, requestTimeoutMs: this.settings.fetchMaxWaitMs + 10_000 });
    return this.conn;
  }

  private async truncateWhereNeeded(conn: Connection): Promise<void> {
    const pending = [...this.partitions.values()].filter((e) => e.needsTruncation);
    if (pending.length === 0) return;
    const byTopic = new Map<string, Entry[]>();
    for (const e of pending) byTopic.set(e.topic, [...(byTopic.get(e.topic) ?? []), e]);
    const res = await conn.send<OffsetForLeaderEpochResponse>(ApiKey.OFFSET_FOR_LEADER_EPOCH, {
      replicaId: this.brokerId,
      topics: [...byTopic].map(([topic, entries]) => ({
        topic,
        partitions: entries.map((e) => ({ partition: e.partition, currentLeaderEpoch: e.leaderEpoch, leaderEpoch: e.log.latestEpoch() })),
      })),
    });
    for (const t of res.control.topics) {
      for (const p of t.partitions) {
        const e = this.partitions.get(key(t.topic, p.partition));
        if (!e || !e.needsTruncation) continue;
        if (p.errorCode !== 0) continue; // retried on the next round
        // When the leader answers for an older epoch than we asked, our log may also end that
        // epoch earlier: cut at whichever comes first (Kafka's KIP-279).
        const local = p.leaderEpoch >= 0 ? e.log.endOffsetForEpoch(p.leaderEpoch).endOffset : -1;
        // The leader knows no epoch at or below ours: keep only what was committed (Kafka's rule).
        const to = p.endOffset < 0 ? e.log.highWatermark : local >= 0 ? Math.min(p.endOffset, local) : p.endOffset;
        if (to >= 0 && to < e.log.logEndOffset) {
          this.log.info('truncating divergent tail', { topic: t.topic, partition: p.partition, from: e.log.logEndOffset, to });
          await e.log.truncateTo(to);
        }
        e.needsTruncation = false;
      }
    }
  }

  private async fetchOnce(conn: Connection): Promise<void> {
    const now = Date.now();
    const ready = [...this.partitions.values()].filter((e) => !e.needsTruncation && e.nextFetchMs <= now);
    if (ready.length === 0) {
      const next = Math.min(...[...this.partitions.values()].map((e) => e.nextFetchMs), now + this.settings.backoffMs);
      await new Promise((r) => setTimeout(r, Math.max(next - now, 1)));
      return;
    }
    const byTopic = new Map<string, Entry[]>();
    for (const e of ready) byTopic.set(e.topic, [...(byTopic.get(e.topic) ?? []), e]);
    const req: FetchRequest = {
      replicaId: this.brokerId,
      maxWaitMs: this.settings.fetchMaxWaitMs,
      minBytes: 1,
      maxBytes: this.settings.fetchMaxBytes,
      topics: [...byTopic].map(([topic, entries]) => ({
        topic,
        partitions: entries.map((e) => ({
          partition: e.partition,
          fetchOffset: e.log.logEndOffset,
          // A throttled partition takes at most a second's worth per fetch.
          partitionMaxBytes: e.throttleBytesPerSec > 0 ? Math.min(this.settings.partitionMaxBytes, e.throttleBytesPerSec) : this.settings.partitionMaxBytes,
          currentLeaderEpoch: e.leaderEpoch,
        })),
      })),
    };
    const res = await conn.send<FetchResponse>(ApiKey.FETCH, req);
    let pos = 0;
    for (const t of res.control.topics) {
      for (const p of t.partitions) {
        const records = res.data.subarray(pos, pos + p.recordsBytes);
        pos += p.recordsBytes;
        const e = this.partitions.get(key(t.topic, p.partition));
        // Gone, or re-added (new leader epoch) while this fetch was out: it truncates first.
        if (!e || e.needsTruncation) continue;
        if (p.errorCode === ErrorCode.OFFSET_OUT_OF_RANGE) {
          if (e.log.logEndOffset < p.logStartOffset) {
            this.log.warn('replica is behind the leader log start; starting over there', { topic: t.topic, partition: p.partition, offset: p.logStartOffset });
            await e.log.truncateFullyAndStartAt(p.logStartOffset);
          } else {
            e.needsTruncation = true;
          }
          continue;
        }
        if (p.errorCode !== 0) continue; // NOT_LEADER / FENCED: a metadata change will move us
        try {
          if (records.length > 0) {
            e.log.appendAsFollower(records);
            if (e.throttleBytesPerSec > 0) e.nextFetchMs = Date.now() + (records.length * 1000) / e.throttleBytesPerSec;
          }
          e.log.updateHighWatermark(Math.min(p.highWatermark, e.log.logEndOffset));
        } catch (err) {
          if (!(err instanceof SluiceError)) throw err;
          // The leader's log and ours disagree (out of range, epoch went back): reconcile first.
          this.log.warn('follower append refused; truncating before fetching again', { topic: t.topic, partition: p.partition, error: err });
          e.needsTruncation = true;
        }
      }
    }
  }
}

export class ReplicaFetchers {
  private readonly fetchers = new Map<number, LeaderFetcher>();

  constructor(
    private readonly brokerId: number,
    private readonly store: ClusterMetadataStore,
    private readonly settings: FetcherSettings,
    private readonly log: Logger,
  ) {}

  add(leaderId: number, p: FollowedPartition): void {
    // Leave the fetcher of this same leader running (only the entry is replaced): stopping it
    // would close its connection, which the leader takes for this follower's death.
    this.remove(p.topic, p.partition, leaderId);
    let f = this.fetchers.get(leaderId);
    if (!f) this.fetchers.set(leaderId, (f = new LeaderFetcher(leaderId, this.brokerId, this.store, this.settings, this.log)));
    f.partitions.set(key(p.topic, p.partition), { ...p, needsTruncation: true, nextFetchMs: 0 });
    f.poke();
  }

  setThrottle(topic: string, partition: number, throttleBytesPerSec: number): void {
    for (const f of this.fetchers.values()) {
      const e = f.partitions.get(key(topic, partition));
      if (e) e.throttleBytesPerSec = throttleBytesPerSec;
    }
  }

  /** Stops following the partition (except from keepLeaderId); a fetcher left without partitions stops. */
  remove(topic: string, partition: number, keepLeaderId?: number): void {
    for (const [id, f] of this.fetchers) {
      if (id === keepLeaderId) continue;
      if (f.partitions.delete(key(topic, partition)) && f.partitions.size === 0) {
        f.stop();
        this.fetchers.delete(id);
      }
    }
  }

  stopAll(): void {
    for (const f of this.fetchers.values()) f.stop();
    this.fetchers.clear();
  }
}
