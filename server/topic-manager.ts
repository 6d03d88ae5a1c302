/**
 * Topics as the broker knows them: the metadata store says which topics exist (and with
 * which config overrides), the log manager holds their partitions on disk. This file keeps
 * the two in step: creation writes metadata first and then makes the partition logs;
 * deletion removes metadata first, so a crash in between leaves at worst orphan
 * directories, which startup removes.
 */
import { randomUUID } from 'node:crypto';
import { ErrorCode, SluiceError } from '../protocol/errors.ts';
import { parseLogConfig, topicConfigToStrings, type LogConfig } from './log/log-config.ts';
import type { LogManager } from './log/log-manager.ts';
import type { PartitionLog } from './log/partition-log.ts';
import type { Logger } from './logger.ts';
import type { MetadataStore, TopicRecord } from './metadata/metadata-store.ts';

export const TOPIC_NAME_MAX_CHARS = 249;
const TOPIC_NAME = /^[a-zA-Z0-9._-]+$/;
/** Names starting with this belong to the broker (e.g. __consumer_offsets). */
export const INTERNAL_TOPIC_PREFIX = '__';

export function validateTopicName(name: string): void {
  if (name.length === 0 || name.length > TOPIC_NAME_MAX_CHARS || !TOPIC_NAME.test(name) || name === '.' || name === '..') {
    throw new SluiceError(ErrorCode.INVALID_TOPIC, `topic name ${JSON.stringify(name)} must be 1-${TOPIC_NAME_MAX_CHARS} characters of [a-zA-Z0-9._-], not "." or ".."`);
  }
}

export function isInternalTopic(name: string): boolean {
  return name.startsWith(INTERNAL_TOPIC_PREFIX);
}

interface LiveTopic {
  record: TopicRecord;
  config: LogConfig;
  partitions: PartitionLog[];
}

export class TopicManager {
  private readonly live = new Map<string, LiveTopic>();

  constructor(
    private readonly metadata: MetadataStore,
    private readonly logs: LogManager,
    private readonly partitionsMax: number,
    private readonly log: Logger,
  ) {}

  /** Opens every topic in the metadata store and removes partition dirs no topic owns. */
  load(): void {
    for (const record of this.metadata.listTopics()) {
      const config = parseLogConfig(record.configs);
      const partitions: PartitionLog[] = [];
      for (let p = 0; p < record.partitions; p++) partitions.push(this.logs.loadPartition(record.name, p, config));
      this.live.set(record.name, { record, config, partitions });
    }
    const owned = new Set<string>();
    for (const t of this.live.values()) for (let p = 0; p < t.record.partitions; p++) owned.add(`${t.record.name}-${p}`);
    for (const dir of this.logs.partitionDirs()) {
      if (!owned.has(dir)) {
        this.log.warn('removing partition directory no topic owns (interrupted delete?)', { dir });
        this.logs.removeDir(dir);
      }
    }
  }

  async create(name: string, partitions: number, replicationFactor: number, configs: Record<string, string>, validateOnly = false, internal = false): Promise<void> {
    validateTopicName(name);
    if (isInternalTopic(name) && !internal) {
      throw new SluiceError(ErrorCode.INVALID_TOPIC, `topic names starting with "${INTERNAL_TOPIC_PREFIX}" are reserved for the broker`);
    }
    if (!Number.isInteger(partitions) || partitions < 1 || partitions > this.partitionsMax) {
      throw new SluiceError(ErrorCode.INVALID_PARTITIONS, `partitions must be an integer from 1 to ${this.partitionsMax}, got ${partitions}`);
    }
    if (replicationFactor !== 1 && replicationFactor !== -1) {
      throw new SluiceError(ErrorCode.INVALID_REPLICATION_FACTOR, `a single broker supports replication factor 1, got ${replicationFactor}`);
    }
    const config = parseLogConfig(configs);
    if (this.live.has(name)) throw new SluiceError(ErrorCode.TOPIC_ALREADY_EXISTS, `topic ${name} already exists`);
    if (validateOnly) return;
    const record: TopicRecord = { name, id: randomUUID(), partitions, replicationFactor: 1, configs: { ...configs }, createdAtMs: Date.now() };
    await this.metadata.createTopic(record);
    const logs: PartitionLog[] = [];
    for (let p = 0; p < partitions; p++) logs.push(this.logs.createPartition(name, p, config));
    this.live.set(name, { record, config, partitions: logs });
    this.log.info('topic created', { topic: name, partitions });
  }

  /** Creates a broker-owned topic unless it exists (its config is the broker's to choose). */
  async ensureInternal(name: string, partitions: number, configs: Record<string, string>): Promise<void> {
    if (!this.live.has(name)) await this.create(name, partitions, 1, configs, false, true);
  }

  /** Raises the partition count; new partitions start empty. Never lowers it. */
  async addPartitions(name: string, count: number, validateOnly = false): Promise<void> {
    const t = this.live.get(name);
    if (!t) throw new SluiceError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `topic ${name} does not exist`);
    if (isInternalTopic(name)) throw new SluiceError(ErrorCode.INVALID_TOPIC, `${name} is internal`);
    if (!Number.isInteger(count) || count <= t.record.partitions || count > this.partitionsMax) {
      throw new SluiceError(ErrorCode.INVALID_PARTITIONS, `topic ${name} has ${t.record.partitions} partitions; the new count must be larger and at most ${this.partitionsMax}, got ${count}`);
    }
    if (validateOnly) return;
    const record: TopicRecord = { ...t.record, partitions: count };
    await this.metadata.updateTopic(record);
    for (let p = t.record.partitions; p < count; p++) t.partitions.push(this.logs.createPartition(name, p, t.config));
    t.record = record;
    this.log.info('partitions added', { topic: name, partitions: count });
  }

  async delete(name: string): Promise<void> {
    const t = this.live.get(name);
    if (!t) throw new SluiceError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `topic ${name} does not exist`);
    if (isInternalTopic(name)) throw new SluiceError(ErrorCode.INVALID_TOPIC, `${name} is internal and cannot be deleted`);
    this.live.delete(name);
    await this.metadata.deleteTopic(name);
    await this.logs.deleteTopic(name, t.record.partitions);
    this.log.info('topic deleted', { topic: name });
  }

  /** Topic names, internal ones only when asked for. */
  names(includeInternal = false): string[] {
    return [...this.live.keys()].filter((n) => includeInternal || !isInternalTopic(n)).sort();
  }

  partitionCount(name: string): number | undefined {
    return this.live.get(name)?.partitions.length;
  }

  get(name: string): LiveTopic | undefined {
    return this.live.get(name);
  }

  partition(topic: string, partition: number): PartitionLog | undefined {
    return this.live.get(topic)?.partitions[partition];
  }

  configStrings(name: string): Record<string, string> {
    const t = this.live.get(name);
    if (!t) throw new SluiceError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `topic ${name} does not exist`);
    return topicConfigToStrings(t.config);
  }
}
