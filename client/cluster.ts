/**
 * The client's view of the cluster: bootstrap addresses, cached metadata, and one shared
 * connection per broker. Producer, consumer and admin all route through it, so a
 * NOT_LEADER or UNKNOWN_TOPIC answer anywhere is handled by refreshing the same cache.
 *
 * Lanes: a client made of several parts (a group consumer: fetch engine, coordinator, retry
 * producer, admin) keeps ONE metadata cache, but its parts need connections of their own:
 * a parked Fetch delays every later response on its connection (SPEC 5.1), and each part
 * sends its own clientId. lane() returns a Cluster that shares this one's metadata (brokers,
 * topics, suspects, bootstrap) and has its own connections and connection options; closing a
 * lane closes only its connections.
 */
import { ApiKey } from '../protocol/api-keys.ts';
import type { BrokerInfo, MetadataRequest, MetadataResponse, TopicMetadata } from '../protocol/apis/metadata.ts';
import { ErrorCode, SluiceError } from '../protocol/errors.ts';
import { DEFAULT_PORT } from '../protocol/frame.ts';
import { Connection, ConnectionError, type ConnectionOptions } from './connection.ts';

export interface ClusterOptions extends ConnectionOptions {
  /** Comma-separated host:port list, or an array of them. */
  bootstrap: string | string[];
  /** Cached metadata older than this is refreshed on the next lookup. */
  metadataMaxAgeMs?: number;
}

/** How long a broker that failed a request is tried last. */
const SUSPECT_MS = 10_000;

export function parseBootstrap(bootstrap: string | string[]): Array<{ host: string; port: number }> {
  const list = Array.isArray(bootstrap) ? bootstrap : bootstrap.split(',');
  const out = list.map((s) => s.trim()).filter(Boolean).map((s) => {
    const i = s.lastIndexOf(':');
    const host = i > 0 ? s.slice(0, i).replace(/^\[|\]$/g, '') : s;
    const port = i > 0 ? Number(s.slice(i + 1)) : DEFAULT_PORT;
    if (!Number.isInteger(port) || port <= 0 || port > 65535) throw new Error(`bad bootstrap address ${JSON.stringify(s)}`);
    return { host, port };
  });
  if (out.length === 0) throw new Error('bootstrap list is empty');
  return out;
}

/** What the lanes of one Cluster share: the metadata cache and which brokers failed lately. */
class SharedMetadata {
  brokers = new Map<number, BrokerInfo>();
  readonly topics = new Map<string, TopicMetadata>();
  metadataAt = 0;
  inflightMetadata: Promise<MetadataResponse> | null = null;
  readonly suspectUntil = new Map<string, number>();
  constructor(readonly bootstrap: Array<{ host: string; port: number }>, readonly metadataMaxAgeMs: number, readonly security: ClientSecurity) {}
}

/** TLS and SASL of every connection of a client, its lanes included (SPEC §2.5, §2.6). */
export type ClientSecurity = Pick<ConnectionOptions, 'tls' | 'sasl'>;

export class Cluster {
  readonly options: ClusterOptions;
  private readonly shared: SharedMetadata;
  private readonly connections = new Map<string, Promise<Connection>>();
  private closed = false;

  constructor(options: ClusterOptions, shared?: SharedMetadata) {
    this.options = options;
    this.shared = shared ?? new SharedMetadata(parseBootstrap(options.bootstrap), options.metadataMaxAgeMs ?? 300_000, { ...(options.tls ? { tls: options.tls } : {}), ...(options.sasl ? { sasl: options.sasl } : {}) });
  }

  /**
   * A Cluster with this one's metadata and its own connections, opened with `options`
   * (clientId, timeouts); bootstrap and metadataMaxAgeMs stay this cluster's.
   */
  lane(options: ConnectionOptions): Cluster {
    return new Cluster({ ...options, bootstrap: this.options.bootstrap, metadataMaxAgeMs: this.shared.metadataMaxAgeMs }, this.shared);
  }

  /** Brokers in the cached metadata (0 before the first Metadata answer). */
  get knownBrokerCount(): number {
    return this.shared.brokers.size;
  }

  /** A live connection to host:port, opened on first use and replaced when it dies. */
  async connectionTo(host: string, port: number): Promise<Connection> {
    if (this.closed) throw new ConnectionError('client is closed');
    const key = `${host}:${port}`;
    let p = this.connections.get(key);
    if (p) {
      const c = await p.catch(() => null);
      if (c && !c.closed) return c;
      if (this.connections.get(key) === p) this.connections.delete(key);
    }
    p = Connection.connect(host, port, { ...this.shared.security, ...this.options });
    this.connections.set(key, p);
    p.then(
      (c) => c.onClose(() => { if (this.connections.get(key) === p) this.connections.delete(key); }),
      () => { if (this.connections.get(key) === p) this.connections.delete(key); },
    );
    return p;
  }

