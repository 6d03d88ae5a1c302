/**
 * The default metadata store for a single broker, in `<data-dir>/__metadata/`: a snapshot
 * (`metadata.json`, replaced atomically) plus an append-only journal of the changes made
 * since (`metadata.journal`, see metadata-journal.ts). A change is one small record, written
 * and fdatasynced off the event loop, shared with every change that arrived meanwhile (group
 * commit); the snapshot is rewritten only when the journal has grown past its size.
 *
 * As a ClusterMetadataStore it describes a cluster of one: this broker is always live,
 * always the controller (elected at once, with an epoch bumped and persisted on every
 * election), and partition states are kept and compare-and-set here like anywhere else.
 * Version 1 and 2 documents (whole-file rewrites, no journal) are upgraded on open.
 * Every partition state it is given is checked and copied by partition-state.ts, the same
 * checks the etcd store makes (test/server/metadata/cluster-store.contract.ts runs one
 * suite against both).
 *
 * Invariants:
 * - Readers see `durable`: a change is applied there, and its events emitted, only once its
 *   journal record is on disk. A change whose write fails is never applied: the caller gets
 *   STORAGE_ERROR and memory, disk and a later restart all agree that it did not happen.
 * - Changes are validated against `staged` (durable plus the changes queued or being
 *   written), in submission order, so that concurrent changes see each other (a second
 *   createTopic of a name waiting for the disk fails with TOPIC_ALREADY_EXISTS). When a write
 *   fails, that change and every change queued behind it (validated against it) fail, and
 *   `staged` goes back to `durable`.
 * - Results that wrote nothing (a failed compare-and-set, a delete of a missing topic, a
 *   validation error) are delivered after every change submitted before them, so a caller
 *   that retries reads a state that includes those changes.
 * - Journal records carry consecutive sequence numbers; the snapshot records the last one it
 *   contains (`journalSeq`), so a crash between writing a snapshot and emptying the journal
 *   replays nothing twice.
 * - At most `journalBytesQueuedMax` bytes of changes wait for the disk; more fail at once
 *   with STORAGE_ERROR rather than queue without bound.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ErrorCode, SluiceError } from '../../protocol/errors.ts';
import { writeFileDurable, writeFileDurableSync } from '../log/durable-file.ts';
import { checkedArchiveTransition, sameArchiveState, type ArchiveState } from './archive-state.ts';
import type { BrokerRegistration, Campaign, ClusterEvent, ClusterMetadataStore, ControllerCallbacks, ControllerInfo, PartitionState, PartitionWriteOptions } from './cluster-store.ts';
import { encodeRecord, MetadataJournal } from './metadata-journal.ts';
import type { TopicRecord } from './metadata-store.ts';
import { checkedNewStates, checkedPartitionState } from './partition-state.ts';

interface Document {
  version: 3;
  clusterId: string;
  controllerEpoch: number;
  topics: TopicRecord[];
  /** topic -> partition states by partition number. */
  partitions: Record<string, PartitionState[]>;
  /** Sequence number of the last journal record this document includes. */
  journalSeq: number;
  /** The first producer id never handed out (SPEC §6.19); absent in documents older than it means 0. */
  nextProducerId?: number;
  /** topic -> `<topicId>/<partition>` -> archive state (archive-state.ts); absent: nothing archived. */
  archive?: Record<string, Record<string, ArchiveState>>;
}

/** One journal record's change. */
type Change =
  | { t: 'createTopic'; topic: TopicRecord; states: PartitionState[] }
  | { t: 'updateTopic'; topic: TopicRecord; added: PartitionState[] }
  | { t: 'deleteTopic'; name: string }
  | { t: 'controllerEpoch'; epoch: number }
  | { t: 'partition'; topic: string; partition: number; state: PartitionState }
  /** A block of producer ids reserved: the next one free is `next`. */
  | { t: 'producerIds'; next: number }
  /** A partition's archive state (archive-state.ts); `key` is `<topicId>/<partition>`. */
  | { t: 'archive'; topic: string; key: string; state: ArchiveState };

interface Pending {
  record: Buffer;
  seq: number;
  change: Change;
  /** Runs once the record is durable, after `durable` has the change: emits, resolves. */
  committed: () => void;
  failed: (e: SluiceError) => void;
}

