/**
 * Typed errors of the idempotent and transactional producer (SPEC §8.5, §6.19-6.24).
 *
 * - ProducerFencedError: a newer instance of this producer exists (INVALID_PRODUCER_EPOCH,
 *   PRODUCER_FENCED) or the transactional id no longer maps to this producer id
 *   (INVALID_PRODUCER_ID_MAPPING). Fatal: every pending send fails with it, the producer
 *   refuses new sends; only a new Producer can go on.
 * - TransactionAbortableError: the current transaction cannot commit (a batch failed, the
 *   group refused the offsets because the consumer is no longer a current member), but the
 *   producer is fine: abort() and start again.
 * Both keep the broker's error code (`code`, a SluiceError's) and say what to do.
 */
import { ErrorCode, SluiceError } from '../../protocol/errors.ts';

export class ProducerFencedError extends SluiceError {
  constructor(code: ErrorCode, detail: string) {
    super(code, `producer fenced (${detail}): another instance with the same producer id or transactional id took over; close this producer and create a new one`);
    this.name = 'ProducerFencedError';
  }
}

export class TransactionAbortableError extends SluiceError {
  constructor(code: ErrorCode, detail: string) {
    super(code, `transaction cannot commit (${detail}): abort it and retry the work in a new transaction`);
    this.name = 'TransactionAbortableError';
    // Whatever the cause's code, resending within this transaction cannot help.
    Object.defineProperty(this, 'retriable', { value: false });
  }
}

/** Broker error codes after which this producer id and epoch are unusable. */
export function isFencingCode(code: number): boolean {
  return code === ErrorCode.INVALID_PRODUCER_EPOCH || code === ErrorCode.PRODUCER_FENCED || code === ErrorCode.INVALID_PRODUCER_ID_MAPPING;
}
