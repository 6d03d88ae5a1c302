import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DEFAULT_MAX_FRAME_BYTES, FrameDecoder, FrameTooLargeError } from '../../protocol/frame.ts';

function encodeFrames(payloads: Buffer[]): Buffer {
  return Buffer.concat(payloads.flatMap((p) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(p.length, 0);
    return [len, p];
  }));
}

function collect(dec: FrameDecoder, chunks: Buffer[]): Buffer[] {
  const out: Buffer[] = [];
  for (const c of chunks) dec.push(c, (f) => out.push(Buffer.from(f)));
  return out;
}

const PAYLOADS = [Buffer.from('hello'), Buffer.alloc(0), Buffer.from([1, 2, 3, 4, 5, 6, 7, 8, 9]), Buffer.alloc(300, 0xab), Buffer.from('z')];
const STREAM = encodeFrames(PAYLOADS);

describe('FrameDecoder', () => {
  test('the default limit is 64 MiB', () => {
    assert.equal(DEFAULT_MAX_FRAME_BYTES, 67_108_864);
  });

  test('many frames in one chunk, zero-length frames included', () => {
    const dec = new FrameDecoder();
    assert.deepEqual(collect(dec, [STREAM]), PAYLOADS);
    assert.ok(dec.idle);
  });

  test('a stream split in two at every byte boundary', () => {
    for (let cut = 0; cut <= STREAM.length; cut++) {
      const dec = new FrameDecoder();
      assert.deepEqual(collect(dec, [STREAM.subarray(0, cut), STREAM.subarray(cut)]), PAYLOADS, `cut at ${cut}`);
      assert.ok(dec.idle);
    }
  });

  test('a stream split in three at every pair of boundaries (small frames)', () => {
    const s = encodeFrames([Buffer.from('ab'), Buffer.alloc(0), Buffer.from('cde')]);
    for (let i = 0; i <= s.length; i++) {
      for (let j = i; j <= s.length; j++) {
        const got = collect(new FrameDecoder(), [s.subarray(0, i), s.subarray(i, j), s.subarray(j)]);
        assert.deepEqual(got.map(String), ['ab', '', 'cde'], `cuts at ${i}, ${j}`);
      }
    }
  });

  test('one byte at a time', () => {
    const dec = new FrameDecoder();
    const chunks = [...STREAM].map((b) => Buffer.from([b]));
    assert.deepEqual(collect(dec, chunks), PAYLOADS);
  });

  test('idle is false while a length or a frame is partly buffered', () => {
    const dec = new FrameDecoder();
    collect(dec, [STREAM.subarray(0, 2)]);
    assert.equal(dec.idle, false);
    collect(dec, [STREAM.subarray(2, 6)]);
    assert.equal(dec.idle, false);
    collect(dec, [STREAM.subarray(6)]);
    assert.ok(dec.idle);
  });

  test('a zero-length frame is delivered as soon as its length completes', () => {
    const dec = new FrameDecoder();
    const got = collect(dec, [Buffer.from([0, 0]), Buffer.from([0, 0])]);
    assert.deepEqual(got, [Buffer.alloc(0)]);
  });

  test('frames exactly at the limit pass; one byte more throws FrameTooLargeError', () => {
    const dec = new FrameDecoder(16);
    assert.deepEqual(collect(dec, [encodeFrames([Buffer.alloc(16, 1)])]), [Buffer.alloc(16, 1)]);
    const big = encodeFrames([Buffer.alloc(17)]);
    // Whole length in one chunk (fast path) and length split over chunks.
    for (const chunks of [[big], [big.subarray(0, 3), big.subarray(3)], [...big.subarray(0, 4)].map((b) => Buffer.from([b]))]) {
      assert.throws(() => collect(new FrameDecoder(16), chunks), (e: unknown) => {
        assert.ok(e instanceof FrameTooLargeError);
        assert.equal(e.length, 17);
        assert.equal(e.maxBytes, 16);
        assert.match(e.message, /17 bytes exceeds the limit of 16/);
        return true;
      });
    }
  });

  test('the limit check happens before the payload arrives (no 4 GiB allocation)', () => {
    assert.throws(() => collect(new FrameDecoder(), [Buffer.from([0xff, 0xff, 0xff, 0xff])]), FrameTooLargeError);
  });

  test('frames before an oversized one are delivered', () => {
    const s = Buffer.concat([encodeFrames([Buffer.from('ok')]), Buffer.from([0, 0, 1, 0])]);
    const got: string[] = [];
    assert.throws(() => new FrameDecoder(100).push(s, (f) => got.push(String(f))), FrameTooLargeError);
    assert.deepEqual(got, ['ok']);
  });

  test('a frame below the minimum throws RangeError', () => {
    assert.throws(() => collect(new FrameDecoder(100, 10), [encodeFrames([Buffer.alloc(9)])]), RangeError);
    assert.deepEqual(collect(new FrameDecoder(100, 10), [encodeFrames([Buffer.alloc(10)])]), [Buffer.alloc(10)]);
  });
});
