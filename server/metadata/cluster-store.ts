/**
 * The metadata a cluster of brokers shares on top of MetadataStore: which brokers are
 * alive, who is the controller, and each partition's leadership. Implemented by the etcd
 * store (etcd-store.ts); the embedded store implements it for one broker that is always
 * alive, always the controller and always every partition's leader.
 *
 * Invariants every implementation keeps:
 * - A broker is live while its registration holds; a dead broker's registration expires
 *   within its TTL without anyone deleting it.
 * - controllerEpoch strictly increases across successive controllers, also across
 *   controller crashes, so it can fence requests from a deposed controller.
 * - A partition's partitionEpoch increases by exactly one on every write of its state, and
 *   a write only succeeds when the caller names the current epoch: a stale controller or
 *   leader can never overwrite newer state.
 * - Every stored partition state passed checkedPartitionState (partition-state.ts): the
 *   stores share those checks, and test/server/metadata/cluster-store.contract.ts holds
 *   both to this contract.
 * - Synchronous getters read a cache that the store keeps current; they can lag a write
 *   made elsewhere by the time a change notification takes, never a write made through
 *   this store (its promise resolves only once the cache has it).
 */
import type { ArchiveState } from './archive-state.ts';
import type { MetadataStore, TopicRecord } from './metadata-store.ts';

/** No leader (yet): every replica is offline, or the controller has not chosen one. */
export const NO_LEADER = -1;

export interface PartitionState {
  /** Broker id of the leader, or NO_LEADER. */
  leader: number;
  /** Bumped on every leader change; followers and clients fence on it. */
  leaderEpoch: number;
  /**
   * The broker epoch (see ClusterMetadataStore.brokerEpoch) of the leader's registration when
   * it was given leadership. A broker leads only while this names its current registration:
   * one restarted (or re-registered) since is a new incarnation and waits for the controller
   * to elect it again at a newer leaderEpoch. Absent means 0 (the embedded store's epoch).
   */
  leaderBrokerEpoch?: number;
  /** Assigned replicas, preferred leader first. */
  replicas: number[];
  /** In-sync replicas; always a subset of replicas, contains the leader when there is one. */
  isr: number[];
  /** Bumped on every write of this state (leader or ISR change); the CAS token. */
  partitionEpoch: number;
  /**
   * A reassignment in progress: the replica set the partition moves to. While set, replicas
   * is the union of old and target; the controller drops the rest once the target is in sync.
   */
  targetReplicas?: number[];
  /** Catch-up limit, bytes per second, for replicas joining through a reassignment; 0 = none. */
  throttleBytesPerSec?: number;
}

export interface BrokerRegistration {
  brokerId: number;
  host: string;
  port: number;
  startedAtMs: number;
}

export interface ControllerInfo {
  brokerId: number;
  controllerEpoch: number;
}

export interface ControllerCallbacks {
  /** This broker is now the controller; controllerEpoch is higher than any before it. */
  onElected(controllerEpoch: number): void;
  /** This broker is no longer the controller (lost its registration, or the campaign ended). */
  onResigned(): void;
}

export interface Campaign {
  /** Leaves the campaign; resigns first (onResigned is called) if this broker is controller. */
  cancel(): Promise<void>;
}

export type ClusterEvent =
  | { kind: 'topic'; name: string; record: TopicRecord | undefined }
  | { kind: 'partition'; topic: string; partition: number; state: PartitionState | undefined }
  | { kind: 'broker'; brokerId: number; registration: BrokerRegistration | undefined }
  | { kind: 'controller'; controller: ControllerInfo | undefined }
  /** This store's own registration was lost (e.g. the session expired) and made again. */
  | { kind: 'reregistered'; brokerId: number };

export interface PartitionWriteOptions {
  /**
   * Fence: the write only succeeds while this is still the current controllerEpoch, so a
   * deposed controller cannot write even a partition the new controller has not touched.
   */
  controllerEpoch?: number;
}

