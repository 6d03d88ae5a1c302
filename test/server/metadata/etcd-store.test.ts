// EtcdMetadataStore against a real etcd (one per test, started by test/helpers/etcd-process.ts
// and stopped in the test's finally): topics, watches across stores, broker liveness by
// lease, controller election and fencing, partition state compare-and-set.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import { ErrorCode, SluiceError } from '../../../protocol/errors.ts';
import { NO_LEADER, type ClusterEvent } from '../../../server/metadata/cluster-store.ts';
import { EtcdMetadataStore, TXN_OPS_MAX } from '../../../server/metadata/etcd-store.ts';
import type { TopicRecord } from '../../../server/metadata/metadata-store.ts';
import { repoRoot } from '../../helpers/broker-process.ts';
import { startEtcd, type EtcdProcess } from '../../helpers/etcd-process.ts';

const TEST_TIMEOUT_MS = 60_000;
const WAIT_MS_MAX = 10_000;

async function withEtcd(fn: (etcd: EtcdProcess, stores: (prefix?: string) => Promise<EtcdMetadataStore>) => Promise<void>): Promise<void> {
  const etcd = await startEtcd();
  const opened: EtcdMetadataStore[] = [];
  const open = async (prefix = '/sluice/'): Promise<EtcdMetadataStore> => {
    const s = new EtcdMetadataStore(`etcd://${etcd.endpoints}`, { prefix, requestTimeoutMs: 5000 });
    opened.push(s);
    await s.open();
    return s;
  };
  try {
    await fn(etcd, open);
  } finally {
    await Promise.allSettled(opened.map((s) => s.close()));
    await etcd.stop();
  }
}

