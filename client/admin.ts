/**
 * Admin client: topic lifecycle, cluster inspection and consumer-group administration.
 * Every call is one request (plus a metadata lookup where routing needs it); a per-topic or
 * per-group error in the answer is thrown as a SluiceError carrying the broker's error code,
 * naming the topic or group.
 *
 * Group requests go to the group's coordinator, found with FindCoordinator and cached per
 * group. A NOT_COORDINATOR answer (or a dead connection) drops the cache entry and the
 * request is sent once more to the coordinator asked anew; COORDINATOR_NOT_AVAILABLE (the
 * coordinator is still loading) is retried after a pause, at most COORDINATOR_RETRIES_MAX times.
 * Offsets committed by this client are committed "as no member" (memberId '', epoch -1),
 * which the coordinator accepts only while the group has no members (NON_EMPTY_GROUP).
 *
 * Delayed messages (listDelayed, cancelDelayed; SPEC §6.25, §6.26) are asked of each
 * partition's leader; a NOT_LEADER answer or a dead connection refreshes the metadata and
 * asks the new leader once more.
 */
import type { ArchiveCounters, ArchivePartitionStatus, DescribeArchiveRequest, DescribeArchiveResponse } from '../protocol/apis/describe-archive.ts';
import type { AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse } from '../protocol/apis/alter-partition-reassignments.ts';
import { ApiKey } from '../protocol/api-keys.ts';
import {
  EARLIEST_TIMESTAMP,
  LATEST_TIMESTAMP,
  type CreatePartitionsRequest,
  type CreatePartitionsResponse,
  type DeleteGroupsRequest,
  type DeleteGroupsResponse,
  type DescribedGroup,
  type DescribeGroupsRequest,
  type DescribeGroupsResponse,
  type FindCoordinatorRequest,
  type FindCoordinatorResponse,
  type ListedGroup,
  type ListGroupsResponse,
  type OffsetCommitRequest,
  type OffsetCommitResponse,
  type OffsetFetchRequest,
  type OffsetFetchResponse,
  type CreateTopicsRequest,
  type CreateTopicsResponse,
  type AlterTopicConfigsRequest,
  type AlterTopicConfigsResponse,
  type DeleteTopicsRequest,
  type DeleteTopicsResponse,
  type DescribeTopicsRequest,
  type DescribeTopicsResponse,
  type ListOffsetsRequest,
  type ListOffsetsResponse,
  type MetadataResponse,
  type TopicDescription,
  type ListDelayedRequest,
  type ListDelayedResponse,
  type CancelDelayedRequest,
  type CancelDelayedResponse,
  LIST_DELAYED_LIMIT_MAX,
  CANCEL_DELAYED_OFFSETS_MAX,
} from '../protocol/apis/index.ts';
import { ErrorCode, SluiceError } from '../protocol/errors.ts';
import { Cluster, type ClientSecurity } from './cluster.ts';
import { ConnectionError, type Connection } from './connection.ts';
import { formatDelayedId } from './record-accumulator.ts';

export interface AdminOptions extends ClientSecurity {
  bootstrap: string | string[];
  clientId?: string;
  requestTimeoutMs?: number;
}

export interface NewTopic {
  topic: string;
  partitions: number;
  /** Default -1: the broker's default, min(3, live brokers) (1 on a single broker). */
  replicationFactor?: number;
  /** Topic config overrides; values are strings on the wire, numbers are converted. */
  configs?: Record<string, string | number>;
}

/** 'earliest' (log start), 'latest' (log end: the next offset), or a timestamp in ms. */
export type OffsetSpec = 'earliest' | 'latest' | number;

/** One committed offset: the next offset the group reads in the partition; -1 when none is committed. */
export interface GroupOffset {
  topic: string;
  partition: number;
  offset: number;
  metadata: string | null;
  commitTimestampMs: number;
}

export interface OffsetToCommit {
  topic: string;
  partition: number;
  /** The next offset the group should read. */
  offset: number;
  metadata?: string | null;
}

/** Where resetOffsets moves a group: log start, log end, an offset (clamped to the log), or the first record at or after a time. */
export type ResetTarget = { earliest: true } | { latest: true } | { offset: number } | { datetime: Date };

export interface TopicPartitionOffsetResult {
  topic: string;
  partition: number;
  offset: number;
}

/** One partition's progress in a group. */
export interface PartitionLag {
  topic: string;
  partition: number;
  /** -1 when the group has committed nothing for the partition. */
  committedOffset: number;
  /** -1 when the topic no longer exists. */
  logEndOffset: number;
  /** logEndOffset - committedOffset; null when either is unknown. */
  lag: number | null;
  /** The member that owns the partition now, null when none does. */
  owner: string | null;
}

/** A delayed message's id: `topic/partition/offset` (RecordMetadata.delayedId) or its parts. */
export type DelayedRef = string | { topic: string; partition: number; offset: number };

/** One pending delayed message (SPEC §6.25). */
export interface DelayedMessage {
  /** `topic/partition/offset`, for cancelDelayed. */
  id: string;
  topic: string;
  partition: number;
  /** Its SCHEDULED wrapper's offset (the id within the partition). */
  offset: number;
  /** When the broker releases it (≥ requestedDeliverAtMs). */
  deliverAtMs: number;
  /** The time the producer asked for. */
  requestedDeliverAtMs: number;
  /** Records in it (they are released, or cancelled, together). */
  recordCount: number;
  sizeBytes: number;
}

/** Where the next page of listDelayed starts: strictly after this entry. */
export interface DelayedCursor {
  deliverAtMs: number;
  partition: number;
  offset: number;
}

