/**
 * ArchiveReader: reads a partition's archived segments back (SPEC §7.10, reading), so that a
 * consumer fetching below the local log start receives the bytes a local read would have
 * given, with no change on its side. One per broker: it owns the chunk cache (chunk-cache.ts)
 * and the cache of archived segments' decoded indexes.
 *
 * How a read goes: ArchivedSegments (the partition's committed manifests) names the segment
 * holding the offset; its `.index` object is fetched once and decoded (OffsetIndex.decode);
 * the segment is then read through an ArchivedSegment, which gives log-reader.ts and
 * filtered-reader.ts the same view of it as of a local LogSegment, with `.log` bytes coming
 * from range reads through the chunk cache. So the very same code cuts archived bytes at whole
 * batches (maxBytes, "the first batch always whole", maxOffset), walks tag indexes, and scans
 * time indexes: byte-identical answers by construction, proven by the property test.
 *
 * Invariants:
 * - Only committed segments are read (they come from ArchivedSegments, which holds nothing
 *   else); archived objects never change under a key, so cached bytes and indexes are never
 *   stale (a deleted segment's entries age out of the caches).
 * - Every public read answers within readTimeoutMs: a store that does not answer, or fails,
 *   makes it throw SluiceError(ARCHIVE_UNAVAILABLE, retriable); the store call itself is
 *   bounded by the store (archive-store.ts). A damaged index object (it fails decode's checks)
 *   is STORAGE_ERROR naming the object.
 * - Memory: chunks <= the chunk cache's capacity; decoded indexes <= indexCacheBytesMax (LRU,
 *   counted by their object sizes); concurrent loads of one segment's index share one request.
 * - stats counts bytes fetched from the store and failed reads, into the broker's ArchiveStats
 *   (DescribeArchive reports them; issue 12's metrics export them).
 */
import { ErrorCode, SluiceError } from '../../protocol/errors.ts';
import { BATCH_HEADER_BYTES, decodeRecords } from '../../protocol/record-batch.ts';
import { assert } from '../assert.ts';
import { BatchCursor } from '../log/batch-cursor.ts';
import { filterSegment, newFilterState, type FilterableSegment, type FilterSeed, type FilterState, type TagFilter } from '../log/filtered-reader.ts';
import { readFromSegment, scanSegmentForTimestamp, type TimestampLookup } from '../log/log-reader.ts';
import { OffsetIndex } from '../log/offset-index.ts';
import { TagIndex, TAG_INDEX_SUFFIX } from '../log/tag-index.ts';
import { TimeIndex } from '../log/time-index.ts';
import { decodeTxnIndex, TXN_INDEX_SUFFIX, type AbortedTxn } from '../log/txn-index.ts';
import { segmentKey } from './archive-keys.ts';
import { ArchiveStoreError, type ArchiveStore } from './archive-store.ts';
import type { ArchivedSegments } from './archived-segments.ts';
import { ChunkCache, DEFAULT_CHUNK_BYTES } from './chunk-cache.ts';
import type { SegmentManifest } from './segment-manifest.ts';

export const DEFAULT_ARCHIVE_READ_CACHE_BYTES = 64 * 1024 * 1024;
/** Decoded archived indexes kept in memory (a 1 GiB segment's .index at 4 KiB intervals is 2 MiB). */
export const ARCHIVED_INDEXES_BYTES_MAX = 32 * 1024 * 1024;
/** How long one archive read may take before the fetch answers ARCHIVE_UNAVAILABLE. */
export const DEFAULT_ARCHIVE_READ_TIMEOUT_MS = 10_000;
/** Bytes read at a time when a missing .tags object is rebuilt from the archived .log. */
const TAG_REBUILD_WINDOW_BYTES = 1024 * 1024;
/** The index interval assumed for sizing the first read of an archived segment (only a read size, never the answer). */
const ARCHIVED_INDEX_INTERVAL_BYTES = 4096;

const EMPTY = Buffer.alloc(0);

export interface ArchiveReadStats {
  /** Bytes fetched from the store: .log chunks (cache misses) and index objects. */
  bytesRead: number;
  /** Reads that failed with ARCHIVE_UNAVAILABLE or STORAGE_ERROR. */
  readFailures: number;
}

