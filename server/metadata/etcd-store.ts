/**
 * Cluster metadata in etcd (v3 API, through the etcd3 client). etcd does every hard part:
 * leases for liveness, transactions for create-if-absent and compare-and-set, watches for
 * change notification. This file only maps Sluice's metadata onto keys.
 *
 * Key layout, all under the prefix (default `/sluice/`), values JSON unless said:
 *   cluster-id                      the cluster id, a plain string; created once (txn: create if absent)
 *   topics/<name>                   TopicRecord
 *   partitions/<topic>/<partition>  PartitionState; written before the topic record that
 *                                   covers it (in the same txn when it fits, else in chunks),
 *                                   deleted with the topic in one txn
 *   topic-writes/<topic>            the id of the createTopic or updateTopic that is writing
 *                                   this topic's partition states in chunks; every chunk is
 *                                   conditioned on it, so a writer that lost it stops
 *   brokers/<id>                    BrokerRegistration, attached to the broker's lease:
 *                                   the key exists exactly while the broker is live
 *                                   its create revision is the broker epoch: new for every
 *                                   registration, so a restarted broker is a new incarnation
 *   controller                      ControllerInfo, attached to the controller's broker lease
 *   controller-epoch                the last controllerEpoch handed out, a decimal string;
 *                                   never deleted, so epochs increase across controllers
 *   archive/<topic>/<topicId>/<p>   ArchiveState (archive-state.ts): the committed archive range
 *                                   of one partition of that topic incarnation; written by
 *                                   compare-and-set on its mod revision (absent: create if
 *                                   absent) while the topic record is that incarnation;
 *                                   deleted with the topic; not cached (only a partition's
 *                                   leader reads it, from etcd)
 *   producer-id-next                the first producer id no broker has reserved, a decimal
 *                                   string; never deleted; raised by compare-and-set on its
 *                                   mod revision (absent: create-if-absent), so two brokers
 *                                   never reserve overlapping blocks (SPEC §6.19)
 *
 * Invariants:
 * - Caches (topics, partitions, brokers, controller) change only by applying the watch, in
 *   revision order, so they always show one consistent revision of etcd. A write made here
 *   resolves only once the watch has applied its revision (read-your-writes).
 * - Becoming controller is ONE txn: `controller` absent AND `controller-epoch` unchanged
 *   since read → put both. Two candidates can never get the same epoch, and a candidate
 *   that read an old epoch fails its txn and retries.
 * - A partition state write is ONE txn comparing the key's mod revision with the one whose
 *   partitionEpoch the caller named: any write in between makes it fail.
 * - No txn holds more than TXN_OPS_MAX operations (etcd refuses more than its --max-txn-ops,
 *   128 by default). A topic whose partitions do not fit in one txn is written in chunks:
 *   partition states first, each chunk conditioned on the topic record being unchanged (for a
 *   create: absent) and on topic-writes/<topic> naming this write; the topic record last. So
 *   a topic record never names a partition whose state is not stored.
 * - A partition key not covered by its topic record (no record, or an index at or beyond its
 *   partition count: a chunked write in progress, or one that died between chunks) is an
 *   orphan: the cache keeps it aside (pendingPartitions), partitionState() and
 *   getPartitionState() do not show it, no event announces it and compare-and-set refuses
 *   it. It becomes a partition only when a topic record covering it is written, and every
 *   write of such a record first rewrites the states it covers, so an orphan's content never
 *   shows. The next create of the name deletes orphans, as does deleteTopic.
 * - Every wait has a bound (requestTimeoutMs, or a poll interval that re-checks).
 *
 * Not thread-safe in any sense that matters to JavaScript: one event loop owns it.
 */
import { randomUUID } from 'node:crypto';
import { Etcd3, Range, type IKeyValue, type IOperation, type IRangeResponse, type Lease, type Namespace, type Watcher } from 'etcd3';
import { ErrorCode, SluiceError } from '../../protocol/errors.ts';
import type { Logger } from '../logger.ts';
import {
  NO_LEADER,
  type BrokerRegistration,
  type Campaign,
  type ClusterEvent,
  type ClusterMetadataStore,
  type ControllerCallbacks,
  type ControllerInfo,
  type PartitionState,
  type PartitionWriteOptions,
} from './cluster-store.ts';
import type { TopicRecord } from './metadata-store.ts';
import { checkedArchiveTransition, sameArchiveState, type ArchiveState } from './archive-state.ts';
import { checkedNewStates, checkedPartitionState, initialPartitionState } from './partition-state.ts';

export const DEFAULT_ETCD_PREFIX = '/sluice/';

export interface EtcdStoreOptions {
  /** Key prefix; must end with '/'. Default DEFAULT_ETCD_PREFIX. */
  prefix?: string;
  /** Bound on every unary etcd call and on waiting for the watch to apply our own write. */
  requestTimeoutMs?: number;
  dialTimeoutMs?: number;
  log?: Logger;
}

const REQUEST_TIMEOUT_MS_DEFAULT = 10_000;
const DIAL_TIMEOUT_MS_DEFAULT = 5_000;
/** Keys per range request while loading; keeps responses well below gRPC's 4 MiB. */
const LOAD_PAGE_KEYS = 1000;
/** Waits re-check their condition at least this often, even without a watch event. */
const POLL_INTERVAL_MS = 1000;
const RETRY_BACKOFF_MS_MIN = 100;
const RETRY_BACKOFF_MS_MAX = 2000;
const UPDATE_ATTEMPTS_MAX = 5;

/**
 * Operations per etcd txn, at most (compares and puts/deletes each). etcd refuses a txn with
 * more than its --max-txn-ops (default 128) with "too many operations in txn request"; this
 * stays below the default so that no etcd flag is needed. A topic's partition states are
 * written in chunks of this many (see the invariants).
 */