export interface EmbeddedStoreOptions {
  /** Bytes of changes that may wait for the disk at once. */
  journalBytesQueuedMax?: number;
  /** The snapshot is rewritten once the journal is larger than this and than the last snapshot. */
  journalBytesCompactMin?: number;
}

/** A copy of a state already stored (checked when it was written, see partition-state.ts). */
function cloneState(s: PartitionState): PartitionState {
  const c: PartitionState = { leader: s.leader, leaderEpoch: s.leaderEpoch, replicas: [...s.replicas], isr: [...s.isr], partitionEpoch: s.partitionEpoch };
  if (s.leaderBrokerEpoch !== undefined) c.leaderBrokerEpoch = s.leaderBrokerEpoch;
  if (s.targetReplicas) {
    c.targetReplicas = [...s.targetReplicas];
    c.throttleBytesPerSec = s.throttleBytesPerSec ?? 0;
  }
  return c;
}

function cloneTopic(t: TopicRecord): TopicRecord {
  return { ...t, configs: { ...t.configs } };
}

/** Applies a change in place; copies everything it keeps, so two documents never share state. */
function apply(doc: Document, c: Change): void {
  switch (c.t) {
    case 'createTopic':
      doc.topics.push(cloneTopic(c.topic));
      doc.partitions[c.topic.name] = c.states.map(cloneState);
      break;
    case 'updateTopic': {
      const i = doc.topics.findIndex((t) => t.name === c.topic.name && t.id === c.topic.id);
      if (i >= 0) doc.topics[i] = cloneTopic(c.topic);
      (doc.partitions[c.topic.name] ??= []).push(...c.added.map(cloneState));
      break;
    }
    case 'deleteTopic':
      doc.topics = doc.topics.filter((t) => t.name !== c.name);
      delete doc.partitions[c.name];
      if (doc.archive) delete doc.archive[c.name];
      break;
    case 'controllerEpoch':
      doc.controllerEpoch = c.epoch;
      break;
    case 'partition': {
      const states = doc.partitions[c.topic];
      if (states) states[c.partition] = cloneState(c.state);
      break;
    }
    case 'producerIds':
      doc.nextProducerId = c.next;
      break;
    case 'archive':
      ((doc.archive ??= {})[c.topic] ??= {})[c.key] = { startOffset: c.state.startOffset, endOffset: c.state.endOffset };
      break;
  }
}

function cloneDoc(d: Document): Document {
  const c: Document = { ...d, topics: d.topics.map(cloneTopic), partitions: Object.fromEntries(Object.entries(d.partitions).map(([k, v]) => [k, v.map(cloneState)])) };
  if (d.archive) c.archive = Object.fromEntries(Object.entries(d.archive).map(([t, m]) => [t, Object.fromEntries(Object.entries(m).map(([k, v]) => [k, { ...v }]))]));
  return c;
}

const archiveKey = (topicId: string, partition: number): string => `${topicId}/${partition}`;

function storageError(e: unknown): SluiceError {
  if (e instanceof SluiceError) return e;
  return new SluiceError(ErrorCode.STORAGE_ERROR, `metadata write failed: ${(e as Error)?.message ?? String(e)}`);
}

export class EmbeddedMetadataStore implements ClusterMetadataStore {
  private readonly dir: string;
  private readonly file: string;
  private readonly journalBytesQueuedMax: number;
  private readonly journalBytesCompactMin: number;
  private durable: Document = { version: 3, clusterId: '', controllerEpoch: 0, topics: [], partitions: {}, journalSeq: 0 };
  private staged: Document = this.durable;
  private journal: MetadataJournal | null = null;
  private snapshotBytes = 0;
  /** Journal batches (one fdatasync each) written so far: a diagnostic for group commit. */
  journalBatchesWritten = 0;
  /** After a failed snapshot: journal size at which to try again. */
  private compactRetryAtBytes = 0;
  /** Last sequence number handed out (staged). */
  private seq = 0;
  private queue: Pending[] = [];
  private queuedBytes = 0;
  private writing: Promise<void> | null = null;
  /** Settles after every change submitted so far has; null when nothing is pending. */
  private tail: Promise<unknown> | null = null;
  private registration: BrokerRegistration | undefined;
  private controllerInfo: ControllerInfo | undefined;
  private readonly listeners = new Set<(e: ClusterEvent) => void>();

