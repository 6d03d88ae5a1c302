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
 */
import { decode, encode } from '@msgpack/msgpack';
import { ErrorCode, SluiceError } from '../../protocol/errors.ts';
import { partitionForKey } from '../../protocol/murmur2.ts';
import { batchSizeAt, BatchBuilder, decodeRecords, lastOffsetAt, type DecodedRecord } from '../../protocol/record-batch.ts';
import type { Logger } from '../logger.ts';
import type { TopicManager } from '../topic-manager.ts';
import { tpKey, tpSplit } from './topic-partition-set.ts';

export const OFFSETS_TOPIC = '__consumer_offsets';
export const OFFSETS_TOPIC_PARTITIONS = 8;
const OFFSETS_TOPIC_CONFIG = {
  'cleanup.policy': 'compact',
  'flush.before.ack': 'true',
  'segment.bytes': String(64 * 1024 * 1024),
};
const REPLAY_READ_BYTES = 4 * 1024 * 1024;
const utf8 = new TextEncoder();

export interface CommittedOffset {
  offset: number;
  metadata: string | null;
  commitTimestampMs: number;
}

export interface OffsetEntry extends CommittedOffset {
  topic: string;
  partition: number;
}

export class OffsetStore {
  /** groupId -> tpKey -> committed offset. */
  private readonly offsets = new Map<string, Map<string, CommittedOffset>>();

  constructor(
    private readonly topics: TopicManager,
    private readonly log: Logger,
  ) {}

  /** Creates the internal topic if needed and replays it into memory. */
  async load(): Promise<void> {
    await this.topics.ensureInternal(OFFSETS_TOPIC, OFFSETS_TOPIC_PARTITIONS, OFFSETS_TOPIC_CONFIG);
    let records = 0;
    for (let p = 0; p < OFFSETS_TOPIC_PARTITIONS; p++) {
      const log = this.topics.partition(OFFSETS_TOPIC, p)!;
      let offset = log.logStartOffset;
      while (offset < log.logEndOffset) {
        const { records: bytes } = await log.read(offset, REPLAY_READ_BYTES);
        if (bytes.length === 0) break;
        const decoded: DecodedRecord[] = [];
        for (let pos = 0; pos < bytes.length; pos += batchSizeAt(bytes, pos)) decodeRecords(bytes, pos, decoded);
        for (const r of decoded) {
          if (r.offset < offset) continue;
          this.apply(r.key, r.value);
          records++;
        }
        // Continue after the last batch's range: compaction may have left offsets unused.
        offset = lastOffsetOfRecordSet(bytes) + 1;
      }
    }
    this.log.info('committed offsets loaded', { groups: this.offsets.size, records });
  }

  private apply(key: Uint8Array | null, value: Uint8Array | null): void {
    if (!key) return;
    const k = decode(key) as unknown;
    if (!Array.isArray(k) || k[0] !== 'offset' || k.length !== 4) return; // other record kinds may come later
    const [, groupId, topic, partition] = k as [string, string, string, number];
    if (value === null) {
      const g = this.offsets.get(groupId);
      g?.delete(tpKey(topic, partition));
      if (g && g.size === 0) this.offsets.delete(groupId);
      return;
    }
    const v = decode(value) as CommittedOffset;
    let g = this.offsets.get(groupId);
    if (!g) this.offsets.set(groupId, (g = new Map()));
    g.set(tpKey(topic, partition), { offset: v.offset, metadata: v.metadata ?? null, commitTimestampMs: v.commitTimestampMs });
  }

  /** Appends the commits as one batch and resolves once they are fsynced. */
  async commit(groupId: string, entries: readonly OffsetEntry[]): Promise<void> {
    if (entries.length === 0) return;
    const records = entries.map((e) => ({
      key: encode(['offset', groupId, e.topic, e.partition]),
      value: encode({ offset: e.offset, metadata: e.metadata, commitTimestampMs: e.commitTimestampMs }) as Uint8Array | null,
    }));
    await this.append(groupId, records);
    for (const r of records) this.apply(r.key, r.value);
  }

  /** Writes tombstones for the given partitions of a group (all of them when keys is null). */
  async remove(groupId: string, keys: readonly string[] | null = null): Promise<number> {
    const g = this.offsets.get(groupId);
    if (!g) return 0;
    const doomed = keys ?? [...g.keys()];
    if (doomed.length === 0) return 0;
    const records = doomed.map((k) => {
      const [topic, partition] = tpSplit(k);
      return { key: encode(['offset', groupId, topic, partition]), value: null };
    });
    await this.append(groupId, records);
    for (const r of records) this.apply(r.key, r.value);
    return records.length;
  }

  private async append(groupId: string, records: Array<{ key: Uint8Array; value: Uint8Array | null }>): Promise<void> {
    const partition = partitionForKey(utf8.encode(groupId), OFFSETS_TOPIC_PARTITIONS);
    const log = this.topics.partition(OFFSETS_TOPIC, partition);
    if (!log) throw new SluiceError(ErrorCode.COORDINATOR_NOT_AVAILABLE, 'the offsets topic is not loaded');
    const builder = new BatchBuilder();
    const now = Date.now();
    for (const r of records) builder.append(r.key, r.value, now);
    const appended = log.append(Buffer.from(builder.finish()));
    await log.waitForFlush(appended.lastOffset);
  }

  get(groupId: string, topic: string, partition: number): CommittedOffset | undefined {
    return this.offsets.get(groupId)?.get(tpKey(topic, partition));
  }

  /** Every committed offset of a group, as [tpKey, offset] pairs. */
  entries(groupId: string): Array<[string, CommittedOffset]> {
    return [...(this.offsets.get(groupId) ?? [])];
  }

  groupIds(): string[] {
    return [...this.offsets.keys()];
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
