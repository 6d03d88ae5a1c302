/**
 * The producer's sender: takes ready batches from the accumulator (record-accumulator.ts),
 * combines every ready batch led by the same broker into one Produce request, keeps at most
 * maxInFlight requests per broker, retries retriable failures with capped exponential backoff
 * (refreshing metadata when leadership may have moved), and completes or fails each batch.
 * The Producer facade (producer.ts) accepts records; this is everything after a batch is sealed.
 *
 * Invariants:
 * - A batch is retried only while attempts (`retries`) and its delivery time
 *   (`deliveryTimeoutMs`, from when it was opened) remain; drain() expires what outlived it,
 *   and the expiry timer wakes drain() by the earliest deadline.
 * - At most maxInFlight Produce requests per broker, each at most maxRequestBytes of records
 *   (a single larger batch travels alone).
 * - One metadata refresh at a time, at most one per retryBackoffMs; a request for another
 *   while one runs is remembered and made after it.
 * - A request that waits longer than STUCK_REQUEST_MS makes the sender ask another broker
 *   who leads its partitions (at most one such check at a time, every STUCK_CHECK_INTERVAL_MS,
 *   each bounded by STUCK_PROBE_TIMEOUT_MS).
 *   If leadership moved away from the broker it waits on (a paused or partitioned leader
 *   whose lease expired), the connection is closed and its requests are retried on the new
 *   leader, instead of waiting out requestTimeoutMs. A broker that is only slow keeps them.
 * - Runs on the event loop only; no per-record work (the producer's hot path stays in send()).
 * - Idempotent (SPEC §8.5): nothing is sent before the producer has an id (InitProducerId, one
 *   at a time); a batch goes out stamped with the current id and epoch. UNKNOWN_PRODUCER_ID, or
 *   OUT_OF_ORDER_SEQUENCE_NUMBER for a partition's oldest unacknowledged batch, asks for an
 *   epoch bump: sending stops until no request is in flight, the epoch is bumped and every
 *   partition's unacknowledged batches are renumbered from 0. OUT_OF_ORDER for a later batch
 *   is an ordinary retry (its predecessor is being resent). DUPLICATE_SEQUENCE_NUMBER is a
 *   success whose offset is no longer known (-1).
 * - Fatal (`fatal` set: fenced): every pending batch fails with that error and nothing more
 *   is sent; the producer refuses new sends.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { ApiKey } from '../protocol/api-keys.ts';
import type { ProduceRequest, ProduceResponse, ProduceTopic, TopicMetadata } from '../protocol/apis/index.ts';
import { ErrorCode, errorInfo, SluiceError } from '../protocol/errors.ts';
import type { Cluster } from './cluster.ts';
import { ConnectionError, type Connection } from './connection.ts';
import type { PartitionQueue, ProducerBatch, RecordAccumulator } from './record-accumulator.ts';
import { isFencingCode, ProducerFencedError, TransactionAbortableError } from './transactions/errors.ts';
import { isUnsupportedApi, type ProducerId } from './transactions/producer-id.ts';

/** How long keyless records avoid a broker that refused a connection (then it is tried again). */
const NODE_UNAVAILABLE_MS = 5_000;
/** A Produce unanswered this long makes the sender check whether its leader is still the leader. */
const STUCK_REQUEST_MS = 1_000;
/** How often that check repeats while a request stays unanswered. */
const STUCK_CHECK_INTERVAL_MS = 500;
/**
 * Bound on that check's Metadata request. It travels on connections of its own (a lane), so
 * it never waits behind Produce requests held for acks=all; a broker that does not answer it
 * in time (the paused one, say) is marked suspect, and the next check asks another.
 */
const STUCK_PROBE_TIMEOUT_MS = 1_000;

