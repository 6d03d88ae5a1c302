/**
 * Assertions: the invariants of the log and of replication, stated in code (TIGER_STYLE).
 *
 * What a breach means, and what happens then:
 * - A failed assertion is a bug in this process, never an I/O error or bad input: the state in
 *   memory is no longer what the code around it relies on. Bad input is refused with a
 *   SluiceError; a failed disk is a SluiceError(STORAGE_ERROR). Neither is asserted.
 * - assert() throws an InvariantError. It is deliberately not a SluiceError, so every handler
 *   that maps SluiceErrors to error codes and rethrows the rest (`if (!(e instanceof
 *   SluiceError)) throw e`) lets it through to the connection, which logs it as an error and
 *   answers UNKNOWN_SERVER_ERROR for that request.
 * - The partition goes offline: PartitionLog, when an invariant of its own breaks or an
 *   InvariantError comes up through one of its write paths (append, truncation, epoch changes,
 *   compaction), records it as its failure, logs it, and rethrows. Every later append and flush
 *   of that partition gets STORAGE_ERROR until the broker restarts and recovers the log from
 *   disk (what Kafka does with a log directory it no longer trusts). Reads continue: what is on
 *   disk was written and validated before the breach. The other partitions are untouched: a
 *   bug seen in one log is no reason to stop serving the rest.
 * - Never logged and ignored: the background loops that catch everything (retention and
 *   compaction passes in log-manager.ts, the follower fetch loop in replica-fetchers.ts) log an
 *   InvariantError at error level as a breach and go on with the other partitions, the broken
 *   one being offline already. Code that must rethrow it from a catch-all uses
 *   rethrowInvariant / isInvariantError.
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
