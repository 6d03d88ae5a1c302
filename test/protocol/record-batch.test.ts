import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { crc32c } from '../../protocol/crc32c.ts';
import { ErrorCode } from '../../protocol/errors.ts';
import {
  BATCH_HEADER_BYTES, BatchBuilder, baseOffsetAt, batchSizeAt, buildBatch, decodeRecords, lastOffsetAt, maxTimestampAt,
  addSequence, ATTR_TRANSACTIONAL, buildControlBatch, isControlAt, isTransactionalAt, newBatchInfo, Off, readControlMarker, readInt32, readInt64, validateBatch, writeInt32, writeInt64, type RecordInput,
  HEADER_DELIVER_AT_MS,
  HEADER_TAGS,
} from '../../protocol/record-batch.ts';
import { bytesOf, rawBatch, record, reseal, simpleRecordBody, utf8 } from './helpers.ts';

const T0 = 1_700_000_000_000;

function validate(b: Uint8Array, pos = 0, end = b.length) {
  const info = newBatchInfo();
  const code = validateBatch(b, pos, end, info);
  return { code, info };
}

function assertRejected(b: Uint8Array, code: ErrorCode, problem: RegExp): void {
  const r = validate(b);
  assert.equal(r.code, code, `expected code ${code}, got ${r.code} (${r.info.problem})`);
  assert.match(r.info.problem, problem);
}

const RECORDS: RecordInput[] = [
  { key: utf8.encode('k1'), value: utf8.encode('hello'), timestamp: T0 },
  { key: null, value: utf8.encode('world'), timestamp: T0 + 5 },
  { key: utf8.encode('ключ'), value: null, timestamp: T0 - 3, headers: [{ key: 'trace-id', value: utf8.encode('abc') }, { key: 'ü∑', value: null }] },
  { key: new Uint8Array(0), value: new Uint8Array(0), timestamp: T0 + 1, headers: [{ key: '', value: new Uint8Array(0) }] },
  { value: utf8.encode('日本語 🚀'), timestamp: T0 + 2 },
];

describe('record batch: build, validate, decode', () => {
  test('round-trip keeps keys, values, headers, timestamps and offsets; null and empty stay distinct', () => {
    const b = buildBatch(RECORDS);
    const { code, info } = validate(b);
    assert.equal(code, ErrorCode.NONE, info.problem);
    assert.equal(info.problem, '');
    assert.equal(info.size, b.length);
    assert.equal(info.recordCount, RECORDS.length);
    assert.equal(info.lastOffsetDelta, RECORDS.length - 1);
    assert.equal(info.baseTimestamp, T0);
    assert.equal(info.maxTimestamp, T0 + 5);
    const out = decodeRecords(b, 0);
    assert.equal(out.length, RECORDS.length);
    out.forEach((r, i) => {
      const want = RECORDS[i]!;
      assert.equal(r.offset, i);
      assert.equal(r.timestamp, want.timestamp);
      assert.deepEqual(r.key === null ? null : [...r.key], want.key == null ? null : [...want.key]);
      assert.deepEqual(r.value === null ? null : [...r.value], want.value === null ? null : [...want.value]);
      assert.deepEqual(r.headers.map((h) => ({ key: h.key, value: h.value && [...h.value] })), (want.headers ?? []).map((h) => ({ key: h.key, value: h.value && [...h.value] })));
    });
    assert.equal(Buffer.from(out[4]!.value!).toString(), '日本語 🚀');
    assert.equal(out[2]!.headers[1]!.key, 'ü∑');
  });

  test('header fields are what SPEC.md tells producers to send', () => {
    const b = buildBatch(RECORDS);
    assert.equal(readInt64(b, Off.baseOffset), 0);
    assert.equal(readInt32(b, Off.batchLength), b.length - 12);
    assert.equal(readInt32(b, Off.partitionLeaderEpoch), -1);
    assert.equal(b[Off.magic], 2);
    assert.equal(readInt32(b, Off.crc) >>> 0, crc32c(b, 21, b.length));
    assert.equal((b[Off.attributes]! << 8) | b[Off.attributes + 1]!, 0);
    assert.equal(readInt32(b, Off.lastOffsetDelta), RECORDS.length - 1);
    assert.equal(readInt64(b, Off.producerId), -1);
    assert.equal(Buffer.from(b).readInt16BE(Off.producerEpoch), -1);
    assert.equal(readInt32(b, Off.baseSequence), -1);
    assert.equal(readInt32(b, Off.recordCount), RECORDS.length);
    assert.equal(batchSizeAt(b, 0), b.length);
    assert.equal(maxTimestampAt(b, 0), T0 + 5);
  });

  test('rewriting baseOffset keeps the CRC valid and shifts every offset', () => {
    const b = buildBatch(RECORDS);
    const before = Buffer.from(b);
    for (const base of [5, 2 ** 31 + 7, 123_456_789_012_345]) {
      writeInt64(b, Off.baseOffset, base);
      assert.equal(validate(b).code, ErrorCode.NONE);
      assert.equal(baseOffsetAt(b, 0), base);
      assert.equal(lastOffsetAt(b, 0), base + RECORDS.length - 1);
      assert.deepEqual(decodeRecords(b, 0).map((r) => r.offset), RECORDS.map((_, i) => base + i));
      // Only bytes 0-7 changed.
      assert.deepEqual(Buffer.from(b).subarray(8), before.subarray(8));
    }
  });

  test('validates a batch in the middle of a buffer, back to back with another', () => {
    const a = buildBatch(RECORDS.slice(0, 2));
    const c = buildBatch(RECORDS.slice(2));
    const buf = new Uint8Array(3 + a.length + c.length);
    buf.set(a, 3);
    buf.set(c, 3 + a.length);
    const first = validate(buf, 3, buf.length);
    assert.equal(first.code, ErrorCode.NONE);
    assert.equal(first.info.size, a.length);
    const second = validate(buf, 3 + a.length, buf.length);
    assert.equal(second.code, ErrorCode.NONE);
    assert.equal(decodeRecords(buf, 3 + a.length).length, 3);
    // The first batch cut short by `end` is rejected.
    assert.equal(validate(buf, 3, 3 + a.length - 1).code, ErrorCode.CORRUPT_MESSAGE);
  });

  test('int64 helpers round-trip negative and large safe values', () => {
    const b = new Uint8Array(8);
    for (const v of [0, -1, 1, -(2 ** 32), 2 ** 32, 2 ** 53 - 1, -(2 ** 53 - 1), T0, -T0]) {
      writeInt64(b, 0, v);
      assert.equal(readInt64(b, 0), v);
      assert.equal(Buffer.from(b).readBigInt64BE(0), BigInt(v));
    }
  });
});

