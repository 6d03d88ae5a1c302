/**
 * Tag filtering across a change of leader, with real processes (etcd + 3 brokers, RF 3): the
 * followers build their own tag indexes from the replicated batches, so after the leader of a
 * partition is SIGKILLed, a filtered consumer reading from the new leader gets exactly the
 * matching messages, the same as before, and new messages too.
 */
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { Consumer } from '../../client/consumer.ts';
import { Producer } from '../../client/producer.ts';
import { TagExpression } from '../../protocol/tag-expression.ts';
import { createTopic, partitionOf, waitFor, withCluster } from './harness.ts';

const TOPIC = 'tagged';
const TAG_SETS = [['a'], ['b'], [], ['a', 'c'], ['c']];
const EXPR = 'a || !b && !c';

function expected(n: number): string[] {
  const e = TagExpression.parse(EXPR);
  return Array.from({ length: n }, (_, i) => i).filter((i) => e.matches(new Set(TAG_SETS[i % TAG_SETS.length]))).map((i) => `v${i}`).sort();
}

test('a new leader filters by tags like the old one', { timeout: 120_000 }, async (t) => {
  await withCluster(t, { brokers: 3 }, async (h) => {
    const admin = h.admin();
    const [p0] = await createTopic(admin, TOPIC, 1, 3, { 'min.insync.replicas': 2, 'segment.bytes': 4096 });
    const send = async (from: number, n: number) => {
      const producer = new Producer({ bootstrap: h.allBootstrap, acks: 'all', retryBackoffMs: 50, requestTimeoutMs: 10_000 });
      try {
        await Promise.all(Array.from({ length: n }, (_, k) => producer.send({ topic: TOPIC, partition: 0, value: `v${from + k}`, tags: TAG_SETS[(from + k) % TAG_SETS.length]! })));
      } finally {
        await producer.close();
      }
    };
    const drain = async (end: number): Promise<string[]> => {
      const c = new Consumer({ bootstrap: h.allBootstrap, maxWaitMs: 100, retryBackoffMs: 50, tagExpression: EXPR });
      try {
        await c.assign([{ topic: TOPIC, partition: 0, offset: 0 }]);
        const got: string[] = [];
        await waitFor('the filtered consumer to reach the log end', async () => {
          for (const m of await c.poll(100)) got.push(m.value!.toString());
          return c.position(TOPIC, 0) >= end;
        }, 30_000, 1);
        return got.sort();
      } finally {
        await c.close();
      }
    };
    await send(0, 400);
    assert.deepEqual(await drain(400), expected(400));
    const old = p0!.leader;
    await h.kill(old);
    const moved = await waitFor('a new leader', async () => {
      const p = await partitionOf(admin, TOPIC, 0);
      return p.leader >= 0 && p.leader !== old ? p : null;
    }, 30_000);
    t.diagnostic(`leader ${old} killed; new leader ${moved.leader}`);
    assert.deepEqual(await drain(400), expected(400), 'the new leader filters the replicated data');
    await send(400, 100);
    assert.deepEqual(await drain(500), expected(500), 'and what it appended itself');
  });
});
