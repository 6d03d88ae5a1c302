/**
 * The transaction coordinator (SPEC §6.19-6.22, §7.6): for every transactional id whose
 * `__transaction_state` partition this broker leads, its producer id and epoch and its current
 * transaction's state, kept in memory and written to the partition (fsync + every in-sync
 * replica) before any answer depends on it. Placed like the group coordinator: the leader of
 * partition murmur2(transactionalId) mod 8.
 *
 * Invariants:
 * - A partition's ids are served only once it is loaded: replayed up to its log end after this
 *   broker became its leader (COORDINATOR_NOT_AVAILABLE until then, NOT_COORDINATOR when
 *   another broker leads it). coordinatorEpoch is the partition's leader epoch at load.
 * - Memory changes only after the record saying so is durable, and only while the partition is
 *   still loaded under the same coordinatorEpoch: a coordinator deposed meanwhile never acts on
 *   a write the new one may not have seen.
 * - At most one state write per transactional id at a time (`busy`): a request arriving
 *   meanwhile gets CONCURRENT_TRANSACTIONS (retriable), so writes of one id never reorder.
 * - A transaction in prepare-commit/prepare-abort is being completed (markers, then
 *   complete-*) by exactly one completion at a time (`completing`); the sweep restarts a
 *   completion that failed (and loading starts one for every prepare state found).
 * - An AddPartitionsToTxn is registered in `addsInFlight` from its start (synchronously, before
 *   any await) until it is answered, and its waiters learn the answer only after the state is
 *   in memory: a transactional batch pipelined behind it (SPEC §6.6) is checked against the
 *   state the answer reflects, or refused when the partition was not added; never on trust.
 * - At most transactionalIdsMax ids per coordinator; TXN_PARTITIONS_MAX partitions per transaction.
 *   An id without a transaction (empty, complete-*) unchanged for transactionalIdExpirationMs is
 *   forgotten (a tombstone record), as Kafka's transactional.id.expiration.ms: its next
 *   InitProducerId starts afresh with a new producer id.
 */
import type { AddOffsetsToTxnRequest, AddOffsetsToTxnResponse } from '../../protocol/apis/add-offsets-to-txn.ts';
import type { AddPartitionsToTxnRequest, AddPartitionsToTxnResponse } from '../../protocol/apis/add-partitions-to-txn.ts';
import type { EndTxnRequest, EndTxnResponse } from '../../protocol/apis/end-txn.ts';
import type { InitProducerIdRequest, InitProducerIdResponse } from '../../protocol/apis/init-producer-id.ts';
import { ErrorCode, SluiceError } from '../../protocol/errors.ts';
import { batchSizeAt, BatchBuilder, decodeRecords, lastOffsetAt, type DecodedRecord } from '../../protocol/record-batch.ts';
import { assert } from '../assert.ts';
import { OFFSETS_TOPIC, offsetsPartitionFor } from '../group/offset-store.ts';
import type { Logger } from '../logger.ts';
import type { TopicManager } from '../partition/topic-manager.ts';
import { isInternalTopic } from '../partition/topic-names.ts';
import type { ProducerIdManager } from './producer-id-manager.ts';
import {
  decodeTxnKey,
  decodeTxnValue,
  encodeTxnKey,
  encodeTxnValue,
  TRANSACTIONAL_ID_BYTES_MAX,
  TXN_PARTITIONS_MAX,
  TXN_STATE_TOPIC,
  TXN_STATE_TOPIC_CONFIG,
  TXN_STATE_TOPIC_PARTITIONS,
  txnStatePartitionFor,
  TxnRecordError,
} from './transaction-log.ts';
import { checkTransition, hasPartition, isPrepare, partitionCount, withPartitions, type TxnMetadata } from './transaction-state.ts';
import type { TxnMarkerSender } from './txn-marker-sender.ts';

/** Longest an AddPartitionsToTxn/AddOffsetsToTxn waits for the previous transaction's completion (completionOf). */
const COMPLETION_WAIT_MS = 5_000;
const PRODUCER_EPOCH_MAX = 32767;
const GROUP_ID_BYTES_MAX = 249;
/** Bytes replayed per event-loop turn while loading a partition (as the offsets replay). */
const REPLAY_READ_BYTES = 512 * 1024;

export interface TxnCoordinatorConfig {
  transactionTimeoutMsMax: number;
  transactionalIdsMax: number;
  transactionSweepIntervalMs: number;
  transactionalIdExpirationMs: number;
}

/**
 * Appends records to a `__transaction_state` partition as its leader; resolves once on every
 * in-sync replica and, unless `fsync` is false, fsynced. The append itself happens before it
 * returns.
 */
