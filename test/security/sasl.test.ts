/**
 * SASL against real broker processes (SPEC §2.6): users made with `sluice user` (the CLI
 * writing the data dir's users.json, no password in it), a broker with --authentication
 * sasl, and clients that authenticate right, with a wrong password, as an unknown user, with
 * replayed or garbled messages, out of order, or that vanish or stall mid-handshake. After
 * every one of them the broker still serves an honest client.
 */
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Admin } from '../../client/admin.ts';
import { Consumer } from '../../client/consumer.ts';
import { Producer } from '../../client/producer.ts';
import { ApiKey } from '../../protocol/api-keys.ts';
import { Connection } from '../../protocol/connection.ts';
import { ErrorCode, SluiceError } from '../../protocol/errors.ts';
import { formatClientFirst, hmac, keysOf, parseServerFirst, saltedPassword, xor, authMessage } from '../../protocol/sasl/scram.ts';
import type { SaslClientOptions } from '../../protocol/sasl/sasl-client.ts';
import { startBroker, tempDir, type BrokerProcess } from '../helpers/broker-process.ts';
import { sluice } from '../helpers/cli.ts';
import { RawSocket, requestFrame } from '../helpers/raw-socket.ts';
import { makeTestCa, type TestCa } from '../helpers/test-ca.ts';

const ALICE = { mechanism: 'SCRAM-SHA-256', username: 'alice', password: 'correct horse battery staple' } as const satisfies SaslClientOptions;
let broker: BrokerProcess;
let ca: TestCa;
const others: BrokerProcess[] = [];

async function createUser(dataDir: string, name: string, password: string): Promise<void> {
  const r = await sluice(['user', 'create', name, '--data-dir', dataDir, '--password-stdin', '--iterations', '4096'], `${password}\n`);
  assert.equal(r.code, 0, r.stderr);
}

before(async () => {
  const dataDir = tempDir();
  // The first user exists before the broker ever runs: nobody could authenticate to create it.
  await createUser(dataDir, 'alice', ALICE.password);
  await createUser(dataDir, 'bob', 'bobs password');
  broker = await startBroker({ dataDir, args: ['--authentication', 'sasl', '--sasl-authentication-timeout-ms', '1500', '--super-users', 'alice,bob'] });
  ca = makeTestCa();
});

after(async () => {
  for (const b of [broker, ...others]) {
    if (!b) continue;
    const code = await b.stop();
    b.cleanup();
    assert.equal(code, 0, `broker exited with ${code}:\n${b.log()}`);
  }
  ca?.cleanup();
});

async function connect(sasl?: SaslClientOptions): Promise<Connection> {
  return Connection.connect(broker.host, broker.port, { sasl, connectTimeoutMs: 5000, requestTimeoutMs: 5000 });
}

async function refusal(p: Promise<unknown>): Promise<SluiceError> {
  const e = await p.then(() => assert.fail('expected a refusal'), (x: unknown) => x);
  assert.ok(e instanceof SluiceError, `expected a SluiceError, got ${String(e)}`);
  return e;
}

async function stillServes(): Promise<void> {
  const c = await connect(ALICE);
  try {
    await c.send(ApiKey.METADATA, { topics: null });
  } finally {
    c.close();
  }
}

/** A raw connection through handshake and client-first; returns it with the server-first-message. */
async function scramStart(username: string, clientNonce = 'fyko+d2lbbFgONRv9qkxdawL'): Promise<{ s: RawSocket; serverFirst: string; bare: string }> {
  const s = await RawSocket.connect(broker.port);
  s.write(requestFrame(ApiKey.SASL_HANDSHAKE, 0, 1, { mechanism: 'SCRAM-SHA-256' }));
  const first = formatClientFirst(username, clientNonce);
  s.write(requestFrame(ApiKey.SASL_AUTHENTICATE, 0, 2, { authBytes: first.message }));
  await s.waitFor(2);
  assert.equal(s.responses[0]!.errorCode, 0);
  assert.equal(s.responses[1]!.errorCode, 0, JSON.stringify(s.responses[1]!.control));
  return { s, serverFirst: (s.responses[1]!.control as { authBytes: string }).authBytes, bare: first.bare };
}

async function clientFinal(password: string, bare: string, serverFirst: string): Promise<string> {
  const sf = parseServerFirst(serverFirst);
  const { clientKey, storedKey } = keysOf(await saltedPassword(password, sf.salt, sf.iterations));
  const withoutProof = `c=biws,r=${sf.nonce}`;
  const proof = xor(clientKey, hmac(storedKey, authMessage(bare, serverFirst, withoutProof)));
  return `${withoutProof},p=${proof.toString('base64')}`;
}