export const TXN_OPS_MAX = 100;

/**
 * A metadata read or write etcd refused (e.g. its space quota is exhausted) or did not answer
 * is STORAGE_ERROR (retriable), per entry, as SPEC.md says; not an unexpected server error.
 * Nothing was applied here either way: the caches follow only the watch. (A write etcd did
 * receive before a timeout may still commit; the watch then shows it, like any other change.)
 */
async function metadataWrite<T>(what: string, call: Promise<T>): Promise<T> {
  try {
    return await call;
  } catch (e) {
    if (e instanceof SluiceError) throw e;
    throw new SluiceError(ErrorCode.STORAGE_ERROR, `${what}: etcd: ${(e as Error)?.message ?? String(e)}`);
  }
}

/**
 * An etcd client for `etcd://…` whose unary calls each end within requestTimeoutMs (streams,
 * i.e. watches and lease keep-alives, live on): every store over etcd bounds its calls this way.
 */
export function boundedEtcdClient(url: string, dialTimeoutMs: number, requestTimeoutMs: number): Etcd3 {
  return new Etcd3({
    hosts: parseEtcdEndpoints(url),
    dialTimeout: dialTimeoutMs,
    defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + requestTimeoutMs }),
  });
}

/** `etcd://h1:p1,h2:p2` (or `h1:p1,h2:p2`) → ['http://h1:p1', 'http://h2:p2']. */
export function parseEtcdEndpoints(url: string): string[] {
  const list = url.startsWith('etcd://') ? url.slice('etcd://'.length) : url;
  const hosts = list.split(',').map((h) => h.trim()).filter((h) => h.length > 0);
  if (hosts.length === 0) throw new Error(`no etcd endpoints in ${JSON.stringify(url)}; expected etcd://host:port[,host:port...]`);
  for (const h of hosts) {
    if (!/^[^\s/:]+:\d+$/.test(h) && !/^\[[0-9a-fA-F:]+\]:\d+$/.test(h)) throw new Error(`bad etcd endpoint ${JSON.stringify(h)}; expected host:port`);
  }
  return hosts.map((h) => `http://${h}`);
}

type KeyRef =
  | { kind: 'cluster-id' }
  | { kind: 'topic'; name: string }
  | { kind: 'partition'; topic: string; partition: number }
  | { kind: 'broker'; brokerId: number }
  | { kind: 'controller' }
  | { kind: 'other' };

function parseKey(key: string): KeyRef {
  if (key === 'cluster-id') return { kind: 'cluster-id' };
  if (key === 'controller') return { kind: 'controller' };
  const parts = key.split('/');
  if (parts.length === 2 && parts[0] === 'topics') return { kind: 'topic', name: parts[1]! };
  if (parts.length === 3 && parts[0] === 'partitions' && /^\d+$/.test(parts[2]!)) return { kind: 'partition', topic: parts[1]!, partition: Number(parts[2]) };
  if (parts.length === 2 && parts[0] === 'brokers' && /^\d+$/.test(parts[1]!)) return { kind: 'broker', brokerId: Number(parts[1]) };
  return { kind: 'other' };
}

const topicKey = (name: string): string => `topics/${name}`;
const partitionKey = (topic: string, p: number): string => `partitions/${topic}/${p}`;
const partitionPrefix = (topic: string): string => `partitions/${topic}/`;
const topicWriteKey = (topic: string): string => `topic-writes/${topic}`;
const archiveKey = (topic: string, topicId: string, p: number): string => `archive/${topic}/${topicId}/${p}`;
const archivePrefix = (topic: string): string => `archive/${topic}/`;
const brokerKey = (id: number): string => `brokers/${id}`;
const CONTROLLER_KEY = 'controller';
const CONTROLLER_EPOCH_KEY = 'controller-epoch';
const PRODUCER_ID_NEXT_KEY = 'producer-id-next';
/** Compare-and-set attempts for one producer-id block; each loses only to another broker's reservation. */
const PRODUCER_ID_CAS_ATTEMPTS_MAX = 50;
const CLUSTER_ID_KEY = 'cluster-id';

/** Raw cached value with the revisions the compares need. */
interface Cached {
  value: string;
  createRevision: number;
  modRevision: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * ops in txns of at most TXN_OPS_MAX, in order, with `last` all in the final one: once the
 * topic record is written, a later chunk's condition (record absent or unchanged) would fail.
 */
function txnChunks<T>(ops: readonly T[], last: readonly T[]): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < ops.length; i += TXN_OPS_MAX) out.push(ops.slice(i, i + TXN_OPS_MAX));
  const tail = out[out.length - 1];
  if (tail && tail.length + last.length <= TXN_OPS_MAX) tail.push(...last);
  else out.push([...last]);
  return out;
}
const rev = (s: string | undefined): number => (s === undefined ? 0 : Number(s));

export class EtcdMetadataStore implements ClusterMetadataStore {
  private readonly client: Etcd3;
  private readonly ns: Namespace;
  private readonly requestTimeoutMs: number;
  private readonly log: Logger | undefined;

  // Caches, changed only by apply().
  private readonly raw = new Map<string, Cached>();
  private readonly topics = new Map<string, TopicRecord>();
  private readonly partitions = new Map<string, Map<number, PartitionState>>();
  /** Orphan partition keys (see the invariants): topic -> partition -> state; no events. */
  private readonly pendingPartitions = new Map<string, Map<number, PartitionState>>();
  private readonly brokers = new Map<number, BrokerRegistration>();
  private controllerCache: (ControllerInfo & { createRevision: number }) | undefined;
  private clusterIdValue = '';
  /** Highest revision whose events the caches hold. */
  private appliedRevision = 0;

