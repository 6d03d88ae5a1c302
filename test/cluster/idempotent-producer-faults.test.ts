/**
 * Issue 9's proof for the idempotent producer: real etcd, 3 brokers, RF 3, min ISR 2,
 * acks=all. While a producer sends steadily to every partition, partition leaders are killed
 * (SIGKILL, then restarted) and paused (SIGSTOP until another broker leads, then SIGCONT),
 * one fault at a time, each once the ISR is full again. Afterwards every acknowledged record
 * must be in the log exactly once, in send order per partition: 0 lost, 0 duplicated.
 * The same run without idempotence reports the duplicates it got (retries after lost answers
 * write records twice), to show the check can fail; it asserts only that nothing was lost.
 *
 * Counts: SLUICE_EOS_KILLS (default 20) and SLUICE_EOS_PAUSES (default 10) per run.
 */
import { strict as assert } from 'node:assert';
import { test, type TestContext } from 'node:test';
import { Producer } from '../../client/producer.ts';
import { createTopic, partitionOf, readAll, sleep, SteadyProduction, waitFor, waitForIsrSize, withCluster, withTimeout, type Harness } from './harness.ts';

const PARTITIONS = 3;
const KILLS = Number(process.env.SLUICE_EOS_KILLS ?? 20);
const PAUSES = Number(process.env.SLUICE_EOS_PAUSES ?? 10);
const FAULT_TIMEOUT_MS = 30_000;

interface Outcome {
  lost: string[];
  duplicated: string[];
  reordered: string[];
  acked: number;
  failures: string[];
}

async function faultRun(t: TestContext, h: Harness, topic: string, idempotent: boolean): Promise<Outcome> {
  const admin = h.admin();
  await createTopic(admin, topic, PARTITIONS, 3, { 'min.insync.replicas': 2 });
  const producer = new Producer({
    bootstrap: h.allBootstrap,
    acks: 'all',
    idempotent,
    lingerMs: 2,
    maxInFlight: 5,
    retryBackoffMs: 50,
    retryBackoffMaxMs: 250,
    requestTimeoutMs: 10_000,
    deliveryTimeoutMs: 300_000,
  });
  const steady = new SteadyProduction(producer, topic, PARTITIONS, 10);
  const faults: Array<'kill' | 'pause'> = [];
  for (let i = 0; i < Math.max(KILLS, PAUSES); i++) {
    if (i < KILLS) faults.push('kill');
    if (i < PAUSES) faults.push('pause');
  }
  try {
    await waitFor('acknowledgements on every partition', () => new Set(steady.acks.map((a) => a.partition)).size === PARTITIONS, 15_000);
    for (const [i, fault] of faults.entries()) {
      const partition = i % PARTITIONS;
      const leader = await waitFor(`${topic}/${partition} has a leader`, async () => {
        const p = await partitionOf(admin, topic, partition);
        return p.leader >= 0 ? p.leader : null;
      }, FAULT_TIMEOUT_MS);
      const since = Date.now();
      if (fault === 'kill') {
        await h.kill(leader);
        await waitFor(`${topic}/${partition}: a new leader after the kill of ${leader}`, async () => {
          const l = (await partitionOf(admin, topic, partition)).leader;
          return l >= 0 && l !== leader;
        }, FAULT_TIMEOUT_MS);
        await h.restart(leader);
      } else {
        const proc = h.cluster.brokers.get(leader)!.proc;
        proc.kill('SIGSTOP');
        try {
          await waitFor(`${topic}/${partition}: a new leader while ${leader} is paused`, async () => {
            const l = (await partitionOf(admin, topic, partition)).leader;
            return l >= 0 && l !== leader;
          }, FAULT_TIMEOUT_MS);
        } finally {
          proc.kill('SIGCONT');
        }
      }
      await waitFor(`${topic}/${partition}: records acknowledged after fault ${i + 1}`, () => steady.ackedSince(partition, since), FAULT_TIMEOUT_MS, 20);
      await waitForIsrSize(admin, topic, 3, FAULT_TIMEOUT_MS);
      await sleep(200);
    }
    await steady.stop(120_000);
  } finally {
    await steady.stop().catch(() => {});
    await withTimeout(producer.close(), 30_000, 'closing the producer').catch(() => {});
  }
  const final = await readAll(h.bootstrap, topic, PARTITIONS, 60_000);
  const out: Outcome = { lost: [], duplicated: [], reordered: [], acked: steady.acks.length, failures: steady.failures };
  const ackedValues = new Set(steady.acks.map((a) => a.value));
  for (const [p, msgs] of final) {
    const seen = new Map<string, number>();
    let lastN = -1;
    for (const m of msgs) {
      const v = m.value!.toString();
      seen.set(v, (seen.get(v) ?? 0) + 1);
      const n = Number(v.slice(v.indexOf(':') + 1));
      if (seen.get(v) === 1) {
        if (n <= lastN) out.reordered.push(`${v} after p${p}:${lastN}`);
        lastN = Math.max(lastN, n);
      }
    }
    for (const [v, count] of seen) if (count > 1) out.duplicated.push(`${v} x${count}`);
    for (const v of ackedValues) if (v.startsWith(`p${p}:`) && !seen.has(v)) out.lost.push(v);
  }
  t.diagnostic(`${idempotent ? 'idempotent' : 'plain'}: ${faults.length} faults (${KILLS} kills, ${PAUSES} pauses), ${out.acked} acknowledged, ${out.lost.length} lost, ${out.duplicated.length} duplicated, ${out.reordered.length} out of order, ${out.failures.length} failed sends`);
  return out;
}

test('idempotent producer through leader kills and pauses: every acknowledged record exactly once, in send order', { timeout: 900_000 }, async (t) => {
  await withCluster(t, { brokers: 3, sessionTtlSeconds: 2 }, async (h) => {
    const r = await faultRun(t, h, 'eos-idem', true);
    assert.deepEqual(r.failures.slice(0, 5), [], 'no send failed');
    assert.deepEqual(r.lost.slice(0, 10), [], `${r.lost.length} acknowledged records lost`);
    assert.deepEqual(r.duplicated.slice(0, 10), [], `${r.duplicated.length} records duplicated`);
    assert.deepEqual(r.reordered.slice(0, 10), [], `${r.reordered.length} records out of send order`);
  });
});

test('the same without idempotence: nothing lost, duplicates reported (the check above can fail)', { timeout: 900_000 }, async (t) => {
  await withCluster(t, { brokers: 3, sessionTtlSeconds: 2 }, async (h) => {
    const r = await faultRun(t, h, 'eos-plain', false);
    assert.deepEqual(r.lost.slice(0, 10), [], `${r.lost.length} acknowledged records lost`);
    t.diagnostic(`plain producer duplicates: ${r.duplicated.length}${r.duplicated.length > 0 ? ` (e.g. ${r.duplicated.slice(0, 5).join(', ')})` : ''}`);
  });
});
