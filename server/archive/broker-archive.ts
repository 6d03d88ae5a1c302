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
import { ArchiveReader } from './archived-reader.ts';
import { LocalDirStore } from './local-dir-store.ts';
import { UploadLimiter } from './upload-limiter.ts';

export interface ArchiveSettings {
  brokerId: number;
  checkIntervalMs: number;
  /** Longest wait between failed attempts (the backoff doubles from checkIntervalMs). */
  retryBackoffMsMax: number;
  /**
   * How often a follower reads its partitions' archive states (for its local retention): the
   * retention check interval, since deletion happens no more often (one metadata read per
   * partition per interval, not per upload check).
   */
  followerPollIntervalMs: number;
}

export const ARCHIVE_RETRY_BACKOFF_MS_MAX = 30_000;

export class BrokerArchive {
  readonly stats = new ArchiveStats();
  readonly limiter: UploadLimiter;
  private closed = false;
  /** Reads archived segments back for consumers (SPEC §7.10, reading), with the broker-wide chunk cache. */
  readonly reader: ArchiveReader;

  constructor(
    readonly store: ArchiveStore,
    readonly metadata: ClusterMetadataStore,
    readonly settings: ArchiveSettings,
    readonly log: Logger,
    limits: { uploadConcurrency: number; uploadBytesPerSec: number },
    /** The read path (archived-reader.ts): chunk cache size and read timeout; defaults when omitted. */
    read: { cacheBytes?: number; timeoutMs?: number } = {},
  ) {
    this.limiter = new UploadLimiter(limits.uploadConcurrency, limits.uploadBytesPerSec);
    this.reader = new ArchiveReader(store, { cacheBytes: read.cacheBytes, readTimeoutMs: read.timeoutMs, stats: this.stats });
  }

  /**
   * A deleted topic's archive: every object under `<topic>-<topicId>/`, manifests first (a
   * crash part way leaves only unreadable orphans: the topic id in the path means no later
   * topic of the same name ever looks there). Retried a few times with a backoff; a store that
   * stays down leaves the objects behind (logged), never fails the deletion.
   */
  async deleteTopicArchive(topic: string, topicId: string): Promise<void> {
    const prefix = `${topic}-${topicId}/`;
    for (let attempt = 1; attempt <= TOPIC_DELETE_ATTEMPTS_MAX && !this.closed; attempt++) {
      try {
        const objects = await this.store.list(prefix);
        objects.sort((a, b) => Number(b.key.endsWith('.manifest')) - Number(a.key.endsWith('.manifest')));
        for (const o of objects) await this.store.delete(o.key);
        if (objects.length > 0) this.log.info('archive of a deleted topic removed', { topic, topicId, objects: objects.length });
        return;
      } catch (e) {
        if (attempt === TOPIC_DELETE_ATTEMPTS_MAX) {
          this.log.warn('could not remove the archive of a deleted topic; its objects stay (never read again)', { topic, topicId, prefix, error: e as Error });
          return;
        }
        await new Promise((r) => setTimeout(r, Math.min(this.settings.checkIntervalMs * 2 ** attempt, this.settings.retryBackoffMsMax)).unref());
      }
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.store.close();
  }
}

/** Attempts to remove a deleted topic's archive before giving up (and logging). */
const TOPIC_DELETE_ATTEMPTS_MAX = 5;

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
