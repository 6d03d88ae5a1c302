/**
 * Many partitions in a cluster (etcd + 3 brokers, each under `ulimit -n 256`): 4 topics of 100
 * partitions (the etcd store writes a topic in one transaction, and etcd allows 128 operations
 * in one), 3 replicas each, so every broker holds 400 replicas, and the two brokers that learn of the topic from etcd
 * create their replicas in the background. Every partition must get a full ISR, take acks=all
 * writes and serve them, and every broker must stay responsive meanwhile.
 *
 * Regression: each segment held an fd of its own, so the followers ran out of file
 * descriptors part way ("too many open files") and never held most of their replicas.
 */
import { strict as assert } from 'node:assert';
import { join } from 'node:path';
import { test } from 'node:test';
import { Producer } from '../../client/producer.ts';
import { ApiKey } from '../../protocol/api-keys.ts';
import type { FetchResponse } from '../../protocol/apis/index.ts';
import { Connection } from '../../protocol/connection.ts';
import { batchSizeAt, decodeRecords } from '../../protocol/record-batch.ts';
import { repoRoot } from '../helpers/broker-process.ts';
import type { Admin } from '../../client/admin.ts';
import { partitionsOf, waitFor, withCluster, withTimeout, type Harness } from './harness.ts';

const FD_LIMIT = 256;
const TOPICS = ['wide-a', 'wide-b', 'wide-c', 'wide-d'];
const PARTITIONS = 100;
const runtime = ['sh', '-c', `ulimit -n ${FD_LIMIT} && exec "$0" "$@"`, process.execPath, join(repoRoot, 'bin/sluice.mjs')];

test(`cluster: ${TOPICS.length} x ${PARTITIONS} partitions x 3 replicas under ulimit -n ${FD_LIMIT}: full ISR, acks=all writes, reads`, { timeout: 300_000 }, async (t) => {
  // Session TTL 8 s, not the harness's 2 s: this test is about file handles, and on a loaded
  // machine creating hundreds of replicas at once can delay a lease renewal past 2 s.
  await withCluster(t, { brokers: 3, runtime, sessionTtlSeconds: 8 }, async (h) => {
    const admin = h.admin();
    // Each broker answers ApiVersions while the replicas are made (diagnostic: how long its event loop stalled).
    const pingers = await Promise.all([...h.cluster.brokers.values()].map((b) => Connection.connect(b.host, b.port, { requestTimeoutMs: 120_000 })));
    let creating = true;
    const slowestMs = pingers.map(() => 0);
    const pings = pingers.map(async (c, i) => {
      for (let n = 0; creating && n < 100_000; n++) {
        const sentAt = Date.now();
        await c.send(ApiKey.API_VERSIONS, {});
        slowestMs[i] = Math.max(slowestMs[i]!, Date.now() - sentAt);
        await new Promise((r) => setTimeout(r, 50));
      }
    });
    const startedAt = Date.now();
    try {
      for (const topic of TOPICS) await admin.createTopics([{ topic, partitions: PARTITIONS, replicationFactor: 3 }]);
      const createdMs = Date.now() - startedAt;
      for (const topic of TOPICS) {
        await waitFor(`${topic}: every partition led with a full ISR`, async () => {
          const ps = await partitionsOf(admin, topic);
          return ps.length === PARTITIONS && ps.every((p) => p.leader >= 0 && p.isr.length === 3);
        }, 180_000, 500);
      }
      t.diagnostic(`CreateTopics answered in ${createdMs} ms; full ISR everywhere after ${Date.now() - startedAt} ms; slowest ApiVersions per broker ${slowestMs.join(', ')} ms`);
    } finally {
      creating = false;
      await Promise.all(pings);
      for (const c of pingers) c.close();
    }
    const producer = new Producer({ bootstrap: h.allBootstrap, acks: 'all', retries: 20, retryBackoffMs: 50, requestTimeoutMs: 10_000 });
    const spread = Array.from({ length: 10 }, (_, i) => i * Math.floor(PARTITIONS / 10));
    try {
      for (const topic of TOPICS) for (const p of spread) await withTimeout(producer.send({ topic, partition: p, value: `p${p}` }), 20_000, `produce to ${topic}/${p}`);
    } finally {
      await producer.close();
    }
    for (const topic of TOPICS) await readSpread(h, admin, topic, spread);
    for (const { proc } of h.history) assert.doesNotMatch(proc.log(), /EMFILE|too many open files/i);
  });
});

async function readSpread(h: Harness, admin: Admin, topic: string, spread: number[]): Promise<void> {
  const leaders = new Map((await partitionsOf(admin, topic)).map((p) => [p.partition, p.leader]));
  for (const p of spread) {
    const b = h.cluster.brokers.get(leaders.get(p)!)!;
    const c = await Connection.connect(b.host, b.port);
    try {
      const r = await c.send<FetchResponse>(ApiKey.FETCH, { maxWaitMs: 0, minBytes: 0, maxBytes: 1 << 20, topics: [{ topic, partitions: [{ partition: p, fetchOffset: 0, partitionMaxBytes: 1 << 20 }] }] });
      assert.equal(r.control.topics[0]!.partitions[0]!.errorCode, 0);
      const values: string[] = [];
      for (let pos = 0; pos < r.data.length; pos += batchSizeAt(r.data, pos)) for (const rec of decodeRecords(r.data, pos)) values.push(Buffer.from(rec.value!).toString());
      assert.deepEqual(values, [`p${p}`], `${topic}/${p}`);
    } finally {
      c.close();
    }
  }
}