async function eventually(what: string, cond: () => boolean | Promise<boolean>, waitMs = WAIT_MS_MAX): Promise<void> {
  const deadline = Date.now() + waitMs;
  while (!(await cond())) {
    if (Date.now() > deadline) assert.fail(`timed out after ${waitMs} ms waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function topic(name: string, partitions = 3): TopicRecord {
  return { name, id: randomUUID(), partitions, replicationFactor: 1, configs: {}, createdAtMs: Date.now() };
}

/** A store in a child process we can SIGKILL; resolves once it printed `registered`. */
async function startChild(endpoints: string, brokerId: number, ttlSeconds: number, campaign: boolean) {
  const proc = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, 'test/helpers/etcd-store-child.ts'), endpoints, '/sluice/', String(brokerId), String(ttlSeconds), ...(campaign ? ['campaign'] : [])], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (err += d));
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  process.once('exit', () => proc.kill('SIGKILL'));
  await eventually(`child broker ${brokerId} registered (stderr: ${err})`, () => out.includes('registered') || proc.exitCode !== null);
  assert.ok(out.includes('registered'), `child exited: ${err}`);
  return {
    out: () => out,
    async kill() {
      proc.kill('SIGKILL');
      await exited;
    },
  };
}

test('topics: create, duplicate, update, delete; cluster id is created once', { timeout: TEST_TIMEOUT_MS }, async () => {
  await withEtcd(async (_etcd, open) => {
    const a = await open();
    assert.match(a.clusterId(), /^[0-9a-f-]{36}$/);
    const t = topic('orders', 3);
    await a.createTopic(t);
    assert.deepEqual(a.getTopic('orders'), t);
    assert.deepEqual(a.listTopics().map((x) => x.name), ['orders']);
    for (let p = 0; p < 3; p++) {
      assert.deepEqual(a.partitionState('orders', p), { leader: NO_LEADER, leaderEpoch: 0, replicas: [], isr: [], partitionEpoch: 0 });
      assert.deepEqual(await a.getPartitionState('orders', p), a.partitionState('orders', p));
    }

    await assert.rejects(a.createTopic(topic('orders', 1)), (e: unknown) => e instanceof SluiceError && e.code === ErrorCode.TOPIC_ALREADY_EXISTS);
    assert.equal(a.getTopic('orders')!.id, t.id, 'the failed create changed nothing');

    await a.updateTopic({ ...t, partitions: 5 });
    assert.equal(a.getTopic('orders')!.partitions, 5);
    assert.equal(a.partitionState('orders', 4)?.partitionEpoch, 0);
    await assert.rejects(a.updateTopic({ ...t, id: randomUUID() }), (e: unknown) => e instanceof SluiceError && e.code === ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);

    const b = await open();
    assert.equal(b.clusterId(), a.clusterId(), 'a second store joins the same cluster');
    assert.deepEqual(b.getTopic('orders')?.partitions, 5, 'open() loads existing topics');

    assert.equal(await a.deleteTopic('orders'), true);
    assert.equal(a.getTopic('orders'), undefined);
    for (let p = 0; p < 5; p++) assert.equal(await a.getPartitionState('orders', p), undefined, `partition ${p} deleted with the topic`);
    assert.equal(await a.deleteTopic('orders'), false);

    const other = await open('/other-cluster/');
    assert.notEqual(other.clusterId(), a.clusterId(), 'a different prefix is a different cluster');
    assert.deepEqual(other.listTopics(), []);
  });
});

test('two stores see each other\'s changes through the watch', { timeout: TEST_TIMEOUT_MS }, async () => {
  await withEtcd(async (_etcd, open) => {
    const a = await open();
    const b = await open();
    const seenByB: ClusterEvent[] = [];
    b.watch((e) => seenByB.push(e));

    await a.createTopic(topic('clicks', 2));
    await eventually('b sees the topic', () => b.getTopic('clicks') !== undefined);
    await eventually('b sees both partitions', () => b.partitionState('clicks', 1) !== undefined);
    assert.ok(seenByB.some((e) => e.kind === 'topic' && e.name === 'clicks' && e.record !== undefined));

    assert.equal(await a.compareAndSetPartitionState('clicks', 0, 0, { leader: 7, leaderEpoch: 1, replicas: [7], isr: [7] }), true);
    await eventually('b sees the new leader', () => b.partitionState('clicks', 0)?.leader === 7);
    assert.ok(seenByB.some((e) => e.kind === 'partition' && e.topic === 'clicks' && e.partition === 0 && e.state?.partitionEpoch === 1));

    assert.equal(await b.deleteTopic('clicks'), true);
    await eventually('a sees the delete', () => a.getTopic('clicks') === undefined && a.partitionState('clicks', 0) === undefined);
  });
});

test('a broker registration lives with its store: close revokes it, SIGKILL lets it expire', { timeout: TEST_TIMEOUT_MS }, async () => {
  await withEtcd(async (etcd, open) => {
    const observer = await open();
    const a = await open();
    await a.registerBroker({ brokerId: 1, host: '127.0.0.1', port: 9001, startedAtMs: 1 }, 2);
    await eventually('observer sees broker 1', () => observer.liveBrokers().some((b) => b.brokerId === 1));
    assert.deepEqual(observer.liveBrokers(), [{ brokerId: 1, host: '127.0.0.1', port: 9001, startedAtMs: 1 }]);

    // The same id cannot be registered twice while the first is live (bounded wait: ttl + 2 s).
    const dup = await open();
    await assert.rejects(dup.registerBroker({ brokerId: 1, host: '127.0.0.1', port: 9999, startedAtMs: 2 }, 1), /registered by another live broker/);

    await a.close();
    await eventually('close removes broker 1 at once', () => observer.liveBrokers().length === 0, 2000);

    const child = await startChild(etcd.endpoints, 2, 2, false);
    await eventually('observer sees broker 2', () => observer.liveBrokers().some((b) => b.brokerId === 2));
    const killedAt = Date.now();
    await child.kill();
    await eventually('broker 2 expires with its lease', () => observer.liveBrokers().length === 0, 8000);
    assert.ok(Date.now() - killedAt >= 500, 'the registration outlived the process until the lease ran out');
  });
});

test('controller election: one of two wins; when it leaves, the other wins with a higher epoch', { timeout: TEST_TIMEOUT_MS }, async () => {
  await withEtcd(async (etcd, open) => {
    const a = await open();
    const b = await open();
    await a.registerBroker({ brokerId: 1, host: '127.0.0.1', port: 9001, startedAtMs: 1 }, 2);
    await b.registerBroker({ brokerId: 2, host: '127.0.0.1', port: 9002, startedAtMs: 1 }, 2);
    const log: string[] = [];
    const epochs = new Map<number, number>();
    const callbacks = (id: number) => ({
      onElected: (epoch: number) => {
        log.push(`${id} elected ${epoch}`);
        epochs.set(id, epoch);
      },
      onResigned: () => log.push(`${id} resigned`),
    });
    a.campaignController(1, callbacks(1));
    b.campaignController(2, callbacks(2));
    await eventually('someone is elected', () => epochs.size > 0);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(epochs.size, 1, `exactly one controller: ${log.join(', ')}`);
    const [winner, firstEpoch] = [...epochs.entries()][0]!;
    const [winnerStore, loserStore, loser] = winner === 1 ? [a, b, 2] : [b, a, 1];
    await eventually('both caches show the controller', () => loserStore.controller()?.brokerId === winner && winnerStore.controller()?.brokerId === winner);
    assert.equal(loserStore.controller()!.controllerEpoch, firstEpoch);

    // A partition write fenced by the current controller epoch succeeds; the next one by the old epoch will not.
    await winnerStore.createTopic(topic('fenced', 1));
    assert.equal(await winnerStore.compareAndSetPartitionState('fenced', 0, 0, { leader: 1, leaderEpoch: 1, replicas: [1, 2], isr: [1, 2] }, { controllerEpoch: firstEpoch }), true);

    await winnerStore.close();
    assert.ok(log.includes(`${winner} resigned`), 'close resigns');
    await eventually('the other broker is elected', () => epochs.has(loser), 8000);
    const secondEpoch = epochs.get(loser)!;
    assert.ok(secondEpoch > firstEpoch, `epoch ${secondEpoch} > ${firstEpoch}`);
    assert.equal(await loserStore.compareAndSetPartitionState('fenced', 0, 1, { leader: 2, leaderEpoch: 2, replicas: [1, 2], isr: [2] }, { controllerEpoch: firstEpoch }), false, 'the deposed controller\'s epoch is fenced off');
    assert.equal(await loserStore.compareAndSetPartitionState('fenced', 0, 1, { leader: 2, leaderEpoch: 2, replicas: [1, 2], isr: [2] }, { controllerEpoch: secondEpoch }), true);

    // A crashed controller (SIGKILL, no resign) is replaced once its lease expires.
    const c = await open();
    await c.registerBroker({ brokerId: 3, host: '127.0.0.1', port: 9003, startedAtMs: 1 }, 2);
    await loserStore.close(); // broker `loser` leaves; a child process becomes controller
    const child = await startChild(etcd.endpoints, 4, 2, true);
    await eventually('the child is elected', () => /elected \d+/.test(child.out()), 8000);
    const childEpoch = Number(/elected (\d+)/.exec(child.out())![1]);
    assert.ok(childEpoch > secondEpoch);
    let thirdEpoch = 0;
    c.campaignController(3, { onElected: (e) => (thirdEpoch = e), onResigned: () => {} });
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(thirdEpoch, 0, 'no election while the child is controller');
    await child.kill();
    await eventually('broker 3 is elected after the child\'s lease expires', () => thirdEpoch > 0, 8000);
    assert.ok(thirdEpoch > childEpoch, `epoch ${thirdEpoch} > ${childEpoch}`);
  });
});

test('partition state CAS refuses a stale expected epoch', { timeout: TEST_TIMEOUT_MS }, async () => {
  await withEtcd(async (_etcd, open) => {
    const a = await open();
    const b = await open();
    await a.createTopic(topic('cas', 1), [{ leader: 1, leaderEpoch: 0, replicas: [1, 2, 3], isr: [1, 2, 3], partitionEpoch: 0 }]);

    // Two writers both read epoch 0; only the first write wins.
    assert.equal(await a.compareAndSetPartitionState('cas', 0, 0, { leader: 1, leaderEpoch: 0, replicas: [1, 2, 3], isr: [1, 2] }), true);
    assert.equal(await b.compareAndSetPartitionState('cas', 0, 0, { leader: 2, leaderEpoch: 1, replicas: [1, 2, 3], isr: [2, 3] }), false);
    assert.deepEqual(await b.getPartitionState('cas', 0), { leader: 1, leaderEpoch: 0, replicas: [1, 2, 3], isr: [1, 2], partitionEpoch: 1 });
    assert.deepEqual(a.partitionState('cas', 0), { leader: 1, leaderEpoch: 0, replicas: [1, 2, 3], isr: [1, 2], partitionEpoch: 1 }, 'the writer reads its write from the cache');

    // The next epoch works; stored partitionEpoch is always expected + 1, whatever the caller passed.
    assert.equal(await b.compareAndSetPartitionState('cas', 0, 1, { leader: 2, leaderEpoch: 1, replicas: [1, 2, 3], isr: [2], partitionEpoch: 99 } as never), true);
    assert.equal((await a.getPartitionState('cas', 0))?.partitionEpoch, 2);

    // Unknown partitions and invalid states are refused.
    assert.equal(await a.compareAndSetPartitionState('cas', 1, 0, { leader: NO_LEADER, leaderEpoch: 0, replicas: [], isr: [] }), false);
    assert.equal(await a.compareAndSetPartitionState('nope', 0, 0, { leader: NO_LEADER, leaderEpoch: 0, replicas: [], isr: [] }), false);
    await assert.rejects(a.compareAndSetPartitionState('cas', 0, 2, { leader: 3, leaderEpoch: 2, replicas: [1, 2, 3], isr: [2] }), /not in isr/);
    await assert.rejects(a.compareAndSetPartitionState('cas', 0, 2, { leader: 2, leaderEpoch: 2, replicas: [1, 2], isr: [2, 3] }), /not a subset/);
  });
});

test('a lost lease (etcd unreachable past the TTL) is re-registered, and the controller resigns and is re-elected', { timeout: TEST_TIMEOUT_MS }, async () => {
  await withEtcd(async (etcd, open) => {
    const a = await open();
    await a.registerBroker({ brokerId: 1, host: '127.0.0.1', port: 9001, startedAtMs: 1 }, 1);
    const log: string[] = [];
    const events: ClusterEvent[] = [];
    a.watch((e) => events.push(e));
    a.campaignController(1, { onElected: (e) => log.push(`elected ${e}`), onResigned: () => log.push('resigned') });
    await eventually('elected', () => log.length === 1);

    etcd.pause(); // a partition: connections stay open, nothing answers
    await new Promise((r) => setTimeout(r, 3000)); // > 2 × TTL: the client gives the lease up
    etcd.resume();

    await eventually('re-registered', () => events.some((e) => e.kind === 'reregistered' && e.brokerId === 1), 15_000);
    await eventually('re-elected', () => log.length === 3, 15_000);
    assert.equal(log[1], 'resigned');
    const [first, second] = [Number(log[0]!.split(' ')[1]), Number(log[2]!.split(' ')[1])];
    assert.ok(second > first, `epoch ${second} > ${first}: ${log.join(', ')}`);
    await eventually('broker 1 is live again', () => a.liveBrokers().some((b) => b.brokerId === 1));
  });
});

test('topics larger than one txn: orphans of a write that died between chunks stay invisible and are cleaned up; concurrent creates of a name leave one whole topic', { timeout: TEST_TIMEOUT_MS }, async () => {
  await withEtcd(async (etcd, open) => {
    const raw = new Etcd3({ hosts: etcd.clientUrl });
    try {
      const ns = raw.namespace('/sluice/');
      const a = await open();
      const b = await open();
      const seenByB: ClusterEvent[] = [];
      b.watch((e) => seenByB.push(e));
      // What a create of 300 partitions leaves when its broker dies after two chunks.
      const orphan = JSON.stringify({ leader: 5, leaderEpoch: 9, replicas: [5], isr: [5], partitionEpoch: 3 });
      for (let p = 0; p < 300; p += 50) {
        const txn = ns.if('topics/ghost', 'Create', '==', 0).then(...Array.from({ length: 50 }, (_, i) => ns.put(`partitions/ghost/${p + i}`).value(orphan)));
        assert.equal((await txn.commit()).succeeded, true);
      }
      await ns.put('topic-writes/ghost').value('a-dead-writer').exec();
      const c = await open(); // loads the orphans rather than watching them arrive
      for (const s of [a, b, c]) {
        await eventually('the orphans reached the cache', async () => (await s.getPartitionState('ghost', 0)) === undefined && s.partitionState('ghost', 299) === undefined);
        assert.equal(s.getTopic('ghost'), undefined);
      }
      assert.equal(await a.compareAndSetPartitionState('ghost', 0, 3, { leader: 5, leaderEpoch: 10, replicas: [5], isr: [5] }), false, 'an orphan is no partition');
      assert.equal(seenByB.length, 0, 'orphans are not announced');

      // The next create of the name (larger than one txn) deletes them and writes its own.
      assert.ok(150 + 1 > TXN_OPS_MAX);
      await a.createTopic(topic('ghost', 150));
      for (let p = 0; p < 150; p++) assert.equal(a.partitionState('ghost', p)?.leader, NO_LEADER, `partition ${p}`);
      assert.equal((await ns.getAll().prefix('partitions/ghost/').keys()).length, 150, 'the leftovers beyond 150 are deleted');
      assert.equal(await ns.get('topic-writes/ghost').string(), null, 'the write marker goes with the write');
      await eventually('b sees the topic and all its partitions', () => b.partitionState('ghost', 149) !== undefined);
      assert.deepEqual(seenByB.map((e) => (e.kind === 'partition' ? e.partition : e.kind)), ['topic', ...Array.from({ length: 150 }, (_, p) => p)]);
      assert.ok(seenByB.every((e) => e.kind !== 'partition' || e.state?.leader === NO_LEADER), 'no orphan state was announced');

      // A create that fits one txn over orphans: it overwrites what it covers; the rest stays
      // invisible, and the partitions a later update adds are written anew, not the orphans.
      for (let p = 0; p < 10; p++) await ns.put(`partitions/tiny/${p}`).value(orphan).exec();
      await a.createTopic(topic('tiny', 3));
      await a.updateTopic({ ...a.getTopic('tiny')!, partitions: 5 });
      for (let p = 0; p < 5; p++) assert.equal(a.partitionState('tiny', p)?.leader, NO_LEADER, `tiny partition ${p}`);
      assert.equal(a.partitionState('tiny', 7), undefined);
      assert.equal(await a.deleteTopic('tiny'), true);
      assert.equal((await ns.getAll().prefix('partitions/tiny/').keys()).length, 0, 'deleteTopic removes orphans too');

      // Two brokers create the same large name at once: one wins, whole; the other is told it exists.
      const states = (leader: number) => Array.from({ length: 300 }, () => ({ leader, leaderEpoch: 0, replicas: [leader], isr: [leader], partitionEpoch: 0 }));
      const results = await Promise.allSettled([a.createTopic(topic('race', 300), states(1)), b.createTopic(topic('race', 300), states(2))]);
      const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i + 1] : []));
      assert.equal(won.length, 1, `exactly one create succeeds: ${results.map((r) => r.status).join(', ')}`);
      const lost = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
      assert.ok(lost.reason instanceof SluiceError && lost.reason.code === ErrorCode.TOPIC_ALREADY_EXISTS, String(lost.reason));
      await eventually('both see the winner', () => b.getTopic('race') !== undefined && a.getTopic('race') !== undefined);
      for (let p = 0; p < 300; p++) assert.equal((await a.getPartitionState('race', p))?.leader, won[0], `race partition ${p} is the winner's`);

      // updateTopic adding 500 to a topic, seen by another store.
      await a.createTopic(topic('grow', 100));
      await a.updateTopic({ ...a.getTopic('grow')!, partitions: 600 });
      await eventually('b sees 600 partitions', () => b.getTopic('grow')?.partitions === 600 && b.partitionState('grow', 599) !== undefined);
    } finally {
      raw.close();
    }
  });
});