describe('BatchBuilder', () => {
  test('grows past its initial buffer; sizeBytes is the finished size', () => {
    const builder = new BatchBuilder(128);
    const big = new Uint8Array(100_000).fill(7);
    builder.append(null, big, T0);
    builder.append(utf8.encode('k'), big, T0);
    assert.equal(builder.recordCount, 2);
    const b = builder.finish();
    assert.equal(builder.sizeBytes, b.length);
    assert.equal(validate(b).code, ErrorCode.NONE);
    assert.deepEqual(decodeRecords(b, 0)[1]!.value, big);
  });

  test('recordSizeBytes predicts the growth of one appended record', () => {
    const builder = new BatchBuilder();
    builder.append(null, utf8.encode('first'), T0);
    const before = builder.sizeBytes;
    builder.append(utf8.encode('key'), new Uint8Array(300), T0 + 1000);
    assert.equal(builder.sizeBytes - before, BatchBuilder.recordSizeBytes(3, 300, 1, 1, 1000));
  });

  test('reset starts a new batch; an empty batch cannot be finished', () => {
    const builder = new BatchBuilder();
    assert.throws(() => builder.finish(), /empty batch/);
    builder.append(null, utf8.encode('a'), T0);
    builder.finish();
    builder.reset();
    assert.equal(builder.recordCount, 0);
    assert.equal(builder.sizeBytes, BATCH_HEADER_BYTES);
    builder.append(null, utf8.encode('b'), T0 + 9);
    const b = builder.finish();
    const out = decodeRecords(b, 0);
    assert.equal(out.length, 1);
    assert.equal(out[0]!.timestamp, T0 + 9);
  });
});

