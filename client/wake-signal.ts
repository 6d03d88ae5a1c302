/**
 * A wait that something else ends early: wait(timeoutMs) resolves on wake() or after
 * timeoutMs, whichever comes first. One waiter at a time (its callers allow one poll at a
 * time): a new wait() takes over from the previous one, which then ends only at its timeout.
 * Every wait is bounded by its timeout, and its timer is cleared when it ends.
 */
export class WakeSignal {
  private waiter: (() => void) | null = null;

  wait(timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, timeoutMs);
      const self = this;
      function done(): void {
        clearTimeout(timer);
        if (self.waiter === done) self.waiter = null;
        resolve();
      }
      this.waiter = done;
    });
  }

  /** Ends the current wait now; nothing happens when none is running. */
  wake(): void {
    const w = this.waiter;
    if (w) {
      this.waiter = null;
      w();
    }
  }
}
