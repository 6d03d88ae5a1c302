/**
 * Admin client: topic lifecycle and cluster inspection. Every call is one request (plus a
 * metadata lookup where routing needs it); a per-topic error in the answer is thrown as a
 * SluiceError carrying the broker's error code, naming the topic.
 */
import { ApiKey } from '../protocol/api-keys.ts';
import {
  EARLIEST_TIMESTAMP,
  LATEST_TIMESTAMP,
  type CreateTopicsRequest,
  type CreateTopicsResponse,
  type DeleteTopicsRequest,
  type DeleteTopicsResponse,
  type DescribeTopicsRequest,
  type DescribeTopicsResponse,
  type ListOffsetsRequest,
  type ListOffsetsResponse,
  type MetadataResponse,
  type TopicDescription,
} from '../protocol/apis/index.ts';
import { ErrorCode, SluiceError } from '../protocol/errors.ts';
import { Cluster } from './cluster.ts';
import type { Connection } from './connection.ts';

export interface AdminOptions {
  bootstrap: string | string[];
  clientId?: string;
  requestTimeoutMs?: number;
}

export interface NewTopic {
  topic: string;
  partitions: number;
  /** Default 1. */
  replicationFactor?: number;
  /** Topic config overrides; values are strings on the wire, numbers are converted. */
  configs?: Record<string, string | number>;
}

/** 'earliest' (log start), 'latest' (log end: the next offset), or a timestamp in ms. */
export type OffsetSpec = 'earliest' | 'latest' | number;

export class Admin {
  readonly cluster: Cluster;

  constructor(options: AdminOptions) {
    this.cluster = new Cluster({ bootstrap: options.bootstrap, clientId: options.clientId ?? 'sluice-admin', requestTimeoutMs: options.requestTimeoutMs ?? 30_000 });
  }

  /** Creates topics; throws the first per-topic error (e.g. TOPIC_ALREADY_EXISTS). */
  async createTopics(topics: readonly NewTopic[], opts: { validateOnly?: boolean } = {}): Promise<void> {
    const req: CreateTopicsRequest = {
      topics: topics.map((t) => ({
        topic: t.topic,
        partitions: t.partitions,
        replicationFactor: t.replicationFactor ?? 1,
        configs: Object.fromEntries(Object.entries(t.configs ?? {}).map(([k, v]) => [k, String(v)])),
      })),
      validateOnly: opts.validateOnly ?? false,
    };
    const res = await (await this.controller()).send<CreateTopicsResponse>(ApiKey.CREATE_TOPICS, req);
    for (const r of res.control.topics) {
      if (r.errorCode !== ErrorCode.NONE) throw new SluiceError(r.errorCode as ErrorCode, `topic ${r.topic}${r.errorMessage ? `: ${r.errorMessage}` : ''}`);
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

  async close(): Promise<void> {
    this.cluster.close();
  }

  /** The controller (topic changes go there); any broker when metadata does not name one. */
  private async controller(): Promise<Connection> {
    const md = await this.cluster.refreshMetadata([]);
    if (md.controllerId >= 0 && md.brokers.some((b) => b.nodeId === md.controllerId)) return this.cluster.connectionToNode(md.controllerId);
    return this.cluster.anyConnection();
  }
}
