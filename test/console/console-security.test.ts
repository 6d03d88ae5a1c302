/**
 * The console of a broker with TLS (client certificates required), SASL and ACLs: it dials
 * its broker over TLS with the broker's certificate and authenticates as the console user
 * (--console-sasl-username), so the broker's ACLs bound what it shows. Without a console user
 * such a broker refuses to start with the console on.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { Admin } from '../../client/admin.ts';
import { Producer } from '../../client/producer.ts';
import { repoRoot, startBroker, tempDir } from '../helpers/broker-process.ts';
import { sluice } from '../helpers/cli.ts';
import { freePort } from '../helpers/metrics-scrape.ts';
import { makeTestCa } from '../helpers/test-ca.ts';

const ADMIN = { mechanism: 'SCRAM-SHA-256', username: 'admin', password: 'admin secret' } as const;
const CONSOLE_PASSWORD = 'console secret';

test('with TLS, SASL and ACLs the console reads as its own user: it shows what that user may describe and read, nothing else', async (t) => {
  const ca = makeTestCa();
  const cert = ca.issue('broker');
  const dataDir = tempDir();
  for (const [name, password] of [['admin', ADMIN.password], ['console', CONSOLE_PASSWORD]] as const) {
    const r = await sluice(['user', 'create', name, '--data-dir', dataDir, '--password-stdin', '--iterations', '4096'], `${password}\n`);
    assert.equal(r.code, 0, r.stderr);
  }
  const acl = await sluice(['acl', 'add', '--principal', 'User:console', '--topic', 'visible', '--operation', 'describe', '--operation', 'read', '--data-dir', dataDir]);
  assert.equal(acl.code, 0, acl.stderr);
  const tlsArgs = ['--tls-cert', cert.certFile, '--tls-key', cert.keyFile, '--tls-ca', ca.caFile, '--tls-client-auth', 'required', '--authentication', 'sasl', '--super-users', 'admin'];

  // No console user: refused before anything starts.
  const refused = spawnSync(process.execPath, [join(repoRoot, 'bin/sluice.mjs'), 'broker', '--data-dir', tempDir(), ...tlsArgs, '--console-port', '1'], { cwd: repoRoot, encoding: 'utf8', timeout: 30_000 });
  assert.equal(refused.status, 2, refused.stderr);
  assert.match(refused.stderr, /needs --console-sasl-username and --console-sasl-password/);

  const port = await freePort();
  const broker = await startBroker({ dataDir, args: [...tlsArgs, '--console-port', String(port), '--console-sasl-username', 'console'], env: { SLUICE_CONSOLE_SASL_PASSWORD: CONSOLE_PASSWORD } });
  const tls = { ca: ca.ca, cert: cert.cert, key: cert.key };
  const admin = new Admin({ bootstrap: broker.bootstrap, tls, sasl: ADMIN });
  t.after(async () => {
    await admin.close();
    await broker.stop();
    broker.cleanup();
    ca.cleanup();
  });
  await admin.createTopics([{ topic: 'visible', partitions: 1 }, { topic: 'hidden', partitions: 1 }]);
  const producer = new Producer({ bootstrap: broker.bootstrap, tls, sasl: ADMIN, lingerMs: 0 });
  try {
    await producer.send({ topic: 'visible', value: 'for the console' });
    await producer.send({ topic: 'hidden', value: 'not for the console' });
  } finally {
    await producer.close();
  }
  const get = async (path: string) => {
    const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(15_000) });
    return { status: res.status, text: await res.text() };
  };
  const topics = await get('/topics');
  assert.equal(topics.status, 200, topics.text.replace(/^[^]*<main>/, ""));
  assert.match(topics.text, /name=visible/);
  assert.doesNotMatch(topics.text, /name=hidden/);
  const visible = await get('/messages?topic=visible');
  assert.equal(visible.status, 200, visible.text);
  assert.match(visible.text, /for the console/);
  const hidden = await get('/messages?topic=hidden');
  assert.notEqual(hidden.status, 200);
  assert.doesNotMatch(hidden.text, /not for the console/);
  // Listing every group needs describe on the cluster, which the console user lacks: a 403 naming it.
  const groups = await get('/groups');
  assert.equal(groups.status, 403);
  assert.match(groups.text, /User:console may not describe the cluster/);
});
