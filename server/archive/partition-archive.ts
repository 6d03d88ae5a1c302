/**
 * One partition's archive as this broker runs it (SPEC §7.10): `p.archive` on a Partition of
 * a topic with archive.enable=true when the broker has an archive store. It holds what the
 * read path needs (the store, the partition's key prefix, the committed ArchivedSegments and
 * archive state) and, while this broker leads the partition, runs the uploader and archive
 * retention (startLeading / stopLeading, called by the replica manager like p.releaser).
 *
 * Upload of one sealed segment (PartitionLog.archiveCandidates), in this order:
 *   .log (putFile, paced by the broker's throttle), .index, .timeindex (from memory: a
 *   recovered segment's indexes may not be on disk), .txnindex/.tags/.delays when present,
 *   then .manifest, then compare-and-set of the archive state endOffset = lastOffset + 1 in
 *   the metadata store (the commit point), then ArchivedSegments.add and the local log's
 *   archivedEndOffset (only now may local retention delete the segment).
 * Crash anywhere before the compare-and-set: nothing is committed, and the same keys are
 * written again after the restart (whole-object puts: idempotent).
 *
 * On start (every time leadership begins): read the archive state, list the prefix, decode
 * the manifests below state.endOffset into ArchivedSegments (in lastOffset order, each one
 * extending the chain; see ArchivedSegments.add), and delete everything else under the prefix
 * (orphans of crashed uploads, retention deletions that did not finish, superseded segments).
 *
 * Archive retention (leader): retention.ms / retention.bytes over archive + local. The state's
 * startOffset moves forward first (compare-and-set), then ArchivedSegments.dropBefore, then
 * the objects are deleted (manifest first), so a crash leaves only orphans.
 *
 * On a follower: the archive state is read every retention check interval, so its local
 * retention too deletes only committed segments.
 *
 * Invariants:
 * - One loop per leadership (a generation number); stopLeading makes the running loop exit at
 *   its next step and aborts its waits; a compare-and-set written by a deposed leader fails
 *   on the state the new leader wrote (the metadata store's compare-and-set).
 * - log.archivedEndOffset <= state.endOffset, and ArchivedSegments covers
 *   [state.startOffset, state.endOffset) once loaded.
 * - Failures never escape: recorded (lastError, uploadFailures) and retried after a backoff
 *   that doubles from the check interval up to retryBackoffMsMax.
 */
import fs from 'node:fs';
import type { ArchivePartitionStatus } from '../../protocol/apis/describe-archive.ts';
import CRC32 from 'crc-32';
import type { ArchiveCandidate, PartitionLog } from '../log/partition-log.ts';
import type { ArchiveState } from '../metadata/archive-state.ts';
import { MANIFEST_SUFFIX, parseSegmentKey, partitionPrefix, segmentKey } from './archive-keys.ts';
import { ArchivedSegments } from './archived-segments.ts';
import type { ArchiveSource } from './archive-reads.ts';
import type { ArchiveReader } from './archived-reader.ts';
import { ArchiveStoreError, type ArchiveStore } from './archive-store.ts';
import type { BrokerArchive } from './broker-archive.ts';
import { decodeManifest, encodeManifest, MANIFEST_VERSION, type SegmentManifest } from './segment-manifest.ts';

/** Bytes read at a time to compute a segment's CRC. */
const CRC_CHUNK_BYTES = 1024 * 1024;
/** Manifests read at once while a leader loads its archive. */
const MANIFEST_READS_PARALLEL = 8;
/** Optional per-segment files uploaded when present, by suffix. */
const OPTIONAL_SUFFIXES = ['.txnindex', '.tags', '.delays'] as const;

/** A partition's archive figures as DescribeArchive reports them (SPEC §6.27), less the partition number. */
export type PartitionArchiveStatus = Omit<ArchivePartitionStatus, 'partition'>;

class Stopped extends Error {}