export interface SenderSettings {
  /** 0, 1 or -1 (all in-sync replicas). */
  acks: number;
  maxInFlight: number;
  retries: number;
  deliveryTimeoutMs: number;
  retryBackoffMs: number;
  retryBackoffMaxMs: number;
  requestTimeoutMs: number;
  maxRequestBytes: number;
  /** Batches carry producer id, epoch and sequences (SPEC §8.5). */
  idempotent: boolean;
  /** Idempotence was asked for explicitly: a broker without InitProducerId is an error, not a fallback. */
  idempotentExplicit: boolean;
  /** A transactional producer: its id comes from the transaction coordinator (transactions/), not from here. */
  transactional: boolean;
}

interface NodeState {
  id: number;
  conn: Connection | null;
  connecting: boolean;
  inFlight: number;
  /** Requests awaiting a response, oldest first (acks 0 requests are not tracked). */
  readonly waiting: Set<InFlightRequest>;
}

/** One Produce request's batches, grouped as its control lists them. */
interface InFlightRequest {
  topics: Map<string, Map<number, ProducerBatch[]>>;
  batches: ProducerBatch[];
  sentAtMs: number;
}

/** A timer for the earliest of several deadlines: arming it for a later time than it is set for does nothing. */
class Alarm {
  private timer: ReturnType<typeof setTimeout> | null = null;
  private atMs = 0;

  constructor(private readonly fire: () => void, private readonly keepsProcessAlive: boolean) {}

  arm(atMs: number, nowMs: number): void {
    if (this.timer !== null && this.atMs <= atMs) return;
    if (this.timer !== null) clearTimeout(this.timer);
    this.atMs = atMs;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.fire();
    }, Math.max(1, atMs - nowMs));
    if (!this.keepsProcessAlive) this.timer.unref();
  }

  cancel(): void {
    if (this.timer !== null) clearTimeout(this.timer);
  }
}

export class Sender {
  private readonly nodes = new Map<number, NodeState>();
  private drainScheduled = false;
  /** Wakes drain() when the earliest retry backoff ends. */
  private readonly retryAlarm = new Alarm(() => this.scheduleDrain(), true);
  /**
   * Wakes drain() at the next delivery deadline. Unref'd: it must not keep a process alive
   * on its own (whatever the batches wait for, a retry timer, a connect, a request, does).
   */
  private readonly expiryAlarm = new Alarm(() => this.scheduleDrain(), false);
  /** Checks for requests stuck on a broker that may have lost its leadership (see invariants). */
  private readonly stuckAlarm = new Alarm(() => this.checkStuckRequests(), false);
  private stuckChecking = false;
  /** The stuck check's own connections, sharing the producer's metadata (see STUCK_PROBE_TIMEOUT_MS). */
  private readonly probe: Cluster;
  private metadataRefreshing = false;
  private metadataAgain = false;
  private closed = false;
  private lastRetryReason: string | null = null;
  private lastRetryAtMs = 0;
  private retriesTotal = 0;
  /** Set once fenced: every batch fails with it (see invariants). */
  fatal: Error | null = null;
  /** An epoch bump is needed before anything more is sent (see invariants). */
  private bumpWanted = false;
  /** Partitions renumbered at the bump even with uncertain batches (they lost the producer's state). */
  private readonly bumpForce = new Set<PartitionQueue>();
  private identityBusy = false;
  private identityAttempts = 0;
  /** Requests awaiting a response, all brokers. */
  private inFlightTotal = 0;
  /** Called when a batch of a transaction failed for good: the transaction cannot commit. */
  onTxnBatchFailed: ((err: Error) => void) | null = null;

  constructor(
    private readonly cluster: Cluster,
    private readonly acc: RecordAccumulator,
    private readonly settings: Readonly<SenderSettings>,
    /** Completions or expiries freed buffer space: the producer appends sends waiting for it. */
    private readonly onSpaceFreed: () => void,
    /** The producer's id and epoch (idempotent); written into acc.stamp when they change. */
    readonly pid: ProducerId | null = null,
  ) {
    this.probe = cluster.lane({ clientId: cluster.options.clientId, requestTimeoutMs: STUCK_PROBE_TIMEOUT_MS, connectTimeoutMs: STUCK_PROBE_TIMEOUT_MS });
  }

