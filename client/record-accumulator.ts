/**
 * The producer's buffer: records are appended into one open RecordBatch per partition, and a
 * batch is sealed when the next record would take it past `batchSizeBytes`, when it has been
 * open for `lingerMs`, or when the producer asks (flush, memory exhausted). Sealed batches wait
 * in their partition's `ready` queue, in append order, until the sender takes them; a batch
 * that failed retriably goes back to its place in that queue (ordered by `seq`).
 *
 * Invariants:
 *  - a partition has at most one open batch per batch key: the batch-level headers, tag set
 *    (SPEC §8.7: one batch, one tag set) and delivery time (§8.8), '' for records with neither;
 *    at most KEYED_OPEN_BATCHES_MAX keyed ones (the oldest is sealed to make room); records
 *    of different delivery times are released at different times, so no order between them
 *    is promised; records of one tag set in a partition's batches
 *    are in send order, and records of different tag sets of a partition may be reordered
 *    between batches (each batch goes when it is full or lingerMs old). A batch gets its
 *    position among the partition's batches (`seq`) and its sequence number when sealed, so
 *    seal order = send order = sequence order, whichever tag set filled first;
 *  - `bufferUsedBytes` is the sum of `reservedBytes` of every batch not yet completed, and a
 *    record is admitted only when it fits under `bufferMemoryBytes` (or the buffer is empty,
 *    so a single oversized record cannot wedge the producer);
 *  - a batch's bytes (a view into its BatchBuilder) stay valid until the batch is completed,
 *    so retries resend the same bytes; the builder then returns to a bounded pool;
 *  - a sealed batch not in flight is failed by expire() once `deliveryTimeoutMs` has passed
 *    since it was opened; `nextExpiryMs` is never later than the earliest such deadline, so a
 *    batch stuck behind a dead broker or a leaderless partition cannot wait forever;
 *  - a partition with a batch being retried has at most one request in flight (`retrying`),
 *    so a retry is not overtaken by a later batch sent while it backs off;
 *  - keyless records avoid (through the sticky partition) partitions without a leader or
 *    whose leader was recently unreachable, when another partition is available;
 *  - idempotent (SPEC §8.5): a batch gets its baseSequence when sealed, the partition's
 *    `nextSequence`, which then advances by its record count (wrapping); `unacked` holds the
 *    partition's sealed, not yet completed batches in sequence order, so their sequences are
 *    consecutive from unacked[0]; the bytes carry (stampedId, stampedEpoch, baseSequence),
 *    and the sender restamps a batch whose stamp is not its partition's identity;
 *  - a partition's sequences belong to its identity (`producerId`, `producerEpoch`): it
 *    adopts the producer's current one when it has none yet, after an epoch bump unless a
 *    batch of it may already be written under the old one (`uncertain`: a request whose
 *    answer was lost), and otherwise only once nothing of it is unacknowledged, starting again
 *    at 0; so a batch that may be in the log is only ever resent with its original stamp;
 *  - transactional: a partition that gets its first record of a transaction is `txnBlocked`
 *    (not drained) until the coordinator has it in the transaction (AddPartitionsToTxn), or
 *    only onto the connection that request was written to (`txnPipelineConn`), behind it.
 * Not re-entrant: everything runs on the event loop thread.
 */
import { setImmediate } from 'node:timers';
import { addSequence, BatchBuilder, resealBatch, writeProducerFields, type RecordHeader } from '../protocol/record-batch.ts';
import { nextStickyPartition } from './partitioner.ts';

export interface RecordMetadata {
  topic: string;
  partition: number;
  /**
   * Offset the broker assigned; -1 with acks = 0. For a delayed record (deliverAt/delayMs),
   * an offset its SCHEDULED wrapper holds (SPEC §8.8): the message is read at a new offset
   * once released.
   */
  offset: number;
  /**
   * Delayed records only: the id of the delayed message, `topic/partition/wrapperOffset`
   * (SPEC §6.25), for Admin.cancelDelayed / `sluice delayed cancel`. Every record of one
   * batch (same partition and delivery time, sent together) shares it: a cancel cancels
   * them all. When the delivery time had already passed at the broker, the records were
   * appended at once and the id names no pending message.
   */
  delayedId?: string;
  /** Delayed records only: the delivery time asked for, ms since the epoch. */
  deliverAtMs?: number;
}

/** What the records of one delayed batch share. */
export interface DelayedInfo {
  /** `topic/partition/wrapperOffset`, see RecordMetadata.delayedId. */
  delayedId: string;
  deliverAtMs: number;
}