describe('validateBatch rejects', () => {
  const good = () => buildBatch(RECORDS);
  const k = utf8.encode('k');
  const v = utf8.encode('v');

  test('a batch shorter than its header', () => {
    assertRejected(good().subarray(0, 60), ErrorCode.CORRUPT_MESSAGE, /shorter than the 61-byte header/);
  });

  test('batchLength larger than the bytes available, or smaller than a header', () => {
    const b = good();
    assertRejected(b.subarray(0, b.length - 1), ErrorCode.CORRUPT_MESSAGE, /batchLength \d+ does not fit/);
    for (const len of [48, 0, -1, -(2 ** 31), 2 ** 31 - 1]) {
      const c = good();
      writeInt32(c, Off.batchLength, len);
      assertRejected(c, ErrorCode.CORRUPT_MESSAGE, /batchLength -?\d+ does not fit/);
    }
  });

  test('a magic other than 2', () => {
    for (const m of [0, 1, 3, 255]) {
      const b = good();
      b[Off.magic] = m;
      assertRejected(b, ErrorCode.CORRUPT_MESSAGE, new RegExp(`magic ${m} is not 2`));
    }
  });

  test('any changed byte under the CRC, and a changed CRC', () => {
    const b0 = good();
    for (const at of [Off.attributes, Off.lastOffsetDelta + 3, Off.baseTimestamp + 7, Off.producerId, Off.recordCount + 3, BATCH_HEADER_BYTES, b0.length - 1, Off.crc]) {
      const b = good();
      b[at] ^= 0x01;
      assertRejected(b, ErrorCode.CORRUPT_MESSAGE, /CRC-32C mismatch: stored [0-9a-f]+, computed [0-9a-f]+/);
    }
  });

  test('compression codecs, with a valid CRC, as UNSUPPORTED_COMPRESSION', () => {
    for (const codec of [1, 2, 3, 4, 7]) {
      const b = good();
      b[Off.attributes + 1] = codec;
      assertRejected(reseal(b), ErrorCode.UNSUPPORTED_COMPRESSION, new RegExp(`compression codec ${codec} is not supported`));
    }
  });

  test('timestamp-type, control and higher attribute bits (a producer may set only the transactional bit)', () => {
    for (const attr of [0x08, 0x20, 0x40, 0x100, 0x8000]) {
      const b = good();
      b[Off.attributes] = attr >> 8;
      b[Off.attributes + 1] = attr & 0xff;
      assertRejected(reseal(b), ErrorCode.CORRUPT_MESSAGE, /attributes 0x[0-9a-f]+: only the transactional bit is accepted/);
    }
  });

  test('producer fields: -1 together, or an idempotent producer with all three >= 0', () => {
    const info = newBatchInfo();
    const idem = buildBatch([{ value: new Uint8Array([1]) }, { value: null }], 1000, { producerId: 42, producerEpoch: 3, baseSequence: 7 });
    assert.equal(validateBatch(idem, 0, idem.length, info), ErrorCode.NONE);
    assert.deepEqual([info.producerId, info.producerEpoch, info.baseSequence, info.attributes], [42, 3, 7, 0]);
    const txn = buildBatch([{ value: null }], 1000, { producerId: 42, producerEpoch: 3, baseSequence: 0, transactional: true });
    assert.equal(validateBatch(txn, 0, txn.length, info), ErrorCode.NONE);
    assert.equal(info.attributes, ATTR_TRANSACTIONAL);
    for (const bad of [
      { producerId: -1, producerEpoch: 0, baseSequence: -1 },
      { producerId: -1, producerEpoch: -1, baseSequence: 0 },
      { producerId: 5, producerEpoch: -1, baseSequence: 0 },
      { producerId: 5, producerEpoch: 0, baseSequence: -1 },
      { producerId: -2, producerEpoch: 0, baseSequence: 0 },
    ]) {
      const b = buildBatch([{ value: null }], 1000, bad);
      assertRejected(b, ErrorCode.CORRUPT_MESSAGE, /producer(Id|Epoch)/);
    }
    const plainTxn = good();
    plainTxn[Off.attributes + 1] = ATTR_TRANSACTIONAL;
    assertRejected(reseal(plainTxn), ErrorCode.CORRUPT_MESSAGE, /producerId -1 needs/);
  });

  test('control batches: refused from a producer, accepted as stored, markers read back', () => {
    const marker = { producerId: 9, producerEpoch: 2, committed: true, coordinatorEpoch: 5 };
    const b = buildControlBatch(marker, 1234);
    assert.equal(isControlAt(b, 0), true);
    assert.equal(isTransactionalAt(b, 0), true);
    assertRejected(b, ErrorCode.CORRUPT_MESSAGE, /only the transactional bit is accepted/);
    const info = newBatchInfo();
    assert.equal(validateBatch(b, 0, b.length, info, true), ErrorCode.NONE);
    assert.deepEqual(readControlMarker(b, 0), marker);
    assert.deepEqual(readControlMarker(buildControlBatch({ ...marker, committed: false }, 1), 0), { ...marker, committed: false });
    assert.equal(addSequence(0x7fff_fffe, 3), 1, 'sequences wrap past 2^31-1 to 0');
  });

  test('an impossible recordCount', () => {
    for (const n of [0, -1, -(2 ** 31), 2 ** 31 - 1, 1000]) {
      const b = good();
      writeInt32(b, Off.recordCount, n);
      writeInt32(b, Off.lastOffsetDelta, n - 1);
      assertRejected(reseal(b), ErrorCode.CORRUPT_MESSAGE, new RegExp(`recordCount ${n} is impossible in \\d+ bytes`));
    }
  });

  test('lastOffsetDelta other than recordCount - 1', () => {
    const b = good();
    writeInt32(b, Off.lastOffsetDelta, RECORDS.length);
    assertRejected(reseal(b), ErrorCode.CORRUPT_MESSAGE, /lastOffsetDelta 5 != recordCount - 1 \(4\)/);
  });

  test('recordCount larger than the records present (fits the 7-byte minimum)', () => {
    const recs = bytesOf(record(...simpleRecordBody(0, null, null)), new Uint8Array(7));
    assertRejected(rawBatch(recs, 2), ErrorCode.CORRUPT_MESSAGE, /record 1/);
  });

  test('an offsetDelta that is not the record index', () => {
    const recs = bytesOf(record(...simpleRecordBody(0, k, v)), record(...simpleRecordBody(2, k, v)));
    assertRejected(rawBatch(recs, 2), ErrorCode.CORRUPT_MESSAGE, /record 1 has offsetDelta 2/);
  });

  test('a record length that overruns the batch, or is below the minimum', () => {
    const body = bytesOf(...simpleRecordBody(0, k, v));
    assertRejected(rawBatch(bytesOf(body.length + 1, body), 1), ErrorCode.CORRUPT_MESSAGE, /record 0 length \d+ overruns the batch/);
    assertRejected(rawBatch(bytesOf(5, [0, 0, 0, 1, 1, 0]), 1), ErrorCode.CORRUPT_MESSAGE, /record 0 length 5/);
    assertRejected(rawBatch(bytesOf(-3, new Uint8Array(8)), 1), ErrorCode.CORRUPT_MESSAGE, /record 0 length -3/);
  });

  test('key and value lengths below -1 or past the record', () => {
    assertRejected(rawBatch(record([0], 0, 0, -2, 1, [1], 0), 1), ErrorCode.CORRUPT_MESSAGE, /record 0 key length -2 is invalid/);
    assertRejected(rawBatch(record([0], 0, 0, 50, [1, 2], -1, 0), 1), ErrorCode.CORRUPT_MESSAGE, /record 0 key length 50 is invalid/);
    assertRejected(rawBatch(record([0], 0, 0, -1, -5, 0), 1), ErrorCode.CORRUPT_MESSAGE, /record 0 value length -5 is invalid/);
    assertRejected(rawBatch(record([0], 0, 0, -1, 9, [1, 2], 0), 1), ErrorCode.CORRUPT_MESSAGE, /record 0 value length 9 is invalid/);
  });

  test('header counts and header lengths that cannot be right', () => {
    assertRejected(rawBatch(record([0], 0, 0, -1, -1, -1), 1), ErrorCode.CORRUPT_MESSAGE, /record 0 header count -1 is invalid/);
    assertRejected(rawBatch(record([0], 0, 0, -1, -1, 3, 0, 0), 1), ErrorCode.CORRUPT_MESSAGE, /record 0 header count 3 is invalid/);
    assertRejected(rawBatch(record([0], 0, 0, -1, -1, 1, -1, -1), 1), ErrorCode.CORRUPT_MESSAGE, /record 0 header 0 key length -1 is invalid/);
    assertRejected(rawBatch(record([0], 0, 0, -1, -1, 1, 1, [0x61], -2), 1), ErrorCode.CORRUPT_MESSAGE, /record 0 header 0 value length -2 is invalid/);
    assertRejected(rawBatch(record([0], 0, 0, -1, -1, 1, 1, [0x61], 4, [1]), 1), ErrorCode.CORRUPT_MESSAGE, /record 0 header 0 value length 4 is invalid/);
  });

  test('bytes left inside a record after its last header', () => {
    assertRejected(rawBatch(record([0], 0, 0, -1, -1, 0, [9, 9]), 1), ErrorCode.CORRUPT_MESSAGE, /record 0 has 2 bytes past its last header/);
  });

  test('bytes after the last record', () => {
    assertRejected(rawBatch(bytesOf(record(...simpleRecordBody(0, k, v)), new Uint8Array(7)), 1), ErrorCode.CORRUPT_MESSAGE, /7 bytes after the last record/);
  });

  test('a truncated or over-long varint inside a record', () => {
    assertRejected(rawBatch(bytesOf(6, [0, 0x80, 0x80, 0x80, 0x80, 0x80]), 1), ErrorCode.CORRUPT_MESSAGE, /record framing: truncated varint/);
    assertRejected(rawBatch(bytesOf(12, [0], new Uint8Array(11).fill(0x80)), 1), ErrorCode.CORRUPT_MESSAGE, /record framing: varint longer than 10 bytes/);
  });

  test('a maxTimestamp other than baseTimestamp + the largest timestampDelta', () => {
    // Retention and ListOffsets trust maxTimestamp, so the broker checks it against the records.
    const recs = bytesOf(record([0], 0, 0, -1, -1, 0), record([0], 7, 1, -1, -1, 0), record([0], -3, 2, -1, -1, 0));
    assert.equal(validate(rawBatch(recs, 3, T0, T0 + 7)).code, ErrorCode.NONE);
    for (const max of [T0, T0 + 6, T0 + 8, T0 - 3]) {
      assertRejected(rawBatch(recs, 3, T0, max), ErrorCode.CORRUPT_MESSAGE, new RegExp(`maxTimestamp ${max} != baseTimestamp \\+ largest timestampDelta \\(${T0 + 7}\\)`));
    }
    const b = buildBatch(RECORDS);
    writeInt64(b, Off.maxTimestamp, T0 + 4);
    assertRejected(reseal(b), ErrorCode.CORRUPT_MESSAGE, /maxTimestamp/);
  });

  test('a hand-made batch that is well formed is accepted (the helpers are right)', () => {
    const recs = bytesOf(record(...simpleRecordBody(0, k, v)), record([0], 4, 1, -1, -1, 1, 1, [0x68], -1));
    const b = rawBatch(recs, 2, T0, T0 + 4);
    assert.equal(validate(b).code, ErrorCode.NONE, validate(b).info.problem);
    const out = decodeRecords(b, 0);
    assert.equal(out[1]!.timestamp, T0 + 4);
    assert.deepEqual(out[1]!.headers, [{ key: 'h', value: null }]);
  });
});

