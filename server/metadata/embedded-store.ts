/**
 * The default metadata store for a single broker: a JSON document in
 * `<data-dir>/__metadata/metadata.json`, replaced atomically (write a temp file, fsync it,
 * rename over, fsync the directory) so a crash leaves either the old or the new document.
 * Mutations are serialised through one promise chain; reads come from memory.
 *
 * As a ClusterMetadataStore it describes a cluster of one: this broker is always live,
 * always the controller (elected at once, with an epoch bumped and persisted on every
 * election), and partition states are kept and compare-and-set here like anywhere else.
 * Version 1 documents (before partition states were stored) are upgraded on open.
 */
import { randomUUID } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { ErrorCode, SluiceError } from '../../protocol/errors.ts';
import type { BrokerRegistration, Campaign, ClusterEvent, ClusterMetadataStore, ControllerCallbacks, ControllerInfo, PartitionState, PartitionWriteOptions } from './cluster-store.ts';
import type { TopicRecord } from './metadata-store.ts';

interface Document {
  version: 2;
  clusterId: string;
  controllerEpoch: number;
  topics: TopicRecord[];
  /** topic -> partition states by partition number. */
  partitions: Record<string, PartitionState[]>;
}

export class EmbeddedMetadataStore implements ClusterMetadataStore {
  private readonly dir: string;
  private readonly file: string;
  private doc: Document = { version: 2, clusterId: '', controllerEpoch: 0, topics: [], partitions: {} };
  private chain: Promise<unknown> = Promise.resolve();
  private registration: BrokerRegistration | undefined;
  private controllerInfo: ControllerInfo | undefined;
  private readonly listeners = new Set<(e: ClusterEvent) => void>();

  /** brokerId: the broker that leads every partition this store creates. */
  constructor(dataDir: string, private readonly brokerId = 0) {
    this.dir = join(dataDir, '__metadata');
    this.file = join(this.dir, 'metadata.json');
  }

  async open(): Promise<void> {
    mkdirSync(this.dir, { recursive: true });
    if (existsSync(this.file)) {
      const parsed = JSON.parse(readFileSync(this.file, 'utf8')) as { version: number; clusterId: string; topics: TopicRecord[]; controllerEpoch?: number; partitions?: Record<string, PartitionState[]> };
      if ((parsed.version !== 1 && parsed.version !== 2) || !Array.isArray(parsed.topics)) throw new Error(`${this.file}: unknown metadata format`);
      this.doc = {
        version: 2,
        clusterId: parsed.clusterId,
        controllerEpoch: parsed.controllerEpoch ?? 0,
        topics: parsed.topics,
        partitions: parsed.partitions ?? Object.fromEntries(parsed.topics.map((t) => [t.name, this.initialStates(t.partitions)])),
      };
      if (parsed.version === 1) this.persist();
    } else {
      this.doc = { version: 2, clusterId: randomUUID(), controllerEpoch: 0, topics: [], partitions: {} };
      this.persist();
    }
  }

  private initialStates(count: number, from = 0): PartitionState[] {
    const id = this.brokerId;
    return Array.from({ length: count - from }, () => ({ leader: id, leaderEpoch: 0, replicas: [id], isr: [id], partitionEpoch: 0 }));
  }

  clusterId(): string {
    return this.doc.clusterId;
  }

  listTopics(): TopicRecord[] {
    return this.doc.topics.slice();
  }

  getTopic(name: string): TopicRecord | undefined {
    return this.doc.topics.find((t) => t.name === name);
  }

  createTopic(topic: TopicRecord, initialPartitions?: readonly PartitionState[]): Promise<void> {
    return this.serial(() => {
      if (this.getTopic(topic.name)) throw new SluiceError(ErrorCode.TOPIC_ALREADY_EXISTS, `topic ${topic.name} already exists`);
      if (initialPartitions && initialPartitions.length !== topic.partitions) throw new Error('initialPartitions must have one state per partition');
      const states = initialPartitions ? initialPartitions.map((s) => ({ ...s })) : this.initialStates(topic.partitions);
      this.doc = { ...this.doc, topics: [...this.doc.topics, topic], partitions: { ...this.doc.partitions, [topic.name]: states } };
      this.persist();
      this.emit({ kind: 'topic', name: topic.name, record: topic });
      states.forEach((state, partition) => this.emit({ kind: 'partition', topic: topic.name, partition, state }));
    });
  }

