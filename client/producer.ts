/**
 * The producer: send() encodes a record once into its partition's open batch (see
 * record-accumulator.ts) and returns a promise for its offset; the sender (sender.ts) combines
 * every ready batch led by the same broker into one Produce request, keeps at most maxInFlight
 * requests per broker, retries retriable failures with capped exponential backoff (refreshing
 * metadata when leadership may have moved), and settles each record's promise. This file is
 * the facade: options, accepting records (the hot path), waiting for metadata and buffer space.
 *
 * Failures (as Kafka's producer): a record is retried, with backoff and a metadata refresh
 * after NOT_LEADER, an unknown partition or a lost/refused connection, until it is delivered,
 * fails with a non-retriable error, or `deliveryTimeoutMs` (default 120 s) has passed since
 * its batch was opened; `retries` can cap the attempts further. A send waiting for the
 * topic's metadata waits up to deliveryTimeoutMs as well. A refused bootstrap or metadata
 * broker is skipped (cluster.ts); a leader that cannot be reached is avoided by keyless
 * records for a while, and each partition's batches are sent and retried on their own, so
 * partitions with a live leader keep going while another waits for failover.
 *
 * Ordering: records to one partition are appended and sent in send() order. Once a batch
 * of a partition has failed retriably, that partition has one request in flight until the
 * retry got through, so later batches cannot overtake it. Batches that were already in flight
 * concurrently when the failure happened can still land before the retry (as in Kafka
 * without idempotence): set maxInFlight: 1 (one request per partition at any time) when
 * strict per-partition order under every failure matters; `sluice produce` does.
 *
 * Back-pressure: records hold bufferMemory from send() until their batch completes. When a
 * record does not fit, it (and every later send, to keep order) waits in a FIFO until
 * completions free space; the promise simply settles later. Metadata for a topic not yet
 * known is fetched the same way: the send waits, like Kafka's send() blocking on metadata.
 *
 * Idempotence (on by default, SPEC §8.5; producer-delivery.ts has the rules): the producer
 * gets a producer id before its first Produce, numbers each partition's batches, and keeps
 * order and uniqueness across retries with up to 5 requests in flight per broker (sender.ts).
 * Transactions (transactionalId; transactions/transaction-manager.ts): begin()/commit()/
 * abort() or transaction(fn). Fencing fails every pending send with ProducerFencedError and
 * the producer refuses new sends.
 *
 * Delayed delivery (SPEC §8.8): `deliverAt` or `delayMs` on a message sets the
 * `sluice-deliver-at-ms` header on its record (delivery-time.ts checks the value at send); the
 * accumulator keeps such records in a batch of their own per (partition, delivery time), and
 * the result carries the delayed message's id (RecordMetadata.delayedId) for cancelling.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { ErrorCode, SluiceError } from '../protocol/errors.ts';
import { HEADER_DELIVER_AT_MS, HEADER_TAGS, type RecordHeader } from '../protocol/record-batch.ts';
import { canonicalTags, parseTagSet, tagSetString } from '../protocol/tags.ts';
import { Cluster, type ClientSecurity } from './cluster.ts';
import { toBytes, type BytesInput } from './codec.ts';
import { partitionForKey } from './partitioner.ts';
import {
  estimateRecordBytes,
  RecordAccumulator,
  type DelayedInfo,
  type DeliverySink,
  type RecordMetadata,
  type TopicQueue,
} from './record-accumulator.ts';
import { deliveryTimeOf, deliverAtHeaderValue } from './delivery-time.ts';
import { resolveDelivery, type DeliveryGuarantee } from './producer-delivery.ts';
import { isRetriable, Sender } from './sender.ts';
import { ProducerId } from './transactions/producer-id.ts';
import { TransactionManager, type GroupMetadataSource, type TxnOffset } from './transactions/transaction-manager.ts';

export { ProducerConfigError, type DeliveryGuarantee } from './producer-delivery.ts';
export { ProducerFencedError, TransactionAbortableError } from './transactions/errors.ts';
export type { GroupMetadata, GroupMetadataSource, TxnOffset } from './transactions/transaction-manager.ts';

export type { RecordMetadata } from './record-accumulator.ts';

export type Acks = 0 | 1 | -1 | 'all';

/**
 * Presets for batchSize, lingerMs and maxInFlight. Options given explicitly override them.
 *
 * - `'throughput'`: batchSize 1 MiB, lingerMs 10, maxInFlight 5. Each partition's batch
 *   fills for up to 10 ms, so requests are few and large: the highest msgs/s and the least
 *   broker CPU per record, at the cost of up to ~10 ms added latency per record.
 * - `'latency'`: batchSize 16 KiB, lingerMs 0, maxInFlight 10. A batch holds only what was
 *   sent in the same turn of the event loop and goes out on the next turn; more small
 *   requests may be pipelined. Lowest latency per record; more requests and CPU per record.
 * - none (default): batchSize 64 KiB, lingerMs 5, maxInFlight 5, a middle ground close to
 *   Kafka's current defaults.
 */