export interface DelayedList {
  /** In release order: (deliverAtMs, partition, offset) ascending. */
  entries: DelayedMessage[];
  /** Pending delayed messages of the partitions asked, in all (not only this page). */
  pendingCount: number;
  /** Each partition's pending count and release frontier (SPEC §7.9; -1, -1 before any release). */
  partitions: Array<{ partition: number; pendingCount: number; frontierDeliverAtMs: number; frontierOffset: number }>;
  /** Pass as `after` for the next page; null when this page is the last. */
  next: DelayedCursor | null;
}

export interface CancelDelayedResult {
  id: string;
  topic: string;
  partition: number;
  offset: number;
  /** True when the CANCELLED marker is committed: the message will never be released. */
  cancelled: boolean;
  /** 0 when cancelled; DELAYED_MESSAGE_NOT_FOUND (52) when not pending; NOT_LEADER, REQUEST_TIMED_OUT, … */
  errorCode: number;
  errorMessage: string | null;
}

/** The parts of a delayed message id; throws RangeError when it is not `topic/partition/offset`. */
export function parseDelayedRef(ref: DelayedRef): { topic: string; partition: number; offset: number } {
  if (typeof ref === 'string') {
    const parts = ref.split('/');
    if (parts.length !== 3 || parts[0] === '' || !/^\d+$/.test(parts[1]!) || !/^\d+$/.test(parts[2]!)) {
      throw new RangeError(`${JSON.stringify(ref)} is not a delayed message id topic/partition/offset`);
    }
    return { topic: parts[0]!, partition: Number(parts[1]), offset: Number(parts[2]) };
  }
  if (ref === null || typeof ref !== 'object' || typeof ref.topic !== 'string' || !Number.isSafeInteger(ref.partition) || ref.partition < 0 || !Number.isSafeInteger(ref.offset) || ref.offset < 0) {
    throw new RangeError(`${JSON.stringify(ref)} is not a delayed message id { topic, partition, offset }`);
  }
  return { topic: ref.topic, partition: ref.partition, offset: ref.offset };
}

/**
 * How long a request to a partition's leader is retried while the leader answers NOT_LEADER
 * or cannot be reached (a failover: the cluster notices a dead leader within its session TTL).
 */
const LEADER_WAIT_MS_MAX = 20_000;
const LEADER_RETRY_BACKOFF_MS = 300;
/** FindCoordinator / group request attempts while the coordinator answers COORDINATOR_NOT_AVAILABLE. */
const COORDINATOR_RETRIES_MAX = 10;
const COORDINATOR_RETRY_BACKOFF_MS = 200;
/** memberId and memberEpoch of a commit made on behalf of no member (accepted only in an empty group). */
const NO_MEMBER_ID = '';
const NO_MEMBER_EPOCH = -1;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Admin.describeArchive's answer: each broker's store and counters, each partition's leader view. */
export interface ArchiveDescription {
  brokers: Array<{ brokerId: number; storeKind: string; storeDescription: string; counters: ArchiveCounters }>;
  /** topicId names the topic's folder in the archive store (`<topic>-<topicId>/`, SPEC §7.10). */
  topics: Array<{ topic: string; topicId: string; archiveEnabled: boolean; partitions: Array<ArchivePartitionStatus & { brokerId: number }> }>;
}

export class Admin {
  readonly cluster: Cluster;
  /** Coordinator address per group id, from FindCoordinator; dropped on NOT_COORDINATOR. */
  private readonly coordinators = new Map<string, { host: string; port: number }>();

  /**
   * `metadataOf`: a Cluster whose metadata cache to share (this admin then opens a lane of it,
   * with its own connections and clientId), so one client made of several parts (the group
   * runner) keeps one cache. Without it the admin has a Cluster of its own.
   */
  constructor(options: AdminOptions, metadataOf?: Cluster) {
    const connection = { clientId: options.clientId ?? 'sluice-admin', requestTimeoutMs: options.requestTimeoutMs ?? 30_000 };
    this.cluster = metadataOf ? metadataOf.lane(connection) : new Cluster({ bootstrap: options.bootstrap, ...connection, tls: options.tls, sasl: options.sasl });
  }

  /**
   * Creates topics; throws the first per-topic error (e.g. TOPIC_ALREADY_EXISTS). ifNotExists:
   * a topic that already exists is no error (it is left as it is, whatever its settings).
   */
  async createTopics(topics: readonly NewTopic[], opts: { validateOnly?: boolean; ifNotExists?: boolean } = {}): Promise<void> {
    const req: CreateTopicsRequest = {
      topics: topics.map((t) => ({
        topic: t.topic,
        partitions: t.partitions,
        replicationFactor: t.replicationFactor ?? -1,
        configs: Object.fromEntries(Object.entries(t.configs ?? {}).map(([k, v]) => [k, String(v)])),
      })),
      validateOnly: opts.validateOnly ?? false,
    };
    const res = await (await this.controller()).send<CreateTopicsResponse>(ApiKey.CREATE_TOPICS, req);
    for (const r of res.control.topics) {
      if (opts.ifNotExists && r.errorCode === ErrorCode.TOPIC_ALREADY_EXISTS) continue;
      if (r.errorCode !== ErrorCode.NONE) throw new SluiceError(r.errorCode as ErrorCode, errorDetail(`topic ${r.topic}`, r.errorMessage));
    }
  }

  /** Deletes topics and their data; throws the first per-topic error. */
  async deleteTopics(names: readonly string[]): Promise<void> {
    const req: DeleteTopicsRequest = { topics: [...names] };
    const res = await (await this.controller()).send<DeleteTopicsResponse>(ApiKey.DELETE_TOPICS, req);
    for (const r of res.control.topics) {
      if (r.errorCode !== ErrorCode.NONE) throw new SluiceError(r.errorCode as ErrorCode, `topic ${r.topic}`);
    }
  }

