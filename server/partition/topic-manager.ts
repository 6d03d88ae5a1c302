/**
 * Topics as this broker knows them. The metadata store is the authority: which topics exist,
 * their config, and each partition's replicas and leader. This broker holds a local log for
 * exactly the partitions it is a replica of, and keeps that set in step with the store by
 * following its change events (topics created or deleted anywhere in the cluster, replicas
 * moved). Creation writes metadata, with the replica placement, in one atomic step; deletion
 * removes metadata first, so a crash in between leaves at worst orphan directories, which
 * load() removes.
 *
 * Delete and re-create of one name (the topic id fences them, see log-manager.ts):
 * - A topic is dropped only by its id: a late deletion (an event, or delete() resuming after
 *   the store answered) never drops a newer topic of the same name.
 * - Dropping detaches the logs and renames their directories aside synchronously, so a topic
 *   created right after gets fresh, empty directories; delete() answers once the old files
 *   are gone.
 * - Local replicas are opened with the topic id; a directory left by another id is never reused.
 *
 * Creation never stores a topic this broker cannot open: the controller writes the directories
 * of its own replicas first (LogManager.prepareNewPartitions, off the event loop), stores the
 * topic only when that worked, and deletes it from the store again if opening them fails.
 * One name is created by one request at a time.
 *
 * It is also the registry the API handlers look partitions up in: one lookup by topic and one
 * by partition number give the local Partition (partition.ts), which does the rest.
 */
import { randomUUID } from 'node:crypto';
import { ErrorCode, SluiceError } from '../../protocol/errors.ts';
import { NO_LEADER_EPOCH } from '../../protocol/apis/fetch.ts';
import { replicationConfigToStrings, splitReplicationConfig, type ReplicationConfig } from '../cluster/replication-config.ts';
import { placeReplicas } from '../cluster/placement.ts';
import { LOG_CONFIG_KEYS, parseLogConfig, topicConfigToStrings, type LogConfig } from '../log/log-config.ts';
import { LogManager } from '../log/log-manager.ts';
import type { PartitionLog } from '../log/partition-log.ts';
import type { Logger } from '../logger.ts';
import type { ClusterEvent, ClusterMetadataStore, PartitionState } from '../metadata/cluster-store.ts';
import type { TopicRecord } from '../metadata/metadata-store.ts';
import { Partition, servable, type ReplicaListener, type ServedTopic, type ServeKind } from './partition.ts';
import { INTERNAL_TOPIC_PREFIX, isInternalTopic, validateTopicName } from './topic-names.ts';
import type { TxnMarker } from '../../protocol/record-batch.ts';
import { PartitionArchive } from '../archive/partition-archive.ts';
import type { BrokerArchive } from '../archive/broker-archive.ts';

export interface LiveTopic extends ServedTopic {
  record: TopicRecord;
  config: LogConfig;
  replication: ReplicationConfig;
  /** Local replicas by partition number; partitions this broker does not hold are absent. */
  partitions: Map<number, Partition>;
}

/**
 * Told after this broker, as leader, appended a transaction marker (SPEC §6.23) to a
 * partition: the group coordinator uses it to apply or drop the offsets a transaction sent
 * to `__consumer_offsets` (SPEC §6.24). markerOffset is the control batch's offset.
 */
export type TxnMarkerListener = (topic: string, partition: number, marker: TxnMarker, markerOffset: number) => void;

export class TopicManager {
  private readonly txnMarkerListeners: TxnMarkerListener[] = [];
  private readonly live = new Map<string, LiveTopic>();
  /** Replicas being deleted (moved away); one coming back waits for the deletion to finish. */
  private readonly deleting = new Map<string, Promise<void>>();
  /** Local logs of dropped topics still being removed, by topic id. */
  private readonly removals = new Map<string, Promise<void>>();
  /** Names a create() is working on (preparing directories, storing): a second one is refused. */
  private readonly creating = new Set<string>();
  /** Partition dirs (`<topic>-<partition>`) of new local replicas being written in the background. */
  private readonly preparing = new Set<string>();
  private listener: ReplicaListener | null = null;
  private unwatch: (() => void) | null = null;
  /** Tiered storage (SPEC §7.10): the broker's archive, null without a store. */
  private archive: BrokerArchive | null = null;
  /** archive.enable of topics created without it (the broker's --archive-enable). */
  private archiveEnableDefault = false;