export type ProducerProfile = 'throughput' | 'latency';

export interface ProducerOptions extends ClientSecurity {
  /** Comma-separated host:port list, or an array of them. */
  bootstrap: string | string[];
  clientId?: string;
  /**
   * 'at-most-once' | 'at-least-once' (default) | 'exactly-once': sets acks, retries,
   * idempotence and transactions together (producer-delivery.ts); the options below override.
   */
  delivery?: DeliveryGuarantee;
  /**
   * 0: no response awaited, offsets are -1; 1: leader wrote it; -1/'all': all in-sync
   * replicas. Default 'all' (1 with delivery 'at-most-once').
   */
  acks?: Acks;
  /**
   * Producer id, epoch and sequence numbers on every batch, so retries never duplicate or
   * reorder (SPEC §8.5). Default true (false with delivery 'at-most-once'); needs acks 'all'
   * and maxInFlight <= 5. When only defaulted, an explicit acks 0/1 or maxInFlight > 5 turns it off.
   */
  idempotent?: boolean;
  /** Makes the producer transactional (begin/commit/abort, transaction()); implies idempotent. */
  transactionalId?: string;
  /** The longest a transaction may stay open before the coordinator aborts it. Default 60000. */
  transactionTimeoutMs?: number;
  profile?: ProducerProfile;
  /** Upper bound of one partition's batch in bytes; a record larger than it travels alone. */
  batchSize?: number;
  /** How long a batch may stay open waiting for more records; 0 = until the event loop turns. */
  lingerMs?: number;
  /** Bytes of records buffered or in flight before send() waits for space. Default 32 MiB. */
  bufferMemory?: number;
  /** Produce requests awaiting a response per broker connection. Default 5 (profile). */
  maxInFlight?: number;
  /** Further attempts after a retriable failure, at most. Default: unlimited (deliveryTimeoutMs bounds them). */
  retries?: number;
  /**
   * Upper bound on the time from send() until the record is acknowledged or failed,
   * retries included (Kafka's delivery.timeout.ms). Counted, as in Kafka, from when the
   * record's batch was opened (at most lingerMs before send()). A request already in flight
   * is waited for (up to requestTimeoutMs) before its records fail. Default 120000.
   */
  deliveryTimeoutMs?: number;
  /** First retry delay; doubles per attempt, with ±20 % jitter, up to retryBackoffMaxMs. Default 100. */
  retryBackoffMs?: number;
  /** Cap of the retry delay. Default 1000. */
  retryBackoffMaxMs?: number;
  /** How long a request may wait for its response (and the broker for acks). Default 30000. */
  requestTimeoutMs?: number;
  /** Upper bound of one Produce request's record bytes (several batches). Default 8 MiB or batchSize. */
  maxRequestBytes?: number;
}

/** What send() takes. key/value: strings are sent as UTF-8. */
export interface ProducerMessage {
  topic: string;
  key?: BytesInput;
  value: BytesInput;
  /** Header values as strings (UTF-8) or bytes; null is a null header value. */
  headers?: Record<string, BytesInput> | ReadonlyArray<{ key: string; value: BytesInput }>;
  /** Explicit partition; overrides the key. */
  partition?: number;
  /** Record timestamp in ms since the epoch; default Date.now(). */
  timestamp?: number;
  /**
   * Tags (SPEC §8.7) consumers can filter on at the broker: each 1-64 bytes of
   * `[A-Za-z0-9._:/-]`, at most 16; order and duplicates do not matter (canonicalised here).
   * Sent as the `sluice-tags` header; an invalid tag fails the send with INVALID_TAGS. A
   * `sluice-tags` entry in `headers` is read as the tags when this is absent (republishing).
   */
  tags?: readonly string[];
  /**
   * Deliver at this time (a Date or ms since the epoch), not before: consumers see the
   * message once the broker releases it (SPEC §8.8). A time in the past delivers at once; at
   * most DELAY_MS_MAX (400 days) ahead. Not with delayMs, not on a transactional producer.
   * Without deliverAt and delayMs, a `sluice-deliver-at-ms` entry in `headers` (a forwarded
   * message) is read as deliverAt when it is still ahead, and dropped when it has passed.
   */
  deliverAt?: Date | number;
  /** Deliver after this many ms (0 … DELAY_MS_MAX): deliverAt = now + delayMs. Not with deliverAt. */
  delayMs?: number;
}