export type TxnStateAppend = (partition: number, records: Buffer, fsync: boolean) => Promise<void>;

interface Entry {
  meta: TxnMetadata;
  /** A state write for this id is in flight. */
  busy: boolean;
  /** The completion (markers, then complete-*) running for a prepare state. */
  completing: Promise<void> | null;
}

interface AddInFlight {
  producerEpoch: number;
  /** topic NUL partition of every partition the request names. */
  keys: Set<string>;
  /** The request's answer: each partition's error code. */
  answered: Promise<Map<string, number>>;
}

/** The key of a partition in AddInFlight.keys. */
function tpKey(topic: string, partition: number): string {
  return `${topic}\u0000${partition}`;
}

interface LoadedPartition {
  coordinatorEpoch: number;
  ids: Map<string, Entry>;
}

class TxnError extends SluiceError {}

function fail(code: ErrorCode, message: string): never {
  throw new TxnError(code, message);
}

function checkTransactionalId(id: string): void {
  if (id.length === 0 || Buffer.byteLength(id, 'utf8') > TRANSACTIONAL_ID_BYTES_MAX) fail(ErrorCode.INVALID_TXN_STATE, `transactionalId must be 1-${TRANSACTIONAL_ID_BYTES_MAX} bytes of UTF-8`);
}

export class TransactionCoordinator {
  private readonly partitions = new Map<number, LoadedPartition>();
  /**
   * producerId -> the transactional id it was last seen with, for the partitions' check of a
   * transactional batch (verifyTxnStart). Only a hint: always confirmed against the id's entry.
   * Set at load and at every write; an id's entry leaves with its partition or its expiry.
   */
  private readonly idOfProducer = new Map<number, string>();
  private readonly loading = new Map<number, Promise<void>>();
  /**
   * AddPartitionsToTxn requests being handled, by producer id: a transactional batch that
   * arrives meanwhile for one of their partitions (a producer pipelining its Produce right
   * behind the request, SPEC §6.6) waits for the answer before it is checked. Registered
   * synchronously when the request starts, so a Produce behind it on the same connection
   * always finds it; removed when it is answered. Bounded by the requests in flight.
   */
  private readonly addsInFlight = new Map<number, AddInFlight[]>();
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(
    private readonly topics: TopicManager,
    private readonly producerIds: ProducerIdManager,
    private readonly appendDurably: TxnStateAppend,
    private readonly markers: TxnMarkerSender,
    private readonly config: TxnCoordinatorConfig,
    private readonly log: Logger,
  ) {}

  /** Creates the internal topic when missing (the caller decides when a cluster is ready for it). */
  async ensureTopic(replicationFactor: number): Promise<void> {
    await this.topics.ensureInternal(TXN_STATE_TOPIC, TXN_STATE_TOPIC_PARTITIONS, TXN_STATE_TOPIC_CONFIG, replicationFactor);
  }

  start(): void {
    this.timer = setInterval(() => this.sweep(), this.config.transactionSweepIntervalMs);
    this.timer.unref();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.markers.stop();
  }

  async whenLoaded(): Promise<void> {
    await Promise.all(this.loading.values());
  }

  isLoaded(partition: number): boolean {
    return this.partitions.has(partition);
  }

  /** Transactional ids this coordinator holds (all loaded partitions). */
  get idCount(): number {
    let n = 0;
    for (const p of this.partitions.values()) n += p.ids.size;
    return n;
  }

  /** The state of one id, for tests and diagnostics. */
  describe(transactionalId: string): TxnMetadata | undefined {
    const m = this.partitions.get(txnStatePartitionFor(transactionalId))?.ids.get(transactionalId)?.meta;
    return m && structuredClone(m);
  }

  // ---- leadership ------------------------------------------------------------------------

  /** This broker became the leader of a `__transaction_state` partition: replay it, then serve its ids. */
  loadPartition(partition: number): Promise<void> {
    const running = this.loading.get(partition);
    if (running) return running;
    const p = this.replay(partition)
      .catch((e) => this.log.error('failed to load transaction state', { partition, error: e as Error }))
      .finally(() => this.loading.delete(partition));
    this.loading.set(partition, p);
    return p;
  }

  /** Leadership moved away: forget the partition's ids and stop completing their transactions. */
  unloadPartition(partition: number): void {
    const loaded = this.partitions.get(partition);
    if (loaded) for (const e of loaded.ids.values()) this.idOfProducer.delete(e.meta.producerId);
    this.partitions.delete(partition);
    this.markers.cancel(partition);
  }

