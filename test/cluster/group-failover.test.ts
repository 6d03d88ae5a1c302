/**
 * A consumer group (two GroupConsumers, at-least-once) keeps consuming while the broker that
 * coordinates it, and leads some of the topic's partitions, is killed (kill -9): the group
 * moves to the new leader of its __consumer_offsets partition, the partitions get new leaders,
 * and every record produced (acks=all) is processed; committed offsets reach the log end.
 */
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { GroupConsumer } from '../../client/group/consumer.ts';
import { Producer } from '../../client/producer.ts';
import { createTopic, partitionsOf, sleep, waitFor, withCluster, withTimeout } from './harness.ts';

const TOPIC = 'group-src';
const GROUP = 'g-failover';
const PARTITIONS = 6;

test('a consumer group processes everything through the loss of its coordinator and of partition leaders', { timeout: 120_000 }, async (t) => {
  await withCluster(t, { brokers: 3 }, async (h) => {
    const admin = h.admin();
    const before = await createTopic(admin, TOPIC, PARTITIONS, 3, { 'min.insync.replicas': 2 });

    // ---- two members, each recording what it processed ----
    const processed: Array<{ member: number; value: string; partition: number; offset: number; atMs: number }> = [];
    const errors: string[] = [];
    let stop = false;
    const members = [0, 1].map(
      (i) =>
        new GroupConsumer({
          bootstrap: h.allBootstrap,
          groupId: GROUP,
          topics: [TOPIC],
          autoOffsetReset: 'earliest',
          autoCommitIntervalMs: 500,
          sessionTimeoutMs: 10_000,
          maxWaitMs: 200,
          retryBackoffMs: 100,
          requestTimeoutMs: 5000,
          clientId: `member-${i}`,
        }),
    );
    const loops = members.map(async (c, member) => {
      while (!stop) {
        try {
          for (const m of await c.poll(200)) processed.push({ member, value: m.value!.toString(), partition: m.partition, offset: m.offset, atMs: Date.now() });
        } catch (e) {
          errors.push(`member ${member}: ${(e as Error).message}`);
          await sleep(100);
        }
      }
    });

    const producer = new Producer({ bootstrap: h.allBootstrap, acks: 'all', lingerMs: 2, retries: 60, retryBackoffMs: 50, retryBackoffMaxMs: 250, requestTimeoutMs: 10_000 });
    const acked: Array<{ value: string; partition: number; offset: number; atMs: number }> = [];
    const failures: string[] = [];
    const pending = new Set<Promise<void>>();
    let producing = true;
    let n = 0;
    const producerLoop = (async () => {
      while (producing) {
        for (let p = 0; p < PARTITIONS; p++) {
          const value = `m${n++}`;
          const s = producer.send({ topic: TOPIC, partition: p, value }).then(
            (md) => void acked.push({ value, partition: md.partition, offset: md.offset, atMs: Date.now() }),
            (e: Error) => void failures.push(`${value}: ${e.message}`),
          ).finally(() => pending.delete(s));
          pending.add(s);
        }
        await sleep(20);
      }
    })();

    try {
      await waitFor('the group split the partitions between both members', () => {
        const a = members.map((c) => c.assignment().length);
        return a[0]! > 0 && a[1]! > 0 && a[0]! + a[1]! === PARTITIONS;
      }, 20_000);
      await waitFor('records processed', () => processed.length >= 300, 20_000);

      // ---- kill the coordinator (it also leads some of the topic's partitions) ----
      const coordinator = (await admin.findCoordinator(GROUP)).nodeId;
      const led = before.filter((p) => p.leader === coordinator).map((p) => p.partition);
      assert.ok(led.length > 0, `the coordinator ${coordinator} leads some partitions of ${TOPIC}`);
      t.diagnostic(`killing broker ${coordinator}: coordinator of ${GROUP}, leader of ${TOPIC} partitions [${led}]; assignment ${members.map((c, i) => `member ${i}: [${c.assignment().map((x) => x.partition)}]`).join(', ')}`);
      const killedAt = Date.now();
      await h.kill(coordinator);

      const newCoordinator = await waitFor('a new coordinator', async () => {
        const c = await admin.findCoordinator(GROUP);
        return c.nodeId !== coordinator ? c : null;
      }, 20_000, 100);
      t.diagnostic(`new coordinator ${newCoordinator.nodeId} after ${Date.now() - killedAt} ms`);
      await waitFor('new leaders for the dead broker\'s partitions', async () => (await partitionsOf(admin, TOPIC)).every((p) => p.leader >= 0 && p.leader !== coordinator), 20_000, 100);

      await sleep(3000);
      producing = false;
      await producerLoop;
      await withTimeout(Promise.all([...pending]), 30_000, 'settling every send');
      assert.deepEqual(failures.slice(0, 5), [], 'no send failed');

      // ---- everything acknowledged gets processed ----
      const want = new Set(acked.map((a) => a.value));
      const done = new Set<string>();
      let scanned = 0;
      const catchUp = Date.now();
      await waitFor(`all ${want.size} acknowledged records processed`, () => {
        for (; scanned < processed.length; scanned++) done.add(processed[scanned]!.value);
        return [...want].every((v) => done.has(v));
      }, 45_000, 200).catch((e: Error) => {
        const missing = [...want].filter((v) => !done.has(v));
        throw new Error(`${e.message}: ${missing.length} missing, e.g. ${missing.slice(0, 10)}; assignment ${members.map((c, i) => `member ${i}: [${c.assignment().map((x) => x.partition)}]`).join(', ')}; errors ${errors.slice(-5)}`);
      });
      t.diagnostic(`all processed ${Date.now() - catchUp} ms after producing stopped`);

      // ---- committed offsets reach the log end on the new coordinator ----
      const ends = await Promise.all(Array.from({ length: PARTITIONS }, (_, p) => admin.listOffsets(TOPIC, p, 'latest')));
      await waitFor('committed offsets at the log end', async () => {
        const committed = await admin.fetchOffsets(GROUP, [TOPIC]);
        return ends.every((end, p) => committed.find((c) => c.partition === p)?.offset === end);
      }, 20_000, 200);

      // ---- report ----
      const counts = new Map<string, number>();
      for (const r of processed) counts.set(r.value, (counts.get(r.value) ?? 0) + 1);
      const duplicates = [...counts.values()].reduce((s, c) => s + c - 1, 0);
      const unexpected = [...counts.keys()].filter((v) => !want.has(v));
      // Where redeliveries start: first processing time (relative to the kill) of records processed twice.
      const firstAt = new Map<string, number>();
      for (const r of processed) if (!firstAt.has(r.value)) firstAt.set(r.value, r.atMs - killedAt);
      const dupFirst = [...counts].filter(([, c]) => c > 1).map(([v]) => firstAt.get(v)!);
      const redelivered = processed.filter((r, i) => processed.findIndex((x) => x.value === r.value) !== i);
      // When each partition delivered new data again: the first processing of a record acknowledged
      // after the kill (bounded below by the acks=all stall until the dead broker leaves the ISRs).
      const resumedMs = Array.from({ length: PARTITIONS }, (_, p) => {
        const afterKill = new Set(acked.filter((a) => a.partition === p && a.atMs > killedAt).map((a) => a.value));
        const first = processed.find((r) => r.partition === p && afterKill.has(r.value));
        return first ? first.atMs - killedAt : NaN;
      });
      t.diagnostic(`records: ${acked.length} acknowledged, ${processed.length} processed, ${duplicates} duplicates (at-least-once redelivery), ${unexpected.length} processed but never acknowledged`);
      if (dupFirst.length > 0) t.diagnostic(`records processed twice were first processed ${Math.min(...dupFirst)}..${Math.max(...dupFirst)} ms relative to the kill, redelivered ${Math.min(...redelivered.map((r) => r.atMs - killedAt))}..${Math.max(...redelivered.map((r) => r.atMs - killedAt))} ms after it`);
      t.diagnostic(`kill -9 -> first post-kill record processed, per partition (ms): ${resumedMs.map((ms, p) => `${p}${led.includes(p) ? '*' : ''}:${ms}`).join(' ')} (* led by the dead broker)`);
      t.diagnostic(`member errors seen by poll(): ${errors.length}${errors.length ? ` (${[...new Set(errors.map((e) => e.replace(/member \d: /, '')))].slice(0, 3).join(' | ')})` : ''}`);
    } finally {
      stop = true;
      producing = false;
      await producerLoop.catch(() => {});
      await Promise.all(loops);
      await withTimeout(Promise.all([producer.close(), ...members.map((c) => c.close())]), 30_000, 'closing clients').catch(() => {});
    }
  });
});
