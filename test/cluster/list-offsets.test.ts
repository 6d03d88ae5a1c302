/**
 * ListOffsets in a cluster: 'latest' is the end of what consumers may read (the high
 * watermark, as Kafka answers READ_UNCOMMITTED consumers), and only the leader answers: a
 * follower says NOT_LEADER instead of describing its own copy.
 *
 * The high watermark is held back by freezing both followers (SIGSTOP) while acks=1 records
 * are appended on the leader.
 */
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { Producer } from '../../client/producer.ts';
import { ApiKey } from '../../protocol/api-keys.ts';
import type { FetchResponse } from '../../protocol/apis/fetch.ts';
import type { ListOffsetsResponse } from '../../protocol/apis/list-offsets.ts';
import { Connection } from '../../protocol/connection.ts';
import { ErrorCode } from '../../protocol/errors.ts';
import { createTopic, sleep, withCluster, withTimeout } from './harness.ts';

const TOPIC = 'list-offsets';

test('ListOffsets latest is the high watermark, and followers refuse it', { timeout: 60_000 }, async (t) => {
  await withCluster(t, { brokers: 3 }, async (h) => {
    const admin = h.admin();
    const [p0] = await createTopic(admin, TOPIC, 1, 3, { 'min.insync.replicas': 2 });
    const leader = h.cluster.brokers.get(p0!.leader)!;
    const followers = p0!.replicas.filter((b) => b !== p0!.leader).map((id) => ({ id, b: h.cluster.brokers.get(id)! }));
    const replicated = new Producer({ bootstrap: leader.bootstrap, acks: 'all', retries: 0 });
    const producer = new Producer({ bootstrap: leader.bootstrap, acks: 1, retries: 0 });
    const conns: Connection[] = [];
    const listLatest = async (host: string, port: number) => {
      const c = await Connection.connect(host, port, { requestTimeoutMs: 5000 });
      conns.push(c);
      const res = await c.send<ListOffsetsResponse>(ApiKey.LIST_OFFSETS, { topics: [{ topic: TOPIC, partitions: [{ partition: 0, timestamp: -1 }] }] });
      return res.control.topics[0]!.partitions[0]!;
    };
    try {
      for (let i = 0; i < 5; i++) await replicated.send({ topic: TOPIC, value: `replicated-${i}` });
      for (const f of followers) f.b.proc.kill('SIGSTOP');
      for (let i = 0; i < 5; i++) await producer.send({ topic: TOPIC, value: `leader-only-${i}` });
      const c = await Connection.connect(leader.host, leader.port, { requestTimeoutMs: 5000 });
      conns.push(c);
      const fetched = await c.send<FetchResponse>(ApiKey.FETCH, { maxWaitMs: 0, minBytes: 0, maxBytes: 1 << 20, topics: [{ topic: TOPIC, partitions: [{ partition: 0, fetchOffset: 0, partitionMaxBytes: 1 << 20 }] }] });
      const hw = fetched.control.topics[0]!.partitions[0]!.highWatermark;
      const latest = await listLatest(leader.host, leader.port);
      for (const f of followers) f.b.proc.kill('SIGCONT');
      t.diagnostic(`leader: high watermark ${hw}, ListOffsets latest ${latest.offset}`);
      assert.ok(hw >= 5 && hw < 10, `the high watermark (${hw}) covers the acks=all records and was held back`);
      assert.equal(latest.offset, hw, 'ListOffsets latest = high watermark');

      await sleep(500);
      for (const f of followers) {
        const r = await listLatest(f.b.host, f.b.port);
        t.diagnostic(`follower ${f.id}: ListOffsets answered ${JSON.stringify(r)}`);
        assert.equal(r.errorCode, ErrorCode.NOT_LEADER, `follower ${f.id} refuses ListOffsets`);
      }
    } finally {
      for (const f of followers) f.b.proc.kill('SIGCONT');
      for (const c of conns) c.close();
      await withTimeout(Promise.all([producer.close(), replicated.close()]), 10_000, 'closing the producers').catch(() => {});
    }
  });
});
