/**
 * Long polling. A Fetch that finds less than minBytes parks here, on the partitions it reads,
 * until something happens to one of them (an append, the high watermark moving, leadership
 * lost: Partition wakes its parked fetches) or its deadline passes; the fetch handler then
 * reads again. Waking is a hint, not a promise of data: the handler re-checks.
 *
 * Each partition holds the wake-ups of the fetches parked on it (`parkedFetches`), so waking
 * after an append is one field read, not a keyed lookup. This class owns the bound and the
 * timers.
 *
 * Invariants: a parked fetch is in the `parkedFetches` set of every partition it named, and in
 * no set once woken (by any of them, or its timer); it is woken exactly once.
 * Bound: at most `waitersMax` parked fetches; beyond it a fetch answers at once (empty),
 * which is correct, only less efficient.
 */

/** What a fetch parks on: one partition's set of wake-ups. */
export interface FetchParking {
  readonly parkedFetches: Set<() => void>;
}

/** Wakes every fetch parked on `on` (each then leaves all the sets it was in). */
export function wakeParkedFetches(on: FetchParking): void {
  if (on.parkedFetches.size === 0) return;
  for (const wake of [...on.parkedFetches]) wake();
}

export class DelayedFetches {
  private readonly parked = new Set<() => void>();

  constructor(private readonly waitersMax = 100_000) {}

  /** Resolves on the first wake-up of any of `on`, or after waitMs; null when it cannot park. */
  wait(on: readonly FetchParking[], waitMs: number): Promise<void> | null {
    if (waitMs <= 0 || this.parked.size >= this.waitersMax || on.length === 0) return null;
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | null = null;
      const wake = () => {
        if (timer === null) return;
        clearTimeout(timer);
        timer = null;
        this.parked.delete(wake);
        for (const p of on) p.parkedFetches.delete(wake);
        resolve();
      };
      timer = setTimeout(wake, waitMs);
      this.parked.add(wake);
      for (const p of on) p.parkedFetches.add(wake);
    });
  }

  /** Shutdown: every parked fetch answers now. */
  wakeAll(): void {
    for (const wake of [...this.parked]) wake();
  }

  get parkedCount(): number {
    return this.parked.size;
  }
}