/** Tag sets by canonical value (see tagSetOf), bounded: hot tag sets cost one lookup. */
const TAG_SET_CACHE_ENTRIES_MAX = 1024;
interface TagSet {
  /** The canonical header value ('' for none): the accumulator's batch key. */
  key: string;
  header: RecordHeader | null;
  /** [header], shared by every message with only these tags as headers (never mutated). */
  alone: RecordHeader[] | undefined;
  bytes: number;
}
const tagSetCache = new Map<string, TagSet>();
const NO_TAGS: TagSet = { key: '', header: null, alone: undefined, bytes: 0 };

/** The tag set of a message: its tags, or a `sluice-tags` header; throws INVALID_TAGS. */
function tagSetOf(msg: ProducerMessage, headers: RecordHeader[] | undefined): TagSet {
  let tags = msg.tags;
  if (tags === undefined && headers !== undefined) {
    const h = headers.find((x) => x.key === HEADER_TAGS);
    if (h) tags = parseTagSet(h.value);
  }
  if (tags === undefined || tags === null || tags.length === 0) return NO_TAGS;
  if (!Array.isArray(tags)) throw new SluiceError(ErrorCode.INVALID_TAGS, 'tags must be an array of strings');
  // Keyed by the canonical value, which only valid tags produce: a hit cannot skip a check.
  // A single tag is its own canonical value once checked, so the common case costs one lookup.
  let e = tags.length === 1 && typeof tags[0] === 'string' ? tagSetCache.get(tags[0]) : undefined;
  if (e === undefined) {
    const canonical = canonicalTags(tags);
    const key = tagSetString(canonical);
    e = tagSetCache.get(key);
    if (e === undefined) {
      const header: RecordHeader = { key: HEADER_TAGS, value: new TextEncoder().encode(key) };
      e = { key, header, alone: [header], bytes: HEADER_TAGS.length + key.length + 10 };
      if (tagSetCache.size >= TAG_SET_CACHE_ENTRIES_MAX) tagSetCache.delete(tagSetCache.keys().next().value!);
      tagSetCache.set(key, e);
    }
  }
  return e;
}

const PROFILES: Record<ProducerProfile | 'default', { batchSize: number; lingerMs: number; maxInFlight: number }> = {
  throughput: { batchSize: 1024 * 1024, lingerMs: 10, maxInFlight: 5 },
  latency: { batchSize: 16 * 1024, lingerMs: 0, maxInFlight: 10 },
  default: { batchSize: 64 * 1024, lingerMs: 5, maxInFlight: 5 },
};

const MAX_REQUEST_BYTES_DEFAULT = 8 * 1024 * 1024;
/** Kafka's defaults: retries unbounded (int max), records bounded by delivery.timeout.ms. */
const RETRIES_DEFAULT = 2_147_483_647;
const DELIVERY_TIMEOUT_MS_DEFAULT = 120_000;
/**
 * Metadata answers "no such topic" this many times before its sends fail: a broker that
 * answers knows the topic list (there is no auto-creation), so waiting the whole delivery
 * timeout would only hide a typo; a few tries cover a topic created a moment ago.
 */
const UNKNOWN_TOPIC_ATTEMPTS_MAX = 6;
const CLOSED = 'producer is closed';
/** The bufferMemory charge of a `sluice-deliver-at-ms` header: key, 15 digits, framing. */
const DELIVER_AT_HEADER_BYTES_MAX = HEADER_DELIVER_AT_MS.length + 15 + 10;

/** The delivery time a caller's sluice-deliver-at-ms header gives (decimal ms); INVALID_DELIVERY_TIME otherwise. */
function deliverAtFromHeader(headers: RecordHeader[]): number {
  const h = headers.find((x) => x.key === HEADER_DELIVER_AT_MS)!;
  const text = h.value === null ? '' : new TextDecoder().decode(h.value);
  if (!/^[0-9]{1,15}$/.test(text)) throw new SluiceError(ErrorCode.INVALID_DELIVERY_TIME, `header ${HEADER_DELIVER_AT_MS} must be decimal ms since the epoch, not ${JSON.stringify(text)}`);
  return deliveryTimeOf(Number(text), undefined, Date.now());
}
/** refusal(): the send opens an implicit transaction (exactly-once) first. */
const IMPLICIT = new Error('implicit transaction');

// One executor shared by every send(): no closure per message beyond the promise's own.
let capturedResolve: (m: RecordMetadata) => void = () => {};
let capturedReject: (e: Error) => void = () => {};
function capture(resolve: (m: RecordMetadata) => void, reject: (e: Error) => void): void {
  capturedResolve = resolve;
  capturedReject = reject;
}

