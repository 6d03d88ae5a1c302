/**
 * SCRAM-SHA-256 (protocol/sasl/scram.ts) against RFC 7677's test vector, the SPEC §2.6 worked
 * example byte for byte, and fast-check: the parsers of the four SCRAM messages are total
 * (any input parses or throws ScramFormatError, nothing else), what the formatters write
 * parses back to the same values, and a valid proof verifies while any changed byte does not.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { encodeControl } from '../../protocol/body.ts';
import {
  authMessage, decodeSaslName, encodeSaslName, formatClientFirst, formatServerFirst, hmac, isScramCredential, keysOf, makeCredential, parseClientFinal, parseClientFirst, parseServerFinal, parseServerFirst, saltedPassword, ScramFormatError, verifyProof, xor,
} from '../../protocol/sasl/scram.ts';

const SCALE = Number(process.env.FUZZ_SCALE ?? 1);
const runs = (n: number): number => Math.max(1, Math.round(n * SCALE));

// RFC 7677 §3.
const USER = 'user';
const PASSWORD = 'pencil';
const CLIENT_NONCE = 'rOprNGfwEbeRWgbNEkqO';
const SALT = Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64');
const NONCE = `${CLIENT_NONCE}%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0`;
const SERVER_FIRST = `r=${NONCE},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096`;
const FINAL_WITHOUT_PROOF = `c=biws,r=${NONCE}`;
const PROOF = 'dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=';
const SERVER_SIGNATURE = '6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=';

describe('SCRAM-SHA-256: RFC 7677 test vector', () => {
  test('client proof and server signature', async () => {
    const first = formatClientFirst(USER, CLIENT_NONCE);
    assert.equal(first.message, 'n,,n=user,r=rOprNGfwEbeRWgbNEkqO');
    const { clientKey, storedKey, serverKey } = keysOf(await saltedPassword(PASSWORD, SALT, 4096));
    const auth = authMessage(first.bare, SERVER_FIRST, FINAL_WITHOUT_PROOF);
    const proof = xor(clientKey, hmac(storedKey, auth));
    assert.equal(proof.toString('base64'), PROOF);
    assert.equal(hmac(serverKey, auth).toString('base64'), SERVER_SIGNATURE);
    // What the broker stores verifies it, and the password appears nowhere in it.
    const credential = await makeCredential(PASSWORD, 4096, SALT);
    assert.ok(isScramCredential(credential));
    assert.ok(verifyProof(Buffer.from(credential.storedKey, 'base64'), auth, proof));
    assert.ok(!JSON.stringify(credential).includes(PASSWORD));
    const final = parseClientFinal(`${FINAL_WITHOUT_PROOF},p=${PROOF}`);
    assert.equal(final.nonce, NONCE);
    assert.equal(final.channelBinding, 'n,,');
    assert.equal(final.withoutProof, FINAL_WITHOUT_PROOF);
    assert.deepEqual(parseServerFinal(`v=${SERVER_SIGNATURE}`), { signature: Buffer.from(SERVER_SIGNATURE, 'base64') });
    const sf = parseServerFirst(SERVER_FIRST);
    assert.equal(sf.nonce, NONCE);
    assert.equal(sf.iterations, 4096);
    assert.ok(sf.salt.equals(SALT));
  });

  test('SPEC §2.6 shows these exchanges byte for byte', () => {
    const spec = readFileSync(new URL('../../protocol/SPEC.md', import.meta.url), 'utf8');
    const section = spec.slice(spec.indexOf('### 2.6 Authentication'), spec.indexOf('## 3. Headers'));
    // Every hex block of the section, as one run of hex digits each.
    const blocks = [...section.matchAll(/```(hex|text)\n([\s\S]*?)```/g)].map((m) =>
      m[1] === 'hex' ? m[2]!.split('\n').map((l) => l.split('#')[0]!.replace(/\s+/g, '')).join('') : m[2]!.replace(/\s+/g, ''));
    const req = (apiKey: number, corr: number, control: unknown): string => {
      const c = encodeControl(control);
      const b = Buffer.alloc(18 + c.length);
      b.writeUInt32BE(b.length - 4, 0);
      b.writeInt16BE(apiKey, 4);
      b.writeInt16BE(0, 6);
      b.writeInt32BE(corr, 8);
      b.writeInt16BE(-1, 12);
      b.writeUInt32BE(c.length, 14);
      b.set(c, 18);
      return b.toString('hex');
    };
    const res = (corr: number, control: unknown): string => {
      const c = encodeControl(control);
      const b = Buffer.alloc(14 + c.length);
      b.writeUInt32BE(b.length - 4, 0);
      b.writeInt32BE(corr, 4);
      b.writeInt16BE(0, 8);
      b.writeUInt32BE(c.length, 10);
      b.set(c, 14);
      return b.toString('hex');
    };
    assert.deepEqual(blocks, [
      req(27, 1, { mechanism: 'SCRAM-SHA-256' }),
      res(1, { mechanisms: ['SCRAM-SHA-256'] }),
      req(28, 2, { authBytes: `n,,n=${USER},r=${CLIENT_NONCE}` }),
      res(2, { authBytes: SERVER_FIRST, complete: false }),
      req(28, 3, { authBytes: `${FINAL_WITHOUT_PROOF},p=${PROOF}` }),
      res(3, { authBytes: `v=${SERVER_SIGNATURE}`, complete: true }),
    ]);
  });
});

describe('SCRAM message parsers', () => {
  test('documented refusals', () => {
    const bad: Array<[() => unknown, RegExp]> = [
      [() => parseClientFirst('p=tls-unique,,n=user,r=abc'), /channel binding/],
      [() => parseClientFirst('n,,m=ext,n=user,r=abc'), /mandatory extensions/],
      [() => parseClientFirst('n,,n=us=2Xer,r=abc'), /2C or 3D/],
      [() => parseClientFirst('n,,n=,r=abc'), /empty/],
      [() => parseClientFirst('n,,n=user,r=a b'), /printable/],
      [() => parseClientFirst('n,a=other,n=user,r=abc'), /authzid/],
      [() => parseClientFirst(`n,,n=user,r=${'x'.repeat(5000)}`), /longer than/],
      [() => parseServerFirst('r=abc,s=!!!!,i=4096'), /not base64/],
      [() => parseServerFirst('r=abc,s=AAAA,i=100'), /outside/],
      [() => parseClientFinal('c=biws,r=abc'), /no proof/],
      [() => parseClientFinal('c=biws,r=abc,p=AAAA'), /not 32/],
    ];
    for (const [f, re] of bad) assert.throws(f, (e: Error) => e instanceof ScramFormatError && re.test(e.message), String(f));
  });

  /** Any exception but ScramFormatError fails the property. */
  const total = (parse: (s: string) => unknown) => (s: string) => {
    try {
      parse(s);
    } catch (e) {
      if (!(e instanceof ScramFormatError)) throw e;
    }
  };
  const scramish = fc.oneof(
    fc.string({ maxLength: 300 }),
    fc.string({ unit: 'binary', maxLength: 300 }),
    // Mutations of valid messages: the interesting inputs sit close to them.
    fc.tuple(fc.constantFrom(`n,,n=user,r=${CLIENT_NONCE}`, SERVER_FIRST, `${FINAL_WITHOUT_PROOF},p=${PROOF}`, `v=${SERVER_SIGNATURE}`), fc.nat(200), fc.nat(5), fc.string({ maxLength: 5 }))
      .map(([m, at, del, ins]) => m.slice(0, at % (m.length + 1)) + ins + m.slice(at % (m.length + 1) + del)),
    fc.array(fc.tuple(fc.constantFrom('n', 'r', 's', 'i', 'c', 'p', 'v', 'e', 'm', 'a', 'x', ''), fc.string({ maxLength: 40 })), { maxLength: 8 })
      .map((attrs) => attrs.map(([k, v]) => `${k}=${v}`).join(',')),
  );

  test('every parser is total: a message parses or throws ScramFormatError', () => {
    fc.assert(fc.property(scramish, (s) => {
      total(parseClientFirst)(s);
      total(parseServerFirst)(s);
      total(parseClientFinal)(s);
      total(parseServerFinal)(s);
      total(decodeSaslName)(s);
      total(parseClientFirst)(`n,,${s}`);
      total(parseClientFinal)(`c=biws,r=${s}`);
    }), { numRuns: runs(20_000) });
  });

  test('formatted messages parse back to the same values', () => {
    const username = fc.string({ minLength: 1, maxLength: 60 }).filter((u) => !/[\u0000-\u001f\u007f]/.test(u));
    const nonce = fc.stringMatching(/^[\x21-\x2b\x2d-\x7e]{1,64}$/);
    fc.assert(fc.property(username, nonce, fc.uint8Array({ minLength: 1, maxLength: 40 }), fc.integer({ min: 4096, max: 10_000_000 }), (u, n, salt, i) => {
      const first = parseClientFirst(formatClientFirst(u, n).message);
      assert.equal(first.username, u);
      assert.equal(decodeSaslName(encodeSaslName(u)), u);
      assert.equal(first.clientNonce, n);
      const sf = parseServerFirst(formatServerFirst(n, Buffer.from(salt), i));
      assert.equal(sf.nonce, n);
      assert.ok(sf.salt.equals(Buffer.from(salt)));
      assert.equal(sf.iterations, i);
    }), { numRuns: runs(5_000) });
  });

  test('a proof with any bit changed does not verify', async () => {
    const { clientKey, storedKey } = keysOf(await saltedPassword(PASSWORD, SALT, 4096));
    const auth = authMessage(`n=user,r=${CLIENT_NONCE}`, SERVER_FIRST, FINAL_WITHOUT_PROOF);
    const proof = xor(clientKey, hmac(storedKey, auth));
    assert.ok(verifyProof(storedKey, auth, proof));
    fc.assert(fc.property(fc.nat(proof.length * 8 - 1), (bit) => {
      const p = Buffer.from(proof);
      p[bit >> 3] ^= 1 << (bit & 7);
      return !verifyProof(storedKey, auth, p);
    }), { numRuns: runs(256) });
    assert.ok(!verifyProof(storedKey, `${auth}x`, proof), 'another AuthMessage (another nonce) does not verify');
  });
});
