/**
 * Producer ordering across a leader change: with maxInFlight 1 the producer promises strict
 * per-partition order under retries (client/producer.ts). That must also hold when the
 * partition's leader hangs with a request in flight and leadership moves meanwhile.
 *
 * Set-up (real processes): the leader of t/0 is frozen (SIGSTOP), so the request in flight to
 * it hangs. A second topic whose only replica is on a broker we kill makes the producer refresh
 * its metadata again and again (connection refused), so it learns t/0's new leader while the
 * old request still hangs. Then the frozen leader is killed: the hung request fails and is
 * retried. Every record carries its sequence number; the log must hold them in order.
 *
 * Regression: the accumulator used to send a partition's next batch while an earlier one was
 * still in flight on the old leader; with maxInFlight 1 the partition is now muted.
 */
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { Admin } from '../../client/admin.ts';
import { Producer } from '../../client/producer.ts';
import { createTopic, partitionOf, readAll, sleep, waitFor, withCluster, withTimeout } from './harness.ts';

const TOPIC = 'ordered';

test('maxInFlight 1 keeps per-partition order when the leader hangs and leadership moves', { timeout: 90_000 }, async (t) => {
  await withCluster(t, { brokers: 3 }, async (h) => {
    const admin = h.admin();
    // The hung leader must not be the lowest broker id: clients ask the first known broker for
    // metadata and would hang on it (a separate client issue, see metadata-failover.test.ts).
    let topic = '';
    let hung = -1;
    for (let i = 0; hung < 0; i++) {
      assert.ok(i < 12, 'a topic led by a broker other than the lowest id');
      const [p] = await createTopic(admin, `${TOPIC}-${i}`, 1, 3, { 'min.insync.replicas': 1 });
      if (p!.leader !== Math.min(...h.liveIds())) [topic, hung] = [`${TOPIC}-${i}`, p!.leader];
    }
    // A single-replica topic on another broker: its sends fail while that broker is down, and
    // every failure refreshes the producer's metadata.
    let trigger = '';
    let triggerBroker = -1;
    for (let i = 0; triggerBroker < 0; i++) {
      assert.ok(i < 12, 'a single-replica topic placed on another broker');
      await admin.createTopics([{ topic: `trigger-${i}`, partitions: 1, replicationFactor: 1 }]);
      const leader = (await waitFor(`trigger-${i} led`, async () => {
        const p = await partitionOf(admin, `trigger-${i}`, 0);
        return p.leader >= 0 ? p : null;
      })).leader;
      if (leader !== hung) [trigger, triggerBroker] = [`trigger-${i}`, leader];
    }
    t.diagnostic(`${topic}/0 led by ${hung}; ${trigger} on ${triggerBroker}`);
    // Metadata polls go to a broker that neither hangs nor dies.
    const observer = h.cluster.brokers.get(h.liveIds().find((id) => id !== hung && id !== triggerBroker)!)!;

    const producer = new Producer({ bootstrap: h.allBootstrap, acks: 'all', maxInFlight: 1, lingerMs: 2, retries: 200, retryBackoffMs: 50, retryBackoffMaxMs: 250, requestTimeoutMs: 30_000 });
    const pending: Promise<unknown>[] = [];
    let stop = false;
    let seq = 0;
    const loops = [
      (async () => {
        while (!stop) {
          pending.push(producer.send({ topic, partition: 0, value: String(seq++) }).catch(() => {}));
          await sleep(10);
        }
      })(),
      (async () => {
        while (!stop) {
          void producer.send({ topic: trigger, value: 'x' }).catch(() => {});
          await sleep(100);
        }
      })(),
    ];
    try {
      await sleep(1000);
      h.cluster.brokers.get(hung)!.proc.kill('SIGSTOP');
      await h.kill(triggerBroker);
      const moved = await waitFor(`a new leader for ${topic}/0`, async () => {
        const a = new Admin({ bootstrap: observer.bootstrap, requestTimeoutMs: 2000 });
        try {
          const p = await partitionOf(a, topic, 0);
          return p.leader >= 0 && p.leader !== hung ? p : null;
        } finally {
          await a.close();
        }
      }, 20_000, 100);
      t.diagnostic(`leader moved to ${moved.leader} (isr ${moved.isr}) while ${hung} hangs`);
      await sleep(2000); // later records go to the new leader meanwhile
      await h.kill(hung); // the hung request fails now, and is retried
      await h.restart(triggerBroker);
      await sleep(1000);
      stop = true;
      await Promise.all(loops);
      await withTimeout(Promise.all(pending), 30_000, 'settling every send');

      const log = (await readAll(h.bootstrap, topic, 1)).get(0)!;
      const seen = new Set<number>();
      let max = -1;
      const disorder: string[] = [];
      for (const m of log) {
        const v = Number(m.value!.toString());
        if (seen.has(v)) continue;
        seen.add(v);
        if (v < max) disorder.push(`${v} at offset ${m.offset}, after ${max}`);
        max = Math.max(max, v);
      }
      t.diagnostic(`${log.length} records, ${disorder.length} out of order${disorder.length ? `: ${disorder.slice(0, 3).join('; ')}` : ''}`);
      assert.deepEqual(disorder, [], 'records in send order');
    } finally {
      stop = true;
      for (const b of h.cluster.brokers.values()) b.proc.kill('SIGCONT');
      await Promise.all(loops).catch(() => {});
      await withTimeout(producer.close(), 30_000, 'closing the producer').catch(() => {});
    }
  });
});
