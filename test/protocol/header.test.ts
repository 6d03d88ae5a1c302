import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CLIENT_ID_MAX_BYTES, decodeRequestHeader, decodeResponseHeader, requestHeaderSize, writeRequestHeader } from '../../protocol/header.ts';

function encode(apiKey: number, apiVersion: number, correlationId: number, clientId: string | null, tail = Buffer.alloc(0)): Buffer {
  const id = clientId === null ? null : Buffer.from(clientId, 'utf8');
  const buf = Buffer.alloc(requestHeaderSize(id) + tail.length);
  const end = writeRequestHeader(buf, 0, apiKey, apiVersion, correlationId, id);
  assert.equal(end, requestHeaderSize(id));
  tail.copy(buf, end);
  return buf;
}

describe('request header', () => {
  test('round-trips null, empty, ASCII, Unicode and 255-byte client ids', () => {
    for (const id of [null, '', 'spec', 'çlïént-🚀', 'x'.repeat(CLIENT_ID_MAX_BYTES)]) {
      const buf = encode(5, 0, 7, id, Buffer.from([0xaa]));
      const h = decodeRequestHeader(buf);
      assert.deepEqual({ ...h }, { apiKey: 5, apiVersion: 0, correlationId: 7, clientId: id, bodyOffset: buf.length - 1 });
    }
  });

  test('exact bytes of a header with clientId "spec"', () => {
    assert.equal(encode(5, 0, 7, 'spec').toString('hex'), '00050000000000070004' + Buffer.from('spec').toString('hex'));
    assert.equal(encode(1, 0, -2, null).toString('hex'), '00010000fffffffeffff');
  });

  test('signed fields keep their sign', () => {
    const h = decodeRequestHeader(encode(-1, -3, -(2 ** 31), null));
    assert.equal(h.apiKey, -1);
    assert.equal(h.apiVersion, -3);
    assert.equal(h.correlationId, -(2 ** 31));
    assert.equal(h.bodyOffset, 10);
  });

  test('writes at an offset', () => {
    const buf = Buffer.alloc(20);
    const end = writeRequestHeader(buf, 3, 6, 0, 9, Buffer.from('ab'));
    assert.equal(end, 15);
    assert.equal(decodeRequestHeader(buf.subarray(3)).clientId, 'ab');
  });

  test('rejects a frame shorter than 10 bytes', () => {
    for (let n = 0; n < 10; n++) assert.throws(() => decodeRequestHeader(Buffer.alloc(n)), RangeError);
  });

  test('rejects clientIdLength below -1, above 255, or past the end of the frame', () => {
    for (const len of [-2, -32768, 256, 32767]) {
      const buf = Buffer.alloc(10 + 300);
      buf.writeInt16BE(len, 8);
      assert.throws(() => decodeRequestHeader(buf), /clientId length -?\d+ is invalid/);
    }
    const short = encode(0, 0, 1, 'abcd').subarray(0, 13);
    assert.throws(() => decodeRequestHeader(short), RangeError);
  });
});

describe('response header', () => {
  test('decodes correlationId and a signed errorCode', () => {
    assert.deepEqual(decodeResponseHeader(Buffer.from('ffffffff0005', 'hex')), { correlationId: -1, errorCode: 5 });
    assert.deepEqual(decodeResponseHeader(Buffer.from('00000007ffff', 'hex')), { correlationId: 7, errorCode: -1 });
  });

  test('rejects fewer than 6 bytes', () => {
    assert.throws(() => decodeResponseHeader(Buffer.alloc(5)), RangeError);
  });
});