test('the right password: produce, consume and administer; the store holds no password', { timeout: 60_000 }, async () => {
  const admin = new Admin({ bootstrap: broker.bootstrap, sasl: ALICE });
  const producer = new Producer({ bootstrap: broker.bootstrap, sasl: ALICE });
  const consumer = new Consumer({ bootstrap: broker.bootstrap, sasl: { ...ALICE, username: 'bob', password: 'bobs password' }, autoOffsetReset: 'earliest', maxWaitMs: 200 });
  try {
    await admin.createTopics([{ topic: 'private', partitions: 1, replicationFactor: 1 }]);
    for (let i = 0; i < 5; i++) await producer.send({ topic: 'private', value: `m${i}` });
    await consumer.assign([{ topic: 'private', partition: 0, offset: 0 }]);
    const got: string[] = [];
    const deadline = Date.now() + 20_000;
    while (got.length < 5 && Date.now() < deadline) for (const m of await consumer.poll(200)) got.push(m.value!.toString());
    assert.deepEqual(got, ['m0', 'm1', 'm2', 'm3', 'm4']);
  } finally {
    await producer.close();
    await consumer.close();
    await admin.close();
  }
  const file = readFileSync(join(broker.dataDir, '__metadata', 'users.json'), 'utf8');
  assert.ok(!file.includes(ALICE.password) && !file.includes('bobs password'), 'no password in the store');
  assert.match(file, /"storedKey"/);
});

test('wrong password and unknown user fail alike, and close the connection', { timeout: 30_000 }, async (t) => {
  const wrong = await refusal(connect({ ...ALICE, password: 'wrong' }));
  assert.equal(wrong.code, ErrorCode.SASL_AUTHENTICATION_FAILED);
  const unknown = await refusal(connect({ ...ALICE, username: 'mallory' }));
  assert.equal(unknown.code, ErrorCode.SASL_AUTHENTICATION_FAILED);
  assert.equal(unknown.message, wrong.message, 'an unknown user reads like a wrong password');
  t.diagnostic(wrong.message);
  // SCRAM answers an unknown user with a server-first-message too (it fails only at the proof).
  const { s, serverFirst } = await scramStart('mallory');
  assert.match(serverFirst, /^r=fyko\+d2lbbFgONRv9qkxdawL[^,]+,s=[A-Za-z0-9+/=]+,i=8192$/);
  s.close();
  // On the wire: the failure response, then the broker closes.
  const { s: raw, bare, serverFirst: sf } = await scramStart('alice');
  raw.write(requestFrame(ApiKey.SASL_AUTHENTICATE, 0, 3, { authBytes: await clientFinal('wrong', bare, sf) }));
  raw.write(requestFrame(ApiKey.METADATA, 0, 4, { topics: null }));
  await raw.waitFor(3);
  assert.equal(raw.responses[2]!.errorCode, ErrorCode.SASL_AUTHENTICATION_FAILED);
  assert.ok(await raw.waitClosed(5000), 'closed after the failure');
  assert.equal(raw.responses.length, 3, 'nothing answered after the failure');
  await stillServes();
  assert.match(broker.log(), /authentication failed/);
});

test('before authentication only ApiVersions is answered; anything else is refused and closes', { timeout: 30_000 }, async () => {
  const s = await RawSocket.connect(broker.port);
  s.write(requestFrame(ApiKey.API_VERSIONS, 0, 1, {}));
  s.write(requestFrame(ApiKey.DELETE_TOPICS, 0, 2, { topics: ['private'], timeoutMs: 1000 }));
  await s.waitFor(2);
  assert.equal(s.responses[0]!.errorCode, 0);
  const apis = (s.responses[0]!.control as { apis: Array<{ apiKey: number }> }).apis.map((a) => a.apiKey);
  assert.ok(apis.includes(ApiKey.SASL_HANDSHAKE) && apis.includes(ApiKey.SASL_AUTHENTICATE));
  assert.equal(s.responses[1]!.errorCode, ErrorCode.AUTHENTICATION_REQUIRED);
  assert.ok(await s.waitClosed(5000));
  // The topic is still there.
  const admin = new Admin({ bootstrap: broker.bootstrap, sasl: ALICE });
  try {
    assert.ok((await admin.listTopics()).includes('private'));
  } finally {
    await admin.close();
  }
  // The CLI without credentials says so; with them it works.
  const denied = await sluice(['topic', 'list', '--bootstrap', broker.bootstrap]);
  assert.notEqual(denied.code, 0);
  assert.match(denied.stderr, /AUTHENTICATION_REQUIRED/);
  const allowed = await sluice(['topic', 'list', '--bootstrap', broker.bootstrap, '--sasl-username', 'alice', '--sasl-password', ALICE.password]);
  assert.equal(allowed.code, 0, allowed.stderr);
  assert.match(allowed.stdout, /private/);
});

