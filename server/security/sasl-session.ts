/**
 * One connection's authentication (SPEC §2.6): the SASL state machine behind SaslHandshake
 * and SaslAuthenticate, and the gate in front of the request router.
 *
 *   initial --SaslHandshake(mechanism offered)--> handshaken
 *   handshaken --SaslAuthenticate(PLAIN, valid)--> authenticated
 *   handshaken --SaslAuthenticate(client-first)--> scramFirst --SaslAuthenticate(client-final, valid)--> authenticated
 *   any --anything invalid--> failed (the reply closes the connection)
 *
 * Before `authenticated` only ApiVersions and the two SASL APIs reach the broker when
 * authentication is required; without the requirement a connection that never starts a
 * handshake is served anonymously, but one that starts one must finish it first.
 *
 * Invariants:
 * - at most one SaslAuthenticate of a connection is in progress (a second one in flight is
 *   ILLEGAL_SASL_STATE): the state machine is never entered twice at once;
 * - every failure reply but UNSUPPORTED_SASL_MECHANISM closes the connection, and a failed
 *   session answers nothing else;
 * - an unknown user gets a server-first-message like a known one (salt derived from the name
 *   with a per-process key, the default iteration count) and fails only at the proof, so
 *   SCRAM does not tell which users exist;
 * - the session holds O(1) state (one SCRAM exchange, messages bounded by
 *   SCRAM_MESSAGE_BYTES_MAX) and is dropped with its connection; with authentication
 *   required, a connection not authenticated within saslAuthenticationTimeoutMs is closed.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type net from 'node:net';
import { ApiKey, supportedVersions } from '../../protocol/api-keys.ts';
import { saslAuthenticateRequestSchema, saslHandshakeRequestSchema, type SaslAuthenticateRequest, type SaslHandshakeRequest } from '../../protocol/apis/sasl.ts';
import { decodeBody } from '../../protocol/body.ts';
import { ErrorCode, SluiceError } from '../../protocol/errors.ts';
import type { RequestHeader } from '../../protocol/header.ts';
import { check } from '../../protocol/schema.ts';
import {
  authMessage, formatServerFirst, hmac, keysOf, newNonce, parseClientFinal, parseClientFirst, saltedPassword, SCRAM_ITERATIONS_DEFAULT, SCRAM_MESSAGE_BYTES_MAX, SCRAM_SHA_256, ScramFormatError, verifyProof, checkUsername, type ScramCredential,
} from '../../protocol/sasl/scram.ts';
import type { Logger } from '../logger.ts';
import type { RequestHandler } from '../network/client-connection.ts';
import type { HandlerResult, Reply } from '../network/reply.ts';
import type { CredentialStore } from './credential-store.ts';

export interface SaslSettings {
  required: boolean;
  /** Mechanisms offered on this listener. */
  mechanisms: readonly string[];
  credentials: CredentialStore;
  authenticationTimeoutMs: number;
  log: Logger;
  /** Counts failures for a rate-limited log line. */
  onFailure: (remote: string, username: string | null, why: string) => void;
}

/** The request router, told who is asking (null: not authenticated). */
export type PrincipalRoute = (header: RequestHeader, frame: Buffer, remoteHost: string, socket: net.Socket, principal: string | null) => Promise<HandlerResult> | HandlerResult;

type State = 'initial' | 'handshaken' | 'scramFirst' | 'authenticated' | 'failed';

/** Key for the salts of users that do not exist: per process, so they look random and stay stable while it runs. */
const UNKNOWN_USER_SALT_KEY = randomBytes(32);

interface ScramExchange {
  username: string;
  gs2Header: string;
  clientFirstBare: string;
  serverFirst: string;
  nonce: string;
  /** undefined: unknown user; the exchange fails at the proof. */
  credential: ScramCredential | undefined;
}

export class SaslSession {
  private state: State = 'initial';
  private mechanism = '';
  private busy = false;
  private scram: ScramExchange | null = null;
  private timer: NodeJS.Timeout | null = null;
  /** The authenticated user, or null. */
  principal: string | null = null;

  constructor(private readonly settings: SaslSettings, private readonly remote: string) {}

