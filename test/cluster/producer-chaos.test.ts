/**
 * Issue 9's producer proof: with the idempotent producer (the default), acks=all, RF 3 and
 * min.insync.replicas 2, twenty leader kills (kill -9) and ten leader pauses (SIGSTOP) during a
 * steady stream lose nothing acknowledged, store nothing twice and keep send order in every
 * partition. The driver (producer-chaos.ts) also runs without idempotence, as a script, to
 * show the same checks find duplicates there.
 */
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { runProducerChaos } from './producer-chaos.ts';

test('idempotent producer through 20 leader kills and 10 leader pauses: 0 lost, 0 duplicated, in order', { timeout: 420_000 }, async (t) => {
  const r = await runProducerChaos(t, { idempotent: true, kills: 20, pauses: 10, partitions: 3, sendIntervalMs: 5 });
  t.diagnostic(JSON.stringify(r));
  assert.ok(r.kills >= 20 && r.pauses >= 10, `faults injected: ${r.kills} kills, ${r.pauses} pauses`);
  assert.ok(r.acknowledged > 10_000, `a real stream: ${r.acknowledged} acknowledged`);
  assert.deepEqual({ lost: r.lost, duplicated: r.duplicated, outOfOrder: r.outOfOrder }, { lost: 0, duplicated: 0, outOfOrder: 0 }, r.examples.join('\n'));
  assert.equal(r.failed, 0, `no send failed within the delivery timeout: ${r.examples.join('\n')}`);
});
