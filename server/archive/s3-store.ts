/**
 * The archive store in any S3-compatible object store (`--archive-s3-bucket`), through
 * @aws-sdk/client-s3: AWS S3, MinIO, Ceph RGW, s3rver in tests. Objects live under
 * `<prefix><key>` in one bucket.
 *
 * Invariants (archive-store.ts's contract):
 * - Visibility is whole-object: every write is one PutObject (S3 makes an object visible only
 *   when its PUT completes, and a PUT of an existing key replaces it whole). A segment is at
 *   most segment.bytes (≤ 1 GiB), below S3's 5 GiB single-PUT limit, so no multipart upload
 *   (whose abandoned parts would need their own sweep) is needed.
 * - Every call is bounded in time: the HTTP handler has a connection timeout and a socket
 *   idle timeout (a paused server), the SDK retries at most `maxAttempts` times, and the
 *   small calls (everything but putFile, whose duration grows with the segment and the
 *   throttle) also carry an overall deadline. A failure is ArchiveStoreError: notFound for a
 *   missing key, retryable for network errors, timeouts, throttling and 5xx.
 * - putFile streams the file (never held whole in memory): a Readable that awaits the
 *   bandwidth pacer before reading each chunk. A streamed body cannot be replayed, so the
 *   SDK does not retry putFile; the uploader retries the whole object (same key: idempotent).
 * - Checksums: requestChecksumCalculation/responseChecksumValidation 'WHEN_REQUIRED', because
 *   several S3-compatible servers (s3rver among them) do not understand the SDK's default
 *   CRC trailers. The segment's own CRC-32 is in its manifest (segment-manifest.ts).
 */
import fs from 'node:fs';
import { Readable } from 'node:stream';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsCommand,
  PutObjectCommand,
  S3Client,
  type ListObjectsCommandOutput,
} from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { ArchiveStoreError, type ArchiveObjectInfo, type ArchiveStore, type UploadPacer } from './archive-store.ts';

/** Read unit of putFile: one pace() call per chunk. */
const UPLOAD_CHUNK_BYTES = 1024 * 1024;
/** A listing walks pages of this many keys by default (S3's maximum). */
const LIST_PAGE_KEYS = 1000;
/** A partition's prefix holds a few files per segment; more pages than this is not ours. */
const LIST_PAGES_MAX = 10_000;

export interface S3StoreOptions {
  /** e.g. http://127.0.0.1:9000; undefined = AWS's endpoint for the region. */
  endpoint?: string;
  bucket: string;
  /** Prepended to every key, e.g. 'sluice/'; '' for the bucket root. */
  prefix?: string;
  region?: string;
  /** Path-style addressing (http://host/bucket/key), what self-hosted stores want. */
  pathStyle?: boolean;
  /** Explicit credentials; otherwise the SDK's default chain (AWS_ACCESS_KEY_ID, profiles, ...). */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** TCP connect timeout. */
  connectTimeoutMs?: number;
  /** Socket idle timeout: a server that stops answering fails the call after this. */
  requestTimeoutMs?: number;
  /** Overall deadline of a call other than putFile, retries included. */
  callTimeoutMs?: number;
  /** SDK attempts per call (1 = no retry). */
  maxAttempts?: number;
  /** Keys per listing page (1..1000); tests page with fewer. */
  listPageKeys?: number;
}

export class S3Store implements ArchiveStore {
  readonly kind = 's3' as const;
  private readonly client: S3Client;
  private readonly bucket: string;
  private readonly prefix: string;
  private readonly endpoint: string | undefined;
  private readonly callTimeoutMs: number;
  private readonly listPageKeys: number;