/** The id of a delayed message (SPEC §6.25) as the client writes it: `topic/partition/offset`. */
export function formatDelayedId(topic: string, partition: number, offset: number): string {
  return `${topic}/${partition}/${offset}`;
}


/** Receives the outcome of records. `slot` is whatever the sink was given on append. */
export interface DeliverySink {
  /** delayed: the batch's delayed message (id and delivery time), null for records without a delivery time or acks 0. */
  delivered(slot: number, topic: string, partition: number, offset: number, delayed: DelayedInfo | null): void;
  failed(slot: number, err: Error): void;
}

export interface AccumulatorOptions {
  batchSizeBytes: number;
  lingerMs: number;
  bufferMemoryBytes: number;
  /** Called when at least one batch became ready; the producer schedules a send. */
  onReady: () => void;
  random?: () => number;
  /** At most one batch per partition in flight (the producer's maxInFlight 1). */
  strictOrder?: boolean;
  /** A sealed batch not acknowledged this long after it was opened fails (expire()). Default: never. */
  deliveryTimeoutMs?: number;
  /** Number batches per partition and stamp them with `stamp` (the idempotent producer). */
  idempotent?: boolean;
}

/**
 * The producer fields sealed batches get, kept current by the producer: producerId -1 until
 * InitProducerId answered (batches sealed before are restamped when sent); `transactional`
 * while a transaction is open (the batch's attribute bit 4).
 */
export interface BatchStamp {
  producerId: number;
  producerEpoch: number;
  transactional: boolean;
}

/** Resolves once every batch it was attached to has completed. */
interface FlushWaiter {
  remaining: number;
  resolve: () => void;
}

/**
 * Upper bound of a record's framing beyond its key, value and headers: length (5),
 * attributes (1), timestampDelta (5), offsetDelta (5), keyLength (5), valueLength (5),
 * headerCount (5). Used for size checks without computing every varint.
 */
export const RECORD_OVERHEAD_MAX_BYTES = 31;
/** Free builders kept for reuse; more are left to the GC. */
const BUILDER_POOL_MAX = 16;
const BUILDER_INITIAL_BYTES_MAX = 64 * 1024;
/**
 * A tagged batch's first buffer: with many tag sets open at once each fills slowly and the
 * pool cannot cover them all, so large first buffers would mostly be garbage (it doubles as needed).
 */
const TAGGED_BUILDER_INITIAL_BYTES_MAX = 8 * 1024;
/**
 * Open batches with a batch key (tag set, delivery time) per partition: delivery times in ms
 * are nearly all distinct, and each open batch holds a builder, so beyond this many the
 * oldest is sealed (sent early) instead of keeping an unbounded map. Large enough for a
 * hundred tag sets per partition.
 */
export const KEYED_OPEN_BATCHES_MAX = 256;

export class ProducerBatch {
  readonly sinks: DeliverySink[] = [];
  /** Position among the partition's batches, given when sealed; retries keep their place by it. */
  seq = -1;
  readonly slots: number[] = [];
  /** Sealed bytes, a view into `builder`; null while open. */
  bytes: Uint8Array | null = null;
  reservedBytes = 0;
  /** Failed attempts so far. */
  attempts = 0;
  /** Not to be sent before this time (retry backoff). */
  retryAtMs = 0;
  /** In a request now (taken by drainNode, not yet completed, failed or requeued). */
  sent = false;
  /** Why the last attempt failed (for the delivery-timeout error); null before any failure. */
  lastError: Error | null = null;
  waiters: FlushWaiter[] | null = null;
  /** A request with this batch got no answer (lost connection, timeout): it may be in the log. */
  uncertain = false;
  /** Idempotent: the first record's sequence (SPEC §8.5); -1 otherwise. */
  baseSequence = -1;
  /** The producerId and epoch written in `bytes` (-1: none, a plain batch). */
  stampedId = -1;
  stampedEpoch = -1;
  /** Sealed inside a transaction (attribute bit 4). */
  transactional = false;

  constructor(
    readonly queue: PartitionQueue,
    readonly createdMs: number,
    public builder: BatchBuilder,
    /** The batch-level headers' key: canonical tag set and delivery time ('' = neither). */
    readonly tagKey: string,
    /** The delivery time every record of the batch carries (SPEC §8.8); -1 = none. */
    readonly deliverAtMs: number = -1,
  ) {}

  get recordCount(): number {
    return this.sinks.length;
  }
}