export class PartitionArchive implements ArchiveSource {
  /**
   * The committed segments (valid while `loaded`; the leader keeps them current). Replaced
   * whole when the leader (re)loads the archive: readers take `p.archive.segments` afresh for
   * each read rather than keeping the object. Archive retention may delete a segment's objects
   * right after dropping it here, so a read that found a segment can still get notFound from
   * the store (the offset just fell below the archive start).
   */
  readonly segments = new ArchivedSegments();
  /** The archive state as last read or written here; undefined: nothing archived (or not read yet). */
  state: ArchiveState | undefined;
  /** segments reflects the store and the state (the leader's start completed). */
  loaded = false;
  lastError = '';
  /** Consecutive failures (reset by a success). */
  failures = 0;
  readonly prefix: string;
  private generation = 0;
  private abort: AbortController | null = null;
  private leading = false;
  private followerTimer: NodeJS.Timeout | null = null;

  constructor(
    readonly broker: BrokerArchive,
    readonly topic: string,
    readonly topicId: string,
    readonly partition: number,
    readonly log: PartitionLog,
  ) {
    this.prefix = partitionPrefix(topic, topicId, partition);
  }

  get store(): ArchiveStore {
    return this.broker.store;
  }

  /** The broker's reader of archived segments (ArchiveSource, server/archive/archive-reads.ts). */
  get reader(): ArchiveReader {
    return this.broker.reader;
  }

  /** The committed segments consumers may read: once the leader has loaded them (ArchiveSource). */
  archived(): ArchivedSegments | null {
    return this.loaded ? this.segments : null;
  }

  /** Leading and not loaded yet (ArchiveSource): consumer reads below the local start wait for it. */
  loading(): boolean {
    return this.leading && !this.loaded;
  }

  get isLeading(): boolean {
    return this.leading;
  }

  /** This broker leads the partition now: (re)load the archive and upload from its end. */
  startLeading(): void {
    this.stopAll();
    this.leading = true;
    const gen = ++this.generation;
    this.abort = new AbortController();
    void this.run(gen, this.abort.signal);
  }

  /** This broker follows (or holds no role): no uploads; the archive state is polled for local retention. */
  startFollowing(): void {
    this.stopAll();
    const gen = this.generation;
    const poll = async () => {
      if (gen !== this.generation) return;
      try {
        const s = await this.broker.metadata.getArchiveState(this.topic, this.topicId, this.partition);
        if (gen !== this.generation) return;
        this.state = s;
        if (s) this.log.archivedEndOffset = Math.max(this.log.archivedEndOffset, s.endOffset);
      } catch {
        // The metadata store is unreachable: local deletion simply waits.
      }
      if (gen === this.generation) {
        this.followerTimer = setTimeout(() => void poll(), this.broker.settings.followerPollIntervalMs);
        this.followerTimer.unref();
      }
    };
    void poll();
  }

  /** No role any more (replica removed, broker stopping). */
  stop(): void {
    this.stopAll();
  }

  private stopAll(): void {
    this.generation++;
    this.leading = false;
    this.loaded = false;
    this.abort?.abort(new Stopped('stopped'));
    this.abort = null;
    if (this.followerTimer) clearTimeout(this.followerTimer);
    this.followerTimer = null;
  }

  status(): PartitionArchiveStatus {
    const log = this.log;
    const end = this.state?.endOffset ?? 0;
    let lagBytes = 0;
    let lagSegments = 0;
    for (const c of log.archiveCandidates(end)) {
      lagBytes += c.sizeBytes;
      lagSegments++;
    }
    const has = this.loaded && !this.segments.isEmpty;
    return {
      localStartOffset: log.logStartOffset,
      localEndOffset: log.logEndOffset,
      highWatermark: log.highWatermark,
      archiveStartOffset: has ? this.segments.startOffset : this.state && this.state.endOffset > this.state.startOffset ? this.state.startOffset : -1,
      archiveEndOffset: has ? this.segments.endOffset : this.state && this.state.endOffset > this.state.startOffset ? this.state.endOffset : -1,
      archivedBytes: this.loaded ? this.segments.sizeBytes : 0,
      archivedSegments: this.loaded ? this.segments.count : 0,
      lagBytes,
      lagSegments,
      leader: this.leading,
      lastError: this.lastError,
      failures: this.failures,
    };
  }

  // ---------------------------------------------------------------- the leader's loop

