/**
 * SaslSession in process (SPEC §2.6), against a real users.json in a temp dir: the message
 * length limit is counted in bytes of UTF-8 (SPEC §1.1), not in string length, so a client
 * written in any language agrees with the broker on which messages are too long.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { ApiKey } from '../../protocol/api-keys.ts';
import { decodeRequestHeader } from '../../protocol/header.ts';
import { ErrorCode } from '../../protocol/errors.ts';
import { makeCredential, SCRAM_ITERATIONS_MIN, SCRAM_MESSAGE_BYTES_MAX } from '../../protocol/sasl/scram.ts';
import { createLogger } from '../../server/logger.ts';
import type { HandlerResult, Reply } from '../../server/network/reply.ts';
import { SaslSession } from '../../server/security/sasl-session.ts';
import { UsersFile } from '../../server/security/users-file.ts';
import { requestFrame } from '../helpers/raw-socket.ts';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function session(username: string, password: string): Promise<SaslSession> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-sasl-session-'));
  dirs.push(dir);
  const users = new UsersFile(dir);
  assert.equal(await users.put(username, await makeCredential(password, SCRAM_ITERATIONS_MIN), false), true);
  return new SaslSession({ required: true, mechanisms: ['SCRAM-SHA-256', 'PLAIN'], credentials: users, authenticationTimeoutMs: 10_000, log: createLogger('test'), onFailure: () => {} }, 'test');
}

async function send(s: SaslSession, apiKey: number, control: unknown): Promise<Reply> {
  const frame = requestFrame(apiKey, 0, 1, control).subarray(4);
  const gate = s.gate(() => assert.fail('no request may reach the router before authentication'));
  const r: HandlerResult = await gate(decodeRequestHeader(frame), frame, '127.0.0.1', undefined as never);
  return r as Reply;
}

test('PLAIN: a message over the limit in UTF-8 bytes but not in characters is INVALID_SASL_MESSAGE', { timeout: 30_000 }, async () => {
  // 'é' is 1 UTF-16 unit and 2 bytes of UTF-8: the message is ~1100 characters, ~2200 bytes.
  const password = 'é'.repeat(1100);
  const message = `\u0000alice\u0000${password}`;
  assert.ok(message.length <= SCRAM_MESSAGE_BYTES_MAX && Buffer.byteLength(message) > SCRAM_MESSAGE_BYTES_MAX);
  const s = await session('alice', password);
  assert.equal((await send(s, ApiKey.SASL_HANDSHAKE, { mechanism: 'PLAIN' })).errorCode ?? 0, 0);
  const r = await send(s, ApiKey.SASL_AUTHENTICATE, { authBytes: message });
  assert.equal(r.errorCode, ErrorCode.INVALID_SASL_MESSAGE, JSON.stringify(r.control));
  assert.equal(r.closeAfter, true);
});

test('PLAIN: a message of exactly the limit in UTF-8 bytes authenticates', { timeout: 30_000 }, async () => {
  const prefix = '\u0000alice\u0000';
  const password = `x${'é'.repeat((SCRAM_MESSAGE_BYTES_MAX - prefix.length - 1) / 2)}`;
  assert.equal(Buffer.byteLength(prefix + password), SCRAM_MESSAGE_BYTES_MAX);
  const s = await session('alice', password);
  await send(s, ApiKey.SASL_HANDSHAKE, { mechanism: 'PLAIN' });
  const r = await send(s, ApiKey.SASL_AUTHENTICATE, { authBytes: prefix + password });
  assert.equal(r.errorCode ?? 0, 0, JSON.stringify(r.control));
  assert.deepEqual(r.control, { authBytes: '', complete: true });
});

test('SCRAM: a client nonce longer than 232 characters is refused at the client-first-message, not after a server-first the exchange could never finish', { timeout: 30_000 }, async () => {
  const s = await session('alice', 'pencil');
  await send(s, ApiKey.SASL_HANDSHAKE, { mechanism: 'SCRAM-SHA-256' });
  // 232 + the broker's 24 = 256, the longest nonce: accepted.
  const ok = await send(s, ApiKey.SASL_AUTHENTICATE, { authBytes: `n,,n=alice,r=${'a'.repeat(232)}` });
  assert.equal(ok.errorCode ?? 0, 0, JSON.stringify(ok.control));
  assert.equal((ok.control as { authBytes: string }).authBytes.split(',')[0]!.length - 2, 256);
  const s2 = await session('alice', 'pencil');
  await send(s2, ApiKey.SASL_HANDSHAKE, { mechanism: 'SCRAM-SHA-256' });
  const r = await send(s2, ApiKey.SASL_AUTHENTICATE, { authBytes: `n,,n=alice,r=${'a'.repeat(233)}` });
  assert.equal(r.errorCode, ErrorCode.INVALID_SASL_MESSAGE, JSON.stringify(r.control));
  assert.equal(r.closeAfter, true);
});