  private async replay(partition: number): Promise<void> {
    this.unloadPartition(partition);
    const local = this.topics.localPartition(TXN_STATE_TOPIC, partition);
    const log = this.topics.partition(TXN_STATE_TOPIC, partition);
    if (!local || !log || !local.isLeader) return;
    const coordinatorEpoch = local.leaderEpoch;
    const ids = new Map<string, Entry>();
    let offset = log.logStartOffset;
    let records = 0;
    let skipped = 0;
    while (offset < log.logEndOffset) {
      // The whole log, as the offsets replay: records above the high watermark were written by
      // an earlier coordinator and become committed as the followers catch up.
      const { records: bytes } = await log.read(offset, REPLAY_READ_BYTES, { maxOffset: log.logEndOffset });
      if (bytes.length === 0) break;
      const decoded: DecodedRecord[] = [];
      let last = -1;
      for (let pos = 0; pos < bytes.length; pos += batchSizeAt(bytes, pos)) {
        decodeRecords(bytes, pos, decoded);
        last = lastOffsetAt(bytes, pos);
      }
      for (const r of decoded) {
        if (r.offset < offset || !r.key) continue;
        try {
          const id = decodeTxnKey(r.key);
          if (id === null) continue;
          if (r.value === null) ids.delete(id);
          else ids.set(id, { meta: decodeTxnValue(r.value), busy: false, completing: null });
          records++;
        } catch (e) {
          if (!(e instanceof TxnRecordError)) throw e;
          skipped++;
        }
      }
      offset = last + 1;
    }
    // Still the leader, at the same epoch? Else a newer load (or an unload) owns the partition.
    if (this.stopped || !local.isLeader || local.leaderEpoch !== coordinatorEpoch) return;
    const loaded: LoadedPartition = { coordinatorEpoch, ids };
    this.partitions.set(partition, loaded);
    for (const [id, entry] of ids) this.idOfProducer.set(entry.meta.producerId, id);
    this.log.info('transaction state loaded', { partition, coordinatorEpoch, records, transactionalIds: ids.size, skipped });
    for (const [id, entry] of ids) if (isPrepare(entry.meta.state)) this.complete(partition, loaded, id, entry);
  }

  /** The loaded partition of an id this broker coordinates, or the error saying why not. */
  private owner(transactionalId: string): { partition: number; loaded: LoadedPartition } {
    const partition = txnStatePartitionFor(transactionalId);
    const loaded = this.partitions.get(partition);
    if (loaded) return { partition, loaded };
    if (this.loading.has(partition) || this.topics.localPartition(TXN_STATE_TOPIC, partition)?.isLeader) fail(ErrorCode.COORDINATOR_NOT_AVAILABLE, `transaction state partition ${partition} is loading`);
    fail(ErrorCode.NOT_COORDINATOR, `this broker does not coordinate transactional id ${transactionalId}`);
  }

  // ---- writes ----------------------------------------------------------------------------

  /** Makes next durable for id, then (if still the coordinator at the same epoch) current in memory. */
  private async write(partition: number, loaded: LoadedPartition, id: string, entry: Entry | undefined, next: TxnMetadata): Promise<Entry> {
    checkTransition(entry?.meta, next);
    await this.appendRecord(partition, id, next);
    if (this.partitions.get(partition) !== loaded) fail(ErrorCode.NOT_COORDINATOR, `this broker no longer coordinates transactional id ${id}`);
    if (entry && entry.meta.producerId !== next.producerId) this.idOfProducer.delete(entry.meta.producerId);
    this.idOfProducer.set(next.producerId, id);
    if (entry) {
      entry.meta = next;
      return entry;
    }
    const created: Entry = { meta: next, busy: false, completing: null };
    loaded.ids.set(id, created);
    return created;
  }

  /**
   * Appends the id's record to its `__transaction_state` partition. The append itself happens
   * before this returns (appendDurably appends synchronously); the promise settles once the
   * record is on every in-sync replica and, with `fsync` (the default), fsynced.
   */
  private appendRecord(partition: number, id: string, next: TxnMetadata, fsync = true): Promise<void> {
    const builder = new BatchBuilder();
    builder.append(encodeTxnKey(id), encodeTxnValue(next), next.updateMs);
    return this.appendDurably(partition, Buffer.from(builder.finish()), fsync);
  }

  /** Runs a state change of one id with its busy flag held. */
  private async exclusive<T>(entry: Entry | undefined, fn: () => Promise<T>): Promise<T> {
    if (entry?.busy) fail(ErrorCode.CONCURRENT_TRANSACTIONS, 'another request for this transactional id is being written; retry');
    if (entry) entry.busy = true;
    try {
      return await fn();
    } finally {
      if (entry) entry.busy = false;
    }
  }

