/**
 * PendingDelays: what a partition's log says about its delayed messages (SPEC §7.9), kept in
 * memory on every replica: the pending wrappers' keys in release order, the cancelled ones not
 * yet due, and the frontier (the key of the newest RELEASED marker). It is a pure function of
 * the batches observed, in log order: replicas that hold the same log hold the same state, so a
 * follower that becomes leader releases from where the old leader stopped.
 *
 * Invariants:
 * - Every key in the heap is > the frontier (observing a RELEASED marker pops the keys it
 *   passes); a wrapper is pending iff it is in the heap or in flight, and not cancelled.
 * - `cancelled` maps the offsets of cancelled wrappers whose key is above the frontier to their
 *   time (cancels at or below it are moot and dropped once the frontier passes them); a
 *   cancelled entry leaves the heap only when due (takeDue), so every wrapper key above the
 *   frontier is in the heap, in flight, or cancelled. pendingCount = heap size + in flight -
 *   cancelled entries still in the heap.
 * - In flight: entries the releaser took from the heap and is appending; observe() of their
 *   RELEASED markers clears them, and a failed append puts them back (restore()).
 * - Memory: 16 bytes per pending entry (two Float64Arrays, grown by half), plus the cancel set
 *   bounded by the caller (delayedCancelsPendingMax).
 */
import { assert } from '../assert.ts';
import type { SegmentDelays } from './segment-delays.ts';
import { compareKey, CONTROL_TYPE_CANCELLED, CONTROL_TYPE_RELEASED, CONTROL_TYPE_SCHEDULED, controlTypeAt, readDelayMarker, readScheduled } from '../../protocol/delayed-batch.ts';
import { ATTR_CONTROL, ATTR_TRANSACTIONAL, Off } from '../../protocol/record-batch.ts';

const INITIAL_CAPACITY = 256;

export interface DelayKey {
  deliverAtMs: number;
  offset: number;
}

/** True for a delayed-delivery control batch (control bit without the transactional bit): header byte only. */
export function isDelayControlAt(b: Uint8Array, pos: number): boolean {
  return (b[pos + Off.attributes + 1]! & (ATTR_CONTROL | ATTR_TRANSACTIONAL)) === ATTR_CONTROL;
}

export class PendingDelays {
  private at = new Float64Array(INITIAL_CAPACITY);
  private off = new Float64Array(INITIAL_CAPACITY);
  private n = 0;
  private readonly cancelled = new Map<number, number>();
  /** Cancelled entries still in the heap. */
  private cancelledInHeap = 0;
  /** Smallest time in `cancelled` (Infinity when empty): the frontier passing it prunes the map. */
  private cancelledMinAtMs = Infinity;
  private readonly inFlight = new Map<number, number>();
  /** The newest RELEASED marker's key, (-1, -1) when none. */
  frontierAtMs = -1;
  frontierOffset = -1;
  /** The newest RELEASED marker's own offset, -1 when none (torn-tail detection, SPEC §7.9). */
  lastReleaseMarkerOffset = -1;

  get pendingCount(): number {
    return this.n + this.inFlight.size - this.cancelledInHeap;
  }

  get cancelledCount(): number {
    return this.cancelled.size;
  }

  clear(): void {
    this.at = new Float64Array(INITIAL_CAPACITY);
    this.off = new Float64Array(INITIAL_CAPACITY);
    this.n = 0;
    this.cancelled.clear();
    this.cancelledInHeap = 0;
    this.cancelledMinAtMs = Infinity;
    this.inFlight.clear();
    this.frontierAtMs = -1;
    this.frontierOffset = -1;
    this.lastReleaseMarkerOffset = -1;
  }

  /** One delayed-delivery control batch, whole in b at pos. */
  observeBatch(b: Uint8Array, pos: number): void {
    const type = controlTypeAt(b, pos);
    if (type === CONTROL_TYPE_SCHEDULED) {
      const e = readScheduled(b, pos);
      if (e !== null) this.add(e.effectiveDeliverAtMs, e.wrapperOffset);
    } else if (type === CONTROL_TYPE_RELEASED || type === CONTROL_TYPE_CANCELLED) {
      const m = readDelayMarker(b, pos);
      if (m === null) return;
      if (type === CONTROL_TYPE_RELEASED) this.released(m.deliverAtMs, m.wrapperOffset, m.offset);
      else this.cancel(m.deliverAtMs, m.wrapperOffset);
    }
  }