  /** brokerId: the broker that leads every partition this store creates. */
  constructor(
    dataDir: string,
    private readonly brokerId = 0,
    opts: EmbeddedStoreOptions = {},
  ) {
    this.dir = join(dataDir, '__metadata');
    this.file = join(this.dir, 'metadata.json');
    this.journalBytesQueuedMax = opts.journalBytesQueuedMax ?? 64 * 1024 * 1024;
    this.journalBytesCompactMin = opts.journalBytesCompactMin ?? 1024 * 1024;
  }

  async open(): Promise<void> {
    mkdirSync(this.dir, { recursive: true });
    let upgrade = false;
    if (existsSync(this.file)) {
      const text = readFileSync(this.file, 'utf8');
      this.snapshotBytes = text.length;
      const parsed = JSON.parse(text) as { version: number; clusterId: string; topics: TopicRecord[]; controllerEpoch?: number; partitions?: Record<string, PartitionState[]>; journalSeq?: number };
      if (![1, 2, 3].includes(parsed.version) || !Array.isArray(parsed.topics)) throw new Error(`${this.file}: unknown metadata format`);
      this.durable = {
        version: 3,
        clusterId: parsed.clusterId,
        controllerEpoch: parsed.controllerEpoch ?? 0,
        topics: parsed.topics,
        partitions: parsed.partitions ?? Object.fromEntries(parsed.topics.map((t) => [t.name, Array.from({ length: t.partitions }, () => this.initialState())])),
        journalSeq: parsed.journalSeq ?? 0,
        nextProducerId: (parsed as { nextProducerId?: number }).nextProducerId ?? 0,
        archive: (parsed as { archive?: Document['archive'] }).archive ?? {},
      };
      upgrade = parsed.version !== 3;
    } else {
      this.durable = { version: 3, clusterId: randomUUID(), controllerEpoch: 0, topics: [], partitions: {}, journalSeq: 0 };
      upgrade = true;
    }
    const { journal, payloads } = MetadataJournal.open(join(this.dir, 'metadata.journal'));
    this.journal = journal;
    let seq = this.durable.journalSeq;
    for (const p of payloads as { seq: number; change: Change }[]) {
      if (p.seq <= this.durable.journalSeq) continue; // already in the snapshot
      if (p.seq !== seq + 1) throw new Error(`${journal.path}: record ${p.seq} follows ${seq}`);
      apply(this.durable, p.change);
      seq = p.seq;
    }
    this.durable.journalSeq = seq;
    this.seq = seq;
    if (upgrade || journal.sizeBytes > Math.max(this.journalBytesCompactMin, this.snapshotBytes)) {
      // Start-up: a synchronous snapshot is fine (and an old-format file must not be left
      // next to a journal that an older broker would ignore).
      const text = JSON.stringify(this.durable);
      writeFileDurableSync(this.file, Buffer.from(text));
      this.snapshotBytes = text.length;
      await journal.reset();
    }
    this.staged = cloneDoc(this.durable);
  }

  /** This store's broker leads every partition it creates without a given state (a cluster of one). */
  private initialState(): PartitionState {
    const id = this.brokerId;
    return { leader: id, leaderEpoch: 0, replicas: [id], isr: [id], partitionEpoch: 0 };
  }

  clusterId(): string {
    return this.durable.clusterId;
  }

  listTopics(): TopicRecord[] {
    return this.durable.topics.slice();
  }

  getTopic(name: string): TopicRecord | undefined {
    return this.durable.topics.find((t) => t.name === name);
  }

  createTopic(topic: TopicRecord, initialPartitions?: readonly PartitionState[]): Promise<void> {
    return this.submit(() => {
      if (this.staged.topics.some((t) => t.name === topic.name)) throw new SluiceError(ErrorCode.TOPIC_ALREADY_EXISTS, `topic ${topic.name} already exists`);
      const states = checkedNewStates(`topic ${topic.name}`, topic.partitions, initialPartitions, () => this.initialState());
      return {
        change: { t: 'createTopic', topic, states },
        committed: () => {
          this.emit({ kind: 'topic', name: topic.name, record: topic });
          states.forEach((state, partition) => this.emit({ kind: 'partition', topic: topic.name, partition, state }));
        },
      };
    });
  }