describe('validateBatch on stored batches (compacted logs, SPEC.md §9)', () => {
  const k = utf8.encode('k');
  const v = utf8.encode('v');
  /** A batch as compaction leaves it: the records of the given deltas survive, lastOffsetDelta kept. */
  function compacted(deltas: number[], lastOffsetDelta: number): Uint8Array {
    const b = rawBatch(bytesOf(...deltas.map((d) => record(...simpleRecordBody(d, k, v)))), deltas.length);
    writeInt32(b, Off.lastOffsetDelta, lastOffsetDelta);
    return reseal(b);
  }
  const check = (b: Uint8Array, stored: boolean) => {
    const info = newBatchInfo();
    return { code: validateBatch(b, 0, b.length, info, stored), info };
  };

  test('gaps in increasing offset deltas within lastOffsetDelta are accepted when stored, refused when produced', () => {
    for (const [deltas, last] of [[[0, 2, 5], 5], [[3], 9], [[1, 4], 7], [[0, 1, 2], 2]] as [number[], number][]) {
      const b = compacted(deltas, last);
      const stored = check(b, true);
      assert.equal(stored.code, ErrorCode.NONE, `${deltas} / ${last}: ${stored.info.problem}`);
      assert.equal(stored.info.lastOffsetDelta, last);
      assert.equal(stored.info.recordCount, deltas.length);
      const contiguous = deltas.every((d, i) => d === i) && last === deltas.length - 1;
      assert.equal(check(b, false).code, contiguous ? ErrorCode.NONE : ErrorCode.CORRUPT_MESSAGE);
      // Offsets are baseOffset + offsetDelta, gaps included; the batch still ends at lastOffsetDelta.
      writeInt64(b, Off.baseOffset, 100);
      assert.deepEqual(decodeRecords(b, 0).map((r) => r.offset), deltas.map((d) => 100 + d));
      assert.equal(lastOffsetAt(b, 0), 100 + last);
    }
  });

  test('stored: deltas that repeat, decrease, go negative or pass lastOffsetDelta are refused', () => {
    for (const [deltas, last, bad] of [[[0, 0], 3, 1], [[2, 1], 3, 1], [[-1, 2], 3, 0], [[0, 4], 3, 1]] as [number[], number, number][]) {
      const r = check(compacted(deltas, last), true);
      assert.equal(r.code, ErrorCode.CORRUPT_MESSAGE, `${deltas} / ${last}`);
      assert.match(r.info.problem, new RegExp(`record ${bad} has offsetDelta ${deltas[bad]}`));
    }
  });

  test('stored: lastOffsetDelta below recordCount - 1 is refused; the other checks still apply', () => {
    const r = check(compacted([0, 1, 2], 1), true);
    assert.equal(r.code, ErrorCode.CORRUPT_MESSAGE);
    assert.match(r.info.problem, /lastOffsetDelta 1 < recordCount - 1 \(2\)/);
    const b = compacted([0, 2], 4);
    b[b.length - 1] ^= 1;
    assert.match(check(b, true).info.problem, /CRC-32C mismatch/);
    const m = compacted([0, 2], 4);
    writeInt64(m, Off.maxTimestamp, T0 + 1);
    assert.match(check(reseal(m), true).info.problem, /maxTimestamp/);
  });
});