  async connectionToNode(nodeId: number): Promise<Connection> {
    const b = this.shared.brokers.get(nodeId);
    if (!b) throw new SluiceError(ErrorCode.NOT_LEADER, `broker ${nodeId} is not in the cached metadata`);
    // A broker that refuses its partitions' traffic is also asked for metadata last.
    return this.connectionTo(b.host, b.port).catch((e: Error) => {
      this.markSuspect(b.host, b.port);
      throw e;
    });
  }

  /**
   * Any broker that answers: known brokers first, then the bootstrap list, brokers that
   * recently failed (refused, timed out) last, so one hung broker cannot stall every refresh.
   */
  async anyConnection(): Promise<Connection> {
    const now = Date.now();
    const all = [...this.shared.brokers.values(), ...this.shared.bootstrap];
    const candidates = [...all.filter((c) => !((this.shared.suspectUntil.get(`${c.host}:${c.port}`) ?? 0) > now)), ...all.filter((c) => (this.shared.suspectUntil.get(`${c.host}:${c.port}`) ?? 0) > now)];
    let last: Error | null = null;
    for (const c of candidates) {
      try {
        return await this.connectionTo(c.host, c.port);
      } catch (e) {
        this.markSuspect(c.host, c.port);
        last = e as Error;
      }
    }
    throw last ?? new ConnectionError('no broker reachable');
  }

  /** Tried last by anyConnection for a while (SUSPECT_MS). */
  markSuspect(host: string, port: number): void {
    this.shared.suspectUntil.set(`${host}:${port}`, Date.now() + SUSPECT_MS);
  }

  /** Fetches metadata for the given topics (null: all) and merges it into the cache. */
  refreshMetadata(topics: string[] | null = null): Promise<MetadataResponse> {
    if (this.shared.inflightMetadata && topics === null) return this.shared.inflightMetadata;
    const p = (async () => {
      const conn = await this.anyConnection();
      const req: MetadataRequest = { topics };
      const res = await conn.send<MetadataResponse>(ApiKey.METADATA, req).catch((e: Error) => {
        this.markSuspect(conn.host, conn.port);
        throw e;
      });
      const md = res.control;
      this.shared.brokers = new Map(md.brokers.map((b) => [b.nodeId, b]));
      if (topics === null) this.shared.topics.clear();
      for (const t of md.topics) {
        if (t.errorCode === ErrorCode.NONE) this.shared.topics.set(t.topic, t);
        else this.shared.topics.delete(t.topic);
      }
      this.shared.metadataAt = Date.now();
      return md;
    })();
    if (topics === null) {
      this.shared.inflightMetadata = p;
      p.finally(() => { if (this.shared.inflightMetadata === p) this.shared.inflightMetadata = null; }).catch(() => {});
    }
    return p;
  }

  /** Cached topic metadata, refreshed when missing or stale; throws UNKNOWN_TOPIC_OR_PARTITION. */
  async topic(name: string, forceRefresh = false): Promise<TopicMetadata> {
    const maxAge = this.shared.metadataMaxAgeMs;
    let t = this.shared.topics.get(name);
    if (!t || forceRefresh || Date.now() - this.shared.metadataAt > maxAge) {
      const md = await this.refreshMetadata([name]);
      const entry = md.topics.find((x) => x.topic === name);
      if (!entry || entry.errorCode !== ErrorCode.NONE) {
        throw new SluiceError((entry?.errorCode ?? ErrorCode.UNKNOWN_TOPIC_OR_PARTITION) as ErrorCode, `topic ${name}`);
      }
      t = entry;
    }
    return t;
  }

  cachedTopic(name: string): TopicMetadata | undefined {
    return this.shared.topics.get(name);
  }

  async leaderConnection(topic: string, partition: number): Promise<Connection> {
    const t = await this.topic(topic);
    const p = t.partitions.find((x) => x.partition === partition);
    if (!p) throw new SluiceError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `${topic}/${partition}`);
    if (p.leader < 0) {
      // Cached while an election was under way: ask again once before saying there is none.
      const fresh = (await this.topic(topic, true)).partitions.find((x) => x.partition === partition);
      if (!fresh || fresh.leader < 0) throw new SluiceError(ErrorCode.NOT_LEADER, `${topic}/${partition} has no leader`);
      return this.connectionToNode(fresh.leader);
    }
    return this.connectionToNode(p.leader);
  }

  /** The next topic() call asks the cluster again (a broker said it no longer leads what the cache says). */
  metadataIsStale(): void {
    this.shared.metadataAt = 0;
  }

  leaderOf(topic: string, partition: number): number {
    return this.shared.topics.get(topic)?.partitions.find((x) => x.partition === partition)?.leader ?? -1;
  }

  close(): void {
    this.closed = true;
    for (const p of this.connections.values()) p.then((c) => c.close(), () => {});
    this.connections.clear();
  }
}