export interface ArchiveReaderOptions {
  cacheBytes?: number;
  chunkBytes?: number;
  readTimeoutMs?: number;
  indexCacheBytesMax?: number;
  /** Where to count (the broker's ArchiveStats); default: counters of its own. */
  stats?: ArchiveReadStats;
}

/** An archived read's answer: records (possibly empty), and whether it reached the archive's end without meeting maxOffset. */
export interface ArchivedRead {
  records: Buffer;
  /** Nothing more in the archive at or after the offset below maxOffset: the read continues in the local log. */
  pastArchive: boolean;
}

/**
 * One archived segment, seen as log-reader.ts and filtered-reader.ts see a local LogSegment.
 * Its indexes are decoded when it is built; the tag index is loaded on the first filtered read
 * (ArchiveReader.loadTagIndex), before tagIndex() is called.
 */
export class ArchivedSegment implements FilterableSegment {
  readonly baseOffset: number;
  readonly logPath: string;
  readonly sizeBytes: number;
  readonly truncationCount = 0;
  readonly isOpen = true;
  readonly nextOffset: number;
  readonly largestTimestampMs: number;
  tags: TagIndex | null = null;

  constructor(
    readonly manifest: SegmentManifest,
    private readonly store: ArchiveStore,
    private readonly cache: ChunkCache,
    readonly offsetIndex: OffsetIndex,
    readonly timeIndex: TimeIndex,
  ) {
    this.baseOffset = manifest.baseOffset;
    this.logPath = keyOf(manifest, '.log');
    this.sizeBytes = manifest.sizeBytes;
    this.nextOffset = manifest.lastOffset + 1;
    this.largestTimestampMs = manifest.maxTimestampMs;
  }

  /** Bytes held by its decoded indexes (object sizes), for the index cache bound. */
  get memoryBytes(): number {
    return (this.manifest.files['.index'] ?? 0) + (this.manifest.files['.timeindex'] ?? 0) + (this.tags?.memoryBytes ?? 0);
  }

  read(position: number, lengthBytes: number): Promise<Buffer | null> {
    return this.cache.read(this.store, this.logPath, this.sizeBytes, position, lengthBytes);
  }

  tagIndex(): TagIndex {
    assert(this.tags !== null, () => `tag index of ${this.logPath} read before it was loaded`);
    return this.tags;
  }
}

export class ArchiveReader {
  readonly cache: ChunkCache;
  readonly readTimeoutMs: number;
  readonly stats: ArchiveReadStats;
  private readonly indexCacheBytesMax: number;
  /** Decoded segments by .log key, LRU (insertion order), with the bytes counted for each. */
  private readonly segments = new Map<string, { seg: ArchivedSegment; bytes: number }>();
  private segmentBytes = 0;
  private readonly loading = new Map<string, Promise<ArchivedSegment>>();
  /** Decoded .txnindex entries by .log key, sharing the index bound (28 bytes an entry on the wire). */
  private readonly txns = new Map<string, AbortedTxn[]>();

  constructor(
    readonly store: ArchiveStore,
    opts: ArchiveReaderOptions = {},
  ) {
    const stats = opts.stats ?? { bytesRead: 0, readFailures: 0 };
    this.stats = stats;
    this.cache = new ChunkCache(opts.cacheBytes ?? DEFAULT_ARCHIVE_READ_CACHE_BYTES, opts.chunkBytes ?? DEFAULT_CHUNK_BYTES, (n) => (stats.bytesRead += n));
    this.readTimeoutMs = opts.readTimeoutMs ?? DEFAULT_ARCHIVE_READ_TIMEOUT_MS;
    this.indexCacheBytesMax = opts.indexCacheBytesMax ?? ARCHIVED_INDEXES_BYTES_MAX;
  }