  updateTopic(topic: TopicRecord, addedPartitions?: readonly PartitionState[]): Promise<void> {
    return this.serial(() => {
      const i = this.doc.topics.findIndex((t) => t.name === topic.name && t.id === topic.id);
      if (i < 0) throw new SluiceError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `topic ${topic.name} does not exist`);
      const topics = this.doc.topics.slice();
      topics[i] = topic;
      const existing = this.doc.partitions[topic.name] ?? [];
      const added = topic.partitions <= existing.length ? [] : addedPartitions ? addedPartitions.map((s) => ({ ...s })) : this.initialStates(topic.partitions, existing.length);
      this.doc = { ...this.doc, topics, partitions: { ...this.doc.partitions, [topic.name]: [...existing, ...added] } };
      this.persist();
      this.emit({ kind: 'topic', name: topic.name, record: topic });
      added.forEach((state, i) => this.emit({ kind: 'partition', topic: topic.name, partition: existing.length + i, state }));
    });
  }

  deleteTopic(name: string): Promise<boolean> {
    return this.serial(() => {
      const topics = this.doc.topics.filter((t) => t.name !== name);
      if (topics.length === this.doc.topics.length) return false;
      const partitions = { ...this.doc.partitions };
      delete partitions[name];
      this.doc = { ...this.doc, topics, partitions };
      this.persist();
      this.emit({ kind: 'topic', name, record: undefined });
      return true;
    });
  }

  async registerBroker(info: BrokerRegistration): Promise<void> {
    this.registration = info;
    this.emit({ kind: 'broker', brokerId: info.brokerId, registration: info });
  }

  liveBrokers(): BrokerRegistration[] {
    return this.registration ? [this.registration] : [];
  }

  /** One broker, one incarnation that matters: its partition states name epoch 0 (or nothing). */
  brokerEpoch(brokerId: number): number | undefined {
    return this.registration?.brokerId === brokerId ? 0 : undefined;
  }

  ownBrokerEpoch(): number | undefined {
    return this.registration ? 0 : undefined;
  }

  controller(): ControllerInfo | undefined {
    return this.controllerInfo;
  }

  campaignController(brokerId: number, callbacks: ControllerCallbacks): Campaign {
    if (!this.registration || this.registration.brokerId !== brokerId) throw new Error('register the broker before campaigning');
    const elected = this.serial(() => {
      this.doc = { ...this.doc, controllerEpoch: this.doc.controllerEpoch + 1 };
      this.persist();
      this.controllerInfo = { brokerId, controllerEpoch: this.doc.controllerEpoch };
      this.emit({ kind: 'controller', controller: this.controllerInfo });
      callbacks.onElected(this.doc.controllerEpoch);
    });
    return {
      cancel: async () => {
        await elected;
        if (this.controllerInfo?.brokerId === brokerId) {
          this.controllerInfo = undefined;
          this.emit({ kind: 'controller', controller: undefined });
          callbacks.onResigned();
        }
      },
    };
  }

  async getPartitionState(topic: string, partition: number): Promise<PartitionState | undefined> {
    return this.partitionState(topic, partition);
  }

  partitionState(topic: string, partition: number): PartitionState | undefined {
    const s = this.doc.partitions[topic]?.[partition];
    return s ? { ...s, replicas: [...s.replicas], isr: [...s.isr] } : undefined;
  }

  compareAndSetPartitionState(topic: string, partition: number, expectedPartitionEpoch: number, next: Omit<PartitionState, 'partitionEpoch'>, opts: PartitionWriteOptions = {}): Promise<boolean> {
    return this.serial(() => {
      const states = this.doc.partitions[topic];
      const current = states?.[partition];
      if (!states || !current || current.partitionEpoch !== expectedPartitionEpoch) return false;
      if (opts.controllerEpoch !== undefined && opts.controllerEpoch !== this.doc.controllerEpoch) return false;
      const state: PartitionState = { leader: next.leader, leaderEpoch: next.leaderEpoch, replicas: [...next.replicas], isr: [...next.isr], partitionEpoch: expectedPartitionEpoch + 1 };
      if (next.leaderBrokerEpoch !== undefined) state.leaderBrokerEpoch = next.leaderBrokerEpoch;
      if (next.targetReplicas) {
        state.targetReplicas = [...next.targetReplicas];
        state.throttleBytesPerSec = next.throttleBytesPerSec ?? 0;
      }
      const updated = states.slice();
      updated[partition] = state;
      this.doc = { ...this.doc, partitions: { ...this.doc.partitions, [topic]: updated } };
      this.persist();
      this.emit({ kind: 'partition', topic, partition, state });
      return true;
    });
  }

  watch(listener: (event: ClusterEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async close(): Promise<void> {
    await this.chain.catch(() => {});
    this.listeners.clear();
  }

  private emit(e: ClusterEvent): void {
    for (const l of this.listeners) l(e);
  }

  private serial<T>(fn: () => T): Promise<T> {
    const next = this.chain.then(fn, fn);
    this.chain = next.catch(() => {});
    return next;
  }

  private persist(): void {
    const tmp = `${this.file}.tmp`;
    writeFileSync(tmp, JSON.stringify(this.doc, null, 2));
    const fd = openSync(tmp, 'r');
    fsyncSync(fd);
    closeSync(fd);
    renameSync(tmp, this.file);
    const dfd = openSync(this.dir, 'r');
    try {
      fsyncSync(dfd);
    } finally {
      closeSync(dfd);
    }
  }
}