  private async run(gen: number, signal: AbortSignal): Promise<void> {
    const { checkIntervalMs, retryBackoffMsMax } = this.broker.settings;
    while (gen === this.generation) {
      let waitMs = checkIntervalMs;
      try {
        if (!this.loaded) await this.load(gen);
        const uploaded = await this.uploadNext(gen, signal);
        await this.applyArchiveRetention(gen);
        this.failures = 0;
        this.lastError = '';
        if (uploaded) waitMs = 0;
      } catch (e) {
        if (gen !== this.generation || e instanceof Stopped) return;
        this.failures++;
        this.broker.stats.uploadFailures++;
        this.lastError = (e as Error).message ?? String(e);
        waitMs = Math.min(checkIntervalMs * 2 ** Math.min(this.failures, 20), Math.max(checkIntervalMs, retryBackoffMsMax));
        this.broker.log.warn('archive: attempt failed, will retry', { topic: this.topic, partition: this.partition, failures: this.failures, retryInMs: waitMs, error: e as Error });
      }
      if (waitMs > 0) await sleep(waitMs, signal).catch(() => {});
    }
  }

  private check(gen: number): void {
    if (gen !== this.generation) throw new Stopped('stopped');
  }

  /** Reads the state, builds ArchivedSegments from the committed manifests, deletes orphans. */
  private async load(gen: number): Promise<void> {
    const state = await this.broker.metadata.getArchiveState(this.topic, this.topicId, this.partition);
    this.check(gen);
    const objects = await this.store.list(this.prefix);
    this.check(gen);
    const committed: SegmentManifest[] = [];
    const wanted = objects.filter((o) => {
      const parts = parseSegmentKey(o.key.slice(this.prefix.length));
      return parts !== null && parts.suffix === MANIFEST_SUFFIX && state !== undefined && parts.lastOffset < state.endOffset && parts.lastOffset >= state.startOffset;
    });
    // A few manifests at a time: a partition may have thousands, and each is one GET.
    for (let i = 0; i < wanted.length; i += MANIFEST_READS_PARALLEL) {
      await Promise.all(
        wanted.slice(i, i + MANIFEST_READS_PARALLEL).map(async (o) => {
          const parts = parseSegmentKey(o.key.slice(this.prefix.length))!;
          let m: SegmentManifest;
          try {
            m = decodeManifest(await this.store.get(o.key));
          } catch (e) {
            if (e instanceof ArchiveStoreError && !e.notFound) throw e;
            this.broker.log.warn('archive: unreadable manifest ignored (its objects are swept)', { key: o.key, error: e as Error });
            return;
          }
          if (m.baseOffset === parts.baseOffset && m.lastOffset === parts.lastOffset) committed.push(m);
        }),
      );
      this.check(gen);
    }
    committed.sort((a, b) => a.lastOffset - b.lastOffset || b.baseOffset - a.baseOffset);
    const segments = new ArchivedSegments();
    for (const m of committed) {
      const last = segments.all()[segments.count - 1];
      if (last && (m.lastOffset <= last.lastOffset || m.baseOffset > last.lastOffset + 1)) continue;
      if (!last && state && m.baseOffset > state.startOffset) continue;
      segments.add(m);
    }
    if (state) segments.dropBefore(state.startOffset);
    // Everything under the prefix that is not an object of a kept segment is an orphan.
    const kept = new Set(segments.all().map((m) => `${m.baseOffset}-${m.lastOffset}`));
    const orphans = objects.filter((o) => {
      const parts = parseSegmentKey(o.key.slice(this.prefix.length));
      return !parts || !kept.has(`${parts.baseOffset}-${parts.lastOffset}`);
    });
    // Manifests first: a crash part way leaves no manifest whose files are gone.
    orphans.sort((a, b) => Number(b.key.endsWith(MANIFEST_SUFFIX)) - Number(a.key.endsWith(MANIFEST_SUFFIX)));
    for (const o of orphans) {
      await this.store.delete(o.key);
      this.check(gen);
    }
    if (orphans.length > 0) this.broker.log.info('archive: swept orphan objects', { topic: this.topic, partition: this.partition, objects: orphans.length });
    (this as { segments: ArchivedSegments }).segments = segments;
    this.state = state;
    if (state) this.log.archivedEndOffset = Math.max(this.log.archivedEndOffset, state.endOffset);
    this.loaded = true;
  }

