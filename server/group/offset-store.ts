/**
 * Committed offsets, kept where Kafka keeps them: in an internal compacted topic,
 * `__consumer_offsets`, one record per (group, topic, partition), the newest record winning.
 * The broker replays the topic into memory at start; commits append and wait for fsync, so
 * a commit that was answered survives any restart. Compaction (cleanup.policy=compact)
 * keeps the topic from growing with every commit; deletions are tombstones (null value).
 *
 * Record layout (also in SPEC.md): key = MessagePack ["offset", groupId, topic, partition],
 * value = MessagePack { offset, metadata, commitTimestampMs } or null. A group lives in
 * partition toPositive(murmur2(groupId)) % partitions, so one group's records stay in order.
 *
 * Transactional offsets (TxnOffsetCommit, SPEC §6.24): written as a transactional batch of the
 * producer, they are kept pending per producerId and replace the committed offsets only when
 * that producer's commit marker lands on the group's partition (dropped at an abort marker).
 * Replay follows the same rule: records of a transactional batch wait for their producer's
 * marker later in the log; an aborted transaction's offsets are never applied.
 * Invariants: `pendingIndex` counts, per group and partition, the producers in `pending` that
 * hold an offset for it (OffsetFetch requireStable answers from it without scanning);
 * at most PENDING_OFFSETS_MAX pending offsets at once (more are refused, retriable).
 */
import { Decoder, Encoder } from '@msgpack/msgpack';
import { ErrorCode, SluiceError } from '../../protocol/errors.ts';
import { partitionForKey } from '../../protocol/murmur2.ts';
import { batchSizeAt, BatchBuilder, decodeRecords, isControlAt, isTransactionalAt, lastOffsetAt, producerIdAt, readControlMarker, type DecodedRecord, type TxnMarker } from '../../protocol/record-batch.ts';
import { assert } from '../assert.ts';
import type { AppendOrigin } from '../partition/partition.ts';
import type { Logger } from '../logger.ts';
import type { TopicManager } from '../partition/topic-manager.ts';
import { tpKey, tpSplit } from './topic-partition-set.ts';

export const OFFSETS_TOPIC = '__consumer_offsets';
export const OFFSETS_TOPIC_PARTITIONS = 8;
const OFFSETS_TOPIC_CONFIG = {
  'cleanup.policy': 'compact',
  'flush.before.ack': 'true',
  'segment.bytes': String(64 * 1024 * 1024),
};
/**
 * Bytes replayed per event-loop turn while loading a partition (a coordinator taking over
 * serves other clients meanwhile): decoding ~50000 records (about 3.5 MiB) took ~250 ms at
 * once; 512 KiB is ~30 ms. A larger batch is still read whole (at most an OffsetCommit's
 * 10000 entries, ~730 KB, SPEC §6 Entry limits).
 */
const REPLAY_READ_BYTES = 512 * 1024;
/** Transactional offsets waiting for their markers, all producers and groups together. */
export const PENDING_OFFSETS_MAX = 1_000_000;
const utf8 = new TextEncoder();
/**
 * One encoder for every record: encode() builds a new Encoder per call, which made a
 * 10000-partition commit spend ~0.3 s encoding on the event loop. Same options, same bytes.
 */
const msgpack = new Encoder();
/** Likewise decode() builds a new Decoder per call. */
const unpack = new Decoder();

export interface CommittedOffset {
  offset: number;
  metadata: string | null;
  commitTimestampMs: number;
}

export interface OffsetEntry extends CommittedOffset {
  topic: string;
  partition: number;
}

/** Appends a record set to a partition of the offsets topic as its leader, resolving once it is durable (fsynced, and replicated to the ISR in a cluster). */
export type DurableAppend = (partition: number, records: Buffer, origin?: AppendOrigin) => Promise<void>;

export function offsetsPartitionFor(groupId: string): number {
  return partitionForKey(utf8.encode(groupId), OFFSETS_TOPIC_PARTITIONS);
}

