// SPEC §4.2: the broker and the reference client write the shortest MessagePack form of every
// value. The worked examples of §13 depend on it, so it is pinned here at each format boundary.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeControl } from '../../protocol/body.ts';

const hex = (v: unknown) => Buffer.from(encodeControl(v)).toString('hex');

test('integers take the smallest format that holds them', () => {
  assert.equal(hex(0), '00');
  assert.equal(hex(127), '7f'); // positive fixint
  assert.equal(hex(128), 'cc80'); // uint 8
  assert.equal(hex(255), 'ccff');
  assert.equal(hex(256), 'cd0100'); // uint 16
  assert.equal(hex(65536), 'ce00010000'); // uint 32
  assert.equal(hex(2 ** 32), 'cf0000000100000000'); // uint 64
  assert.equal(hex(-1), 'ff'); // negative fixint
  assert.equal(hex(-32), 'e0');
  assert.equal(hex(-33), 'd0df'); // int 8
  assert.equal(hex(-129), 'd1ff7f'); // int 16
  assert.equal(hex(-32769), 'd2ffff7fff'); // int 32
  assert.equal(hex(-(2 ** 31) - 1), 'd3ffffffff7fffffff'); // int 64
});

test('strings, arrays and maps take their fix forms first, then 8/16/32-bit lengths', () => {
  assert.equal(hex('a'.repeat(31)).slice(0, 2), 'bf'); // fixstr
  assert.equal(hex('a'.repeat(32)).slice(0, 4), 'd920'); // str 8
  assert.equal(hex('a'.repeat(256)).slice(0, 6), 'da0100'); // str 16
  assert.equal(hex(new Array(15).fill(0)).slice(0, 2), '9f'); // fixarray
  assert.equal(hex(new Array(16).fill(0)).slice(0, 6), 'dc0010'); // array 16
  const map = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, 0]));
  assert.equal(hex(map(15)).slice(0, 2), '8f'); // fixmap
  assert.equal(hex(map(16)).slice(0, 6), 'de0010'); // map 16
});
