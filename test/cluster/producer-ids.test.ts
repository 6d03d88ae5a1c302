/**
 * Producer ids in a 3-broker etcd cluster (SPEC §6.19): every broker reserves blocks with a
 * compare-and-set on one etcd key, so ids handed out by different brokers at the same time,
 * across several blocks each, and after a broker is killed and restarted, never collide.
 */
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { Connection } from '../../protocol/connection.ts';
import { newProducerIds } from '../helpers/txn-requests.ts';
import { withCluster } from './harness.ts';

test('producer ids are unique across 3 brokers reserving blocks concurrently, and after a restart', { timeout: 120_000 }, async (t) => {
  await withCluster(t, { brokers: 3 }, async (h) => {
    const seen = new Map<number, number>();
    const record = (brokerId: number, ids: number[]) => {
      for (const id of ids) {
        assert.ok(!seen.has(id), `producer id ${id} from broker ${brokerId} was handed out by broker ${seen.get(id)} too`);
        seen.set(id, brokerId);
      }
    };
    const round = async (perBroker: number) => {
      await Promise.all(h.liveIds().map(async (id) => {
        const b = h.cluster.brokers.get(id)!;
        const conn = await Connection.connect(b.host, b.port);
        try {
          record(id, await newProducerIds(conn, perBroker, 100));
        } finally {
          conn.close();
        }
      }));
    };
    const started = performance.now();
    await round(2500); // 3 blocks each, reserved while the others reserve theirs
    t.diagnostic(`7500 InitProducerId (2500 per broker, 100 in flight each) in ${(performance.now() - started).toFixed(0)} ms`);
    await h.kill(2);
    await h.restart(2);
    await round(500);
    assert.equal(seen.size, 3 * 2500 + 3 * 500);
    t.diagnostic(`${seen.size} producer ids, highest ${Math.max(...seen.keys())}`);
  });
});
