/** OffsetForLeaderEpoch: where a leader epoch ended in this leader's log (for follower truncation). */
import type { OffsetForLeaderEpochPartition, OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse } from '../../protocol/apis/offset-for-leader-epoch.ts';
import { SluiceError } from '../../protocol/errors.ts';
import type { HandlerResult } from '../network/reply.ts';
import type { BrokerContext } from './context.ts';

export function handleOffsetForLeaderEpoch(ctx: BrokerContext, req: OffsetForLeaderEpochRequest): HandlerResult {
  const response: OffsetForLeaderEpochResponse = { topics: [] };
  for (const t of req.topics) {
    const partitions: OffsetForLeaderEpochPartition[] = [];
    for (const p of t.partitions) {
      try {
        const r = ctx.topics.leaderPartition(t.topic, p.partition, p.currentLeaderEpoch);
        const end = r.log.endOffsetForEpoch(p.leaderEpoch);
        partitions.push({ partition: p.partition, errorCode: 0, leaderEpoch: end.epoch, endOffset: end.endOffset });
      } catch (e) {
        if (!(e instanceof SluiceError)) throw e;
        partitions.push({ partition: p.partition, errorCode: e.code, leaderEpoch: -1, endOffset: -1 });
      }
    }
    response.topics.push({ topic: t.topic, partitions });
  }
  return { control: response };
}
