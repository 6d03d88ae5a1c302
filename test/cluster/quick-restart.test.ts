/**
 * A partition leader killed (kill -9) and restarted at once, long before its etcd lease
 * expires, under a steady acks=all stream (RF 3, min.insync.replicas 2), with real
 * processes: etcd + 3 brokers, the victim restarted on its data dir and port.
 *
 * The restarted process is a new incarnation: until the controller has elected it again
 * under its new registration, it must not act as leader, above all not at the leader epoch
 * it served before the crash. Checked from outside:
 * - a probe sends acks=1 Produce straight to the restarted broker's port from the moment it
 *   listens; whenever it is acknowledged, etcd is read right after: the partition's stored
 *   leader epoch must be newer than the pre-crash one (states only move forward, so an old
 *   epoch read after the answer proves the answer came at the old epoch);
 * - no ISR fight: an etcd watch counts the writes of the partition's state from the kill to
 *   the end; a handful is normal (new leader, ISR changes, the restarted broker rejoining),
 *   a leader and the controller overwriting each other every 50-100 ms is not;
 * - every acknowledged record is in the log at its offset, and duplicates come only from
 *   sends that were unanswered when the leader died (a retry of a write that had landed).
 */
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { Etcd3 } from 'etcd3';
import { Connection } from '../../client/connection.ts';
import { Producer } from '../../client/producer.ts';
import { ApiKey } from '../../protocol/api-keys.ts';
import type { ProduceResponse } from '../../protocol/apis/index.ts';
import { buildBatch } from '../../protocol/record-batch.ts';
import { createTopic, readAll, sleep, waitFor, waitForIsrSize, withCluster, withTimeout } from './harness.ts';

const TOPIC = 'restart';
const PARTITIONS = 3;
const SESSION_TTL_SECONDS = 8; // a restart takes 1-3 s here: well inside the old lease
const STATE_WRITES_MAX = 12;
const enc = new TextEncoder();

interface PartitionStateJson {
  leader: number;
  leaderEpoch: number;
  isr: number[];
}