  /**
   * Whole batches from the archived segment holding fetchOffset (readLog's rules: one segment,
   * at most maxBytes with the first batch whole, only batches below maxOffset), passing on to
   * the next archived segment when one holds nothing at or after fetchOffset (offset gaps).
   * Throws ARCHIVE_UNAVAILABLE when the store fails or is slower than readTimeoutMs;
   * OFFSET_OUT_OF_RANGE when fetchOffset is not archived.
   */
  read(archive: ArchivedSegments, fetchOffset: number, maxBytes: number, maxOffset: number, deadlineMs?: number): Promise<ArchivedRead> {
    return this.bounded(`read at ${fetchOffset}`, deadlineMs, async () => {
      const list = archive.all();
      let i = this.indexOf(archive, fetchOffset);
      for (; i < list.length && list[i]!.baseOffset < maxOffset; i++) {
        const seg = await this.segment(list[i]!);
        const records = await readFromSegment(seg, fetchOffset, Math.max(0, maxBytes), maxOffset, ARCHIVED_INDEX_INTERVAL_BYTES);
        assert(records !== null, 'archived segments are never cut');
        if (records.length > 0) return { records, pastArchive: false };
        // Nothing at or after fetchOffset below maxOffset here: a gap, or maxOffset was reached.
        if (seg.nextOffset >= maxOffset) return { records: EMPTY, pastArchive: false };
      }
      return { records: EMPTY, pastArchive: i >= list.length };
    });
  }

  /**
   * The archive's share of a filtered read (filtered-reader.ts's rules, the same state walking
   * the archived segments from fetchOffset). The caller goes on in the local log with the
   * returned state as seed when !state.stop and pastArchive.
   */
  readFiltered(archive: ArchivedSegments, fetchOffset: number, maxBytes: number, maxOffset: number, filter: TagFilter, deadlineMs?: number): Promise<{ state: FilterState; pastArchive: boolean }> {
    return this.bounded(`filtered read at ${fetchOffset}`, deadlineMs, async () => {
      const st = newFilterState(fetchOffset, maxOffset, maxBytes, filter);
      const list = archive.all();
      let i = this.indexOf(archive, fetchOffset);
      for (; i < list.length && list[i]!.baseOffset < maxOffset && !st.stop; i++) {
        const seg = await this.segment(list[i]!);
        await this.loadTagIndex(seg);
        const ok = await filterSegment(seg, true, ARCHIVED_INDEX_INTERVAL_BYTES, st);
        assert(ok, 'archived segments are never cut');
      }
      return { state: st, pastArchive: !st.stop && i >= list.length };
    });
  }

  /** The first archived record with timestamp >= timestampMs in segments starting below beforeOffset, or null. */
  offsetForTimestamp(archive: ArchivedSegments, timestampMs: number, beforeOffset: number, deadlineMs?: number): Promise<TimestampLookup | null> {
    return this.bounded(`timestamp lookup of ${timestampMs}`, deadlineMs, async () => {
      for (const m of archive.all()) {
        if (m.baseOffset >= beforeOffset) break;
        if (m.maxTimestampMs < timestampMs) continue;
        const seg = await this.segment(m);
        const found = await scanSegmentForTimestamp(seg, timestampMs);
        if (found && found.offset >= archive.startOffset) return found;
        // A record below the archive start (retention cut the first segment): keep looking.
        if (found) {
          const next = await this.firstAtOrAfter(seg, timestampMs, archive.startOffset);
          if (next) return next;
        }
      }
      return null;
    });
  }

  /**
   * Aborted transactions a read_committed fetch of [fetchOffset, lastOffset] must report whose
   * abort marker is archived (SPEC §6.7): from the .txnindex objects of the segment holding
   * fetchOffset and every later archived segment (a marker may come long after its data);
   * segments without aborts have no .txnindex in their manifest and cost nothing.
   */
  abortedTransactions(archive: ArchivedSegments, fetchOffset: number, lastOffset: number, deadlineMs?: number): Promise<AbortedTxn[]> {
    return this.bounded(`aborted transactions from ${fetchOffset}`, deadlineMs, async () => {
      const out: AbortedTxn[] = [];
      const list = archive.all();
      for (let i = this.indexOf(archive, fetchOffset); i < list.length; i++) {
        const m = list[i]!;
        if (m.files[TXN_INDEX_SUFFIX] === undefined) continue;
        for (const a of await this.txnEntries(m)) if (a.lastOffset >= fetchOffset && a.firstOffset <= lastOffset) out.push(a);
      }
      return out;
    });
  }

