/**
 * ArchiveStore: the object store that holds a partition's old segments once they leave the
 * broker's disk (tiered storage, SPEC §7.10). Two implementations share this contract and the
 * contract test (test/server/archive/archive-store.contract.ts): a local directory
 * (local-dir-store.ts: a single machine, or an NFS/HDFS gateway mounted there) and any
 * S3-compatible store (s3-store.ts, @aws-sdk/client-s3).
 *
 * Contract every implementation keeps:
 * - An object is visible whole or not at all: a get, head or list never sees a partly written
 *   object, also across a crash of the writer (local: temp file + fsync + rename; S3: a PUT or
 *   a completed multipart upload is atomic by the service's own contract).
 * - put of an existing key replaces it whole (uploads are idempotent: a retry after a crash
 *   writes the same key again).
 * - delete of a missing key succeeds (retention and orphan sweeps retry freely).
 * - Keys are '/'-separated ASCII paths from archive-keys.ts; implementations never interpret
 *   them beyond that (the local store maps '/' to directories and refuses '..').
 * - Every call has a bounded duration: implementations time out and throw
 *   ArchiveStoreError(retryable) rather than hang, so an unreachable store stops uploads and
 *   archive reads with an error, never the broker.
 * - A missing object is ArchiveStoreError with notFound set, so callers can tell "not there"
 *   from "the store is down".
 */

export class ArchiveStoreError extends Error {
  constructor(
    message: string,
    /** The store may answer later (network, timeout, 5xx); false for refusals that will repeat. */
    readonly retryable: boolean,
    readonly notFound = false,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'ArchiveStoreError';
  }
}

export interface ArchiveObjectInfo {
  key: string;
  sizeBytes: number;
}

/** Called with each chunk's size before it is sent; resolves when the bandwidth throttle allows it. */
export type UploadPacer = (bytes: number) => Promise<void>;

export interface ArchiveStore {
  /** 'local' or 's3', for status output and logs. */
  readonly kind: 'local' | 's3';
  /** Where objects go (a directory, or endpoint/bucket/prefix), for status output and logs. */
  describe(): string;
  /** Stores bytes under key, atomically. */
  put(key: string, body: Uint8Array): Promise<void>;
  /**
   * Stores the first sizeBytes of a file under key, atomically, streaming (a segment can be
   * 1 GiB: it is never held in memory whole). pace, when given, is awaited before each chunk.
   */
  putFile(key: string, filePath: string, sizeBytes: number, pace?: UploadPacer): Promise<void>;
  /** The whole object. */
  get(key: string): Promise<Uint8Array>;
  /** Bytes [start, endExclusive) of the object; shorter only when the object is shorter. */
  getRange(key: string, start: number, endExclusive: number): Promise<Uint8Array>;
  /** The object's size, or null when it does not exist. */
  head(key: string): Promise<ArchiveObjectInfo | null>;
  /** Every object whose key starts with prefix, sorted by key. */
  list(prefix: string): Promise<ArchiveObjectInfo[]>;
  delete(key: string): Promise<void>;
  close(): Promise<void>;
}