test('a replayed client-final-message fails: it carries another exchange\'s nonce', { timeout: 30_000 }, async () => {
  // A successful exchange, observed.
  const a = await scramStart('alice');
  const final = await clientFinal(ALICE.password, a.bare, a.serverFirst);
  a.s.write(requestFrame(ApiKey.SASL_AUTHENTICATE, 0, 3, { authBytes: final }));
  await a.s.waitFor(3);
  assert.equal(a.s.responses[2]!.errorCode, 0);
  assert.equal((a.s.responses[2]!.control as { complete: boolean }).complete, true);
  a.s.close();
  // The same client-first (same client nonce) and the recorded client-final on a new connection.
  const b = await scramStart('alice');
  assert.notEqual(b.serverFirst, a.serverFirst, 'the broker picks a fresh nonce');
  b.s.write(requestFrame(ApiKey.SASL_AUTHENTICATE, 0, 3, { authBytes: final }));
  await b.s.waitFor(3);
  assert.equal(b.s.responses[2]!.errorCode, ErrorCode.SASL_AUTHENTICATION_FAILED);
  assert.ok(await b.s.waitClosed(5000));
  await stillServes();
});

test('garbled and out-of-order SASL messages get their errors; the broker keeps serving', { timeout: 30_000 }, async () => {
  const cases: Array<{ frames: Buffer[]; code: number; closes: boolean }> = [
    { frames: [requestFrame(ApiKey.SASL_AUTHENTICATE, 0, 1, { authBytes: 'n,,n=alice,r=abc' })], code: ErrorCode.ILLEGAL_SASL_STATE, closes: true },
    { frames: [requestFrame(ApiKey.SASL_HANDSHAKE, 0, 1, { mechanism: 'GSSAPI' })], code: ErrorCode.UNSUPPORTED_SASL_MECHANISM, closes: false },
    { frames: [requestFrame(ApiKey.SASL_HANDSHAKE, 0, 1, { mechanism: 'SCRAM-SHA-256' }), requestFrame(ApiKey.SASL_AUTHENTICATE, 0, 2, { authBytes: 'garbage' })], code: ErrorCode.INVALID_SASL_MESSAGE, closes: true },
    { frames: [requestFrame(ApiKey.SASL_HANDSHAKE, 0, 1, { mechanism: 'SCRAM-SHA-256' }), requestFrame(ApiKey.SASL_AUTHENTICATE, 0, 2, { authBytes: 'n,,n=alice,r=a\u0000b' })], code: ErrorCode.INVALID_SASL_MESSAGE, closes: true },
    { frames: [requestFrame(ApiKey.SASL_HANDSHAKE, 0, 1, { mechanism: 'SCRAM-SHA-256' }), requestFrame(ApiKey.SASL_AUTHENTICATE, 0, 2, { authBytes: 'x'.repeat(100_000) })], code: ErrorCode.INVALID_SASL_MESSAGE, closes: true },
    { frames: [requestFrame(ApiKey.SASL_HANDSHAKE, 0, 1, { mechanism: 'SCRAM-SHA-256' }), requestFrame(ApiKey.SASL_AUTHENTICATE, 0, 2, { authBytes: 42 })], code: ErrorCode.MALFORMED_REQUEST, closes: true },
    { frames: [requestFrame(ApiKey.SASL_HANDSHAKE, 0, 1, { mechanism: 'SCRAM-SHA-256' }), requestFrame(ApiKey.SASL_HANDSHAKE, 0, 2, { mechanism: 'SCRAM-SHA-256' })], code: ErrorCode.ILLEGAL_SASL_STATE, closes: true },
    { frames: [requestFrame(ApiKey.SASL_HANDSHAKE, 0, 1, { mechanism: 'SCRAM-SHA-256' }), requestFrame(ApiKey.METADATA, 0, 2, { topics: null })], code: ErrorCode.ILLEGAL_SASL_STATE, closes: true },
    { frames: [requestFrame(ApiKey.SASL_HANDSHAKE, 0, 1, { mechanism: 'PLAIN' })], code: ErrorCode.UNSUPPORTED_SASL_MECHANISM, closes: false },
  ];
  for (const c of cases) {
    const s = await RawSocket.connect(broker.port);
    for (const f of c.frames) s.write(f);
    await s.waitFor(c.frames.length);
    const last = s.responses.at(-1)!;
    assert.equal(last.errorCode, c.code, `${JSON.stringify(c.frames.map((f) => f.readInt16BE(4)))}: ${JSON.stringify(last.control)}`);
    if (c.code === ErrorCode.UNSUPPORTED_SASL_MECHANISM) assert.deepEqual((last.control as { mechanisms: string[] }).mechanisms, ['SCRAM-SHA-256']);
    if (c.closes) assert.ok(await s.waitClosed(5000), `closed after ${c.code}`);
    else {
      // The connection stays usable: the right mechanism now works.
      s.write(requestFrame(ApiKey.SASL_HANDSHAKE, 0, 9, { mechanism: 'SCRAM-SHA-256' }));
      await s.waitFor(c.frames.length + 1);
      assert.equal(s.responses.at(-1)!.errorCode, 0);
    }
    s.close();
  }
  await stillServes();
});

