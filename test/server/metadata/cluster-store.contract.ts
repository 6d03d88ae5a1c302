// The ClusterMetadataStore contract (server/metadata/cluster-store.ts, metadata-store.ts), one
// suite for every implementation: cluster-store-embedded.test.ts runs it against the embedded
// store on a temp dir, cluster-store-etcd.test.ts against a real etcd. Not a test file itself
// (no `.test.ts`): it only registers tests when a runner calls clusterStoreContract().
//
// Where the stores differ by nature the target says so, and the suite asserts each side:
// - initial partition states: the etcd store starts a partition leaderless for the
//   controller to assign; the embedded store, a cluster of one, makes its own broker leader
//   (target.defaultState).
// - one process: the embedded store is opened by one process at a time, so "another store"
//   here is always a store opened after the first was closed; what etcd adds on top (several
//   live stores watching each other, leases, a second controller) is in etcd-store.test.ts.
// - deleting a topic: the etcd store also announces each partition's deletion; the embedded
//   store only the topic's. The suite asserts the topic event only.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, SluiceError } from '../../../protocol/errors.ts';
import { NO_LEADER, type ClusterEvent, type ClusterMetadataStore, type PartitionState } from '../../../server/metadata/cluster-store.ts';
import type { TopicRecord } from '../../../server/metadata/metadata-store.ts';

export interface ContractTarget {
  /** Names the tests: `<name>: ...`. */
  name: string;
  /**
   * A fresh, empty metadata namespace for one test: `open` opens a store on it (the suite
   * closes every store it opens, at the latest when the test ends); `cleanup` removes it.
   */
  fresh(): Promise<{ open: () => Promise<ClusterMetadataStore>; cleanup: () => Promise<void> }>;
  /** The state a partition created without a given state starts with (see above). */
  defaultState: PartitionState;
}

const TEST_TIMEOUT_MS = 120_000;
const REGISTRATION_TTL_SECONDS = 10;
const ELECTION_WAIT_MS_MAX = 10_000;

let topicIds = 0;
const topic = (name: string, partitions = 3): TopicRecord => ({ name, id: `id-${name}-${++topicIds}`, partitions, replicationFactor: 1, configs: { 'retention.ms': '1000' }, createdAtMs: 1_700_000_000_000 });

/** A valid state led by broker `leader` of replicas 1..3, at leaderEpoch `epoch`. */
const led = (leader: number, epoch = 0): PartitionState => ({ leader, leaderEpoch: epoch, replicas: [1, 2, 3], isr: [1, 2, 3], partitionEpoch: 0 });

const isCode = (code: ErrorCode) => (e: unknown): boolean => e instanceof SluiceError && e.code === code;