export class PartitionQueue {
  /** Leader broker id from metadata; -1 when unknown. */
  leader = -1;
  open: ProducerBatch | null = null;
  /** Open batches of tagged records, by canonical tag set; null until the first one. */
  openTagged: Map<string, ProducerBatch> | null = null;
  /** Sealed batches not in flight, by seq. */
  readonly ready: ProducerBatch[] = [];
  nextSeq = 0;
  /** Batches of this partition sent and not yet completed, failed or requeued. */
  inFlight = 0;
  inOpenList = false;
  inReadyList = false;
  /**
   * A batch of this partition failed retriably and has not been delivered since: the
   * partition is muted while a request of it is in flight, so later batches cannot land
   * before the retried one (they go together in its request instead).
   */
  retrying = false;
  /** Idempotent: the sequence the next sealed batch starts at. */
  nextSequence = 0;
  /** Idempotent: sealed batches not completed, in sequence order. */
  readonly unacked: ProducerBatch[] = [];
  /** Idempotent: the producer id and epoch this partition's sequences belong to (-1: none yet). */
  producerId = -1;
  producerEpoch = -1;
  /** Already in the current transaction (AddPartitionsToTxn sent or pending). */
  inTxn = false;
  /** Has records of the current transaction that must not be sent before AddPartitionsToTxn succeeded. */
  txnBlocked = false;
  /**
   * While txnBlocked: the connection an AddPartitionsToTxn naming this partition was just
   * written to, when its batches may follow it there before the answer (the broker holds them
   * until it answers, SPEC §6.6); null otherwise.
   */
  txnPipelineConn: object | null = null;
  constructor(readonly topic: TopicQueue, readonly partition: number) {}
}

export class TopicQueue {
  readonly partitions: PartitionQueue[] = [];
  /** Where keyless records go (KIP-480). */
  sticky = 0;
  constructor(readonly name: string) {}
}

export class RecordAccumulator {
  readonly batchSizeBytes: number;
  readonly lingerMs: number;
  readonly bufferMemoryBytes: number;
  bufferUsedBytes = 0;
  private readonly topics = new Map<string, TopicQueue>();
  /** Partitions that may have an open batch (pruned lazily). */
  private openList: PartitionQueue[] = [];
  /** Partitions that may have ready batches (pruned lazily). */
  private readyList: PartitionQueue[] = [];
  private readonly incomplete = new Set<ProducerBatch>();
  private readonly pool: BatchBuilder[] = [];
  private readonly onReady: () => void;
  private readonly random: () => number;
  private lingerTimer: ReturnType<typeof setTimeout> | null = null;
  private immediateArmed = false;
  private drainCursor = 0;
  /**
   * One batch per partition in flight at a time (maxInFlight 1): a partition is "muted"
   * while a batch of it is out, so a retried batch can never land after a later one, even
   * when the leader moves (Kafka mutes partitions the same way).
   */
  private readonly strictOrder: boolean;
  readonly deliveryTimeoutMs: number;
  /** Earliest delivery deadline among ready batches (a lower bound); Infinity when none. */
  private nextExpiryMs = Infinity;
  /** Brokers recently unreachable, until when (ms since the epoch): keyless records avoid them. */
  private readonly unavailableUntilMs = new Map<number, number>();
  readonly idempotent: boolean;
  readonly stamp: BatchStamp = { producerId: -1, producerEpoch: -1, transactional: false };
  /** Set while a transaction is open: called for a partition's first record in it. */
  onNewTxnPartition: ((q: PartitionQueue) => void) | null = null;

  constructor(opts: AccumulatorOptions) {
    if (!(opts.batchSizeBytes > 0)) throw new RangeError(`batchSizeBytes must be > 0, got ${opts.batchSizeBytes}`);
    if (!(opts.lingerMs >= 0)) throw new RangeError(`lingerMs must be >= 0, got ${opts.lingerMs}`);
    if (!(opts.bufferMemoryBytes > 0)) throw new RangeError(`bufferMemoryBytes must be > 0, got ${opts.bufferMemoryBytes}`);
    this.batchSizeBytes = opts.batchSizeBytes;
    this.lingerMs = opts.lingerMs;
    this.bufferMemoryBytes = opts.bufferMemoryBytes;
    this.onReady = opts.onReady;
    this.random = opts.random ?? Math.random;
    this.strictOrder = opts.strictOrder ?? false;
    this.deliveryTimeoutMs = opts.deliveryTimeoutMs ?? Infinity;
    if (!(this.deliveryTimeoutMs > 0)) throw new RangeError(`deliveryTimeoutMs must be > 0, got ${opts.deliveryTimeoutMs}`);
    this.idempotent = opts.idempotent ?? false;
  }

