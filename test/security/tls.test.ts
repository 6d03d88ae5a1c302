/**
 * TLS on a real broker process (SPEC §2.5), with a CA and certificates made by openssl at test
 * time (test/helpers/test-ca.ts): produce and consume over TLS through the client library and
 * the CLI; a plaintext client, a client trusting another CA, and (with --tls-client-auth
 * required) a client without a certificate or with one from another CA are each refused with
 * a clear error, and the broker keeps serving.
 */
import { strict as assert } from 'node:assert';
import { after, before, test } from 'node:test';
import { Admin } from '../../client/admin.ts';
import { Consumer } from '../../client/consumer.ts';
import { Producer } from '../../client/producer.ts';
import { ApiKey } from '../../protocol/api-keys.ts';
import { Connection, ConnectionError, type TlsClientOptions } from '../../protocol/connection.ts';
import { startBroker, type BrokerProcess } from '../helpers/broker-process.ts';
import { sluice } from '../helpers/cli.ts';
import { makeTestCa, type Issued, type TestCa } from '../helpers/test-ca.ts';

let ca: TestCa;
let otherCa: TestCa;
let server: Issued;
let client: Issued;
let strangerClient: Issued;
const brokers: BrokerProcess[] = [];

before(() => {
  ca = makeTestCa();
  otherCa = makeTestCa('Other CA');
  server = ca.issue('broker');
  client = ca.issue('client');
  strangerClient = otherCa.issue('stranger');
});

after(async () => {
  for (const b of brokers) {
    const code = await b.stop();
    b.cleanup();
    assert.equal(code, 0, `broker exited with ${code}:\n${b.log()}`);
  }
  ca?.cleanup();
  otherCa?.cleanup();
});

async function tlsBroker(extra: string[] = []): Promise<BrokerProcess> {
  const b = await startBroker({ args: ['--tls-cert', server.certFile, '--tls-key', server.keyFile, ...extra] });
  brokers.push(b);
  return b;
}

async function apiVersionsWith(b: BrokerProcess, tls: TlsClientOptions | undefined): Promise<void> {
  const conn = await Connection.connect(b.host, b.port, { tls, connectTimeoutMs: 5000, requestTimeoutMs: 5000 });
  try {
    await conn.send(ApiKey.API_VERSIONS, {});
  } finally {
    conn.close();
  }
}

async function failure(p: Promise<unknown>): Promise<Error> {
  return p.then(() => assert.fail('expected a failure'), (e: Error) => e);
}

test('produce and consume over TLS; plaintext and wrong-CA clients are refused cleanly', { timeout: 60_000 }, async (t) => {
  const b = await tlsBroker();
  const tls = { ca: ca.ca };
  const admin = new Admin({ bootstrap: b.bootstrap, tls });
  const producer = new Producer({ bootstrap: b.bootstrap, tls, acks: 'all' });
  const consumer = new Consumer({ bootstrap: b.bootstrap, tls, autoOffsetReset: 'earliest', maxWaitMs: 200 });
  try {
    await admin.createTopics([{ topic: 'secure', partitions: 1, replicationFactor: 1 }]);
    for (let i = 0; i < 10; i++) await producer.send({ topic: 'secure', key: `k${i}`, value: `v${i}` });
    await consumer.assign([{ topic: 'secure', partition: 0, offset: 0 }]);
    const got: string[] = [];
    const deadline = Date.now() + 20_000;
    while (got.length < 10 && Date.now() < deadline) for (const m of await consumer.poll(200)) got.push(m.value!.toString());
    assert.deepEqual(got, Array.from({ length: 10 }, (_, i) => `v${i}`));

    // Plaintext to the TLS port: the TLS handshake fails on the broker's side and it drops the connection.
    const plain = await failure(apiVersionsWith(b, undefined));
    assert.ok(plain instanceof ConnectionError, String(plain));
    assert.match(plain.message, /closed before answering .*TLS/);
    t.diagnostic(`plaintext client: ${plain.message}`);

    // A client that trusts another CA refuses the broker's certificate.
    const wrongCa = await failure(apiVersionsWith(b, { ca: otherCa.ca }));
    assert.ok(wrongCa instanceof ConnectionError, String(wrongCa));
    assert.match(wrongCa.message, /\(TLS\): .*(certificate|self.signed)/i);
    t.diagnostic(`wrong CA: ${wrongCa.message}`);

    // The name checked is the one dialled: the certificate is for 127.0.0.1 and localhost only.
    const wrongName = await failure(apiVersionsWith(b, { ca: ca.ca, servername: 'elsewhere.example' }));
    assert.match(wrongName.message, /elsewhere\.example|altnames/i);

    // The broker is still fine, and logged the failed handshakes.
    await apiVersionsWith(b, tls);
    assert.match(b.log(), /TLS handshake failed/);

    // The CLI: --tls-ca gives TLS; without it the same command fails with the hint.
    const ok = await sluice(['topic', 'list', '--bootstrap', b.bootstrap, '--tls-ca', ca.caFile]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /secure/);
    const consumed = await sluice(['consume', 'secure', '--bootstrap', b.bootstrap, '--tls-ca', ca.caFile, '--from-beginning', '--max-messages', '3']);
    assert.equal(consumed.code, 0, consumed.stderr);
    assert.deepEqual(consumed.stdout.trim().split('\n'), ['v0', 'v1', 'v2']);
    const bench = await sluice(['bench', 'produce', '--topic', 'bench-tls', '--messages', '2000', '--size', '100', '--bootstrap', b.bootstrap, '--tls-ca', ca.caFile]);
    assert.equal(bench.code, 0, bench.stderr);
    assert.match(bench.stdout + bench.stderr, /msgs\/s/);
    const refused = await sluice(['topic', 'list', '--bootstrap', b.bootstrap]);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /TLS/);
    assert.doesNotMatch(refused.stderr, /\n\s+at /, 'no stack trace');
    t.diagnostic(`CLI without --tls: ${refused.stderr.trim()}`);
  } finally {
    await producer.close();
    await consumer.close();
    await admin.close();
  }
});

