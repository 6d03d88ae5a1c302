/**
 * ArchivedSegments: the committed part of one partition's archive, as the leader knows it:
 * the manifests of the segments that are uploaded and recorded in the partition's archive
 * state, sorted by base offset. The uploader adds a segment after committing it, archive
 * retention drops segments from the front, and reads look segments up by offset or timestamp.
 *
 * Invariants (asserted in add/dropBefore):
 * - Sorted by baseOffset, strictly increasing; each segment's lastOffset is greater than the
 *   previous one's (segments may overlap after a leader change, see archive-keys.ts, but a
 *   later segment always reaches further).
 * - Contiguous coverage: each segment starts at or below the previous lastOffset + 1, so
 *   every offset in [startOffset, endOffset) is in some segment (offsets that compaction or
 *   recovery removed are simply absent from that segment's bytes, as in a local segment).
 * - startOffset only grows (retention); endOffset only grows (uploads). Truncation never
 *   reaches the archive: only data below the high watermark is uploaded.
 */
import { assert } from '../assert.ts';
import type { SegmentManifest } from './segment-manifest.ts';

export class ArchivedSegments {
  private segs: SegmentManifest[] = [];
  /** First offset still archived; valid when !isEmpty. */
  private start = 0;

  get isEmpty(): boolean {
    return this.segs.length === 0;
  }

  /** First archived offset, or -1 when nothing is archived. */
  get startOffset(): number {
    return this.segs.length === 0 ? -1 : this.start;
  }

  /** One past the last archived offset, or -1 when nothing is archived. */
  get endOffset(): number {
    return this.segs.length === 0 ? -1 : this.segs[this.segs.length - 1]!.lastOffset + 1;
  }

  get count(): number {
    return this.segs.length;
  }

  /** Sum of the archived .log sizes. */
  get sizeBytes(): number {
    let n = 0;
    for (const s of this.segs) n += s.sizeBytes;
    return n;
  }

  all(): readonly SegmentManifest[] {
    return this.segs;
  }

  /**
   * Appends a newly committed segment at the end. A segment that starts at or below the base
   * of trailing segments covers them whole (a new leader rolled its segments elsewhere, e.g.
   * [0-120] after [0-99]): those are superseded, removed and returned, so the caller can
   * delete their objects; usually nothing is returned.
   */
  add(m: SegmentManifest): SegmentManifest[] {
    let keep = this.segs.length;
    while (keep > 0 && this.segs[keep - 1]!.baseOffset >= m.baseOffset) keep--;
    const superseded = this.segs.slice(keep);
    const last = this.segs[keep - 1];
    const prevLast = this.segs[this.segs.length - 1];
    if (prevLast) assert(m.lastOffset > prevLast.lastOffset, () => `archived segment ${m.baseOffset}-${m.lastOffset} does not reach past ${prevLast.baseOffset}-${prevLast.lastOffset}`);
    if (last) {
      assert(m.baseOffset <= last.lastOffset + 1, () => `archived segment ${m.baseOffset}-${m.lastOffset} leaves a gap after ${last.lastOffset}`);
    } else if (superseded.length === 0) {
      this.start = m.baseOffset;
    } else {
      this.start = Math.max(this.start, m.baseOffset);
    }
    this.segs = [...this.segs.slice(0, keep), m];
    return superseded;
  }

  /**
   * Drops the segments wholly below offset (retention moved the archive start there) and
   * returns them, so the caller can delete their objects.
   */
  dropBefore(offset: number): SegmentManifest[] {
    let n = 0;
    while (n < this.segs.length && this.segs[n]!.lastOffset < offset) n++;
    const dropped = this.segs.slice(0, n);
    this.segs = this.segs.slice(n);
    if (this.segs.length > 0) this.start = Math.max(this.start, this.segs[0]!.baseOffset, offset);
    return dropped;
  }

  /** The segment holding offset (the latest-starting one when segments overlap), or null. */
  find(offset: number): SegmentManifest | null {
    if (this.segs.length === 0 || offset < this.start || offset >= this.endOffset) return null;
    let lo = 0;
    let hi = this.segs.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.segs[mid]!.baseOffset <= offset) lo = mid;
      else hi = mid - 1;
    }
    const s = this.segs[lo]!;
    return s.lastOffset >= offset ? s : null;
  }

  /** The first segment whose newest timestamp is at or after timestampMs, or null. */
  findByTimestamp(timestampMs: number): SegmentManifest | null {
    for (const s of this.segs) if (s.maxTimestampMs >= timestampMs) return s;
    return null;
  }
}
