/**
 * The state of one transactional id at its coordinator (SPEC §7.6), and which changes of
 * state are allowed. One record of `__transaction_state` holds exactly this.
 *
 * Invariants (checked by checkTransition and asserted where the coordinator changes state):
 * - producerEpoch never decreases for the same producerId; a new producerId starts at 0.
 * - partitions is empty in `empty`, and fixed from `prepare-*` on: the markers go exactly to
 *   the partitions the decision was made for.
 * - startMs is -1 unless a transaction is open or being completed (ongoing, prepare-*).
 */
import { assert } from '../assert.ts';

export const TXN_STATES = ['empty', 'ongoing', 'prepare-commit', 'prepare-abort', 'complete-commit', 'complete-abort'] as const;
export type TxnState = (typeof TXN_STATES)[number];

export interface TxnTopicPartitions {
  topic: string;
  partitions: number[];
}

export interface TxnMetadata {
  producerId: number;
  producerEpoch: number;
  timeoutMs: number;
  state: TxnState;
  /** The transaction's partitions, by topic, each topic once, partitions ascending and distinct. */
  partitions: TxnTopicPartitions[];
  /** When the transaction began (its first AddPartitionsToTxn/AddOffsetsToTxn); -1 when none is open. */
  startMs: number;
  /** When this state was written. */
  updateMs: number;
}

/** Which state may follow which (Kafka's TransactionState transitions, in Sluice's names). */
const NEXT: Record<TxnState, readonly TxnState[]> = {
  // InitProducerId bumps the epoch and stays empty; the first AddPartitions begins one.
  'empty': ['empty', 'ongoing', 'prepare-abort'],
  'ongoing': ['ongoing', 'prepare-commit', 'prepare-abort'],
  'prepare-commit': ['complete-commit'],
  'prepare-abort': ['complete-abort'],
  'complete-commit': ['empty', 'ongoing', 'prepare-abort'],
  'complete-abort': ['empty', 'ongoing', 'prepare-abort'],
};

export function canTransition(from: TxnState, to: TxnState): boolean {
  return NEXT[from].includes(to);
}

/** A transaction is open (partitions may be added, it may be ended) or being completed. */
export function isPrepare(state: TxnState): state is 'prepare-commit' | 'prepare-abort' {
  return state === 'prepare-commit' || state === 'prepare-abort';
}

export function checkTransition(from: TxnMetadata | undefined, to: TxnMetadata): void {
  if (from) {
    assert(canTransition(from.state, to.state), () => `transaction state ${from.state} -> ${to.state}`);
    assert(to.producerId !== from.producerId ? to.producerEpoch === 0 : to.producerEpoch >= from.producerEpoch, () => `producer epoch ${from.producerId}/${from.producerEpoch} -> ${to.producerId}/${to.producerEpoch}`);
  }
  assert(to.state !== 'empty' || to.partitions.length === 0, 'an empty transaction state has no partitions');
}

/** Adds partitions (deduplicated, sorted) to a transaction's partition list; returns a new list. */
export function withPartitions(current: readonly TxnTopicPartitions[], add: ReadonlyArray<{ topic: string; partition: number }>): TxnTopicPartitions[] {
  const byTopic = new Map<string, Set<number>>();
  for (const t of current) byTopic.set(t.topic, new Set(t.partitions));
  for (const { topic, partition } of add) {
    let s = byTopic.get(topic);
    if (!s) byTopic.set(topic, (s = new Set()));
    s.add(partition);
  }
  return [...byTopic].map(([topic, s]) => ({ topic, partitions: [...s].sort((a, b) => a - b) }));
}

export function partitionCount(list: readonly TxnTopicPartitions[]): number {
  let n = 0;
  for (const t of list) n += t.partitions.length;
  return n;
}

export function hasPartition(list: readonly TxnTopicPartitions[], topic: string, partition: number): boolean {
  return list.some((t) => t.topic === topic && t.partitions.includes(partition));
}