  /**
   * Sends the markers of a prepare state and then writes complete-*. Runs in the background;
   * a failure leaves the prepare state for the sweep to complete again.
   */
  private complete(partition: number, loaded: LoadedPartition, id: string, entry: Entry): void {
    if (entry.completing) return;
    const meta = entry.meta;
    assert(isPrepare(meta.state), 'only a prepare state is completed');
    const committed = meta.state === 'prepare-commit';
    entry.completing = (async () => {
      await this.markers.send({ producerId: meta.producerId, producerEpoch: meta.producerEpoch, committed, coordinatorEpoch: loaded.coordinatorEpoch }, meta.partitions, partition);
      if (this.partitions.get(partition) !== loaded) fail(ErrorCode.NOT_COORDINATOR, `this broker no longer coordinates transactional id ${id}`);
      // No other write can be in flight: every request for an id in a prepare state is refused
      // (or waits, completionOf) before it writes. The state is complete once complete-* is
      // appended, not once it is durable: the id's next record goes after it in the same log
      // and is answered only when durable, which makes this one durable too; and if this one
      // is lost (a failover before it is replicated), the next coordinator finds the prepare
      // state and sends the markers again, which changes nothing on the partitions. So the
      // producer's next transaction need not wait for an fsync and a replication round. Nor
      // is the record fsynced on its own: the id's next record's fsync covers it (one log,
      // every dirty segment is synced), and its own flush cycle would make that next record
      // (the next transaction's AddPartitionsToTxn) wait for two fsyncs instead of one.
      const next: TxnMetadata = { ...meta, state: committed ? 'complete-commit' : 'complete-abort', partitions: [], startMs: -1, updateMs: Date.now() };
      checkTransition(entry.meta, next);
      const durable = this.appendRecord(partition, id, next, false);
      entry.meta = next;
      durable.catch((e) => {
        if (this.stopped || this.partitions.get(partition) !== loaded) return;
        // Not appended or not replicated, and nothing newer written since: back to the prepare
        // state, which the sweep completes again (markers are idempotent).
        if (entry.meta === next) entry.meta = meta;
        this.log.warn('complete record of a transaction not written; the sweep completes it again', { transactionalId: id, error: e as Error });
      });
    })()
      .catch((e) => {
        if (!this.stopped && this.partitions.get(partition) === loaded) this.log.warn('transaction not completed yet; the sweep retries', { transactionalId: id, error: e as Error });
      })
      .finally(() => {
        entry.completing = null;
      });
  }

  /** Aborts entry's open transaction (timeout or a new instance), bumping the epoch to fence the producer. */
  private async abortOpen(partition: number, loaded: LoadedPartition, id: string, entry: Entry): Promise<void> {
    const m = entry.meta;
    // At the last epoch the abort cannot fence by epoch; the next InitProducerId moves to a new producerId.
    const producerEpoch = Math.min(m.producerEpoch + 1, PRODUCER_EPOCH_MAX);
    await this.write(partition, loaded, id, entry, { ...m, producerEpoch, state: 'prepare-abort', updateMs: Date.now() });
    this.complete(partition, loaded, id, entry);
  }

  // ---- APIs ------------------------------------------------------------------------------

