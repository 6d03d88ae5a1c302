/**
 * A follower killed with kill -9 must not stall acks=all on partitions that still have
 * min.insync.replicas in sync. Real processes: etcd + 4 brokers, a topic with 3 partitions,
 * RF 3, min.insync.replicas 2, so one broker leads nothing; that broker is killed while an
 * acks=all stream runs.
 *
 * The session TTL (30 s) and the replica lag limit (20 s) are set far beyond the bound the
 * test waits (10 s): acks=all can only resume in time if the leaders notice the follower's
 * fetch connection closing and shrink the ISR themselves. Checked:
 * - on every partition the victim followed, a record sent after the kill is acknowledged
 *   within 10 s, while the victim's registration is still in etcd (so not through the
 *   controller's session expiry);
 * - the ISR in etcd no longer names the victim (the shrink is recorded before acks=all
 *   completes without it);
 * - every acknowledged record is in the log at its offset.
 * Stall lengths are diagnostics only (the machine is shared and noisy).
 */
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { Etcd3 } from 'etcd3';
import { Producer } from '../../client/producer.ts';
import { createTopic, readAll, sleep, SteadyProduction, waitFor, withCluster, withTimeout } from './harness.ts';

const TOPIC = 'follower-kill';
const PARTITIONS = 3;
const RESUME_WITHIN_MS = 10_000;

test('kill -9 of a follower: acks=all resumes without waiting for its session or the lag limit', { timeout: 120_000 }, async (t) => {
  await withCluster(t, { brokers: 4, sessionTtlSeconds: 30, replicaLagTimeMaxMs: 20_000, offsetsTopicReplicationFactor: 3 }, async (h) => {
    const etcd = new Etcd3({ hosts: h.cluster.etcd.endpoints.split(',').map((e) => `http://${e}`) });
    const admin = h.admin();
    const initial = await createTopic(admin, TOPIC, PARTITIONS, 3, { 'min.insync.replicas': 2 });
    const leaders = new Set(initial.map((p) => p.leader));
    const victim = h.liveIds().find((b) => !leaders.has(b))!;
    const followed = initial.filter((p) => p.replicas.includes(victim)).map((p) => p.partition);
    t.diagnostic(`leaders ${initial.map((p) => `${p.partition}->${p.leader}`).join(' ')}; killing broker ${victim}, a follower of partitions ${followed.join(',')}`);
    assert.ok(followed.length > 0, 'the victim follows some partition');

    const producer = new Producer({ bootstrap: h.allBootstrap, acks: 'all', lingerMs: 2, retries: 400, retryBackoffMs: 50, retryBackoffMaxMs: 250, requestTimeoutMs: 60_000 });
    const steady = new SteadyProduction(producer, TOPIC, PARTITIONS, 10);
    const acks = steady.acks;
    try {
      await waitFor('acknowledgements on every partition', () => new Set(acks.map((a) => a.partition)).size === PARTITIONS, 15_000);
      await sleep(1500);

      const killedAt = Date.now();
      await h.kill(victim);
      for (const p of followed) {
        await waitFor(`${TOPIC}/${p}: a record sent after the kill acknowledged`, () => steady.ackedSince(p, killedAt), RESUME_WITHIN_MS, 20);
      }
      const resumedMs = Date.now() - killedAt;
      const registration = await etcd.get(`/sluice/brokers/${victim}`).string();
      assert.ok(registration !== null, `broker ${victim}'s registration is still live (TTL 30 s), so the leaders shrank the ISR themselves`);
      for (const p of followed) {
        const state = JSON.parse((await etcd.get(`/sluice/partitions/${TOPIC}/${p}`).string())!) as { isr: number[] };
        assert.ok(!state.isr.includes(victim), `${TOPIC}/${p}: ISR ${state.isr} in etcd without broker ${victim}`);
      }
      for (const p of followed) {
        const around = acks.filter((a) => a.partition === p && a.ackMs >= killedAt - 1000).map((a) => a.ackMs).sort((x, y) => x - y);
        let gap = 0;
        for (let i = 1; i < around.length; i++) gap = Math.max(gap, around[i]! - around[i - 1]!);
        t.diagnostic(`${TOPIC}/${p}: longest gap between acknowledgements around the kill ${gap} ms`);
      }
      t.diagnostic(`acks=all resumed on every followed partition within ${resumedMs} ms of the kill`);

      await steady.stop();
      assert.deepEqual(steady.failures.slice(0, 5), [], 'no send failed');
      const lost = steady.lost(await readAll(h.bootstrap, TOPIC, PARTITIONS));
      assert.deepEqual(lost.slice(0, 10).map((a) => `${a.value} at ${a.partition}/${a.offset}`), [], `${lost.length} acknowledged records lost or moved`);
    } finally {
      await steady.stop().catch(() => {});
      await withTimeout(producer.close(), 30_000, 'closing the producer').catch(() => {});
      etcd.close();
    }
  });
});