  constructor(
    private readonly store: ClusterMetadataStore,
    private readonly logs: LogManager,
    private readonly brokerId: number,
    private readonly partitionsMax: number,
    private readonly log: Logger,
  ) {}

  setReplicaListener(listener: ReplicaListener): void {
    this.listener = listener;
  }

  /** The broker's archive (before load()); enableByDefault: --archive-enable. */
  setArchive(archive: BrokerArchive | null, enableByDefault: boolean): void {
    this.archive = archive;
    this.archiveEnableDefault = enableByDefault;
  }

  /** Registers a listener for transaction markers appended here as leader (see TxnMarkerListener). */
  addTxnMarkerListener(listener: TxnMarkerListener): void {
    this.txnMarkerListeners.push(listener);
  }

  /** Called by the WriteTxnMarkers handler once a marker is appended; listeners run synchronously, in order. */
  notifyTxnMarker(topic: string, partition: number, marker: TxnMarker, markerOffset: number): void {
    for (const l of this.txnMarkerListeners) l(topic, partition, marker, markerOffset);
  }

  /**
   * Opens every local replica the store assigns to this broker, removes partition dirs no
   * topic owns, and from then on follows the store's change events.
   */
  load(): void {
    for (const record of this.store.listTopics()) this.syncTopic(record);
    const owned = new Set<string>(this.preparing);
    for (const t of this.live.values()) for (const p of t.partitions.keys()) owned.add(`${t.record.name}-${p}`);
    for (const dir of this.logs.partitionDirs()) {
      if (!owned.has(dir)) {
        this.log.warn('removing partition directory this broker does not hold (deleted topic or moved replica)', { dir });
        this.logs.removeDir(dir);
      }
    }
    const leftovers = this.logs.removeDeletedDirs();
    if (leftovers > 0) this.log.info('removing directories of deleted partitions left by an earlier run', { dirs: leftovers });
    this.unwatch = this.store.watch((e) => this.onEvent(e));
  }

  stop(): void {
    this.unwatch?.();
    this.unwatch = null;
  }

  private onEvent(e: ClusterEvent): void {
    try {
      if (e.kind === 'topic') {
        // A deletion event may be applied after a re-creation the store already holds (etcd
        // applies a batch of changes, then emits them one by one): the store's current record wins.
        const record = e.record ?? this.store.getTopic(e.name);
        if (record) this.syncTopic(record);
        else void this.dropTopic(e.name);
      } else if (e.kind === 'partition') {
        const record = this.store.getTopic(e.topic);
        if (record) this.syncPartition(record, e.partition, e.state);
      }
    } catch (err) {
      this.log.error('failed to apply a metadata change', { event: e.kind, error: err as Error });
    }
  }

  private syncTopic(record: TopicRecord): void {
    let t = this.live.get(record.name);
    if (t && t.record.id !== record.id) {
      // Deleted and re-created under the same name while we were not looking.
      void this.dropTopic(record.name, t.record.id);
      t = undefined;
    }
    if (!t) {
      const { replication, log } = splitReplicationConfig(record.configs);
      t = { record, config: parseLogConfig(log), replication, partitions: new Map() };
      this.live.set(record.name, t);
    } else {
      if (!sameConfigs(t.record.configs, record.configs)) {
        // Altered (AlterTopicConfigs, here or on the controller): every open log takes it now.
        const { replication, log } = splitReplicationConfig(record.configs);
        t.config = parseLogConfig(log);
        t.replication = replication;
        this.logs.updateTopicConfig(record.name, t.config);
        // archive.enable turned on (SPEC §7.10): the open replicas start archiving in their role.
        if (t.config.archiveEnable) for (const p of t.partitions.values()) this.attachArchive(t, p);
      }
      t.record = record;
    }
    // New local replicas (no directory yet: a topic created by another broker, or partitions
    // added) are written in the background, all of them in one batch, and opened when done;
    // opening them here one by one would block the event loop for seconds per thousand.
    const fresh: number[] = [];
    for (let p = 0; p < record.partitions; p++) {
      const state = this.store.partitionState(record.name, p);
      const name = `${record.name}-${p}`;
      if (state?.replicas.includes(this.brokerId) && !t.partitions.has(p) && !this.preparing.has(name) && !this.deleting.has(name) && !this.logs.hasPartitionDir(record.name, p)) fresh.push(p);
      else this.syncPartition(record, p, state);
    }
    if (fresh.length > 0) this.prepareReplicas(record, t.config, fresh);
  }

