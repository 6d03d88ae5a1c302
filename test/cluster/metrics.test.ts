/**
 * Metrics of a real cluster (3 broker processes, real etcd), each broker with its own metrics
 * endpoint: the group coordinator exports the lag `sluice group describe` computes; a paused follower holds acks=all appends in the produce purgatory until the leader
 * shrinks the ISR (counted), and expands it again once the follower is back; after a follower
 * is killed, the brokers' under-replicated partitions add up to what Metadata shows, and the
 * controller reports as offline exactly the partitions Metadata shows without a leader.
 */
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { Admin } from '../../client/admin.ts';
import { ApiKey } from '../../protocol/api-keys.ts';
import type { ProduceResponse } from '../../protocol/apis/index.ts';
import { Connection } from '../../protocol/connection.ts';
import { buildBatch } from '../../protocol/record-batch.ts';
import { startBroker, tempDir, type BrokerProcess } from '../helpers/broker-process.ts';
import { startEtcd, type EtcdProcess } from '../helpers/etcd-process.ts';
import { freePort, metric, scrape } from '../helpers/metrics-scrape.ts';
import { createTopic, partitionsOf, waitFor } from './harness.ts';

const enc = new TextEncoder();

interface Node {
  id: number;
  proc: BrokerProcess;
  metricsPort: number;
}