  /** The latest retry's reason (null if none yet), when it happened, and the retries so far. */
  retryStatus(): { lastReason: string | null; lastAtMs: number; retries: number } {
    return { lastReason: this.lastRetryReason, lastAtMs: this.lastRetryAtMs, retries: this.retriesTotal };
  }

  /** Sends nothing more and stops the timers (the producer flushed before). */
  stop(): void {
    this.closed = true;
    this.retryAlarm.cancel();
    this.expiryAlarm.cancel();
    this.stuckAlarm.cancel();
    this.probe.close();
  }

  /** Routes a topic's partitions to their leaders (-1: none) in the accumulator. */
  applyTopic(tm: TopicMetadata): void {
    const leaders: number[] = [];
    for (const p of tm.partitions) leaders[p.partition] = p.errorCode === ErrorCode.NONE ? p.leader : -1;
    for (let i = 0; i < leaders.length; i++) if (leaders[i] === undefined) leaders[i] = -1;
    this.acc.setTopic(tm.topic, leaders);
  }

  /** Refreshes every known topic's leaders (after NOT_LEADER, unknown partition, a lost connection). */
  private refreshMetadata(): void {
    if (this.metadataRefreshing) {
      this.metadataAgain = true;
      return;
    }
    this.metadataRefreshing = true;
    const names = this.acc.topicNames();
    this.cluster.refreshMetadata(names).then(
      (md) => {
        for (const tm of md.topics) if (tm.errorCode === ErrorCode.NONE) this.applyTopic(tm);
      },
      () => {},
    ).finally(async () => {
      // Rate-limit refreshes: a leaderless partition must not spin.
      await delay(this.settings.retryBackoffMs);
      this.metadataRefreshing = false;
      if (this.metadataAgain && !this.closed) {
        this.metadataAgain = false;
        this.refreshMetadata();
      }
      this.scheduleDrain();
    });
  }


  scheduleDrain(): void {
    if (this.drainScheduled || this.closed) return;
    this.drainScheduled = true;
    queueMicrotask(() => this.drain());
  }

  /** Sends what is ready, within each broker's in-flight limit. */
  private drain(): void {
    this.drainScheduled = false;
    if (this.closed) return;
    const now = Date.now();
    const nextExpiryMs = this.acc.expire(now, (b) => this.failBatch(b, this.deliveryTimeout(b.attempts, b.lastError)));
    if (nextExpiryMs !== Infinity) this.expiryAlarm.arm(nextExpiryMs, now);
    // Nothing to send: no InitProducerId (or retry of one) either, so an unreachable cluster
    // with nothing pending keeps no timer going.
    if (this.settings.idempotent && (this.acc.incompleteBatches === 0 || !this.identityReady())) {
      this.onSpaceFreed();
      return;
    }
    const leaders = new Set<number>();
    const nextRetryMs = this.acc.readyNodes(now, leaders);
    for (const id of leaders) {
      if (id < 0) {
        // Leaderless partitions: each pass counts as an attempt (with backoff) until a refresh
        // finds a leader or the delivery timeout runs out.
        const batches = this.acc.drainNode(-1, now, Number.MAX_SAFE_INTEGER);
        this.retryOrFail(batches, new SluiceError(ErrorCode.NOT_LEADER, 'partition has no known leader'));
        this.refreshMetadata();
        continue;
      }
      const node = this.node(id);
      if (node.conn === null || node.conn.closed) {
        node.conn = null;
        if (!node.connecting) this.connect(node);
        continue;
      }
      while (node.inFlight < this.settings.maxInFlight) {
        const batches = this.acc.drainNode(id, now, this.settings.maxRequestBytes, node.conn);
        if (batches.length === 0) break;
        this.sendProduce(node, node.conn, batches);
      }
    }
    if (nextRetryMs >= 0) this.retryAlarm.arm(nextRetryMs, now);
    // Expired batches freed buffer space for sends waiting for it.
    this.onSpaceFreed();
  }