/** The promise of one send(). */
class SingleSink implements DeliverySink {
  constructor(private readonly resolve: (m: RecordMetadata) => void, private readonly reject: (e: Error) => void) {}
  delivered(_slot: number, topic: string, partition: number, offset: number, delayed: DelayedInfo | null): void {
    this.resolve(delayed === null ? { topic, partition, offset } : { topic, partition, offset, delayedId: delayed.delayedId, deliverAtMs: delayed.deliverAtMs });
  }
  failed(_slot: number, err: Error): void {
    this.reject(err);
  }
}

/** The promise of one sendBatch(): results by input index; rejects on the first failure. */
class BulkSink implements DeliverySink {
  private remaining: number;
  private settled = false;
  readonly results: RecordMetadata[];
  constructor(n: number, private readonly resolve: (r: RecordMetadata[]) => void, private readonly reject: (e: Error) => void) {
    this.remaining = n;
    this.results = new Array<RecordMetadata>(n);
  }
  delivered(slot: number, topic: string, partition: number, offset: number, delayed: DelayedInfo | null): void {
    this.results[slot] = delayed === null ? { topic, partition, offset } : { topic, partition, offset, delayedId: delayed.delayedId, deliverAtMs: delayed.deliverAtMs };
    if (--this.remaining === 0 && !this.settled) {
      this.settled = true;
      this.resolve(this.results);
    }
  }
  failed(_slot: number, err: Error): void {
    this.remaining--;
    if (this.settled) return;
    this.settled = true;
    this.reject(err);
  }
}

/** A send that could not be appended yet (no metadata, no buffer space) or a flush marker. */
interface Waiting {
  msg: ProducerMessage | null;
  sink: DeliverySink | null;
  slot: number;
  flush: (() => void) | null;
}

function normalizeAcks(acks: Acks | undefined): number {
  if (acks === undefined) return 1;
  if (acks === 'all') return -1;
  if (acks === 0 || acks === 1 || acks === -1) return acks;
  throw new SluiceError(ErrorCode.INVALID_REQUIRED_ACKS, `acks ${String(acks)}`);
}

function positiveInt(name: string, v: number): number {
  if (!Number.isInteger(v) || v <= 0) throw new RangeError(`${name} must be a positive integer, got ${v}`);
  return v;
}

function encodeHeaders(h: ProducerMessage['headers']): { headers: RecordHeader[] | undefined; bytes: number } {
  if (h === undefined || h === null) return { headers: undefined, bytes: 0 };
  const out: RecordHeader[] = [];
  let bytes = 0;
  const add = (key: string, value: BytesInput) => {
    const v = toBytes(value);
    out.push({ key, value: v });
    bytes += key.length * 3 + (v === null ? 0 : v.length) + 10;
  };
  if (Array.isArray(h)) for (const e of h as ReadonlyArray<{ key: string; value: BytesInput }>) add(e.key, e.value);
  else for (const k of Object.keys(h)) add(k, (h as Record<string, BytesInput>)[k]);
  return { headers: out.length > 0 ? out : undefined, bytes };
}

/** The handle a transaction(fn) callback gets: sends and offsets inside that transaction. */
export interface TransactionContext {
  send(msg: ProducerMessage): Promise<RecordMetadata>;
  sendBatch(msgs: readonly ProducerMessage[]): Promise<RecordMetadata[]>;
  sendOffsets(group: GroupMetadataSource, offsets: readonly TxnOffset[]): Promise<void>;
}

const TRANSACTION_TIMEOUT_MS_DEFAULT = 60_000;

export class Producer {
  readonly delivery: DeliveryGuarantee;
  readonly idempotent: boolean;
  readonly transactionalId: string | null;
  readonly acks: number;
  readonly batchSize: number;
  readonly lingerMs: number;
  readonly bufferMemory: number;
  readonly maxInFlight: number;
  readonly retries: number;
  readonly deliveryTimeoutMs: number;
  readonly retryBackoffMs: number;
  readonly retryBackoffMaxMs: number;
  readonly requestTimeoutMs: number;
  readonly maxRequestBytes: number;
  readonly cluster: Cluster;
  private readonly acc: RecordAccumulator;
  /** FIFO of sends waiting for metadata or space; [head, length) are live. */
  private waiting: Array<Waiting | undefined> = [];
  private waitingHead = 0;
  private readonly loading = new Set<string>();
  private readonly topicErrors = new Map<string, Error>();
  private readonly sender: Sender;
  private lastTopicName = '';
  private lastTopic: TopicQueue | undefined = undefined;
  private closing = false;
  private closed = false;
  private readonly txn: TransactionManager | null = null;
  /** exactly-once: sends outside an explicit transaction open one, which flush()/close() commit. */
  private readonly implicitTransactions: boolean;
  private implicitOpen = false;
  /** Sends that arrived while an implicit transaction was committing: appended after it ended. */
  private readonly afterImplicit: Array<() => void> = [];