  async initProducerId(req: InitProducerIdRequest & { transactionalId: string }): Promise<InitProducerIdResponse> {
    try {
      const id = req.transactionalId;
      checkTransactionalId(id);
      if (req.transactionTimeoutMs < 1 || req.transactionTimeoutMs > this.config.transactionTimeoutMsMax) {
        fail(ErrorCode.INVALID_TRANSACTION_TIMEOUT, `transactionTimeoutMs must be 1…${this.config.transactionTimeoutMsMax}, got ${req.transactionTimeoutMs}`);
      }
      const { partition, loaded } = this.owner(id);
      const entry = loaded.ids.get(id);
      if (!entry) {
        if (req.producerId !== -1) fail(ErrorCode.INVALID_PRODUCER_ID_MAPPING, `transactional id ${id} has no producer id yet`);
        if (this.idCount >= this.config.transactionalIdsMax) fail(ErrorCode.COORDINATOR_NOT_AVAILABLE, `this coordinator holds ${this.config.transactionalIdsMax} transactional ids (transactionalIdsMax)`);
        const producerId = await this.producerIds.allocate();
        if (loaded.ids.has(id)) fail(ErrorCode.CONCURRENT_TRANSACTIONS, 'another InitProducerId for this transactional id is being written; retry');
        // A placeholder holds the id's busy flag while its first record is written.
        const placeholder: Entry = { meta: { producerId, producerEpoch: 0, timeoutMs: req.transactionTimeoutMs, state: 'empty', partitions: [], startMs: -1, updateMs: Date.now() }, busy: true, completing: null };
        loaded.ids.set(id, placeholder);
        try {
          await this.write(partition, loaded, id, undefined, placeholder.meta);
        } catch (e) {
          if (loaded.ids.get(id) === placeholder) loaded.ids.delete(id);
          throw e;
        }
        const written = loaded.ids.get(id)!;
        written.busy = false;
        return { errorCode: 0, errorMessage: null, producerId, producerEpoch: 0 };
      }
      if (req.producerId !== -1) {
        if (req.producerId !== entry.meta.producerId) fail(ErrorCode.INVALID_PRODUCER_ID_MAPPING, `transactional id ${id} has another producer id`);
        if (req.producerEpoch !== entry.meta.producerEpoch) fail(ErrorCode.PRODUCER_FENCED, `producer epoch ${req.producerEpoch} is not the current ${entry.meta.producerEpoch}`);
      }
      return await this.exclusive(entry, async () => {
        const m = entry.meta;
        if (isPrepare(m.state)) fail(ErrorCode.CONCURRENT_TRANSACTIONS, `the previous transaction is being completed (${m.state}); retry`);
        if (m.state === 'ongoing') {
          await this.abortOpen(partition, loaded, id, entry);
          fail(ErrorCode.CONCURRENT_TRANSACTIONS, 'the open transaction of an earlier instance is being aborted; retry');
        }
        const next: TxnMetadata =
          m.producerEpoch >= PRODUCER_EPOCH_MAX
            ? { ...m, producerId: await this.producerIds.allocate(), producerEpoch: 0 }
            : { ...m, producerEpoch: m.producerEpoch + 1 };
        const written = await this.write(partition, loaded, id, entry, { ...next, timeoutMs: req.transactionTimeoutMs, state: 'empty', partitions: [], startMs: -1, updateMs: Date.now() });
        return { errorCode: 0, errorMessage: null, producerId: written.meta.producerId, producerEpoch: written.meta.producerEpoch };
      });
    } catch (e) {
      if (e instanceof SluiceError) return { errorCode: e.code, errorMessage: e.message, producerId: -1, producerEpoch: -1 };
      throw e;
    }
  }

  /** The entry of a request naming its producer, checked as §6.20 says. */
  private producerEntry(req: { transactionalId: string; producerId: number; producerEpoch: number }): { partition: number; loaded: LoadedPartition; entry: Entry } {
    checkTransactionalId(req.transactionalId);
    const { partition, loaded } = this.owner(req.transactionalId);
    const entry = loaded.ids.get(req.transactionalId);
    if (!entry || entry.meta.producerId !== req.producerId) fail(ErrorCode.INVALID_PRODUCER_ID_MAPPING, `transactional id ${req.transactionalId} is unknown here or has another producer id; InitProducerId first`);
    if (entry.meta.producerEpoch !== req.producerEpoch) fail(ErrorCode.PRODUCER_FENCED, `producer epoch ${req.producerEpoch} is not the current ${entry.meta.producerEpoch}: a newer instance (or a timeout abort) fenced this one`);
    if (isPrepare(entry.meta.state)) fail(ErrorCode.CONCURRENT_TRANSACTIONS, `the previous transaction is being completed (${entry.meta.state}); retry`);
    return { partition, loaded, entry };
  }

  /**
   * Waits (at most COMPLETION_WAIT_MS) while the id's previous transaction is being completed.
   * A producer begins its next transaction right after EndTxn is answered, while the markers
   * are still being written; answering CONCURRENT_TRANSACTIONS at once made it poll, and the
   * polling cost a 1000-message transaction more time than its records. After the wait the
   * usual checks run, and still answer CONCURRENT_TRANSACTIONS if it has not completed.
   */
  private async completionOf(transactionalId: string): Promise<void> {
    let entry: Entry | undefined;
    try {
      entry = this.owner(transactionalId).loaded.ids.get(transactionalId);
    } catch {
      return; // not the coordinator, or not loaded: the checks that follow answer
    }
    const completing = entry && isPrepare(entry.meta.state) ? entry.completing : null;
    if (!completing) return;
    let timer: NodeJS.Timeout | undefined;
    // `completing` never rejects (complete() catches), so the race ends one way or the other.
    await Promise.race([completing, new Promise<void>((r) => (timer = setTimeout(r, COMPLETION_WAIT_MS)))]);
    clearTimeout(timer);
  }