  /** One segment's content (sidecar or scan), segments in log order: its wrappers, cancels, then newest release. */
  load(sd: SegmentDelays): void {
    for (let i = 0; i < sd.scheduledAt.length; i++) this.add(sd.scheduledAt[i]!, sd.scheduledOffset[i]!);
    for (let i = 0; i < sd.cancelledAt.length; i++) this.cancel(sd.cancelledAt[i]!, sd.cancelledOffset[i]!);
    if (sd.releaseMarkerOffset >= 0) this.released(sd.releaseAtMs, sd.releaseOffset, sd.releaseMarkerOffset);
  }

  /** A wrapper's key: pending unless at or below the frontier (a wrapper the log already released). */
  add(deliverAtMs: number, offset: number): void {
    if (compareKey(deliverAtMs, offset, this.frontierAtMs, this.frontierOffset) <= 0) return;
    if (this.n === this.at.length) this.grow();
    let i = this.n++;
    // Sift up.
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (compareKey(this.at[parent]!, this.off[parent]!, deliverAtMs, offset) <= 0) break;
      this.at[i] = this.at[parent]!;
      this.off[i] = this.off[parent]!;
      i = parent;
    }
    this.at[i] = deliverAtMs;
    this.off[i] = offset;
  }

  /** A RELEASED marker: the frontier moves to its key; every key at or below it is done. */
  private released(deliverAtMs: number, wrapperOffset: number, markerOffset: number): void {
    if (compareKey(deliverAtMs, wrapperOffset, this.frontierAtMs, this.frontierOffset) > 0) {
      this.frontierAtMs = deliverAtMs;
      this.frontierOffset = wrapperOffset;
    }
    this.lastReleaseMarkerOffset = markerOffset;
    this.inFlight.delete(wrapperOffset);
    while (this.n > 0 && compareKey(this.at[0]!, this.off[0]!, this.frontierAtMs, this.frontierOffset) <= 0) {
      if (this.cancelled.has(this.off[0]!)) this.cancelledInHeap--;
      this.popTop();
    }
    if (this.frontierAtMs >= this.cancelledMinAtMs) this.pruneCancelled();
    // In flight entries the frontier passed were released by this or an earlier marker.
    if (this.inFlight.size > 0) {
      for (const [off, at] of this.inFlight) if (compareKey(at, off, this.frontierAtMs, this.frontierOffset) <= 0) this.inFlight.delete(off);
    }
  }

  /** Time of the heap's first key (possibly a cancelled one, dropped when due), or Infinity. */
  nextDueMs(): number {
    return this.n === 0 ? Infinity : this.at[0]!;
  }

  /**
   * Takes up to max pending keys due at nowMs, in key order, into flight (for the releaser).
   * They stay pending (ListDelayed, retention) until their RELEASED marker is observed.
   */
  takeDue(nowMs: number, max: number): DelayKey[] {
    const out: DelayKey[] = [];
    while (out.length < max) {
      if (this.n === 0 || this.at[0]! > nowMs) break;
      if (this.cancelled.has(this.off[0]!)) {
        // Due and cancelled: skipped; it stays in `cancelled` until the frontier passes it.
        this.cancelledInHeap--;
        this.popTop();
        continue;
      }
      const k = { deliverAtMs: this.at[0]!, offset: this.off[0]! };
      this.popTop();
      this.inFlight.set(k.offset, k.deliverAtMs);
      out.push(k);
    }
    return out;
  }

  /** Drops a key taken by takeDue that cannot be released (its wrapper is gone); it is no longer pending here. */
  abandon(k: DelayKey): void {
    this.inFlight.delete(k.offset);
  }

  /** Puts keys taken by takeDue back (their release was not appended). */
  restore(keys: readonly DelayKey[]): void {
    for (const k of keys) {
      if (this.inFlight.delete(k.offset)) this.add(k.deliverAtMs, k.offset);
    }
  }

  /** The state of the wrapper at offset with the given key: pending, in flight (being released), or not pending. */
  stateOf(deliverAtMs: number, offset: number): 'pending' | 'in-flight' | 'done' {
    if (this.inFlight.has(offset)) return 'in-flight';
    if (this.cancelled.has(offset)) return 'done';
    if (compareKey(deliverAtMs, offset, this.frontierAtMs, this.frontierOffset) <= 0) return 'done';
    return 'pending';
  }


  /** Smallest offset of a pending (or in flight) wrapper, Infinity when none: retention stops below it (SPEC §7.9). */
  minPendingOffset(): number {
    let min = Infinity;
    for (let i = 0; i < this.n; i++) {
      const o = this.off[i]!;
      if (o < min && !this.cancelled.has(o)) min = o;
    }
    for (const o of this.inFlight.keys()) if (o < min) min = o;
    return min;
  }

  /**
   * Up to limit pending keys strictly after (afterAtMs, afterOffset), in key order: one pass
   * over the heap with a bounded max-heap of the best `limit` (O(n log limit)).
   */
  listAfter(afterAtMs: number, afterOffset: number, limit: number): DelayKey[] {
    const bestAt: number[] = [];
    const bestOff: number[] = [];
    const consider = (a: number, o: number): void => {
      if (compareKey(a, o, afterAtMs, afterOffset) <= 0 || this.cancelled.has(o)) return;
      if (bestAt.length < limit) {
        bestAt.push(a);
        bestOff.push(o);
        let i = bestAt.length - 1;
        while (i > 0) {
          const p = (i - 1) >> 1;
          if (compareKey(bestAt[p]!, bestOff[p]!, a, o) >= 0) break;
          bestAt[i] = bestAt[p]!;
          bestOff[i] = bestOff[p]!;
          i = p;
        }
        bestAt[i] = a;
        bestOff[i] = o;
        return;
      }
      if (compareKey(a, o, bestAt[0]!, bestOff[0]!) >= 0) return;
      // Replace the largest and sift down.
      let i = 0;
      const m = bestAt.length;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= m) break;
        const r = l + 1;
        const c = r < m && compareKey(bestAt[r]!, bestOff[r]!, bestAt[l]!, bestOff[l]!) > 0 ? r : l;
        if (compareKey(bestAt[c]!, bestOff[c]!, a, o) <= 0) break;
        bestAt[i] = bestAt[c]!;
        bestOff[i] = bestOff[c]!;
        i = c;
      }
      bestAt[i] = a;
      bestOff[i] = o;
    };
    for (let i = 0; i < this.n; i++) consider(this.at[i]!, this.off[i]!);
    for (const [o, a] of this.inFlight) consider(a, o);
    const out = bestAt.map((a, i) => ({ deliverAtMs: a, offset: bestOff[i]! }));
    out.sort((x, y) => compareKey(x.deliverAtMs, x.offset, y.deliverAtMs, y.offset));
    return out;
  }

  /**
   * A CANCELLED marker for the wrapper with this key (observed, or about to be appended by the
   * leader: then a release racing it skips the entry). A key at or below the frontier is moot.
   */
  cancel(deliverAtMs: number, offset: number): void {
    if (compareKey(deliverAtMs, offset, this.frontierAtMs, this.frontierOffset) <= 0 || this.cancelled.has(offset) || this.inFlight.has(offset)) return;
    this.cancelled.set(offset, deliverAtMs);
    this.cancelledInHeap++;
    if (deliverAtMs < this.cancelledMinAtMs) this.cancelledMinAtMs = deliverAtMs;
  }

  /** Drops cancels at or below the frontier; O(cancelled), run when the frontier passes the earliest. */
  private pruneCancelled(): void {
    let min = Infinity;
    for (const [o, a] of this.cancelled) {
      if (compareKey(a, o, this.frontierAtMs, this.frontierOffset) <= 0) this.cancelled.delete(o);
      else if (a < min) min = a;
    }
    this.cancelledMinAtMs = min;
  }

  private popTop(): void {
    assert(this.n > 0, 'pop of an empty delay heap');
    const last = --this.n;
    if (last === 0) return;
    const a = this.at[last]!;
    const o = this.off[last]!;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= last) break;
      const r = l + 1;
      const c = r < last && compareKey(this.at[r]!, this.off[r]!, this.at[l]!, this.off[l]!) < 0 ? r : l;
      if (compareKey(this.at[c]!, this.off[c]!, a, o) >= 0) break;
      this.at[i] = this.at[c]!;
      this.off[i] = this.off[c]!;
      i = c;
    }
    this.at[i] = a;
    this.off[i] = o;
  }

  private grow(): void {
    const cap = Math.ceil(this.at.length * 1.5);
    const at = new Float64Array(cap);
    const off = new Float64Array(cap);
    at.set(this.at);
    off.set(this.off);
    this.at = at;
    this.off = off;
  }
}