describe('batch-level headers sluice-tags and sluice-deliver-at-ms (SPEC §8.7, §8.8, §9 step 9a)', () => {
  const h = (key: string, value: string | null) => ({ key, value: value === null ? null : utf8.encode(value) });
  const batchOf = (headers: Array<ReturnType<typeof h>[]>) =>
    buildBatch(headers.map((hs, i) => ({ value: utf8.encode(`v${i}`), headers: hs })), 1_700_000_000_000);
  const check = (b: Uint8Array) => {
    const info = newBatchInfo();
    return { code: validateBatch(b, 0, b.length, info), info };
  };
  const text = (b: Uint8Array, at: number, n: number) => new TextDecoder().decode(b.subarray(at, at + n));

  test('a batch whose records all carry the same values reports where the first record has them', () => {
    const b = batchOf([
      [h('x', '1'), h(HEADER_TAGS, 'a,b'), h(HEADER_DELIVER_AT_MS, '1800000000000')],
      [h(HEADER_DELIVER_AT_MS, '1800000000000'), h(HEADER_TAGS, 'a,b')],
    ]);
    const { code, info } = check(b);
    assert.equal(code, ErrorCode.NONE, info.problem);
    assert.equal(text(b, info.tagsAt, info.tagsBytes), 'a,b');
    assert.equal(text(b, info.deliverAtAt, info.deliverAtBytes), '1800000000000');
  });

  test('a batch without them reports -1, and other headers are not mistaken for them', () => {
    const { code, info } = check(batchOf([[h('sluice-tag', 'a'), h('sluice-tags-x', 'a')], []]));
    assert.equal(code, ErrorCode.NONE, info.problem);
    assert.equal(info.tagsAt, -1);
    assert.equal(info.deliverAtAt, -1);
  });

  const refused: Array<[string, Array<ReturnType<typeof h>[]>, ErrorCode]> = [
    ['tags on the first record only', [[h(HEADER_TAGS, 'a')], []], ErrorCode.INVALID_TAGS],
    ['tags on a later record only', [[], [h(HEADER_TAGS, 'a')]], ErrorCode.INVALID_TAGS],
    ['two different tag sets', [[h(HEADER_TAGS, 'a')], [h(HEADER_TAGS, 'b')]], ErrorCode.INVALID_TAGS],
    ['tags twice on one record', [[h(HEADER_TAGS, 'a'), h(HEADER_TAGS, 'a')]], ErrorCode.INVALID_TAGS],
    ['a null tag set', [[h(HEADER_TAGS, null)]], ErrorCode.INVALID_TAGS],
    ['two delivery times', [[h(HEADER_DELIVER_AT_MS, '1')], [h(HEADER_DELIVER_AT_MS, '2')]], ErrorCode.INVALID_DELIVERY_TIME],
    ['a delivery time on one record of two', [[], [h(HEADER_DELIVER_AT_MS, '1')]], ErrorCode.INVALID_DELIVERY_TIME],
  ];
  for (const [name, headers, expected] of refused) {
    test(`refuses ${name}`, () => {
      const { code, info } = check(batchOf(headers));
      assert.equal(code, expected, info.problem);
      assert.match(info.problem, /every record of a batch/);
    });
  }
});
