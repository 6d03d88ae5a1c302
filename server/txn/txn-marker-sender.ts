/**
 * Sends the markers that end transactions (WriteTxnMarkers, SPEC §6.23) to the leaders of the
 * transactions' partitions, over broker-to-broker connections (one per leader, like the
 * replica fetchers'), batching every marker waiting for the same leader into one request and
 * retrying with backoff until every partition has acknowledged its marker.
 *
 * Invariants:
 * - Each queued (marker, partition) is sent until its leader answers 0 for it, or it becomes
 *   moot: its topic or partition no longer exists (nothing left to mark), the leader says a
 *   newer producer epoch wrote there (INVALID_PRODUCER_EPOCH: a later marker has superseded
 *   this one), or its send is cancelled (the coordinator lost the transaction's partition,
 *   or is stopping). A send resolves only when all its partitions are acknowledged or moot,
 *   and rejects on TRANSACTION_COORDINATOR_FENCED (a newer coordinator owns it) or cancel.
 * - The leader is resolved from the cluster metadata at every attempt, so a marker follows
 *   leadership changes. Every other failure (NOT_LEADER, a closed connection, a timeout, a
 *   broker answering UNKNOWN_API) is retried after a backoff that doubles per failed attempt
 *   of that partition up to backoffMsMax.
 * - Bounded: at most queuedPartitionsMax (marker, partition) entries wait at once (send()
 *   rejects with COORDINATOR_NOT_AVAILABLE beyond; the coordinator retries completion later),
 *   at most requestPartitionsMax of them per request, one request in flight per leader.
 */
import { ApiKey } from '../../protocol/api-keys.ts';
import type { WriteTxnMarker, WriteTxnMarkersRequest, WriteTxnMarkersResponse } from '../../protocol/apis/write-txn-markers.ts';
import { Connection, type ConnectionOptions } from '../../protocol/connection.ts';
import { ErrorCode, SluiceError } from '../../protocol/errors.ts';
import type { TxnMarker } from '../../protocol/record-batch.ts';
import type { Logger } from '../logger.ts';
import type { ClusterMetadataStore } from '../metadata/cluster-store.ts';
import type { TxnTopicPartitions } from './transaction-state.ts';

export interface TxnMarkerSenderOptions {
  backoffMs: number;
  backoffMsMax: number;
  requestTimeoutMs: number;
  queuedPartitionsMax: number;
  requestPartitionsMax: number;
  /** TLS and SASL towards partition leaders when the cluster uses them. */
  security?: Pick<ConnectionOptions, 'tls' | 'sasl'>;
}

export const DEFAULT_TXN_MARKER_SENDER_OPTIONS: TxnMarkerSenderOptions = {
  backoffMs: 50,
  backoffMsMax: 2000,
  requestTimeoutMs: 30_000,
  queuedPartitionsMax: 100_000,
  requestPartitionsMax: 10_000,
};

interface Send {
  marker: TxnMarker;
  owner: number;
  remaining: number;
  done: boolean;
  resolve(): void;
  reject(e: Error): void;
}

interface Entry {
  send: Send;
  topic: string;
  partition: number;
  attempts: number;
  notBeforeMs: number;
  inFlight: boolean;
}

type MetadataView = Pick<ClusterMetadataStore, 'partitionState' | 'getTopic' | 'liveBrokers'>;

export class TxnMarkerSender {
  private readonly entries = new Set<Entry>();
  private readonly connections = new Map<number, { conn: Connection; host: string; port: number }>();
  private readonly busyLeaders = new Set<number>();
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  /** Requests sent, and (marker, partition) entries that failed an attempt: diagnostics for tests and logs. */
  requestsSent = 0;
  retries = 0;

  constructor(
    private readonly brokerId: number,
    private readonly metadata: MetadataView,
    private readonly opts: TxnMarkerSenderOptions,
    private readonly log: Logger,
  ) {}