  /**
   * Gives a replica of an archived topic its PartitionArchive (SPEC §7.10), once: a new
   * replica before it takes a role (the replica manager starts it), an open one whose topic
   * just got archive.enable=true in its current role here.
   */
  private attachArchive(t: LiveTopic, p: Partition): void {
    if (p.archive) return;
    if (!this.archive) {
      this.log.warn('topic has archive.enable=true but this broker has no archive store (--archive-dir / --archive-s3-bucket): its segments are neither archived nor deleted', { topic: t.record.name, partition: p.partition });
      return;
    }
    p.archive = new PartitionArchive(this.archive, t.record.name, t.record.id, p.partition, p.log);
    // Consumers read below the local log start from it (SPEC §7.10, reading).
    p.archiveSource = p.archive;
    if (p.role === 'leader') p.archive.startLeading();
    else if (p.role === 'follower') p.archive.startFollowing();
  }

  /** Writes the directories of new local replicas off the event loop, then opens them (syncPartition). */
  private prepareReplicas(record: TopicRecord, config: LogConfig, partitions: number[]): void {
    const names = partitions.map((p) => `${record.name}-${p}`);
    for (const n of names) this.preparing.add(n);
    const leaderEpochOf = (p: number) => {
      const s = this.store.partitionState(record.name, p);
      return s && s.leader === this.brokerId ? s.leaderEpoch : undefined;
    };
    const done = (error?: unknown) => {
      for (const n of names) this.preparing.delete(n);
      if (error) this.log.error('failed to create the directories of new replicas; opening them one by one', { topic: record.name, partitions: partitions.length, error: error as Error });
      for (const p of partitions) {
        try {
          this.syncPartition(record, p, this.store.partitionState(record.name, p));
        } catch (e) {
          this.log.error('failed to open a new replica', { topic: record.name, partition: p, error: e as Error });
        }
      }
    };
    this.logs.prepareNewPartitions(record.name, partitions, record.id, config, leaderEpochOf).then(() => done(), done);
  }

  private syncPartition(record: TopicRecord, partition: number, state: PartitionState | undefined): void {
    const t = this.live.get(record.name);
    if (!t || t.record.id !== record.id) return;
    const mine = !!state && state.replicas.includes(this.brokerId);
    let local = t.partitions.get(partition);
    const name = `${record.name}-${partition}`;
    if (mine && !local && this.preparing.has(name)) return; // prepareReplicas opens it with the state current then
    if (mine && !local) {
      const pending = this.deleting.get(name);
      if (pending) {
        // Moved away and back before its files were gone: start afresh once they are.
        void pending.then(() => this.syncPartition(record, partition, this.store.partitionState(record.name, partition)));
        return;
      }
      const log = this.logs.loadPartition(record.name, partition, t.config, record.id);
      local = new Partition(record.name, partition, log, this.brokerId, t.replication);
      if (t.config.archiveEnable) this.attachArchive(t, local);
      t.partitions.set(partition, local);
    } else if (!mine && local) {
      t.partitions.delete(partition);
      this.listener?.onReplicaRemoved(local);
      const deletion = this.logs
        .deletePartition(record.name, partition)
        .catch((e) => this.log.error('failed to delete a moved replica', { topic: record.name, partition, error: e as Error }))
        .finally(() => this.deleting.delete(name));
      this.deleting.set(name, deletion);
      this.log.info('replica moved away, log deleted', { topic: record.name, partition });
      return;
    }
    if (mine && local && state) this.listener?.onPartitionState(local, state);
  }