  private watcher: Watcher | null = null;
  private readonly listeners = new Set<(e: ClusterEvent) => void>();
  /** Woken after every applied watch batch and session change; each re-checks its condition. */
  private readonly wakers = new Set<() => void>();

  // The broker session: registration plus the lease it (and a controller key) hangs on.
  private registration: BrokerRegistration | null = null;
  private registrationTtlSeconds = 0;
  private lease: Lease | null = null;
  private leaseId: string | null = null;
  /** Create revision of our own `brokers/<id>` key: this incarnation's broker epoch; null while unregistered. */
  private ownEpoch: number | null = null;
  /** Bumped whenever the lease is lost; a controller elected under an older one has resigned. */
  private leaseGeneration = 0;
  private readonly campaigns = new Set<CampaignRunner>();
  private closed = false;

  constructor(url: string, opts: EtcdStoreOptions = {}) {
    const prefix = opts.prefix ?? DEFAULT_ETCD_PREFIX;
    if (!prefix.endsWith('/')) throw new Error(`etcd key prefix must end with '/', got ${JSON.stringify(prefix)}`);
    this.requestTimeoutMs = opts.requestTimeoutMs ?? REQUEST_TIMEOUT_MS_DEFAULT;
    this.log = opts.log;
    this.client = boundedEtcdClient(url, opts.dialTimeoutMs ?? DIAL_TIMEOUT_MS_DEFAULT, this.requestTimeoutMs);
    this.ns = this.client.namespace(prefix);
  }

  // ---- lifecycle ------------------------------------------------------------------------

  async open(): Promise<void> {
    const id = randomUUID();
    const res = await this.ns.if(CLUSTER_ID_KEY, 'Create', '==', 0).then(this.ns.put(CLUSTER_ID_KEY).value(id)).commit();
    if (!res.succeeded) this.log?.debug('joined existing cluster');
    await this.loadAndWatch(false);
    if (!this.clusterIdValue) throw new Error('etcd store: cluster-id missing after open');
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.allSettled([...this.campaigns].map((c) => c.cancel()));
    const lease = this.lease;
    this.lease = null;
    this.leaseId = null;
    this.ownEpoch = null;
    this.registration = null;
    if (lease) await lease.revoke().catch((e: unknown) => this.log?.warn('lease revoke failed; the registration expires with its TTL', { error: e }));
    await this.watcher?.cancel().catch(() => {});
    this.watcher = null;
    this.wakeWaiters();
    this.client.close();
  }

  // ---- MetadataStore --------------------------------------------------------------------

  clusterId(): string {
    return this.clusterIdValue;
  }

  listTopics(): TopicRecord[] {
    return [...this.topics.values()];
  }

  getTopic(name: string): TopicRecord | undefined {
    return this.topics.get(name);
  }

  async createTopic(topic: TopicRecord, initialPartitions?: readonly PartitionState[]): Promise<void> {
    const name = topic.name;
    const states = checkedNewStates(`topic ${name}`, topic.partitions, initialPartitions, initialPartitionState).map((s) => this.stamped(s));
    const puts = states.map((s, p) => this.ns.put(partitionKey(name, p)).value(JSON.stringify(s)));
    const putTopic = this.ns.put(topicKey(name)).value(JSON.stringify(topic));
    const exists = (): SluiceError => new SluiceError(ErrorCode.TOPIC_ALREADY_EXISTS, `topic ${name} already exists`);
    const what = `create topic ${name}`;
    if (puts.length + 1 <= TXN_OPS_MAX) {
      const res = await metadataWrite(what, this.ns.if(topicKey(name), 'Create', '==', 0).then(putTopic, ...puts).commit());
      if (!res.succeeded) throw exists();
      await this.caughtUp(rev(res.header.revision));
      return;
    }
    // Chunked (see the invariants). Claiming the name's write also deletes what an earlier
    // attempt left between chunks (its own txn: etcd refuses a put inside a deleted range).
    const writeId = randomUUID();
    const claimed = await metadataWrite(
      what,
      this.ns
        .if(topicKey(name), 'Create', '==', 0)
        .then(this.ns.put(topicWriteKey(name)).value(writeId), this.ns.delete().prefix(partitionPrefix(name)))
        .commit(),
    );
    if (!claimed.succeeded) throw exists();
    const ours = () => this.ns.if(topicKey(name), 'Create', '==', 0).and(topicWriteKey(name), 'Value', '==', writeId);
    const chunks = txnChunks(puts, [putTopic, this.ns.delete().key(topicWriteKey(name))]);
    for (const [i, ops] of chunks.entries()) {
      const res = await metadataWrite(what, ours().then(...ops).commit());
      if (res.succeeded && i === chunks.length - 1) {
        await this.caughtUp(rev(res.header.revision));
        return;
      }
      if (res.succeeded) continue;
      // The name was created meanwhile, or another create of it took the write over (its
      // claim replaced our id and deleted our chunks): either way this one lost to a
      // concurrent create. Our id is removed if still there; chunks left are orphans.
      await this.ns.if(topicWriteKey(name), 'Value', '==', writeId).then(this.ns.delete().key(topicWriteKey(name))).commit().catch(() => {});
      throw new SluiceError(ErrorCode.TOPIC_ALREADY_EXISTS, `topic ${name} already exists or is being created concurrently`);
    }
  }