  topic(name: string): TopicQueue | undefined {
    return this.topics.get(name);
  }

  topicNames(): string[] {
    return [...this.topics.keys()];
  }

  /** Creates or updates a topic from metadata: leaders[p] is partition p's leader (-1 unknown). */
  setTopic(name: string, leaders: readonly number[]): TopicQueue {
    let t = this.topics.get(name);
    if (!t) {
      t = new TopicQueue(name);
      this.topics.set(name, t);
      t.sticky = Math.floor(this.random() * leaders.length);
    }
    // Partitions only grow (as in Kafka); a shorter answer leaves the extra ones leaderless.
    for (let p = t.partitions.length; p < leaders.length; p++) t.partitions.push(new PartitionQueue(t, p));
    for (let p = 0; p < t.partitions.length; p++) t.partitions[p]!.leader = p < leaders.length ? leaders[p]! : -1;
    if (!this.available(t.partitions[t.sticky]!, Date.now())) t.sticky = this.nextSticky(t, t.sticky);
    return t;
  }

  /** A partition keyless records may go to: it has a leader not recently unreachable. */
  private available(q: PartitionQueue, nowMs: number): boolean {
    return q.leader >= 0 && !((this.unavailableUntilMs.get(q.leader) ?? 0) > nowMs);
  }

  /**
   * The sticky partition after `previous`: as nextStickyPartition when every partition is
   * available (the common case, and the same random draws), else a random available one
   * (still `previous` only when it is the only one); when none is, any (the records wait).
   */
  private nextSticky(t: TopicQueue, previous: number): number {
    const n = t.partitions.length;
    const now = Date.now();
    let availableCount = 0;
    for (let p = 0; p < n; p++) if (this.available(t.partitions[p]!, now)) availableCount++;
    if (availableCount === n || availableCount === 0) return nextStickyPartition(previous, n, this.random);
    const others = availableCount - (previous >= 0 && previous < n && this.available(t.partitions[previous]!, now) ? 1 : 0);
    if (others === 0) return previous;
    let k = Math.floor(this.random() * others);
    for (let p = 0; p < n; p++) {
      if (p === previous || !this.available(t.partitions[p]!, now)) continue;
      if (k-- === 0) return p;
    }
    return previous;
  }

  /**
   * A broker could not be reached: until `untilMs`, keyless records go to partitions led by
   * other brokers (as Kafka's partitioner skips unavailable partitions), so one dead leader
   * does not collect records the others could take. Records already batched for it wait.
   * untilMs <= now (e.g. after a successful connect) makes it available again.
   */
  setNodeUnavailable(nodeId: number, untilMs: number): void {
    if (untilMs <= Date.now()) {
      this.unavailableUntilMs.delete(nodeId);
      return;
    }
    this.unavailableUntilMs.set(nodeId, untilMs);
    for (const t of this.topics.values()) {
      if (t.partitions[t.sticky]?.leader === nodeId) t.sticky = this.nextSticky(t, t.sticky);
    }
  }

  /** True when a record of `bytes` may be appended now. */
  hasRoom(bytes: number): boolean {
    return this.bufferUsedBytes === 0 || this.bufferUsedBytes + bytes <= this.bufferMemoryBytes;
  }

  /**
   * Appends one record. partition < 0 means "keyless": the topic's sticky partition, which
   * moves on when its batch is sealed. `sizeBytes` is the caller's estimate (see
   * estimateRecordBytes) and is what the record holds of bufferMemory until completion.
   * Returns the partition used.
   */
  append(
    t: TopicQueue,
    partition: number,
    key: Uint8Array | null,
    value: Uint8Array | null,
    headers: RecordHeader[] | undefined,
    timestampMs: number,
    sizeBytes: number,
    sink: DeliverySink,
    slot: number,
    tagKey = '',
    deliverAtMs = -1,
  ): number {
    let q: PartitionQueue;
    if (partition >= 0) {
      q = t.partitions[partition]!;
    } else {
      q = t.partitions[t.sticky]!;
      const open = tagKey === '' ? q.open : openOf(q, tagKey);
      // KIP-480: a record that does not fit seals the sticky batch and goes to the next sticky partition.
      if (open !== null && open.builder.sizeBytes + sizeBytes > this.batchSizeBytes) {
        this.sealBatch(open);
        q = t.partitions[t.sticky]!;
      }
    }
    // The untagged path reads one field, as before tags existed.
    let b = tagKey === '' ? q.open : openOf(q, tagKey);
    // A batch's age (linger, delivery timeout) runs on the clock, not on the record's
    // timestamp, which the caller may set to any time (replaying old events).
    if (b === null) {
      b = this.openBatch(q, Date.now(), tagKey, deliverAtMs);
    } else if (b.builder.sizeBytes + sizeBytes > this.batchSizeBytes) {
      this.sealBatch(b);
      b = this.openBatch(q, Date.now(), tagKey, deliverAtMs);
    }
    b.builder.append(key, value, timestampMs, headers);
    if (this.onNewTxnPartition !== null && !q.inTxn) {
      q.inTxn = true;
      q.txnBlocked = true;
      this.onNewTxnPartition(q);
    }
    b.sinks.push(sink);
    b.slots.push(slot);
    b.reservedBytes += sizeBytes;
    this.bufferUsedBytes += sizeBytes;
    // A lone record larger than a batch is sent at once rather than after lingerMs.
    if (b.builder.sizeBytes >= this.batchSizeBytes) this.sealBatch(b);
    return q.partition;
  }

