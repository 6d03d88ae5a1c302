/**
 * Assertions: the invariants of the log and of replication, stated in code (TIGER_STYLE).
 *
 * What a breach means, and what happens then:
 * - A failed assertion is a bug in this process, never an I/O error or bad input: the state in
 *   memory is no longer what the code around it relies on. Bad input is refused with a
 *   SluiceError; a failed disk is a SluiceError(STORAGE_ERROR). Neither is asserted.
 * - assert() throws an InvariantError. It is deliberately not a SluiceError, so every handler
 *   that maps SluiceErrors to error codes and rethrows the rest (`if (!(e instanceof
 *   SluiceError)) throw e`) lets it through to the connection, which logs it and fails the
 *   request; and it is not caught to be logged and forgotten: catch-alls in server/ rethrow it
 *   (see isInvariantError).
 * - PartitionLog, when an invariant of its own breaks, also takes itself offline before
 *   rethrowing: it records the error as its failure, so every later append and flush of that
 *   partition gets STORAGE_ERROR until the broker restarts and recovers the log from disk
 *   (what Kafka does with a log directory it no longer trusts). Reads continue: what is on
 *   disk was written and validated before the breach.
 * - Assertions are always on. Each costs a comparison; none allocates unless it fails (the
 *   message is built lazily when it is a function).
 */

export class InvariantError extends Error {
  override name = 'InvariantError';
}

/** Throws InvariantError when `condition` is false. `message` may be a function, called only on failure. */
export function assert(condition: boolean, message: string | (() => string)): asserts condition {
  if (!condition) throw new InvariantError(typeof message === 'function' ? message() : message);
}

export function isInvariantError(e: unknown): e is InvariantError {
  return e instanceof InvariantError;
}

/** For catch-alls that log and continue: rethrows an InvariantError, returns for anything else. */
export function rethrowInvariant(e: unknown): void {
  if (e instanceof InvariantError) throw e;
}
