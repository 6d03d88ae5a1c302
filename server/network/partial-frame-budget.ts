/**
 * Broker-wide bound on the bytes held in half-received request frames. A frame that arrives
 * in pieces is buffered until complete; without a shared bound, many connections each sending
 * most of a large frame could hold memory without limit.
 *
 * Invariant: `totalBytes` is the sum of every connection's partial-frame bytes as last
 * reported. When it exceeds `totalBytesMax`, a connection that holds a partial frame stops
 * reading (backpressure, like Kafka's queued.max.request.bytes) until the total falls back
 * under the bound; each connection reads at most one socket chunk (64 KiB) past it. Stalled
 * frames are then ended by the per-connection partialFrameTimeoutMs, which frees the memory.
 * Cost: one addition per received chunk; waiters are only touched while the bound is exceeded.
 */
export class PartialFrameBudget {
  private total = 0;
  private readonly waiters = new Set<() => void>();

  constructor(readonly totalBytesMax: number) {}

  get totalBytes(): number {
    return this.total;
  }

  get exceeded(): boolean {
    return this.total > this.totalBytesMax;
  }

  /** Applies a change in one connection's partial-frame bytes; wakes waiters once there is room. */
  adjust(deltaBytes: number): void {
    if (deltaBytes === 0) return;
    this.total += deltaBytes;
    if (deltaBytes < 0 && !this.exceeded && this.waiters.size > 0) {
      const ws = [...this.waiters];
      this.waiters.clear();
      for (const w of ws) w();
    }
  }

  /** Calls onRoom once the total is within the bound again. */
  waitForRoom(onRoom: () => void): void {
    this.waiters.add(onRoom);
  }

  cancelWait(onRoom: () => void): void {
    this.waiters.delete(onRoom);
  }
}
