/**
 * A follower that has everything and waits in a long poll is in sync, however short the replica
 * lag limit: only a follower behind the leader's log end can lag. With a lag limit (300 ms)
 * shorter than the followers' fetch wait (500 ms), a leader that counted "time since the last
 * fetch at the log end" dropped idle, healthy followers and took them back over and over.
 * Short lag limits are what bound the acks=all stall when a follower is paused (SIGSTOP keeps
 * its connection open), so they must not cost a flapping ISR.
 *
 * Real processes: etcd + 3 brokers, a topic with RF 3. After some acks=all writes the topic
 * stays idle for 4 s; no broker may log an ISR shrink meanwhile, and the ISR stays full.
 */
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { Producer } from '../../client/producer.ts';
import { createTopic, partitionsOf, sleep, withCluster, withTimeout } from './harness.ts';

const TOPIC = 'idle';
const PARTITIONS = 3;

test('idle followers at the log end stay in the ISR with a lag limit shorter than their fetch wait', { timeout: 90_000 }, async (t) => {
  await withCluster(t, { brokers: 3, replicaLagTimeMaxMs: 300 }, async (h) => {
    const admin = h.admin();
    await createTopic(admin, TOPIC, PARTITIONS, 3, { 'min.insync.replicas': 2 });
    const producer = new Producer({ bootstrap: h.allBootstrap, acks: 'all', retries: 50, retryBackoffMs: 50, retryBackoffMaxMs: 250, requestTimeoutMs: 10_000 });
    try {
      await withTimeout(Promise.all(Array.from({ length: 30 }, (_, i) => producer.send({ topic: TOPIC, partition: i % PARTITIONS, value: `v${i}` }))), 30_000, 'acks=all writes');
    } finally {
      await producer.close();
    }
    await sleep(1000); // the followers fetch the last writes and park at the log end
    const shrinks = (): string[] => h.liveIds().flatMap((id) => h.cluster.brokers.get(id)!.log().split('\n').filter((l) => l.includes('ISR shrunk')));
    const before = shrinks().length;
    await sleep(4000);
    const during = shrinks().slice(before);
    t.diagnostic(`ISR shrinks while idle: ${during.length}`);
    assert.deepEqual(during.slice(0, 5), [], `${during.length} ISR shrinks of idle, caught-up followers`);
    const ps = await partitionsOf(admin, TOPIC);
    assert.ok(ps.every((p) => p.isr.length === 3), `full ISR on every partition: ${JSON.stringify(ps.map((p) => p.isr))}`);
  });
});
