/**
 * DescribeArchive (SPEC §6.27): tiered-storage status of the partitions this broker holds.
 * Read-only, from memory (PartitionArchive.status(): no store or metadata call), so it answers
 * at once even when the archive store is down (its lastError says so).
 */
import { ErrorCode } from '../../protocol/errors.ts';
import { DESCRIBE_ARCHIVE_TOPICS_MAX, type ArchiveTopicStatus, type DescribeArchiveRequest, type DescribeArchiveResponse } from '../../protocol/apis/describe-archive.ts';
import { isInternalTopic } from '../partition/topic-names.ts';
import type { HandlerResult } from '../network/reply.ts';
import type { BrokerContext } from './context.ts';

export function handleDescribeArchive(ctx: BrokerContext, req: DescribeArchiveRequest): HandlerResult {
  if (req.topics && req.topics.length > DESCRIBE_ARCHIVE_TOPICS_MAX) {
    return { errorCode: ErrorCode.MALFORMED_REQUEST, control: { message: `topics: ${req.topics.length} entries, at most ${DESCRIBE_ARCHIVE_TOPICS_MAX}` } };
  }
  const archive = ctx.archive ?? null;
  const names = req.topics ?? ctx.topics.names().filter((n) => !isInternalTopic(n));
  const topics: ArchiveTopicStatus[] = names.map((name) => {
    const t = ctx.topics.get(name);
    if (!t) return { topic: name, topicId: '', errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, archiveEnabled: false, partitions: [] };
    const partitions = [...t.partitions.values()]
      .sort((a, b) => a.partition - b.partition)
      .map((p) => {
        const s = p.archive?.status();
        const log = p.log;
        return {
          partition: p.partition,
          leader: p.isLeader,
          localStartOffset: log.logStartOffset,
          localEndOffset: log.logEndOffset,
          highWatermark: log.highWatermark,
          archiveStartOffset: s?.archiveStartOffset ?? -1,
          archiveEndOffset: s?.archiveEndOffset ?? -1,
          archivedBytes: s?.archivedBytes ?? 0,
          archivedSegments: s?.archivedSegments ?? 0,
          lagBytes: s?.lagBytes ?? 0,
          lagSegments: s?.lagSegments ?? 0,
          lastError: s?.lastError ?? '',
          failures: s?.failures ?? 0,
        };
      });
    // The id names the topic's folder in the store (SPEC §7.10): a tool reading a bucket needs it.
    return { topic: name, topicId: t.record.id, errorCode: ErrorCode.NONE, archiveEnabled: t.config.archiveEnable, partitions };
  });
  const st = archive?.stats;
  const response: DescribeArchiveResponse = {
    brokerId: ctx.config.brokerId,
    storeKind: archive?.store.kind ?? '',
    storeDescription: archive?.store.describe() ?? '',
    counters: {
      bytesUploaded: st?.bytesUploaded ?? 0,
      segmentsUploaded: st?.segmentsUploaded ?? 0,
      uploadFailures: st?.uploadFailures ?? 0,
      segmentsDeleted: st?.segmentsDeleted ?? 0,
      bytesRead: st?.bytesRead ?? 0,
      readFailures: st?.readFailures ?? 0,
    },
    topics,
  };
  return { control: response };
}
