/**
 * Item 13 in a cluster: a Fetch long-polling on a partition led by a broker that is not the
 * controller is answered at once when the topic is deleted (SPEC 6.4), not when its maxWaitMs
 * runs out. That broker learns of the deletion from etcd, not from the DeleteTopics request.
 */
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { ApiKey } from '../../protocol/api-keys.ts';
import type { MetadataResponse } from '../../protocol/apis/metadata.ts';
import { ErrorCode } from '../../protocol/errors.ts';
import { RawSocket, requestFrame } from '../helpers/raw-socket.ts';
import { createTopic, sleep, withCluster } from './harness.ts';

const TOPIC = 'doomed';
const MAX_WAIT_MS = 20_000;
const AT_ONCE_MS = 5_000;

test('fetches parked on every leader of a deleted topic are answered at once, on non-controllers too', { timeout: 120_000 }, async (t) => {
  await withCluster(t, { brokers: 2 }, async (h) => {
    const admin = h.admin();
    const partitions = await createTopic(admin, TOPIC, 4, 1);
    const md = (await admin.metadata([TOPIC])) as MetadataResponse;
    const leaders = new Set(partitions.map((p) => p.leader));
    assert.ok([...leaders].some((id) => id !== md.controllerId), `some partition is led by a non-controller (leaders ${[...leaders]}, controller ${md.controllerId})`);
    const sockets: Array<{ leader: number; partition: number; s: RawSocket }> = [];
    try {
      for (const p of partitions) {
        const b = h.cluster.brokers.get(p.leader)!;
        const s = await RawSocket.connect(b.port);
        s.write(requestFrame(ApiKey.FETCH, 0, 1, {
          maxWaitMs: MAX_WAIT_MS,
          minBytes: 1,
          maxBytes: 1 << 20,
          topics: [{ topic: TOPIC, partitions: [{ partition: p.partition, fetchOffset: 0, partitionMaxBytes: 1 << 20 }] }],
        }));
        sockets.push({ leader: p.leader, partition: p.partition, s });
      }
      await sleep(500);
      for (const { s } of sockets) assert.equal(s.responses.length, 0, 'every fetch is parked before the delete');
      await admin.deleteTopics([TOPIC]);
      const t0 = Date.now();
      for (const { leader, partition, s } of sockets) {
        await s.waitFor(1, MAX_WAIT_MS + 10_000);
        const elapsed = Date.now() - t0;
        const p = (s.responses[0]!.control as any).topics[0].partitions[0];
        t.diagnostic(`partition ${partition} on broker ${leader}${leader === md.controllerId ? ' (controller)' : ''}: answered ${elapsed} ms after the delete, errorCode ${p.errorCode}`);
        assert.equal(p.errorCode, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
        assert.ok(elapsed < AT_ONCE_MS, `partition ${partition} on broker ${leader} answered ${elapsed} ms after the delete`);
      }
    } finally {
      for (const { s } of sockets) s.close();
    }
  });
});
