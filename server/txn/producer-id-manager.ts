/**
 * Hands out producer ids (SPEC §6.19) from blocks reserved in the cluster metadata store, so
 * that most InitProducerId requests cost no metadata write at all: the store reserves
 * [first, first + blockSize) durably for this broker, and this class gives those ids out from
 * memory, reserving the next block in the background once fewer than `prefetchBelow` are left.
 *
 * Invariants:
 * - Every id handed out lies in a block the store reserved for this manager, and is handed
 *   out once: `next` only increases within the current block, and a new block is always
 *   above every block the store reserved before (the store's contract). After a restart the
 *   unused rest of a block is skipped, never reused.
 * - At most one reservation is in flight. Callers that find no free id wait in arrival order
 *   (at most `waitersMax` of them; more fail at once with REQUEST_TIMED_OUT rather than queue
 *   without bound) and reservations continue while any wait.
 * - A failed reservation fails the callers waiting for it (STORAGE_ERROR or what the store
 *   said); the next call tries again.
 */
import { ErrorCode, SluiceError } from '../../protocol/errors.ts';
import { assert } from '../assert.ts';

export interface ProducerIdBlockSource {
  allocateProducerIdBlock(count: number): Promise<number>;
}

export interface ProducerIdManagerOptions {
  /** Ids reserved per metadata write. */
  blockSize?: number;
  /** Reserve the next block in the background once fewer ids than this remain. */
  prefetchBelow?: number;
  /** Callers that may wait for a block at once. */
  waitersMax?: number;
}

export const PRODUCER_ID_BLOCK_SIZE = 1000;

interface Waiter {
  resolve(id: number): void;
  reject(e: SluiceError): void;
}

export class ProducerIdManager {
  private readonly blockSize: number;
  private readonly prefetchBelow: number;
  private readonly waitersMax: number;
  /** The current block: ids next … end-1 are free. */
  private next = 0;
  private end = 0;
  /** A block reserved ahead, not yet started. */
  private spare: { first: number; end: number } | null = null;
  private reserving = false;
  /** Callers waiting for an id, served in arrival order as blocks arrive. */
  private waiters: Waiter[] = [];

  constructor(
    private readonly store: ProducerIdBlockSource,
    opts: ProducerIdManagerOptions = {},
  ) {
    this.blockSize = opts.blockSize ?? PRODUCER_ID_BLOCK_SIZE;
    this.prefetchBelow = opts.prefetchBelow ?? Math.ceil(this.blockSize / 10);
    this.waitersMax = opts.waitersMax ?? 10_000;
    assert(this.blockSize >= 1 && this.prefetchBelow >= 0 && this.prefetchBelow <= this.blockSize, 'producer id block settings');
  }

  /** A new producer id, never handed out before anywhere in the cluster. */
  allocate(): Promise<number> {
    if (this.waiters.length === 0) {
      const id = this.take();
      if (id !== undefined) return Promise.resolve(id);
    }
    if (this.waiters.length >= this.waitersMax) return Promise.reject(new SluiceError(ErrorCode.REQUEST_TIMED_OUT, `${this.waiters.length} requests already wait for producer ids; retry`));
    const p = new Promise<number>((resolve, reject) => this.waiters.push({ resolve, reject }));
    this.reserve();
    return p;
  }

  private take(): number | undefined {
    if (this.next >= this.end && this.spare) {
      this.next = this.spare.first;
      this.end = this.spare.end;
      this.spare = null;
    }
    if (this.next >= this.end) return undefined;
    const id = this.next++;
    if (this.end - this.next < this.prefetchBelow) this.reserve();
    return id;
  }

  /**
   * Reserves one block unless one is in flight or already spare; then serves the waiters,
   * and reserves again while some are left.
   */
  private reserve(): void {
    if (this.reserving || this.spare) return;
    this.reserving = true;
    this.store.allocateProducerIdBlock(this.blockSize).then(
      (first) => {
        this.reserving = false;
        assert(first >= this.end, 'a reserved producer id block lies above every earlier one');
        this.spare = { first, end: first + this.blockSize };
        while (this.waiters.length > 0) {
          const id = this.take();
          if (id === undefined) break;
          this.waiters.shift()!.resolve(id);
        }
        if (this.waiters.length > 0) this.reserve();
      },
      (e: unknown) => {
        this.reserving = false;
        const error = e instanceof SluiceError ? e : new SluiceError(ErrorCode.STORAGE_ERROR, `could not reserve producer ids: ${(e as Error)?.message ?? String(e)}`);
        for (const w of this.waiters.splice(0)) w.reject(error);
      },
    );
  }
}
