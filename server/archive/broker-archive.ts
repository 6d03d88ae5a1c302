/**
 * The archive as one broker runs it (SPEC §7.10): its store (a directory or an S3 bucket,
 * from the broker settings), the broker-wide upload limiter, the counters, and the metadata
 * store that holds every partition's archive state. Each archived partition gets a
 * PartitionArchive (partition-archive.ts) from forPartition(); the replica manager starts its
 * uploader on leadership and stops it on losing it.
 *
 * Invariants: one store per broker (both a directory and a bucket refuse to start, see
 * broker-config.ts); the S3 SDK is loaded only when a bucket is configured.
 */
import type { BrokerConfig } from '../config/broker-config.ts';
import type { Logger } from '../logger.ts';
import type { ClusterMetadataStore } from '../metadata/cluster-store.ts';
import type { ArchiveStore } from './archive-store.ts';
import { ArchiveStats } from './archive-stats.ts';
import { LocalDirStore } from './local-dir-store.ts';
import { UploadLimiter } from './upload-limiter.ts';

export interface ArchiveSettings {
  brokerId: number;
  checkIntervalMs: number;
  /** Longest wait between failed attempts (the backoff doubles from checkIntervalMs). */
  retryBackoffMsMax: number;
}

export const ARCHIVE_RETRY_BACKOFF_MS_MAX = 30_000;

export class BrokerArchive {
  readonly stats = new ArchiveStats();
  readonly limiter: UploadLimiter;

  constructor(
    readonly store: ArchiveStore,
    readonly metadata: ClusterMetadataStore,
    readonly settings: ArchiveSettings,
    readonly log: Logger,
    limits: { uploadConcurrency: number; uploadBytesPerSec: number },
  ) {
    this.limiter = new UploadLimiter(limits.uploadConcurrency, limits.uploadBytesPerSec);
  }

  async close(): Promise<void> {
    await this.store.close();
  }
}

/** The broker's archive store from its settings, or null when none is configured. */
export async function openArchiveStore(c: BrokerConfig): Promise<ArchiveStore | null> {
  if (c.archiveDir) return new LocalDirStore(c.archiveDir);
  if (c.archiveS3Bucket) {
    const { S3Store } = await import('./s3-store.ts');
    return new S3Store({
      endpoint: c.archiveS3Endpoint ?? undefined,
      bucket: c.archiveS3Bucket,
      prefix: c.archiveS3Prefix,
      region: c.archiveS3Region,
      pathStyle: c.archiveS3PathStyle === null ? undefined : c.archiveS3PathStyle === 'true',
    });
  }
  return null;
}
