/**
 * Message values for the bench: SIZE bytes cut from a pool of random bytes, so values differ
 * (no accidental compressibility games) without generating randomness per message.
 * e2e values carry their send time, performance.now() as a float64, in bytes [0, 8).
 */
import { randomFillSync } from 'node:crypto';

const POOL_BYTES = 1024 * 1024;
export const SEND_TIME_BYTES = 8;

export class Payloads {
  private readonly pool: Buffer;
  private next = 0;

  constructor(private readonly sizeBytes: number) {
    this.pool = randomFillSync(Buffer.allocUnsafe(POOL_BYTES + sizeBytes));
  }

  /** A view of sizeBytes pool bytes; the producer copies it into a batch on send. */
  value(): Buffer {
    const start = this.next;
    this.next = (this.next + 61) % POOL_BYTES;
    return this.pool.subarray(start, start + this.sizeBytes);
  }

  /** A fresh value that starts with the current performance.now(). Needs sizeBytes >= 8. */
  timedValue(): Buffer {
    const b = Buffer.allocUnsafe(this.sizeBytes);
    this.pool.copy(b, 0, this.next, this.next + this.sizeBytes);
    this.next = (this.next + 61) % POOL_BYTES;
    b.writeDoubleLE(performance.now(), 0);
    return b;
  }
}

export function sendTimeOf(value: Buffer): number {
  return value.readDoubleLE(0);
}