export class OffsetStore {
  /** groupId -> tpKey -> committed offset, for groups of the loaded partitions only. */
  private readonly offsets = new Map<string, Map<string, CommittedOffset>>();
  /** Offsets-topic partitions this broker leads and has replayed: it coordinates their groups. */
  private readonly loaded = new Set<number>();
  /** Partitions being replayed, so a second leadership event does not replay twice at once. */
  private readonly loading = new Map<number, Promise<void>>();
  /** producerId -> groupId -> tpKey -> offset a transaction sent and its marker has not ended yet. */
  private readonly pending = new Map<number, Map<string, Map<string, CommittedOffset>>>();
  /** groupId -> tpKey -> how many producers have a pending offset for it. */
  private readonly pendingIndex = new Map<string, Map<string, number>>();
  private pendingCount = 0;

  constructor(
    private readonly topics: TopicManager,
    private readonly appendDurably: DurableAppend,
    private readonly log: Logger,
  ) {}

  /** Creates the internal topic when missing (the caller decides when a cluster is ready for it). */
  async ensureTopic(replicationFactor: number): Promise<void> {
    await this.topics.ensureInternal(OFFSETS_TOPIC, OFFSETS_TOPIC_PARTITIONS, OFFSETS_TOPIC_CONFIG, replicationFactor);
  }

  /** Resolves when every replay in progress has finished. */
  async whenLoaded(): Promise<void> {
    await Promise.all(this.loading.values());
  }

  isLoaded(partition: number): boolean {
    return this.loaded.has(partition);
  }

  /** This broker became the leader of an offsets partition: replay it and coordinate its groups. */
  loadPartition(partition: number): Promise<void> {
    const running = this.loading.get(partition);
    if (running) return running;
    const p = this.replay(partition).finally(() => this.loading.delete(partition));
    this.loading.set(partition, p);
    return p;
  }

  /** Leadership moved away: forget the partition's groups (their new coordinator replays them). */
  unloadPartition(partition: number): void {
    this.loaded.delete(partition);
    for (const g of [...this.offsets.keys()]) if (offsetsPartitionFor(g) === partition) this.offsets.delete(g);
    for (const producerId of [...this.pending.keys()]) this.endPending(producerId, partition, false);
  }

  /** Records a transaction's offset as pending for its producer (nothing visible yet). */
  private addPending(producerId: number, groupId: string, topic: string, partition: number, value: CommittedOffset): void {
    let byGroup = this.pending.get(producerId);
    if (!byGroup) this.pending.set(producerId, (byGroup = new Map()));
    let g = byGroup.get(groupId);
    if (!g) byGroup.set(groupId, (g = new Map()));
    const key = tpKey(topic, partition);
    if (!g.has(key)) {
      this.pendingCount++;
      let idx = this.pendingIndex.get(groupId);
      if (!idx) this.pendingIndex.set(groupId, (idx = new Map()));
      idx.set(key, (idx.get(key) ?? 0) + 1);
    }
    g.set(key, value);
  }

  /**
   * The producer's transaction ended on an offsets partition: its pending offsets of the groups
   * stored there are applied (committed) or dropped.
   */
  private endPending(producerId: number, offsetsPartition: number, committed: boolean): void {
    const byGroup = this.pending.get(producerId);
    if (!byGroup) return;
    for (const [groupId, g] of [...byGroup]) {
      if (offsetsPartitionFor(groupId) !== offsetsPartition) continue;
      byGroup.delete(groupId);
      const idx = this.pendingIndex.get(groupId)!;
      for (const [key, value] of g) {
        this.pendingCount--;
        const n = idx.get(key)! - 1;
        assert(n >= 0, 'pending offset index count');
        if (n === 0) idx.delete(key);
        else idx.set(key, n);
        if (committed) {
          let c = this.offsets.get(groupId);
          if (!c) this.offsets.set(groupId, (c = new Map()));
          c.set(key, value);
        }
      }
      if (idx.size === 0) this.pendingIndex.delete(groupId);
    }
    if (byGroup.size === 0) this.pending.delete(producerId);
  }

  /** A transaction marker was appended (as leader) to an offsets partition: end its producer's pending offsets there. */
  onTxnMarker(partition: number, marker: TxnMarker): void {
    if (!this.loaded.has(partition)) return;
    this.endPending(marker.producerId, partition, marker.committed);
  }

  /** Whether a transaction has sent an offset for this partition of the group and not ended yet (SPEC §6.12 requireStable). */
  isPending(groupId: string, topic: string, partition: number): boolean {
    return this.pendingIndex.get(groupId)?.has(tpKey(topic, partition)) ?? false;
  }

