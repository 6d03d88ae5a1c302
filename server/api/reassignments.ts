/** AlterPartitionReassignments: the controller starts or cancels replica moves. */
import type { AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse } from '../../protocol/apis/alter-partition-reassignments.ts';
import { SluiceError } from '../../protocol/errors.ts';
import type { HandlerResult } from '../network/reply.ts';
import type { BrokerContext } from './context.ts';

export async function handleAlterPartitionReassignments(ctx: BrokerContext, req: AlterPartitionReassignmentsRequest): Promise<HandlerResult> {
  const response: AlterPartitionReassignmentsResponse = { partitions: [] };
  for (const p of req.partitions) {
    try {
      await ctx.controller.reassign(p.topic, p.partition, p.replicas, p.throttleBytesPerSec);
      response.partitions.push({ topic: p.topic, partition: p.partition, errorCode: 0, errorMessage: null });
    } catch (e) {
      if (!(e instanceof SluiceError)) throw e;
      response.partitions.push({ topic: p.topic, partition: p.partition, errorCode: e.code, errorMessage: e.message });
    }
  }
  return { control: response };
}
