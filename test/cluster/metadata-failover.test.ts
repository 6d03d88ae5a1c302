/**
 * Clients must get metadata while one broker hangs (alive on TCP, not answering: SIGSTOP,
 * as in a long GC pause or a stuck disk). The other two brokers answer; a client that timed
 * out on the hung one should ask another.
 *
 * Regression: Cluster.anyConnection used to ask the same hung broker first every time.
 */
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { Admin } from '../../client/admin.ts';
import { createTopic, withCluster } from './harness.ts';

test('metadata requests succeed while the first known broker hangs', { timeout: 60_000 }, async (t) => {
  await withCluster(t, { brokers: 3 }, async (h) => {
    await createTopic(h.admin(), 'md', 1, 3);
    const admin = new Admin({ bootstrap: h.bootstrap, requestTimeoutMs: 1500 });
    const first = Math.min(...h.liveIds());
    try {
      await admin.metadata(['md']); // the client now knows every broker
      h.cluster.brokers.get(first)!.proc.kill('SIGSTOP');
      const outcomes: string[] = [];
      for (let attempt = 0; attempt < 3; attempt++) {
        outcomes.push(await admin.metadata(['md']).then((md) => `ok (${md.brokers.length} brokers)`, (e: Error) => e.message));
        if (outcomes.at(-1)!.startsWith('ok')) break;
      }
      t.diagnostic(`broker ${first} frozen; metadata attempts: ${outcomes.join(' | ')}`);
      assert.ok(outcomes.some((o) => o.startsWith('ok')), 'one of three attempts reaches a live broker');
    } finally {
      h.cluster.brokers.get(first)?.proc.kill('SIGCONT');
      await admin.close();
    }
  });
});
