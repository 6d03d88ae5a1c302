/**
 * Producer state is replicated with the data (SPEC §7.7): real etcd, 3 brokers, RF 3, min ISR
 * 2. An idempotent producer's batches are acknowledged with acks=all by the leader, the
 * leader is SIGKILLed, and the same bytes resent to the new leader are answered as duplicates
 * with their original offsets (the follower built the same state from what it fetched);
 * the next sequence is appended right after them.
 */
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { ApiKey } from '../../protocol/api-keys.ts';
import type { ProduceResponse } from '../../protocol/apis/index.ts';
import { ErrorCode } from '../../protocol/errors.ts';
import { buildBatch } from '../../protocol/record-batch.ts';
import { Connection } from '../../client/connection.ts';
import { createTopic, partitionOf, waitFor, withCluster } from './harness.ts';

const enc = new TextEncoder();
const PRODUCER_ID = 777;

async function produce(c: Connection, batch: Uint8Array) {
  const r = await c.send<ProduceResponse>(ApiKey.PRODUCE, { acks: -1, timeoutMs: 10_000, topics: [{ topic: 'idem', partitions: [{ partition: 0, recordsBytes: batch.length }] }] }, [batch]);
  return r.control.topics[0]!.partitions[0]!;
}

test('after a leader kill, the new leader answers resent idempotent batches as duplicates with their original offsets', { timeout: 90_000 }, async (t) => {
  await withCluster(t, { brokers: 3 }, async (h) => {
    const admin = h.admin();
    const [initial] = await createTopic(admin, 'idem', 1, 3, { 'min.insync.replicas': 2 });
    const victim = initial!.leader;
    const leaderProc = h.cluster.brokers.get(victim)!;
    let c = await Connection.connect(leaderProc.host, leaderProc.port);
    const sent: Array<{ bytes: Uint8Array; offset: number }> = [];
    let seq = 0;
    for (let i = 0; i < 30; i++) {
      const bytes = buildBatch([{ value: enc.encode(`m${i}-a`) }, { value: enc.encode(`m${i}-b`) }], Date.now(), { producerId: PRODUCER_ID, producerEpoch: 0, baseSequence: seq });
      seq += 2;
      const p = await produce(c, bytes);
      assert.equal(p.errorCode, 0, p.errorMessage ?? '');
      sent.push({ bytes, offset: p.baseOffset });
    }
    c.close();
    await h.kill(victim);
    const moved = await waitFor('a new leader', async () => {
      const p = await partitionOf(admin, 'idem', 0);
      return p.leader >= 0 && p.leader !== victim ? p : null;
    });
    t.diagnostic(`leader ${victim} killed; new leader ${moved.leader}`);
    const next = h.cluster.brokers.get(moved.leader)!;
    c = await Connection.connect(next.host, next.port);
    // The new leader may need a moment to take over; retry only leadership errors.
    const last = sent[sent.length - 1]!;
    const dup = await waitFor('the new leader serving produce', async () => {
      const p = await produce(c, last.bytes);
      return p.errorCode === ErrorCode.NOT_LEADER ? null : p;
    });
    assert.deepEqual([dup.errorCode, dup.baseOffset], [0, last.offset], dup.errorMessage ?? '');
    for (const s of sent.slice(-5, -1)) {
      const p = await produce(c, s.bytes);
      assert.deepEqual([p.errorCode, p.baseOffset], [0, s.offset], p.errorMessage ?? '');
    }
    const fresh = await produce(c, buildBatch([{ value: enc.encode('after') }], Date.now(), { producerId: PRODUCER_ID, producerEpoch: 0, baseSequence: seq }));
    assert.deepEqual([fresh.errorCode, fresh.baseOffset], [0, last.offset + 2], fresh.errorMessage ?? '');
    c.close();
  });
});
