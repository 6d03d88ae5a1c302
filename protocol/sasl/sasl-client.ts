/**
 * The client's side of SASL (SPEC §2.6): SaslHandshake, then the mechanism's messages in
 * SaslAuthenticate, on a connection no other request has used yet. SCRAM-SHA-256 proves the
 * password without sending it and checks the broker's server signature, so a broker that
 * does not hold the user's credential cannot pose as one that does; PLAIN sends the password
 * (use it only over TLS).
 */
import { ApiKey } from '../api-keys.ts';
import type { SaslAuthenticateResponse, SaslHandshakeResponse } from '../apis/sasl.ts';
import { ErrorCode, SluiceError } from '../errors.ts';
import type { Connection } from '../connection.ts';
import { authMessage, formatClientFirst, hmac, keysOf, newNonce, parseServerFinal, parseServerFirst, saltedPassword, SCRAM_SHA_256, ScramFormatError, xor } from './scram.ts';

export type SaslMechanism = 'SCRAM-SHA-256' | 'PLAIN';

export interface SaslClientOptions {
  mechanism: SaslMechanism;
  username: string;
  password: string;
}

export async function saslAuthenticate(conn: Connection, opts: SaslClientOptions): Promise<void> {
  await conn.send<SaslHandshakeResponse>(ApiKey.SASL_HANDSHAKE, { mechanism: opts.mechanism });
  if (opts.mechanism === 'PLAIN') {
    const r = await conn.send<SaslAuthenticateResponse>(ApiKey.SASL_AUTHENTICATE, { authBytes: `\u0000${opts.username}\u0000${opts.password}` });
    if (!r.control.complete) throw new SluiceError(ErrorCode.SASL_AUTHENTICATION_FAILED, `broker ${conn.host}:${conn.port} did not complete PLAIN authentication`);
    return;
  }
  if (opts.mechanism !== SCRAM_SHA_256) throw new SluiceError(ErrorCode.UNSUPPORTED_SASL_MECHANISM, `this client does not speak ${opts.mechanism}`);
  await scram(conn, opts);
}

async function scram(conn: Connection, opts: SaslClientOptions): Promise<void> {
  const clientNonce = newNonce();
  const first = formatClientFirst(opts.username, clientNonce);
  const r1 = await conn.send<SaslAuthenticateResponse>(ApiKey.SASL_AUTHENTICATE, { authBytes: first.message });
  let serverFirst;
  try {
    serverFirst = parseServerFirst(r1.control.authBytes);
  } catch (e) {
    throw new SluiceError(ErrorCode.INVALID_SASL_MESSAGE, `broker ${conn.host}:${conn.port} sent a bad server-first-message: ${(e as Error).message}`);
  }
  if (!serverFirst.nonce.startsWith(clientNonce) || serverFirst.nonce.length === clientNonce.length) {
    throw new SluiceError(ErrorCode.SASL_AUTHENTICATION_FAILED, `broker ${conn.host}:${conn.port} answered with a nonce that does not extend ours`);
  }
  const { clientKey, storedKey, serverKey } = keysOf(await saltedPassword(opts.password, serverFirst.salt, serverFirst.iterations));
  const withoutProof = `c=biws,r=${serverFirst.nonce}`;
  const auth = authMessage(first.bare, r1.control.authBytes, withoutProof);
  const proof = xor(clientKey, hmac(storedKey, auth));
  const r2 = await conn.send<SaslAuthenticateResponse>(ApiKey.SASL_AUTHENTICATE, { authBytes: `${withoutProof},p=${proof.toString('base64')}` });
  let final;
  try {
    final = parseServerFinal(r2.control.authBytes);
  } catch (e) {
    if (e instanceof ScramFormatError) throw new SluiceError(ErrorCode.INVALID_SASL_MESSAGE, `broker ${conn.host}:${conn.port} sent a bad server-final-message: ${e.message}`);
    throw e;
  }
  if ('error' in final) throw new SluiceError(ErrorCode.SASL_AUTHENTICATION_FAILED, `broker ${conn.host}:${conn.port}: ${final.error}`);
  if (!final.signature.equals(hmac(serverKey, auth)) || !r2.control.complete) {
    throw new SluiceError(ErrorCode.SASL_AUTHENTICATION_FAILED, `broker ${conn.host}:${conn.port} sent a server signature that does not verify: it does not hold this user's credential`);
  }
}
