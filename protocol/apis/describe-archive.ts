/**
 * DescribeArchive (key 26, SPEC §6.27): the answering broker's view of tiered storage (§7.10):
 * its archive store, its counters, and for each partition it holds of the asked topics the
 * local range, the archived range and the uploader's lag. A partition's figures are
 * authoritative on its leader (leader: true); a tool asks every broker and keeps those.
 */
import type { Schema } from '../schema.ts';

export interface DescribeArchiveRequest { topics: string[] | null }
export interface ArchivePartitionStatus {
  partition: number;
  leader: boolean;
  localStartOffset: number;
  localEndOffset: number;
  highWatermark: number;
  archiveStartOffset: number;
  archiveEndOffset: number;
  archivedBytes: number;
  archivedSegments: number;
  lagBytes: number;
  lagSegments: number;
  lastError: string;
  failures: number;
}
/** topicId: the topic's id, which names its folder in the archive store (`<topic>-<topicId>/`, SPEC §7.10); '' on error. */
export interface ArchiveTopicStatus { topic: string; topicId: string; errorCode: number; archiveEnabled: boolean; partitions: ArchivePartitionStatus[] }
export interface ArchiveCounters { bytesUploaded: number; segmentsUploaded: number; uploadFailures: number; segmentsDeleted: number; bytesRead: number; readFailures: number }
export interface DescribeArchiveResponse {
  brokerId: number;
  /** 'local', 's3', or '' when the broker has no archive store. */
  storeKind: string;
  storeDescription: string;
  counters: ArchiveCounters;
  topics: ArchiveTopicStatus[];
}

/** Topics one request may name. */
export const DESCRIBE_ARCHIVE_TOPICS_MAX = 10_000;

export const describeArchiveRequestSchema: Schema = { fields: { topics: { array: 'string', nullable: true } } };
export const describeArchiveResponseSchema: Schema = {
  fields: {
    brokerId: 'int',
    storeKind: 'string',
    storeDescription: 'string',
    counters: { fields: { bytesUploaded: 'int', segmentsUploaded: 'int', uploadFailures: 'int', segmentsDeleted: 'int', bytesRead: 'int', readFailures: 'int' } },
    topics: {
      array: {
        fields: {
          topic: 'string',
          topicId: 'string',
          errorCode: 'int',
          archiveEnabled: 'bool',
          partitions: {
            array: {
              fields: {
                partition: 'int',
                leader: 'bool',
                localStartOffset: 'int',
                localEndOffset: 'int',
                highWatermark: 'int',
                archiveStartOffset: 'int',
                archiveEndOffset: 'int',
                archivedBytes: 'int',
                archivedSegments: 'int',
                lagBytes: 'int',
                lagSegments: 'int',
                lastError: 'string',
                failures: 'int',
              },
            },
          },
        },
      },
    },
  },
};