  /** Arms the authentication deadline (when required) for this connection's socket. */
  watch(socket: net.Socket): void {
    if (!this.settings.required) return;
    this.timer = setTimeout(() => {
      if (this.state === 'authenticated') return;
      this.settings.onFailure(this.remote, this.scram?.username ?? null, `not authenticated within ${this.settings.authenticationTimeoutMs} ms`);
      socket.destroy();
    }, this.settings.authenticationTimeoutMs);
    this.timer.unref();
    socket.once('close', () => this.clearTimer());
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  /** The router behind this session's gate; it is told the connection's principal. */
  gate(route: PrincipalRoute): RequestHandler {
    return (header, frame, remoteHost, socket) => {
      const k = header.apiKey;
      if (k === ApiKey.SASL_HANDSHAKE || k === ApiKey.SASL_AUTHENTICATE) return this.handle(header, frame);
      if (this.state === 'failed') return { errorCode: ErrorCode.ILLEGAL_SASL_STATE, control: { message: 'authentication failed on this connection' }, closeAfter: true };
      if (k === ApiKey.API_VERSIONS || this.state === 'authenticated') return route(header, frame, remoteHost, socket, this.principal);
      if (this.state === 'initial') {
        if (!this.settings.required) return route(header, frame, remoteHost, socket, null);
        return this.fail(ErrorCode.AUTHENTICATION_REQUIRED, `the broker requires SASL authentication (mechanisms: ${this.settings.mechanisms.join(', ')}); send SaslHandshake first`);
      }
      return this.fail(ErrorCode.ILLEGAL_SASL_STATE, 'a request arrived in the middle of SASL authentication; only ApiVersions and SaslAuthenticate may be sent until it completes');
    };
  }

  private fail(code: ErrorCode, message: string, extra: Record<string, unknown> = {}): Reply {
    this.state = 'failed';
    this.scram = null;
    this.clearTimer();
    return { errorCode: code, control: { message, ...extra }, closeAfter: true };
  }

  private handle(header: RequestHeader, frame: Buffer): HandlerResult | Promise<HandlerResult> {
    const range = supportedVersions[header.apiKey]!;
    if (header.apiVersion < range.min || header.apiVersion > range.max) {
      return { errorCode: ErrorCode.UNSUPPORTED_VERSION, control: { message: `API key ${header.apiKey} version ${header.apiVersion} is not supported (${range.min}-${range.max})` } };
    }
    if (this.state === 'failed') return { errorCode: ErrorCode.ILLEGAL_SASL_STATE, control: { message: 'authentication failed on this connection' }, closeAfter: true };
    let control: unknown;
    try {
      const body = decodeBody(frame, header.bodyOffset);
      if (body.data.length > 0) throw new SluiceError(ErrorCode.MALFORMED_REQUEST, `SASL requests carry no data section, got ${body.data.length} bytes`);
      control = check(header.apiKey === ApiKey.SASL_HANDSHAKE ? saslHandshakeRequestSchema : saslAuthenticateRequestSchema, body.control);
    } catch (e) {
      const err = e instanceof SluiceError ? e : new SluiceError(ErrorCode.MALFORMED_REQUEST, (e as Error).message);
      return this.fail(err.code, err.message);
    }
    if (header.apiKey === ApiKey.SASL_HANDSHAKE) return this.handshake(control as SaslHandshakeRequest);
    if (this.busy) return this.fail(ErrorCode.ILLEGAL_SASL_STATE, 'a SaslAuthenticate arrived while the previous one was in progress');
    this.busy = true;
    return this.authenticate((control as SaslAuthenticateRequest).authBytes).then(
      (r) => {
        this.busy = false;
        return r;
      },
      (e: unknown) => {
        this.busy = false;
        const err = e instanceof SluiceError ? e : new SluiceError(ErrorCode.UNKNOWN_SERVER_ERROR, (e as Error)?.message ?? String(e));
        this.settings.log.warn('SASL authentication error', { remote: this.remote, error: err });
        return this.fail(err.code, err.message);
      },
    );
  }

  private handshake(req: SaslHandshakeRequest): HandlerResult {
    if (this.state !== 'initial') return this.fail(ErrorCode.ILLEGAL_SASL_STATE, this.state === 'authenticated' ? 'this connection is already authenticated' : 'SaslHandshake was already sent on this connection');
    const offered = [...this.settings.mechanisms];
    if (!offered.includes(req.mechanism)) {
      // The client may try another mechanism on the same connection.
      return { errorCode: ErrorCode.UNSUPPORTED_SASL_MECHANISM, control: { message: `mechanism ${JSON.stringify(req.mechanism.slice(0, 64))} is not offered here; offered: ${offered.join(', ')}`, mechanisms: offered } };
    }
    this.mechanism = req.mechanism;
    this.state = 'handshaken';
    return { control: { mechanisms: offered } };
  }

  private async authenticate(authBytes: string): Promise<HandlerResult> {
    // Bytes of UTF-8, not string length (UTF-16 units): SPEC §1.1 counts every limit in bytes.
    if (Buffer.byteLength(authBytes, 'utf8') > SCRAM_MESSAGE_BYTES_MAX) return this.failAuth(ErrorCode.INVALID_SASL_MESSAGE, `SASL message longer than ${SCRAM_MESSAGE_BYTES_MAX} bytes`, null);
    if (this.state === 'handshaken' && this.mechanism === 'PLAIN') return this.plain(authBytes);
    if (this.state === 'handshaken' && this.mechanism === SCRAM_SHA_256) return this.scramFirst(authBytes);
    if (this.state === 'scramFirst') return this.scramFinal(authBytes);
    return this.fail(ErrorCode.ILLEGAL_SASL_STATE, this.state === 'authenticated' ? 'this connection is already authenticated' : 'SaslAuthenticate before SaslHandshake');
  }

  private failAuth(code: ErrorCode, why: string, username: string | null): Reply {
    this.settings.onFailure(this.remote, username, why);
    // Wrong password and unknown user read the same to the client.
    return this.fail(code, code === ErrorCode.SASL_AUTHENTICATION_FAILED ? 'authentication failed: unknown user or wrong password' : why);
  }

  private succeed(username: string, authBytes: string): Reply {
    this.state = 'authenticated';
    this.principal = username;
    this.scram = null;
    this.clearTimer();
    this.settings.log.debug('authenticated', { remote: this.remote, user: username, mechanism: this.mechanism });
    return { control: { authBytes, complete: true } };
  }

  /** PLAIN (RFC 4616): authzid NUL authcid NUL passwd; checked against the SCRAM credential. */
  private async plain(msg: string): Promise<HandlerResult> {
    const parts = msg.split('\u0000');
    if (parts.length !== 3) return this.failAuth(ErrorCode.INVALID_SASL_MESSAGE, 'PLAIN message must be authzid NUL username NUL password', null);
    const [authzid, username, password] = parts as [string, string, string];
    try {
      checkUsername(username);
    } catch (e) {
      return this.failAuth(ErrorCode.INVALID_SASL_MESSAGE, `PLAIN: ${(e as Error).message}`, null);
    }
    if (authzid !== '' && authzid !== username) return this.failAuth(ErrorCode.INVALID_SASL_MESSAGE, 'PLAIN: authzid must be empty or the username', username);
    const credential = await this.settings.credentials.get(username);
    const salt = credential ? Buffer.from(credential.salt, 'base64') : unknownUserSalt(username);
    const iterations = credential?.iterations ?? SCRAM_ITERATIONS_DEFAULT;
    // Computed for unknown users too, so that the answer takes as long.
    const { storedKey } = keysOf(await saltedPassword(password, salt, iterations));
    if (!credential || !timingSafeEqual(storedKey, Buffer.from(credential.storedKey, 'base64'))) return this.failAuth(ErrorCode.SASL_AUTHENTICATION_FAILED, 'wrong password or unknown user', username);
    return this.succeed(username, '');
  }

  private async scramFirst(msg: string): Promise<HandlerResult> {
    let first;
    try {
      first = parseClientFirst(msg);
    } catch (e) {
      if (e instanceof ScramFormatError) return this.failAuth(ErrorCode.INVALID_SASL_MESSAGE, `SCRAM client-first-message: ${e.message}`, null);
      throw e;
    }
    const credential = await this.settings.credentials.get(first.username);
    if (this.state !== 'handshaken') return this.fail(ErrorCode.ILLEGAL_SASL_STATE, 'connection state changed during authentication');
    const salt = credential ? Buffer.from(credential.salt, 'base64') : unknownUserSalt(first.username);
    const nonce = first.clientNonce + newNonce();
    const serverFirst = formatServerFirst(nonce, salt, credential?.iterations ?? SCRAM_ITERATIONS_DEFAULT);
    this.scram = { username: first.username, gs2Header: first.gs2Header, clientFirstBare: first.bare, serverFirst, nonce, credential };
    this.state = 'scramFirst';
    return { control: { authBytes: serverFirst, complete: false } };
  }

  private async scramFinal(msg: string): Promise<HandlerResult> {
    const x = this.scram!;
    let final;
    try {
      final = parseClientFinal(msg);
    } catch (e) {
      if (e instanceof ScramFormatError) return this.failAuth(ErrorCode.INVALID_SASL_MESSAGE, `SCRAM client-final-message: ${e.message}`, x.username);
      throw e;
    }
    if (final.channelBinding !== x.gs2Header) return this.failAuth(ErrorCode.SASL_AUTHENTICATION_FAILED, 'channel binding (c=) does not repeat the GS2 header', x.username);
    // A replayed client-final-message carries an earlier exchange's nonce.
    if (final.nonce !== x.nonce) return this.failAuth(ErrorCode.SASL_AUTHENTICATION_FAILED, 'nonce (r=) is not this exchange\'s', x.username);
    if (!x.credential) return this.failAuth(ErrorCode.SASL_AUTHENTICATION_FAILED, 'unknown user', x.username);
    const auth = authMessage(x.clientFirstBare, x.serverFirst, final.withoutProof);
    if (!verifyProof(Buffer.from(x.credential.storedKey, 'base64'), auth, final.proof)) return this.failAuth(ErrorCode.SASL_AUTHENTICATION_FAILED, 'proof does not verify', x.username);
    const signature = hmac(Buffer.from(x.credential.serverKey, 'base64'), auth);
    return this.succeed(x.username, `v=${signature.toString('base64')}`);
  }
}

function unknownUserSalt(username: string): Buffer {
  return hmac(UNKNOWN_USER_SALT_KEY, username).subarray(0, 16);
}