  /**
   * Forgets the topic (only if it still has topicId, when given) and deletes its local logs.
   * Everything up to the directories' rename happens before this returns its promise, which
   * resolves once the files are gone (or their removal failed, which is logged; it never
   * rejects). The promise of a drop in progress is kept in `removals`, so that delete() can
   * wait for a drop an event started.
   */
  private dropTopic(name: string, topicId?: string): Promise<void> {
    const t = this.live.get(name);
    if (!t) return Promise.resolve();
    if (topicId !== undefined && t.record.id !== topicId) return Promise.resolve();
    this.live.delete(name);
    for (const p of t.partitions.values()) this.listener?.onReplicaRemoved(p);
    const id = t.record.id;
    const removal = this.logs
      .deleteTopic(name, t.record.partitions)
      .then(
        () => this.log.info('topic removed', { topic: name, topicId: id }),
        // Never rejects (events drop topics without waiting). The metadata is gone already, and
        // the files, renamed aside or not, can no longer be reused: load() removes leftovers.
        (error: unknown) => this.log.error('failed to remove a deleted topic\'s files', { topic: name, topicId: id, error: error as Error }),
      )
      .finally(() => {
        if (this.removals.get(id) === removal) this.removals.delete(id);
      });
    this.removals.set(id, removal);
    return removal;
  }

  async create(name: string, partitions: number, replicationFactor: number, configs: Record<string, string>, validateOnly = false, internal = false): Promise<void> {
    validateTopicName(name);
    if (isInternalTopic(name) && !internal) {
      throw new SluiceError(ErrorCode.INVALID_TOPIC, `topic names starting with "${INTERNAL_TOPIC_PREFIX}" are reserved for the broker`);
    }
    if (!Number.isInteger(partitions) || partitions < 1 || partitions > this.partitionsMax) {
      throw new SluiceError(ErrorCode.INVALID_PARTITIONS, `partitions must be an integer from 1 to ${this.partitionsMax}, got ${partitions}`);
    }
    const live = this.store.liveBrokers().map((b) => b.brokerId);
    const factor = replicationFactor === -1 ? Math.min(3, live.length) : replicationFactor;
    const states = placeReplicas(name, partitions, 0, factor, live); // checks the factor first
    // The broker's --archive-enable applies to topics that do not say, where it can.
    if (this.archiveEnableDefault && !internal && configs['archive.enable'] === undefined && (configs['cleanup.policy'] ?? 'delete') === 'delete') configs = { ...configs, 'archive.enable': 'true' };
    const { replication, log } = splitReplicationConfig(configs);
    const logConfig = parseLogConfig(log);
    if (logConfig.archiveEnable && !this.archive) {
      throw new SluiceError(ErrorCode.INVALID_CONFIG, 'archive.enable=true: this broker has no archive store (start it with --archive-dir or --archive-s3-bucket)');
    }
    if (replication.minInsyncReplicas > factor) {
      throw new SluiceError(ErrorCode.INVALID_CONFIG, `min.insync.replicas ${replication.minInsyncReplicas} is larger than the replication factor ${factor}`);
    }
    if (this.live.has(name)) throw new SluiceError(ErrorCode.TOPIC_ALREADY_EXISTS, `topic ${name} already exists`);
    if (this.creating.has(name)) throw new SluiceError(ErrorCode.TOPIC_ALREADY_EXISTS, `topic ${name} is being created`);
    if (validateOnly) return;
    const record: TopicRecord = { name, id: randomUUID(), partitions, replicationFactor: factor, configs: { ...configs }, createdAtMs: Date.now() };
    const local = states.flatMap((s, p) => (s.replicas.includes(this.brokerId) ? [p] : []));
    const startedAtMs = Date.now();
    this.creating.add(name);
    try {
      try {
        // As leader from the start, a replica's epoch checkpoint is written here, off the event loop.
        await this.logs.prepareNewPartitions(name, local, record.id, logConfig, (p) => (states[p]!.leader === this.brokerId ? states[p]!.leaderEpoch : undefined));
      } catch (e) {
        throw this.storageError(`cannot create the ${local.length} local partition directories of topic ${name}`, e);
      }
      try {
        await this.store.createTopic(record, states);
      } catch (e) {
        this.logs.discardPrepared(local.map((p) => LogManager.dirName(name, p)), record.id);
        throw e;
      }
      try {
        this.syncTopic(record); // the store's event does the same; doing it here makes creation visible on return
      } catch (e) {
        // Stored, but not servable here: take it back rather than keep a topic that fails every start.
        this.log.error('created topic cannot be opened; deleting it again', { topic: name, error: e as Error });
        await this.store.deleteTopic(name).catch((error: unknown) => this.log.error('failed to delete a topic that could not be opened', { topic: name, error: error as Error }));
        await this.dropTopic(name, record.id);
        throw this.storageError(`cannot open the partitions of topic ${name}; the topic was not created`, e);
      }
    } finally {
      this.creating.delete(name);
    }
    this.log.info('topic created', { topic: name, topicId: record.id, partitions, replicationFactor: factor, localPartitions: local.length, tookMs: Date.now() - startedAtMs });
  }