  /**
   * TxnOffsetCommit's check against the transaction (SPEC §6.24), where this broker coordinates
   * the transactional id: the producer must be the id's current one and its open transaction
   * must hold the group's offsets partition (AddOffsetsToTxn). Else the offsets would be
   * written as a transaction no marker will ever end on that partition: pending for good
   * (requireStable stuck), the partition's last stable offset stuck. Synchronous, so the
   * caller's append follows it before any EndTxn can change the state. Does nothing when
   * another broker coordinates the id (or its partition is not loaded yet): that broker
   * cannot be asked here, so such a commit is taken on trust, as before.
   */
  checkOffsetsInTxn(req: { transactionalId: string; producerId: number; producerEpoch: number; groupId: string }): void {
    const loaded = this.partitions.get(txnStatePartitionFor(req.transactionalId));
    if (!loaded) return;
    const entry = loaded.ids.get(req.transactionalId);
    if (!entry || entry.meta.producerId !== req.producerId) fail(ErrorCode.INVALID_PRODUCER_ID_MAPPING, `transactional id ${req.transactionalId} is unknown here or has another producer id`);
    if (entry.meta.producerEpoch !== req.producerEpoch) fail(ErrorCode.PRODUCER_FENCED, `producer epoch ${req.producerEpoch} is not the current ${entry.meta.producerEpoch}`);
    const m = entry.meta;
    if (m.state !== 'ongoing' || !hasPartition(m.partitions, OFFSETS_TOPIC, offsetsPartitionFor(req.groupId))) {
      fail(ErrorCode.INVALID_TXN_STATE, `transactional id ${req.transactionalId} (${m.state}) has not added group ${req.groupId} to an open transaction: AddOffsetsToTxn first`);
    }
  }

  /**
   * A partition leader's check of a transactional batch that would begin its producer's
   * transaction there (SPEC §6.6; PartitionLog's verifyTxnStart): the producer id must belong
   * to a transactional id whose current epoch it has and whose open transaction holds the
   * partition (AddPartitionsToTxn). Else nothing would ever write the partition's marker: its
   * last stable offset would stay there for good (read_committed consumers stuck, compaction
   * held). A producer id this broker does not know is refused only when it coordinates every
   * `__transaction_state` partition (a single broker: then no coordinator knows it); otherwise
   * another broker may coordinate it and the batch is taken on trust. Synchronous, so the
   * append follows before the state can change. An arrow property: passed as is, no binding.
   */
  readonly verifyTxnStart = (topic: string, partition: number, producerId: number, producerEpoch: number): void => {
    const id = this.idOfProducer.get(producerId);
    const entry = id === undefined ? undefined : this.partitions.get(txnStatePartitionFor(id))?.ids.get(id);
    if (entry === undefined || entry.meta.producerId !== producerId) {
      if (this.partitions.size < TXN_STATE_TOPIC_PARTITIONS) return;
      fail(ErrorCode.INVALID_TXN_STATE, `no transactional id has producer id ${producerId}: a transactional batch needs InitProducerId and AddPartitionsToTxn first`);
    }
    const m = entry.meta;
    if (producerEpoch !== m.producerEpoch) fail(ErrorCode.INVALID_PRODUCER_EPOCH, `producer ${producerId} epoch ${producerEpoch} is not its transactional id's current epoch ${m.producerEpoch}`);
    if (m.state !== 'ongoing' || !hasPartition(m.partitions, topic, partition)) {
      fail(ErrorCode.INVALID_TXN_STATE, `${topic}/${partition} is not in an open transaction of producer ${producerId} (${m.state}): AddPartitionsToTxn first`);
    }
  };

  /** Adds partitions to the id's transaction (beginning one); durable before it resolves. */
  private async addToTxn(req: { transactionalId: string; producerId: number; producerEpoch: number }, add: Array<{ topic: string; partition: number }>): Promise<void> {
    await this.completionOf(req.transactionalId);
    const { partition, loaded, entry } = this.producerEntry(req);
    await this.exclusive(entry, async () => {
      const m = entry.meta;
      if (isPrepare(m.state)) fail(ErrorCode.CONCURRENT_TRANSACTIONS, `the previous transaction is being completed (${m.state}); retry`);
      if (m.state === 'ongoing' && add.every((a) => hasPartition(m.partitions, a.topic, a.partition))) return; // already in: nothing to write
      const partitions = withPartitions(m.state === 'ongoing' ? m.partitions : [], add);
      if (partitionCount(partitions) > TXN_PARTITIONS_MAX) fail(ErrorCode.INVALID_TXN_STATE, `a transaction holds at most ${TXN_PARTITIONS_MAX} partitions`);
      const now = Date.now();
      await this.write(partition, loaded, req.transactionalId, entry, { ...m, state: 'ongoing', partitions, startMs: m.state === 'ongoing' ? m.startMs : now, updateMs: now });
    });
  }

