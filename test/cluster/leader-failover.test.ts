/**
 * Leader failover under continuous acks=all production (RF 3, min.insync.replicas 2), with
 * real processes: etcd + 3 brokers, the leader of a partition SIGKILLed mid-stream and
 * restarted on the same data dir later.
 *
 * What must hold afterwards:
 * - every acknowledged record is in the log at the offset its acknowledgement named;
 * - per key (each key pinned to one partition) the sequence numbers, duplicates aside, appear
 *   in increasing order (the producer runs with maxInFlight 1, so retries cannot reorder);
 * - nothing a consumer was shown (below the high watermark) disappears or changes later,
 *   neither what it saw before the kill nor after;
 * - once the restarted broker is back in the ISR, all three replicas hold byte-identical logs
 *   (the old leader truncated the tail it alone had).
 * Reported: duplicates (producer retries), unacknowledged records that made it anyway, and the
 * time from the kill to the first acks=all produce acknowledged on the killed leader's partition.
 */
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { Consumer, type Message } from '../../client/consumer.ts';
import { Producer } from '../../client/producer.ts';
import { batchEpochs, copyMessage, createTopic, partitionOf, readAll, replicaBytes, sleep, waitFor, waitForIsrSize, withCluster, withTimeout } from './harness.ts';

const TOPIC = 'stream';
const PARTITIONS = 3;
const KEYS = 12; // key i lives in partition i % PARTITIONS
const OUTSTANDING_MAX = 3000;

interface Ack {
  key: number;
  seq: number;
  partition: number;
  offset: number;
  atMs: number;
}

