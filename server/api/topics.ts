/** Topic administration: CreateTopics, CreatePartitions, DeleteTopics, DescribeTopics. */
import type { AlterTopicConfigsRequest, AlterTopicConfigsResponse } from '../../protocol/apis/alter-topic-configs.ts';
import type { CreatePartitionsRequest, CreatePartitionsResponse } from '../../protocol/apis/create-partitions.ts';
import type { CreateTopicResult, CreateTopicsRequest, CreateTopicsResponse } from '../../protocol/apis/create-topics.ts';
import type { DeleteTopicsRequest, DeleteTopicsResponse } from '../../protocol/apis/delete-topics.ts';
import type { DescribeTopicsRequest, DescribeTopicsResponse, TopicDescription } from '../../protocol/apis/describe-topics.ts';
import { ErrorCode, SluiceError } from '../../protocol/errors.ts';
import type { HandlerResult } from '../network/reply.ts';
import type { BrokerContext } from './context.ts';

function codeOf(e: unknown): { errorCode: number; errorMessage: string } {
  if (e instanceof SluiceError) return { errorCode: e.code, errorMessage: e.message };
  throw e;
}

/** Topic changes are the controller's: another broker answers NOT_CONTROLLER. */
function checkController(ctx: BrokerContext): void {
  if (!ctx.controller.active) {
    throw new SluiceError(ErrorCode.NOT_CONTROLLER, `broker ${ctx.config.brokerId} is not the controller (${ctx.store.controller()?.brokerId ?? 'none elected'})`);
  }
}

export async function handleCreateTopics(ctx: BrokerContext, req: CreateTopicsRequest): Promise<HandlerResult> {
  const topics: CreateTopicResult[] = [];
  for (const t of req.topics) {
    try {
      checkController(ctx);
      await ctx.topics.create(t.topic, t.partitions, t.replicationFactor, t.configs, req.validateOnly);
      topics.push({ topic: t.topic, errorCode: 0, errorMessage: null });
    } catch (e) {
      topics.push({ topic: t.topic, ...codeOf(e) });
    }
  }
  const response: CreateTopicsResponse = { topics };
  return { control: response };
}

export async function handleCreatePartitions(ctx: BrokerContext, req: CreatePartitionsRequest): Promise<HandlerResult> {
  const response: CreatePartitionsResponse = { topics: [] };
  for (const t of req.topics) {
    try {
      checkController(ctx);
      await ctx.topics.addPartitions(t.topic, t.count, req.validateOnly);
      response.topics.push({ topic: t.topic, errorCode: 0, errorMessage: null });
    } catch (e) {
      response.topics.push({ topic: t.topic, ...codeOf(e) });
    }
  }
  return { control: response };
}

/** SPEC §6.30: per topic, in request order; each topic's change is applied whole or not at all. */
export async function handleAlterTopicConfigs(ctx: BrokerContext, req: AlterTopicConfigsRequest): Promise<HandlerResult> {
  const response: AlterTopicConfigsResponse = { topics: [] };
  for (const t of req.topics) {
    try {
      checkController(ctx);
      await ctx.topics.alterConfigs(t.topic, t.set, t.delete, req.validateOnly);
      response.topics.push({ topic: t.topic, errorCode: 0, errorMessage: null });
    } catch (e) {
      response.topics.push({ topic: t.topic, ...codeOf(e) });
    }
  }
  return { control: response };
}

export async function handleDeleteTopics(ctx: BrokerContext, req: DeleteTopicsRequest): Promise<HandlerResult> {
  const response: DeleteTopicsResponse = { topics: [] };
  for (const name of req.topics) {
    try {
      checkController(ctx);
      await ctx.topics.delete(name);
      response.topics.push({ topic: name, errorCode: 0 });
    } catch (e) {
      response.topics.push({ topic: name, errorCode: codeOf(e).errorCode });
    }
  }
  return { control: response };
}

export function handleDescribeTopics(ctx: BrokerContext, req: DescribeTopicsRequest): HandlerResult {
  const names = req.topics ?? ctx.topics.names();
  const topics: TopicDescription[] = names.map((name) => {
    const t = ctx.topics.get(name);
    if (!t) return { topic: name, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, configs: {}, partitions: [] };
    return {
      topic: name,
      errorCode: 0,
      configs: ctx.topics.configStrings(name),
      // Log figures of the replicas this broker holds; -1 for partitions held elsewhere.
      partitions: Array.from({ length: t.record.partitions }, (_, partition) => {
        const p = t.partitions.get(partition);
        const log = p?.log;
        return {
          partition,
          // What consumers may fetch from: the archive's start when there is one (SPEC §7.10).
          logStartOffset: p?.consumerLogStartOffset ?? -1,
          logEndOffset: log?.logEndOffset ?? -1,
          sizeBytes: log?.sizeBytes ?? -1,
          segments: log?.segmentCount ?? -1,
        };
      }),
    };
  });
  const response: DescribeTopicsResponse = { topics };
  return { control: response };
}
