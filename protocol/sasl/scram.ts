/**
 * SCRAM-SHA-256 (RFC 5802, RFC 7677) as Sluice speaks it inside SaslAuthenticate (SPEC §2.6):
 * the four messages' grammar, their parsers, and the key derivation shared by the broker
 * (which verifies) and the client (which proves). No channel binding: the GS2 header is
 * `n,,` or `y,,` (an authzid `a=` is accepted and must name the authenticating user).
 * Usernames and passwords are used as their UTF-8 bytes, without SASLprep.
 *
 * Invariants:
 * - every parser is total: any string either parses into a well-formed message or throws
 *   ScramFormatError (never another exception), whatever its length or content; the fuzz test
 *   (test/protocol/scram-fuzz.test.ts) holds it to that;
 * - messages longer than SCRAM_MESSAGE_BYTES_MAX bytes of UTF-8 are refused before anything else
 *   is looked at (bytes, as every length limit of the SPEC, §1.1, so that a client in any
 *   language counts the same way);
 * - nonces are printable ASCII without ',' (RFC 5802 §5.1), 1..SCRAM_NONCE_CHARS_MAX chars;
 * - base64 is checked strictly (canonical alphabet and padding), since Node's decoder
 *   silently skips characters it does not know.
 */
import { createHash, createHmac, pbkdf2, randomBytes, timingSafeEqual } from 'node:crypto';

export const SCRAM_SHA_256 = 'SCRAM-SHA-256';
/** RFC 7677 §4: at least 4096 iterations. */
export const SCRAM_ITERATIONS_MIN = 4096;
/** A bound on what a server may ask a client to compute (and a client may store). */
export const SCRAM_ITERATIONS_MAX = 10_000_000;
export const SCRAM_ITERATIONS_DEFAULT = 8192;
/** Longest SASL message (SCRAM or PLAIN), in bytes of its UTF-8 encoding. */
export const SCRAM_MESSAGE_BYTES_MAX = 2048;
export const SCRAM_NONCE_CHARS_MAX = 256;
/** The broker's part of the nonce (newNonce: 18 random bytes as base64). */
export const SCRAM_SERVER_NONCE_CHARS = 24;
/**
 * Longest client nonce: the broker appends its own part, and the whole nonce must stay within
 * SCRAM_NONCE_CHARS_MAX, else the exchange would fail only at the client-final-message.
 */
export const SCRAM_CLIENT_NONCE_CHARS_MAX = SCRAM_NONCE_CHARS_MAX - SCRAM_SERVER_NONCE_CHARS;
export const SCRAM_USERNAME_BYTES_MAX = 255;
const KEY_BYTES = 32;
const SALT_BYTES = 16;

/** What the metadata store keeps per user: never the password. */
export interface ScramCredential {
  mechanism: typeof SCRAM_SHA_256;
  /** base64 */
  salt: string;
  iterations: number;
  /** base64 of H(ClientKey) */
  storedKey: string;
  /** base64 of HMAC(SaltedPassword, "Server Key") */
  serverKey: string;
}

export class ScramFormatError extends Error {}

export interface ClientFirst {
  gs2Header: string;
  username: string;
  clientNonce: string;
  /** client-first-message-bare, part of the AuthMessage. */
  bare: string;
}

export interface ServerFirst {
  nonce: string;
  salt: Buffer;
  iterations: number;
}

export interface ClientFinal {
  channelBinding: string;
  nonce: string;
  proof: Buffer;
  /** client-final-message-without-proof, part of the AuthMessage. */
  withoutProof: string;
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

export function decodeBase64Strict(s: string, what: string): Buffer {
  if (!BASE64.test(s)) throw new ScramFormatError(`${what} is not base64`);
  return Buffer.from(s, 'base64');
}

function checkLength(msg: string, what: string): void {
  if (Buffer.byteLength(msg, 'utf8') > SCRAM_MESSAGE_BYTES_MAX) throw new ScramFormatError(`${what} is longer than ${SCRAM_MESSAGE_BYTES_MAX} bytes`);
}

function checkNonce(nonce: string, what: string): void {
  if (nonce.length < 1 || nonce.length > SCRAM_NONCE_CHARS_MAX) throw new ScramFormatError(`${what} must be 1 to ${SCRAM_NONCE_CHARS_MAX} characters`);
  for (let i = 0; i < nonce.length; i++) {
    const c = nonce.charCodeAt(i);
    if (c < 0x21 || c > 0x7e || c === 0x2c) throw new ScramFormatError(`${what} has a character outside printable ASCII without ','`);
  }
}

/** `=2C` → `,`, `=3D` → `=`; any other `=` is an error (RFC 5802 §5.1). */
export function decodeSaslName(s: string): string {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === ',') throw new ScramFormatError('username contains an unescaped ","');
    if (c !== '=') {
      out += c;
      continue;
    }
    const esc = s.slice(i + 1, i + 3);
    if (esc === '2C') out += ',';
    else if (esc === '3D') out += '=';
    else throw new ScramFormatError('username contains "=" not followed by 2C or 3D');
    i += 2;
  }
  return out;
}