  private node(id: number): NodeState {
    let n = this.nodes.get(id);
    if (!n) {
      n = { id, conn: null, connecting: false, inFlight: 0, waiting: new Set() };
      this.nodes.set(id, n);
    }
    return n;
  }

  private connect(node: NodeState): void {
    node.connecting = true;
    this.cluster.connectionToNode(node.id).then(
      (c) => {
        node.connecting = false;
        node.conn = c;
        this.acc.setNodeUnavailable(node.id, 0);
        this.scheduleDrain();
      },
      (err: Error) => {
        node.connecting = false;
        this.acc.setNodeUnavailable(node.id, Date.now() + NODE_UNAVAILABLE_MS);
        // Count the failure against every batch waiting for this broker, so an unreachable
        // broker ends in errors at the delivery timeout instead of waiting forever (and the
        // metadata refresh finds a new leader if there is one).
        const batches = this.acc.drainNode(node.id, Date.now(), Number.MAX_SAFE_INTEGER);
        this.retryOrFail(batches, err instanceof SluiceError ? err : new ConnectionError(err.message));
        this.refreshMetadata();
        this.scheduleDrain();
      },
    );
  }

  private sendProduce(node: NodeState, conn: Connection, batches: ProducerBatch[]): void {
    const req: InFlightRequest = { topics: new Map(), batches, sentAtMs: Date.now() };
    for (const b of batches) {
      const q = b.queue;
      let parts = req.topics.get(q.topic.name);
      if (!parts) {
        parts = new Map();
        req.topics.set(q.topic.name, parts);
      }
      const list = parts.get(q.partition);
      if (list) list.push(b);
      else parts.set(q.partition, [b]);
    }
    const topics: ProduceTopic[] = [];
    const data: Uint8Array[] = [];
    for (const [topic, parts] of req.topics) {
      const partitions = [];
      for (const [partition, list] of parts) {
        let recordsBytes = 0;
        for (const b of list) {
          if (this.settings.idempotent && this.acc.needsStamp(b)) this.acc.restamp(b);
          recordsBytes += b.bytes!.length;
          data.push(b.bytes!);
        }
        partitions.push({ partition, recordsBytes });
      }
      topics.push({ topic, partitions });
    }
    const control: ProduceRequest = { acks: this.settings.acks, timeoutMs: this.settings.requestTimeoutMs, topics };
    node.inFlight++;
    this.inFlightTotal++;
    if (this.settings.acks === 0) {
      conn.send(ApiKey.PRODUCE, control, data, false).then(
        () => {
          node.inFlight--;
          this.inFlightTotal--;
          for (const b of batches) this.acc.complete(b, -1);
          this.afterCompletion();
        },
        (err: Error) => {
          node.inFlight--;
          this.inFlightTotal--;
          this.onRequestError(batches, err);
        },
      );
      return;
    }
    node.waiting.add(req);
    this.stuckAlarm.arm(req.sentAtMs + STUCK_REQUEST_MS, req.sentAtMs);
    conn.send<ProduceResponse>(ApiKey.PRODUCE, control, data, true, this.settings.requestTimeoutMs + 5_000).then(
      (res) => {
        node.inFlight--;
        this.inFlightTotal--;
        node.waiting.delete(req);
        this.onResponse(req, res.control);
      },
      (err: Error) => {
        node.inFlight--;
        this.inFlightTotal--;
        node.waiting.delete(req);
        this.onRequestError(batches, err);
      },
    );
  }