  async updateTopic(topic: TopicRecord, addedPartitions?: readonly PartitionState[]): Promise<void> {
    const name = topic.name;
    const what = `update topic ${name}`;
    for (let attempt = 1; attempt <= UPDATE_ATTEMPTS_MAX; attempt++) {
      const got = await metadataWrite(what, this.ns.get(topicKey(name)).exec());
      const kv = got.kvs[0];
      const current = kv ? (JSON.parse(kv.value.toString()) as TopicRecord) : undefined;
      if (!kv || !current || current.id !== topic.id) throw new SluiceError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `topic ${name} does not exist`);
      // New partitions get the given states or start leaderless; removed ones (never done by
      // TopicManager) lose their state.
      const first = current.partitions;
      const added = checkedNewStates(`topic ${name}`, Math.max(0, topic.partitions - first), addedPartitions, initialPartitionState).map((s) => this.stamped(s));
      const ops: IOperation[] = added.map((s, i) => this.ns.put(partitionKey(name, first + i)).value(JSON.stringify(s)));
      for (let p = topic.partitions; p < first; p++) ops.push(this.ns.delete().key(partitionKey(name, p)));
      const putTopic = this.ns.put(topicKey(name)).value(JSON.stringify(topic));
      const unchanged = () => this.ns.if(topicKey(name), 'Mod', '==', kv.mod_revision);
      if (ops.length + 1 <= TXN_OPS_MAX) {
        const res = await metadataWrite(what, unchanged().then(putTopic, ...ops).commit());
        if (res.succeeded) {
          await this.caughtUp(rev(res.header.revision));
          return;
        }
        continue;
      }
      // Chunked, as in createTopic; the record is unchanged by every chunk (they write only
      // keys it does not cover yet), so one compare of its mod revision fences them all.
      const writeId = randomUUID();
      const claimed = await metadataWrite(what, unchanged().then(this.ns.put(topicWriteKey(name)).value(writeId)).commit());
      if (!claimed.succeeded) continue;
      const ours = () => unchanged().and(topicWriteKey(name), 'Value', '==', writeId);
      const chunks = txnChunks(ops, [putTopic, this.ns.delete().key(topicWriteKey(name))]);
      for (const [i, chunk] of chunks.entries()) {
        const res = await metadataWrite(what, ours().then(...chunk).commit());
        if (!res.succeeded) break; // a concurrent update: start over from its record
        if (i === chunks.length - 1) {
          await this.caughtUp(rev(res.header.revision));
          return;
        }
      }
    }
    throw new SluiceError(ErrorCode.STORAGE_ERROR, `topic ${name}: update lost the race ${UPDATE_ATTEMPTS_MAX} times to concurrent updates`);
  }

  async deleteTopic(name: string): Promise<boolean> {
    const res = await metadataWrite(
      `delete topic ${name}`,
      this.ns
        .if(topicKey(name), 'Create', '>', 0)
        .then(this.ns.delete().key(topicKey(name)), this.ns.delete().prefix(partitionPrefix(name)), this.ns.delete().key(topicWriteKey(name)), this.ns.delete().prefix(archivePrefix(name)))
        .commit(),
    );
    if (res.succeeded) await this.caughtUp(rev(res.header.revision));
    return res.succeeded;
  }

  // ---- brokers ----------------------------------------------------------------------------

  /**
   * Creates `brokers/<id>` on a new lease with keep-alive. If the key exists (a live broker
   * with this id, or the registration of a crashed predecessor that has not expired yet),
   * retries until it is gone, for at most ttlSeconds + 2 s, then fails.
   */
  async registerBroker(info: BrokerRegistration, ttlSeconds: number): Promise<void> {
    if (this.closed) throw new Error('etcd store is closed');
    if (this.registration) throw new Error(`this store already registered broker ${this.registration.brokerId}`);
    if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1) throw new Error(`ttlSeconds must be an integer >= 1, got ${ttlSeconds}`);
    this.registration = { brokerId: info.brokerId, host: info.host, port: info.port, startedAtMs: info.startedAtMs };
    this.registrationTtlSeconds = ttlSeconds;
    try {
      await this.register(Date.now() + ttlSeconds * 1000 + 2000);
    } catch (e) {
      this.registration = null;
      throw e;
    }
  }

  liveBrokers(): BrokerRegistration[] {
    return [...this.brokers.values()].sort((a, b) => a.brokerId - b.brokerId);
  }

  brokerEpoch(brokerId: number): number | undefined {
    return this.brokers.has(brokerId) ? this.raw.get(brokerKey(brokerId))?.createRevision : undefined;
  }

  ownBrokerEpoch(): number | undefined {
    return this.ownEpoch ?? undefined;
  }

  /**
   * A new partition's initial state names its leader's current registration (TopicManager
   * places replicas on live brokers only), so that leader may serve at once. Had it restarted
   * meanwhile, the controller sees the mismatch and elects anew.
   */
  private stamped(s: PartitionState): PartitionState {
    if (s.leader === NO_LEADER || s.leaderBrokerEpoch !== undefined) return s;
    const epoch = this.brokerEpoch(s.leader);
    return epoch === undefined ? s : { ...s, leaderBrokerEpoch: epoch };
  }

  /** One registration attempt loop on a fresh lease; sets this.lease when done. */
  private async register(deadlineMs: number): Promise<void> {
    const reg = this.registration;
    if (!reg) throw new Error('no registration');
    const lease = this.ns.lease(this.registrationTtlSeconds);
    let id: string;
    try {
      id = await lease.grant();
    } catch (e) {
      lease.release();
      throw e;
    }
    for (let backoff = RETRY_BACKOFF_MS_MIN; ; backoff = Math.min(backoff * 2, RETRY_BACKOFF_MS_MAX)) {
      const key = brokerKey(reg.brokerId);
      const res = await this.ns.if(key, 'Create', '==', 0).then(this.ns.put(key).value(JSON.stringify(reg)).lease(id)).commit();
      if (res.succeeded) {
        await this.caughtUp(rev(res.header.revision));
        // The txn created the key, so its revision is the key's create revision.
        this.ownEpoch = rev(res.header.revision);
        break;
      }
      if (Date.now() + backoff > deadlineMs || this.closed) {
        await lease.revoke().catch(() => {});
        throw new Error(`broker id ${reg.brokerId} is registered by another live broker (key ${key} did not expire in time)`);
      }
      await sleep(backoff);
    }
    if (this.closed) {
      await lease.revoke().catch(() => {});
      return;
    }
    this.lease = lease;
    this.leaseId = id;
    lease.on('lost', (err) => void this.onLeaseLost(lease, err));
    this.wakeWaiters();
  }

  /** The lease died (etcd expired it, or we could not reach etcd for 2 × TTL): register anew. */
  private async onLeaseLost(lease: Lease, err: Error): Promise<void> {
    if (this.closed || this.lease !== lease) return;
    this.log?.warn('etcd lease lost; registering again', { error: err });
    this.lease = null;
    this.leaseId = null;
    this.ownEpoch = null;
    this.leaseGeneration++;
    this.wakeWaiters(); // an elected controller resigns now
    for (let backoff = RETRY_BACKOFF_MS_MIN; !this.closed && this.registration; backoff = Math.min(backoff * 2, RETRY_BACKOFF_MS_MAX)) {
      try {
        // The old key goes with the old lease; allow one TTL for etcd to expire it.
        await this.register(Date.now() + this.registrationTtlSeconds * 1000 + 2000);
        if (this.registration && !this.closed) this.emit({ kind: 'reregistered', brokerId: this.registration.brokerId });
        return;
      } catch (e) {
        this.log?.warn('re-registration failed; retrying', { error: e, backoffMs: backoff });
        await sleep(backoff);
      }
    }
  }

  // ---- controller -------------------------------------------------------------------------

  controller(): ControllerInfo | undefined {
    const c = this.controllerCache;
    return c ? { brokerId: c.brokerId, controllerEpoch: c.controllerEpoch } : undefined;
  }

  campaignController(brokerId: number, callbacks: ControllerCallbacks): Campaign {
    if (this.closed) throw new Error('etcd store is closed');
    if (!this.registration) throw new Error('register the broker before campaigning: the controller key lives on its lease');
    if (this.registration.brokerId !== brokerId) throw new Error(`this store registered broker ${this.registration.brokerId}, not ${brokerId}`);
    const runner = new CampaignRunner(this, brokerId, callbacks, this.log);
    this.campaigns.add(runner);
    runner.start(() => this.campaigns.delete(runner));
    return runner;
  }

  /**
   * One election attempt. Elected: resolves with the epoch and the controller key's create
   * revision (its identity). Not elected: resolves undefined after the current controller is
   * gone (or the poll interval passed), for the caller to try again.
   */
  async tryBecomeController(brokerId: number): Promise<{ controllerEpoch: number; createRevision: number; leaseGeneration: number } | undefined> {
    const leaseId = this.leaseId;
    const generation = this.leaseGeneration;
    if (!leaseId) {
      await this.waitUntil(() => this.leaseId !== null || this.closed, POLL_INTERVAL_MS);
      return undefined;
    }
    const epochKv = (await this.ns.get(CONTROLLER_EPOCH_KEY).exec()).kvs[0];
    const controllerEpoch = (epochKv ? Number(epochKv.value.toString()) : 0) + 1;
    const info: ControllerInfo = { brokerId, controllerEpoch };
    const res = await this.ns
      .if(CONTROLLER_KEY, 'Create', '==', 0)
      .and(CONTROLLER_EPOCH_KEY, 'Mod', '==', epochKv?.mod_revision ?? 0)
      .then(this.ns.put(CONTROLLER_KEY).value(JSON.stringify(info)).lease(leaseId), this.ns.put(CONTROLLER_EPOCH_KEY).value(String(controllerEpoch)))
      .else(this.ns.get(CONTROLLER_KEY))
      .commit();
    if (res.succeeded) {
      const createRevision = rev(res.header.revision);
      await this.caughtUp(createRevision);
      return { controllerEpoch, createRevision, leaseGeneration: generation };
    }
    const holder = res.responses[0]?.response_range.kvs[0];
    if (holder) {
      // Someone is controller: wait until our cache has seen it and then seen it go.
      const seen = rev(holder.mod_revision);
      const holderCreate = rev(holder.create_revision);
      await this.waitUntil(() => this.closed || (this.appliedRevision >= seen && this.controllerCache?.createRevision !== holderCreate), POLL_INTERVAL_MS);
    }
    return undefined; // lost a race on controller-epoch, or the holder left: try again
  }

  /** Still controller: the cached controller key is the one we created, under the same lease. */
  isStillController(createRevision: number, leaseGeneration: number): boolean {
    return !this.closed && this.leaseGeneration === leaseGeneration && this.controllerCache?.createRevision === createRevision;
  }

  /** Deletes the controller key if it is still the one we created. */
  async resignController(createRevision: number): Promise<void> {
    const res = await this.ns.if(CONTROLLER_KEY, 'Create', '==', createRevision).then(this.ns.delete().key(CONTROLLER_KEY)).commit();
    if (res.succeeded) await this.caughtUp(rev(res.header.revision)).catch(() => {});
  }

  // ---- partitions -------------------------------------------------------------------------

  async getPartitionState(topic: string, partition: number): Promise<PartitionState | undefined> {
    const kv = await this.readPartition(`read ${topic}/${partition}`, topic, partition);
    return kv ? (JSON.parse(kv.value.toString()) as PartitionState) : undefined;
  }

  /** The partition's key, read with its topic's at one revision; undefined for an orphan (see the invariants). */
  private async readPartition(what: string, topic: string, partition: number): Promise<IKeyValue | undefined> {
    const res = await metadataWrite(what, this.ns.if(topicKey(topic), 'Create', '>', 0).then(this.ns.get(topicKey(topic)), this.ns.get(partitionKey(topic, partition))).commit());
    if (!res.succeeded) return undefined;
    const [t, kv] = res.responses.map((r) => r.response_range.kvs[0]);
    if (!t || !kv) return undefined;
    const record = JSON.parse(t.value.toString()) as TopicRecord;
    return partition < record.partitions ? kv : undefined;
  }

  partitionState(topic: string, partition: number): PartitionState | undefined {
    return this.partitions.get(topic)?.get(partition);
  }

  async compareAndSetPartitionState(
    topic: string,
    partition: number,
    expectedPartitionEpoch: number,
    next: Omit<PartitionState, 'partitionEpoch'>,
    opts: PartitionWriteOptions = {},
  ): Promise<boolean> {
    const stored = checkedPartitionState(next, expectedPartitionEpoch + 1);
    const key = partitionKey(topic, partition);
    const kv = await this.readPartition(`write ${topic}/${partition}`, topic, partition);
    if (!kv) return false;
    const current = JSON.parse(kv.value.toString()) as PartitionState;
    if (current.partitionEpoch !== expectedPartitionEpoch) return false;
    let txn = this.ns.if(key, 'Mod', '==', kv.mod_revision);
    if (opts.controllerEpoch !== undefined) txn = txn.and(CONTROLLER_EPOCH_KEY, 'Value', '==', String(opts.controllerEpoch));
    const res = await metadataWrite(`write ${topic}/${partition}`, txn.then(this.ns.put(key).value(JSON.stringify(stored))).commit());
    if (res.succeeded) await this.caughtUp(rev(res.header.revision));
    return res.succeeded;
  }

  // ---- archive state ------------------------------------------------------------------------

  async getArchiveState(topic: string, topicId: string, partition: number): Promise<ArchiveState | undefined> {
    const got = await this.readArchive(`read archive state ${topic}/${partition}`, topic, topicId, partition);
    return got?.state;
  }

  /** The topic's record (must be incarnation topicId, covering partition) and the archive key, at one revision. */
  private async readArchive(what: string, topic: string, topicId: string, partition: number): Promise<{ topicMod: string; kv: IKeyValue | undefined; state: ArchiveState | undefined } | undefined> {
    const res = await metadataWrite(what, this.ns.if(topicKey(topic), 'Create', '>', 0).then(this.ns.get(topicKey(topic)), this.ns.get(archiveKey(topic, topicId, partition))).commit());
    if (!res.succeeded) return undefined;
    const [t, kv] = res.responses.map((r) => r.response_range.kvs[0]);
    if (!t) return undefined;
    const record = JSON.parse(t.value.toString()) as TopicRecord;
    if (record.id !== topicId || partition < 0 || partition >= record.partitions) return undefined;
    let state: ArchiveState | undefined;
    if (kv) {
      try {
        state = checkedArchiveTransition(`etcd key archive/${topic}/${topicId}/${partition}`, undefined, JSON.parse(kv.value.toString()) as ArchiveState);
      } catch (e) {
        throw new SluiceError(ErrorCode.STORAGE_ERROR, (e as Error).message);
      }
    }
    return { topicMod: t.mod_revision, kv, state };
  }

  async compareAndSetArchiveState(topic: string, topicId: string, partition: number, expected: ArchiveState | undefined, next: ArchiveState): Promise<boolean> {
    const state = checkedArchiveTransition(`archive state of ${topic}/${partition}`, expected, next);
    const what = `write archive state ${topic}/${partition}`;
    const got = await this.readArchive(what, topic, topicId, partition);
    if (!got || !sameArchiveState(got.state, expected)) return false;
    const key = archiveKey(topic, topicId, partition);
    // Both the state and the topic record unchanged since the read: no lost update, and no
    // write into a topic deleted (and maybe created again) in between.
    let txn = this.ns.if(topicKey(topic), 'Mod', '==', got.topicMod);
    txn = got.kv ? txn.and(key, 'Mod', '==', got.kv.mod_revision) : txn.and(key, 'Create', '==', 0);
    const res = await metadataWrite(what, txn.then(this.ns.put(key).value(JSON.stringify(state))).commit());
    return res.succeeded;
  }

  // ---- producer ids -------------------------------------------------------------------------

  async allocateProducerIdBlock(count: number): Promise<number> {
    if (!Number.isSafeInteger(count) || count < 1) throw new Error(`producer id block size must be a positive integer, got ${count}`);
    for (let attempt = 0; attempt < PRODUCER_ID_CAS_ATTEMPTS_MAX && !this.closed; attempt++) {
      const got = await metadataWrite('read producer-id-next', this.ns.get(PRODUCER_ID_NEXT_KEY).exec());
      const kv = got.kvs[0];
      const first = kv ? Number(kv.value.toString()) : 0;
      if (!Number.isSafeInteger(first) || first < 0) throw new SluiceError(ErrorCode.STORAGE_ERROR, `etcd key ${PRODUCER_ID_NEXT_KEY} holds ${JSON.stringify(kv?.value.toString())}, not a producer id`);
      const next = first + count;
      const txn = kv ? this.ns.if(PRODUCER_ID_NEXT_KEY, 'Mod', '==', kv.mod_revision) : this.ns.if(PRODUCER_ID_NEXT_KEY, 'Create', '==', 0);
      const res = await metadataWrite('reserve producer ids', txn.then(this.ns.put(PRODUCER_ID_NEXT_KEY).value(String(next))).commit());
      if (res.succeeded) return first;
      // Another broker reserved a block in between: read again, after a short random pause
      // so that brokers racing for blocks do not collide in lockstep.
      await sleep(Math.floor(Math.random() * 20));
    }
    throw new SluiceError(ErrorCode.STORAGE_ERROR, `could not reserve producer ids in ${PRODUCER_ID_CAS_ATTEMPTS_MAX} attempts (contention or a closing store)`);
  }

  // ---- watch and caches -------------------------------------------------------------------

  watch(listener: (event: ClusterEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Loads every key at one revision (paged), replaces the caches, then watches from the
   * next revision. On a resync (the watch failed, e.g. its revision was compacted) the
   * differences to the old caches are emitted as events.
   */
  private async loadAndWatch(resync: boolean): Promise<void> {
    const kvs: IKeyValue[] = [];
    let revision = 0;
    let start: Buffer | null = null;
    for (;;) {
      let b = this.ns.getAll().limit(LOAD_PAGE_KEYS);
      if (start) b = b.inRange(new Range(start, Buffer.from([0])));
      if (revision) b = b.revision(revision);
      const page: IRangeResponse = await b.exec();
      if (!revision) revision = rev(page.header.revision);
      kvs.push(...page.kvs);
      if (!page.more || page.kvs.length === 0) break;
      start = Buffer.concat([page.kvs[page.kvs.length - 1]!.key, Buffer.from([0])]);
    }
    const before = new Map(this.raw);
    const seen = new Set<string>();
    for (const kv of kvs) {
      const key = kv.key.toString();
      seen.add(key);
      const old = before.get(key);
      const value = kv.value.toString();
      if (old && old.value === value && old.modRevision === rev(kv.mod_revision)) continue;
      const events = this.applyPut(key, value, rev(kv.create_revision), rev(kv.mod_revision));
      if (resync) for (const e of events) this.emit(e);
    }
    for (const key of before.keys()) {
      if (seen.has(key)) continue;
      const events = this.applyDelete(key);
      if (resync) for (const e of events) this.emit(e);
    }
    this.appliedRevision = Math.max(this.appliedRevision, revision);
    this.wakeWaiters();

    const watcher = await this.ns.watch().prefix('').startRevision(String(revision + 1)).create();
    if (this.closed) {
      await watcher.cancel();
      return;
    }
    this.watcher = watcher;
    watcher.on('data', (res) => {
      let maxRevision = 0;
      for (const ev of res.events) {
        const key = ev.kv.key.toString();
        const modRevision = rev(ev.kv.mod_revision);
        maxRevision = Math.max(maxRevision, modRevision);
        if (modRevision <= this.appliedRevision) continue; // already loaded
        const events = ev.type === 'Put' ? this.applyPut(key, ev.kv.value.toString(), rev(ev.kv.create_revision), modRevision) : this.applyDelete(key);
        for (const e of events) this.emit(e);
      }
      if (maxRevision > this.appliedRevision) this.appliedRevision = maxRevision;
      this.wakeWaiters();
    });
    watcher.on('disconnected', (err) => this.log?.warn('etcd watch disconnected; the client reconnects', { error: err }));
    watcher.on('error', (err) => {
      if (this.closed || this.watcher !== watcher) return;
      this.log?.warn('etcd watch failed; reloading', { error: err });
      this.watcher = null;
      void watcher.cancel().catch(() => {});
      void this.resyncWithRetry();
    });
  }

  private async resyncWithRetry(): Promise<void> {
    for (let backoff = RETRY_BACKOFF_MS_MIN; !this.closed; backoff = Math.min(backoff * 2, RETRY_BACKOFF_MS_MAX)) {
      try {
        await this.loadAndWatch(true);
        return;
      } catch (e) {
        this.log?.warn('etcd reload failed; retrying', { error: e, backoffMs: backoff });
        await sleep(backoff);
      }
    }
  }

  private applyPut(key: string, value: string, createRevision: number, modRevision: number): ClusterEvent[] {
    this.raw.set(key, { value, createRevision, modRevision });
    const ref = parseKey(key);
    switch (ref.kind) {
      case 'cluster-id':
        this.clusterIdValue = value;
        return [];
      case 'topic': {
        const record = JSON.parse(value) as TopicRecord;
        this.topics.set(ref.name, record);
        const events: ClusterEvent[] = [{ kind: 'topic', name: ref.name, record }];
        // Partitions written before this record (in chunks) become partitions now, announced
        // after their topic as when record and states share one txn.
        const pending = this.pendingPartitions.get(ref.name);
        if (pending) {
          for (const [partition, state] of [...pending].sort((a, b) => a[0] - b[0])) {
            if (partition >= record.partitions) continue;
            pending.delete(partition);
            this.setPartition(ref.name, partition, state);
            events.push({ kind: 'partition', topic: ref.name, partition, state });
          }
          if (pending.size === 0) this.pendingPartitions.delete(ref.name);
        }
        return events;
      }
      case 'partition': {
        const state = JSON.parse(value) as PartitionState;
        const record = this.topics.get(ref.topic);
        if (!record || ref.partition >= record.partitions) {
          let m = this.pendingPartitions.get(ref.topic);
          if (!m) this.pendingPartitions.set(ref.topic, (m = new Map()));
          m.set(ref.partition, state);
          return [];
        }
        this.setPartition(ref.topic, ref.partition, state);
        return [{ kind: 'partition', topic: ref.topic, partition: ref.partition, state }];
      }
      case 'broker': {
        const registration = JSON.parse(value) as BrokerRegistration;
        this.brokers.set(ref.brokerId, registration);
        return [{ kind: 'broker', brokerId: ref.brokerId, registration }];
      }
      case 'controller': {
        const info = JSON.parse(value) as ControllerInfo;
        this.controllerCache = { brokerId: info.brokerId, controllerEpoch: info.controllerEpoch, createRevision };
        return [{ kind: 'controller', controller: { brokerId: info.brokerId, controllerEpoch: info.controllerEpoch } }];
      }
      case 'other':
        return [];
    }
  }

  private setPartition(topic: string, partition: number, state: PartitionState): void {
    let m = this.partitions.get(topic);
    if (!m) this.partitions.set(topic, (m = new Map()));
    m.set(partition, state);
  }

  private applyDelete(key: string): ClusterEvent[] {
    this.raw.delete(key);
    const ref = parseKey(key);
    switch (ref.kind) {
      case 'cluster-id':
        return []; // never deleted by Sluice; keep the id we have
      case 'topic':
        this.topics.delete(ref.name);
        return [{ kind: 'topic', name: ref.name, record: undefined }];
      case 'partition': {
        const m = this.partitions.get(ref.topic);
        if (!m?.has(ref.partition)) {
          // An orphan: it goes as silently as it came.
          const pending = this.pendingPartitions.get(ref.topic);
          pending?.delete(ref.partition);
          if (pending && pending.size === 0) this.pendingPartitions.delete(ref.topic);
          return [];
        }
        m.delete(ref.partition);
        if (m.size === 0) this.partitions.delete(ref.topic);
        return [{ kind: 'partition', topic: ref.topic, partition: ref.partition, state: undefined }];
      }
      case 'broker':
        this.brokers.delete(ref.brokerId);
        return [{ kind: 'broker', brokerId: ref.brokerId, registration: undefined }];
      case 'controller':
        this.controllerCache = undefined;
        return [{ kind: 'controller', controller: undefined }];
      case 'other':
        return [];
    }
  }

  private emit(e: ClusterEvent): void {
    for (const l of this.listeners) {
      try {
        l(e);
      } catch (err) {
        this.log?.error('metadata listener threw', { error: err, event: e.kind });
      }
    }
  }

  /** Wakes every waitUntil() to re-check its condition. Internal: the campaign loop uses it. */
  wakeWaiters(): void {
    for (const w of [...this.wakers]) w();
  }

  /** Resolves when cond() holds (checked after every wake) or after maxMs, whichever first. */
  waitUntil(cond: () => boolean, maxMs: number): Promise<void> {
    if (cond()) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.wakers.delete(check);
        resolve();
      };
      const check = (): void => {
        if (cond()) done();
      };
      const timer = setTimeout(done, maxMs);
      this.wakers.add(check);
    });
  }

  /** Read-your-writes: waits until the watch has applied our write's revision. */
  private async caughtUp(revision: number): Promise<void> {
    await this.waitUntil(() => this.appliedRevision >= revision || this.closed, this.requestTimeoutMs);
    if (this.appliedRevision < revision && !this.closed) {
      // Retriable: the change is made; a retry sees it (e.g. TOPIC_ALREADY_EXISTS) once the watch catches up.
      throw new SluiceError(ErrorCode.REQUEST_TIMED_OUT, `etcd write at revision ${revision} is durable, but the watch did not deliver it within ${this.requestTimeoutMs} ms`);
    }
  }
}

