// The replica manager without a cluster: a fake store (broker epoch, compare-and-set of the
// ISR) and fake fetchers, over real partition logs. Roles from states, registration first,
// the high watermark from follower fetches, ISR expand and shrink, leadership lost, removal.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { ErrorCode, SluiceError } from '../../../protocol/errors.ts';
import type { ReplicaFetchers } from '../../../server/cluster/replica-fetchers.ts';
import { ReplicaManager } from '../../../server/cluster/replica-manager.ts';
import type { ClusterMetadataStore, PartitionState } from '../../../server/metadata/cluster-store.ts';
import { DelayedFetches } from '../../../server/partition/delayed-fetches.ts';
import { batch, recordingLogger, tempDir } from '../log/helpers.ts';
import { BROKER_ID, leaderState, openPartition } from '../partition/helpers.ts';

const BROKER_EPOCH = 9;

function fakeStore() {
  const cas: Array<{ topic: string; partition: number; expected: number; next: Omit<PartitionState, 'partitionEpoch'> }> = [];
  const store = {
    brokerEpoch: undefined as number | undefined,
    ownBrokerEpoch() {
      return this.brokerEpoch;
    },
    watch: () => () => {},
    compareAndSetPartitionState: async (topic: string, partition: number, expected: number, next: Omit<PartitionState, 'partitionEpoch'>) => {
      cas.push({ topic, partition, expected, next });
      return true;
    },
  };
  return { store, cas };
}

function fakeFetchers() {
  const calls: string[] = [];
  const fetchers = {
    add: (leader: number, p: { topic: string; partition: number; leaderEpoch: number }) => void calls.push(`add ${p.topic}/${p.partition} from ${leader} at ${p.leaderEpoch}`),
    remove: (topic: string, partition: number) => void calls.push(`remove ${topic}/${partition}`),
    setThrottle: () => {},
    stopAll: () => void calls.push('stopAll'),
  };
  return { fetchers: fetchers as unknown as ReplicaFetchers, calls };
}

function setup() {
  const t = tempDir();
  const { store, cas } = fakeStore();
  const { fetchers, calls } = fakeFetchers();
  const rm = new ReplicaManager(BROKER_ID, store as unknown as ClusterMetadataStore, fetchers, { replicaLagTimeMaxMs: 10_000, isrCheckIntervalMs: 60_000 }, recordingLogger());
  const leadership: string[] = [];
  rm.onLeadership = (topic, partition, leader) => void leadership.push(`${topic}/${partition} ${leader ? 'led' : 'lost'}`);
  return { t, store, cas, calls, rm, leadership };
}

test('no role before registration; activate() applies the latest state; only a state under this broker epoch makes it leader', async () => {
  const { t, store, calls, rm, leadership } = setup();
  const p = openPartition(t.dir, 't', 0);
  rm.onPartitionState(p, leaderState({ leaderBrokerEpoch: BROKER_EPOCH }));
  assert.equal(p.role, 'none', 'not registered yet');
  store.brokerEpoch = BROKER_EPOCH;
  rm.activate();
  assert.equal(p.role, 'leader');
  assert.equal(p.leaderEpoch, 5);
  assert.equal(p.log.latestEpoch(), 5, 'the epoch starts before the first write');
  assert.deepEqual(leadership, ['t/0 led']);
  const q = openPartition(t.dir, 't', 1);
  rm.onPartitionState(q, leaderState({ leaderBrokerEpoch: BROKER_EPOCH - 1 }));
  assert.equal(q.role, 'follower', 'named leader under an earlier registration');
  assert.ok(!calls.some((c) => c.startsWith('add')), 'and it does not fetch from itself');
  rm.stop();
  await p.log.close();
  await q.log.close();
  t.cleanup();
});

test('a follower fetches from its leader; a late, older state is ignored', async () => {
  const { t, store, calls, rm } = setup();
  store.brokerEpoch = BROKER_EPOCH;
  const p = openPartition(t.dir, 't', 0);
  rm.onPartitionState(p, leaderState({ leader: 2, replicas: [2, BROKER_ID], isr: [2, BROKER_ID], partitionEpoch: 3 }));
  assert.equal(p.role, 'follower');
  assert.equal(p.log.replicated, true);
  assert.deepEqual(calls.filter((c) => c.startsWith('add')), ['add t/0 from 2 at 5']);
  rm.onPartitionState(p, leaderState({ leaderBrokerEpoch: BROKER_EPOCH, partitionEpoch: 2 }));
  assert.equal(p.role, 'follower', 'partitionEpoch 2 < 3');
  rm.stop();
  await p.log.close();
  t.cleanup();
});

