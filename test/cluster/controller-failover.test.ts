/**
 * The controller dies (kill -9): another live broker is elected, it moves the dead broker's
 * partitions, and it handles a later leader failure too (new leader elected, acks=all
 * produce works). The old controller, restarted, rejoins as an ordinary broker.
 */
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { Producer } from '../../client/producer.ts';
import { createTopic, partitionOf, partitionsOf, readAll, waitFor, waitForIsrSize, withCluster, withTimeout } from './harness.ts';

const TOPIC = 'after-controller';

test('kill -9 of the controller: a live broker takes over and later leader failovers still work', { timeout: 90_000 }, async (t) => {
  await withCluster(t, { brokers: 3 }, async (h) => {
    const admin = h.admin();
    const before = await createTopic(admin, TOPIC, 3, 3, { 'min.insync.replicas': 2 });
    const oldController = (await admin.metadata([])).controllerId;
    assert.ok(h.liveIds().includes(oldController), `a controller is elected (${oldController})`);
    const ledByOld = before.filter((p) => p.leader === oldController).map((p) => p.partition);
    t.diagnostic(`controller ${oldController}, leading ${TOPIC} partitions [${ledByOld}]`);

    const producer = new Producer({ bootstrap: h.allBootstrap, acks: 'all', lingerMs: 0, retries: 60, retryBackoffMs: 50, retryBackoffMaxMs: 250, requestTimeoutMs: 10_000 });
    const acked: Array<{ partition: number; offset: number; value: string }> = [];
    const send = async (partition: number, value: string): Promise<void> => {
      const md = await producer.send({ topic: TOPIC, partition, value });
      acked.push({ partition, offset: md.offset, value });
    };
    try {
      for (let p = 0; p < 3; p++) await send(p, `before-${p}`);

      // ---- kill the controller ----
      let killedAt = Date.now();
      await h.kill(oldController);
      const md = await waitFor('a new controller among the live brokers', async () => {
        const m = await admin.metadata([TOPIC]);
        return m.controllerId >= 0 && m.controllerId !== oldController && h.liveIds().includes(m.controllerId) ? m : null;
      }, 20_000, 50);
      const newController = md.controllerId;
      t.diagnostic(`kill -9 controller ${oldController} -> controller ${newController} after ${Date.now() - killedAt} ms`);
      // The new controller moved the old one's partitions (and took it out of every ISR).
      const moved = await waitFor('every partition led by a live broker, without the dead one in its ISR', async () => {
        const ps = await partitionsOf(admin, TOPIC);
        return ps.every((p) => p.leader >= 0 && p.leader !== oldController && !p.isr.includes(oldController)) ? ps : null;
      }, 20_000, 50);
      t.diagnostic(`partitions moved ${Date.now() - killedAt} ms after the kill: ${moved.map((p) => `${p.partition}->${p.leader} isr ${p.isr}`).join('; ')}`);
      for (let p = 0; p < 3; p++) await send(p, `no-controller-${p}`);

      // ---- the old controller comes back as a plain broker and catches up ----
      await h.restart(oldController);
      await waitForIsrSize(admin, TOPIC, 3, 30_000);
      assert.equal((await admin.metadata([])).controllerId, newController, 'the restarted broker does not take the controller back');

      // ---- a leader failover handled by the new controller ----
      const ps = await partitionsOf(admin, TOPIC);
      // A partition led by a broker other than the new controller: the controller survives this kill.
      const target = ps.find((p) => p.leader !== newController) ?? ps[0]!;
      const victim = target.leader;
      assert.notEqual(victim, newController, `some partition is led by a broker other than the controller: ${JSON.stringify(ps)}`);
      killedAt = Date.now();
      await h.kill(victim);
      const probe = send(target.partition, 'after-failover').then(() => Date.now());
      const elected = await waitFor(`a new leader for ${TOPIC}/${target.partition}`, async () => {
        const p = await partitionOf(admin, TOPIC, target.partition);
        return p.leader >= 0 && p.leader !== victim ? p : null;
      }, 20_000, 50);
      t.diagnostic(`kill -9 leader ${victim} of ${TOPIC}/${target.partition} -> leader ${elected.leader} (epoch ${elected.leaderEpoch}, isr ${elected.isr}) after ${Date.now() - killedAt} ms`);
      assert.ok(elected.leaderEpoch > target.leaderEpoch, 'leader epoch bumped');
      assert.ok(!elected.isr.includes(victim), 'the dead leader left the ISR');
      assert.equal((await admin.metadata([])).controllerId, newController, 'the controller did not change');
      const probeAckedAt = await withTimeout(probe, 30_000, 'acks=all produce after the failover');
      t.diagnostic(`kill -9 leader -> first acks=all produce acknowledged on ${TOPIC}/${target.partition}: ${probeAckedAt - killedAt} ms`);
      for (let p = 0; p < 3; p++) await send(p, `end-${p}`);

      const final = await readAll(h.bootstrap, TOPIC, 3);
      for (const a of acked) {
        const m = final.get(a.partition)!.find((x) => x.offset === a.offset);
        assert.equal(m?.value?.toString(), a.value, `acknowledged ${a.value} at ${a.partition}/${a.offset}`);
      }
    } finally {
      await withTimeout(producer.close(), 30_000, 'closing the producer').catch(() => {});
    }
  });
});
