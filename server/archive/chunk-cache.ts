/**
 * ChunkCache: the broker-wide cache of archived bytes (SPEC §7.10, reading). Archived objects
 * are read in fixed-size chunks (chunk i of an object = bytes [i * chunkBytes, (i + 1) *
 * chunkBytes), shorter at the object's end), each fetched with one range read, and kept in a
 * least-recently-used list bounded in bytes (`archiveReadCacheBytes`). Consumers catching up
 * through the archive read a segment front to back, so one chunk serves many fetches.
 *
 * Invariants:
 * - Held bytes (sum of cached chunk lengths) <= capacityBytes, checked after every insert
 *   (asserted); a chunk larger than the capacity is returned but never cached.
 * - Concurrent misses for one chunk share one store request (inFlight); the entry leaves
 *   inFlight when the request settles, success or not. A failure is not cached: the next read
 *   asks the store again.
 * - Archived objects never change under a key (uploads of a key always carry the same bytes,
 *   archive-keys.ts), so a cached chunk is never stale; deleted objects simply age out.
 * - Keys in the map are `${objectKey}#${chunkIndex}`; the map's insertion order is the LRU
 *   order (a hit moves the entry to the end).
 */
import { assert } from '../assert.ts';
import type { ArchiveStore } from './archive-store.ts';

export const DEFAULT_CHUNK_BYTES = 1024 * 1024;

export interface ChunkCacheStats {
  hits: number;
  misses: number;
  /** Bytes fetched from the store (misses). */
  fetchedBytes: number;
  heldBytes: number;
  chunks: number;
}

export class ChunkCache {
  private readonly chunks = new Map<string, Buffer>();
  private readonly inFlight = new Map<string, Promise<Buffer>>();
  private held = 0;
  readonly stats = { hits: 0, misses: 0, fetchedBytes: 0 };

  constructor(
    readonly capacityBytes: number,
    readonly chunkBytes: number = DEFAULT_CHUNK_BYTES,
    /** Told the size of every chunk fetched from the store (the broker's ArchiveStats.bytesRead). */
    private readonly onFetched: (bytes: number) => void = () => {},
  ) {
    assert(Number.isSafeInteger(capacityBytes) && capacityBytes >= 0, `chunk cache capacity ${capacityBytes}`);
    assert(Number.isSafeInteger(chunkBytes) && chunkBytes > 0, `chunk size ${chunkBytes}`);
  }

  get heldBytes(): number {
    return this.held;
  }

  get chunkCount(): number {
    return this.chunks.size;
  }

  snapshot(): ChunkCacheStats {
    return { ...this.stats, heldBytes: this.held, chunks: this.chunks.size };
  }

  /**
   * Chunk `index` of the object `key` (objectBytes long), from the cache or the store.
   * Throws what the store throws (ArchiveStoreError).
   */
  chunk(store: ArchiveStore, key: string, objectBytes: number, index: number): Promise<Buffer> {
    const start = index * this.chunkBytes;
    assert(Number.isSafeInteger(index) && index >= 0 && start < objectBytes, () => `chunk ${index} of ${key} (${objectBytes} bytes)`);
    const id = `${key}#${index}`;
    const hit = this.chunks.get(id);
    if (hit) {
      this.stats.hits++;
      // Most recently used goes last.
      this.chunks.delete(id);
      this.chunks.set(id, hit);
      return Promise.resolve(hit);
    }
    const pending = this.inFlight.get(id);
    if (pending) return pending;
    this.stats.misses++;
    const end = Math.min(start + this.chunkBytes, objectBytes);
    const p = store.getRange(key, start, end).then(
      (bytes) => {
        this.inFlight.delete(id);
        const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
        this.stats.fetchedBytes += buf.length;
        this.onFetched(buf.length);
        // A short chunk (the object is shorter than its manifest says) is answered but not kept.
        if (buf.length === end - start) this.insert(id, buf);
        return buf;
      },
      (e: unknown) => {
        this.inFlight.delete(id);
        throw e;
      },
    );
    this.inFlight.set(id, p);
    return p;
  }

  /**
   * Bytes [position, position + lengthBytes) of the object, clipped at objectBytes, assembled
   * from its chunks (fetched concurrently). A range inside one chunk is a view of it, no copy.
   */
  async read(store: ArchiveStore, key: string, objectBytes: number, position: number, lengthBytes: number): Promise<Buffer> {
    const end = Math.min(position + Math.max(lengthBytes, 0), objectBytes);
    if (position >= end) return Buffer.alloc(0);
    const first = Math.floor(position / this.chunkBytes);
    const last = Math.floor((end - 1) / this.chunkBytes);
    const parts = await Promise.all(Array.from({ length: last - first + 1 }, (_, i) => this.chunk(store, key, objectBytes, first + i)));
    const from = position - first * this.chunkBytes;
    if (parts.length === 1) {
      const c = parts[0]!;
      return c.subarray(Math.min(from, c.length), Math.min(from + (end - position), c.length));
    }
    const out = Buffer.allocUnsafe(end - position);
    let n = 0;
    for (let i = 0; i < parts.length && n < out.length; i++) {
      const c = parts[i]!;
      const s = i === 0 ? from : 0;
      const take = Math.min(c.length - s, out.length - n);
      if (take <= 0) break;
      c.copy(out, n, s, s + take);
      n += take;
      // A chunk shorter than chunkBytes before the last one: the object is shorter than said.
      if (c.length < this.chunkBytes && i < parts.length - 1) break;
    }
    return n === out.length ? out : out.subarray(0, n);
  }

  /** Drops every cached chunk (tests; a broker restart has the same effect). */
  clear(): void {
    this.chunks.clear();
    this.held = 0;
  }

  private insert(id: string, buf: Buffer): void {
    if (buf.length > this.capacityBytes) return;
    const old = this.chunks.get(id);
    if (old) {
      this.held -= old.length;
      this.chunks.delete(id);
    }
    this.chunks.set(id, buf);
    this.held += buf.length;
    for (const [k, v] of this.chunks) {
      if (this.held <= this.capacityBytes) break;
      this.chunks.delete(k);
      this.held -= v.length;
    }
    assert(this.held <= this.capacityBytes, () => `chunk cache holds ${this.held} > ${this.capacityBytes} bytes`);
  }
}
