/** Metadata and ApiVersions: what a client asks before anything else. */
import { supportedVersions } from '../../protocol/api-keys.ts';
import type { ApiVersionsResponse } from '../../protocol/apis/api-versions.ts';
import type { MetadataRequest, MetadataResponse, TopicMetadata } from '../../protocol/apis/metadata.ts';
import { ErrorCode } from '../../protocol/errors.ts';
import type { HandlerResult } from '../network/reply.ts';
import type { BrokerContext } from './context.ts';

export const BROKER_VERSION = '0.1.0';

export function apiVersions(): ApiVersionsResponse {
  return {
    apis: Object.entries(supportedVersions).map(([key, v]) => ({ apiKey: Number(key), minVersion: v.min, maxVersion: v.max })),
    brokerVersion: BROKER_VERSION,
  };
}

export function handleApiVersions(): HandlerResult {
  return { control: apiVersions() };
}

export function handleMetadata(ctx: BrokerContext, req: MetadataRequest, clusterId: string): HandlerResult {
  const id = ctx.config.brokerId;
  const names = req.topics ?? ctx.topics.names();
  const topics: TopicMetadata[] = names.map((name) => {
    const t = ctx.topics.get(name);
    if (!t) return { topic: name, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, partitions: [] };
    return {
      topic: name,
      errorCode: 0,
      partitions: t.partitions.map((_, partition) => ({ partition, errorCode: 0, leader: id, leaderEpoch: 0, replicas: [id], isr: [id] })),
    };
  });
  const response: MetadataResponse = {
    clusterId,
    controllerId: id,
    brokers: [{ nodeId: id, host: ctx.config.advertisedHost, port: ctx.config.advertisedPort }],
    topics,
  };
  return { control: response };
}