  /**
   * `metadataOf`: a Cluster whose metadata cache to share (this producer then opens a lane of
   * it, with its own connections and clientId), so one client made of several parts (the
   * group runner's retry producer) keeps one cache. Without it the producer has its own.
   */
  constructor(options: ProducerOptions, metadataOf?: Cluster) {
    const profile = PROFILES[options.profile ?? 'default'];
    if (!profile) throw new RangeError(`unknown producer profile ${String(options.profile)}`);
    const d = resolveDelivery({
      delivery: options.delivery,
      acks: options.acks === undefined ? undefined : normalizeAcks(options.acks),
      retries: options.retries,
      idempotent: options.idempotent,
      transactionalId: options.transactionalId,
      maxInFlight: options.maxInFlight,
      profileMaxInFlight: profile.maxInFlight,
    });
    this.delivery = d.delivery;
    this.idempotent = d.idempotent;
    this.transactionalId = d.transactionalId;
    this.implicitTransactions = d.implicitTransactions;
    this.acks = d.acks;
    this.batchSize = positiveInt('batchSize', options.batchSize ?? profile.batchSize);
    this.lingerMs = options.lingerMs ?? profile.lingerMs;
    if (!Number.isFinite(this.lingerMs) || this.lingerMs < 0) throw new RangeError(`lingerMs must be >= 0, got ${this.lingerMs}`);
    this.bufferMemory = positiveInt('bufferMemory', options.bufferMemory ?? 32 * 1024 * 1024);
    this.maxInFlight = positiveInt('maxInFlight', d.maxInFlight);
    this.retries = d.retries ?? RETRIES_DEFAULT;
    if (!Number.isInteger(this.retries) || this.retries < 0) throw new RangeError(`retries must be an integer >= 0, got ${this.retries}`);
    this.deliveryTimeoutMs = positiveInt('deliveryTimeoutMs', options.deliveryTimeoutMs ?? DELIVERY_TIMEOUT_MS_DEFAULT);
    this.retryBackoffMs = positiveInt('retryBackoffMs', options.retryBackoffMs ?? 100);
    this.retryBackoffMaxMs = Math.max(this.retryBackoffMs, options.retryBackoffMaxMs ?? 1000);
    this.requestTimeoutMs = positiveInt('requestTimeoutMs', options.requestTimeoutMs ?? 30_000);
    this.maxRequestBytes = positiveInt('maxRequestBytes', options.maxRequestBytes ?? Math.max(MAX_REQUEST_BYTES_DEFAULT, this.batchSize));
    const connection = { clientId: options.clientId ?? 'sluice-producer', requestTimeoutMs: this.requestTimeoutMs };
    this.cluster = metadataOf ? metadataOf.lane(connection) : new Cluster({ bootstrap: options.bootstrap, ...connection, tls: options.tls, sasl: options.sasl });
    this.acc = new RecordAccumulator({
      batchSizeBytes: this.batchSize,
      lingerMs: this.lingerMs,
      bufferMemoryBytes: this.bufferMemory,
      onReady: () => this.sender.scheduleDrain(),
      strictOrder: this.maxInFlight === 1,
      deliveryTimeoutMs: this.deliveryTimeoutMs,
      idempotent: this.idempotent,
    });
    const { acks, maxInFlight, retries, deliveryTimeoutMs, retryBackoffMs, retryBackoffMaxMs, requestTimeoutMs, maxRequestBytes } = this;
    const settings = {
      acks, maxInFlight, retries, deliveryTimeoutMs, retryBackoffMs, retryBackoffMaxMs, requestTimeoutMs, maxRequestBytes,
      idempotent: this.idempotent,
      idempotentExplicit: d.idempotentExplicit,
      transactional: this.transactionalId !== null,
    };
    const pid = this.idempotent ? new ProducerId() : null;
    this.sender = new Sender(this.cluster, this.acc, settings, () => {
      if (this.waitingHead < this.waiting.length) this.drainWaiting();
    }, pid);
    if (this.transactionalId !== null) {
      const transactionTimeoutMs = positiveInt('transactionTimeoutMs', options.transactionTimeoutMs ?? TRANSACTION_TIMEOUT_MS_DEFAULT);
      this.txn = new TransactionManager(this.cluster, this.acc, this.sender, pid!, {
        transactionalId: this.transactionalId,
        transactionTimeoutMs,
        requestTimeoutMs,
        retryBackoffMs,
        retryBackoffMaxMs,
        timeoutMs: deliveryTimeoutMs,
      }, () => this.flushSealed());
      // Register the transactional id at once (Kafka's initTransactions() right after the
      // constructor): a restarted instance fences its predecessor and aborts what that left
      // open before it reads anything, so its consumer does not wait on the dead instance's
      // pending offsets (OffsetFetch requireStable) until the transaction timeout. Failures
      // surface at the first initTransactions()/begin()/send, which try again.
      this.txn.init().catch(() => {});
    }
  }