test('--tls-client-auth required: only clients with a certificate from --tls-ca get in', { timeout: 60_000 }, async (t) => {
  const b = await tlsBroker(['--tls-client-auth', 'required', '--tls-ca', ca.caFile]);
  await apiVersionsWith(b, { ca: ca.ca, cert: client.cert, key: client.key });
  const none = await failure(apiVersionsWith(b, { ca: ca.ca }));
  assert.ok(none instanceof ConnectionError, String(none));
  assert.match(none.message, /requires a client certificate/);
  t.diagnostic(`no client certificate: ${none.message}`);
  const stranger = await failure(apiVersionsWith(b, { ca: ca.ca, cert: strangerClient.cert, key: strangerClient.key }));
  assert.ok(stranger instanceof ConnectionError, String(stranger));
  t.diagnostic(`certificate from another CA: ${stranger.message}`);
  await apiVersionsWith(b, { ca: ca.ca, cert: client.cert, key: client.key });
  const cli = await sluice(['topic', 'list', '--bootstrap', b.bootstrap, '--tls-ca', ca.caFile, '--tls-cert', client.certFile, '--tls-key', client.keyFile]);
  assert.equal(cli.code, 0, cli.stderr);
});

test('--tls-client-auth request: no certificate is fine, one from another CA is not', { timeout: 60_000 }, async () => {
  const b = await tlsBroker(['--tls-client-auth', 'request', '--tls-ca', ca.caFile]);
  await apiVersionsWith(b, { ca: ca.ca });
  await apiVersionsWith(b, { ca: ca.ca, cert: client.cert, key: client.key });
  const stranger = await failure(apiVersionsWith(b, { ca: ca.ca, cert: strangerClient.cert, key: strangerClient.key }));
  assert.ok(stranger instanceof ConnectionError, String(stranger));
});

test('bad TLS settings stop the broker before it starts, naming the flag', { timeout: 30_000 }, async () => {
  const half = await startBroker({ args: ['--tls-cert', server.certFile] }).then(() => assert.fail('started'), (e: Error) => e);
  assert.match(half.message, /--tls-cert and --tls-key go together/);
  const missing = await startBroker({ args: ['--tls-cert', '/nonexistent/cert.pem', '--tls-key', server.keyFile] }).then(() => assert.fail('started'), (e: Error) => e);
  assert.match(missing.message, /--tls-cert \/nonexistent\/cert\.pem/);
  const noCa = await startBroker({ args: ['--tls-cert', server.certFile, '--tls-key', server.keyFile, '--tls-client-auth', 'required'] }).then(() => assert.fail('started'), (e: Error) => e);
  assert.match(noCa.message, /needs --tls-ca/);
});

test('a TLS client at a plaintext port is told the broker does not speak TLS there', { timeout: 30_000 }, async (t) => {
  const b = await startBroker({});
  brokers.push(b);
  const e = await failure(apiVersionsWith(b, { ca: ca.ca }));
  assert.ok(e instanceof ConnectionError, String(e));
  assert.match(e.message, /does not speak TLS on this port/);
  t.diagnostic(e.message);
  await apiVersionsWith(b, undefined);
});
