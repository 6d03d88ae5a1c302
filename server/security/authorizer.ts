/**
 * Authorization (SPEC §2.7): which ACL operation each API needs on which resources, decided
 * for the authenticated user against the ACLs in force. On exactly when the broker requires
 * authentication (--authentication sasl): then everything not allowed by an ACL is denied,
 * except for super users (--super-users, and the inter-broker user), who may do everything.
 *
 * A denied request is refused as a whole with request-level AUTHORIZATION_FAILED naming the
 * first resource denied, before any of it is acted on; Metadata instead answers with what the
 * user may see (named topics it may not describe come back with AUTHORIZATION_FAILED, and a
 * request for all topics lists only those it may describe).
 *
 * Invariants:
 * - the ACLs are read from the store every aclRefreshIntervalMs, off the request path; a
 *   request is decided synchronously against the last set read, so an ACL change counts
 *   within about one interval; a failed read keeps the last good set (and is logged);
 * - until the first read succeeds nothing but super users' requests is allowed;
 * - an API this table does not know (one added later) needs `alter` on the cluster.
 */
import { ApiKey } from '../../protocol/api-keys.ts';
import type {
  AddOffsetsToTxnRequest, AddPartitionsToTxnRequest, CancelDelayedRequest, ConsumerGroupHeartbeatRequest, CreatePartitionsRequest, CreateTopicsRequest, DeleteGroupsRequest, DeleteTopicsRequest, DescribeGroupsRequest,
  DescribeTopicsRequest, FetchRequest, FindCoordinatorRequest, ListDelayedRequest, ListOffsetsRequest, MetadataRequest, MetadataResponse, OffsetCommitRequest, OffsetFetchRequest, OffsetForLeaderEpochRequest, ProduceRequest, TxnOffsetCommitRequest,
} from '../../protocol/apis/index.ts';
import type { DescribeArchiveRequest } from '../../protocol/apis/describe-archive.ts';
import type { AlterTopicConfigsRequest } from '../../protocol/apis/alter-topic-configs.ts';
import { ErrorCode } from '../../protocol/errors.ts';
import type { Logger } from '../logger.ts';
import { AclSet, CLUSTER_NAME, type Operation, type ResourceType } from './acl.ts';
import type { AclStore } from './acl-store.ts';

type Need = readonly [ResourceType, string, Operation];
/** What one request needs: resources with operations, or "some topic write" (producer ids, transactions). */
type Needs = { all: Need[] } | { someTopicWrite: true };

const cluster = (op: Operation): Needs => ({ all: [['cluster', CLUSTER_NAME, op]] });
const topics = (names: Iterable<string>, op: Operation): Need[] => [...new Set(names)].map((n) => ['topic', n, op] as const);

/**
 * Every API the table below maps on purpose (the rest fall to `alter` on the cluster). A test
 * checks that it covers api-keys.ts, so an API added later gets a deliberate entry.
 */
export const AUTHORIZED_APIS: ReadonlySet<number> = new Set([
  ApiKey.METADATA, ApiKey.CREATE_TOPICS, ApiKey.DELETE_TOPICS, ApiKey.DESCRIBE_TOPICS, ApiKey.CREATE_PARTITIONS, ApiKey.PRODUCE, ApiKey.FETCH, ApiKey.LIST_OFFSETS,
  ApiKey.OFFSET_FOR_LEADER_EPOCH, ApiKey.FIND_COORDINATOR, ApiKey.CONSUMER_GROUP_HEARTBEAT, ApiKey.OFFSET_COMMIT, ApiKey.OFFSET_FETCH, ApiKey.LIST_GROUPS, ApiKey.DESCRIBE_GROUPS,
  ApiKey.DELETE_GROUPS, ApiKey.ALTER_PARTITION_REASSIGNMENTS, ApiKey.INIT_PRODUCER_ID, ApiKey.ADD_PARTITIONS_TO_TXN, ApiKey.ADD_OFFSETS_TO_TXN, ApiKey.END_TXN,
  ApiKey.WRITE_TXN_MARKERS, ApiKey.TXN_OFFSET_COMMIT, ApiKey.LIST_DELAYED, ApiKey.CANCEL_DELAYED, ApiKey.DESCRIBE_ARCHIVE, ApiKey.ALTER_TOPIC_CONFIGS,
]);