  /**
   * For every broker with a request older than STUCK_REQUEST_MS: ask the other brokers (the
   * stuck one is tried last) who leads those partitions now. Where leadership moved away, the
   * stuck broker's connection is closed, which fails its requests as a lost connection: they
   * are retried, on the new leader, like any other (so they may be duplicated, as any retry
   * of an unanswered Produce may, SPEC 5.2).
   */
  private checkStuckRequests(): void {
    if (this.closed || this.stuckChecking) return;
    const now = Date.now();
    let oldestMs = Infinity;
    const stuck: Array<{ node: NodeState; conn: Connection; partitions: Array<[string, number]> }> = [];
    for (const node of this.nodes.values()) {
      const first = node.waiting.values().next().value as InFlightRequest | undefined;
      if (!first) continue;
      oldestMs = Math.min(oldestMs, first.sentAtMs);
      if (now - first.sentAtMs < STUCK_REQUEST_MS || node.conn === null) continue;
      const partitions: Array<[string, number]> = [];
      for (const req of node.waiting) for (const [topic, parts] of req.topics) for (const p of parts.keys()) partitions.push([topic, p]);
      stuck.push({ node, conn: node.conn, partitions });
    }
    if (oldestMs === Infinity) return;
    if (stuck.length === 0) {
      this.stuckAlarm.arm(oldestMs + STUCK_REQUEST_MS, now);
      return;
    }
    this.stuckChecking = true;
    const topics = [...new Set(stuck.flatMap((s) => s.partitions.map(([t]) => t)))];
    this.probe.refreshMetadata(topics).then(
      (md) => {
        const leaders = new Map<string, number>();
        for (const tm of md.topics) {
          if (tm.errorCode !== ErrorCode.NONE) continue;
          this.applyTopic(tm);
          for (const p of tm.partitions) leaders.set(`${tm.topic}/${p.partition}`, p.errorCode === ErrorCode.NONE ? p.leader : -1);
        }
        for (const s of stuck) {
          const moved = s.partitions.some(([t, p]) => {
            const leader = leaders.get(`${t}/${p}`);
            return leader !== undefined && leader !== s.node.id;
          });
          if (moved && s.node.conn === s.conn) {
            this.noteRetry(`broker ${s.node.id} no longer leads partitions it has not answered for; resending to the new leader`);
            s.node.conn = null;
            s.conn.close();
          }
        }
      },
      () => {},
    ).finally(() => {
      this.stuckChecking = false;
      if (this.closed) return;
      this.stuckAlarm.arm(Date.now() + STUCK_CHECK_INTERVAL_MS, Date.now());
      this.scheduleDrain();
    });
  }

  private onResponse(req: InFlightRequest, res: ProduceResponse): void {
    let refresh = false;
    for (const tr of res.topics) {
      const parts = req.topics.get(tr.topic);
      if (!parts) continue;
      for (const pr of tr.partitions) {
        const list = parts.get(pr.partition);
        if (!list) continue;
        parts.delete(pr.partition);
        if (pr.errorCode === ErrorCode.NONE) {
          // The partition's batches were appended in order, with consecutive offsets.
          let base = pr.baseOffset;
          for (const b of list) {
            this.acc.complete(b, base);
            base += b.recordCount;
          }
          continue;
        }
        const where = `${tr.topic}/${pr.partition}${pr.errorMessage ? `: ${pr.errorMessage}` : ''}`;
        if (this.settings.idempotent && this.onSequenceError(pr.errorCode, where, list)) continue;
        const err = new SluiceError(pr.errorCode as ErrorCode, where);
        if (pr.errorCode === ErrorCode.NOT_LEADER || pr.errorCode === ErrorCode.UNKNOWN_TOPIC_OR_PARTITION) refresh = true;
        this.retryOrFail(list, err);
      }
    }
    // Partitions the broker did not answer for.
    for (const [topic, parts] of req.topics) {
      for (const [partition, list] of parts) {
        const err = new SluiceError(ErrorCode.UNKNOWN_SERVER_ERROR, `no result for ${topic}/${partition} in the produce response`);
        for (const b of list) this.failBatch(b, err);
      }
    }
    if (refresh) this.refreshMetadata();
    this.afterCompletion();
  }

