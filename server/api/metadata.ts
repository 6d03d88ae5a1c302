/** Metadata and ApiVersions: what a client asks before anything else. */
import { supportedVersions } from '../../protocol/api-keys.ts';
import type { ApiVersionsResponse } from '../../protocol/apis/api-versions.ts';
import type { MetadataRequest, MetadataResponse, TopicMetadata } from '../../protocol/apis/metadata.ts';
import { ErrorCode } from '../../protocol/errors.ts';
import { NO_LEADER } from '../metadata/cluster-store.ts';
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

/** Brokers are the live ones; each partition's leader and replicas come from the metadata store. */
export function handleMetadata(ctx: BrokerContext, req: MetadataRequest): HandlerResult {
  const names = req.topics ?? ctx.topics.names();
  const topics: TopicMetadata[] = names.map((name) => {
    const t = ctx.topics.get(name);
    if (!t) return { topic: name, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, partitions: [] };
    const partitions = [];
    for (let partition = 0; partition < t.record.partitions; partition++) {
      const s = ctx.topics.partitionState(name, partition);
      const leader = s?.leader ?? NO_LEADER;
      partitions.push({
        partition,
        errorCode: leader === NO_LEADER ? ErrorCode.NOT_LEADER : 0,
        leader,
        leaderEpoch: s?.leaderEpoch ?? -1,
        replicas: s?.replicas ?? [],
        isr: s?.isr ?? [],
      });
    }
    return { topic: name, errorCode: 0, partitions };
  });
  const response: MetadataResponse = {
    clusterId: ctx.store.clusterId(),
    controllerId: ctx.store.controller()?.brokerId ?? -1,
    brokers: ctx.store.liveBrokers().map((b) => ({ nodeId: b.brokerId, host: b.host, port: b.port })).sort((a, b) => a.nodeId - b.nodeId),
    topics,
  };
  return { control: response };
}
