/**
 * A leader paused with SIGSTOP (its sockets stay open, so nothing tells the producer it is
 * gone) must cost acks=all producers about the failure detection time, not the producer's
 * request timeout. Real processes: etcd + 3 brokers, session TTL 2 s, a topic with RF 3 and
 * min.insync.replicas 2, an acks=all producer with the default requestTimeoutMs (30 s).
 *
 * Checked: after the leader of partition 0 is paused, a record sent to partition 0 is
 * acknowledged (by the new leader) within RESUME_WITHIN_MS, well below the 30 s the
 * producer would otherwise wait for its unanswered request; nothing acknowledged is lost.
 * The stall length is a diagnostic only (the machine is shared and noisy).
 */
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { Producer } from '../../client/producer.ts';
import { createTopic, partitionOf, readAll, sleep, SteadyProduction, waitFor, withCluster, withTimeout } from './harness.ts';

const TOPIC = 'leader-pause';
const PARTITIONS = 3;
const RESUME_WITHIN_MS = 15_000;

test('SIGSTOP of a leader: acks=all resumes on the new leader after the session expires, not after the request timeout', { timeout: 120_000 }, async (t) => {
  await withCluster(t, { brokers: 3, sessionTtlSeconds: 2, offsetsTopicReplicationFactor: 3 }, async (h) => {
    const admin = h.admin();
    await createTopic(admin, TOPIC, PARTITIONS, 3, { 'min.insync.replicas': 2 });
    const victim = (await partitionOf(admin, TOPIC, 0)).leader;
    const producer = new Producer({ bootstrap: h.allBootstrap, acks: 'all', lingerMs: 2, retryBackoffMs: 50, retryBackoffMaxMs: 250 });
    const steady = new SteadyProduction(producer, TOPIC, PARTITIONS, 20);
    const victimProc = h.cluster.brokers.get(victim)!.proc;
    let paused = false;
    try {
      await waitFor('acknowledgements on every partition', () => new Set(steady.acks.map((a) => a.partition)).size === PARTITIONS, 15_000);
      await sleep(1000);
      const pausedAt = Date.now();
      victimProc.kill('SIGSTOP');
      paused = true;
      await waitFor(`${TOPIC}/0: a record sent after the pause acknowledged`, () => steady.ackedSince(0, pausedAt), RESUME_WITHIN_MS, 20);
      t.diagnostic(`acks=all on partition 0 resumed ${Date.now() - pausedAt} ms after its leader (broker ${victim}) was paused`);
      // The admin may first ask the paused broker (and wait out its request timeout).
      await waitFor('partition 0 led by another broker', async () => (await partitionOf(admin, TOPIC, 0)).leader !== victim, 30_000);

      await steady.stop(60_000);
      assert.deepEqual(steady.failures.slice(0, 5), [], 'no send failed');
      victimProc.kill('SIGCONT');
      paused = false;
      const lost = steady.lost(await readAll(h.bootstrap, TOPIC, PARTITIONS));
      assert.deepEqual(lost.slice(0, 10).map((a) => `${a.value} at ${a.partition}/${a.offset}`), [], `${lost.length} acknowledged records lost or moved`);
    } finally {
      if (paused) victimProc.kill('SIGCONT');
      await steady.stop().catch(() => {});
      await withTimeout(producer.close(), 30_000, 'closing the producer').catch(() => {});
    }
  });
});