  private storageError(what: string, e: unknown): SluiceError {
    if (e instanceof SluiceError) return e;
    return new SluiceError(ErrorCode.STORAGE_ERROR, `${what}: ${(e as Error).message}`);
  }

  /** Creates a broker-owned topic unless it exists. */
  async ensureInternal(name: string, partitions: number, configs: Record<string, string>, replicationFactor = -1): Promise<void> {
    if (this.live.has(name)) return;
    try {
      await this.create(name, partitions, replicationFactor, configs, false, true);
    } catch (e) {
      if (!(e instanceof SluiceError && e.code === ErrorCode.TOPIC_ALREADY_EXISTS)) throw e;
    }
  }

  /** Raises the partition count; new partitions start empty, placed like new topics. Never lowers it. */
  async addPartitions(name: string, count: number, validateOnly = false): Promise<void> {
    const t = this.live.get(name);
    if (!t) throw new SluiceError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `topic ${name} does not exist`);
    if (isInternalTopic(name)) throw new SluiceError(ErrorCode.INVALID_TOPIC, `${name} is internal`);
    if (!Number.isInteger(count) || count <= t.record.partitions || count > this.partitionsMax) {
      throw new SluiceError(ErrorCode.INVALID_PARTITIONS, `topic ${name} has ${t.record.partitions} partitions; the new count must be larger and at most ${this.partitionsMax}, got ${count}`);
    }
    const first = t.record.partitions;
    const states = placeReplicas(name, count - first, first, t.record.replicationFactor, this.store.liveBrokers().map((b) => b.brokerId));
    if (validateOnly) return;
    const record: TopicRecord = { ...t.record, partitions: count };
    // As in create(): the local new partitions exist and are open before the store has them.
    const local = states.flatMap((s, i) => (s.replicas.includes(this.brokerId) ? [first + i] : []));
    try {
      await this.logs.prepareNewPartitions(name, local, record.id, t.config, (p) => (states[p - first]!.leader === this.brokerId ? states[p - first]!.leaderEpoch : undefined));
    } catch (e) {
      throw this.storageError(`cannot create the ${local.length} new local partition directories of topic ${name}`, e);
    }
    try {
      await this.store.updateTopic(record, states);
    } catch (e) {
      this.logs.discardPrepared(local.map((p) => LogManager.dirName(name, p)), record.id);
      throw e;
    }
    this.syncTopic(record);
    this.log.info('partitions added', { topic: name, partitions: count });
  }

  /**
   * Sets (`set`) and removes (`del`, back to the default) config overrides of a live topic,
   * validated as at creation (INVALID_CONFIG); the others stay. Stored first, then applied
   * here, and on the other brokers by the store's topic event (syncTopic).
   */
  async alterConfigs(name: string, set: Readonly<Record<string, string>>, del: readonly string[], validateOnly = false): Promise<void> {
    const t = this.live.get(name);
    if (!t) throw new SluiceError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `topic ${name} does not exist`);
    if (isInternalTopic(name)) throw new SluiceError(ErrorCode.INVALID_TOPIC, `${name} is internal; its configs are the broker's`);
    for (const k of del) if (Object.hasOwn(set, k)) throw new SluiceError(ErrorCode.INVALID_CONFIG, `config ${k} is both set and deleted`);
    const configs: Record<string, string> = { ...t.record.configs, ...set };
    for (const k of del) delete configs[k];
    const { replication, log } = splitReplicationConfig(configs);
    const altered = parseLogConfig(log); // throws INVALID_CONFIG for an unknown key or a bad value
    // Tiered storage (SPEC §7.10): on only with a store here; never off again once on (the
    // archive holds the topic's old data, which local retention has already deleted).
    if (altered.archiveEnable && !this.archive) throw new SluiceError(ErrorCode.INVALID_CONFIG, 'archive.enable=true: this broker has no archive store (start it with --archive-dir or --archive-s3-bucket)');
    if (t.config.archiveEnable && !altered.archiveEnable) throw new SluiceError(ErrorCode.INVALID_CONFIG, 'archive.enable cannot be turned off once on: the archive holds the topic\'s older data');
    for (const k of del) if (!CONFIG_KEYS.has(k)) throw new SluiceError(ErrorCode.INVALID_CONFIG, `unknown config ${k}`);
    if (replication.minInsyncReplicas > t.record.replicationFactor) {
      throw new SluiceError(ErrorCode.INVALID_CONFIG, `min.insync.replicas ${replication.minInsyncReplicas} is larger than the replication factor ${t.record.replicationFactor}`);
    }
    if (validateOnly) return;
    const record: TopicRecord = { ...t.record, configs };
    await this.store.updateTopic(record);
    this.syncTopic(record);
    this.log.info('topic configs altered', { topic: name, set: Object.keys(set).join(','), deleted: del.join(',') });
  }

  async delete(name: string): Promise<void> {
    const t = this.live.get(name);
    if (!t) throw new SluiceError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `topic ${name} does not exist`);
    if (isInternalTopic(name)) throw new SluiceError(ErrorCode.INVALID_TOPIC, `${name} is internal and cannot be deleted`);
    const id = t.record.id;
    await this.store.deleteTopic(name);
    // The store's event usually dropped it already; either way, answer once its files are gone.
    await (this.removals.get(id) ?? this.dropTopic(name, id));
    // Its archive (SPEC §7.10) goes too, in the background: the answer does not wait for the store.
    if (this.archive && t.config.archiveEnable) void this.archive.deleteTopicArchive(name, id);
    this.log.info('topic deleted', { topic: name, topicId: id });
  }

  /** Topic names, internal ones only when asked for. */
  names(includeInternal = false): string[] {
    return [...this.live.keys()].filter((n) => includeInternal || !isInternalTopic(n)).sort();
  }

  get(name: string): LiveTopic | undefined {
    return this.live.get(name);
  }

  partitionCount(name: string): number | undefined {
    return this.live.get(name)?.record.partitions;
  }

  /** The local replica's log, if this broker holds one. */
  partition(topic: string, partition: number): PartitionLog | undefined {
    return this.live.get(topic)?.partitions.get(partition)?.log;
  }

  /** The local replica, if this broker holds one (whatever its role). */
  localPartition(topic: string, partition: number): Partition | undefined {
    return this.live.get(topic)?.partitions.get(partition);
  }

  /** The local partition that can serve `kind`, or the SluiceError the SPEC gives (partition.ts, servable()). */
  servable(kind: ServeKind, topic: string, partition: number, currentLeaderEpoch = NO_LEADER_EPOCH): Partition {
    return servable(kind, this.live.get(topic), topic, partition, currentLeaderEpoch);
  }

  /** The local partition if this broker leads it at currentLeaderEpoch (-1: any); NOT_LEADER (or an epoch error) otherwise. */
  leaderPartition(topic: string, partition: number, currentLeaderEpoch = NO_LEADER_EPOCH): Partition {
    const p = this.live.get(topic)?.partitions.get(partition);
    if (p === undefined) throw new SluiceError(ErrorCode.NOT_LEADER, `this broker holds no replica of ${topic}/${partition}`);
    p.checkLeader(currentLeaderEpoch);
    return p;
  }

  partitionState(topic: string, partition: number): PartitionState | undefined {
    return this.store.partitionState(topic, partition);
  }

  configStrings(name: string): Record<string, string> {
    const t = this.live.get(name);
    if (!t) throw new SluiceError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `topic ${name} does not exist`);
    return { ...topicConfigToStrings(t.config), ...replicationConfigToStrings(t.replication) };
  }
}

/** Every topic config key, replication ones included (§7.2). */
const CONFIG_KEYS = new Set([...LOG_CONFIG_KEYS, ...Object.keys(replicationConfigToStrings(splitReplicationConfig({}).replication))]);

function sameConfigs(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => Object.hasOwn(b, k) && a[k] === b[k]);
}