test('follower fetches move the high watermark and expand the ISR; a closed fetch connection shrinks it', async () => {
  const { t, store, cas, rm } = setup();
  store.brokerEpoch = BROKER_EPOCH;
  const p = openPartition(t.dir, 't', 0);
  rm.onPartitionState(p, leaderState({ leaderBrokerEpoch: BROKER_EPOCH, replicas: [BROKER_ID, 2, 3], isr: [BROKER_ID, 2], partitionEpoch: 4 }));
  p.appendAsLeader(batch(4), -1);
  assert.equal(p.log.highWatermark, 0, 'broker 2 is in the ISR and has nothing');
  const conn = new EventEmitter();
  rm.recordFollowerFetch(p, 2, 3, Date.now(), conn);
  assert.equal(p.log.highWatermark, 3);
  rm.recordFollowerFetch(p, 2, 4, Date.now(), conn);
  assert.equal(p.log.highWatermark, 4);
  assert.equal(cas.length, 0, 'nothing to change yet');
  rm.recordFollowerFetch(p, 3, 4, Date.now());
  assert.deepEqual(cas.map((c) => [c.expected, c.next.isr]), [[4, [BROKER_ID, 2, 3]]], 'broker 3 caught up: expand');
  rm.recordFollowerFetch(p, 7, 4, Date.now()); // not a replica: ignored
  // The store's event brings the expanded ISR; then broker 2's connection closes.
  rm.onPartitionState(p, leaderState({ leaderBrokerEpoch: BROKER_EPOCH, replicas: [BROKER_ID, 2, 3], isr: [BROKER_ID, 2, 3], partitionEpoch: 5 }));
  await new Promise((r) => setImmediate(r)); // the expand's compare-and-set settles
  conn.emit('close');
  assert.deepEqual(cas.at(-1)!.next.isr, [BROKER_ID, 3]);
  assert.equal(cas.at(-1)!.expected, 5);
  rm.stop();
  await p.log.close();
  t.cleanup();
});

test('losing leadership fails acks=all waiters and wakes parked fetches; so does removal', async () => {
  const { t, store, calls, rm, leadership } = setup();
  store.brokerEpoch = BROKER_EPOCH;
  const d = new DelayedFetches();
  const p = openPartition(t.dir, 't', 0);
  const led = leaderState({ leaderBrokerEpoch: BROKER_EPOCH, replicas: [BROKER_ID, 2], isr: [BROKER_ID, 2], partitionEpoch: 1 });
  rm.onPartitionState(p, led);
  p.appendAsLeader(batch(1), -1);
  const waiting = p.waitForHighWatermark(1, 60_000);
  const parked = d.wait([p], 60_000)!;
  rm.onPartitionState(p, leaderState({ leader: 2, leaderEpoch: 6, replicas: [BROKER_ID, 2], isr: [2, BROKER_ID], partitionEpoch: 2 }));
  await assert.rejects(waiting, (e: SluiceError) => e.code === ErrorCode.NOT_LEADER);
  await parked;
  assert.equal(d.parkedCount, 0);
  assert.deepEqual(leadership, ['t/0 led', 't/0 lost']);

  const q = openPartition(t.dir, 't', 1);
  rm.onPartitionState(q, { ...led, partitionEpoch: 1 });
  q.appendAsLeader(batch(1), -1);
  const waitingQ = q.waitForHighWatermark(1, 60_000);
  const parkedQ = d.wait([q], 60_000)!;
  rm.onReplicaRemoved(q);
  await assert.rejects(waitingQ, (e: SluiceError) => e.code === ErrorCode.NOT_LEADER);
  await parkedQ;
  assert.ok(calls.includes('remove t/1'));
  assert.deepEqual(leadership.at(-1), 't/1 lost');
  rm.onReplicaRemoved(q); // twice: nothing more
  rm.stop();
  assert.ok(calls.includes('stopAll'));
  await p.log.close();
  await q.log.close();
  t.cleanup();
});

test("the leader's own stall is not its followers' lag: no ISR shrink after the leader's event loop was blocked; a follower that really stops is dropped", async () => {
  const t = tempDir();
  const { store, cas } = fakeStore();
  const { fetchers } = fakeFetchers();
  const LAG_MS = 150;
  const rm = new ReplicaManager(BROKER_ID, store as unknown as ClusterMetadataStore, fetchers, { replicaLagTimeMaxMs: LAG_MS, isrCheckIntervalMs: 20 }, recordingLogger());
  store.brokerEpoch = BROKER_EPOCH;
  rm.start();
  rm.activate();
  const p = openPartition(t.dir, 't', 0);
  rm.onPartitionState(p, leaderState({ leaderBrokerEpoch: BROKER_EPOCH, replicas: [BROKER_ID, 2], isr: [BROKER_ID, 2], partitionEpoch: 1 }));
  p.appendAsLeader(batch(2), -1);
  rm.recordFollowerFetch(p, 2, 2, Date.now());
  await new Promise((r) => setTimeout(r, 60)); // a few periodic checks run
  p.appendAsLeader(batch(1), -1); // the follower is now behind, as it would be between two fetches
  rm.recordFollowerFetch(p, 2, 2, Date.now());
  // The leader's event loop is blocked for 4x the lag limit (a long synchronous task).
  const until = Date.now() + 4 * LAG_MS;
  while (Date.now() < until) { /* blocked */ }
  await new Promise((r) => setTimeout(r, 40)); // the first checks after the stall run
  assert.equal(cas.length, 0, `no ISR change: the stall was the leader's (${JSON.stringify(cas.map((c) => c.next.isr))})`);
  // Now the follower really stops fetching: it is dropped after about the lag limit.
  await new Promise((r) => setTimeout(r, 3 * LAG_MS + 200));
  // (The fake store never confirms the change, so the leader proposes it again at each check.)
  assert.ok(cas.length >= 1 && cas.every((c) => c.next.isr.length === 1 && c.next.isr[0] === BROKER_ID), `a follower that stopped fetching leaves the ISR: ${JSON.stringify(cas.map((c) => c.next.isr))}`);
  rm.stop();
  await p.log.close();
  t.cleanup();
});