  updateTopic(topic: TopicRecord, addedPartitions?: readonly PartitionState[]): Promise<void> {
    return this.submit(() => {
      if (!this.staged.topics.some((t) => t.name === topic.name && t.id === topic.id)) throw new SluiceError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `topic ${topic.name} does not exist`);
      const existing = this.staged.partitions[topic.name]?.length ?? 0;
      const added = checkedNewStates(`topic ${topic.name}`, Math.max(0, topic.partitions - existing), addedPartitions, () => this.initialState());
      return {
        change: { t: 'updateTopic', topic, added },
        committed: () => {
          this.emit({ kind: 'topic', name: topic.name, record: topic });
          added.forEach((state, i) => this.emit({ kind: 'partition', topic: topic.name, partition: existing + i, state }));
        },
      };
    });
  }

  deleteTopic(name: string): Promise<boolean> {
    return this.submit(() => {
      if (!this.staged.topics.some((t) => t.name === name)) return { result: false };
      return { change: { t: 'deleteTopic', name }, result: true, committed: () => this.emit({ kind: 'topic', name, record: undefined }) };
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
    const elected = this.submit(() => {
      const epoch = this.staged.controllerEpoch + 1;
      return {
        change: { t: 'controllerEpoch', epoch },
        committed: () => {
          this.controllerInfo = { brokerId, controllerEpoch: epoch };
          this.emit({ kind: 'controller', controller: this.controllerInfo });
          callbacks.onElected(epoch);
        },
      };
    });
    return {
      cancel: async () => {
        await elected.catch(() => {});
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
    const s = this.durable.partitions[topic]?.[partition];
    return s ? cloneState(s) : undefined;
  }

  compareAndSetPartitionState(topic: string, partition: number, expectedPartitionEpoch: number, next: Omit<PartitionState, 'partitionEpoch'>, opts: PartitionWriteOptions = {}): Promise<boolean> {
    return this.submit(() => {
      const state = checkedPartitionState(next, expectedPartitionEpoch + 1); // an invalid state is refused whatever the epochs
      const current = this.staged.partitions[topic]?.[partition];
      if (!current || current.partitionEpoch !== expectedPartitionEpoch) return { result: false };
      if (opts.controllerEpoch !== undefined && opts.controllerEpoch !== this.staged.controllerEpoch) return { result: false };
      return { change: { t: 'partition', topic, partition, state }, result: true, committed: () => this.emit({ kind: 'partition', topic, partition, state }) };
    });
  }

  allocateProducerIdBlock(count: number): Promise<number> {
    return this.submit(() => {
      if (!Number.isSafeInteger(count) || count < 1) throw new Error(`producer id block size must be a positive integer, got ${count}`);
      const first = this.staged.nextProducerId ?? 0;
      const next = first + count;
      if (!Number.isSafeInteger(next)) throw new SluiceError(ErrorCode.STORAGE_ERROR, 'producer ids exhausted');
      return { change: { t: 'producerIds', next }, result: first };
    });
  }

  async getArchiveState(topic: string, topicId: string, partition: number): Promise<ArchiveState | undefined> {
    if (!this.durable.topics.some((t) => t.name === topic && t.id === topicId)) return undefined;
    const s = this.durable.archive?.[topic]?.[archiveKey(topicId, partition)];
    return s ? { ...s } : undefined;
  }

  compareAndSetArchiveState(topic: string, topicId: string, partition: number, expected: ArchiveState | undefined, next: ArchiveState): Promise<boolean> {
    return this.submit(() => {
      const state = checkedArchiveTransition(`archive state of ${topic}/${partition}`, expected, next);
      const t = this.staged.topics.find((x) => x.name === topic && x.id === topicId);
      if (!t || partition < 0 || partition >= t.partitions) return { result: false };
      const key = archiveKey(topicId, partition);
      if (!sameArchiveState(this.staged.archive?.[topic]?.[key], expected)) return { result: false };
      return { change: { t: 'archive', topic, key, state }, result: true };
    });
  }

  watch(listener: (event: ClusterEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Resolves once every change submitted so far is durable or failed (e.g. this broker's election). */
  async settled(): Promise<void> {
    await this.tail;
  }

  async close(): Promise<void> {
    await this.tail?.catch(() => {});
    await this.writing;
    this.listeners.clear();
    await this.journal?.close();
    this.journal = null;
  }

  private emit(e: ClusterEvent): void {
    for (const l of this.listeners) l(e);
  }

  /**
   * Validates against `staged` and queues the change (if any); resolves with `result` once
   * the change is durable and applied, or, when there is no change, once everything
   * submitted before has settled.
   */
  private submit<T = void>(decide: () => { change?: Change; result?: T; committed?: () => void }): Promise<T> {
    let decision: ReturnType<typeof decide>;
    try {
      decision = decide();
    } catch (e) {
      return this.afterTail(() => Promise.reject(e));
    }
    const { change, committed } = decision;
    const result = decision.result as T;
    if (!change) return this.afterTail(() => Promise.resolve(result));
    let record: Buffer;
    const seq = this.seq + 1;
    try {
      record = encodeRecord({ seq, change });
    } catch (e) {
      return this.afterTail(() => Promise.reject(storageError(e)));
    }
    if (!this.journal) return Promise.reject(new SluiceError(ErrorCode.STORAGE_ERROR, 'metadata store is closed'));
    if (this.queuedBytes + record.length > this.journalBytesQueuedMax) {
      return Promise.reject(new SluiceError(ErrorCode.STORAGE_ERROR, `${this.queuedBytes} bytes of metadata changes already wait for the disk (limit ${this.journalBytesQueuedMax})`));
    }
    this.seq = seq;
    apply(this.staged, change);
    const promise = new Promise<T>((resolve, reject) => {
      this.queue.push({
        record,
        seq,
        change,
        committed: () => {
          committed?.();
          resolve(result);
        },
        failed: reject,
      });
    });
    this.queuedBytes += record.length;
    const tail = promise.catch(() => {});
    this.tail = tail;
    void tail.then(() => {
      if (this.tail === tail) this.tail = null;
    });
    this.writing ??= this.writeLoop();
    return promise;
  }

  private afterTail<T>(fn: () => Promise<T>): Promise<T> {
    return this.tail ? this.tail.then(fn) : fn();
  }

  /** Group commit: writes whatever is queued as one batch with one fdatasync, until nothing is. */
  private async writeLoop(): Promise<void> {
    // Changes submitted in the same tick as the first go into its batch.
    await Promise.resolve();
    try {
      while (this.queue.length > 0 && this.journal) {
        const batch = this.queue.splice(0);
        const bytes = Buffer.concat(batch.map((p) => p.record));
        this.queuedBytes -= bytes.length;
        try {
          await this.journal.append(bytes);
        } catch (e) {
          this.fail(batch, storageError(e));
          continue;
        }
        this.journalBatchesWritten++;
        for (const p of batch) {
          apply(this.durable, p.change);
          this.durable.journalSeq = p.seq;
        }
        for (const p of batch) p.committed();
        if (this.journal.sizeBytes > Math.max(this.journalBytesCompactMin, this.snapshotBytes, this.compactRetryAtBytes)) await this.compact();
      }
    } finally {
      this.writing = null;
    }
  }

  /** A failed write: this batch and everything queued behind it (validated against it) fail. */
  private fail(batch: Pending[], error: SluiceError): void {
    const all = [...batch, ...this.queue.splice(0)];
    this.queuedBytes = 0;
    this.staged = cloneDoc(this.durable);
    this.seq = this.durable.journalSeq;
    for (const p of all) p.failed(error);
  }

  /**
   * Writes `durable` as the new snapshot, then empties the journal. Runs between batches, so
   * the snapshot holds exactly the journal's records; changes meanwhile wait in the queue.
   * A failure leaves the old snapshot and the journal as they were (and is retried later).
   */
  private async compact(): Promise<void> {
    const text = JSON.stringify(this.durable);
    try {
      await writeFileDurable(this.file, Buffer.from(text));
      this.snapshotBytes = text.length;
      await this.journal!.reset();
      this.compactRetryAtBytes = 0;
    } catch {
      // The journal still holds every change. Retry once it has grown some more, not after
      // every batch: a full disk would otherwise cost a snapshot's JSON per change.
      this.compactRetryAtBytes = this.journal!.sizeBytes + this.journalBytesCompactMin;
    }
  }
}