  /** Names of every topic, sorted. */
  async listTopics(): Promise<string[]> {
    const md = await this.cluster.refreshMetadata(null);
    return md.topics.map((t) => t.topic).sort();
  }

  /** Effective configs and per-partition log state; null describes every topic. */
  async describeTopics(names: readonly string[] | null = null): Promise<TopicDescription[]> {
    const req: DescribeTopicsRequest = { topics: names === null ? null : [...names] };
    const res = await (await this.cluster.anyConnection()).send<DescribeTopicsResponse>(ApiKey.DESCRIBE_TOPICS, req);
    for (const t of res.control.topics) {
      if (t.errorCode !== ErrorCode.NONE) throw new SluiceError(t.errorCode as ErrorCode, `topic ${t.topic}`);
    }
    return res.control.topics;
  }

  /**
   * Tiered-storage status (SPEC §6.27): asks every broker and keeps, per partition, the
   * leader's figures (a partition no broker leads right now: any replica's). topics null: every
   * non-internal topic. Throws the first per-topic error (UNKNOWN_TOPIC_OR_PARTITION).
   */
  async describeArchive(topics: readonly string[] | null = null): Promise<ArchiveDescription> {
    const md = await this.cluster.refreshMetadata(null);
    const conns = md.brokers.length > 0 ? await Promise.all(md.brokers.map((b) => this.cluster.connectionTo(b.host, b.port))) : [await this.cluster.anyConnection()];
    const req: DescribeArchiveRequest = { topics: topics === null ? null : [...topics] };
    const answers = await Promise.all(conns.map((c) => c.send<DescribeArchiveResponse>(ApiKey.DESCRIBE_ARCHIVE, req)));
    const byTopic = new Map<string, { topicId: string; archiveEnabled: boolean; partitions: Map<number, ArchivePartitionStatus & { brokerId: number }> }>();
    for (const a of answers) {
      for (const t of a.control.topics) {
        if (t.errorCode !== ErrorCode.NONE) throw new SluiceError(t.errorCode as ErrorCode, `topic ${t.topic}`);
        let entry = byTopic.get(t.topic);
        if (!entry) byTopic.set(t.topic, (entry = { topicId: t.topicId, archiveEnabled: t.archiveEnabled, partitions: new Map() }));
        for (const p of t.partitions) {
          const had = entry.partitions.get(p.partition);
          if (!had || (p.leader && !had.leader)) entry.partitions.set(p.partition, { ...p, brokerId: a.control.brokerId });
        }
      }
    }
    return {
      brokers: answers.map((a) => ({ brokerId: a.control.brokerId, storeKind: a.control.storeKind, storeDescription: a.control.storeDescription, counters: a.control.counters })).sort((x, y) => x.brokerId - y.brokerId),
      topics: [...byTopic.entries()]
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        .map(([topic, e]) => ({ topic, topicId: e.topicId, archiveEnabled: e.archiveEnabled, partitions: [...e.partitions.values()].sort((a, b) => a.partition - b.partition) })),
    };
  }