  private onRequestError(batches: ProducerBatch[], err: Error): void {
    // No answer: the batches may be in the log (an epoch bump must not renumber them).
    if (err instanceof ConnectionError || (err instanceof SluiceError && err.code === ErrorCode.REQUEST_TIMED_OUT)) for (const b of batches) b.uncertain = true;
    this.retryOrFail(batches, err);
    if (err instanceof ConnectionError || (err instanceof SluiceError && err.code === ErrorCode.REQUEST_TIMED_OUT)) this.refreshMetadata();
    this.afterCompletion();
  }

  /**
   * Requeues retriable failures with backoff while attempts and delivery time remain; fails
   * the rest (with a delivery-timeout error naming the last failure when time ran out).
   */
  private retryOrFail(batches: ProducerBatch[], err: Error): void {
    const now = Date.now();
    if (this.fatal !== null) err = this.fatal;
    const retriable = isRetriable(err) && !this.closed;
    let retried = false;
    for (const b of batches) {
      b.lastError = err;
      const deadlineMs = b.createdMs + this.settings.deliveryTimeoutMs;
      if (!retriable || b.attempts >= this.settings.retries) {
        this.failBatch(b, err);
      } else if (now >= deadlineMs) {
        this.failBatch(b, this.deliveryTimeout(b.attempts + 1, err));
      } else {
        // Not later than the deadline: drain() then expires it with the timeout error.
        const at = Math.min(deadlineMs, now + this.backoffMs(b.attempts));
        b.attempts++;
        this.acc.requeue(b, at);
        this.retryAlarm.arm(at, now);
        retried = true;
      }
    }
    if (retried) this.noteRetry(err.message);
  }

  /** Fails b; a transactional batch also dooms its transaction (it cannot commit without it). */
  private failBatch(b: ProducerBatch, err: Error): void {
    if (b.transactional && this.onTxnBatchFailed !== null) this.onTxnBatchFailed(err);
    this.acc.fail(b, err);
  }

  // ---- idempotence ---------------------------------------------------------------------

  /** True when batches may be sent: the producer has its id (starting InitProducerId or a bump if not). */
  private identityReady(): boolean {
    const pid = this.pid!;
    if (this.fatal !== null) return false;
    if (this.bumpWanted) {
      if (this.inFlightTotal === 0 && !this.identityBusy) this.initIdentity(true);
      return false;
    }
    if (pid.ready) return true;
    if (!this.settings.transactional && !this.identityBusy) this.initIdentity(false);
    return false;
  }

  /** InitProducerId (or the epoch bump) on any broker, retried with backoff until it works or is fatal. */
  private initIdentity(bump: boolean): void {
    const pid = this.pid!;
    this.identityBusy = true;
    this.cluster.anyConnection().then((conn) => pid.request(conn, { transactionalId: null, transactionTimeoutMs: 0, bump, requestTimeoutMs: this.settings.requestTimeoutMs })).then(
      () => {
        this.identityBusy = false;
        this.identityAttempts = 0;
        this.acc.stamp.producerId = pid.producerId;
        this.acc.stamp.producerEpoch = pid.producerEpoch;
        if (bump) {
          this.bumpWanted = false;
          this.acc.renumberAll(this.bumpForce);
          this.bumpForce.clear();
        }
        this.scheduleDrain();
      },
      (err: Error) => {
        this.identityBusy = false;
        if (!bump && !this.settings.idempotentExplicit && isUnsupportedApi(err)) {
          // A broker without InitProducerId: idempotence was only the default, so send plain
          // batches, as before it existed (sequences were assigned but nothing carries them).
          pid.unsupported = true;
          this.scheduleDrain();
          return;
        }
        if (err instanceof ProducerFencedError || !isRetriable(err)) {
          this.setFatal(err instanceof SluiceError ? err : new SluiceError(ErrorCode.UNKNOWN_SERVER_ERROR, err.message));
          return;
        }
        this.noteRetry(`InitProducerId: ${err.message}`);
        const at = Date.now() + this.backoffMs(this.identityAttempts++);
        this.retryAlarm.arm(at, Date.now());
      },
    );
  }