  /**
   * Appends a transaction's offsets as a transactional batch of its producer (SPEC §6.24) and
   * resolves once durable; they stay pending until the producer's marker reaches the partition.
   * A stale producer epoch is refused by the partition (INVALID_PRODUCER_EPOCH).
   */
  async commitTransactional(groupId: string, producer: { producerId: number; producerEpoch: number }, entries: readonly OffsetEntry[]): Promise<void> {
    if (entries.length === 0) return;
    if (this.pendingCount + entries.length > PENDING_OFFSETS_MAX) throw new SluiceError(ErrorCode.COORDINATOR_NOT_AVAILABLE, `${this.pendingCount} transactional offsets already wait for their markers; retry`);
    const partition = offsetsPartitionFor(groupId);
    if (!this.loaded.has(partition)) throw new SluiceError(ErrorCode.NOT_COORDINATOR, `this broker does not coordinate group ${groupId}`);
    const builder = new BatchBuilder();
    const now = Date.now();
    for (const e of entries) builder.append(msgpack.encode(['offset', groupId, e.topic, e.partition]), msgpack.encode({ offset: e.offset, metadata: e.metadata, commitTimestampMs: e.commitTimestampMs }), now);
    await this.appendDurably(partition, Buffer.from(builder.finish({ producerId: producer.producerId, producerEpoch: producer.producerEpoch, baseSequence: 0, transactional: true })), 'coordinator');
    if (!this.loaded.has(partition)) throw new SluiceError(ErrorCode.NOT_COORDINATOR, `this broker no longer coordinates group ${groupId}`);
    for (const e of entries) this.addPending(producer.producerId, groupId, e.topic, e.partition, { offset: e.offset, metadata: e.metadata, commitTimestampMs: e.commitTimestampMs });
  }

  private async replay(partition: number): Promise<void> {
    this.unloadPartition(partition);
    const log = this.topics.partition(OFFSETS_TOPIC, partition);
    if (!log) return;
    let records = 0;
    let offset = log.logStartOffset;
    while (offset < log.logEndOffset) {
      // The whole log: records above the high watermark were written by a previous leader and
      // become committed as the followers catch up; a new coordinator must know them.
      const { records: bytes } = await log.read(offset, REPLAY_READ_BYTES, { maxOffset: log.logEndOffset });
      if (bytes.length === 0) break;
      for (let pos = 0; pos < bytes.length; pos += batchSizeAt(bytes, pos)) {
        if (lastOffsetAt(bytes, pos) < offset) continue;
        if (isControlAt(bytes, pos)) {
          // A transaction's end: its offsets in this partition take effect or vanish.
          const marker = readControlMarker(bytes, pos);
          if (marker) this.endPending(marker.producerId, partition, marker.committed);
          continue;
        }
        const decoded: DecodedRecord[] = [];
        decodeRecords(bytes, pos, decoded);
        const transactional = isTransactionalAt(bytes, pos);
        const producerId = transactional ? producerIdAt(bytes, pos) : -1;
        for (const r of decoded) {
          if (r.offset < offset) continue;
          if (transactional) this.applyPending(producerId, r.key, r.value);
          else this.apply(r.key, r.value);
          records++;
        }
      }
      // Continue after the last batch's range: compaction may have left offsets unused.
      offset = lastOffsetOfRecordSet(bytes) + 1;
    }
    this.loaded.add(partition);
    this.log.info('committed offsets loaded', { partition, records });
  }

  /** A record of a transactional batch, replayed: pending until its producer's marker. */
  private applyPending(producerId: number, key: Uint8Array | null, value: Uint8Array | null): void {
    if (!key || value === null) return;
    const k = unpack.decode(key) as unknown;
    if (!Array.isArray(k) || k[0] !== 'offset' || k.length !== 4) return;
    const [, groupId, topic, partition] = k as [string, string, string, number];
    const v = unpack.decode(value) as CommittedOffset;
    this.addPending(producerId, groupId, topic, partition, { offset: v.offset, metadata: v.metadata ?? null, commitTimestampMs: v.commitTimestampMs });
  }