  private openBatch(q: PartitionQueue, nowMs: number, tagKey: string, deliverAtMs: number): ProducerBatch {
    // Bounded: the oldest open keyed batch goes out to make room.
    if (tagKey !== '' && q.openTagged !== null && q.openTagged.size >= KEYED_OPEN_BATCHES_MAX) this.sealBatch(q.openTagged.values().next().value!);
    const builder = this.pool.pop() ?? new BatchBuilder(Math.min(this.batchSizeBytes + 64, tagKey === '' ? BUILDER_INITIAL_BYTES_MAX : TAGGED_BUILDER_INITIAL_BYTES_MAX));
    const b = new ProducerBatch(q, nowMs, builder, tagKey, deliverAtMs);
    if (tagKey === '') q.open = b;
    else (q.openTagged ??= new Map()).set(tagKey, b);
    if (!q.inOpenList) {
      q.inOpenList = true;
      this.openList.push(q);
    }
    this.armLinger();
    return b;
  }

  /** Seals q's open batches, if any (untagged first, then by tag set), and queues them for sending. */
  seal(q: PartitionQueue): void {
    if (q.open !== null) this.sealBatch(q.open);
    const tagged = q.openTagged;
    if (tagged !== null && tagged.size > 0) for (const b of [...tagged.values()]) this.sealBatch(b);
  }

  /** Seals one open batch of its partition: its place among the partition's batches and its sequence are given now. */
  private sealBatch(b: ProducerBatch): void {
    const q = b.queue;
    if (b.tagKey === '') {
      if (q.open !== b) return;
      q.open = null;
    } else if (!q.openTagged?.delete(b.tagKey)) {
      return;
    }
    b.seq = q.nextSeq++;
    if (this.idempotent) {
      const s = this.stamp;
      if (s.producerId >= 0 && (q.producerId !== s.producerId || q.producerEpoch !== s.producerEpoch)) {
        if (q.producerId < 0) this.adopt(q);
        else if (q.unacked.length === 0) {
          // Kept on an older identity at a bump; nothing of it is pending any more.
          this.adopt(q);
          q.nextSequence = 0;
        }
      }
      b.baseSequence = q.nextSequence;
      q.nextSequence = addSequence(q.nextSequence, b.sinks.length);
      q.unacked.push(b);
      b.transactional = s.transactional;
      if (q.producerId >= 0) {
        b.bytes = b.builder.finish({ producerId: q.producerId, producerEpoch: q.producerEpoch, baseSequence: b.baseSequence, transactional: s.transactional });
        b.stampedId = q.producerId;
        b.stampedEpoch = q.producerEpoch;
      } else {
        b.bytes = b.builder.finish();
      }
    } else {
      b.bytes = b.builder.finish();
    }
    q.ready.push(b);
    this.incomplete.add(b);
    if (!q.inReadyList) {
      q.inReadyList = true;
      this.readyList.push(q);
    }
    const expiry = b.createdMs + this.deliveryTimeoutMs;
    if (expiry < this.nextExpiryMs) this.nextExpiryMs = expiry;
    const t = q.topic;
    if (t.sticky === q.partition) t.sticky = this.nextSticky(t, q.partition);
    this.onReady();
  }

  /** Seals every open batch (flush, memory exhausted, close). */
  sealAll(): void {
    const list = this.openList;
    this.openList = [];
    for (let i = 0; i < list.length; i++) {
      const q = list[i]!;
      q.inOpenList = false;
      this.seal(q);
    }
  }