test('a leader restarted before its lease expires does not lead at its old epoch; no ISR fight, no acknowledged record lost', { timeout: 150_000 }, async (t) => {
  await withCluster(t, { brokers: 3, sessionTtlSeconds: SESSION_TTL_SECONDS }, async (h) => {
    const etcd = new Etcd3({ hosts: h.cluster.etcd.endpoints.split(',').map((e) => (e.startsWith('http') ? e : `http://${e}`)) });
    const stateKey = `/sluice/partitions/${TOPIC}/0`;
    const readState = async (): Promise<PartitionStateJson> => JSON.parse((await etcd.get(stateKey).string())!) as PartitionStateJson;
    const admin = h.admin();
    const initial = await createTopic(admin, TOPIC, PARTITIONS, 3, { 'min.insync.replicas': 2 });
    await sleep(1000); // the first fetches of a new partition's followers
    const before = await readState();
    const victim = before.leader;
    const oldEpoch = before.leaderEpoch;
    const victimPort = h.cluster.brokers.get(victim)!.port;
    t.diagnostic(`leaders ${initial.map((p) => `${p.partition}->${p.leader}`).join(' ')}; victim ${victim} leads ${TOPIC}/0 at epoch ${oldEpoch}`);

    const producer = new Producer({ bootstrap: h.allBootstrap, acks: 'all', maxInFlight: 1, lingerMs: 2, retries: 400, retryBackoffMs: 50, retryBackoffMaxMs: 250, requestTimeoutMs: 10_000 });
    const acks: Array<{ value: string; partition: number; offset: number }> = [];
    const unansweredAtKill = new Set<string>();
    const inFlight = new Set<string>();
    const failures: string[] = [];
    const pending = new Set<Promise<void>>();
    let stop = false;
    let probing = true;
    const watcher = await etcd.watch().key(stateKey).create();
    const writes: string[] = [];
    let killed = false;
    watcher.on('put', (kv) => {
      if (killed) writes.push(kv.value.toString());
    });
    const seq = new Array<number>(PARTITIONS).fill(0);
    const producing = (async () => {
      while (!stop) {
        for (let p = 0; p < PARTITIONS; p++) {
          const value = `p${p}:${seq[p]!++}`;
          inFlight.add(value);
          const s = producer
            .send({ topic: TOPIC, partition: p, value })
            .then(
              (md) => void acks.push({ value, partition: md.partition, offset: md.offset }),
              (e: Error) => void failures.push(`${value}: ${e.message}`),
            )
            .finally(() => {
              inFlight.delete(value);
              pending.delete(s);
            });
          pending.add(s);
        }
        await sleep(10);
      }
    })();

    // Produce straight to the restarted broker's port, acks=1: any answer with errorCode 0 is
    // the restarted broker acting as leader; etcd says at which epoch it may.
    const probeAcks: Array<{ atMs: number; storedEpoch: number; storedLeader: number }> = [];
    const probeErrors = new Map<number, number>();
    const probe = async (): Promise<void> => {
      let n = 0;
      while (probing) {
        let conn: Connection | null = null;
        try {
          conn = await Connection.connect('127.0.0.1', victimPort, { clientId: 'probe', requestTimeoutMs: 3000 });
          while (probing && !conn.closed) {
            const batch = buildBatch([{ key: null, value: enc.encode(`probe-${n++}`) }]);
            const r = await conn.send<ProduceResponse>(ApiKey.PRODUCE, { acks: 1, timeoutMs: 3000, topics: [{ topic: TOPIC, partitions: [{ partition: 0, recordsBytes: batch.length }] }] }, [batch]);
            const code = r.control.topics[0]!.partitions[0]!.errorCode;
            if (code === 0) {
              const s = await readState();
              probeAcks.push({ atMs: Date.now(), storedEpoch: s.leaderEpoch, storedLeader: s.leader });
            } else {
              probeErrors.set(code, (probeErrors.get(code) ?? 0) + 1);
            }
            await sleep(20);
          }
        } catch {
          await sleep(20); // not listening yet, or it closed: try again
        } finally {
          conn?.close();
        }
      }
    };

    let probing$: Promise<void> = Promise.resolve();
    try {
      await waitFor('acknowledgements on every partition', () => new Set(acks.map((a) => a.partition)).size === PARTITIONS, 15_000);
      await sleep(1000);

      // ---- kill -9 the leader of partition 0, restart it at once ----
      killed = true;
      await h.kill(victim);
      for (const v of inFlight) unansweredAtKill.add(v);
      const killedAt = Date.now();
      probing$ = probe();
      await h.restart(victim);
      t.diagnostic(`broker ${victim} restarted and registered ${Date.now() - killedAt} ms after the kill`);
      await waitFor(`broker ${victim} back in the ISR of every partition`, async () => {
        const md = await admin.metadata([TOPIC]);
        return md.topics[0]!.partitions.every((p) => p.isr.includes(victim));
      }, 40_000);
      await sleep(1500);
      probing = false;
      await probing$;

      stop = true;
      await producing;
      await withTimeout(Promise.all([...pending]), 30_000, 'settling every send');
      await producer.close();
      await waitForIsrSize(admin, TOPIC, 3, 10_000);
      const after = await readState();

      // 1. The restarted broker never answered Produce as leader at (or below) its old epoch.
      const stale = probeAcks.filter((a) => a.storedEpoch <= oldEpoch);
      t.diagnostic(`probe: ${probeAcks.length} acknowledged by the restarted broker (${stale.length} at the old epoch ${oldEpoch}); refusals by error code ${JSON.stringify(Object.fromEntries(probeErrors))}`);
      assert.deepEqual(stale.slice(0, 5), [], `the restarted broker acknowledged ${stale.length} produce requests while etcd still had leader epoch ${oldEpoch}`);
      assert.ok(after.leaderEpoch > oldEpoch, `the leader epoch moved past ${oldEpoch}: ${JSON.stringify(after)}`);

      // 2. No ISR fight: few writes of the partition's state since the kill.
      t.diagnostic(`${writes.length} writes of ${TOPIC}/0's state since the kill: ${writes.map((w) => { const s = JSON.parse(w) as PartitionStateJson; return `${s.leader}@${s.leaderEpoch}[${s.isr}]`; }).join(' ')}`);
      assert.ok(writes.length <= STATE_WRITES_MAX, `${writes.length} writes of ${TOPIC}/0's state after the kill (at most ${STATE_WRITES_MAX} expected): the ISR was fought over`);

      // 3. Every acknowledged record is where its acknowledgement said; duplicates only of sends unanswered at the kill.
      const final = await readAll(h.bootstrap, TOPIC, PARTITIONS);
      const at = new Map<string, string>();
      const count = new Map<string, number>();
      for (const [p, ms] of final) for (const m of ms) {
        const v = m.value!.toString();
        at.set(`${p}/${m.offset}`, v);
        if (!v.startsWith('probe-')) count.set(v, (count.get(v) ?? 0) + 1);
      }
      const lost = acks.filter((a) => at.get(`${a.partition}/${a.offset}`) !== a.value);
      assert.deepEqual(lost.slice(0, 10).map((a) => `${a.value} acked at ${a.partition}/${a.offset}, log has ${at.get(`${a.partition}/${a.offset}`)}`), [], `${lost.length} acknowledged records lost or moved`);
      const duplicated = [...count].filter(([v, c]) => c > 1 && !unansweredAtKill.has(v)).map(([v, c]) => `${v} x${c}`);
      assert.deepEqual(duplicated.slice(0, 10), [], `${duplicated.length} records duplicated that were not in flight at the kill`);
      assert.deepEqual(failures.slice(0, 5), [], 'no send failed');
      t.diagnostic(`${acks.length} acknowledged, ${[...count.values()].filter((c) => c > 1).length} duplicated (of ${unansweredAtKill.size} unanswered at the kill); final state ${JSON.stringify(after)}`);
    } finally {
      stop = true;
      probing = false;
      await producing.catch(() => {});
      await probing$.catch(() => {});
      await producer.close().catch(() => {});
      await watcher.cancel().catch(() => {});
      etcd.close();
    }
  });
});
