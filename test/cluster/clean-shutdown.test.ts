/**
 * A clean stop (SIGTERM) of a partition leader must not take its partitions offline: the
 * followers were in sync when the stop began, so the controller can hand leadership to one
 * of them once the broker's registration is gone, and acks=all works again.
 *
 * The stop happens while an acks=all produce is in flight that cannot complete (a follower is
 * frozen with SIGSTOP): the request keeps its connection open for the shutdown grace period
 * (5 s), longer than replica.lag.time.max.ms here (3 s), and the broker stays leader meanwhile.
 *
 * Regression: the stopping leader used to keep running its ISR check during that grace
 * period and shrink the ISR to itself, leaving the partition leaderless after it exited.
 */
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { Producer } from '../../client/producer.ts';
import { ApiKey } from '../../protocol/api-keys.ts';
import { Connection } from '../../protocol/connection.ts';
import { buildBatch } from '../../protocol/record-batch.ts';
import { createTopic, partitionOf, waitFor, withCluster, withTimeout } from './harness.ts';

const TOPIC = 'clean-stop';

test('SIGTERM of a partition leader: a follower takes over, acks=all works', { timeout: 60_000 }, async (t) => {
  await withCluster(t, { brokers: 3 }, async (h) => {
    const admin = h.admin();
    const [p0] = await createTopic(admin, TOPIC, 1, 3, { 'min.insync.replicas': 2 });
    const leader = p0!.leader;
    const producer = new Producer({ bootstrap: h.allBootstrap, acks: 'all', retries: 60, retryBackoffMs: 50, retryBackoffMaxMs: 250, requestTimeoutMs: 10_000 });
    try {
      await producer.send({ topic: TOPIC, value: 'before' });
      // An acks=all produce that cannot complete while the stop runs: one follower is frozen
      // (SIGSTOP; it stays in the ISR until the lag limit), so the request holds its connection
      // open and the stop waits for the shutdown grace period.
      const frozen = p0!.replicas.find((b) => b !== leader)!;
      const frozenProc = h.cluster.brokers.get(frozen)!.proc;
      frozenProc.kill('SIGSTOP');
      const leaderProc = h.cluster.brokers.get(leader)!;
      const conn = await Connection.connect(leaderProc.host, leaderProc.port, { requestTimeoutMs: 60_000 });
      const batch = buildBatch([{ value: Buffer.from('in-flight') }]);
      const inFlight = conn.send(ApiKey.PRODUCE, { acks: -1, timeoutMs: 30_000, topics: [{ topic: TOPIC, partitions: [{ partition: 0, recordsBytes: batch.length }] }] }, [batch]).catch(() => {});
      await new Promise((r) => setTimeout(r, 100));
      const stoppingAt = Date.now();
      const code = await h.cluster.brokers.get(leader)!.stop();
      h.cluster.brokers.delete(leader);
      t.diagnostic(`broker ${leader} stopped cleanly (exit ${code}) in ${Date.now() - stoppingAt} ms`);
      assert.equal(code, 0);
      frozenProc.kill('SIGCONT');
      const after = await waitFor(`a live leader for ${TOPIC}/0`, async () => {
        const p = await partitionOf(admin, TOPIC, 0);
        return p.leader >= 0 && p.leader !== leader ? p : null;
      }, 10_000, 100).catch(async (e: Error) => {
        throw new Error(`${e.message}; partition now ${JSON.stringify(await partitionOf(admin, TOPIC, 0))}`);
      });
      t.diagnostic(`new leader ${after.leader}, isr ${after.isr}, ${Date.now() - stoppingAt} ms after the stop began`);
      conn.close();
      await inFlight;
      await withTimeout(producer.send({ topic: TOPIC, value: 'after' }), 20_000, 'acks=all after the clean stop');
    } finally {
      for (const b of h.cluster.brokers.values()) b.proc.kill('SIGCONT');
      await withTimeout(producer.close(), 20_000, 'closing the producer').catch(() => {});
    }
  });
});