/**
 * The campaign loop of one broker: try to become controller; once elected, hold until the
 * controller key is no longer ours (lease lost, deleted) or cancel(); then resign and, unless
 * cancelled, try again. onElected/onResigned strictly alternate, starting with onElected.
 */
class CampaignRunner implements Campaign {
  private cancelled = false;
  private done: Promise<void> = Promise.resolve();
  private elected: { createRevision: number } | null = null;

  constructor(
    private readonly store: EtcdMetadataStore,
    private readonly brokerId: number,
    private readonly callbacks: ControllerCallbacks,
    private readonly log: Logger | undefined,
  ) {}

  start(onEnd: () => void): void {
    this.done = this.loop().finally(onEnd);
  }

  async cancel(): Promise<void> {
    this.cancelled = true;
    this.store.wakeWaiters();
    await this.done;
  }

  private async loop(): Promise<void> {
    let backoff = RETRY_BACKOFF_MS_MIN;
    while (!this.cancelled) {
      try {
        const won = await this.store.tryBecomeController(this.brokerId);
        backoff = RETRY_BACKOFF_MS_MIN;
        if (!won) continue;
        if (this.cancelled) {
          await this.store.resignController(won.createRevision);
          break;
        }
        this.elected = won;
        this.callbacks.onElected(won.controllerEpoch);
        while (!this.cancelled && this.store.isStillController(won.createRevision, won.leaseGeneration)) {
          await this.store.waitUntil(() => this.cancelled || !this.store.isStillController(won.createRevision, won.leaseGeneration), POLL_INTERVAL_MS);
        }
        await this.resign();
      } catch (e) {
        await this.resign().catch(() => {});
        if (this.cancelled) break;
        this.log?.warn('controller campaign attempt failed; retrying', { error: e, backoffMs: backoff });
        await sleep(backoff);
        backoff = Math.min(backoff * 2, RETRY_BACKOFF_MS_MAX);
      }
    }
    await this.resign().catch(() => {});
  }

  private async resign(): Promise<void> {
    const e = this.elected;
    if (!e) return;
    this.elected = null;
    try {
      this.callbacks.onResigned();
    } finally {
      await this.store.resignController(e.createRevision).catch(() => {});
    }
  }
}
