/**
 * PendingDelays: what a partition's log says about its delayed messages (SPEC §7.9), kept on
 * every replica: the frontier (the key of the newest RELEASED marker), the pending wrappers'
 * keys in release order, and the cancelled ones not yet due. It is a pure function of the
 * batches observed in log order, so replicas with the same log agree, and a follower that
 * becomes leader releases from where the old leader stopped.
 *
 * Where the keys are: each closed segment's keys are a SortedRun (sorted-run.ts) read from its
 * sidecar file a chunk at a time; only the active segment's keys (at most
 * delayedEntriesPerSegmentMax: the segment rolls then) are in memory, in a binary heap. The
 * scheduler merges the heap top and the runs' heads (a k-way merge). So memory is bounded by
 * the active segment and the number of segments, not by the number pending.
 *
 * Invariants:
 * - Pending = a wrapper key > frontier, not cancelled, whose key is at or after its source's
 *   cursor (heap or run), or in flight (taken by the releaser, not yet released).
 * - takeDue returns keys in key order and skips keys at or below the frontier, keys in flight
 *   (a key restored to the heap may also still be in a run) and cancelled keys (dropped when due).
 * - `cancelled` maps offsets of cancelled wrappers with key > frontier to their time; entries
 *   leave when the frontier passes them. cancelledPending counts those not yet dropped.
 * - Memory: heap 16 bytes per active-segment key (Float64Arrays grown by half); 4 KiB per run;
 *   the cancel map, bounded by the caller (delayedCancelsPendingMax); in flight at most a slice.
 */
import { assert } from '../assert.ts';
import { compareKey, CONTROL_TYPE_CANCELLED, CONTROL_TYPE_RELEASED, CONTROL_TYPE_SCHEDULED, controlTypeAt, readDelayMarker, readScheduled } from '../../protocol/delayed-batch.ts';
import { ATTR_CONTROL, ATTR_TRANSACTIONAL, Off } from '../../protocol/record-batch.ts';
import type { SortedRun } from './sorted-run.ts';