test('acks=all stream survives kill -9 of a partition leader and its restart: no acknowledged or consumed record is lost', { timeout: 120_000 }, async (t) => {
  await withCluster(t, { brokers: 3 }, async (h) => {
    const admin = h.admin();
    const initial = await createTopic(admin, TOPIC, PARTITIONS, 3, { 'min.insync.replicas': 2 });
    const victimPartition = 0;
    const victim = initial[victimPartition]!.leader;
    t.diagnostic(`leaders before: ${initial.map((p) => `${p.partition}->${p.leader}`).join(' ')}; killing broker ${victim} (leader of ${TOPIC}/${victimPartition})`);

    // ---- a consumer that runs throughout, recording everything it is shown ----
    const live = new Consumer({ bootstrap: h.allBootstrap, maxWaitMs: 200, autoOffsetReset: 'none', retryBackoffMs: 50 });
    await live.assign(Array.from({ length: PARTITIONS }, (_, p) => ({ topic: TOPIC, partition: p, offset: 0 })));
    const seen: Message[] = [];
    const consumerErrors: string[] = [];
    let stopConsumer = false;
    const consuming = (async () => {
      while (!stopConsumer) {
        try {
          for (const m of await live.poll(200)) seen.push(copyMessage(m));
        } catch (e) {
          consumerErrors.push((e as Error).message);
          await sleep(100);
        }
      }
    })();

    // ---- the producer: a steady stream, each key with its own sequence ----
    const producer = new Producer({
      bootstrap: h.allBootstrap,
      acks: 'all',
      maxInFlight: 1,
      lingerMs: 2,
      retries: 120, // ~30 s of retrying at the capped backoff: far more than a failover takes
      retryBackoffMs: 50,
      retryBackoffMaxMs: 250,
      requestTimeoutMs: 10_000,
    });
    const acks: Ack[] = [];
    const failures: string[] = [];
    const nextSeq = new Array<number>(KEYS).fill(0);
    let outstanding = 0;
    let stopProducing = false;
    const pending = new Set<Promise<void>>();
    const producing = (async () => {
      while (!stopProducing) {
        if (outstanding >= OUTSTANDING_MAX) {
          await sleep(5);
          continue;
        }
        for (let key = 0; key < KEYS; key++) {
          const seq = nextSeq[key]!++;
          outstanding++;
          const p = producer
            .send({ topic: TOPIC, partition: key % PARTITIONS, key: `k${key}`, value: `k${key}:${seq}` })
            .then(
              (md) => void acks.push({ key, seq, partition: md.partition, offset: md.offset, atMs: Date.now() }),
              (e: Error) => void failures.push(`k${key}:${seq}: ${e.message}`),
            )
            .finally(() => {
              outstanding--;
              pending.delete(p);
            });
          pending.add(p);
        }
        await sleep(10);
      }
    })();

    try {
      await waitFor('some records acknowledged on every partition', () => new Set(acks.map((a) => a.partition)).size === PARTITIONS, 15_000);
      await sleep(1500);
      const seenBeforeKill = seen.length;
      const ackedBeforeKill = acks.length;

      // ---- kill -9 the leader of partition 0 ----
      const killedAt = Date.now();
      await h.kill(victim);
      const newLeader = await waitFor(`a new leader for ${TOPIC}/${victimPartition}`, async () => {
        const p = await partitionOf(admin, TOPIC, victimPartition);
        return p.leader >= 0 && p.leader !== victim ? p : null;
      }, 20_000, 50);
      const electedMs = Date.now() - killedAt;
      assert.ok(!newLeader.isr.includes(victim), `the dead broker left the ISR: ${JSON.stringify(newLeader)}`);
      assert.ok(newLeader.leaderEpoch > initial[victimPartition]!.leaderEpoch, 'the leader epoch was bumped');
      t.diagnostic(`kill -9 -> new leader ${newLeader.leader} (epoch ${newLeader.leaderEpoch}, isr ${newLeader.isr}) seen in metadata after ${electedMs} ms`);
      // The new leader's acknowledgements carry offsets at or after its epoch start; which those
      // are is read from the log at the end (the stored batches carry their leader epoch).
      await waitFor(`acknowledgements on ${TOPIC}/${victimPartition} again`, () => acks.some((a) => a.partition === victimPartition && a.atMs > killedAt + electedMs), 20_000, 20);

      // Keep producing on the degraded cluster (ISR 2 = min.insync.replicas), then restart.
      await sleep(1500);
      const restartedAt = Date.now();
      await h.restart(victim);
      t.diagnostic(`broker ${victim} restarted in ${Date.now() - restartedAt} ms`);
      await waitFor(`broker ${victim} back in the ISR of every partition`, async () => {
        const md = await admin.metadata([TOPIC]);
        return md.topics[0]!.partitions.every((p) => p.isr.includes(victim));
      }, 30_000);
      t.diagnostic(`broker ${victim} back in the ISR of every partition ${Date.now() - restartedAt} ms after its restart began`);
      await sleep(1000);

      // ---- stop producing; every send settles ----
      stopProducing = true;
      await producing;
      await withTimeout(Promise.all([...pending]), 30_000, 'settling every send');
      assert.equal(outstanding, 0, 'every send settled');
      await producer.close();
      await waitForIsrSize(admin, TOPIC, 3, 10_000);

      // ---- the live consumer reaches the end; then a fresh, complete read ----
      const final = await readAll(h.bootstrap, TOPIC, PARTITIONS);
      const finalCount = [...final.values()].reduce((n, ms) => n + ms.length, 0);
      await waitFor('the live consumer saw everything', () => seen.length >= finalCount, 20_000);
      stopConsumer = true;
      await consuming;
      await live.close();

      // 1. Every acknowledged record is where its acknowledgement said.
      const byOffset = new Map<number, Map<number, string>>();
      for (const [p, ms] of final) byOffset.set(p, new Map(ms.map((m) => [m.offset, m.value!.toString()])));
      const missing: string[] = [];
      for (const a of acks) {
        const v = byOffset.get(a.partition)!.get(a.offset);
        if (v !== `k${a.key}:${a.seq}`) missing.push(`k${a.key}:${a.seq} acked at ${a.partition}/${a.offset}, log has ${v ?? 'nothing'}`);
      }
      assert.deepEqual(missing.slice(0, 20), [], `${missing.length} acknowledged records lost or moved`);

      // 2. Per-key order: new sequence numbers only ever increase; repeats are duplicates.
      const maxSeen = new Array<number>(KEYS).fill(-1);
      const firstSeen = new Array<Set<number>>(KEYS).fill(null as never).map(() => new Set<number>());
      let duplicates = 0;
      const disorder: string[] = [];
      for (const [p, ms] of final) {
        for (const m of ms) {
          const [k, s] = m.value!.toString().split(':');
          const key = Number(k!.slice(1));
          const seq = Number(s);
          assert.equal(key % PARTITIONS, p, `k${key} belongs to partition ${key % PARTITIONS}, found in ${p}`);
          if (firstSeen[key]!.has(seq)) {
            duplicates++;
            continue;
          }
          firstSeen[key]!.add(seq);
          if (seq < maxSeen[key]!) disorder.push(`k${key}:${seq} at ${p}/${m.offset} after k${key}:${maxSeen[key]}`);
          maxSeen[key] = Math.max(maxSeen[key]!, seq);
        }
      }
      assert.deepEqual(disorder.slice(0, 20), [], `${disorder.length} records out of order`);

      // 3. Nothing a consumer was shown disappears: not before the kill, not after.
      const changed: string[] = [];
      for (const m of seen) {
        const v = byOffset.get(m.partition)!.get(m.offset);
        if (v !== m.value!.toString()) changed.push(`${m.partition}/${m.offset}: consumer saw ${m.value}, log now has ${v ?? 'nothing'}`);
      }
      const changedBeforeKill = changed.length === 0 ? 0 : seen.slice(0, seenBeforeKill).filter((m) => byOffset.get(m.partition)!.get(m.offset) !== m.value!.toString()).length;
      assert.deepEqual(changed.slice(0, 20), [], `${changed.length} consumed records vanished or changed (${changedBeforeKill} of them seen before the kill)`);
      // The live consumer saw each offset once, in order.
      const lastOffset = new Map<number, number>();
      for (const m of seen) {
        assert.ok(m.offset > (lastOffset.get(m.partition) ?? -1), `live consumer went back in ${m.partition}: ${m.offset} after ${lastOffset.get(m.partition)}`);
        lastOffset.set(m.partition, m.offset);
      }
      assert.deepEqual(consumerErrors, [], 'the live consumer saw no errors');

      // 4. All replicas identical (the old leader truncated whatever only it had).
      await waitFor('replica logs byte-identical on all three brokers', async () => {
        for (let p = 0; p < PARTITIONS; p++) {
          const copies = await Promise.all(h.liveIds().map((id) => replicaBytes(h.cluster.brokers.get(id)!.dataDir, TOPIC, p)));
          if (!copies.every((c) => c.equals(copies[0]!))) return false;
        }
        return true;
      }, 10_000, 200);

      // Failover time: from the kill to the first acknowledgement of a record the new leader wrote.
      const epochs = batchEpochs(await replicaBytes(h.cluster.brokers.get(newLeader.leader)!.dataDir, TOPIC, victimPartition));
      const epochStart = epochs.find((b) => b.epoch >= newLeader.leaderEpoch)?.baseOffset;
      assert.ok(epochStart !== undefined, `the log of ${TOPIC}/${victimPartition} has batches of epoch ${newLeader.leaderEpoch}`);
      const firstAck = acks.filter((a) => a.partition === victimPartition && a.offset >= epochStart).reduce((m, a) => (a.atMs < m.atMs ? a : m));
      assert.ok(acks.filter((a) => a.partition === victimPartition && a.offset < epochStart).every((a) => a.atMs <= firstAck.atMs + 50), 'the old leader acknowledged nothing after the new one');
      t.diagnostic(`kill -9 -> first acks=all produce acknowledged on ${TOPIC}/${victimPartition} (by the new leader, offset ${firstAck.offset}): ${firstAck.atMs - killedAt} ms`);

      const ackedKeys = new Set(acks.map((a) => `${a.key}:${a.seq}`));
      let unackedPresent = 0;
      for (const ms of final.values()) for (const m of ms) {
        const v = m.value!.toString();
        if (!ackedKeys.has(v.slice(1))) unackedPresent++;
      }
      t.diagnostic(`records: ${acks.length} acknowledged (${ackedBeforeKill} before the kill), ${failures.length} failed, ${finalCount} in the log, ${duplicates} duplicates, ${unackedPresent} unacknowledged but written`);
      const restarted = h.history.filter((x) => x.id === victim).at(-1)!.proc;
      const truncations = restarted.log().split('\n').filter((l) => l.includes('truncating divergent tail') && l.includes(`topic="${TOPIC}"`));
      t.diagnostic(`restarted broker ${victim}: ${truncations.length} truncation(s)${truncations.length ? `: ${truncations.map((l) => l.replace(/^.*truncating divergent tail /, '')).join('; ')}` : ''}`);
      t.diagnostic(`live consumer: ${seen.length} records (${seenBeforeKill} before the kill)`);
      assert.deepEqual(failures.slice(0, 5), [], 'no send failed (the producer retries through the failover)');
    } finally {
      stopProducing = true;
      stopConsumer = true;
      await producing.catch(() => {});
      await consuming.catch(() => {});
      await producer.close().catch(() => {});
      await live.close().catch(() => {});
    }
  });
});
