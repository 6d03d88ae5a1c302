/**
 * Long polling. A Fetch that finds less than minBytes parks here, keyed by the partitions
 * it reads, until an append to one of them wakes it or its deadline passes; the fetch
 * handler then reads again. Waking is a hint, not a promise of data: the handler re-checks.
 * Bound: at most `waitersMax` parked fetches; beyond it a fetch answers at once (empty),
 * which is correct, only less efficient.
 */
export class DelayedFetches {
  private readonly byPartition = new Map<string, Set<() => void>>();
  private count = 0;

  constructor(private readonly waitersMax = 100_000) {}

  static key(topic: string, partition: number): string {
    return `${topic}\u0000${partition}`;
  }

  /** Resolves on the first append to any of keys, or after waitMs; null when it cannot park. */
  wait(keys: readonly string[], waitMs: number): Promise<void> | null {
    if (waitMs <= 0 || this.count >= this.waitersMax || keys.length === 0) return null;
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | null = null;
      const wake = () => {
        if (timer === null) return;
        clearTimeout(timer);
        timer = null;
        this.count--;
        for (const k of keys) {
          const set = this.byPartition.get(k);
          if (set) {
            set.delete(wake);
            if (set.size === 0) this.byPartition.delete(k);
          }
        }
        resolve();
      };
      timer = setTimeout(wake, waitMs);
      this.count++;
      for (const k of keys) {
        let set = this.byPartition.get(k);
        if (!set) this.byPartition.set(k, (set = new Set()));
        set.add(wake);
      }
    });
  }

  /** Called after every append: wakes the fetches parked on that partition. */
  notify(key: string): void {
    const set = this.byPartition.get(key);
    if (!set) return;
    for (const wake of [...set]) wake();
  }

  /** Shutdown: every parked fetch answers now. */
  wakeAll(): void {
    for (const set of [...this.byPartition.values()]) for (const wake of [...set]) wake();
  }

  get parked(): number {
    return this.count;
  }
}