export function encodeSaslName(s: string): string {
  return s.replaceAll('=', '=3D').replaceAll(',', '=2C');
}

/** Splits `k=v,k=v` into attributes, checking each is a single letter and '='. */
function attributes(s: string, what: string): Array<[string, string]> {
  return s.split(',').map((part) => {
    if (part.length < 2 || part[1] !== '=' || !/^[a-zA-Z]$/.test(part[0]!)) throw new ScramFormatError(`${what}: attribute ${JSON.stringify(part.slice(0, 16))} is not of the form x=value`);
    return [part[0]!, part.slice(2)];
  });
}

export function checkUsername(username: string): void {
  if (username.length === 0) throw new ScramFormatError('username is empty');
  if (Buffer.byteLength(username, 'utf8') > SCRAM_USERNAME_BYTES_MAX) throw new ScramFormatError(`username is longer than ${SCRAM_USERNAME_BYTES_MAX} bytes`);
  if (/[\u0000-\u001f\u007f]/.test(username)) throw new ScramFormatError('username contains a control character');
}

/** client-first-message = gs2-header client-first-message-bare, e.g. `n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL`. */
export function parseClientFirst(msg: string): ClientFirst {
  checkLength(msg, 'client-first-message');
  const m = /^([ny]|p=[^,]*),(a=[^,]*)?,/.exec(msg);
  if (!m) throw new ScramFormatError('client-first-message does not start with a GS2 header (n,, or y,,)');
  if (m[1]!.startsWith('p=')) throw new ScramFormatError('channel binding (p=) is not supported; send n,,');
  const gs2Header = m[0];
  const bare = msg.slice(gs2Header.length);
  const attrs = attributes(bare, 'client-first-message');
  if (attrs[0]![0] === 'm') throw new ScramFormatError('mandatory extensions (m=) are not supported');
  if (attrs.length < 2 || attrs[0]![0] !== 'n' || attrs[1]![0] !== 'r') throw new ScramFormatError('client-first-message-bare must be n=USERNAME,r=NONCE');
  const username = decodeSaslName(attrs[0]![1]);
  checkUsername(username);
  const clientNonce = attrs[1]![1];
  checkNonce(clientNonce, 'client nonce');
  if (clientNonce.length > SCRAM_CLIENT_NONCE_CHARS_MAX) throw new ScramFormatError(`client nonce is longer than ${SCRAM_CLIENT_NONCE_CHARS_MAX} characters (the broker appends ${SCRAM_SERVER_NONCE_CHARS}, and a nonce is at most ${SCRAM_NONCE_CHARS_MAX})`);
  if (m[2] !== undefined && m[2] !== '' && decodeSaslName(m[2].slice(2)) !== username) throw new ScramFormatError('authzid (a=) must be empty or the username');
  return { gs2Header, username, clientNonce, bare };
}

export function formatClientFirst(username: string, clientNonce: string): { message: string; bare: string } {
  const bare = `n=${encodeSaslName(username)},r=${clientNonce}`;
  return { message: `n,,${bare}`, bare };
}

/** server-first-message: `r=NONCE,s=SALT,i=ITERATIONS`. */
export function parseServerFirst(msg: string): ServerFirst {
  checkLength(msg, 'server-first-message');
  const attrs = attributes(msg, 'server-first-message');
  if (attrs[0]?.[0] === 'm') throw new ScramFormatError('mandatory extensions (m=) are not supported');
  if (attrs.length < 3 || attrs[0]![0] !== 'r' || attrs[1]![0] !== 's' || attrs[2]![0] !== 'i') throw new ScramFormatError('server-first-message must be r=NONCE,s=SALT,i=ITERATIONS');
  const nonce = attrs[0]![1];
  checkNonce(nonce, 'nonce');
  const salt = decodeBase64Strict(attrs[1]![1], 'salt');
  if (salt.length === 0) throw new ScramFormatError('salt is empty');
  const iRaw = attrs[2]![1];
  if (!/^[1-9]\d{0,8}$/.test(iRaw)) throw new ScramFormatError('iteration count is not a positive decimal integer');
  const iterations = Number(iRaw);
  if (iterations < SCRAM_ITERATIONS_MIN || iterations > SCRAM_ITERATIONS_MAX) throw new ScramFormatError(`iteration count ${iterations} is outside ${SCRAM_ITERATIONS_MIN}..${SCRAM_ITERATIONS_MAX}`);
  return { nonce, salt, iterations };
}

export function formatServerFirst(nonce: string, salt: Buffer, iterations: number): string {
  return `r=${nonce},s=${salt.toString('base64')},i=${iterations}`;
}