  /** Forgets every cached chunk and index (as after a restart: the next reads are cold). */
  clear(): void {
    this.cache.clear();
    this.segments.clear();
    this.segmentBytes = 0;
    this.txns.clear();
  }

  // ------------------------------------------------------------------ internals

  /** Index in archive.all() of the segment holding offset; OFFSET_OUT_OF_RANGE when none does. */
  private indexOf(archive: ArchivedSegments, offset: number): number {
    const m = archive.find(offset);
    if (!m) throw new SluiceError(ErrorCode.OFFSET_OUT_OF_RANGE, `offset ${offset} is outside the archive [${archive.startOffset}, ${archive.endOffset})`);
    return archive.all().indexOf(m);
  }

  /** The decoded segment of m: cached, or its .index and .timeindex fetched (concurrent callers share one load). */
  private segment(m: SegmentManifest): Promise<ArchivedSegment> {
    const key = keyOf(m, '.log');
    const hit = this.segments.get(key);
    if (hit) {
      this.segments.delete(key);
      this.segments.set(key, hit);
      return Promise.resolve(hit.seg);
    }
    const pending = this.loading.get(key);
    if (pending) return pending;
    const p = this.loadSegment(m).finally(() => this.loading.delete(key));
    this.loading.set(key, p);
    return p;
  }

  private async loadSegment(m: SegmentManifest): Promise<ArchivedSegment> {
    const indexKey = keyOf(m, '.index');
    const timeKey = keyOf(m, '.timeindex');
    const [indexBytes, timeBytes] = await Promise.all([
      this.store.get(indexKey),
      m.files['.timeindex'] === undefined ? Promise.resolve(new Uint8Array(0)) : this.store.get(timeKey),
    ]);
    this.stats.bytesRead += indexBytes.length + timeBytes.length;
    const offsets = OffsetIndex.decode(indexKey, m.baseOffset, indexBytes, m.sizeBytes);
    if (!offsets.index) throw new SluiceError(ErrorCode.STORAGE_ERROR, `archived index ${indexKey}: ${offsets.problem}`);
    const times = TimeIndex.decode(timeKey, m.baseOffset, timeBytes);
    if (!times.index) throw new SluiceError(ErrorCode.STORAGE_ERROR, `archived time index ${timeKey}: ${times.problem}`);
    const seg = new ArchivedSegment(m, this.store, this.cache, offsets.index, times.index);
    this.remember(seg);
    return seg;
  }

  /** Loads seg's tag index: the .tags object, or rebuilt from the archived .log when there is none. */
  private async loadTagIndex(seg: ArchivedSegment): Promise<void> {
    if (seg.tags) return;
    const m = seg.manifest;
    const key = keyOf(m, TAG_INDEX_SUFFIX);
    if (m.files[TAG_INDEX_SUFFIX] !== undefined) {
      const bytes = await this.store.get(key);
      this.stats.bytesRead += bytes.length;
      const r = TagIndex.decode(key, m.baseOffset, bytes, m.sizeBytes);
      if (!r.index) throw new SluiceError(ErrorCode.STORAGE_ERROR, `archived tag index ${key}: ${r.problem}`);
      seg.tags = r.index;
    } else {
      seg.tags = await this.rebuildTagIndex(seg);
    }
    this.remember(seg);
  }

  /** The tag index of a segment uploaded without .tags, built from its batches (like LogSegment's rebuild). */
  private async rebuildTagIndex(seg: ArchivedSegment): Promise<TagIndex> {
    const idx = new TagIndex(keyOf(seg.manifest, TAG_INDEX_SUFFIX), seg.baseOffset);
    const c = new BatchCursor();
    let position = 0;
    let want = TAG_REBUILD_WINDOW_BYTES;
    while (position < seg.sizeBytes) {
      const buf = (await seg.read(position, Math.min(want, seg.sizeBytes - position)))!;
      c.reset(buf, 0, buf.length, seg.logPath, position);
      while (c.hasBytes(BATCH_HEADER_BYTES) && c.at + c.storedSizeBytes() <= buf.length) {
        const size = c.storedSizeBytes();
        idx.onBatch(buf, c.at, c.at + size, position + c.at);
        c.advance(size);
      }
      if (c.at === 0) {
        // A batch larger than the window (or a header cut at the object's end).
        if (!c.hasBytes(BATCH_HEADER_BYTES) || buf.length >= seg.sizeBytes - position) throw new SluiceError(ErrorCode.STORAGE_ERROR, `${seg.logPath}: ${seg.sizeBytes - position} bytes at ${position} are not a whole batch`);
        want = c.storedSizeBytes();
        continue;
      }
      position += c.at;
      want = TAG_REBUILD_WINDOW_BYTES;
    }
    return idx;
  }