export interface ClusterMetadataStore extends MetadataStore {
  /**
   * As MetadataStore.createTopic, and writes each partition's initial state with it: no reader
   * sees the topic without all its partition states, nor a state of a topic not created (the
   * etcd store may write them in several steps, see etcd-store.ts). Without initialPartitions
   * every partition starts leaderless with no replicas (NO_LEADER, epochs 0), for the
   * controller to assign (the embedded store: led by its own broker). Given, its length must
   * equal topic.partitions and every state must be valid (partition-state.ts); else it throws
   * and creates nothing.
   */
  createTopic(topic: TopicRecord, initialPartitions?: readonly PartitionState[]): Promise<void>;

  /**
   * As MetadataStore.updateTopic; partitions the update adds get addedPartitions' states (in
   * order; one per added partition, each valid), or start as in createTopic. Readers see the
   * added partitions only with the record that counts them.
   */
  updateTopic(topic: TopicRecord, addedPartitions?: readonly PartitionState[]): Promise<void>;

  /** Registers this broker as live until close() or until the registration expires (ttlSeconds). */
  registerBroker(info: BrokerRegistration, ttlSeconds: number): Promise<void>;
  /** Live brokers by id (cache). */
  liveBrokers(): BrokerRegistration[];
  /**
   * The broker epoch of brokerId's live registration (cache), undefined when it is not live.
   * Every registration gets a new, higher one (etcd: the key's create revision), so a broker
   * that restarted or re-registered is told apart from its previous incarnation.
   */
  brokerEpoch(brokerId: number): number | undefined;
  /** The broker epoch of this store's own registration; undefined until registered (and while registering again). */
  ownBrokerEpoch(): number | undefined;
  /** The current controller (cache), if any. */
  controller(): ControllerInfo | undefined;
  /** Campaigns until cancel() or close(); requires registerBroker first (a dead broker is never controller). */
  campaignController(brokerId: number, callbacks: ControllerCallbacks): Campaign;

  /** The partition's state read from the authority (not the cache). */
  getPartitionState(topic: string, partition: number): Promise<PartitionState | undefined>;
  /** The partition's state from the cache. */
  partitionState(topic: string, partition: number): PartitionState | undefined;
  /**
   * Writes next (with partitionEpoch = expectedPartitionEpoch + 1, whatever next says) if the
   * stored partitionEpoch is expectedPartitionEpoch (and, with opts.controllerEpoch, that
   * controller is still current). Resolves false, writing nothing, otherwise or when the
   * partition does not exist.
   */
  compareAndSetPartitionState(
    topic: string,
    partition: number,
    expectedPartitionEpoch: number,
    next: Omit<PartitionState, 'partitionEpoch'>,
    opts?: PartitionWriteOptions,
  ): Promise<boolean>;

  /**
   * Reserves the next `count` producer ids of the cluster (SPEC §6.19) and resolves with the
   * first: the block is [first, first + count). Durable when it resolves; blocks never
   * overlap, also across restarts, other brokers and concurrent callers, and an id is never
   * handed out twice (a reserved block a broker did not use up is simply skipped).
   * STORAGE_ERROR when the store could not write (retry).
   */
  allocateProducerIdBlock(count: number): Promise<number>;

  /**
   * The partition's archive state (archive-state.ts) read from the authority, or undefined
   * when nothing was ever archived (or the topic, or this incarnation of it, does not exist).
   */
  getArchiveState(topic: string, topicId: string, partition: number): Promise<ArchiveState | undefined>;
  /**
   * Writes next if the stored archive state is still `expected` (undefined: none stored) and
   * the topic incarnation exists; resolves false, writing nothing, otherwise. Throws Error for
   * a transition that moves back (a caller's bug), STORAGE_ERROR when the store cannot write.
   */
  compareAndSetArchiveState(topic: string, topicId: string, partition: number, expected: ArchiveState | undefined, next: ArchiveState): Promise<boolean>;

  /** Calls listener for every change the cache applies; returns an unsubscribe function. */
  watch(listener: (event: ClusterEvent) => void): () => void;
}