/** client-final-message: `c=biws,r=NONCE,p=PROOF` (the proof is always last). */
export function parseClientFinal(msg: string): ClientFinal {
  checkLength(msg, 'client-final-message');
  const at = msg.lastIndexOf(',p=');
  if (at < 0) throw new ScramFormatError('client-final-message has no proof (,p=)');
  const withoutProof = msg.slice(0, at);
  const attrs = attributes(withoutProof, 'client-final-message');
  if (attrs.length < 2 || attrs[0]![0] !== 'c' || attrs[1]![0] !== 'r') throw new ScramFormatError('client-final-message must be c=BINDING,r=NONCE,p=PROOF');
  const channelBinding = decodeBase64Strict(attrs[0]![1], 'channel binding').toString('latin1');
  const nonce = attrs[1]![1];
  checkNonce(nonce, 'nonce');
  const proof = decodeBase64Strict(msg.slice(at + 3), 'proof');
  if (proof.length !== KEY_BYTES) throw new ScramFormatError(`proof is ${proof.length} bytes, not ${KEY_BYTES}`);
  return { channelBinding, nonce, proof, withoutProof };
}

/** server-final-message: `v=SIGNATURE`, or `e=REASON` on failure. */
export function parseServerFinal(msg: string): { signature: Buffer } | { error: string } {
  checkLength(msg, 'server-final-message');
  if (msg.startsWith('e=')) return { error: msg.slice(2) };
  if (!msg.startsWith('v=')) throw new ScramFormatError('server-final-message must be v=SIGNATURE or e=ERROR');
  const signature = decodeBase64Strict(msg.slice(2).split(',')[0]!, 'server signature');
  if (signature.length !== KEY_BYTES) throw new ScramFormatError(`server signature is ${signature.length} bytes, not ${KEY_BYTES}`);
  return { signature };
}

// --- Key derivation (RFC 5802 §3) -----------------------------------------------------------

export function hmac(key: Buffer, text: string | Buffer): Buffer {
  return createHmac('sha256', key).update(text).digest();
}

export function sha256(b: Buffer): Buffer {
  return createHash('sha256').update(b).digest();
}

/** Hi(password, salt, i): PBKDF2-HMAC-SHA-256, off the event loop (it takes milliseconds). */
export function saltedPassword(password: string, salt: Buffer, iterations: number): Promise<Buffer> {
  return new Promise((resolve, reject) => pbkdf2(Buffer.from(password, 'utf8'), salt, iterations, KEY_BYTES, 'sha256', (e, key) => (e ? reject(e) : resolve(key))));
}

export function xor(a: Buffer, b: Buffer): Buffer {
  const out = Buffer.alloc(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]! ^ b[i]!;
  return out;
}

export function keysOf(salted: Buffer): { clientKey: Buffer; storedKey: Buffer; serverKey: Buffer } {
  const clientKey = hmac(salted, 'Client Key');
  return { clientKey, storedKey: sha256(clientKey), serverKey: hmac(salted, 'Server Key') };
}

export async function makeCredential(password: string, iterations = SCRAM_ITERATIONS_DEFAULT, salt: Buffer = randomBytes(SALT_BYTES)): Promise<ScramCredential> {
  if (!Number.isSafeInteger(iterations) || iterations < SCRAM_ITERATIONS_MIN || iterations > SCRAM_ITERATIONS_MAX) throw new RangeError(`iterations must be ${SCRAM_ITERATIONS_MIN}..${SCRAM_ITERATIONS_MAX}, got ${iterations}`);
  const { storedKey, serverKey } = keysOf(await saltedPassword(password, salt, iterations));
  return { mechanism: SCRAM_SHA_256, salt: salt.toString('base64'), iterations, storedKey: storedKey.toString('base64'), serverKey: serverKey.toString('base64') };
}

export function authMessage(clientFirstBare: string, serverFirst: string, clientFinalWithoutProof: string): string {
  return `${clientFirstBare},${serverFirst},${clientFinalWithoutProof}`;
}

/** The broker's check of a proof: H(proof XOR HMAC(StoredKey, AuthMessage)) == StoredKey. */
export function verifyProof(storedKey: Buffer, auth: string, proof: Buffer): boolean {
  if (proof.length !== storedKey.length) return false;
  const clientKey = xor(proof, hmac(storedKey, auth));
  return timingSafeEqual(sha256(clientKey), storedKey);
}

/** A fresh nonce: 18 random bytes as base64 (SCRAM_SERVER_NONCE_CHARS = 24 characters, never ','). */
export function newNonce(): string {
  return randomBytes((SCRAM_SERVER_NONCE_CHARS / 4) * 3).toString('base64');
}

/** Whether a stored value is a well-formed credential (the stores check what they read). */
export function isScramCredential(v: unknown): v is ScramCredential {
  if (typeof v !== 'object' || v === null) return false;
  const c = v as Record<string, unknown>;
  return c.mechanism === SCRAM_SHA_256 && typeof c.salt === 'string' && BASE64.test(c.salt) && Number.isSafeInteger(c.iterations) && (c.iterations as number) >= SCRAM_ITERATIONS_MIN && (c.iterations as number) <= SCRAM_ITERATIONS_MAX
    && typeof c.storedKey === 'string' && BASE64.test(c.storedKey) && Buffer.from(c.storedKey, 'base64').length === KEY_BYTES
    && typeof c.serverKey === 'string' && BASE64.test(c.serverKey) && Buffer.from(c.serverKey, 'base64').length === KEY_BYTES;
}
