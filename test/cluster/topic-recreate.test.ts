/**
 * Delete and immediate re-create of a topic in a cluster (etcd + 3 brokers; every broker
 * deletes its replicas when it learns of the deletion from etcd, and creates the new ones when
 * it learns of the creation, possibly in one watch batch).
 *
 * Regression: a broker that was still removing the old replica's files refused to open the
 * new one ("partition ... is already open"), so the partition had no replica there until a
 * restart; and the old removal, finishing late, deleted the new replica's files. The new
 * topic must never show old records, must get a full ISR, and must keep every acknowledged
 * record across a restart of every broker.
 */
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { Producer } from '../../client/producer.ts';
import { ApiKey } from '../../protocol/api-keys.ts';
import type { ProduceResponse } from '../../protocol/apis/index.ts';
import { Connection } from '../../protocol/connection.ts';
import { buildBatch } from '../../protocol/record-batch.ts';
import type { Harness } from './harness.ts';
import { createTopic, readAll, sleep, withCluster, withTimeout } from './harness.ts';

const TOPIC = 'churn';
const PARTITIONS = 2;
const ROUNDS = 10;
const RECORDS_PER_PARTITION = 30;

/**
 * Keeps writing (acks=1, to each partition's leader, one request at a time) until told to stop
 * or refused, so that every replica has appends and fsyncs in flight when the deletion reaches
 * it. Resolves once the last request was answered: nothing of it can land in a later topic.
 */
function writeUntilStopped(h: Harness, leaders: number[], round: number): { stop(): Promise<void> } {
  let stopping = false;
  const loops = leaders.map(async (leader, partition) => {
    const b = h.cluster.brokers.get(leader)!;
    const conn = await Connection.connect(b.host, b.port, { requestTimeoutMs: 10_000 });
    try {
      for (let i = 0; !stopping && i < 10_000; i++) {
        const batch = buildBatch([{ value: Buffer.from(`r${round}-late-${i}-${'y'.repeat(500)}`) }]);
        const r = await conn.send<ProduceResponse>(ApiKey.PRODUCE, { acks: 1, timeoutMs: 5000, topics: [{ topic: TOPIC, partitions: [{ partition, recordsBytes: batch.length }] }] }, [batch]);
        if (r.control.topics[0]!.partitions[0]!.errorCode !== 0) break;
      }
    } catch {
      // The connection may be cut while the topic goes away; the next round does not need it.
    } finally {
      conn.close();
    }
  });
  return {
    async stop() {
      stopping = true;
      await Promise.all(loops);
    },
  };
}

test('cluster: delete + immediate re-create never shows old data, gets a full ISR, survives restarts', { timeout: 240_000 }, async (t) => {
  await withCluster(t, { brokers: 3 }, async (h) => {
    const admin = h.admin();
    let acked: string[][] = [];
    for (let round = 0; round < ROUNDS; round++) {
      // flush.messages=1: fsyncs in flight on every replica when the deletion arrives.
      // createTopic throws on any error (TOPIC_ALREADY_EXISTS included) and waits for a full ISR on every partition.
      const parts = await createTopic(admin, TOPIC, PARTITIONS, 3, { 'flush.messages': 1 });
      for (let p = 0; p < PARTITIONS; p++) {
        assert.equal(await admin.listOffsets(TOPIC, p, 'latest'), 0, `round ${round}: partition ${p} of the new topic is not empty`);
      }
      const producer = new Producer({ bootstrap: h.allBootstrap, acks: 'all', retries: 40, retryBackoffMs: 50, retryBackoffMaxMs: 250, requestTimeoutMs: 10_000 });
      acked = Array.from({ length: PARTITIONS }, () => []);
      try {
        for (let p = 0; p < PARTITIONS; p++) {
          for (let i = 0; i < RECORDS_PER_PARTITION; i++) {
            const value = `r${round}-p${p}-${i}-${'x'.repeat(300)}`;
            await withTimeout(producer.send({ topic: TOPIC, partition: p, value }), 20_000, `round ${round}: produce to ${p}`);
            acked[p]!.push(value);
          }
        }
      } finally {
        await producer.close();
      }
      if (round < ROUNDS - 1) {
        // Deleted while every replica appends and fsyncs; the writers are done before the next create.
        const writer = writeUntilStopped(h, parts.map((x) => x.leader), round);
        await sleep(100);
        await admin.deleteTopics([TOPIC]);
        await withTimeout(writer.stop(), 20_000, `round ${round}: stopping the writers`);
      }
    }
    const got = await readAll(h.allBootstrap, TOPIC, PARTITIONS);
    for (let p = 0; p < PARTITIONS; p++) {
      const values = got.get(p)!.map((m) => Buffer.from(m.value!).toString());
      assert.deepEqual(values.filter((v) => !v.startsWith(`r${ROUNDS - 1}-`)).slice(0, 3), [], `partition ${p} shows records of a deleted topic`);
      assert.deepEqual(values, acked[p], `partition ${p}`);
    }
    for (const id of h.liveIds()) await h.kill(id);
    for (const id of [1, 2, 3]) await h.restart(id);
    const afterRestart = await readAll(h.allBootstrap, TOPIC, PARTITIONS, 60_000);
    for (let p = 0; p < PARTITIONS; p++) {
      assert.deepEqual(afterRestart.get(p)!.map((m) => Buffer.from(m.value!).toString()), acked[p], `partition ${p} after restarting every broker`);
    }
  });
});