  /**
   * Whether any AddPartitionsToTxn is being handled (cheap: the Produce path asks before it
   * looks at any batch header).
   */
  get hasAddsInFlight(): boolean {
    return this.addsInFlight.size > 0;
  }

  /**
   * The AddPartitionsToTxn being handled for this producer, epoch and partition, if any:
   * resolves with the error code it answers for the partition (0: added). Never rejects.
   */
  addInFlight(producerId: number, producerEpoch: number, topic: string, partition: number): Promise<number> | null {
    const adds = this.addsInFlight.get(producerId);
    if (adds === undefined) return null;
    const key = tpKey(topic, partition);
    for (let i = adds.length - 1; i >= 0; i--) {
      const a = adds[i]!;
      if (a.producerEpoch === producerEpoch && a.keys.has(key)) return a.answered.then((codes) => codes.get(key) ?? ErrorCode.INVALID_TXN_STATE);
    }
    return null;
  }

  async addPartitions(req: AddPartitionsToTxnRequest): Promise<AddPartitionsToTxnResponse> {
    // Only for a producer id this coordinator knows under that transactional id: a request
    // naming another id's producer must not hold (or refuse) that producer's batches.
    if (this.idOfProducer.get(req.producerId) !== req.transactionalId) return this.addPartitionsNow(req);
    const keys = new Set<string>();
    for (const t of req.topics) for (const p of t.partitions) keys.add(tpKey(t.topic, p));
    let answer!: (codes: Map<string, number>) => void;
    const add: AddInFlight = { producerEpoch: req.producerEpoch, keys, answered: new Promise((r) => (answer = r)) };
    const adds = this.addsInFlight.get(req.producerId);
    if (adds) adds.push(add);
    else this.addsInFlight.set(req.producerId, [add]);
    const codes = new Map<string, number>();
    try {
      const res = await this.addPartitionsNow(req);
      // A request with any error adds none of its partitions (§6.20), though those without
      // one are answered 0: for a batch waiting behind it, none was added.
      const addedNone = res.errorCode !== 0 || res.topics.some((t) => t.partitions.some((x) => x.errorCode !== 0));
      for (const t of res.topics) for (const p of t.partitions) codes.set(tpKey(t.topic, p.partition), addedNone && p.errorCode === 0 ? ErrorCode.INVALID_TXN_STATE : p.errorCode);
      return res;
    } finally {
      const list = this.addsInFlight.get(req.producerId);
      const i = list?.indexOf(add) ?? -1;
      if (i >= 0) list!.splice(i, 1);
      if (list?.length === 0) this.addsInFlight.delete(req.producerId);
      // After the state is in memory (addToTxn updates it before it returns): a batch that
      // waited is checked against it.
      answer(codes);
    }
  }

  private async addPartitionsNow(req: AddPartitionsToTxnRequest): Promise<AddPartitionsToTxnResponse> {
    const codes = req.topics.map((t) =>
      t.partitions.map((p) => {
        if (isInternalTopic(t.topic)) return ErrorCode.INVALID_TOPIC;
        const count = this.topics.partitionCount(t.topic);
        return count === undefined || p < 0 || p >= count ? ErrorCode.UNKNOWN_TOPIC_OR_PARTITION : ErrorCode.NONE;
      }),
    );
    const answer = (errorCode: number, errorMessage: string | null, perPartition?: number[][]): AddPartitionsToTxnResponse => ({
      errorCode,
      errorMessage,
      topics: req.topics.map((t, i) => ({ topic: t.topic, partitions: t.partitions.map((partition, j) => ({ partition, errorCode: perPartition ? perPartition[i]![j]! : errorCode })) })),
    });
    try {
      if (codes.some((c) => c.some((x) => x !== 0))) {
        // Checked after the producer, so a fenced producer learns that first.
        this.producerEntry(req);
        return answer(0, 'some partitions cannot be added; none was', codes);
      }
      await this.addToTxn(req, req.topics.flatMap((t) => t.partitions.map((partition) => ({ topic: t.topic, partition }))));
      return answer(0, null);
    } catch (e) {
      if (e instanceof SluiceError) return answer(e.code, e.message);
      throw e;
    }
  }

