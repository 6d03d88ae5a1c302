/**
 * A partition's archive state (tiered storage, SPEC §7.10): the committed range of its
 * archive, [startOffset, endOffset). It is the archive's commit point: a segment uploaded to
 * the archive store counts only once endOffset is past its lastOffset, and retention moves
 * startOffset forward before it deletes objects. Held in the metadata store (embedded: its
 * journal; etcd: one key per partition, compare-and-set), so it is durable and every broker
 * of a cluster sees the same one: a new leader continues where the old one stopped.
 *
 * Keyed by topic name AND topic id: a topic deleted and created again under the same name
 * never sees the old incarnation's state (deleting a topic also deletes its states).
 *
 * Invariants (checkedArchiveTransition, shared by both stores):
 * - 0 <= startOffset <= endOffset, safe integers;
 * - a write names the state it expects (undefined: none yet) and only moves forward:
 *   next.startOffset >= expected.startOffset, next.endOffset >= expected.endOffset.
 */
export interface ArchiveState {
  startOffset: number;
  endOffset: number;
}

export function sameArchiveState(a: ArchiveState | undefined, b: ArchiveState | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return a.startOffset === b.startOffset && a.endOffset === b.endOffset;
}

/** Throws Error (a caller's bug, not a client's) for a state or a transition that breaks the invariants. */
export function checkedArchiveTransition(where: string, expected: ArchiveState | undefined, next: ArchiveState): ArchiveState {
  const ok = (n: number) => Number.isSafeInteger(n) && n >= 0;
  if (!ok(next.startOffset) || !ok(next.endOffset) || next.startOffset > next.endOffset) {
    throw new Error(`${where}: bad archive state [${next.startOffset}, ${next.endOffset})`);
  }
  if (expected && (next.startOffset < expected.startOffset || next.endOffset < expected.endOffset)) {
    throw new Error(`${where}: archive state [${next.startOffset}, ${next.endOffset}) moves back from [${expected.startOffset}, ${expected.endOffset})`);
  }
  return { startOffset: next.startOffset, endOffset: next.endOffset };
}