  // ---- transactions ----------------------------------------------------------------------

  private transactions(): TransactionManager {
    if (this.txn === null) throw new SluiceError(ErrorCode.INVALID_TXN_STATE, 'transactions need a transactionalId in the producer options');
    return this.txn;
  }

  /**
   * Registers the transactional id with its coordinator (InitProducerId): fences every older
   * instance of it and completes a transaction such an instance left open. begin() and
   * transaction() call it when needed.
   */
  initTransactions(): Promise<void> {
    return this.transactions().init();
  }

  /** Opens a transaction: sends until commit() or abort() belong to it. */
  async begin(): Promise<void> {
    const txn = this.transactions();
    if (txn.state === 'uninitialized') await txn.init();
    if (this.implicitOpen) await this.commitImplicit();
    txn.begin();
  }

  /** Commits the open transaction: waits for every send of it, then EndTxn. Throws TransactionAbortableError if it cannot commit (then abort()). */
  commit(): Promise<void> {
    return this.transactions().commit();
  }

  /** Aborts the open transaction: its records are never shown to read_committed consumers. */
  abort(): Promise<void> {
    return this.transactions().abort();
  }

  /** Adds a consumer group's offsets (next offsets to read) to the open transaction (KIP-447 fencing by member). */
  sendOffsets(group: GroupMetadataSource, offsets: readonly TxnOffset[]): Promise<void> {
    return this.transactions().sendOffsets(group, offsets);
  }

  /**
   * Runs fn in a transaction: commits when it resolves, aborts when it throws (and rethrows).
   * A fenced producer (ProducerFencedError) is not aborted: it can do nothing more.
   */
  async transaction<T>(fn: (tx: TransactionContext) => Promise<T>): Promise<T> {
    await this.begin();
    const tx: TransactionContext = {
      send: (m) => this.send(m),
      sendBatch: (m) => this.sendBatch(m),
      sendOffsets: (g, o) => this.sendOffsets(g, o),
    };
    let result: T;
    try {
      result = await fn(tx);
      await this.commit();
    } catch (e) {
      if (this.sender.fatal === null && this.txn!.state === 'in-transaction') await this.abort().catch(() => {});
      throw e;
    }
    return result;
  }

  /** Commits the implicit transaction (aborting it if it cannot commit), then lets the sends that waited for it in. */
  private async commitImplicit(): Promise<void> {
    this.implicitOpen = false;
    try {
      await this.txn!.commit();
    } catch (e) {
      if (this.sender.fatal === null && this.txn!.state === 'in-transaction') await this.txn!.abort().catch(() => {});
      throw e;
    } finally {
      const waiting = this.afterImplicit.splice(0);
      for (const f of waiting) f();
    }
  }

  /** Seals and waits for every batch (not the sends still waiting for metadata or space). */
  private flushSealed(): Promise<void> {
    return new Promise<void>((resolve) => {
      if (this.waitingHead === this.waiting.length) {
        this.acc.sealAll();
        this.acc.whenSealedComplete(resolve);
      } else {
        this.waiting.push({ msg: null, sink: null, slot: 0, flush: resolve });
      }
    });
  }

  /**
   * What the producer is waiting on, for progress reports: the reason of the latest retry
   * (null if none yet), when it happened (ms since the epoch) and the number of retries so far.
   */
  retryStatus(): { lastReason: string | null; lastAtMs: number; retries: number } {
    return this.sender.retryStatus();
  }

  /** Sends one record; resolves with its partition and offset once acknowledged (offset -1 with acks 0). */
  send(msg: ProducerMessage): Promise<RecordMetadata> {
    const p = new Promise<RecordMetadata>(capture);
    this.accept(msg, new SingleSink(capturedResolve, capturedReject), 0);
    return p;
  }

  /**
   * Sends many records with one promise: resolves with each record's metadata, in input
   * order, when all are acknowledged; rejects with the first failure.
   */
  sendBatch(msgs: readonly ProducerMessage[]): Promise<RecordMetadata[]> {
    if (msgs.length === 0) return Promise.resolve([]);
    let sink: BulkSink | null = null;
    const p = new Promise<RecordMetadata[]>((resolve, reject) => {
      sink = new BulkSink(msgs.length, resolve, reject);
    });
    for (let i = 0; i < msgs.length; i++) this.accept(msgs[i]!, sink!, i);
    return p;
  }

  /**
   * Resolves when every record sent before this call has been acknowledged or has failed.
   * exactly-once: also commits the transaction sends outside an explicit one opened.
   */
  async flush(): Promise<void> {
    await this.flushSealed();
    if (this.implicitOpen) await this.commitImplicit();
  }