test('a client that vanishes mid-handshake leaves nothing behind; one that stalls is closed after the timeout', { timeout: 30_000 }, async () => {
  for (let i = 0; i < 20; i++) {
    const { s } = await scramStart('alice', `vanish${i}`);
    s.socket.destroy();
  }
  await stillServes();
  const stall = await scramStart('alice', 'stalling');
  const started = Date.now();
  assert.ok(await stall.s.waitClosed(10_000), 'a stalled handshake is closed');
  const waited = Date.now() - started;
  assert.ok(waited >= 1000 && waited < 8000, `closed after ${waited} ms (timeout 1500 ms)`);
  // Even a connection that never sends a byte.
  const idle = await RawSocket.connect(broker.port);
  assert.ok(await idle.waitClosed(10_000));
  await stillServes();
});

test('sluice user list and delete; a deleted user cannot authenticate from the next connection on', { timeout: 30_000 }, async () => {
  const list = await sluice(['user', 'list', '--data-dir', broker.dataDir]);
  assert.equal(list.code, 0, list.stderr);
  assert.deepEqual(list.stdout.trim().split('\n'), ['alice', 'bob']);
  const dup = await sluice(['user', 'create', 'bob', '--data-dir', broker.dataDir, '--password-stdin'], 'x\n');
  assert.equal(dup.code, 1);
  assert.match(dup.stderr, /already exists/);
  const bob = { ...ALICE, username: 'bob', password: 'bobs password' };
  (await connect(bob)).close();
  const del = await sluice(['user', 'delete', 'bob', '--data-dir', broker.dataDir]);
  assert.equal(del.code, 0, del.stderr);
  assert.equal((await refusal(connect(bob))).code, ErrorCode.SASL_AUTHENTICATION_FAILED);
  // And a password change (--replace) takes effect at once too.
  const re = await sluice(['user', 'create', 'bob', '--data-dir', broker.dataDir, '--password-stdin'], 'new password\n');
  assert.equal(re.code, 0, re.stderr);
  (await connect({ ...bob, password: 'new password' })).close();
});

test('PLAIN: refused on a plaintext port unless allowed; over TLS it works', { timeout: 60_000 }, async () => {
  const refused = await startBroker({ args: ['--sasl-mechanisms', 'PLAIN'] }).then(() => assert.fail('started'), (e: Error) => e);
  assert.match(refused.message, /PLAIN sends passwords as they are: it needs TLS/);
  const cert = ca.issue('broker');
  const dataDir = tempDir();
  await createUser(dataDir, 'carol', 'carols password');
  const b = await startBroker({ dataDir, args: ['--authentication', 'sasl', '--super-users', 'carol', '--sasl-mechanisms', 'SCRAM-SHA-256,PLAIN', '--tls-cert', cert.certFile, '--tls-key', cert.keyFile] });
  others.push(b);
  const tls = { ca: ca.ca };
  const ok = await Connection.connect(b.host, b.port, { tls, sasl: { mechanism: 'PLAIN', username: 'carol', password: 'carols password' } });
  await ok.send(ApiKey.METADATA, { topics: null });
  ok.close();
  const bad = await refusal(Connection.connect(b.host, b.port, { tls, sasl: { mechanism: 'PLAIN', username: 'carol', password: 'nope' } }));
  assert.equal(bad.code, ErrorCode.SASL_AUTHENTICATION_FAILED);
  const scram = await Connection.connect(b.host, b.port, { tls, sasl: { mechanism: 'SCRAM-SHA-256', username: 'carol', password: 'carols password' } });
  scram.close();
  const cli = await sluice(['topic', 'list', '--bootstrap', b.bootstrap, '--tls-ca', ca.caFile, '--sasl-mechanism', 'PLAIN', '--sasl-username', 'carol', '--sasl-password', 'carols password']);
  assert.equal(cli.code, 0, cli.stderr);
});