/** The table of SPEC §2.7. */
export function needsOf(apiKey: number, control: unknown): Needs {
  switch (apiKey) {
    // Never refused as a whole: the response is filtered instead (filterMetadata).
    case ApiKey.METADATA: return { all: [] };
    case ApiKey.CREATE_TOPICS: return { all: topics((control as CreateTopicsRequest).topics.map((t) => t.topic), 'create') };
    case ApiKey.DELETE_TOPICS: return { all: topics((control as DeleteTopicsRequest).topics, 'delete') };
    case ApiKey.DESCRIBE_TOPICS: {
      const r = control as DescribeTopicsRequest;
      return r.topics === null ? cluster('describe') : { all: topics(r.topics, 'describe') };
    }
    case ApiKey.CREATE_PARTITIONS: return { all: topics((control as CreatePartitionsRequest).topics.map((t) => t.topic), 'alter') };
    case ApiKey.PRODUCE: return { all: topics((control as ProduceRequest).topics.map((t) => t.topic), 'write') };
    case ApiKey.FETCH: {
      const r = control as FetchRequest;
      // A follower's fetch (replicaId >= 0) reads beyond the high watermark: brokers only.
      return (r.replicaId ?? -1) >= 0 ? cluster('alter') : { all: topics(r.topics.map((t) => t.topic), 'read') };
    }
    case ApiKey.LIST_OFFSETS: return { all: topics((control as ListOffsetsRequest).topics.map((t) => t.topic), 'describe') };
    case ApiKey.OFFSET_FOR_LEADER_EPOCH: {
      const r = control as OffsetForLeaderEpochRequest;
      return r.replicaId >= 0 ? cluster('alter') : { all: topics(r.topics.map((t) => t.topic), 'describe') };
    }
    case ApiKey.FIND_COORDINATOR: {
      const r = control as FindCoordinatorRequest;
      return r.keyType === 'group' ? { all: [['group', r.key, 'describe']] } : { someTopicWrite: true };
    }
    case ApiKey.CONSUMER_GROUP_HEARTBEAT: return { all: [['group', (control as ConsumerGroupHeartbeatRequest).groupId, 'read']] };
    case ApiKey.OFFSET_COMMIT: {
      const r = control as OffsetCommitRequest;
      return { all: [['group', r.groupId, 'read'], ...topics(r.topics.map((t) => t.topic), 'read')] };
    }
    case ApiKey.OFFSET_FETCH: {
      const r = control as OffsetFetchRequest;
      return { all: [['group', r.groupId, 'describe'], ...topics((r.topics ?? []).map((t) => t.topic), 'describe')] };
    }
    case ApiKey.LIST_GROUPS: return cluster('describe');
    case ApiKey.DESCRIBE_GROUPS: return { all: (control as DescribeGroupsRequest).groupIds.map((g) => ['group', g, 'describe'] as const) };
    case ApiKey.DELETE_GROUPS: return { all: (control as DeleteGroupsRequest).groupIds.map((g) => ['group', g, 'delete'] as const) };
    case ApiKey.ALTER_PARTITION_REASSIGNMENTS: return cluster('alter');
    case ApiKey.INIT_PRODUCER_ID: return { someTopicWrite: true };
    case ApiKey.ADD_PARTITIONS_TO_TXN: return { all: topics((control as AddPartitionsToTxnRequest).topics.map((t) => t.topic), 'write') };
    case ApiKey.ADD_OFFSETS_TO_TXN: return { all: [['group', (control as AddOffsetsToTxnRequest).groupId, 'read']] };
    case ApiKey.END_TXN: return { someTopicWrite: true };
    case ApiKey.WRITE_TXN_MARKERS: return cluster('alter');
    case ApiKey.TXN_OFFSET_COMMIT: {
      const r = control as TxnOffsetCommitRequest;
      return { all: [['group', r.groupId, 'read'], ...topics(r.topics.map((t) => t.topic), 'read')] };
    }
    case ApiKey.LIST_DELAYED: return { all: [['topic', (control as ListDelayedRequest).topic, 'describe']] };
    case ApiKey.CANCEL_DELAYED: return { all: [['topic', (control as CancelDelayedRequest).topic, 'write']] };
    case ApiKey.ALTER_TOPIC_CONFIGS: return { all: topics((control as AlterTopicConfigsRequest).topics.map((t) => t.topic), 'alter') };
    // Like DescribeTopics: every topic needs describe on the cluster, named topics describe on each.
    case ApiKey.DESCRIBE_ARCHIVE: {
      const r = control as DescribeArchiveRequest;
      return r.topics === null ? cluster('describe') : { all: topics(r.topics, 'describe') };
    }
    default: return cluster('alter');
  }
}