  private apply(key: Uint8Array | null, value: Uint8Array | null): void {
    if (!key) return;
    const k = unpack.decode(key) as unknown;
    if (!Array.isArray(k) || k[0] !== 'offset' || k.length !== 4) return; // other record kinds may come later
    const [, groupId, topic, partition] = k as [string, string, string, number];
    if (value === null) {
      const g = this.offsets.get(groupId);
      g?.delete(tpKey(topic, partition));
      if (g && g.size === 0) this.offsets.delete(groupId);
      return;
    }
    const v = unpack.decode(value) as CommittedOffset;
    let g = this.offsets.get(groupId);
    if (!g) this.offsets.set(groupId, (g = new Map()));
    g.set(tpKey(topic, partition), { offset: v.offset, metadata: v.metadata ?? null, commitTimestampMs: v.commitTimestampMs });
  }

  /** Appends the commits as one batch and resolves once they are fsynced. */
  async commit(groupId: string, entries: readonly OffsetEntry[]): Promise<void> {
    if (entries.length === 0) return;
    const records = entries.map((e) => ({
      key: msgpack.encode(['offset', groupId, e.topic, e.partition]),
      value: msgpack.encode({ offset: e.offset, metadata: e.metadata, commitTimestampMs: e.commitTimestampMs }) as Uint8Array | null,
    }));
    await this.append(groupId, records);
    // What the records say, without decoding them again.
    let g = this.offsets.get(groupId);
    if (!g) this.offsets.set(groupId, (g = new Map()));
    for (const e of entries) g.set(tpKey(e.topic, e.partition), { offset: e.offset, metadata: e.metadata, commitTimestampMs: e.commitTimestampMs });
  }

  /** Writes tombstones for the given partitions of a group (all of them when keys is null). */
  async remove(groupId: string, keys: readonly string[] | null = null): Promise<number> {
    const g = this.offsets.get(groupId);
    if (!g) return 0;
    const doomed = keys ?? [...g.keys()];
    if (doomed.length === 0) return 0;
    const records = doomed.map((k) => {
      const [topic, partition] = tpSplit(k);
      return { key: msgpack.encode(['offset', groupId, topic, partition]), value: null };
    });
    await this.append(groupId, records);
    for (const r of records) this.apply(r.key, r.value);
    return records.length;
  }

  private async append(groupId: string, records: Array<{ key: Uint8Array; value: Uint8Array | null }>): Promise<void> {
    const partition = offsetsPartitionFor(groupId);
    if (!this.loaded.has(partition)) throw new SluiceError(ErrorCode.NOT_COORDINATOR, `this broker does not coordinate group ${groupId}`);
    const builder = new BatchBuilder();
    const now = Date.now();
    for (const r of records) builder.append(r.key, r.value, now);
    await this.appendDurably(partition, Buffer.from(builder.finish()));
  }

  get(groupId: string, topic: string, partition: number): CommittedOffset | undefined {
    return this.offsets.get(groupId)?.get(tpKey(topic, partition));
  }

  /** The partitions (tpKeys) of a group with an offset a transaction sent and has not ended yet. */
  pendingKeys(groupId: string): string[] {
    return [...(this.pendingIndex.get(groupId)?.keys() ?? [])];
  }

  /** Every committed offset of a group, as [tpKey, offset] pairs. */
  entries(groupId: string): Array<[string, CommittedOffset]> {
    return [...(this.offsets.get(groupId) ?? [])];
  }

  /** Every committed offset of the groups this broker coordinates, without copying (for the lag metrics, lag-metrics.ts). */
  *committed(): Generator<[groupId: string, topic: string, partition: number, offset: number]> {
    for (const [groupId, byTp] of this.offsets) {
      for (const [key, c] of byTp) {
        const [topic, partition] = tpSplit(key);
        yield [groupId, topic, partition, c.offset];
      }
    }
  }

  groupIds(): string[] {
    return [...this.offsets.keys()];
  }

  get groupCount(): number {
    return this.offsets.size;
  }

  hasGroup(groupId: string): boolean {
    return this.offsets.has(groupId);
  }
}

function lastOffsetOfRecordSet(bytes: Buffer): number {
  let pos = 0;
  let last = -1;
  while (pos < bytes.length) {
    last = lastOffsetAt(bytes, pos);
    pos += batchSizeAt(bytes, pos);
  }
  return last;
}
