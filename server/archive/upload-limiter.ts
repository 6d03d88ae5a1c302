/**
 * The broker-wide bound on archive uploads (SPEC §7.10): at most `concurrency` segments in
 * flight, all partitions together, and a token bucket that paces their bytes to
 * `bytesPerSec` (0 = unlimited). Every uploader takes a slot (acquire) for one segment and
 * passes pace() to ArchiveStore.putFile, which awaits it before each chunk.
 *
 * Invariants:
 * - active <= concurrency; waiters are served first come, first served, and at most
 *   WAITERS_MAX wait (one per uploading partition is the normal case): more is refused.
 * - The bucket holds at most BURST_MS of tokens; a chunk larger than the balance waits
 *   (balance may go negative by one chunk), so the long-run rate is bytesPerSec.
 * - Every wait is bounded: a pace() wait is at most chunk / rate, and a slot wait ends when
 *   an upload ends (uploads have their own time bounds) or the waiter's signal aborts.
 */
import { assert } from '../assert.ts';

const WAITERS_MAX = 100_000;
/** Tokens saved up while idle: at most this much time's worth. */
const BURST_MS = 1000;

export class UploadLimiter {
  private active = 0;
  private readonly waiters: Array<() => void> = [];
  private tokens = 0;
  private refilledAtMs = Date.now();

  constructor(
    readonly concurrency: number,
    readonly bytesPerSec: number,
  ) {
    assert(Number.isInteger(concurrency) && concurrency >= 1, `upload concurrency ${concurrency}`);
    assert(Number.isSafeInteger(bytesPerSec) && bytesPerSec >= 0, `upload rate ${bytesPerSec}`);
  }

  get inFlight(): number {
    return this.active;
  }

  /** Waits for an upload slot; the returned function gives it back (call exactly once). */
  async acquire(signal?: AbortSignal): Promise<() => void> {
    if (this.active < this.concurrency && this.waiters.length === 0) {
      this.active++;
      return this.releaser();
    }
    if (this.waiters.length >= WAITERS_MAX) throw new Error(`${WAITERS_MAX} archive uploads already wait for a slot`);
    await new Promise<void>((resolve, reject) => {
      const grant = () => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      const onAbort = () => {
        const i = this.waiters.indexOf(grant);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(signal!.reason ?? new Error('aborted'));
      };
      if (signal?.aborted) return reject(signal.reason ?? new Error('aborted'));
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(grant);
    });
    return this.releaser();
  }

  private releaser(): () => void {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const next = this.waiters.shift();
      if (next) next(); // the slot passes on: active stays the same
      else this.active--;
      assert(this.active >= 0 && this.active <= this.concurrency, `archive upload slots ${this.active}`);
    };
  }

  /** Resolves when `bytes` more may be sent (at once when unlimited). */
  pace = async (bytes: number): Promise<void> => {
    if (this.bytesPerSec === 0) return;
    const now = Date.now();
    this.tokens = Math.min(this.bytesPerSec * (BURST_MS / 1000), this.tokens + ((now - this.refilledAtMs) * this.bytesPerSec) / 1000);
    this.refilledAtMs = now;
    this.tokens -= bytes;
    if (this.tokens < 0) await new Promise((r) => setTimeout(r, Math.ceil((-this.tokens * 1000) / this.bytesPerSec)));
  };
}