  /**
   * One topic described with each partition's figures (offsets, size, segments) from that
   * partition's leader: DescribeTopics reports the answering broker's own replica, which on
   * a follower may trail and on a broker without a replica is -1 (SPEC §6.5). A partition
   * whose leader does not answer keeps the figures of the first answer.
   */
  async describeTopicAtLeaders(name: string): Promise<TopicDescription> {
    const [base] = await this.describeTopics([name]);
    if (!base) throw new SluiceError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `topic ${name}`);
    const md = await this.cluster.topic(name, true);
    const leaders = new Map<number, Set<number>>();
    for (const p of md.partitions) if (p.leader >= 0) (leaders.get(p.leader) ?? leaders.set(p.leader, new Set()).get(p.leader)!).add(p.partition);
    const partitions = new Map(base.partitions.map((p) => [p.partition, p]));
    await Promise.all(
      [...leaders].map(async ([nodeId, led]) => {
        try {
          const conn = await this.cluster.connectionToNode(nodeId);
          const res = await conn.send<DescribeTopicsResponse>(ApiKey.DESCRIBE_TOPICS, { topics: [name] } satisfies DescribeTopicsRequest);
          for (const p of res.control.topics[0]?.partitions ?? []) if (led.has(p.partition)) partitions.set(p.partition, p);
        } catch {
          // The figures of the first answer stay.
        }
      }),
    );
    return { ...base, partitions: [...partitions.values()].sort((a, b) => a.partition - b.partition) };
  }

  /** Brokers, controller and topic partition metadata; topics null asks for all. */
  metadata(topics: readonly string[] | null = null): Promise<MetadataResponse> {
    return this.cluster.refreshMetadata(topics === null ? null : [...topics]);
  }

  /** The offset at `spec` in one partition, asked of its leader. */
  async listOffsets(topic: string, partition: number, spec: OffsetSpec): Promise<number> {
    const timestamp = spec === 'earliest' ? EARLIEST_TIMESTAMP : spec === 'latest' ? LATEST_TIMESTAMP : spec;
    if (!Number.isSafeInteger(timestamp) || timestamp < EARLIEST_TIMESTAMP) throw new RangeError(`bad offset spec ${String(spec)}`);
    const req: ListOffsetsRequest = { topics: [{ topic, partitions: [{ partition, timestamp }] }] };
    const conn = await this.cluster.leaderConnection(topic, partition);
    const res = await conn.send<ListOffsetsResponse>(ApiKey.LIST_OFFSETS, req);
    const r = res.control.topics.find((t) => t.topic === topic)?.partitions.find((p) => p.partition === partition);
    if (!r) throw new SluiceError(ErrorCode.UNKNOWN_SERVER_ERROR, `no result for ${topic}/${partition} in the list-offsets response`);
    if (r.errorCode !== ErrorCode.NONE) throw new SluiceError(r.errorCode as ErrorCode, `${topic}/${partition}`);
    return r.offset;
  }

  /**
   * Sets config overrides of a topic (`set`) and removes others (`remove`: back to their
   * default), leaving the rest (SPEC §6.30); INVALID_CONFIG for an unknown key or bad value.
   */
  async alterTopicConfigs(topic: string, set: Record<string, string | number>, remove: readonly string[] = [], opts: { validateOnly?: boolean } = {}): Promise<void> {
    const req: AlterTopicConfigsRequest = {
      topics: [{ topic, set: Object.fromEntries(Object.entries(set).map(([k, v]) => [k, String(v)])), delete: [...remove] }],
      validateOnly: opts.validateOnly ?? false,
    };
    const res = await (await this.controller()).send<AlterTopicConfigsResponse>(ApiKey.ALTER_TOPIC_CONFIGS, req);
    for (const r of res.control.topics) {
      if (r.errorCode !== ErrorCode.NONE) throw new SluiceError(r.errorCode as ErrorCode, errorDetail(`topic ${r.topic}`, r.errorMessage));
    }
  }

  /** Raises the topic's partition count to `count` (never lowers it: INVALID_PARTITIONS). */
  async createPartitions(topic: string, count: number, opts: { validateOnly?: boolean } = {}): Promise<void> {
    if (!Number.isSafeInteger(count) || count < 1) throw new RangeError(`partition count must be a positive integer, not ${count}`);
    const req: CreatePartitionsRequest = { topics: [{ topic, count }], validateOnly: opts.validateOnly ?? false };
    const res = await (await this.controller()).send<CreatePartitionsResponse>(ApiKey.CREATE_PARTITIONS, req);
    for (const r of res.control.topics) {
      if (r.errorCode !== ErrorCode.NONE) throw new SluiceError(r.errorCode as ErrorCode, errorDetail(`topic ${r.topic}`, r.errorMessage));
    }
    // The cached partition list is now short; later calls on this client must see the new one.
    await this.cluster.refreshMetadata([topic]).catch(() => {});
  }

  /**
   * Moves partitions to new replica sets (replicas null cancels a move in progress). The
   * controller adds the new replicas, lets them catch up at most throttleBytesPerSec each
   * (0: unlimited), and drops the old ones once the new set is in sync.
   */
  async reassignPartitions(moves: Array<{ topic: string; partition: number; replicas: number[] | null }>, throttleBytesPerSec = 0): Promise<void> {
    const req: AlterPartitionReassignmentsRequest = { partitions: moves.map((m) => ({ ...m, throttleBytesPerSec })) };
    const res = await (await this.controller()).send<AlterPartitionReassignmentsResponse>(ApiKey.ALTER_PARTITION_REASSIGNMENTS, req);
    const failed = res.control.partitions.filter((p) => p.errorCode !== ErrorCode.NONE);
    if (failed.length > 0) {
      const f = failed[0]!;
      throw new SluiceError(f.errorCode as ErrorCode, `${f.topic}/${f.partition}${f.errorMessage ? `: ${f.errorMessage}` : ''}${failed.length > 1 ? ` (and ${failed.length - 1} more)` : ''}`);
    }
  }

  // ---- consumer groups ----

  /** The broker coordinating the group (host, port, node id), asked anew. */
  async findCoordinator(groupId: string): Promise<{ nodeId: number; host: string; port: number }> {
    const req: FindCoordinatorRequest = { key: groupId, keyType: 'group' };
    for (let attempt = 1; ; attempt++) {
      const res = await (await this.cluster.anyConnection()).send<FindCoordinatorResponse>(ApiKey.FIND_COORDINATOR, req);
      const r = res.control;
      if (r.errorCode === ErrorCode.NONE) {
        this.coordinators.set(groupId, { host: r.host, port: r.port });
        return { nodeId: r.nodeId, host: r.host, port: r.port };
      }
      if (r.errorCode === ErrorCode.COORDINATOR_NOT_AVAILABLE && attempt < COORDINATOR_RETRIES_MAX) {
        await sleep(COORDINATOR_RETRY_BACKOFF_MS);
        continue;
      }
      throw new SluiceError(r.errorCode as ErrorCode, errorDetail(`group ${groupId}`, r.errorMessage));
    }
  }

  /** Every group of every broker, sorted by id. */
  async listGroups(): Promise<ListedGroup[]> {
    const md = await this.cluster.refreshMetadata([]);
    const conns = md.brokers.length > 0 ? await Promise.all(md.brokers.map((b) => this.cluster.connectionTo(b.host, b.port))) : [await this.cluster.anyConnection()];
    const answers = await Promise.all(conns.map((c) => c.send<ListGroupsResponse>(ApiKey.LIST_GROUPS, {})));
    const byId = new Map<string, ListedGroup>();
    for (const a of answers) for (const g of a.control.groups) byId.set(g.groupId, g);
    return [...byId.values()].sort((a, b) => (a.groupId < b.groupId ? -1 : a.groupId > b.groupId ? 1 : 0));
  }

  /** State, epochs, assignor and members of each group, in the order asked; throws GROUP_ID_NOT_FOUND and other per-group errors. */
  async describeGroups(groupIds: readonly string[]): Promise<DescribedGroup[]> {
    return Promise.all(
      groupIds.map(async (groupId) => {
        const req: DescribeGroupsRequest = { groupIds: [groupId] };
        const res = await this.groupRequest<DescribeGroupsResponse>(groupId, ApiKey.DESCRIBE_GROUPS, req, (r) => r.groups[0]?.errorCode ?? ErrorCode.NONE);
        const g = res.groups.find((x) => x.groupId === groupId);
        if (!g) throw new SluiceError(ErrorCode.UNKNOWN_SERVER_ERROR, `no result for group ${groupId} in the describe-groups response`);
        if (g.errorCode !== ErrorCode.NONE) throw new SluiceError(g.errorCode as ErrorCode, `group ${groupId}`);
        return g;
      }),
    );
  }

  /** Deletes empty groups and their committed offsets; throws the first per-group error (NON_EMPTY_GROUP, GROUP_ID_NOT_FOUND). */
  async deleteGroups(groupIds: readonly string[]): Promise<void> {
    const results = await Promise.allSettled(
      groupIds.map(async (groupId) => {
        const req: DeleteGroupsRequest = { groupIds: [groupId] };
        const res = await this.groupRequest<DeleteGroupsResponse>(groupId, ApiKey.DELETE_GROUPS, req, (r) => r.groups[0]?.errorCode ?? ErrorCode.NONE);
        const g = res.groups.find((x) => x.groupId === groupId);
        if (!g) throw new SluiceError(ErrorCode.UNKNOWN_SERVER_ERROR, `no result for group ${groupId} in the delete-groups response`);
        if (g.errorCode !== ErrorCode.NONE) throw new SluiceError(g.errorCode as ErrorCode, `group ${groupId}`);
      }),
    );
    for (const r of results) if (r.status === 'rejected') throw r.reason;
  }

  /**
   * The group's committed offsets, sorted by topic and partition. Without `topics`, every
   * partition the group has an offset for; with them, every partition of those topics
   * (offset -1 where nothing is committed).
   */
  async fetchOffsets(groupId: string, topics?: readonly string[]): Promise<GroupOffset[]> {
    let wanted: OffsetFetchRequest['topics'] = null;
    if (topics !== undefined) {
      wanted = [];
      for (const topic of topics) {
        const md = await this.cluster.topic(topic, true);
        wanted.push({ topic, partitions: md.partitions.map((p) => p.partition).sort((a, b) => a - b) });
      }
    }
    const req: OffsetFetchRequest = { groupId, memberId: null, memberEpoch: NO_MEMBER_EPOCH, topics: wanted };
    const res = await this.groupRequest<OffsetFetchResponse>(groupId, ApiKey.OFFSET_FETCH, req, (r) => r.errorCode);
    if (res.errorCode !== ErrorCode.NONE) throw new SluiceError(res.errorCode as ErrorCode, errorDetail(`group ${groupId}`, res.errorMessage));
    const out: GroupOffset[] = [];
    for (const t of res.topics) {
      for (const p of t.partitions) {
        if (p.errorCode !== ErrorCode.NONE) throw new SluiceError(p.errorCode as ErrorCode, `group ${groupId}, ${t.topic}/${p.partition}`);
        out.push({ topic: t.topic, partition: p.partition, offset: p.offset, metadata: p.metadata, commitTimestampMs: p.commitTimestampMs });
      }
    }
    return out.sort(byTopicPartition);
  }

  /**
   * Commits offsets on behalf of no member (memberId '', epoch -1). The coordinator accepts
   * that only while the group has no members: NON_EMPTY_GROUP otherwise.
   */
  async commitOffsets(groupId: string, offsets: readonly OffsetToCommit[]): Promise<void> {
    const topics = new Map<string, OffsetCommitRequest['topics'][number]>();
    for (const o of offsets) {
      if (!Number.isSafeInteger(o.offset) || o.offset < 0) throw new RangeError(`offset for ${o.topic}/${o.partition} must be a non-negative integer, not ${o.offset}`);
      let t = topics.get(o.topic);
      if (!t) topics.set(o.topic, (t = { topic: o.topic, partitions: [] }));
      t.partitions.push({ partition: o.partition, offset: o.offset, metadata: o.metadata ?? null });
    }
    const req: OffsetCommitRequest = { groupId, memberId: NO_MEMBER_ID, memberEpoch: NO_MEMBER_EPOCH, topics: [...topics.values()] };
    const res = await this.groupRequest<OffsetCommitResponse>(groupId, ApiKey.OFFSET_COMMIT, req, (r) => r.errorCode);
    if (res.errorCode === ErrorCode.NON_EMPTY_GROUP) {
      throw new SluiceError(ErrorCode.NON_EMPTY_GROUP, `group ${groupId} has active members; its offsets can only be changed while it has none (stop its consumers first)`);
    }
    if (res.errorCode !== ErrorCode.NONE) throw new SluiceError(res.errorCode as ErrorCode, errorDetail(`group ${groupId}`, res.errorMessage));
    for (const t of res.topics) {
      for (const p of t.partitions) {
        if (p.errorCode !== ErrorCode.NONE) throw new SluiceError(p.errorCode as ErrorCode, `group ${groupId}, ${t.topic}/${p.partition}`);
      }
    }
  }

  /**
   * Moves the group's committed offsets for every partition of `topic` and returns them.
   * { offset } is clamped to each partition's [log start, log end], as Kafka's tool does;
   * { datetime } is the first offset whose record timestamp is at or after it (the log end
   * when there is none). The group must have no members (NON_EMPTY_GROUP).
   */
  async resetOffsets(groupId: string, topic: string, to: ResetTarget): Promise<TopicPartitionOffsetResult[]> {
    const md = await this.cluster.topic(topic, true);
    const tps = md.partitions.map((p) => ({ topic, partition: p.partition })).sort(byTopicPartition);
    let offsets: number[];
    if ('earliest' in to) {
      offsets = await this.offsetsAt(tps, EARLIEST_TIMESTAMP);
    } else if ('latest' in to) {
      offsets = await this.offsetsAt(tps, LATEST_TIMESTAMP);
    } else if ('offset' in to) {
      if (!Number.isSafeInteger(to.offset) || to.offset < 0) throw new RangeError(`offset must be a non-negative integer, not ${to.offset}`);
      const [starts, ends] = await Promise.all([this.offsetsAt(tps, EARLIEST_TIMESTAMP), this.offsetsAt(tps, LATEST_TIMESTAMP)]);
      offsets = tps.map((_, i) => Math.min(Math.max(to.offset, starts[i]!), ends[i]!));
    } else {
      const ms = to.datetime.getTime();
      if (!Number.isSafeInteger(ms) || ms < 0) throw new RangeError(`datetime ${String(to.datetime)} is not a valid time after 1970`);
      offsets = await this.offsetsAt(tps, ms);
    }
    const result = tps.map((tp, i) => ({ ...tp, offset: offsets[i]! }));
    await this.commitOffsets(groupId, result);
    return result;
  }

  /**
   * Per partition of every topic the group has committed offsets for or its members
   * subscribe to: committed offset, log end offset, lag and owning member. `group` may be
   * passed when the caller has just described it.
   */
  async groupLag(groupId: string, group?: DescribedGroup): Promise<PartitionLag[]> {
    const g = group ?? (await this.describeGroups([groupId]))[0]!;
    const committed = await this.fetchOffsets(groupId);
    const owners = new Map<string, string>();
    const topics = new Set<string>(committed.map((c) => c.topic));
    for (const m of g.members) {
      for (const t of m.subscribedTopicNames) topics.add(t);
      for (const a of m.assignment) {
        topics.add(a.topic);
        for (const p of a.partitions) owners.set(`${a.topic}\u0000${p}`, m.memberId);
      }
    }
    const committedBy = new Map(committed.map((c) => [`${c.topic}\u0000${c.partition}`, c.offset]));
    const tps: Array<{ topic: string; partition: number }> = [];
    const gone: Array<{ topic: string; partition: number }> = [];
    if (topics.size > 0) {
      const md = await this.cluster.refreshMetadata([...topics]);
      const known = new Set<string>();
      for (const t of md.topics) {
        if (t.errorCode !== ErrorCode.NONE) continue;
        known.add(t.topic);
        for (const p of t.partitions) tps.push({ topic: t.topic, partition: p.partition });
      }
      for (const c of committed) if (!known.has(c.topic)) gone.push({ topic: c.topic, partition: c.partition });
    }
    const ends = await this.offsetsAt(tps, LATEST_TIMESTAMP);
    const rows: PartitionLag[] = [];
    const row = (tp: { topic: string; partition: number }, logEndOffset: number): PartitionLag => {
      const key = `${tp.topic}\u0000${tp.partition}`;
      const committedOffset = committedBy.get(key) ?? -1;
      const lag = committedOffset >= 0 && logEndOffset >= 0 ? Math.max(0, logEndOffset - committedOffset) : null;
      return { topic: tp.topic, partition: tp.partition, committedOffset, logEndOffset, lag, owner: owners.get(key) ?? null };
    };
    tps.forEach((tp, i) => rows.push(row(tp, ends[i]!)));
    for (const tp of gone) rows.push(row(tp, -1));
    return rows.sort(byTopicPartition);
  }

  /**
   * The pending delayed messages of a topic's partition, or of all its partitions (partition
   * omitted or null), in release order, at most `limit` (default 100, at most 1000) per call.
   * Page with `after: previous.next`.
   */
  async listDelayed(topic: string, partition?: number | null, opts: { limit?: number; after?: DelayedCursor | null } = {}): Promise<DelayedList> {
    const limit = opts.limit ?? 100;
    if (!Number.isInteger(limit) || limit < 1 || limit > LIST_DELAYED_LIMIT_MAX) throw new RangeError(`limit must be 1 … ${LIST_DELAYED_LIMIT_MAX}, not ${limit}`);
    const t = await this.cluster.topic(topic);
    let partitions: number[];
    if (partition === undefined || partition === null) {
      partitions = t.partitions.map((p) => p.partition).sort((a, b) => a - b);
    } else {
      if (!t.partitions.some((p) => p.partition === partition)) throw new SluiceError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `${topic}/${partition}: the topic has ${t.partitions.length} partitions`);
      partitions = [partition];
    }
    const after = opts.after ?? null;
    const answers = await Promise.all(
      partitions.map((p) => {
        const req: ListDelayedRequest = { topic, partition: p, limit };
        if (after !== null) {
          // The global order is (deliverAtMs, partition, offset): at the cursor's time, the
          // partitions before the cursor's are done, the ones after it start at that time.
          if (p === after.partition) [req.afterDeliverAtMs, req.afterOffset] = [after.deliverAtMs, after.offset];
          else if (p < after.partition) [req.afterDeliverAtMs, req.afterOffset] = [after.deliverAtMs, Number.MAX_SAFE_INTEGER];
          else [req.afterDeliverAtMs, req.afterOffset] = [after.deliverAtMs - 1, Number.MAX_SAFE_INTEGER];
        }
        return this.leaderRequest<ListDelayedResponse>(topic, p, ApiKey.LIST_DELAYED, req, (r) => r.errorCode, true).then((res) => {
          if (res.errorCode !== ErrorCode.NONE) throw new SluiceError(res.errorCode as ErrorCode, `${topic}/${p}${res.errorMessage ? `: ${res.errorMessage}` : ''}`);
          return { p, res };
        });
      }),
    );
    const all: DelayedMessage[] = [];
    let pendingCount = 0;
    let more = false;
    for (const { p, res } of answers) {
      pendingCount += res.pendingCount;
      if (res.entries.length >= limit && res.pendingCount > res.entries.length) more = true;
      for (const e of res.entries) {
        all.push({ id: formatDelayedId(topic, p, e.offset), topic, partition: p, offset: e.offset, deliverAtMs: e.deliverAtMs, requestedDeliverAtMs: e.requestedDeliverAtMs, recordCount: e.recordCount, sizeBytes: e.sizeBytes });
      }
    }
    all.sort((a, b) => a.deliverAtMs - b.deliverAtMs || a.partition - b.partition || a.offset - b.offset);
    const entries = all.slice(0, limit);
    const last = entries[entries.length - 1];
    // More pages: entries were left out here, or a partition had more than it sent.
    const next = last !== undefined && (all.length > limit || more) ? { deliverAtMs: last.deliverAtMs, partition: last.partition, offset: last.offset } : null;
    return {
      entries,
      pendingCount,
      partitions: answers.map(({ p, res }) => ({ partition: p, pendingCount: res.pendingCount, frontierDeliverAtMs: res.frontierDeliverAtMs, frontierOffset: res.frontierOffset })),
      next,
    };
  }

  /**
   * Cancels pending delayed messages before they are released (SPEC §6.26). One id: resolves
   * once the cancel is committed, throws SluiceError otherwise (DELAYED_MESSAGE_NOT_FOUND when
   * it is not pending: already released, cancelled, or never scheduled). Several ids: one
   * result per id, in order, and throws only when a request could not be made at all.
   */
  cancelDelayed(ref: DelayedRef): Promise<void>;
  cancelDelayed(refs: readonly DelayedRef[]): Promise<CancelDelayedResult[]>;
  async cancelDelayed(refs: DelayedRef | readonly DelayedRef[]): Promise<void | CancelDelayedResult[]> {
    const single = !Array.isArray(refs);
    const list = (single ? [refs as DelayedRef] : (refs as readonly DelayedRef[])).map(parseDelayedRef);
    if (list.length > CANCEL_DELAYED_OFFSETS_MAX) throw new RangeError(`at most ${CANCEL_DELAYED_OFFSETS_MAX} ids per call, not ${list.length}`);
    const results: CancelDelayedResult[] = list.map((r) => ({ id: formatDelayedId(r.topic, r.partition, r.offset), ...r, cancelled: false, errorCode: -1, errorMessage: null }));
    // One request per (topic, partition): each goes to that partition's leader.
    const groups = new Map<string, number[]>();
    results.forEach((r, i) => {
      const k = `${r.topic}\u0000${r.partition}`;
      const g = groups.get(k);
      if (g) g.push(i);
      else groups.set(k, [i]);
    });
    await Promise.all(
      [...groups.values()].map(async (indexes) => {
        const { topic, partition } = results[indexes[0]!]!;
        const req: CancelDelayedRequest = { topic, partitions: [{ partition, offsets: indexes.map((i) => results[i]!.offset) }] };
        const firstCode = (res: CancelDelayedResponse): number => res.topics[0]?.partitions[0]?.results[0]?.errorCode ?? ErrorCode.NONE;
        let res: CancelDelayedResponse;
        try {
          res = await this.leaderRequest<CancelDelayedResponse>(topic, partition, ApiKey.CANCEL_DELAYED, req, firstCode, false);
        } catch (e) {
          // The partition's outcome is unknown (no leader in time, the connection lost with the
          // request out): each id says so; ListDelayed tells what happened.
          if (!(e instanceof SluiceError) && !(e instanceof ConnectionError)) throw e;
          const errorCode = e instanceof SluiceError ? e.code : ErrorCode.REQUEST_TIMED_OUT;
          for (const i of indexes) Object.assign(results[i]!, { errorCode, errorMessage: e.message });
          return;
        }
        const got = res.topics.find((t) => t.topic === topic)?.partitions.find((p) => p.partition === partition)?.results ?? [];
        indexes.forEach((i, k) => {
          const r = got[k];
          const out = results[i]!;
          if (r === undefined || r.offset !== out.offset) Object.assign(out, { errorCode: ErrorCode.UNKNOWN_SERVER_ERROR, errorMessage: `no result for ${out.id} in the cancel-delayed response` });
          else Object.assign(out, { cancelled: r.errorCode === ErrorCode.NONE, errorCode: r.errorCode, errorMessage: r.errorMessage ?? null });
        });
      }),
    );
    if (!single) return results;
    const r = results[0]!;
    if (!r.cancelled) throw new SluiceError(r.errorCode as ErrorCode, `delayed message ${r.id}${r.errorMessage ? `: ${r.errorMessage}` : ''}`);
  }

  async close(): Promise<void> {
    this.cluster.close();
  }

  /**
   * Sends req to the partition's leader; when the answer's code (errorCodeOf) is NOT_LEADER
   * or UNKNOWN_TOPIC_OR_PARTITION, or the connection fails, refreshes the topic's metadata
   * and sends it again to the leader it names now (a leader change, a stale cache),
   * LEADER_RETRY_BACKOFF_MS apart, for up to LEADER_WAIT_MS_MAX (a failover takes a moment).
   * A connection lost after the request went out is retried only when `resendSafe` (a read);
   * otherwise thrown: the request may have taken effect.
   */
  private async leaderRequest<T>(topic: string, partition: number, apiKey: number, req: unknown, errorCodeOf: (res: T) => number, resendSafe: boolean): Promise<T> {
    const deadlineMs = Date.now() + LEADER_WAIT_MS_MAX;
    for (let attempt = 1; ; attempt++) {
      const last = Date.now() + LEADER_RETRY_BACKOFF_MS >= deadlineMs;
      let sent = false;
      try {
        if (attempt > 1) {
          await sleep(LEADER_RETRY_BACKOFF_MS);
          await this.cluster.topic(topic, true);
        }
        const conn = await this.cluster.leaderConnection(topic, partition);
        sent = true;
        const res = (await conn.send<T>(apiKey, req)).control;
        const code = errorCodeOf(res);
        if (!last && (code === ErrorCode.NOT_LEADER || code === ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)) continue;
        return res;
      } catch (e) {
        // Not sent (no leader, connect refused) or refused before it was read: safe to resend.
        const unsent = ((!sent || resendSafe) && e instanceof ConnectionError) || (e instanceof SluiceError && e.code === ErrorCode.NOT_LEADER);
        if (last || !unsent) throw e;
      }
    }
  }

  /**
   * Sends one group request to the group's coordinator. On NOT_COORDINATOR (as the answer's
   * error code, or as a request-level error) or a dead connection, asks FindCoordinator
   * again and resends once; on COORDINATOR_NOT_AVAILABLE, resends after a pause, bounded.
   * Other error codes are the caller's to interpret.
   */
  private async groupRequest<T>(groupId: string, apiKey: number, req: unknown, errorCodeOf: (res: T) => number): Promise<T> {
    let refreshed = false;
    for (let attempt = 1; ; attempt++) {
      let code: number;
      let res: T | null = null;
      try {
        const known = this.coordinators.get(groupId) ?? (await this.findCoordinator(groupId));
        const conn = await this.cluster.connectionTo(known.host, known.port);
        res = (await conn.send<T>(apiKey, req)).control;
        code = errorCodeOf(res);
      } catch (e) {
        if (e instanceof ConnectionError) code = ErrorCode.NOT_COORDINATOR;
        else if (e instanceof SluiceError && (e.code === ErrorCode.NOT_COORDINATOR || e.code === ErrorCode.COORDINATOR_NOT_AVAILABLE)) code = e.code;
        else throw e;
        if (refreshed && code === ErrorCode.NOT_COORDINATOR) throw e;
        if (code === ErrorCode.COORDINATOR_NOT_AVAILABLE && attempt >= COORDINATOR_RETRIES_MAX) throw e;
      }
      if (code === ErrorCode.NOT_COORDINATOR && !refreshed) {
        refreshed = true;
        this.coordinators.delete(groupId);
        continue;
      }
      if (code === ErrorCode.COORDINATOR_NOT_AVAILABLE && attempt < COORDINATOR_RETRIES_MAX) {
        await sleep(COORDINATOR_RETRY_BACKOFF_MS);
        continue;
      }
      if (res === null) throw new SluiceError(code as ErrorCode, `group ${groupId}`);
      return res;
    }
  }

  /** ListOffsets for many partitions at one timestamp, one request per leader; results in input order. */
  private async offsetsAt(tps: ReadonlyArray<{ topic: string; partition: number }>, timestamp: number): Promise<number[]> {
    for (const topic of new Set(tps.map((tp) => tp.topic))) await this.cluster.topic(topic);
    // A partition without a leader in the cached metadata (an election was under way when it
    // was fetched) is looked up afresh once: the cache would otherwise answer "no leader" until
    // it ages out, long after the cluster elected one.
    const leaderless = new Set(tps.filter((tp) => this.cluster.leaderOf(tp.topic, tp.partition) < 0).map((tp) => tp.topic));
    for (const topic of leaderless) await this.cluster.topic(topic, true);
    const byLeader = new Map<number, number[]>();
    tps.forEach((tp, i) => {
      const leader = this.cluster.leaderOf(tp.topic, tp.partition);
      if (leader < 0) throw new SluiceError(ErrorCode.NOT_LEADER, `${tp.topic}/${tp.partition} has no leader`);
      const list = byLeader.get(leader);
      if (list) list.push(i);
      else byLeader.set(leader, [i]);
    });
    const out = new Array<number>(tps.length);
    await Promise.all(
      [...byLeader].map(async ([leader, indexes]) => {
        const topics = new Map<string, ListOffsetsRequest['topics'][number]>();
        for (const i of indexes) {
          const tp = tps[i]!;
          let t = topics.get(tp.topic);
          if (!t) topics.set(tp.topic, (t = { topic: tp.topic, partitions: [] }));
          t.partitions.push({ partition: tp.partition, timestamp });
        }
        const req: ListOffsetsRequest = { topics: [...topics.values()] };
        const res = await (await this.cluster.connectionToNode(leader)).send<ListOffsetsResponse>(ApiKey.LIST_OFFSETS, req);
        for (const i of indexes) {
          const tp = tps[i]!;
          const r = res.control.topics.find((t) => t.topic === tp.topic)?.partitions.find((p) => p.partition === tp.partition);
          if (!r) throw new SluiceError(ErrorCode.UNKNOWN_SERVER_ERROR, `no result for ${tp.topic}/${tp.partition} in the list-offsets response`);
          if (r.errorCode !== ErrorCode.NONE) {
            if (r.errorCode === ErrorCode.NOT_LEADER) this.cluster.metadataIsStale();
            throw new SluiceError(r.errorCode as ErrorCode, `${tp.topic}/${tp.partition}`);
          }
          out[i] = r.offset;
        }
      }),
    );
    return out;
  }

  /** The controller (topic changes go there); any broker when metadata does not name one. */
  private async controller(): Promise<Connection> {
    const md = await this.cluster.refreshMetadata([]);
    if (md.controllerId >= 0 && md.brokers.some((b) => b.nodeId === md.controllerId)) return this.cluster.connectionToNode(md.controllerId);
    return this.cluster.anyConnection();
  }
}

function byTopicPartition(a: { topic: string; partition: number }, b: { topic: string; partition: number }): number {
  return a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.partition - b.partition;
}

/**
 * "topic events" + the broker's message, without saying anything twice: the broker's message
 * often starts with the error name (which SluiceError prefixes again) and names the topic or
 * group itself ("TOPIC_ALREADY_EXISTS: topic events already exists").
 */
export function errorDetail(subject: string, brokerMessage: string | null | undefined): string {
  const m = (brokerMessage ?? '').replace(/^[A-Z][A-Z0-9_]+: /, '').trim();
  if (m === '') return subject;
  return m.includes(subject) ? m : `${subject}: ${m}`;
}