test('cluster metrics: group lag, produce purgatory, ISR shrink/expand, under-replicated and offline partitions match Metadata', { timeout: 150_000 }, async (t) => {
  let etcd: EtcdProcess | null = null;
  const nodes = new Map<number, Node>();
  const admins: Admin[] = [];
  const conns: Connection[] = [];
  try {
    etcd = await startEtcd();
    const endpoints = etcd.endpoints;
    await Promise.all(
      [1, 2, 3].map(async (id) => {
        const metricsPort = await freePort();
        const proc = await startBroker({
          dataDir: tempDir(`sluice-metrics-b${id}-`),
          args: [
            '--broker-id', String(id),
            '--metadata', `etcd://${endpoints}`,
            // Long enough that a follower paused for a few seconds keeps its registration: only
            // the leader's lag check takes it out of the ISR.
            '--broker-session-ttl-seconds', '10',
            '--replica-lag-time-ms-max', '2000',
            '--offsets-topic-replication-factor', '3',
            '--transaction-state-replication-factor', '3',
            '--metrics-port', String(metricsPort),
          ],
        });
        nodes.set(id, { id, proc, metricsPort });
      }),
    );
    const admin = new Admin({ bootstrap: [...nodes.values()].map((n) => n.proc.bootstrap).join(','), requestTimeoutMs: 5000 });
    admins.push(admin);
    const [p0] = await createTopic(admin, 'replicated', 1, 3, { 'min.insync.replicas': 1 });
    // Single-replica partitions spread over the brokers: the killed one's go offline.
    await createTopic(admin, 'single', 6, 1);
    const leader = p0!.leader;
    const controller = (await admin.metadata([])).controllerId;
    const follower = p0!.replicas.find((b) => b !== leader && b !== controller) ?? p0!.replicas.find((b) => b !== leader)!;
    t.diagnostic(`leader ${leader}, controller ${controller}, follower ${follower}`);
    const leaderNode = nodes.get(leader)!;
    const followerNode = nodes.get(follower)!;

    const produceAll = async (conn: Connection, value: string) => {
      const batch = buildBatch([{ key: null, value: enc.encode(value) }]);
      const r = await conn.send<ProduceResponse>(ApiKey.PRODUCE, { acks: -1, timeoutMs: 30_000, topics: [{ topic: 'replicated', partitions: [{ partition: 0, recordsBytes: batch.length }] }] }, [batch], true, 40_000);
      const p = r.control.topics[0]!.partitions[0]!;
      assert.equal(p.errorCode, 0, p.errorMessage ?? '');
    };
    const conn = await Connection.connect(leaderNode.proc.host, leaderNode.proc.port);
    conns.push(conn);
    await produceAll(conn, 'first');
    await waitFor('no under-replicated partition anywhere', async () => {
      let sum = 0;
      for (const n of nodes.values()) sum += metric(await scrape(n.metricsPort), 'sluice_under_replicated_partitions');
      return sum === 0;
    }, 30_000);
    const before = await scrape(leaderNode.metricsPort);
    assert.equal(metric(before, 'sluice_produce_purgatory_size'), 0);

    // Group lag across the cluster: the coordinator (it holds a replica: replication 3)
    // exports it, and it equals what `sluice group describe` computes (Admin.groupLag).
    for (let i = 0; i < 6; i++) await produceAll(conn, `lag-${i}`);
    await admin.commitOffsets('lag-readers', [{ topic: 'replicated', partition: 0, offset: 2 }]);
    const coordinator = (await admin.findCoordinator('lag-readers')).nodeId;
    const lagSeen = await waitFor('the lag series equal Admin.groupLag', async () => {
      const real = (await admin.groupLag('lag-readers')).find((l) => l.topic === 'replicated' && l.partition === 0)!;
      const series: number[] = [];
      for (const n of nodes.values()) {
        const s = await scrape(n.metricsPort);
        const key = 'sluice_consumer_group_lag{group="lag-readers",topic="replicated",partition="0"}';
        if (s.values.has(key)) series.push(s.values.get(key)!);
        else assert.notEqual(n.id, coordinator, 'the coordinator exports the lag');
      }
      return series.length === 1 && series[0] === real.lag ? { real: real.lag, series } : null;
    }, 20_000);
    assert.equal(lagSeen.real, 5, 'seven records (first + six), committed at 2');

    // 1. A paused follower: the acks=all append waits in the purgatory until the ISR shrinks.
    followerNode.proc.proc.kill('SIGSTOP');
    let waiting: Promise<void> | null = null;
    try {
      waiting = produceAll(conn, 'held');
      const held = await waitFor('an acks=all append in the produce purgatory', async () => metric(await scrape(leaderNode.metricsPort), 'sluice_produce_purgatory_size') >= 1 || null, 10_000, 50);
      assert.ok(held);
      await waiting; // answered once the leader shrank the ISR (replica-lag-time-ms-max)
      const shrunk = await scrape(leaderNode.metricsPort);
      assert.equal(metric(shrunk, 'sluice_produce_purgatory_size'), 0);
      assert.ok(metric(shrunk, 'sluice_isr_shrinks_total') >= metric(before, 'sluice_isr_shrinks_total') + 1, 'the shrink is counted');
      assert.ok(metric(shrunk, 'sluice_under_replicated_partitions') >= 1, 'the partition is under-replicated');
    } finally {
      followerNode.proc.proc.kill('SIGCONT');
      await waiting?.catch(() => {});
    }
    await waitFor('the follower back in the ISR, counted as an expand', async () => {
      const s = await scrape(leaderNode.metricsPort);
      return metric(s, 'sluice_isr_expands_total') >= metric(before, 'sluice_isr_expands_total') + 1 && metric(s, 'sluice_under_replicated_partitions') === 0 ? s : null;
    }, 30_000);

    // 2. A killed follower: under-replicated partitions (summed over the live brokers) are what
    // Metadata shows, and the controller reports the partitions left without a leader.
    await followerNode.proc.kill();
    nodes.delete(follower);
    const fromMetadata = async () => {
      // Named: the internal topics are not listed by a Metadata for every topic, but are exported.
      const md = await admin.metadata(['replicated', 'single', '__consumer_offsets', '__transaction_state']);
      assert.ok(md.topics.every((x) => x.errorCode === 0), JSON.stringify(md.topics.map((x) => [x.topic, x.errorCode])));
      let under = 0;
      let offline = 0;
      for (const topic of md.topics) for (const p of topic.partitions) {
        if (p.leader < 0) offline++;
        else if (p.isr.length < p.replicas.length) under++;
      }
      return { under, offline };
    };
    let lastSeen = '';
    const settled = await waitFor('metrics of the live brokers match Metadata, with partitions under-replicated and offline', async () => {
      const md = await fromMetadata();
      let under = 0;
      let offline = 0;
      let offlineOnOthers = 0;
      for (const n of nodes.values()) {
        const s = await scrape(n.metricsPort);
        under += metric(s, 'sluice_under_replicated_partitions');
        offline += metric(s, 'sluice_offline_partitions');
        if (n.id !== controller) offlineOnOthers += metric(s, 'sluice_offline_partitions');
      }
      const again = await fromMetadata();
      lastSeen = JSON.stringify({ md, again, under, offline, offlineOnOthers });
      if (md.under !== again.under || md.offline !== again.offline) return null; // still moving
      return md.under > 0 && md.offline > 0 && under === md.under && offline === md.offline && offlineOnOthers === 0 ? { under, offline } : null;
    }, 60_000, 250).catch((e: Error) => {
      throw new Error(`${e.message}; last seen ${lastSeen}`);
    });
    t.diagnostic(`after kill -9 of broker ${follower}: ${settled.under} under-replicated, ${settled.offline} offline partitions`);
    const single = await partitionsOf(admin, 'single');
    assert.equal(settled.offline, single.filter((p) => p.replicas.includes(follower)).length, 'offline: the single-replica partitions of the killed broker');
    assert.ok(metric(await scrape(leaderNode.metricsPort), 'sluice_under_replicated_partitions') >= 1, 'the leader of "replicated" reports it');
  } finally {
    for (const c of conns) c.close();
    for (const a of admins) await a.close().catch(() => {});
    for (const n of nodes.values()) {
      await n.proc.kill();
      n.proc.cleanup();
    }
    await etcd?.stop();
  }
});