  /** Seals open batches at least lingerMs old; returns the age deadline of the oldest left, or -1. */
  sealExpired(nowMs: number): number {
    const list = this.openList;
    this.openList = [];
    let nextDeadlineMs = -1;
    for (let i = 0; i < list.length; i++) {
      const q = list[i]!;
      if (q.openTagged !== null && q.openTagged.size > 0) {
        // Tagged batches age one by one; q stays listed while any batch of it is open.
        const deadline = this.sealExpiredTagged(q, nowMs);
        if (deadline >= 0 && (nextDeadlineMs < 0 || deadline < nextDeadlineMs)) nextDeadlineMs = deadline;
        continue;
      }
      const b = q.open;
      if (b === null) {
        q.inOpenList = false;
      } else if (nowMs - b.createdMs >= this.lingerMs) {
        q.inOpenList = false;
        this.seal(q);
      } else {
        this.openList.push(q);
        const deadline = b.createdMs + this.lingerMs;
        if (nextDeadlineMs < 0 || deadline < nextDeadlineMs) nextDeadlineMs = deadline;
      }
    }
    return nextDeadlineMs;
  }

  /** sealExpired for a partition with tagged open batches; returns its next deadline or -1 (and unlists it). */
  private sealExpiredTagged(q: PartitionQueue, nowMs: number): number {
    let deadline = -1;
    const consider = (b: ProducerBatch) => {
      if (nowMs - b.createdMs >= this.lingerMs) this.sealBatch(b);
      else if (deadline < 0 || b.createdMs + this.lingerMs < deadline) deadline = b.createdMs + this.lingerMs;
    };
    if (q.open !== null) consider(q.open);
    for (const b of [...q.openTagged!.values()]) consider(b);
    if (deadline >= 0) this.openList.push(q);
    else q.inOpenList = false;
    return deadline;
  }

  private armLinger(): void {
    if (this.lingerMs === 0) {
      // Batch only what arrives in this turn of the event loop.
      if (this.immediateArmed) return;
      this.immediateArmed = true;
      setImmediate(() => {
        this.immediateArmed = false;
        this.sealAll();
      });
      return;
    }
    if (this.lingerTimer !== null) return;
    this.lingerTimer = setTimeout(() => this.onLinger(), this.lingerMs);
  }

  private onLinger(): void {
    this.lingerTimer = null;
    const now = Date.now();
    const next = this.sealExpired(now);
    if (next >= 0 && this.lingerTimer === null) this.lingerTimer = setTimeout(() => this.onLinger(), Math.max(1, next - now));
  }

  /**
   * Takes the sendable ready batches whose partitions `nodeId` leads, up to maxBytes in all
   * (at least one batch), whole partitions' queues in order. Batches in retry backoff stop
   * their partition (later batches must not overtake them).
   */
  drainNode(nodeId: number, nowMs: number, maxBytes: number, conn: object | null = null): ProducerBatch[] {
    const out: ProducerBatch[] = [];
    let bytes = 0;
    const list = this.readyList;
    // Start one partition further each time so a partition with a backlog cannot starve the rest.
    const start = list.length > 0 ? this.drainCursor++ % list.length : 0;
    for (let k = 0; k < list.length; k++) {
      const q = list[(start + k) % list.length]!;
      if (q.leader !== nodeId) continue;
      // Several batches of one partition may share this request (the broker appends them
      // together or not at all); only a batch still out in an earlier request mutes it.
      if (((this.strictOrder || q.retrying) && q.inFlight > 0) || (q.txnBlocked && (conn === null || q.txnPipelineConn !== conn))) continue;
      const ready = q.ready;
      while (ready.length > 0) {
        const b = ready[0]!;
        if (b.retryAtMs > nowMs) break;
        const n = b.bytes!.length;
        if (out.length > 0 && bytes + n > maxBytes) return this.pruneReady(out);
        ready.shift();
        q.inFlight++;
        b.sent = true;
        out.push(b);
        bytes += n;
        // An idempotent partition sends one batch per request, as Kafka's producer does: the
        // broker answers a resent batch it already holds as a duplicate only when it travels
        // alone (SPEC §6.6), and a retry of a request that held several batches would mix a
        // duplicate with new ones and be refused, again and again.
        if (this.idempotent) break;
      }
    }
    return this.pruneReady(out);
  }

