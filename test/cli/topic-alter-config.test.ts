/**
 * AlterTopicConfigs (SPEC §6.30) beyond one broker's memory: the change survives a restart
 * (embedded metadata store), and in a cluster every broker applies it (the etcd store's topic
 * event): DescribeTopics asked of the broker that did not handle the request shows the new
 * value, and the limit is enforced by the partition's leader wherever it is.
 */
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { Connection } from '../../client/connection.ts';
import { ApiKey } from '../../protocol/api-keys.ts';
import type { DescribeTopicsResponse } from '../../protocol/apis/describe-topics.ts';
import { startBroker } from '../helpers/broker-process.ts';
import { sluice } from '../helpers/cli.ts';
import { TestCluster } from '../helpers/cluster.ts';

test('an altered config survives a broker restart', async (t) => {
  const first = await startBroker();
  let b = first;
  t.after(async () => {
    await b.stop();
    b.cleanup();
  });
  assert.equal((await sluice(['topic', 'create', 'kept', '--bootstrap', b.bootstrap])).code, 0);
  let r = await sluice(['topic', 'alter', 'kept', '--config', 'retention.ms=7200000', '--bootstrap', b.bootstrap]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(await b.stop(), 0);
  b = await startBroker({ dataDir: first.dataDir });
  r = await sluice(['topic', 'describe', 'kept', '--bootstrap', b.bootstrap]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^ {2}retention\.ms=7200000$/m);
});

test('in a cluster every broker applies an altered config', async (t) => {
  const c = await TestCluster.start({ brokers: 2 });
  t.after(() => c.stop());
  const [b1, b2] = [c.brokers.get(1)!, c.brokers.get(2)!];
  assert.equal((await sluice(['topic', 'create', 'shared', '--partitions', '2', '--replication-factor', '2', '--bootstrap', c.bootstrap])).code, 0);
  const r = await sluice(['topic', 'alter', 'shared', '--config', 'max.message.bytes=300', '--bootstrap', c.bootstrap]);
  assert.equal(r.code, 0, r.stderr);
  // Each broker, asked directly, reports the new value (within moments: the etcd watch).
  for (const b of [b1, b2]) {
    const conn = await Connection.connect(b.host, b.port, { clientId: 'alter-config-test' });
    try {
      const deadline = Date.now() + 10_000;
      let value: string | undefined;
      while (Date.now() < deadline) {
        const res = await conn.send<DescribeTopicsResponse>(ApiKey.DESCRIBE_TOPICS, { topics: ['shared'] });
        value = res.control.topics[0]!.configs['max.message.bytes'];
        if (value === '300') break;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      assert.equal(value, '300', `broker on port ${b.port}`);
    } finally {
      conn.close();
    }
  }
  // Enforced by both partitions' leaders (placement spreads them over the two brokers).
  for (const p of [0, 1]) {
    const big = await sluice(['produce', 'shared', '--partition', String(p), '--delivery-timeout-ms', '5000', '--bootstrap', c.bootstrap], `${'y'.repeat(600)}\n`);
    assert.equal(big.code, 1, `partition ${p}`);
    assert.match(big.stderr, /TOO_LARGE/);
  }
});