  constructor(opts: S3StoreOptions) {
    if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(opts.bucket)) throw new ArchiveStoreError(`bad S3 bucket name ${JSON.stringify(opts.bucket)}`, false);
    this.bucket = opts.bucket;
    this.prefix = opts.prefix ?? '';
    this.endpoint = opts.endpoint;
    this.callTimeoutMs = opts.callTimeoutMs ?? 30_000;
    this.listPageKeys = Math.max(1, Math.min(LIST_PAGE_KEYS, opts.listPageKeys ?? LIST_PAGE_KEYS));
    // The SDK warns once per process that its 2027 releases need Node 22: not ours to print
    // in the broker's log or a CLI's output (an operator can still set the variable to false).
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
    this.client = new S3Client({
      endpoint: opts.endpoint,
      region: opts.region ?? 'us-east-1',
      forcePathStyle: opts.pathStyle ?? opts.endpoint !== undefined,
      credentials: opts.credentials,
      maxAttempts: opts.maxAttempts ?? 3,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      requestHandler: new NodeHttpHandler({
        connectionTimeout: opts.connectTimeoutMs ?? 5_000,
        requestTimeout: opts.requestTimeoutMs ?? 30_000,
        throwOnRequestTimeout: true,
      }),
    });
  }

  describe(): string {
    return `${this.endpoint ?? 'aws'}/${this.bucket}/${this.prefix}`;
  }

  async put(key: string, body: Uint8Array): Promise<void> {
    await this.call(key, (signal) => this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: this.k(key), Body: body, ContentLength: body.length }), { abortSignal: signal }));
  }

  async putFile(key: string, filePath: string, sizeBytes: number, pace?: UploadPacer): Promise<void> {
    let fh: fs.promises.FileHandle;
    try {
      fh = await fs.promises.open(filePath, 'r');
    } catch (e) {
      throw new ArchiveStoreError(`${filePath}: ${(e as Error).message}`, false, false, { cause: e });
    }
    const buf = Buffer.allocUnsafe(Math.min(UPLOAD_CHUNK_BYTES, Math.max(1, sizeBytes)));
    let pos = 0;
    // The first failure of the body (the pacer refused: the segment went away; the file is
    // short) is what putFile reports, whatever the HTTP request makes of the aborted stream.
    let failure: Error | null = null;
    const abort = new AbortController();
    // A pull stream: the next chunk is read only when the HTTP request wants more, and only
    // after the pacer allows it, so the throttle paces the network, not a buffer.
    const body = new Readable({
      highWaterMark: 0,
      read() {
        if (pos >= sizeBytes) {
          this.push(null);
          return;
        }
        const want = Math.min(buf.length, sizeBytes - pos);
        (async () => {
          if (pace) await pace(want);
          const chunk = Buffer.allocUnsafe(want);
          const { bytesRead } = await fh.read(chunk, 0, want, pos);
          if (bytesRead === 0) throw new ArchiveStoreError(`${filePath} ended at ${pos} bytes, ${sizeBytes} expected`, false);
          pos += bytesRead;
          this.push(bytesRead === want ? chunk : chunk.subarray(0, bytesRead));
        })().catch((e) => {
          failure ??= e as Error;
          abort.abort(failure);
          this.destroy(failure);
        });
      },
    });
    // The request may have finished with the stream before it fails: no uncaught 'error'.
    body.on('error', () => {});
    try {
      await this.call(key, () => this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: this.k(key), Body: body, ContentLength: sizeBytes }), { abortSignal: abort.signal }), false);
      if (failure) throw failure;
    } catch (e) {
      throw failure ?? e;
    } finally {
      body.destroy();
      await fh.close();
    }
  }

  async get(key: string): Promise<Uint8Array> {
    return this.call(key, async (signal) => {
      const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.k(key) }), { abortSignal: signal });
      return out.Body ? await out.Body.transformToByteArray() : new Uint8Array(0);
    });
  }

  async getRange(key: string, start: number, endExclusive: number): Promise<Uint8Array> {
    if (!(Number.isSafeInteger(start) && start >= 0 && Number.isSafeInteger(endExclusive) && endExclusive >= start)) throw new ArchiveStoreError(`bad range ${start}-${endExclusive} of ${key}`, false);
    if (endExclusive === start) {
      // An empty range is not expressible in HTTP; still tell a missing object apart.
      if ((await this.head(key)) === null) throw new ArchiveStoreError(`archive object ${key} not found`, false, true);
      return new Uint8Array(0);
    }
    try {
      return await this.call(key, async (signal) => {
        const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.k(key), Range: `bytes=${start}-${endExclusive - 1}` }), { abortSignal: signal });
        const bytes = out.Body ? await out.Body.transformToByteArray() : new Uint8Array(0);
        // A server that ignores Range answers 200 with the whole object.
        if (out.ContentRange === undefined && bytes.length > endExclusive - start) return bytes.subarray(start, endExclusive);
        return bytes;
      });
    } catch (e) {
      // 416: the range starts at or past the end: "shorter only when the object is shorter".
      if (e instanceof ArchiveStoreError && /InvalidRange|416/.test(e.message)) return new Uint8Array(0);
      throw e;
    }
  }

  async head(key: string): Promise<ArchiveObjectInfo | null> {
    try {
      return await this.call(key, async (signal) => {
        const out = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.k(key) }), { abortSignal: signal });
        return { key, sizeBytes: out.ContentLength ?? 0 };
      });
    } catch (e) {
      if (e instanceof ArchiveStoreError && e.notFound) return null;
      throw e;
    }
  }

  async list(prefix: string): Promise<ArchiveObjectInfo[]> {
    const out: ArchiveObjectInfo[] = [];
    // ListObjects (v1) with Marker = the last key seen: every S3-compatible server pages it
    // the same way, while ListObjectsV2's continuation tokens are broken on some (s3rver
    // makes them with DES, which OpenSSL 3 refuses: every truncated V2 listing fails).
    let marker: string | undefined;
    for (let page = 0; page < LIST_PAGES_MAX; page++) {
      const res: ListObjectsCommandOutput = await this.call(prefix, (signal) =>
        this.client.send(new ListObjectsCommand({ Bucket: this.bucket, Prefix: this.k(prefix), MaxKeys: this.listPageKeys, Marker: marker }), { abortSignal: signal }),
      );
      const contents = res.Contents ?? [];
      for (const o of contents) {
        if (o.Key === undefined || !o.Key.startsWith(this.prefix)) continue;
        out.push({ key: o.Key.slice(this.prefix.length), sizeBytes: o.Size ?? 0 });
      }
      const last = contents[contents.length - 1]?.Key;
      if (!res.IsTruncated || last === undefined) return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
      marker = last;
    }
    throw new ArchiveStoreError(`listing ${prefix} exceeds ${LIST_PAGES_MAX} pages`, false);
  }

  async delete(key: string): Promise<void> {
    try {
      await this.call(key, (signal) => this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.k(key) }), { abortSignal: signal }));
    } catch (e) {
      if (!(e instanceof ArchiveStoreError && e.notFound)) throw e;
    }
  }

  async close(): Promise<void> {
    this.client.destroy();
  }

  private k(key: string): string {
    if (key.length === 0 || key.includes('\\') || key.includes('\0') || key.split('/').some((p) => p === '.' || p === '..')) {
      throw new ArchiveStoreError(`bad archive key ${JSON.stringify(key)}`, false);
    }
    return this.prefix + key;
  }

  private async call<T>(key: string, f: (signal: AbortSignal | undefined) => Promise<T>, deadline = true): Promise<T> {
    const signal = deadline ? AbortSignal.timeout(this.callTimeoutMs) : undefined;
    try {
      return await f(signal);
    } catch (e) {
      throw toStoreError(key, e, signal?.aborted === true);
    }
  }
}