export interface AuthorizerSettings {
  store: AclStore;
  superUsers: readonly string[];
  refreshIntervalMs: number;
  log: Logger;
}

export class Authorizer {
  private acls: AclSet | null = null;
  private readonly superUsers: ReadonlySet<string>;
  private timer: NodeJS.Timeout | null = null;
  private refreshing = false;
  private lastInvalid = 0;

  constructor(private readonly s: AuthorizerSettings) {
    this.superUsers = new Set(s.superUsers);
  }

  async start(): Promise<void> {
    await this.refresh();
    this.timer = setInterval(() => void this.refresh(), this.s.refreshIntervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Reads the ACLs; keeps the last good set when the store cannot be read. */
  async refresh(): Promise<void> {
    if (this.refreshing) return;
    this.refreshing = true;
    try {
      const { acls, invalid } = await this.s.store.list();
      if (invalid > 0 && invalid !== this.lastInvalid) this.s.log.warn('ignoring invalid ACL entries in the store', { invalid });
      this.lastInvalid = invalid;
      this.acls = new AclSet(acls);
    } catch (e) {
      this.s.log.warn('could not read ACLs; keeping the last ones read', { error: e as Error });
    } finally {
      this.refreshing = false;
    }
  }

  private allowed(user: string, [type, name, op]: Need): boolean {
    return this.acls?.allowed(user, type, name, op) ?? false;
  }

  /** null when allowed; otherwise the denial message. `user` null: not authenticated (never allowed here). */
  check(user: string | null, apiKey: number, control: unknown): string | null {
    if (user !== null && this.superUsers.has(user)) return null;
    if (user === null) return 'not authenticated';
    const needs = needsOf(apiKey, control);
    if ('someTopicWrite' in needs) {
      return this.acls?.allowsSome(user, 'topic', 'write') ? null : `User:${user} may write to no topic (needed for producer ids and transactions)`;
    }
    for (const n of needs.all) {
      if (!this.allowed(user, n)) return `User:${user} may not ${n[2]} ${n[0] === 'cluster' ? 'the cluster' : `${n[0]} ${JSON.stringify(n[1])}`}`;
    }
    return null;
  }

  /** Metadata shows a user only the topics it may describe (SPEC §2.7). */
  filterMetadata(user: string | null, request: MetadataRequest, response: MetadataResponse): MetadataResponse {
    if (user !== null && this.superUsers.has(user)) return response;
    const may = (t: string) => user !== null && this.allowed(user, ['topic', t, 'describe']);
    if (request.topics === null) return { ...response, topics: response.topics.filter((t) => may(t.topic)) };
    return { ...response, topics: response.topics.map((t) => (may(t.topic) ? t : { topic: t.topic, errorCode: ErrorCode.AUTHORIZATION_FAILED, partitions: [] })) };
  }
}