  /** Uploads and commits the next sealed segment past the archive end; false when there is none. */
  private async uploadNext(gen: number, signal: AbortSignal): Promise<boolean> {
    const end = this.state?.endOffset ?? 0;
    const c = this.log.archiveCandidates(end)[0];
    if (!c) return false;
    if (this.state && !this.segments.isEmpty && c.baseOffset > this.state.endOffset) {
      // The local log starts past the archive's end (it was emptied and restarted higher):
      // the archive cannot stay contiguous. Nothing is deleted locally meanwhile.
      throw new Error(`local segment ${c.baseOffset}-${c.lastOffset} starts past the archive end ${this.state.endOffset}: not archived (gap)`);
    }
    const release = await this.broker.limiter.acquire(signal);
    try {
      this.check(gen);
      await this.upload(gen, c);
    } finally {
      release();
    }
    return true;
  }

  private async upload(gen: number, c: ArchiveCandidate): Promise<void> {
    const seg = c.segment;
    const key = (suffix: string) => segmentKey(this.topic, this.topicId, this.partition, c.baseOffset, c.lastOffset, suffix);
    const stillHere = () => {
      this.check(gen);
      if (!this.log.isCurrentSegment(c)) throw new Error(`segment ${c.baseOffset} was deleted or truncated while it was uploaded`);
    };
    const files: Record<string, number> = {};
    const logCrc32 = await crcOfFile(seg.logPath, c.sizeBytes);
    stillHere();
    await this.store.putFile(key('.log'), seg.logPath, c.sizeBytes, async (n) => {
      stillHere();
      await this.broker.limiter.pace(n);
    });
    files['.log'] = c.sizeBytes;
    stillHere();
    const index = seg.offsetIndex.toBytes();
    const timeIndex = seg.timeIndex.toBytes();
    await this.store.put(key('.index'), index);
    files['.index'] = index.length;
    await this.store.put(key('.timeindex'), timeIndex);
    files['.timeindex'] = timeIndex.length;
    for (const suffix of OPTIONAL_SUFFIXES) {
      const p = seg.logPath.slice(0, -'.log'.length) + suffix;
      let bytes: Buffer;
      try {
        bytes = await fs.promises.readFile(p);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw e;
      }
      stillHere();
      await this.store.put(key(suffix), bytes);
      files[suffix] = bytes.length;
    }
    stillHere();
    const manifest: SegmentManifest = {
      version: MANIFEST_VERSION,
      topic: this.topic,
      topicId: this.topicId,
      partition: this.partition,
      baseOffset: c.baseOffset,
      lastOffset: c.lastOffset,
      firstTimestampMs: firstTimestamp(timeIndex, c.largestTimestampMs),
      maxTimestampMs: c.largestTimestampMs,
      leaderEpochs: epochsIn(this.log, c.baseOffset, c.lastOffset),
      sizeBytes: c.sizeBytes,
      logCrc32,
      files,
      uploadedBy: this.broker.settings.brokerId,
      uploadedAtMs: Date.now(),
    };
    await this.store.put(key(MANIFEST_SUFFIX), encodeManifest(manifest));
    stillHere();
    // The commit point.
    // The archive starts at the first segment ever committed; after retention emptied it,
    // at the retention point or this segment's base, whichever is later.
    const expected = this.state;
    const startOffset = !expected ? c.baseOffset : this.segments.isEmpty ? Math.max(expected.startOffset, c.baseOffset) : expected.startOffset;
    const next: ArchiveState = { startOffset, endOffset: c.lastOffset + 1 };
    const ok = await this.broker.metadata.compareAndSetArchiveState(this.topic, this.topicId, this.partition, expected, next);
    this.check(gen);
    if (!ok) {
      // Another leader moved the state: reload from the store before anything else.
      this.loaded = false;
      throw new Error(`archive state of ${this.topic}/${this.partition} changed under this broker (another leader?); reloading`);
    }
    this.state = next;
    const superseded = this.segments.add(manifest);
    if (this.segments.startOffset < next.startOffset) this.segments.dropBefore(next.startOffset);
    this.log.archivedEndOffset = Math.max(this.log.archivedEndOffset, next.endOffset);
    const stats = this.broker.stats;
    stats.bytesUploaded += c.sizeBytes;
    stats.segmentsUploaded++;
    for (const m of superseded) await this.deleteSegmentObjects(m);
    this.broker.log.debug('archive: segment committed', { topic: this.topic, partition: this.partition, baseOffset: c.baseOffset, lastOffset: c.lastOffset, bytes: c.sizeBytes });
  }