  private pruneReady(out: ProducerBatch[]): ProducerBatch[] {
    let w = 0;
    const list = this.readyList;
    for (let i = 0; i < list.length; i++) {
      const q = list[i]!;
      if (q.ready.length > 0) list[w++] = q;
      else q.inReadyList = false;
    }
    list.length = w;
    return out;
  }

  /**
   * Leaders with sendable batches now, partitions waiting for a leader (-1 in the set), and
   * the earliest retry time among backed-off batches (-1 when none).
   */
  readyNodes(nowMs: number, out: Set<number>): number {
    let nextRetryMs = -1;
    for (let i = 0; i < this.readyList.length; i++) {
      const q = this.readyList[i]!;
      const head = q.ready[0];
      if (head === undefined || ((this.strictOrder || q.retrying) && q.inFlight > 0) || (q.txnBlocked && q.txnPipelineConn === null)) continue;
      if (head.retryAtMs > nowMs) {
        if (nextRetryMs < 0 || head.retryAtMs < nextRetryMs) nextRetryMs = head.retryAtMs;
        continue;
      }
      out.add(q.leader);
    }
    return nextRetryMs;
  }

  /**
   * Fails (through `onExpired`) every ready batch whose delivery deadline has passed; returns
   * the next deadline to check at (Infinity when no batch is ready). In-flight batches are
   * checked when their request ends (the producer's retryOrFail).
   */
  expire(nowMs: number, onExpired: (b: ProducerBatch) => void): number {
    if (nowMs < this.nextExpiryMs) return this.nextExpiryMs;
    let next = Infinity;
    const list = this.readyList;
    for (let i = 0; i < list.length; i++) {
      const ready = list[i]!.ready;
      // Batches of a partition are ready in seq order, so also in order of creation: the
      // expired ones are a prefix.
      while (ready.length > 0 && ready[0]!.createdMs + this.deliveryTimeoutMs <= nowMs) onExpired(ready.shift()!);
      if (ready.length > 0) next = Math.min(next, ready[0]!.createdMs + this.deliveryTimeoutMs);
    }
    this.nextExpiryMs = next;
    this.pruneReady([]);
    return next;
  }

  /** Puts a batch that failed retriably back in its partition's queue, in seq order. */
  requeue(b: ProducerBatch, retryAtMs: number): void {
    b.retryAtMs = retryAtMs;
    const q = b.queue;
    q.retrying = true;
    const expiry = b.createdMs + this.deliveryTimeoutMs;
    if (expiry < this.nextExpiryMs) this.nextExpiryMs = expiry;
    if (b.sent) {
      b.sent = false;
      q.inFlight--;
    }
    const ready = q.ready;
    let i = 0;
    while (i < ready.length && ready[i]!.seq < b.seq) i++;
    ready.splice(i, 0, b);
    if (!q.inReadyList) {
      q.inReadyList = true;
      this.readyList.push(q);
    }
  }

  /** Resolves every record of b; baseOffset < 0 (acks = 0) gives every record offset -1. */
  complete(b: ProducerBatch, baseOffset: number): void {
    const topic = b.queue.topic.name;
    const partition = b.queue.partition;
    const sinks = b.sinks;
    const slots = b.slots;
    // A delayed batch's baseOffset is its SCHEDULED wrapper's: the delayed message's id (SPEC §8.8).
    const delayed = b.deliverAtMs >= 0 && baseOffset >= 0 ? { delayedId: formatDelayedId(topic, partition, baseOffset), deliverAtMs: b.deliverAtMs } : null;
    for (let i = 0; i < sinks.length; i++) sinks[i]!.delivered(slots[i]!, topic, partition, baseOffset < 0 ? -1 : baseOffset + i, delayed);
    this.release(b);
  }

  /** Rejects every record of b. */
  fail(b: ProducerBatch, err: Error): void {
    const sinks = b.sinks;
    const slots = b.slots;
    for (let i = 0; i < sinks.length; i++) sinks[i]!.failed(slots[i]!, err);
    this.release(b);
  }

  /**
   * Writes the producer's current id, epoch and b's baseSequence into b's bytes (a batch
   * sealed before InitProducerId answered, or renumbered after an epoch bump). Per batch: one
   * header write and one CRC; the records are not touched.
   */
  restamp(b: ProducerBatch): void {
    const q = b.queue;
    if (q.producerId < 0) this.adopt(q);
    writeProducerFields(b.bytes!, 0, { producerId: q.producerId, producerEpoch: q.producerEpoch, baseSequence: b.baseSequence });
    resealBatch(b.bytes!, 0);
    b.stampedId = q.producerId;
    b.stampedEpoch = q.producerEpoch;
  }