  async addOffsets(req: AddOffsetsToTxnRequest): Promise<AddOffsetsToTxnResponse> {
    try {
      if (req.groupId.length === 0 || Buffer.byteLength(req.groupId, 'utf8') > GROUP_ID_BYTES_MAX) fail(ErrorCode.INVALID_GROUP_ID, `group id must be 1-${GROUP_ID_BYTES_MAX} bytes of UTF-8`);
      if (this.topics.partitionCount(OFFSETS_TOPIC) === undefined) fail(ErrorCode.COORDINATOR_NOT_AVAILABLE, `${OFFSETS_TOPIC} does not exist yet`);
      await this.addToTxn(req, [{ topic: OFFSETS_TOPIC, partition: offsetsPartitionFor(req.groupId) }]);
      return { errorCode: 0, errorMessage: null };
    } catch (e) {
      if (e instanceof SluiceError) return { errorCode: e.code, errorMessage: e.message };
      throw e;
    }
  }

  async endTxn(req: EndTxnRequest): Promise<EndTxnResponse> {
    try {
      checkTransactionalId(req.transactionalId);
      const { partition, loaded } = this.owner(req.transactionalId);
      const entry = loaded.ids.get(req.transactionalId);
      if (!entry || entry.meta.producerId !== req.producerId) fail(ErrorCode.INVALID_PRODUCER_ID_MAPPING, `transactional id ${req.transactionalId} is unknown here or has another producer id`);
      if (entry.meta.producerEpoch !== req.producerEpoch) fail(ErrorCode.PRODUCER_FENCED, `producer epoch ${req.producerEpoch} is not the current ${entry.meta.producerEpoch}`);
      const decided = req.committed ? ['prepare-commit', 'complete-commit'] : ['prepare-abort', 'complete-abort'];
      const opposite = req.committed ? ['prepare-abort', 'complete-abort'] : ['prepare-commit', 'complete-commit'];
      await this.exclusive(entry, async () => {
        const m = entry.meta;
        // Repeated after a lost answer: the decision stands.
        if (decided.includes(m.state)) return;
        if (opposite.includes(m.state)) fail(ErrorCode.INVALID_TXN_STATE, `the transaction was already decided the other way (${m.state})`);
        if (m.state === 'empty') return; // nothing added since InitProducerId: a transaction with no partitions ends at once
        await this.write(partition, loaded, req.transactionalId, entry, { ...m, state: req.committed ? 'prepare-commit' : 'prepare-abort', updateMs: Date.now() });
      });
      if (isPrepare(entry.meta.state)) this.complete(partition, loaded, req.transactionalId, entry);
      return { errorCode: 0, errorMessage: null };
    } catch (e) {
      if (e instanceof SluiceError) return { errorCode: e.code, errorMessage: e.message };
      throw e;
    }
  }

  /** Writes the id's tombstone and forgets it (expiry), unless something else is writing it. */
  private async expire(partition: number, loaded: LoadedPartition, id: string, entry: Entry): Promise<void> {
    await this.exclusive(entry, async () => {
      const builder = new BatchBuilder();
      builder.append(encodeTxnKey(id), null, Date.now());
      await this.appendDurably(partition, Buffer.from(builder.finish()), true);
      if (this.partitions.get(partition) === loaded && loaded.ids.get(id) === entry) {
        loaded.ids.delete(id);
        if (this.idOfProducer.get(entry.meta.producerId) === id) this.idOfProducer.delete(entry.meta.producerId);
      }
    });
  }

  // ---- timeouts --------------------------------------------------------------------------

  /**
   * Aborts transactions open past their timeout; completes again prepare states whose
   * completion failed; loads partitions this broker leads that are not loaded.
   */
  sweep(now = Date.now()): void {
    // A partition led here but not loaded (its load failed, or leadership changed during it): load it again.
    for (let p = 0; p < TXN_STATE_TOPIC_PARTITIONS; p++) {
      if (!this.partitions.has(p) && !this.loading.has(p) && this.topics.localPartition(TXN_STATE_TOPIC, p)?.isLeader) void this.loadPartition(p);
    }
    for (const [partition, loaded] of this.partitions) {
      for (const [id, entry] of loaded.ids) {
        if (entry.busy) continue;
        const m = entry.meta;
        if (isPrepare(m.state)) this.complete(partition, loaded, id, entry);
        else if (m.state !== 'ongoing' && now - m.updateMs > this.config.transactionalIdExpirationMs) {
          void this.expire(partition, loaded, id, entry).catch((e) => this.log.warn('transactional id not expired yet; retrying', { transactionalId: id, error: e as Error }));
        } else if (m.state === 'ongoing' && now - m.startMs > m.timeoutMs) {
          this.log.info('aborting a transaction past its timeout', { transactionalId: id, producerId: m.producerId, timeoutMs: m.timeoutMs });
          void this.exclusive(entry, () => this.abortOpen(partition, loaded, id, entry)).catch((e) => this.log.warn('timeout abort not written; retrying', { transactionalId: id, error: e as Error }));
        }
      }
    }
  }
}
