// Scaling a real cluster: a fourth broker joins and `sluice cluster rebalance` moves replicas
// onto it (throttled); `cluster drain` empties a broker. Data stays readable throughout, every
// partition keeps its replication factor, and the drained broker holds nothing afterwards.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { Admin } from '../../client/admin.ts';
import { Consumer } from '../../client/consumer.ts';
import { Producer } from '../../client/producer.ts';
import { repoRoot } from '../helpers/broker-process.ts';
import { TestCluster } from '../helpers/cluster.ts';

const run = promisify(execFile);

test('rebalance onto a new broker, then drain one: every message still readable, replication factor kept', { timeout: 150_000 }, async (t) => {
  const c = await TestCluster.start({ brokers: 3 });
  t.after(() => c.stop());
  const sluice = async (...args: string[]) => (await run(process.execPath, [join(repoRoot, 'bin/sluice.mjs'), ...args, '--bootstrap', c.bootstrap], { cwd: repoRoot })).stdout;
  const admin = new Admin({ bootstrap: c.bootstrap });
  const producer = new Producer({ bootstrap: c.bootstrap, acks: -1 });
  try {
    await admin.createTopics([{ topic: 'mv', partitions: 6, replicationFactor: 2 }]);
    await Promise.all(Array.from({ length: 3000 }, (_, i) => producer.send({ topic: 'mv', key: `k${i}`, value: `before-${i}` })));
    await c.startBroker(4);
    const out = await sluice('cluster', 'rebalance', '--throttle-bytes-per-sec', '1000000', '--wait-ms', '60000');
    assert.match(out, /All moves finished/);
    let md = await admin.metadata(['mv']);
    assert.ok(md.topics[0]!.partitions.some((p) => p.replicas.includes(4)), 'broker 4 holds replicas');
    await sluice('cluster', 'drain', '--broker', '1', '--wait-ms', '60000');
    md = await admin.metadata(['mv', '__consumer_offsets']);
    for (const topic of md.topics) for (const p of topic.partitions) {
      assert.ok(!p.replicas.includes(1), `${topic.topic}/${p.partition} left broker 1`);
      assert.equal(p.replicas.length, topic.topic === 'mv' ? 2 : 3);
      assert.deepEqual([...p.isr].sort(), [...p.replicas].sort(), 'all replicas in sync');
    }
    await Promise.all(Array.from({ length: 500 }, (_, i) => producer.send({ topic: 'mv', key: `k${i}`, value: `after-${i}` })));
    const consumer = new Consumer({ bootstrap: c.bootstrap, maxWaitMs: 200 });
    await consumer.assign(Array.from({ length: 6 }, (_, partition) => ({ topic: 'mv', partition, offset: 'earliest' as const })));
    const seen = new Set<string>();
    const deadline = Date.now() + 30_000;
    while (seen.size < 3500 && Date.now() < deadline) for (const m of await consumer.poll()) seen.add(m.value!.toString());
    await consumer.close();
    assert.equal(seen.size, 3500);
  } finally {
    await producer.close();
    await admin.close();
  }
});