  /**
   * This broker's own WriteTxnMarkers handler, for partitions it leads: the same code path as
   * a request from another coordinator, without encoding, a socket and decoding in between
   * (on a single broker every marker is local, and each transaction waits for its markers).
   */
  private local: ((req: WriteTxnMarkersRequest) => Promise<WriteTxnMarkersResponse>) | null = null;

  setLocalWriter(write: (req: WriteTxnMarkersRequest) => Promise<WriteTxnMarkersResponse>): void {
    this.local = write;
  }

  get queuedPartitions(): number {
    return this.entries.size;
  }

  /**
   * Writes marker to every partition; resolves once all have it. owner: the coordinator's
   * `__transaction_state` partition the transaction belongs to (see cancel()).
   */
  send(marker: TxnMarker, partitions: readonly TxnTopicPartitions[], owner: number): Promise<void> {
    if (this.stopped) return Promise.reject(new SluiceError(ErrorCode.COORDINATOR_NOT_AVAILABLE, 'the marker sender is stopped'));
    let count = 0;
    for (const t of partitions) count += t.partitions.length;
    if (count === 0) return Promise.resolve();
    if (this.entries.size + count > this.opts.queuedPartitionsMax) {
      return Promise.reject(new SluiceError(ErrorCode.COORDINATOR_NOT_AVAILABLE, `${this.entries.size} transaction markers already wait to be written (limit ${this.opts.queuedPartitionsMax})`));
    }
    return new Promise<void>((resolve, reject) => {
      const send: Send = { marker, owner, remaining: count, done: false, resolve, reject };
      for (const t of partitions) for (const partition of t.partitions) this.entries.add({ send, topic: t.topic, partition, attempts: 0, notBeforeMs: 0, inFlight: false });
      this.schedule(0);
    });
  }

  /** Drops every send of the given owner (or all): its promise rejects with NOT_COORDINATOR. */
  cancel(owner?: number): void {
    for (const e of [...this.entries]) {
      if (owner !== undefined && e.send.owner !== owner) continue;
      this.finish(e.send, new SluiceError(ErrorCode.NOT_COORDINATOR, 'this broker no longer coordinates the transaction'));
    }
  }

  stop(): void {
    this.stopped = true;
    this.cancel();
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    for (const { conn } of this.connections.values()) conn.close();
    this.connections.clear();
  }

  private finish(send: Send, error?: Error): void {
    if (send.done) return;
    send.done = true;
    for (const e of [...this.entries]) if (e.send === send) this.entries.delete(e);
    if (error) send.reject(error);
    else send.resolve();
  }

  private acknowledged(e: Entry): void {
    if (!this.entries.delete(e)) return;
    if (--e.send.remaining === 0) this.finish(e.send);
  }

  private failed(e: Entry, now: number): void {
    e.inFlight = false;
    e.attempts++;
    this.retries++;
    e.notBeforeMs = now + Math.min(this.opts.backoffMsMax, this.opts.backoffMs * 2 ** Math.min(e.attempts - 1, 20));
  }

