/**
 * Everything on in a 3-broker cluster on a real etcd (SPEC §2.5-2.7): TLS with client
 * certificates required, SASL required, ACLs enforced. Users live in etcd
 * (`sluice user create --metadata etcd://...`), every broker requires authentication, and
 * brokers authenticate to each other as the inter-broker user. acks=all with
 * min.insync.replicas=3 completes only once both followers fetched, i.e. authenticated;
 * a committed transaction over partitions led by different brokers needs the coordinator's
 * WriteTxnMarkers to remote leaders (TLS, SASL, and `alter` on the cluster, which the
 * inter-broker user has as a super user); a user deleted in etcd is refused by every broker
 * from its next connection on.
 */
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { Admin } from '../../client/admin.ts';
import { Producer } from '../../client/producer.ts';
import { ApiKey } from '../../protocol/api-keys.ts';
import { Connection, setConnectionDefaults } from '../../protocol/connection.ts';
import { ErrorCode, SluiceError } from '../../protocol/errors.ts';
import { TestCluster } from '../helpers/cluster.ts';
import { sluice } from '../helpers/cli.ts';
import { createTopic, readAll } from '../cluster/harness.ts';
import { makeTestCa } from '../helpers/test-ca.ts';

test('a cluster with TLS, SASL and ACLs: users in etcd, brokers authenticate to each other, transactions complete', { timeout: 120_000 }, async (t) => {
  const ca = makeTestCa();
  t.after(() => ca.cleanup());
  const cert = ca.issue('broker');
  const tls = { ca: ca.ca, cert: cert.cert, key: cert.key };
  const cluster = await TestCluster.start({
    brokers: 3,
    extraArgs: ['--tls-cert', cert.certFile, '--tls-key', cert.keyFile, '--tls-ca', ca.caFile, '--tls-client-auth', 'required', '--authentication', 'sasl', '--super-users', 'app', '--inter-broker-sasl-username', 'broker', '--inter-broker-sasl-password', 'inter broker secret'],
  });
  const etcd = `etcd://${cluster.etcd.endpoints}`;
  try {
    for (const [name, password] of [['broker', 'inter broker secret'], ['app', 'app secret']]) {
      const r = await sluice(['user', 'create', name!, '--metadata', etcd, '--password-stdin'], `${password}\n`);
      assert.equal(r.code, 0, r.stderr);
    }
    const listed = await sluice(['user', 'list', '--metadata', etcd]);
    assert.deepEqual(listed.stdout.trim().split('\n'), ['app', 'broker']);

    setConnectionDefaults({ tls, sasl: { mechanism: 'SCRAM-SHA-256', username: 'app', password: 'app secret' } });
    const admin = new Admin({ bootstrap: cluster.bootstrap, requestTimeoutMs: 10_000 });
    const producer = new Producer({ bootstrap: cluster.bootstrap, acks: 'all', requestTimeoutMs: 10_000, deliveryTimeoutMs: 60_000 });
    const txn = new Producer({ bootstrap: cluster.bootstrap, transactionalId: 'secure-txn', requestTimeoutMs: 10_000 });
    try {
      await createTopic(admin, 'guarded', 3, 3, { 'min.insync.replicas': 3 });
      for (let i = 0; i < 15; i++) await producer.send({ topic: 'guarded', partition: i % 3, value: `g${i}` });
      await txn.begin();
      for (let p = 0; p < 3; p++) await txn.send({ topic: 'guarded', partition: p, value: `txn-${p}` });
      await txn.commit();
      const all = await readAll(cluster.bootstrap, 'guarded', 3);
      assert.equal([...all.values()].reduce((n, ms) => n + ms.length, 0), 18);
      for (let p = 0; p < 3; p++) assert.ok(all.get(p)!.some((m) => m.value?.toString() === `txn-${p}`), `txn-${p} committed`);
    } finally {
      await txn.close().catch(() => {});
      await producer.close().catch(() => {});
      await admin.close().catch(() => {});
    }

    const del = await sluice(['user', 'delete', 'app', '--metadata', etcd]);
    assert.equal(del.code, 0, del.stderr);
    for (const b of cluster.brokers.values()) {
      const e = await Connection.connect(b.host, b.port).then(() => assert.fail('authenticated a deleted user'), (x: unknown) => x);
      assert.ok(e instanceof SluiceError && e.code === ErrorCode.SASL_AUTHENTICATION_FAILED, String(e));
    }
    // Without credentials: only ApiVersions.
    setConnectionDefaults({ tls });
    const anon = await Connection.connect(cluster.brokers.get(1)!.host, cluster.brokers.get(1)!.port);
    await anon.send(ApiKey.API_VERSIONS, {});
    const refused = await anon.send(ApiKey.METADATA, { topics: null }).then(() => null, (x: unknown) => x);
    assert.ok(refused instanceof SluiceError && refused.code === ErrorCode.AUTHENTICATION_REQUIRED, String(refused));
  } catch (e) {
    t.diagnostic(cluster.logs().slice(-6000));
    throw e;
  } finally {
    setConnectionDefaults({});
    await cluster.stop();
  }
});