  private async txnEntries(m: SegmentManifest): Promise<AbortedTxn[]> {
    const key = keyOf(m, TXN_INDEX_SUFFIX);
    const hit = this.txns.get(key);
    if (hit) return hit;
    const bytes = await this.store.get(key);
    this.stats.bytesRead += bytes.length;
    const entries = decodeTxnIndex(bytes).entries;
    this.txns.set(key, entries);
    // Same spirit as the index bound: oldest first out (entries are 28 bytes on the wire, ~80 in memory).
    let total = 0;
    for (const e of this.txns.values()) total += e.length * 80;
    for (const k of this.txns.keys()) {
      if (total <= this.indexCacheBytesMax || k === key) break;
      total -= this.txns.get(k)!.length * 80;
      this.txns.delete(k);
    }
    return entries;
  }

  /** The first record with timestamp >= timestampMs at or after offset in seg, by reading on from offset. */
  private async firstAtOrAfter(seg: ArchivedSegment, timestampMs: number, offset: number): Promise<TimestampLookup | null> {
    for (let at = offset; at < seg.nextOffset; ) {
      const buf = await readFromSegment(seg, at, 1, seg.nextOffset, ARCHIVED_INDEX_INTERVAL_BYTES);
      if (!buf || buf.length === 0) return null;
      const c = new BatchCursor().reset(buf);
      if (c.maxTimestampMs >= timestampMs) for (const r of decodeRecords(buf, 0)) if (r.offset >= offset && r.timestamp >= timestampMs) return { offset: r.offset, timestamp: r.timestamp };
      at = c.lastOffset + 1;
    }
    return null;
  }

  private remember(seg: ArchivedSegment): void {
    const key = seg.logPath;
    const had = this.segments.get(key);
    if (had) {
      this.segments.delete(key);
      this.segmentBytes -= had.bytes;
    }
    const bytes = seg.memoryBytes;
    this.segments.set(key, { seg, bytes });
    this.segmentBytes += bytes;
    for (const [k, v] of this.segments) {
      if (this.segmentBytes <= this.indexCacheBytesMax || k === key) break;
      this.segments.delete(k);
      this.segmentBytes -= v.bytes;
    }
  }

  /**
   * Runs f within readTimeoutMs, and before deadlineMs (a request's shared deadline, so that a
   * request naming many archived partitions is bounded as a whole), turning store failures
   * into ARCHIVE_UNAVAILABLE (see the top).
   */
  private async bounded<T>(what: string, deadlineMs: number | undefined, f: () => Promise<T>): Promise<T> {
    const waitMs = deadlineMs === undefined ? this.readTimeoutMs : Math.max(0, Math.min(this.readTimeoutMs, deadlineMs - Date.now()));
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new SluiceError(ErrorCode.ARCHIVE_UNAVAILABLE, `archive ${this.store.kind} ${this.store.describe()}: ${what} took longer than ${waitMs} ms`)), waitMs);
    });
    const work = f();
    // The losing promise must not become an unhandled rejection.
    work.catch(() => {});
    try {
      return await Promise.race([work, timeout]);
    } catch (e) {
      this.stats.readFailures++;
      if (e instanceof ArchiveStoreError) throw new SluiceError(ErrorCode.ARCHIVE_UNAVAILABLE, `archive ${this.store.kind} ${this.store.describe()}: ${what}: ${e.message}`);
      if (e instanceof SluiceError && e.code === ErrorCode.OFFSET_OUT_OF_RANGE) this.stats.readFailures--;
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }
}

function keyOf(m: SegmentManifest, suffix: string): string {
  return segmentKey(m.topic, m.topicId, m.partition, m.baseOffset, m.lastOffset, suffix);
}