/** Not found, retryable (network, timeout, throttling, 5xx) or a refusal that will repeat. */
function toStoreError(key: string, e: unknown, timedOut: boolean): ArchiveStoreError {
  if (e instanceof ArchiveStoreError) return e;
  const err = e as { name?: string; code?: string; message?: string; $metadata?: { httpStatusCode?: number }; $retryable?: unknown };
  const status = err.$metadata?.httpStatusCode;
  const name = err.name ?? 'Error';
  const what = `archive object ${key}: ${name}${status ? ` (HTTP ${status})` : ''}: ${err.message ?? String(e)}`;
  if (timedOut) return new ArchiveStoreError(`${what} (timed out)`, true, false, { cause: e });
  if (name === 'NoSuchKey' || name === 'NotFound' || (status === 404 && name !== 'NoSuchBucket')) {
    return new ArchiveStoreError(`archive object ${key} not found`, false, true, { cause: e });
  }
  if (status === 416) return new ArchiveStoreError(`${what} 416 InvalidRange`, false, false, { cause: e });
  const retryable =
    status === undefined || // no HTTP answer: connection refused/reset, DNS, timeout
    status >= 500 ||
    status === 429 ||
    status === 408 ||
    err.$retryable !== undefined ||
    /Timeout|ECONN|EPIPE|socket|network/i.test(`${name} ${err.code ?? ''} ${err.message ?? ''}`);
  return new ArchiveStoreError(what, retryable, false, { cause: e });
}
