/** ListOffsets: earliest (-2), latest (-1) or the first offset at or after a timestamp. */
import { EARLIEST_TIMESTAMP, LATEST_TIMESTAMP, type ListOffsetsPartitionResult, type ListOffsetsRequest, type ListOffsetsResponse } from '../../protocol/apis/list-offsets.ts';
import { ErrorCode, SluiceError } from '../../protocol/errors.ts';
import type { HandlerResult } from '../network/reply.ts';
import { isInternalTopic } from '../topic-manager.ts';
import type { BrokerContext } from './context.ts';
import { checkEntries, ENTRIES_PER_TURN_MAX, LIST_OFFSETS_PARTITIONS_MAX, partitionEntries, yieldToEventLoop } from './request-limits.ts';

export async function handleListOffsets(ctx: BrokerContext, req: ListOffsetsRequest): Promise<HandlerResult> {
  checkEntries('ListOffsets', 'partitions', partitionEntries(req.topics), LIST_OFFSETS_PARTITIONS_MAX);
  const response: ListOffsetsResponse = { topics: [] };
  let sinceYield = 0;
  for (const t of req.topics) {
    const partitions: ListOffsetsPartitionResult[] = [];
    for (const p of t.partitions) {
      // Other clients get served between slices of a large request.
      if (++sinceYield >= ENTRIES_PER_TURN_MAX) {
        sinceYield = 0;
        await yieldToEventLoop();
      }
      const log = ctx.topics.partition(t.topic, p.partition);
      const r: ListOffsetsPartitionResult = { partition: p.partition, errorCode: 0, offset: -1, timestamp: -1 };
      partitions.push(r);
      const count = ctx.topics.partitionCount(t.topic);
      if (count === undefined || p.partition < 0 || p.partition >= count) {
        r.errorCode = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION;
      } else if (!log) {
        r.errorCode = ErrorCode.NOT_LEADER;
      } else if (isInternalTopic(t.topic)) {
        r.errorCode = ErrorCode.INVALID_TOPIC;
      } else if (!ctx.replicas.isLeader(t.topic, p.partition)) {
        r.errorCode = ErrorCode.NOT_LEADER;
      } else if (p.timestamp === EARLIEST_TIMESTAMP) {
        r.offset = log.logStartOffset;
      } else if (p.timestamp === LATEST_TIMESTAMP) {
        // What consumers can read up to: the high watermark (the log end on a single broker).
        r.offset = log.highWatermark;
      } else if (p.timestamp < 0) {
        r.errorCode = ErrorCode.MALFORMED_REQUEST;
      } else {
        try {
          const found = await log.offsetForTimestamp(p.timestamp);
          if (found && found.offset < log.highWatermark) {
            r.offset = found.offset;
            r.timestamp = found.timestamp;
          } else {
            r.offset = log.highWatermark;
          }
        } catch (e) {
          if (!(e instanceof SluiceError)) throw e;
          r.errorCode = e.code;
        }
      }
    }
    response.topics.push({ topic: t.topic, partitions });
  }
  return { control: response };
}
