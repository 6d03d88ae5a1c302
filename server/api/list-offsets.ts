/** ListOffsets: earliest (-2), latest (-1) or the first offset at or after a timestamp. */
import { EARLIEST_TIMESTAMP, LATEST_TIMESTAMP, type ListOffsetsPartitionResult, type ListOffsetsRequest, type ListOffsetsResponse } from '../../protocol/apis/list-offsets.ts';
import { ErrorCode, SluiceError } from '../../protocol/errors.ts';
import type { PartitionLog } from '../log/partition-log.ts';
import type { HandlerResult } from '../network/reply.ts';
import type { Partition } from '../partition/partition.ts';
import type { BrokerContext } from './context.ts';
import { checkEntries, ENTRIES_PER_TURN_MAX, LIST_OFFSETS_PARTITIONS_MAX, partitionEntries, yieldToEventLoop } from './request-limits.ts';

export async function handleListOffsets(ctx: BrokerContext, req: ListOffsetsRequest): Promise<HandlerResult> {
  const isolation = req.isolationLevel ?? 0;
  if (isolation !== 0 && isolation !== 1) throw new SluiceError(ErrorCode.MALFORMED_REQUEST, `isolationLevel ${isolation} is neither 0 (read_uncommitted) nor 1 (read_committed)`);
  // read_committed: "the high watermark" of SPEC §6.8 reads as the last stable offset.
  const visibleEnd = isolation === 1 ? (log: PartitionLog) => log.lastStableOffset : (log: PartitionLog) => log.highWatermark;
  checkEntries('ListOffsets', 'partitions', partitionEntries(req.topics), LIST_OFFSETS_PARTITIONS_MAX);
  const response: ListOffsetsResponse = { topics: [] };
  // Archive lookups (SPEC §7.10) of all partitions of the request share one deadline.
  const archiveDeadlineMs = Date.now() + ctx.config.archiveReadTimeoutMs;
  let sinceYield = 0;
  for (const t of req.topics) {
    const partitions: ListOffsetsPartitionResult[] = [];
    for (const p of t.partitions) {
      // Other clients get served between slices of a large request.
      if (++sinceYield >= ENTRIES_PER_TURN_MAX) {
        sinceYield = 0;
        await yieldToEventLoop();
      }
      const r: ListOffsetsPartitionResult = { partition: p.partition, errorCode: 0, offset: -1, timestamp: -1 };
      partitions.push(r);
      let partition: Partition;
      try {
        // SPEC §6.8 order: unknown, internal, not the leader.
        partition = ctx.topics.servable('list-offsets', t.topic, p.partition);
      } catch (e) {
        if (!(e instanceof SluiceError)) throw e;
        r.errorCode = e.code;
        continue;
      }
      const log = partition.log;
      if (p.timestamp === EARLIEST_TIMESTAMP) {
        // The archive's start when the partition has one (SPEC §7.10); a new leader loading it: wait (bounded).
        try {
          r.offset = await partition.earliestOffset(archiveDeadlineMs);
        } catch (e) {
          if (!(e instanceof SluiceError)) throw e;
          r.errorCode = e.code;
        }
      } else if (p.timestamp === LATEST_TIMESTAMP) {
        // What consumers can read up to: the high watermark (the log end on a single broker).
        r.offset = visibleEnd(log);
      } else if (p.timestamp < 0) {
        r.errorCode = ErrorCode.MALFORMED_REQUEST;
      } else {
        try {
          // The archive first, then the local log (SPEC §7.10).
          const found = await partition.offsetForTimestamp(p.timestamp, archiveDeadlineMs);
          const end = visibleEnd(log);
          if (found && found.offset < end) {
            r.offset = found.offset;
            r.timestamp = found.timestamp;
          } else {
            r.offset = end;
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
