/**
 * Committed offsets across a coordinator failover: an offset commit that was acknowledged
 * (appended to __consumer_offsets and replicated to every in-sync replica) must be what the
 * next coordinator answers, even when the old one is killed (kill -9) right after the
 * acknowledgement, before the followers learned the new high watermark.
 */
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { createTopic, waitFor, withCluster } from './harness.ts';

const TOPIC = 'committed';
const GROUP = 'g-commit-failover';
/** Filled by the first test, judged by the second. */
const commitLatenciesMs: number[] = [];

test('an acknowledged offset commit survives kill -9 of the coordinator right after it', { timeout: 60_000 }, async (t) => {
  await withCluster(t, { brokers: 3 }, async (h) => {
    const admin = h.admin();
    await createTopic(admin, TOPIC, 1, 3, { 'min.insync.replicas': 2 });
    const coordinator = (await admin.findCoordinator(GROUP)).nodeId;

    // A few commits, the last one acknowledged immediately before the kill.
    const last = 10;
    const latencies: number[] = [];
    for (let offset = 1; offset <= last; offset++) {
      const started = performance.now();
      await admin.commitOffsets(GROUP, [{ topic: TOPIC, partition: 0, offset }]);
      latencies.push(performance.now() - started);
    }
    t.diagnostic(`offset commit latency (RF 3): ${latencies.map((ms) => ms.toFixed(0)).join(', ')} ms`);
    commitLatenciesMs.push(...latencies);
    await h.kill(coordinator);
    const killedAt = Date.now();

    const next = await waitFor('a new coordinator', async () => {
      const c = await admin.findCoordinator(GROUP);
      return c.nodeId !== coordinator ? c : null;
    }, 20_000, 100);
    t.diagnostic(`coordinator ${coordinator} killed; broker ${next.nodeId} coordinates ${GROUP} after ${Date.now() - killedAt} ms`);
    const committed = await waitFor('the committed offset from the new coordinator', async () => (await admin.fetchOffsets(GROUP, [TOPIC])).find((o) => o.partition === 0), 20_000, 100);
    assert.equal(committed.offset, last, `the new coordinator answers the last acknowledged commit (${last}), not an older one`);
  });
});

test('an offset commit is acknowledged in milliseconds, not after the followers\' fetch wait', {
}, () => {
  assert.ok(commitLatenciesMs.length > 0, 'the failover test ran first');
  const sorted = [...commitLatenciesMs].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)]!;
  assert.ok(median < 100, `median offset commit latency ${median.toFixed(0)} ms`);
});