  /** Flushes, then closes the connections. Sends after close() begins are rejected. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    try {
      // exactly-once: flush() commits the implicit transaction, and may fail doing so.
      await this.flush();
    } finally {
      this.closed = true;
      this.txn?.close();
      this.acc.stop();
      this.sender.stop();
      this.cluster.close();
    }
  }

  // ---- accepting records -------------------------------------------------------------

  private accept(msg: ProducerMessage, sink: DeliverySink, slot: number): void {
    if (this.closing && !this.implicitOpen) {
      sink.failed(slot, new Error(CLOSED));
      return;
    }
    if (this.txn !== null || this.sender.fatal !== null) {
      // The broker refuses a delivery time on a transactional batch (SPEC §8.8): say so at send.
      if (this.txn !== null && ((msg.deliverAt !== undefined && msg.deliverAt !== null) || (msg.delayMs !== undefined && msg.delayMs !== null))) {
        sink.failed(slot, new SluiceError(ErrorCode.INVALID_DELIVERY_TIME, 'a transactional producer cannot send delayed messages (SPEC §8.8): use a producer without transactionalId'));
        return;
      }
      const refused = this.refusal();
      if (refused !== null) {
        if (refused !== IMPLICIT) {
          sink.failed(slot, refused);
          return;
        }
        this.openImplicit(msg, sink, slot);
        return;
      }
    }
    const name = msg.topic;
    const t = name === this.lastTopicName ? this.lastTopic : this.acc.topic(name);
    if (t !== undefined && this.waitingHead === this.waiting.length) {
      if (this.tryAppend(t, msg, sink, slot)) {
        this.lastTopicName = name;
        this.lastTopic = t;
        return;
      }
      // No room: make every open batch sendable so completions can free space.
      this.acc.sealAll();
    } else if (t === undefined) {
      if (typeof name !== 'string' || name.length === 0) {
        sink.failed(slot, new SluiceError(ErrorCode.INVALID_TOPIC, `topic ${JSON.stringify(name)}`));
        return;
      }
      if (!this.loading.has(name)) void this.loadTopic(name);
    }
    this.waiting.push({ msg, sink, slot, flush: null });
  }

  /** Why a send cannot go ahead now (null: it can; IMPLICIT: after opening an implicit transaction). */
  private refusal(): Error | null {
    if (this.sender.fatal !== null) return this.sender.fatal;
    const txn = this.txn!;
    if (txn.state === 'in-transaction') return txn.sendRefusal();
    if (this.implicitTransactions && !this.closing) return IMPLICIT;
    return txn.sendRefusal();
  }

  /**
   * exactly-once: a send outside a transaction opens one (initialising the id first if
   * needed); while the previous implicit one commits, it waits for that to end.
   */
  private openImplicit(msg: ProducerMessage, sink: DeliverySink, slot: number): void {
    const txn = this.txn!;
    if (txn.state === 'ready') {
      txn.begin();
      this.implicitOpen = true;
      this.accept(msg, sink, slot);
    } else if (txn.state === 'uninitialized') {
      txn.init().then(
        () => this.accept(msg, sink, slot),
        (e: Error) => sink.failed(slot, e),
      );
    } else {
      this.afterImplicit.push(() => this.accept(msg, sink, slot));
    }
  }

