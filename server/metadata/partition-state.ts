/**
 * The stored form of a PartitionState, checked once for every store: both the etcd store and
 * the embedded store pass every state they are given (initial, added, compare-and-set) through
 * checkedPartitionState before it is written, so neither can hold a state that breaks the
 * invariants below, and a caller's object is never shared with a store's cache.
 *
 * Invariants of a stored state:
 * - leaderEpoch, partitionEpoch and leaderBrokerEpoch (when present) are non-negative integers.
 * - replicas and isr are broker ids (non-negative integers); isr is a subset of replicas.
 * - the leader is NO_LEADER or a member of isr.
 * - targetReplicas (a reassignment in progress) is a subset of replicas; with it,
 *   throttleBytesPerSec is always present (0 = no throttle), without it never.
 * - no other fields: a state is exactly what the interface describes.
 */
import { NO_LEADER, type PartitionState } from './cluster-store.ts';

/** A partition nobody leads yet, for the controller to assign (etcd store's default). */
export function initialPartitionState(): PartitionState {
  return { leader: NO_LEADER, leaderEpoch: 0, replicas: [], isr: [], partitionEpoch: 0 };
}

const isBrokerIds = (xs: readonly number[]): boolean => Array.isArray(xs) && xs.every((x) => Number.isInteger(x) && x >= 0);

/**
 * A copy of s with partitionEpoch, holding exactly the stored fields; throws (a caller's bug,
 * not a client's error) when s breaks an invariant.
 */
export function checkedPartitionState(s: Omit<PartitionState, 'partitionEpoch'>, partitionEpoch: number): PartitionState {
  if (!isBrokerIds(s.replicas) || !isBrokerIds(s.isr)) throw new Error('replicas and isr must be broker ids');
  const state: PartitionState = { leader: s.leader, leaderEpoch: s.leaderEpoch, replicas: [...s.replicas], isr: [...s.isr], partitionEpoch };
  if (s.leaderBrokerEpoch !== undefined) {
    if (!Number.isInteger(s.leaderBrokerEpoch) || s.leaderBrokerEpoch < 0) throw new Error(`leaderBrokerEpoch must be a non-negative integer, got ${s.leaderBrokerEpoch}`);
    state.leaderBrokerEpoch = s.leaderBrokerEpoch;
  }
  if (s.targetReplicas) {
    if (!isBrokerIds(s.targetReplicas) || !s.targetReplicas.every((b) => s.replicas.includes(b))) {
      throw new Error(`targetReplicas ${JSON.stringify(s.targetReplicas)} must be among replicas ${JSON.stringify(s.replicas)}`);
    }
    state.targetReplicas = [...s.targetReplicas];
    state.throttleBytesPerSec = s.throttleBytesPerSec ?? 0;
    if (!Number.isFinite(state.throttleBytesPerSec) || state.throttleBytesPerSec < 0) throw new Error(`throttleBytesPerSec must be a non-negative number, got ${state.throttleBytesPerSec}`);
  }
  if (!Number.isInteger(state.leader) || (state.leader < 0 && state.leader !== NO_LEADER)) throw new Error(`leader must be a broker id or NO_LEADER, got ${state.leader}`);
  if (!Number.isInteger(state.leaderEpoch) || state.leaderEpoch < 0) throw new Error(`leaderEpoch must be a non-negative integer, got ${state.leaderEpoch}`);
  if (!Number.isInteger(state.partitionEpoch) || state.partitionEpoch < 0) throw new Error(`partitionEpoch must be a non-negative integer, got ${state.partitionEpoch}`);
  if (!state.isr.every((b) => state.replicas.includes(b))) throw new Error(`isr ${JSON.stringify(state.isr)} is not a subset of replicas ${JSON.stringify(state.replicas)}`);
  if (state.leader !== NO_LEADER && !state.isr.includes(state.leader)) throw new Error(`leader ${state.leader} is not in isr ${JSON.stringify(state.isr)}`);
  return state;
}

/**
 * The states a createTopic or updateTopic stores for partitions [from, from + count): the
 * given ones, checked (their length must be count), or `fallback()` for each.
 */
export function checkedNewStates(what: string, count: number, given: readonly PartitionState[] | undefined, fallback: () => PartitionState): PartitionState[] {
  if (given && given.length !== count) throw new Error(`${what}: ${given.length} partition states for ${count} new partitions`);
  return Array.from({ length: count }, (_, i) => {
    const s = given ? given[i]! : fallback();
    return checkedPartitionState(s, s.partitionEpoch);
  });
}
