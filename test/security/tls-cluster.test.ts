/**
 * A 3-broker cluster over TLS with a real etcd (SPEC §2.5): every broker's port is TLS-only
 * and requires client certificates, so replica fetchers and the transaction marker sender
 * must dial their peers over TLS with the broker's own certificate. acks=all with
 * min.insync.replicas=3 completes only once both followers fetched the records, and a
 * committed transaction over three partitions led by different brokers needs its markers
 * written by remote leaders.
 *
 * This process's clients use TLS through setConnectionDefaults, the same hook the CLI uses.
 */
import { strict as assert } from 'node:assert';
import { after, test } from 'node:test';
import { Admin } from '../../client/admin.ts';
import { Producer } from '../../client/producer.ts';
import { Connection, setConnectionDefaults } from '../../protocol/connection.ts';
import { ApiKey } from '../../protocol/api-keys.ts';
import { TestCluster } from '../helpers/cluster.ts';
import { makeTestCa } from '../helpers/test-ca.ts';
import { createTopic, readAll } from '../cluster/harness.ts';

const ca = makeTestCa();
const brokerCert = ca.issue('broker');
const clientCert = ca.issue('client');
after(() => ca.cleanup());

test('a TLS-only cluster with client certificates replicates and completes transactions', { timeout: 120_000 }, async (t) => {
  const cluster = await TestCluster.start({
    brokers: 3,
    extraArgs: ['--tls-cert', brokerCert.certFile, '--tls-key', brokerCert.keyFile, '--tls-ca', ca.caFile, '--tls-client-auth', 'required'],
  });
  setConnectionDefaults({ tls: { ca: ca.ca, cert: clientCert.cert, key: clientCert.key } });
  const admin = new Admin({ bootstrap: cluster.bootstrap, requestTimeoutMs: 10_000 });
  const producer = new Producer({ bootstrap: cluster.bootstrap, acks: 'all', requestTimeoutMs: 10_000 });
  const txn = new Producer({ bootstrap: cluster.bootstrap, transactionalId: 'tls-txn', requestTimeoutMs: 10_000 });
  try {
    const parts = await createTopic(admin, 'replicated', 3, 3, { 'min.insync.replicas': 3 });
    assert.equal(new Set(parts.map((p) => p.leader)).size, 3, `leaders spread over the brokers: ${JSON.stringify(parts.map((p) => p.leader))}`);
    const started = Date.now();
    for (let i = 0; i < 30; i++) await producer.send({ topic: 'replicated', partition: i % 3, value: `r${i}` });
    t.diagnostic(`30 acks=all sends with min.insync.replicas=3 over TLS: ${Date.now() - started} ms`);

    await txn.begin();
    for (let p = 0; p < 3; p++) await txn.send({ topic: 'replicated', partition: p, value: `txn-${p}` });
    await txn.commit();

    const all = await readAll(cluster.bootstrap, 'replicated', 3);
    for (let p = 0; p < 3; p++) {
      const values = all.get(p)!.map((m) => m.value?.toString());
      assert.deepEqual(values.filter((v) => v?.startsWith('r')), Array.from({ length: 10 }, (_, i) => `r${i * 3 + p}`));
      assert.ok(values.includes(`txn-${p}`), `partition ${p}: ${values.join(',')}`);
    }

    // Each broker holds the data: ask every one of them directly (its own TLS listener).
    for (const b of cluster.brokers.values()) {
      const conn = await Connection.connect(b.host, b.port);
      await conn.send(ApiKey.API_VERSIONS, {});
      conn.close();
    }
    assert.doesNotMatch(cluster.logs(), /TLS handshake failed/, 'no broker refused a peer');
  } catch (e) {
    t.diagnostic(cluster.logs().slice(-8000));
    throw e;
  } finally {
    await txn.close().catch(() => {});
    await producer.close().catch(() => {});
    await admin.close().catch(() => {});
    setConnectionDefaults({});
    await cluster.stop();
  }
});