  /** True when b must be restamped before it is sent (sealed before the id was known, or renumbered). */
  needsStamp(b: ProducerBatch): boolean {
    const q = b.queue;
    if (q.producerId < 0) return this.stamp.producerId >= 0;
    return b.stampedId !== q.producerId || b.stampedEpoch !== q.producerEpoch;
  }

  private adopt(q: PartitionQueue): void {
    q.producerId = this.stamp.producerId;
    q.producerEpoch = this.stamp.producerEpoch;
  }

  /**
   * After an epoch bump (SPEC §8.5): a partition's unacknowledged batches are renumbered from
   * 0 in their order under the new identity, and the partition continues after them; except a
   * partition with a batch that may already be in the log (`uncertain`), which keeps its
   * identity and sequences so that batch is deduplicated, unless it is in `force` (the
   * partition lost the producer's state: nothing can be deduplicated there any more). The
   * caller made sure none is in flight; the sender restamps each when it sends it.
   */
  renumberAll(force: ReadonlySet<PartitionQueue> = new Set()): void {
    for (const t of this.topics.values()) {
      for (const q of t.partitions) {
        if (!force.has(q) && q.producerId >= 0 && q.unacked.some((b) => b.uncertain)) continue;
        this.adopt(q);
        let seq = 0;
        for (const b of q.unacked) {
          b.baseSequence = seq;
          seq = addSequence(seq, b.recordCount);
        }
        q.nextSequence = seq;
      }
    }
  }

  /** Every partition of every topic (transactions: clearing their membership). */
  *partitionQueues(): Iterable<PartitionQueue> {
    for (const t of this.topics.values()) yield* t.partitions;
  }

  private release(b: ProducerBatch): void {
    if (this.idempotent) {
      const u = b.queue.unacked;
      if (u[0] === b) u.shift();
      else {
        const i = u.indexOf(b);
        if (i >= 0) u.splice(i, 1);
      }
    }
    // Only a batch in a request counts in inFlight (an expired or failAll'ed one was not sent).
    if (b.sent) {
      b.sent = false;
      b.queue.inFlight--;
    }
    // The retried batch is done (delivered or failed): later batches may be pipelined again.
    if (b.attempts > 0) b.queue.retrying = false;
    this.bufferUsedBytes -= b.reservedBytes;
    b.reservedBytes = 0;
    this.incomplete.delete(b);
    const builder = b.builder;
    builder.reset();
    if (this.pool.length < BUILDER_POOL_MAX) this.pool.push(builder);
    b.bytes = null;
    const waiters = b.waiters;
    if (waiters !== null) {
      b.waiters = null;
      for (const w of waiters) if (--w.remaining === 0) w.resolve();
    }
  }

  /** Calls resolve once every batch sealed so far has completed (open batches are not waited for). */
  whenSealedComplete(resolve: () => void): void {
    if (this.incomplete.size === 0) {
      resolve();
      return;
    }
    const w: FlushWaiter = { remaining: this.incomplete.size, resolve };
    for (const b of this.incomplete) (b.waiters ??= []).push(w);
  }

  /** Sealed batches not yet completed (ready or in flight). */
  get incompleteBatches(): number {
    return this.incomplete.size;
  }

  /** Fails q's open and ready (not in flight) batches (a partition a transaction could not add). */
  failPartitionUnsent(q: PartitionQueue, err: Error): void {
    this.seal(q);
    for (const b of q.ready.splice(0)) this.fail(b, err);
  }

  /** Fails every batch, open or sealed but not in flight (close without flush); returns how many. */
  failAll(err: Error): number {
    this.sealAll();
    let n = 0;
    for (const q of this.readyList) {
      const ready = q.ready.splice(0);
      q.inReadyList = false;
      for (const b of ready) this.fail(b, err);
      n += ready.length;
    }
    this.readyList.length = 0;
    return n;
  }

  stop(): void {
    if (this.lingerTimer !== null) clearTimeout(this.lingerTimer);
    this.lingerTimer = null;
  }
}

/** q's open batch for a tag set, or null. */
function openOf(q: PartitionQueue, tagKey: string): ProducerBatch | null {
  return q.openTagged?.get(tagKey) ?? null;
}

/** The bufferMemory charge of a record: its payload plus the framing upper bound. */
export function estimateRecordBytes(key: Uint8Array | null, value: Uint8Array | null, headersBytes: number): number {
  return (key === null ? 0 : key.length) + (value === null ? 0 : value.length) + headersBytes + RECORD_OVERHEAD_MAX_BYTES;
}