async function until(what: string, cond: () => boolean, waitMs: number): Promise<void> {
  const deadline = Date.now() + waitMs;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`timed out after ${waitMs} ms waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export function clusterStoreContract(target: ContractTarget): void {
  /** Runs fn with an opener on a fresh namespace; closes what it opened and cleans up. */
  const withStores = async (fn: (open: () => Promise<ClusterMetadataStore>) => Promise<void>): Promise<void> => {
    const ns = await target.fresh();
    const opened: ClusterMetadataStore[] = [];
    try {
      await fn(async () => {
        const s = await ns.open();
        opened.push(s);
        return s;
      });
    } finally {
      await Promise.allSettled(opened.map((s) => s.close()));
      await ns.cleanup();
    }
  };
  const it = (title: string, fn: (open: () => Promise<ClusterMetadataStore>) => Promise<void>): void => {
    test(`${target.name}: ${title}`, { timeout: TEST_TIMEOUT_MS }, () => withStores(fn));
  };

  it('createTopic stores the record and one state per partition; a taken name is TOPIC_ALREADY_EXISTS and changes nothing', async (open) => {
    const s = await open();
    assert.ok(s.clusterId().length > 0, 'a cluster id from open()');
    const t = topic('orders');
    await s.createTopic(t);
    assert.deepEqual(s.getTopic('orders'), t, 'read-your-writes: the record is there when the promise resolves');
    assert.deepEqual(s.listTopics(), [t]);
    for (let p = 0; p < 3; p++) {
      assert.deepEqual(s.partitionState('orders', p), target.defaultState, `partition ${p} starts in the default state`);
      assert.deepEqual(await s.getPartitionState('orders', p), target.defaultState);
    }
    assert.equal(s.partitionState('orders', 3), undefined, 'no state beyond the partition count');
    assert.equal(await s.getPartitionState('orders', 3), undefined);

    await assert.rejects(s.createTopic(topic('orders', 1)), isCode(ErrorCode.TOPIC_ALREADY_EXISTS));
    assert.deepEqual(s.getTopic('orders'), t, 'the failed create changed nothing');
    assert.equal(s.partitionState('orders', 2)?.partitionEpoch, 0);
  });

  it('createTopic with initial states stores copies of them; a wrong count or an invalid state is refused and creates nothing', async (open) => {
    const s = await open();
    const states = [led(1), led(2, 4), { ...led(3), targetReplicas: [3], throttleBytesPerSec: 1024 }];
    await s.createTopic(topic('given'), states);
    assert.deepEqual(s.partitionState('given', 0), led(1));
    assert.deepEqual(s.partitionState('given', 1), led(2, 4));
    assert.deepEqual(s.partitionState('given', 2), { ...led(3), targetReplicas: [3], throttleBytesPerSec: 1024 });
    states[0]!.isr.pop();
    states[0]!.leader = 9;
    assert.deepEqual(s.partitionState('given', 0), led(1), 'the store does not share the caller\'s objects');

    await assert.rejects(s.createTopic(topic('short'), [led(1)]), /1 partition states for 3/);
    await assert.rejects(s.createTopic(topic('bad', 1), [{ ...led(1), isr: [2, 3] }]), /not in isr/);
    assert.equal(s.getTopic('short'), undefined);
    assert.equal(s.getTopic('bad'), undefined);
    assert.equal(s.partitionState('bad', 0), undefined);
  });

  it('updateTopic replaces the record and adds partitions (given states or the default); an unknown name or id is UNKNOWN_TOPIC_OR_PARTITION', async (open) => {
    const s = await open();
    const t = topic('grow', 2);
    await s.createTopic(t, [led(1), led(2)]);
    await s.updateTopic({ ...t, partitions: 4 }, [led(3, 1), led(1, 2)]);
    assert.equal(s.getTopic('grow')?.partitions, 4);
    assert.deepEqual(s.partitionState('grow', 2), led(3, 1));
    assert.deepEqual(s.partitionState('grow', 3), led(1, 2));
    assert.deepEqual(s.partitionState('grow', 0), led(1), 'existing partitions keep their state');
    await s.updateTopic({ ...t, partitions: 5 });
    assert.deepEqual(s.partitionState('grow', 4), target.defaultState);
    await s.updateTopic({ ...t, partitions: 5, configs: { 'retention.ms': '5' } });
    assert.deepEqual(s.getTopic('grow')?.configs, { 'retention.ms': '5' }, 'an update without new partitions replaces the record');

    await assert.rejects(s.updateTopic({ ...t, partitions: 7 }, [led(1)]), /1 partition states for 2/);
    assert.equal(s.getTopic('grow')?.partitions, 5, 'a refused update changes nothing');
    await assert.rejects(s.updateTopic({ ...t, partitions: 6 }, [{ ...led(1), replicas: [1, -2], isr: [1] }]), /broker ids/);
    assert.equal(s.partitionState('grow', 5), undefined);
    await assert.rejects(s.updateTopic({ ...t, id: 'another-incarnation' }), isCode(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION));
    await assert.rejects(s.updateTopic(topic('missing')), isCode(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION));
  });

  it('deleteTopic removes the record and its states, answers false for a missing name; the name can be created again afresh', async (open) => {
    const s = await open();
    const t = topic('gone');
    await s.createTopic(t, [led(1), led(2), led(3)]);
    assert.equal(await s.compareAndSetPartitionState('gone', 0, 0, led(2, 1)), true);
    assert.equal(await s.deleteTopic('gone'), true);
    assert.equal(s.getTopic('gone'), undefined);
    assert.deepEqual(s.listTopics(), []);
    for (let p = 0; p < 3; p++) {
      assert.equal(s.partitionState('gone', p), undefined);
      assert.equal(await s.getPartitionState('gone', p), undefined);
    }
    assert.equal(await s.deleteTopic('gone'), false);
    assert.equal(await s.compareAndSetPartitionState('gone', 0, 1, led(1, 2)), false, 'no write to a deleted partition');

    const again = topic('gone', 2);
    await s.createTopic(again);
    assert.equal(s.getTopic('gone')?.id, again.id);
    assert.deepEqual(s.partitionState('gone', 0), target.defaultState, 'nothing of the old incarnation survives');
    assert.equal(s.partitionState('gone', 2), undefined);
  });

  it('compare-and-set: only at the current partitionEpoch, which becomes expected + 1 whatever next says; unknown partitions are false', async (open) => {
    const s = await open();
    await s.createTopic(topic('cas', 1), [led(1)]);
    assert.equal(await s.compareAndSetPartitionState('cas', 0, 0, { ...led(1), isr: [1, 2] }), true);
    assert.deepEqual(s.partitionState('cas', 0), { ...led(1), isr: [1, 2], partitionEpoch: 1 }, 'read-your-writes from the cache');
    assert.deepEqual(await s.getPartitionState('cas', 0), { ...led(1), isr: [1, 2], partitionEpoch: 1 });
    assert.equal(await s.compareAndSetPartitionState('cas', 0, 0, led(2, 1)), false, 'a stale expected epoch writes nothing');
    assert.equal(await s.compareAndSetPartitionState('cas', 0, 2, led(2, 1)), false, 'a future expected epoch writes nothing');
    assert.equal(s.partitionState('cas', 0)?.partitionEpoch, 1);
    assert.equal(await s.compareAndSetPartitionState('cas', 0, 1, { ...led(2, 1), partitionEpoch: 99 } as never), true);
    assert.deepEqual(s.partitionState('cas', 0), { ...led(2, 1), partitionEpoch: 2 });
    assert.equal(await s.compareAndSetPartitionState('cas', 0, 2, { ...led(2, 1), leaderBrokerEpoch: 7 }), true);
    assert.equal(s.partitionState('cas', 0)?.leaderBrokerEpoch, 7);
    assert.equal(await s.compareAndSetPartitionState('cas', 1, 0, led(1)), false, 'a partition beyond the count');
    assert.equal(await s.compareAndSetPartitionState('nope', 0, 0, led(1)), false, 'a missing topic');

    // A reassignment: targetReplicas comes with a throttle (0 when not given), and goes with it.
    assert.equal(await s.compareAndSetPartitionState('cas', 0, 3, { ...led(2, 1), targetReplicas: [2, 3] }), true);
    assert.deepEqual(s.partitionState('cas', 0), { ...led(2, 1), targetReplicas: [2, 3], throttleBytesPerSec: 0, partitionEpoch: 4 });
    assert.equal(await s.compareAndSetPartitionState('cas', 0, 4, { ...led(2, 1), throttleBytesPerSec: 5 }), true);
    assert.deepEqual(s.partitionState('cas', 0), { ...led(2, 1), partitionEpoch: 5 }, 'a throttle without a reassignment is not stored');
    const extra = { ...led(2, 1), note: 'not a field' };
    assert.equal(await s.compareAndSetPartitionState('cas', 0, 5, extra), true);
    assert.deepEqual(s.partitionState('cas', 0), { ...led(2, 1), partitionEpoch: 6 }, 'only the fields of a PartitionState are stored');
  });

  it('compare-and-set refuses an invalid state, whatever the epochs, and writes nothing', async (open) => {
    const s = await open();
    await s.createTopic(topic('valid', 1), [led(1)]);
    const invalid: [string, Omit<PartitionState, 'partitionEpoch'>, RegExp][] = [
      ['leader outside isr', { ...led(1), isr: [2, 3] }, /not in isr/],
      ['isr outside replicas', { ...led(1), replicas: [1, 2], isr: [1, 2, 3] }, /not a subset/],
      ['negative leaderEpoch', { ...led(1), leaderEpoch: -1 }, /leaderEpoch/],
      ['fractional leaderEpoch', { ...led(1), leaderEpoch: 1.5 }, /leaderEpoch/],
      ['negative leaderBrokerEpoch', { ...led(1), leaderBrokerEpoch: -3 }, /leaderBrokerEpoch/],
      ['a replica that is no broker id', { ...led(1), replicas: [1, 2, 3.5] }, /broker ids/],
      ['a leader that is no broker id', { ...led(1), leader: -2 }, /leader/],
      ['targetReplicas outside replicas', { ...led(1), targetReplicas: [4] }, /targetReplicas/],
      ['a negative throttle', { ...led(1), targetReplicas: [1], throttleBytesPerSec: -1 }, /throttleBytesPerSec/],
    ];
    for (const [what, state, message] of invalid) {
      await assert.rejects(s.compareAndSetPartitionState('valid', 0, 0, state), message, what);
      await assert.rejects(s.compareAndSetPartitionState('valid', 0, 7, state), message, `${what}, at a stale epoch`);
    }
    assert.deepEqual(await s.getPartitionState('valid', 0), led(1), 'nothing was written');
    // Leaderless is valid with any isr, even an empty one.
    assert.equal(await s.compareAndSetPartitionState('valid', 0, 0, { leader: NO_LEADER, leaderEpoch: 1, replicas: [1, 2, 3], isr: [] }), true);
  });

  it('the broker registration: live, with a broker epoch that is its own; campaigning needs it', async (open) => {
    const s = await open();
    assert.equal(s.ownBrokerEpoch(), undefined, 'no epoch before registering');
    assert.throws(() => s.campaignController(1, { onElected: () => {}, onResigned: () => {} }), /register/);
    const reg = { brokerId: 1, host: '127.0.0.1', port: 9092, startedAtMs: 5 };
    await s.registerBroker(reg, REGISTRATION_TTL_SECONDS);
    assert.deepEqual(s.liveBrokers(), [reg]);
    const epoch = s.brokerEpoch(1);
    assert.ok(epoch !== undefined && Number.isInteger(epoch) && epoch >= 0, `broker epoch ${epoch}`);
    assert.equal(s.ownBrokerEpoch(), epoch);
    assert.equal(s.brokerEpoch(2), undefined, 'no epoch for a broker that is not live');
  });

  it('controller: elected with an epoch higher than every earlier one, also across a reopen; writes fenced by an old epoch fail', async (open) => {
    const campaign = async (s: ClusterMetadataStore, log: string[]) => {
      let epoch = 0;
      const c = s.campaignController(1, {
        onElected: (e) => {
          epoch = e;
          log.push(`elected ${e}`);
        },
        onResigned: () => log.push('resigned'),
      });
      await until('elected', () => epoch > 0, ELECTION_WAIT_MS_MAX);
      return { epoch, cancel: () => c.cancel() };
    };
    const reg = { brokerId: 1, host: '127.0.0.1', port: 9092, startedAtMs: 5 };
    const a = await open();
    await a.registerBroker(reg, REGISTRATION_TTL_SECONDS);
    await a.createTopic(topic('fenced', 1), [led(1)]);
    const log: string[] = [];
    const first = await campaign(a, log);
    assert.deepEqual(a.controller(), { brokerId: 1, controllerEpoch: first.epoch });
    assert.equal(await a.compareAndSetPartitionState('fenced', 0, 0, led(1, 1), { controllerEpoch: first.epoch }), true);
    await first.cancel();
    assert.deepEqual(log, [`elected ${first.epoch}`, 'resigned']);
    assert.equal(a.controller(), undefined, 'no controller after cancel');

    const second = await campaign(a, log);
    assert.ok(second.epoch > first.epoch, `epoch ${second.epoch} > ${first.epoch}`);
    assert.equal(await a.compareAndSetPartitionState('fenced', 0, 1, led(2, 2), { controllerEpoch: first.epoch }), false, 'the old epoch is fenced off');
    assert.equal(a.partitionState('fenced', 0)?.partitionEpoch, 1);
    assert.equal(await a.compareAndSetPartitionState('fenced', 0, 1, led(2, 2), { controllerEpoch: second.epoch }), true);
    await second.cancel();
    await a.close();

    const b = await open();
    await b.registerBroker(reg, REGISTRATION_TTL_SECONDS);
    const third = await campaign(b, []);
    assert.ok(third.epoch > second.epoch, `after a reopen: epoch ${third.epoch} > ${second.epoch}`);
    await third.cancel();
  });

  it('a reopened store has every change made before', async (open) => {
    const a = await open();
    const t = topic('kept', 2);
    await a.createTopic(t, [led(1), led(2)]);
    await a.updateTopic({ ...t, partitions: 3 }, [led(3)]);
    assert.equal(await a.compareAndSetPartitionState('kept', 1, 0, led(3, 1)), true);
    await a.createTopic(topic('dropped', 1));
    assert.equal(await a.deleteTopic('dropped'), true);
    const clusterId = a.clusterId();
    await a.close();

    const b = await open();
    assert.equal(b.clusterId(), clusterId);
    assert.deepEqual(b.listTopics(), [{ ...t, partitions: 3 }]);
    assert.deepEqual(b.partitionState('kept', 0), led(1));
    assert.deepEqual(b.partitionState('kept', 1), { ...led(3, 1), partitionEpoch: 1 });
    assert.deepEqual(b.partitionState('kept', 2), led(3));
    assert.equal(b.partitionState('dropped', 0), undefined);
  });

  it('archive state: compare-and-set from none, then only from the stored state and only forward; per topic incarnation; survives a reopen; deleted with the topic', async (open) => {
    const s = await open();
    const t = topic('arch', 2);
    await s.createTopic(t);
    assert.equal(await s.getArchiveState('arch', t.id, 0), undefined, 'nothing archived yet');
    assert.equal(await s.compareAndSetArchiveState('arch', t.id, 0, { startOffset: 0, endOffset: 5 }, { startOffset: 0, endOffset: 9 }), false, 'expected a state where none is');
    assert.equal(await s.compareAndSetArchiveState('arch', t.id, 0, undefined, { startOffset: 0, endOffset: 10 }), true);
    assert.deepEqual(await s.getArchiveState('arch', t.id, 0), { startOffset: 0, endOffset: 10 });
    assert.equal(await s.getArchiveState('arch', t.id, 1), undefined, 'partitions are separate');
    assert.equal(await s.compareAndSetArchiveState('arch', t.id, 0, undefined, { startOffset: 0, endOffset: 12 }), false, 'create-if-absent loses to the stored state');
    assert.equal(await s.compareAndSetArchiveState('arch', t.id, 0, { startOffset: 0, endOffset: 9 }, { startOffset: 0, endOffset: 12 }), false, 'a stale expected state');
    assert.equal(await s.compareAndSetArchiveState('arch', t.id, 0, { startOffset: 0, endOffset: 10 }, { startOffset: 4, endOffset: 20 }), true);
    assert.deepEqual(await s.getArchiveState('arch', t.id, 0), { startOffset: 4, endOffset: 20 });
    await assert.rejects(s.compareAndSetArchiveState('arch', t.id, 0, { startOffset: 4, endOffset: 20 }, { startOffset: 4, endOffset: 19 }), /moves back/);
    await assert.rejects(s.compareAndSetArchiveState('arch', t.id, 0, { startOffset: 4, endOffset: 20 }, { startOffset: 30, endOffset: 20 }), /bad archive state/);
    assert.deepEqual(await s.getArchiveState('arch', t.id, 0), { startOffset: 4, endOffset: 20 }, 'refused writes changed nothing');
    assert.equal(await s.compareAndSetArchiveState('arch', 'other-id', 0, undefined, { startOffset: 0, endOffset: 1 }), false, 'another incarnation id');
    assert.equal(await s.compareAndSetArchiveState('arch', t.id, 2, undefined, { startOffset: 0, endOffset: 1 }), false, 'a partition the topic does not have');
    assert.equal(await s.compareAndSetArchiveState('nope', t.id, 0, undefined, { startOffset: 0, endOffset: 1 }), false, 'a missing topic');

    // Concurrent writers from the same expected state: exactly one wins.
    const racers = await Promise.all([21, 22, 23].map((end) => s.compareAndSetArchiveState('arch', t.id, 0, { startOffset: 4, endOffset: 20 }, { startOffset: 4, endOffset: end })));
    assert.equal(racers.filter((x) => x).length, 1, `one winner of ${JSON.stringify(racers)}`);
    const won = await s.getArchiveState('arch', t.id, 0);
    assert.ok(won && won.endOffset >= 21 && won.endOffset <= 23);

    await s.close();
    const s2 = await open();
    assert.deepEqual(await s2.getArchiveState('arch', t.id, 0), won, 'durable across a reopen');
    assert.equal(await s2.deleteTopic('arch'), true);
    assert.equal(await s2.getArchiveState('arch', t.id, 0), undefined);
    const t2 = topic('arch', 2);
    await s2.createTopic(t2);
    assert.equal(await s2.getArchiveState('arch', t2.id, 0), undefined, 'the new incarnation starts with no archive');
    assert.equal(await s2.getArchiveState('arch', t.id, 0), undefined, 'the old incarnation\'s state is gone');
  });

  it('producer id blocks: disjoint, also when reserved concurrently and after a reopen; a bad size is refused', async (open) => {
    const a = await open();
    const firsts = [await a.allocateProducerIdBlock(1000), ...(await Promise.all(Array.from({ length: 5 }, () => a.allocateProducerIdBlock(10))))];
    await assert.rejects(a.allocateProducerIdBlock(0));
    await a.close();
    const b = await open();
    firsts.push(await b.allocateProducerIdBlock(10));
    const sizes = [1000, 10, 10, 10, 10, 10, 10];
    const blocks = firsts.map((first, i) => [first, first + sizes[i]!] as const).sort((x, y) => x[0] - y[0]);
    for (let i = 1; i < blocks.length; i++) assert.ok(blocks[i]![0] >= blocks[i - 1]![1], `blocks ${JSON.stringify(blocks)} overlap`);
    assert.equal(firsts[6]! >= Math.max(...firsts.slice(0, 6)), true, 'a block reserved after a reopen lies above every earlier one');
  });

  it('watch: a topic is announced before its partitions, in partition order; every change once; the cache has it when announced', async (open) => {
    const s = await open();
    const events: ClusterEvent[] = [];
    const stale: string[] = []; // collected, not thrown: a store may catch what its listeners throw
    const unwatch = s.watch((e) => {
      if (e.kind === 'topic' && JSON.stringify(s.getTopic(e.name)) !== JSON.stringify(e.record)) stale.push(`topic ${e.name}`);
      if (e.kind === 'partition' && JSON.stringify(s.partitionState(e.topic, e.partition)) !== JSON.stringify(e.state)) stale.push(`partition ${e.topic}/${e.partition}`);
      events.push(e);
    });
    const t = topic('watched', 3);
    await s.createTopic(t, [led(1), led(2), led(3)]);
    assert.deepEqual(events, [
      { kind: 'topic', name: 'watched', record: t },
      { kind: 'partition', topic: 'watched', partition: 0, state: led(1) },
      { kind: 'partition', topic: 'watched', partition: 1, state: led(2) },
      { kind: 'partition', topic: 'watched', partition: 2, state: led(3) },
    ], 'createTopic: the events arrived before its promise resolved');

    events.length = 0;
    assert.equal(await s.compareAndSetPartitionState('watched', 1, 0, led(2, 1)), true);
    assert.deepEqual(events, [{ kind: 'partition', topic: 'watched', partition: 1, state: { ...led(2, 1), partitionEpoch: 1 } }]);
    events.length = 0;
    assert.equal(await s.compareAndSetPartitionState('watched', 1, 0, led(2, 1)), false);
    assert.deepEqual(events, [], 'a failed compare-and-set announces nothing');

    await s.updateTopic({ ...t, partitions: 4 }, [led(1, 3)]);
    assert.deepEqual(events, [
      { kind: 'topic', name: 'watched', record: { ...t, partitions: 4 } },
      { kind: 'partition', topic: 'watched', partition: 3, state: led(1, 3) },
    ]);

    events.length = 0;
    assert.equal(await s.deleteTopic('watched'), true);
    assert.deepEqual((events as ClusterEvent[]).filter((e) => e.kind === 'topic'), [{ kind: 'topic', name: 'watched', record: undefined }]);
    assert.ok((events as ClusterEvent[]).every((e) => e.kind === 'topic' || (e.kind === 'partition' && e.state === undefined)), 'a deletion announces no state');

    events.length = 0;
    unwatch();
    await s.createTopic(topic('unwatched', 1));
    assert.deepEqual(events, [], 'nothing after unsubscribing');
    assert.deepEqual(stale, [], 'the cache showed every change when it was announced');
  });

  it('thousands of partitions: create 1,000 and add 500, every state stored and announced in order', async (open) => {
    const s = await open();
    const states = (count: number, first: number): PartitionState[] => Array.from({ length: count }, (_, i) => led(1 + ((first + i) % 3), first + i));
    const events: ClusterEvent[] = [];
    s.watch((e) => events.push(e));
    const t = topic('wide', 1000);
    await s.createTopic(t, states(1000, 0));
    assert.equal(s.getTopic('wide')?.partitions, 1000);
    for (let p = 0; p < 1000; p++) assert.deepEqual(s.partitionState('wide', p), led(1 + (p % 3), p), `partition ${p}`);
    assert.deepEqual(await s.getPartitionState('wide', 999), led(1, 999));
    assert.deepEqual(events.map((e) => (e.kind === 'partition' ? e.partition : e.kind)), ['topic', ...Array.from({ length: 1000 }, (_, p) => p)]);

    events.length = 0;
    await s.updateTopic({ ...t, partitions: 1500 }, states(500, 1000));
    assert.equal(s.getTopic('wide')?.partitions, 1500);
    for (let p = 0; p < 1500; p++) assert.deepEqual(s.partitionState('wide', p), led(1 + (p % 3), p), `partition ${p}`);
    assert.deepEqual(events.map((e) => (e.kind === 'partition' ? e.partition : e.kind)), ['topic', ...Array.from({ length: 500 }, (_, i) => 1000 + i)]);
    await s.updateTopic({ ...t, partitions: 1800 });
    assert.deepEqual(s.partitionState('wide', 1799), target.defaultState);

    assert.equal(await s.deleteTopic('wide'), true);
    assert.equal(s.partitionState('wide', 0), undefined);
    assert.equal(await s.getPartitionState('wide', 1400), undefined);
  });
}
