// The controller's pure decisions: leader election from the ISR, ISR cleanup, unclean
// election, and the two steps of a reassignment.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { completeReassignment, decide, startReassignment } from '../../../server/cluster/controller.ts';
import { NO_LEADER, type PartitionState } from '../../../server/metadata/cluster-store.ts';

const state = (s: Partial<PartitionState>): PartitionState => ({ leader: 1, leaderEpoch: 3, replicas: [1, 2, 3], isr: [1, 2, 3], partitionEpoch: 7, ...s });

test('a live leader with a live ISR needs nothing; dead ISR members are dropped', () => {
  assert.equal(decide(state({}), new Set([1, 2, 3]), false), null);
  assert.deepEqual(decide(state({}), new Set([1, 2]), false), { leader: 1, leaderEpoch: 3, replicas: [1, 2, 3], isr: [1, 2] });
});

test('a dead leader is replaced by the first live in-sync replica in replica order, epoch bumped', () => {
  assert.deepEqual(decide(state({ isr: [1, 3, 2] }), new Set([2, 3]), false), { leader: 2, leaderEpoch: 4, replicas: [1, 2, 3], isr: [3, 2] });
  // An out-of-sync live replica never leads a clean election.
  assert.deepEqual(decide(state({ isr: [1] }), new Set([2, 3]), false), { leader: NO_LEADER, leaderEpoch: 4, replicas: [1, 2, 3], isr: [1] });
  // ... unless unclean election is on: it leads alone, and the writes it lacks are lost.
  assert.deepEqual(decide(state({ isr: [1] }), new Set([2, 3]), true), { leader: 2, leaderEpoch: 4, replicas: [1, 2, 3], isr: [2] });
});

test('an offline partition comes back when a member of its last ISR returns', () => {
  const offline = state({ leader: NO_LEADER, leaderEpoch: 4, isr: [1] });
  assert.equal(decide(offline, new Set([2, 3]), false), null);
  assert.deepEqual(decide(offline, new Set([1, 2, 3]), false), { leader: 1, leaderEpoch: 5, replicas: [1, 2, 3], isr: [1] });
});

test('reassignment: union first, finish only once the target is in sync, leadership moved if the leader leaves', () => {
  const started = startReassignment(state({ replicas: [1, 2], isr: [1, 2] }), [3, 2], 1000);
  assert.deepEqual(started, { leader: 1, leaderEpoch: 3, replicas: [1, 2, 3], isr: [1, 2], targetReplicas: [3, 2], throttleBytesPerSec: 1000 });
  const moving = { ...started, partitionEpoch: 8 } as PartitionState;
  assert.equal(completeReassignment(moving), null, 'broker 3 has not caught up');
  const done = completeReassignment({ ...moving, isr: [1, 2, 3] });
  assert.deepEqual(done, { leader: 3, leaderEpoch: 4, replicas: [3, 2], isr: [2, 3] }, 'the new preferred leader (first target) takes over');
  // Failover during a move keeps the move going.
  assert.deepEqual(decide({ ...moving, isr: [1, 2] }, new Set([2, 3]), false)?.targetReplicas, [3, 2]);
  // Cancelling drops a joiner that is not in sync.
  assert.deepEqual(startReassignment(moving, null, 0).replicas, [1, 2]);
});

test('a leader live under a newer broker epoch restarted: another ISR member leads at a newer epoch, or it does when alone', () => {
  const live = new Set([1, 2, 3]);
  const epochs = new Map([[1, 40], [2, 20], [3, 30]]);
  // Elected under broker epoch 10, now registered as 40: a new incarnation.
  const bounced = state({ leaderBrokerEpoch: 10 });
  assert.deepEqual(decide(bounced, live, false, epochs), { leader: 2, leaderEpoch: 4, leaderBrokerEpoch: 20, replicas: [1, 2, 3], isr: [2, 3] });
  // The same incarnation: nothing to do; ISR cleanup keeps the stamp.
  assert.equal(decide(state({ leaderBrokerEpoch: 40 }), live, false, epochs), null);
  assert.deepEqual(decide(state({ leaderBrokerEpoch: 40 }), new Set([1, 2]), false, epochs), { leader: 1, leaderEpoch: 3, leaderBrokerEpoch: 40, replicas: [1, 2, 3], isr: [1, 2] });
  // Alone in the ISR: elected again, never at the epoch it served before.
  assert.deepEqual(decide(state({ leaderBrokerEpoch: 10, isr: [1] }), live, false, epochs), { leader: 1, leaderEpoch: 4, leaderBrokerEpoch: 40, replicas: [1, 2, 3], isr: [1] });
  // A state without a stamp counts as broker epoch 0 (the embedded store's).
  assert.equal(decide(state({}), live, false, new Map([[1, 0], [2, 5], [3, 6]])), null);
  // A new leader elected after a failure gets its current broker epoch.
  assert.equal(decide(state({ leaderBrokerEpoch: 40 }), new Set([2, 3]), false, epochs)?.leaderBrokerEpoch, 20);
});