const INITIAL_CAPACITY = 256;
/** Cancelled keys minPendingOffset looks past at the head of a run before it pins the run's segment anyway. */
const CANCELLED_SCAN_MAX = 1024;

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
  /** Closed segments' runs, in segment order; exhausted ones are dropped. */
  private runs: SortedRun[] = [];
  private readonly cancelled = new Map<number, number>();
  private readonly droppedCancels = new Set<number>();
  private cancelledPending = 0;
  private cancelledMinAtMs = Infinity;
  private readonly inFlight = new Map<number, number>();
  /** The newest RELEASED marker's key, (-1, -1) when none. */
  frontierAtMs = -1;
  frontierOffset = -1;
  /** The newest RELEASED marker's own offset, -1 when none (torn-tail detection, SPEC §7.9). */
  lastReleaseMarkerOffset = -1;

  /** Keys held in memory (the active segment's heap); for diagnostics and tests. */
  get inMemoryKeys(): number {
    return this.n;
  }

  get runCount(): number {
    return this.runs.length;
  }

  get pendingCount(): number {
    let total = this.n + this.inFlight.size - this.cancelledPending;
    for (const r of this.runs) {
      this.normalize(r);
      total += r.remaining;
    }
    return total;
  }

  get cancelledCount(): number {
    return this.cancelled.size;
  }

  clear(): void {
    this.at = new Float64Array(INITIAL_CAPACITY);
    this.off = new Float64Array(INITIAL_CAPACITY);
    this.n = 0;
    this.runs = [];
    this.cancelled.clear();
    this.droppedCancels.clear();
    this.cancelledPending = 0;
    this.cancelledMinAtMs = Infinity;
    this.inFlight.clear();
    this.frontierAtMs = -1;
    this.frontierOffset = -1;
    this.lastReleaseMarkerOffset = -1;
  }

  /** One delayed-delivery control batch (whole in b at pos), appended to the active segment, in log order. */
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

  /** A wrapper's key in the active segment: pending unless at or below the frontier. */
  add(deliverAtMs: number, offset: number): void {
    if (compareKey(deliverAtMs, offset, this.frontierAtMs, this.frontierOffset) <= 0) return;
    if (this.n === this.at.length) this.grow();
    let i = this.n++;
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

  /**
   * A closed segment's keys as a run (at open, in segment order; or when the active segment
   * rolls: then its keys leave the heap, as the run holds them now).
   */
  addRun(run: SortedRun, segmentNext: number): void {
    if (this.n > 0) {
      // Keys of [run.segmentBase, segmentNext) move from the heap to the run; O(heap), once per roll.
      const keepAt: number[] = [];
      const keepOff: number[] = [];
      for (let i = 0; i < this.n; i++) {
        const o = this.off[i]!;
        if (o < run.segmentBase || o >= segmentNext) {
          keepAt.push(this.at[i]!);
          keepOff.push(o);
        }
      }
      this.n = 0;
      for (let i = 0; i < keepAt.length; i++) this.add(keepAt[i]!, keepOff[i]!);
      if (this.at.length > INITIAL_CAPACITY && this.n < this.at.length / 4) this.shrink();
    }
    // Keys of the run no longer pending here: taken by the releaser, or cancelled and skipped when due.
    const base = run.segmentBase;
    for (const [o, a] of this.inFlight) if (o >= base && o < segmentNext) run.excluded.set(o, a);
    for (const o of this.droppedCancels) if (o >= base && o < segmentNext) run.excluded.set(o, this.cancelled.get(o)!);
    this.normalize(run);
    if (!run.done) this.runs.push(run);
  }

  /** A RELEASED marker: the frontier moves to its key; every key at or below it is done. */
  released(deliverAtMs: number, wrapperOffset: number, markerOffset: number): void {
    if (compareKey(deliverAtMs, wrapperOffset, this.frontierAtMs, this.frontierOffset) > 0) {
      this.frontierAtMs = deliverAtMs;
      this.frontierOffset = wrapperOffset;
    }
    this.lastReleaseMarkerOffset = markerOffset;
    this.inFlight.delete(wrapperOffset);
    while (this.n > 0 && compareKey(this.at[0]!, this.off[0]!, this.frontierAtMs, this.frontierOffset) <= 0) {
      if (this.cancelled.has(this.off[0]!) && !this.droppedCancels.has(this.off[0]!)) this.dropCancel(this.off[0]!);
      this.popTop();
    }
    if (this.inFlight.size > 0) {
      for (const [off, at] of this.inFlight) if (compareKey(at, off, this.frontierAtMs, this.frontierOffset) <= 0) this.inFlight.delete(off);
    }
    // Runs catch up lazily (normalize); cancels the frontier passed are pruned here.
    if (this.frontierAtMs >= this.cancelledMinAtMs) this.pruneCancelled();
  }

  /** Time of the first key still to look at (possibly a cancelled one, dropped when due), or Infinity. */
  nextDueMs(): number {
    let due = this.n === 0 ? Infinity : this.at[0]!;
    for (const r of this.runs) {
      this.normalize(r);
      if (!r.done && r.headAt() < due) due = r.headAt();
    }
    return due;
  }

  /**
   * Takes up to max pending keys due at nowMs, in key order, into flight (for the releaser).
   * They stay pending (ListDelayed, retention) until their RELEASED marker is observed.
   */
  takeDue(nowMs: number, max: number): DelayKey[] {
    const out: DelayKey[] = [];
    while (out.length < max) {
      // The smallest head among the heap and the runs.
      let bestRun: SortedRun | null = null;
      let bestAt = this.n > 0 ? this.at[0]! : Infinity;
      let bestOff = this.n > 0 ? this.off[0]! : Infinity;
      for (const r of this.runs) {
        this.normalize(r);
        if (r.done) continue;
        const a = r.headAt();
        const o = r.headOffset();
        if (compareKey(a, o, bestAt, bestOff) < 0) {
          bestRun = r;
          bestAt = a;
          bestOff = o;
        }
      }
      if (bestAt > nowMs) break;
      if (bestRun === null) this.popTop();
      else {
        bestRun.pos++;
        if (bestRun.excluded.delete(bestOff)) continue;
      }
      if (this.inFlight.has(bestOff) || compareKey(bestAt, bestOff, this.frontierAtMs, this.frontierOffset) <= 0) continue;
      if (this.cancelled.has(bestOff)) {
        // Due and cancelled: skipped; it stays in `cancelled` until the frontier passes it.
        if (!this.droppedCancels.has(bestOff)) this.dropCancel(bestOff);
        continue;
      }
      this.inFlight.set(bestOff, bestAt);
      out.push({ deliverAtMs: bestAt, offset: bestOff });
    }
    this.runs = this.runs.filter((r) => !r.done);
    return out;
  }

  /** Drops a key taken by takeDue that cannot be released (its wrapper is gone). */
  abandon(k: DelayKey): void {
    this.inFlight.delete(k.offset);
  }

  /** Puts keys taken by takeDue back (their release was not appended): into the heap. */
  restore(keys: readonly DelayKey[]): void {
    for (const k of keys) {
      if (this.inFlight.delete(k.offset)) this.add(k.deliverAtMs, k.offset);
    }
  }

  /** The state of the wrapper at offset with the given key (read from the log). */
  stateOf(deliverAtMs: number, offset: number): 'pending' | 'in-flight' | 'done' {
    if (this.inFlight.has(offset)) return 'in-flight';
    if (this.cancelled.has(offset)) return 'done';
    if (compareKey(deliverAtMs, offset, this.frontierAtMs, this.frontierOffset) <= 0) return 'done';
    return 'pending';
  }

  /**
   * Smallest offset retention must keep (SPEC §7.9): the first segment whose run still has keys,
   * or the smallest pending key in memory or in flight; Infinity when nothing is pending.
   */
  minPendingOffset(): number {
    let min = Infinity;
    for (const r of this.runs) {
      this.normalize(r);
      // A run whose remaining keys are all cancelled pins nothing (looked at up to a bound).
      let i = r.pos;
      while (i < r.count && i - r.pos < CANCELLED_SCAN_MAX && (this.cancelled.has(r.offsetOf(i)) || r.excluded.has(r.offsetOf(i)))) i++;
      if (i < r.count) {
        min = r.segmentBase;
        break;
      }
    }
    for (let i = 0; i < this.n; i++) {
      const o = this.off[i]!;
      if (o < min && !this.cancelled.has(o)) min = o;
    }
    for (const o of this.inFlight.keys()) if (o < min) min = o;
    return min;
  }

  /**
   * Up to limit pending keys strictly after (afterAtMs, afterOffset), in key order: the runs
   * from their first key after it (binary search), the heap and the keys in flight, merged.
   */
  listAfter(afterAtMs: number, afterOffset: number, limit: number): DelayKey[] {
    const afterFrontier = compareKey(afterAtMs, afterOffset, this.frontierAtMs, this.frontierOffset) > 0;
    const fromAt = afterFrontier ? afterAtMs : this.frontierAtMs;
    const fromOff = afterFrontier ? afterOffset : this.frontierOffset;
    // The best `limit` keys, sorted, kept while walking every source: memory O(limit).
    const best: DelayKey[] = [];
    const consider = (a: number, o: number): void => {
      if (compareKey(a, o, fromAt, fromOff) <= 0 || this.cancelled.has(o)) return;
      if (best.length === limit && compareKey(a, o, best[limit - 1]!.deliverAtMs, best[limit - 1]!.offset) >= 0) return;
      let i = best.length;
      while (i > 0 && compareKey(best[i - 1]!.deliverAtMs, best[i - 1]!.offset, a, o) > 0) i--;
      // A key restored to memory may also be in a run: one entry per offset (equal keys sit together).
      if (i > 0 && best[i - 1]!.offset === o) return;
      best.splice(i, 0, { deliverAtMs: a, offset: o });
      if (best.length > limit) best.pop();
    };
    for (const r of this.runs) {
      // At most `limit` keys of each run can be among the first `limit`.
      let taken = 0;
      for (let i = r.firstAfter(fromAt, fromOff); i < r.count && taken < limit; i++) {
        const o = r.offsetOf(i);
        if (this.cancelled.has(o) || this.inFlight.has(o) || r.excluded.has(o)) continue;
        consider(r.atOf(i), o);
        taken++;
      }
    }
    for (let i = 0; i < this.n; i++) consider(this.at[i]!, this.off[i]!);
    for (const [o, a] of this.inFlight) consider(a, o);
    return best;
  }

  /**
   * A CANCELLED marker for the wrapper with this key (observed in log order). A key at or below
   * the frontier, or one being released, is moot.
   */
  cancel(deliverAtMs: number, offset: number): void {
    if (compareKey(deliverAtMs, offset, this.frontierAtMs, this.frontierOffset) <= 0 || this.cancelled.has(offset) || this.inFlight.has(offset)) return;
    this.cancelled.set(offset, deliverAtMs);
    this.cancelledPending++;
    if (deliverAtMs < this.cancelledMinAtMs) this.cancelledMinAtMs = deliverAtMs;
  }

  /** Forgets the runs of segments retention deleted (below the new log start). */
  dropRunsBelow(logStartOffset: number): void {
    this.runs = this.runs.filter((r) => r.segmentBase >= logStartOffset);
  }

  /** Moves a run's cursor past keys at or below the frontier. */
  private normalize(r: SortedRun): void {
    if (!r.done && compareKey(r.headAt(), r.headOffset(), this.frontierAtMs, this.frontierOffset) <= 0) {
      // Cancelled keys the frontier passes are counted out by pruneCancelled, not here.
      r.skipTo(this.frontierAtMs, this.frontierOffset);
      for (const [o, a] of r.excluded) if (compareKey(a, o, this.frontierAtMs, this.frontierOffset) <= 0) r.excluded.delete(o);
    }
  }

  private dropCancel(offset: number): void {
    this.droppedCancels.add(offset);
    this.cancelledPending--;
  }

  /** Drops cancels at or below the frontier; O(cancelled), run when the frontier passes the earliest. */
  private pruneCancelled(): void {
    let min = Infinity;
    for (const [o, a] of this.cancelled) {
      if (compareKey(a, o, this.frontierAtMs, this.frontierOffset) <= 0) {
        this.cancelled.delete(o);
        if (this.droppedCancels.delete(o) === false) this.cancelledPending--;
      } else if (a < min) {
        min = a;
      }
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

  private shrink(): void {
    const cap = Math.max(INITIAL_CAPACITY, this.n * 2);
    this.at = this.at.slice(0, cap);
    this.off = this.off.slice(0, cap);
  }
}
