/**
 * min.insync.replicas: with two of three replicas dead (kill -9) the ISR shrinks to the one
 * survivor, acks=all is refused with NOT_ENOUGH_REPLICAS before anything is appended, and
 * acks=1 still works. Once a second replica is back in sync, acks=all works again.
 */
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { ApiKey } from '../../protocol/api-keys.ts';
import type { ProduceRequest, ProduceResponse } from '../../protocol/apis/produce.ts';
import { Connection } from '../../protocol/connection.ts';
import { ErrorCode, SluiceError } from '../../protocol/errors.ts';
import { buildBatch } from '../../protocol/record-batch.ts';
import { Producer } from '../../client/producer.ts';
import { createTopic, partitionOf, readAll, waitFor, withCluster, withTimeout } from './harness.ts';

const TOPIC = 'min-isr';

test('with one in-sync replica left, acks=all is refused with NOT_ENOUGH_REPLICAS and acks=1 still works', { timeout: 90_000 }, async (t) => {
  await withCluster(t, { brokers: 3 }, async (h) => {
    const admin = h.admin();
    const [initial] = await createTopic(admin, TOPIC, 1, 3, { 'min.insync.replicas': 2 });
    const survivor = initial!.leader;
    const doomed = initial!.replicas.filter((b) => b !== survivor);
    const producers: Producer[] = [];
    const producer = (acks: 'all' | 1, retries: number): Producer => {
      const p = new Producer({ bootstrap: h.allBootstrap, acks, retries, retryBackoffMs: 50, retryBackoffMaxMs: 250, requestTimeoutMs: 10_000 });
      producers.push(p);
      return p;
    };
    try {
      const first = await producer('all', 0).send({ topic: TOPIC, value: 'with-full-isr' });

      const killedAt = Date.now();
      await Promise.all(doomed.map((id) => h.kill(id)));
      const alone = await waitFor('an ISR of one', async () => {
        const p = await partitionOf(admin, TOPIC, 0);
        return p.isr.length === 1 && p.leader >= 0 ? p : null;
      }, 20_000, 50);
      assert.deepEqual(alone.isr, [survivor]);
      assert.equal(alone.leader, survivor);
      t.diagnostic(`killed ${doomed.join(' and ')}; ISR [${alone.isr}] after ${Date.now() - killedAt} ms`);
      const endBefore = await admin.listOffsets(TOPIC, 0, 'latest');

      // A producer without retries gets the broker's answer as is.
      const refused = await producer('all', 0).send({ topic: TOPIC, value: 'refused' }).then(
        () => null,
        (e: unknown) => e,
      );
      assert.ok(refused instanceof SluiceError, `acks=all must be refused, got ${String(refused)}`);
      assert.equal(refused.code, ErrorCode.NOT_ENOUGH_REPLICAS, refused.message);

      // The same on the wire: the partition result carries the code, nothing was appended.
      const leader = h.cluster.brokers.get(survivor)!;
      const conn = await Connection.connect(leader.host, leader.port, { requestTimeoutMs: 10_000 });
      try {
        const batch = buildBatch([{ value: Buffer.from('raw-refused') }]);
        const req: ProduceRequest = { acks: -1, timeoutMs: 5000, topics: [{ topic: TOPIC, partitions: [{ partition: 0, recordsBytes: batch.length }] }] };
        const res = await conn.send<ProduceResponse>(ApiKey.PRODUCE, req, [batch]);
        const r = res.control.topics[0]!.partitions[0]!;
        assert.equal(r.errorCode, ErrorCode.NOT_ENOUGH_REPLICAS, r.errorMessage ?? '');
        assert.equal(r.baseOffset, -1);
        t.diagnostic(`raw Produce acks=-1: ${r.errorMessage}`);
      } finally {
        conn.close();
      }
      assert.equal(await admin.listOffsets(TOPIC, 0, 'latest'), endBefore, 'refused writes appended nothing');

      // acks=1 needs only the leader.
      const one = await producer(1, 0).send({ topic: TOPIC, value: 'acks-1' });
      assert.equal(one.offset, endBefore);

      // A second replica back in sync lifts the refusal.
      const restartedAt = Date.now();
      await h.restart(doomed[0]!);
      await waitFor('an ISR of two', async () => (await partitionOf(admin, TOPIC, 0)).isr.length === 2, 30_000, 50);
      t.diagnostic(`restarted ${doomed[0]}: ISR of two after ${Date.now() - restartedAt} ms`);
      const again = await producer('all', 0).send({ topic: TOPIC, value: 'acks-all-again' });

      const final = new Map((await readAll(h.bootstrap, TOPIC, 1)).get(0)!.map((m) => [m.offset, m.value!.toString()]));
      assert.equal(final.get(first.offset), 'with-full-isr');
      assert.equal(final.get(one.offset), 'acks-1');
      assert.equal(final.get(again.offset), 'acks-all-again');
      assert.ok(![...final.values()].some((v) => v.includes('refused')), 'no refused record was written');
    } finally {
      await withTimeout(Promise.all(producers.map((p) => p.close())), 30_000, 'closing producers').catch(() => {});
    }
  });
});