  /** Encodes and appends msg if the buffer has room; false (nothing done) otherwise. Failures settle the sink. */
  private tryAppend(t: TopicQueue, msg: ProducerMessage, sink: DeliverySink, slot: number): boolean {
    let key: Uint8Array | null;
    let value: Uint8Array | null;
    let headers: RecordHeader[] | undefined;
    let headersBytes = 0;
    let tagKey = '';
    let deliverAtMs = -1;
    try {
      key = toBytes(msg.key);
      value = toBytes(msg.value);
      if (msg.headers !== undefined) {
        const h = encodeHeaders(msg.headers);
        headers = h.headers;
        headersBytes = h.bytes;
      }
      if (msg.tags !== undefined || headers !== undefined) {
        const tagSet = tagSetOf(msg, headers);
        // The header goes last, replacing any sluice-tags the caller's headers carried.
        if (headers === undefined) headers = tagSet.alone;
        else {
          const others = headers.filter((x) => x.key !== HEADER_TAGS);
          headers = tagSet.header ? [...others, tagSet.header] : others.length > 0 ? others : undefined;
        }
        headersBytes += tagSet.bytes;
        tagKey = tagSet.key;
      }
      const given = msg.deliverAt !== undefined || msg.delayMs !== undefined;
      if (given || (headers !== undefined && headers.some((x) => x.key === HEADER_DELIVER_AT_MS))) {
        const nowMs = Date.now();
        // A sluice-deliver-at-ms header the caller passed (a forwarded message) is read as
        // deliverAt when none is given; a time already past is dropped, so forwarding released
        // messages neither fails (the header at most once per record) nor splits batches per ms.
        deliverAtMs = given ? deliveryTimeOf(msg.deliverAt, msg.delayMs, nowMs) : deliverAtFromHeader(headers!);
        headers = headers?.filter((x) => x.key !== HEADER_DELIVER_AT_MS);
        if (deliverAtMs >= 0 && (given || deliverAtMs > nowMs)) {
          (headers ??= []).push({ key: HEADER_DELIVER_AT_MS, value: deliverAtHeaderValue(deliverAtMs) });
          headersBytes += DELIVER_AT_HEADER_BYTES_MAX;
        } else {
          deliverAtMs = -1;
          if (headers !== undefined && headers.length === 0) headers = undefined;
        }
      }
    } catch (e) {
      sink.failed(slot, e as Error);
      return true;
    }
    const size = estimateRecordBytes(key, value, headersBytes);
    if (!this.acc.hasRoom(size)) return false;
    const n = t.partitions.length;
    let partition = -1;
    if (msg.partition !== undefined && msg.partition !== null) {
      partition = msg.partition;
      if (!Number.isInteger(partition) || partition < 0 || partition >= n) {
        sink.failed(slot, new SluiceError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `${t.name}/${partition}: the topic has ${n} partitions`));
        return true;
      }
    } else if (key !== null) {
      partition = partitionForKey(key, n);
    }
    const ts = msg.timestamp ?? Date.now();
    this.acc.append(t, partition, key, value, headers, ts, size, sink, slot, deliverAtMs < 0 ? tagKey : `${tagKey}@${deliverAtMs}`, deliverAtMs);
    return true;
  }

  /** Appends waiting sends in order until one must wait again. */
  private drainWaiting(): void {
    const w = this.waiting;
    while (this.waitingHead < w.length) {
      const e = w[this.waitingHead]!;
      if (e.flush !== null) {
        this.acc.sealAll();
        this.acc.whenSealedComplete(e.flush);
      } else {
        const msg = e.msg!;
        const t = this.acc.topic(msg.topic);
        if (t === undefined) {
          const err = this.topicErrors.get(msg.topic);
          if (err === undefined) {
            if (!this.loading.has(msg.topic)) void this.loadTopic(msg.topic);
            break;
          }
          e.sink!.failed(e.slot, err);
        } else if (!this.tryAppend(t, msg, e.sink!, e.slot)) {
          this.acc.sealAll();
          break;
        }
      }
      w[this.waitingHead++] = undefined;
    }
    if (this.waitingHead === w.length) {
      this.waiting = [];
      this.waitingHead = 0;
    } else if (this.waitingHead > 4096 && this.waitingHead * 2 > w.length) {
      this.waiting = w.slice(this.waitingHead);
      this.waitingHead = 0;
    }
  }

  // ---- metadata ------------------------------------------------------------------------

  /** Fetches a topic's metadata, retrying retriable failures; then lets waiting sends through (or fail). */
  private async loadTopic(name: string): Promise<void> {
    this.loading.add(name);
    this.topicErrors.delete(name);
    const deadlineMs = Date.now() + this.deliveryTimeoutMs;
    for (let attempt = 0; ; attempt++) {
      let err: Error;
      try {
        const md = await this.cluster.refreshMetadata([name]);
        const tm = md.topics.find((x) => x.topic === name);
        if (tm && tm.errorCode === ErrorCode.NONE && tm.partitions.length > 0) {
          this.sender.applyTopic(tm);
          break;
        }
        err = new SluiceError((tm && tm.errorCode !== ErrorCode.NONE ? tm.errorCode : ErrorCode.UNKNOWN_TOPIC_OR_PARTITION) as ErrorCode, `topic ${name}`);
      } catch (e) {
        err = e as Error;
      }
      const unknown = err instanceof SluiceError && err.code === ErrorCode.UNKNOWN_TOPIC_OR_PARTITION;
      if (this.closed || attempt >= this.retries || !isRetriable(err) || (unknown && attempt + 1 >= UNKNOWN_TOPIC_ATTEMPTS_MAX)) {
        this.topicErrors.set(name, err);
        break;
      }
      const now = Date.now();
      if (now >= deadlineMs) {
        this.topicErrors.set(name, this.sender.deliveryTimeout(attempt + 1, err));
        break;
      }
      this.sender.noteRetry(`metadata for ${name}: ${err.message}`);
      // The last try is at the deadline, not a backoff before it.
      await delay(Math.min(this.sender.backoffMs(attempt), deadlineMs - now));
    }
    this.loading.delete(name);
    this.drainWaiting();
    // The error only answers the sends that were waiting for this load; a later send retries.
    this.topicErrors.delete(name);
  }

}