  /** Total retention (retention.ms / retention.bytes) over archive + local, applied to the archive's front. */
  private async applyArchiveRetention(gen: number): Promise<void> {
    const cfg = this.log.config;
    if (!this.state || this.segments.isEmpty) return;
    const segs = this.segments.all();
    const now = Date.now();
    let drop = 0;
    if (cfg.retentionMs >= 0) {
      while (drop < segs.length && segs[drop]!.maxTimestampMs >= 0 && now - segs[drop]!.maxTimestampMs > cfg.retentionMs) drop++;
    }
    if (cfg.retentionBytes >= 0) {
      // Local bytes past the archive count once (the archived ones are in the archive's size).
      let total = this.segments.sizeBytes + this.log.bytesFrom(this.segments.endOffset);
      for (let i = 0; i < drop; i++) total -= segs[i]!.sizeBytes;
      while (drop < segs.length && total - segs[drop]!.sizeBytes >= cfg.retentionBytes) total -= segs[drop++]!.sizeBytes;
    }
    if (drop === 0) return;
    const newStart = segs[drop - 1]!.lastOffset + 1;
    const expected = this.state;
    const next = { startOffset: Math.max(newStart, expected.startOffset), endOffset: expected.endOffset };
    const ok = await this.broker.metadata.compareAndSetArchiveState(this.topic, this.topicId, this.partition, expected, next);
    this.check(gen);
    if (!ok) {
      this.loaded = false;
      throw new Error(`archive state of ${this.topic}/${this.partition} changed under this broker (another leader?); reloading`);
    }
    this.state = next;
    const dropped = this.segments.dropBefore(next.startOffset);
    for (const m of dropped) {
      await this.deleteSegmentObjects(m);
      this.broker.stats.segmentsDeleted++;
    }
    this.broker.log.info('archive retention deleted segments', { topic: this.topic, partition: this.partition, segments: dropped.length, archiveStartOffset: next.startOffset });
  }

  private async deleteSegmentObjects(m: SegmentManifest): Promise<void> {
    const key = (suffix: string) => segmentKey(this.topic, this.topicId, this.partition, m.baseOffset, m.lastOffset, suffix);
    await this.store.delete(key(MANIFEST_SUFFIX));
    for (const suffix of Object.keys(m.files)) await this.store.delete(key(suffix));
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** CRC-32 (IEEE) of the first sizeBytes of a file, read in chunks. */
export async function crcOfFile(filePath: string, sizeBytes: number): Promise<number> {
  const h = await fs.promises.open(filePath, 'r');
  try {
    const buf = Buffer.allocUnsafe(Math.min(CRC_CHUNK_BYTES, Math.max(1, sizeBytes)));
    let crc = 0;
    let pos = 0;
    while (pos < sizeBytes) {
      const { bytesRead } = await h.read(buf, 0, Math.min(buf.length, sizeBytes - pos), pos);
      if (bytesRead === 0) throw new Error(`${filePath} ended at ${pos} bytes, ${sizeBytes} expected`);
      crc = CRC32.buf(buf.subarray(0, bytesRead), crc);
      pos += bytesRead;
    }
    return crc >>> 0;
  } finally {
    await h.close();
  }
}

/** CRC-32 (IEEE) of bytes, as the manifest's logCrc32. */
export function crcOfBytes(bytes: Uint8Array): number {
  return CRC32.buf(bytes, 0) >>> 0;
}

/** The time index's first timestamp (12-byte entries: int64 timestamp, uint32 relative offset), else fallback. */
function firstTimestamp(timeIndex: Buffer, fallback: number): number {
  if (timeIndex.length < 12) return fallback;
  const t = Number(timeIndex.readBigInt64BE(0));
  return Number.isSafeInteger(t) && t >= -1 ? t : fallback;
}

/** Epoch entries in force in [base, last]: the one at base and every one starting inside. */
function epochsIn(log: PartitionLog, base: number, last: number): Array<{ epoch: number; startOffset: number }> {
  const all = log.epochEntries();
  const out: Array<{ epoch: number; startOffset: number }> = [];
  for (let i = 0; i < all.length; i++) {
    const e = all[i]!;
    const nextStart = all[i + 1]?.startOffset ?? Infinity;
    if (e.startOffset > last) break;
    if (nextStart <= base) continue;
    out.push({ epoch: e.epoch, startOffset: Math.min(Math.max(e.startOffset, 0), last) });
  }
  return out;
}