  /** Asks for an epoch bump before anything more is sent (transactions/ uses it too). */
  requestBump(): void {
    this.bumpWanted = true;
    this.scheduleDrain();
  }

  /**
   * The idempotence errors of one partition's batches (`list`, in sequence order); false
   * when `code` is not one of them (the caller then retries or fails as for any error).
   */
  private onSequenceError(code: number, where: string, list: ProducerBatch[]): boolean {
    if (code === ErrorCode.DUPLICATE_SEQUENCE_NUMBER) {
      // Written before, too long ago for the broker to say where: delivered, offset unknown.
      for (const b of list) this.acc.complete(b, -1);
      return true;
    }
    if (isFencingCode(code)) {
      this.setFatal(new ProducerFencedError(code as ErrorCode, where));
      for (const b of list) this.failBatch(b, this.fatal!);
      return true;
    }
    const head = list[0]!;
    const oldest = head.queue.unacked[0] === head;
    if (code === ErrorCode.UNKNOWN_PRODUCER_ID || (code === ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER && oldest)) {
      if (this.settings.transactional) {
        // A transaction cannot renumber behind the coordinator's back (Kafka: abortable).
        const err = new TransactionAbortableError(code as ErrorCode, where);
        for (const b of list) this.failBatch(b, err);
        return true;
      }
      // The partition lost this producer's state, or a batch before this one will never
      // arrive (failed, expired): the sequence cannot be repaired, so start again at 0 with a
      // new epoch. Each batch counts an attempt, as any retry.
      this.bumpWanted = true;
      if (code === ErrorCode.UNKNOWN_PRODUCER_ID) this.bumpForce.add(head.queue);
      // Retried under the new epoch (OUT_OF_ORDER is retriable; UNKNOWN_PRODUCER_ID alone is not).
      this.retryOrFail(list, new SluiceError(ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER, `${errorInfo(code).name} from ${where}; bumping the producer epoch and renumbering`));
      return true;
    }
    return false;
  }

  /** Fenced (or another fatal error): fail every pending batch with err; nothing more is sent. */
  setFatal(err: Error): void {
    if (this.fatal !== null) return;
    this.fatal = err;
    this.acc.failAll(err);
    this.onSpaceFreed();
  }

  noteRetry(reason: string): void {
    this.lastRetryReason = reason;
    this.lastRetryAtMs = Date.now();
    this.retriesTotal++;
  }

  /** The error of a record whose delivery timeout ran out; `last` is why the last attempt failed. */
  deliveryTimeout(attempts: number, last: Error | null): SluiceError {
    return new SluiceError(
      ErrorCode.REQUEST_TIMED_OUT,
      `not delivered within the delivery timeout of ${this.settings.deliveryTimeoutMs} ms (${attempts} attempt(s)${last ? `; last error: ${last.message}` : ''})`,
    );
  }

  private afterCompletion(): void {
    this.onSpaceFreed();
    this.scheduleDrain();
  }

  /** Delay before retry number attempt+1: exponential from retryBackoffMs, capped, ±20 % jitter. */
  backoffMs(attempt: number): number {
    const base = Math.min(this.settings.retryBackoffMaxMs, this.settings.retryBackoffMs * 2 ** Math.min(attempt, 30));
    return Math.max(1, Math.round(base * (0.8 + 0.4 * Math.random())));
  }
}

export function isRetriable(err: Error): boolean {
  if (err instanceof SluiceError) return err.retriable;
  return err instanceof ConnectionError;
}
