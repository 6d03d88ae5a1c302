import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { crc32c } from '../../protocol/crc32c.ts';
import { refCrc32c, utf8 } from './helpers.ts';

describe('crc32c', () => {
  test('check value of "123456789" is 0xE3069283', () => {
    assert.equal(crc32c(utf8.encode('123456789')), 0xe3069283);
  });

  test('is unsigned and 0 for no bytes', () => {
    assert.equal(crc32c(new Uint8Array(0)), 0);
    assert.ok(crc32c(Uint8Array.from([0xff, 0xff, 0xff, 0xff])) >= 0);
  });

  test('known vectors (RFC 3720 B.4)', () => {
    assert.equal(crc32c(new Uint8Array(32)), 0x8a9136aa);
    assert.equal(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43);
    assert.equal(crc32c(Uint8Array.from({ length: 32 }, (_, i) => i)), 0x46dd794e);
  });

  test('a sub-range equals the CRC of a copy of it', () => {
    const b = utf8.encode('xx123456789yy');
    assert.equal(crc32c(b, 2, 11), 0xe3069283);
  });

  test('matches the bitwise reference algorithm of SPEC.md on random input', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (b) => crc32c(b) === refCrc32c(b)), { numRuns: 500 });
  });
});
