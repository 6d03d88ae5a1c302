/**
 * A follower dies (kill -9) under acks=all production: the leader drops it from the ISR,
 * acks=all keeps working on the remaining two (= min.insync.replicas), and the follower,
 * restarted on its data dir, catches up and rejoins the ISR with a byte-identical log.
 */
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { Producer } from '../../client/producer.ts';
import { createTopic, partitionOf, percentile, readAll, replicaBytes, sleep, waitFor, withCluster, withTimeout } from './harness.ts';

const TOPIC = 'follower-loss';

test('a killed follower leaves the ISR, acks=all continues, and after restart it catches up and rejoins', { timeout: 90_000 }, async (t) => {
  await withCluster(t, { brokers: 3 }, async (h) => {
    const admin = h.admin();
    const [initial] = await createTopic(admin, TOPIC, 1, 3, { 'min.insync.replicas': 2 });
    const leader = initial!.leader;
    const controller = (await admin.metadata([])).controllerId;
    // A follower that is not the controller, so only the follower role is lost.
    const follower = initial!.replicas.find((b) => b !== leader && b !== controller) ?? initial!.replicas.find((b) => b !== leader)!;
    t.diagnostic(`leader ${leader}, controller ${controller}, killing follower ${follower}`);

    // A background stream with retries, to see how long acks=all stalls while the dead follower is still in the ISR.
    const stream = new Producer({ bootstrap: h.allBootstrap, acks: 'all', lingerMs: 2, retries: 60, retryBackoffMs: 50, retryBackoffMaxMs: 250, requestTimeoutMs: 10_000 });
    const acked: Array<{ value: string; offset: number; sentMs: number; ackMs: number }> = [];
    const failures: string[] = [];
    const pending = new Set<Promise<void>>();
    let stop = false;
    let n = 0;
    const producing = (async () => {
      while (!stop) {
        const value = `s${n++}`;
        const sentMs = Date.now();
        const p = stream.send({ topic: TOPIC, value }).then(
          (md) => void acked.push({ value, offset: md.offset, sentMs, ackMs: Date.now() }),
          (e: Error) => void failures.push(`${value}: ${e.message}`),
        ).finally(() => pending.delete(p));
        pending.add(p);
        await sleep(5);
      }
    })();
    const strict = new Producer({ bootstrap: h.allBootstrap, acks: 'all', retries: 0, requestTimeoutMs: 10_000 });
    try {
      await waitFor('the stream is acknowledged', () => acked.length >= 100, 10_000);
      await sleep(1000); // steady state (a new partition's followers take up to one fetch wait to start)

      const killedAt = Date.now();
      await h.kill(follower);
      const shrunk = await waitFor(`ISR without broker ${follower}`, async () => {
        const p = await partitionOf(admin, TOPIC, 0);
        return p.isr.includes(follower) ? null : p;
      }, 20_000, 50);
      const shrinkMs = Date.now() - killedAt;
      assert.equal(shrunk.leader, leader, 'the leader stays');
      assert.deepEqual([...shrunk.isr].sort(), initial!.replicas.filter((b) => b !== follower).sort(), 'the ISR is the two live replicas');
      t.diagnostic(`kill -9 follower -> ISR ${shrunk.isr} after ${shrinkMs} ms`);

      // With the ISR at min.insync.replicas, acks=all succeeds without any retry.
      const degraded = await Promise.all(Array.from({ length: 50 }, (_, i) => strict.send({ topic: TOPIC, value: `d${i}` })));
      assert.equal(degraded.length, 50);

      const restartedAt = Date.now();
      const proc = await h.restart(follower);
      const rejoined = await waitFor(`broker ${follower} back in the ISR`, async () => {
        const p = await partitionOf(admin, TOPIC, 0);
        return p.isr.includes(follower) ? p : null;
      }, 30_000, 50);
      t.diagnostic(`restart -> back in the ISR (${rejoined.isr}) after ${Date.now() - restartedAt} ms`);
      assert.equal(rejoined.leader, leader, 'the leader still stays');

      // acks=all now needs all three again, and gets them.
      const full = await Promise.all(Array.from({ length: 50 }, (_, i) => strict.send({ topic: TOPIC, value: `f${i}` })));
      assert.equal(full.length, 50);

      stop = true;
      await producing;
      await withTimeout(Promise.all([...pending]), 30_000, 'settling the stream');
      assert.deepEqual(failures.slice(0, 5), [], 'no send of the stream failed');

      // The follower caught up: its log is the leader's, byte for byte.
      const leaderDir = h.cluster.brokers.get(leader)!.dataDir;
      await waitFor('the restarted follower holds the leader\'s log', async () => (await replicaBytes(proc.dataDir, TOPIC, 0)).equals(await replicaBytes(leaderDir, TOPIC, 0)), 10_000, 200);

      // Everything acknowledged is there.
      const final = (await readAll(h.bootstrap, TOPIC, 1)).get(0)!;
      const at = new Map(final.map((m) => [m.offset, m.value!.toString()]));
      for (const a of acked) assert.equal(at.get(a.offset), a.value, `acknowledged ${a.value} at offset ${a.offset}`);
      for (const [i, md] of degraded.entries()) assert.equal(at.get(md.offset), `d${i}`);
      for (const [i, md] of full.entries()) assert.equal(at.get(md.offset), `f${i}`);

      // How long acks=all stalled: records sent around the kill waited for the ISR to shrink.
      const aroundKill = acked.filter((a) => a.sentMs >= killedAt - 500 && a.sentMs <= killedAt + shrinkMs);
      const healthy = acked.filter((a) => a.sentMs >= killedAt - 800 && a.ackMs < killedAt).map((a) => a.ackMs - a.sentMs);
      t.diagnostic(`stream: ${acked.length} acknowledged; ack latency before the kill p50 ${percentile(healthy, 50)} ms, p99 ${percentile(healthy, 99)} ms; records sent between kill and ISR shrink waited up to ${Math.max(0, ...aroundKill.map((a) => a.ackMs - a.sentMs))} ms`);
    } finally {
      stop = true;
      await producing.catch(() => {});
      await withTimeout(Promise.all([stream.close(), strict.close()]), 30_000, 'closing producers').catch(() => {});
    }
  });
});