  private pumpQueued = false;

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (delayMs <= 0) {
      // Due now: a timer of 0 ms waits about 1 ms, which every transaction would pay.
      if (!this.pumpQueued) {
        this.pumpQueued = true;
        setImmediate(() => {
          this.pumpQueued = false;
          if (!this.stopped) this.pump();
        });
      }
      return;
    }
    this.timer = setTimeout(() => {
      this.timer = null;
      this.pump();
    }, delayMs);
  }

  /** Groups what is due by leader and sends one request to every leader without one in flight. */
  private pump(): void {
    const now = Date.now();
    const byLeader = new Map<number, Entry[]>();
    let nextDueMs = Infinity;
    for (const e of this.entries) {
      if (e.inFlight) continue;
      if (e.notBeforeMs > now) {
        nextDueMs = Math.min(nextDueMs, e.notBeforeMs);
        continue;
      }
      const record = this.metadata.getTopic(e.topic);
      if (!record || e.partition >= record.partitions) {
        // Deleted (or never existed): no partition left to end the transaction on.
        this.acknowledged(e);
        continue;
      }
      const leader = this.metadata.partitionState(e.topic, e.partition)?.leader ?? -1;
      if (leader < 0) {
        this.failed(e, now);
        nextDueMs = Math.min(nextDueMs, e.notBeforeMs);
        continue;
      }
      if (this.busyLeaders.has(leader)) continue;
      let list = byLeader.get(leader);
      if (!list) byLeader.set(leader, (list = []));
      if (list.length < this.opts.requestPartitionsMax) list.push(e);
    }
    for (const [leader, list] of byLeader) void this.sendTo(leader, list);
    if (nextDueMs < Infinity) this.schedule(Math.max(0, nextDueMs - now));
  }

  private async connection(leader: number): Promise<Connection> {
    const reg = this.metadata.liveBrokers().find((b) => b.brokerId === leader);
    if (!reg) throw new SluiceError(ErrorCode.NOT_LEADER, `leader ${leader} is not live`);
    const cached = this.connections.get(leader);
    if (cached && !cached.conn.closed && cached.host === reg.host && cached.port === reg.port) return cached.conn;
    cached?.conn.close();
    const conn = await Connection.connect(reg.host, reg.port, { ...this.opts.security, clientId: `txn-coordinator-${this.brokerId}`, requestTimeoutMs: this.opts.requestTimeoutMs });
    if (this.stopped) {
      conn.close();
      throw new SluiceError(ErrorCode.COORDINATOR_NOT_AVAILABLE, 'stopped');
    }
    this.connections.set(leader, { conn, host: reg.host, port: reg.port });
    return conn;
  }

  private async sendTo(leader: number, list: Entry[]): Promise<void> {
    this.busyLeaders.add(leader);
    for (const e of list) e.inFlight = true;
    // One WriteTxnMarker per send: the entries of one transaction share producer and decision.
    const bySend = new Map<Send, Entry[]>();
    for (const e of list) {
      let l = bySend.get(e.send);
      if (!l) bySend.set(e.send, (l = []));
      l.push(e);
    }
    const sends = [...bySend];
    const markers: WriteTxnMarker[] = sends.map(([s, es]) => {
      const topics = new Map<string, number[]>();
      for (const e of es) {
        let ps = topics.get(e.topic);
        if (!ps) topics.set(e.topic, (ps = []));
        ps.push(e.partition);
      }
      return { ...s.marker, topics: [...topics].map(([topic, partitions]) => ({ topic, partitions })) };
    });
    try {
      const request: WriteTxnMarkersRequest = { markers };
      this.requestsSent++;
      const res = leader === this.brokerId && this.local !== null
        ? { control: await this.local(request) }
        : await (await this.connection(leader)).send<WriteTxnMarkersResponse>(ApiKey.WRITE_TXN_MARKERS, request);
      const now = Date.now();
      sends.forEach(([s, es], i) => {
        const codes = new Map<string, number>();
        for (const t of res.control.markers[i]?.topics ?? []) for (const p of t.partitions) codes.set(`${t.topic}\u0000${p.partition}`, p.errorCode);
        for (const e of es) {
          if (!this.entries.has(e)) continue; // cancelled meanwhile
          const code = codes.get(`${e.topic}\u0000${e.partition}`);
          if (code === ErrorCode.NONE || code === ErrorCode.INVALID_PRODUCER_EPOCH) this.acknowledged(e);
          else if (code === ErrorCode.TRANSACTION_COORDINATOR_FENCED) this.finish(s, new SluiceError(ErrorCode.TRANSACTION_COORDINATOR_FENCED, `${e.topic}-${e.partition} has a marker from a newer coordinator`));
          else this.failed(e, now);
        }
      });
    } catch (e) {
      const now = Date.now();
      for (const entry of list) if (this.entries.has(entry)) this.failed(entry, now);
      this.log.debug('transaction markers not written; retrying', { leader, partitions: list.length, error: e as Error });
    } finally {
      this.busyLeaders.delete(leader);
      for (const e of list) e.inFlight = false;
      if (this.entries.size > 0) this.schedule(0);
    }
  }
}
