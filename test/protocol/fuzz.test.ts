/**
 * Fuzzing the decoders that face the network: random and mutated bytes must only ever produce
 * the documented failure (an error code or the documented exception), never a crash, a hang
 * or a wrong acceptance. Each property is sized to run in about 1-3 s.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { ApiKey } from '../../protocol/api-keys.ts';
import { requestSchemas } from '../../protocol/apis/index.ts';
import { decodeBody, encodeControlSection } from '../../protocol/body.ts';
import { crc32c } from '../../protocol/crc32c.ts';
import { ErrorCode, SluiceError } from '../../protocol/errors.ts';
import { FrameDecoder, FrameTooLargeError } from '../../protocol/frame.ts';
import { decodeRequestHeader, requestHeaderSize, writeRequestHeader } from '../../protocol/header.ts';
import { BATCH_HEADER_BYTES, buildBatch, decodeRecords, newBatchInfo, Off, readInt32, readInt64, validateBatch, type RecordInput } from '../../protocol/record-batch.ts';
import { check } from '../../protocol/schema.ts';
import { allExamples } from '../fixtures/spec-examples.ts';
import { reseal } from './helpers.ts';

const T0 = 1_700_000_000_000;
/** FUZZ_SCALE=10 runs every property ten times longer (about 1 s each at scale 1). */
const SCALE = Number(process.env.FUZZ_SCALE ?? 1);
const runs = (n: number): number => Math.max(1, Math.round(n * SCALE));
const API_KEYS = Object.values(ApiKey);
const BATCH_CODES = new Set<number>([ErrorCode.NONE, ErrorCode.CORRUPT_MESSAGE, ErrorCode.UNSUPPORTED_COMPRESSION]);

// ---------------------------------------------------------------------------------------------
// Generators

const recordArb: fc.Arbitrary<RecordInput> = fc.record({
  key: fc.option(fc.uint8Array({ maxLength: 20 }), { nil: null }),
  value: fc.option(fc.uint8Array({ maxLength: 60 }), { nil: null }),
  headers: fc.array(fc.record({ key: fc.string({ maxLength: 8, unit: 'binary' }), value: fc.option(fc.uint8Array({ maxLength: 10 }), { nil: null }) }), { maxLength: 3 }),
  timestamp: fc.integer({ min: T0 - 1_000_000, max: T0 + 1_000_000 }),
});
const batchArb = fc.array(recordArb, { minLength: 1, maxLength: 8 }).map((rs) => buildBatch(rs));

/** A byte-level mutation; applied in order, each to the result of the previous one. */
type Mutation = { kind: 'xor'; at: number; mask: number } | { kind: 'set'; at: number; value: number } | { kind: 'cut'; at: number } | { kind: 'insert'; at: number; bytes: Uint8Array };
const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('xor' as const), at: fc.nat(), mask: fc.integer({ min: 1, max: 255 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: fc.constantFrom(0x00, 0x01, 0x7f, 0x80, 0xff) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('cut' as const), at: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 4 }) }) },
);

/** Applies mutations in order. */
function mutate(orig: Uint8Array, muts: Mutation[]): { bytes: Uint8Array } {
  let b = Uint8Array.from(orig);
  for (const m of muts) {
    if (b.length === 0) break;
    const at = m.at % (b.length + (m.kind === 'insert' ? 1 : 0));
    if (m.kind === 'xor') b[at] ^= m.mask;
    else if (m.kind === 'set') b[at] = m.value;
    else if (m.kind === 'cut') {
      b = b.slice(0, at);
    } else {
      const n = new Uint8Array(b.length + m.bytes.length);
      n.set(b.subarray(0, at));
      n.set(m.bytes, at);
      n.set(b.subarray(at), at + m.bytes.length);
      b = n;
    }
  }
  return { bytes: b };
}

/** MessagePack-encodable values of the families SPEC.md §4.2 allows (and a few it does not). */
const { value: msgpackValue } = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.integer(),
    fc.integer({ min: Number.MIN_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER }),
    fc.double(),
    fc.string({ maxLength: 12 }),
    fc.boolean(),
    fc.constant(null),
    fc.uint8Array({ maxLength: 8 }),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(fc.oneof(fc.string({ maxLength: 8 }), fc.constantFrom('topics', 'topic', 'partitions', 'partition', 'acks', 'recordsBytes', 'configs')), tie('value'), { maxKeys: 5 }),
  ),
}));

function requestFrame(apiKey: number, control: unknown, data: Uint8Array = new Uint8Array(0)): Buffer {
  const id = Buffer.from('fuzz');
  const header = Buffer.alloc(requestHeaderSize(id));
  writeRequestHeader(header, 0, apiKey, 0, 1, id);
  return Buffer.concat([header, encodeControlSection(control), data]);
}

/** Valid request frames (payloads, without the length prefix) to mutate. */
const SEED_FRAMES: Buffer[] = [
  ...allExamples().filter((e) => e.name.endsWith('request')).map((e) => e.bytes.subarray(4)),
  requestFrame(ApiKey.API_VERSIONS, {}),
  requestFrame(ApiKey.METADATA, { topics: null }),
  requestFrame(ApiKey.CREATE_TOPICS, { topics: [{ topic: 't', partitions: 3, replicationFactor: 1, configs: { 'retention.ms': '1' } }], validateOnly: true }),
  requestFrame(ApiKey.DELETE_TOPICS, { topics: ['a', 'b'] }),
  requestFrame(ApiKey.DESCRIBE_TOPICS, { topics: ['a'] }),
  requestFrame(ApiKey.LIST_OFFSETS, { topics: [{ topic: 't', partitions: [{ partition: 0, timestamp: -2 }, { partition: 1, timestamp: T0 }] }] }),
  requestFrame(ApiKey.FIND_COORDINATOR, { key: 'g', keyType: 'group' }),
  requestFrame(ApiKey.CONSUMER_GROUP_HEARTBEAT, { groupId: 'g', memberId: 'm', memberEpoch: 3, ownedPartitions: [{ topic: 't', partitions: [0, 2] }] }),
  requestFrame(ApiKey.OFFSET_COMMIT, { groupId: 'g', memberId: 'm', memberEpoch: 3, topics: [{ topic: 't', partitions: [{ partition: 0, offset: 5, metadata: null }] }] }),
  requestFrame(ApiKey.OFFSET_FETCH, { groupId: 'g', memberId: null, memberEpoch: -1, topics: [{ topic: 't', partitions: [0] }] }),
  requestFrame(ApiKey.DESCRIBE_GROUPS, { groupIds: ['g'] }),
  requestFrame(ApiKey.DELETE_GROUPS, { groupIds: ['g'] }),
  requestFrame(ApiKey.CREATE_PARTITIONS, { topics: [{ topic: 't', count: 4 }], validateOnly: true }),
  requestFrame(ApiKey.ALTER_TOPIC_CONFIGS, { topics: [{ topic: 't', set: { 'retention.ms': '1000' }, delete: ['segment.bytes'] }], validateOnly: true }),
];

/**
 * The broker's decode path for one request payload. Returns normally or throws only the
 * documented errors: RangeError from the header, SluiceError(MALFORMED_REQUEST) from the body.
 */
function decodeRequest(frame: Buffer): void {
  let bodyOffset: number;
  let apiKey: number;
  try {
    ({ bodyOffset, apiKey } = decodeRequestHeader(frame));
  } catch (e) {
    assert.ok(e instanceof RangeError, `header: unexpected ${String(e)}`);
    return;
  }
  assert.ok(bodyOffset >= 10 && bodyOffset <= frame.length);
  const schema = requestSchemas[apiKey];
  try {
    const body = decodeBody(frame, bodyOffset);
    assert.ok(body.data.length <= frame.length - bodyOffset - 4);
    if (schema) check(schema, body.control);
  } catch (e) {
    assert.ok(e instanceof SluiceError && e.code === ErrorCode.MALFORMED_REQUEST, `body: unexpected ${String(e)}`);
  }
}

/** validateBatch must never throw and only return a batch code; when it accepts, decodeRecords must work. */
function validateAndDecode(b: Uint8Array, pos = 0, end = b.length): ErrorCode {
  const info = newBatchInfo();
  const code = validateBatch(b, pos, end, info);
  assert.ok(BATCH_CODES.has(code), `unexpected code ${code}`);
  if (code !== ErrorCode.NONE) {
    assert.notEqual(info.problem, '');
    return code;
  }
  assert.equal(info.problem, '');
  assert.ok(info.size >= BATCH_HEADER_BYTES && pos + info.size <= end);
  assert.equal(readInt32(b, pos + Off.crc) >>> 0, crc32c(b, pos + Off.attributes, pos + info.size));
  const records = decodeRecords(b, pos);
  assert.equal(records.length, info.recordCount);
  const base = readInt64(b, pos);
  const lo = b.byteOffset + pos + BATCH_HEADER_BYTES;
  const hi = b.byteOffset + pos + info.size;
  const inside = (v: Uint8Array | null) => v === null || (v.byteOffset >= lo && v.byteOffset + v.length <= hi);
  records.forEach((r, i) => {
    assert.equal(r.offset, base + i);
    assert.ok(inside(r.key) && inside(r.value), `record ${i} views escape the batch`);
    for (const h of r.headers) assert.ok(inside(h.value) && typeof h.key === 'string');
  });
  return code;
}

// ---------------------------------------------------------------------------------------------

describe('fuzz: FrameDecoder', () => {
  test('any frames, split anywhere, come out exactly', () => {
    fc.assert(fc.property(
      fc.array(fc.uint8Array({ maxLength: 200 }), { maxLength: 20 }),
      fc.array(fc.nat(), { maxLength: 30 }),
      (payloads, cuts) => {
        const stream = Buffer.concat(payloads.flatMap((p) => [Buffer.from([p.length >>> 24, p.length >>> 16, p.length >>> 8, p.length]), Buffer.from(p)]));
        const points = [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort((a, b) => a - b);
        const chunks: Buffer[] = [];
        let prev = 0;
        for (const p of [...points, stream.length]) {
          chunks.push(stream.subarray(prev, p));
          prev = p;
        }
        const dec = new FrameDecoder(200);
        const got: Buffer[] = [];
        for (const c of chunks) dec.push(c, (f) => got.push(Buffer.from(f)));
        assert.deepEqual(got, payloads.map((p) => Buffer.from(p)));
        assert.ok(dec.idle);
      },
    ), { numRuns: runs(10000) });
  });

  test('random bytes: frames are a prefix of the stream; the only error is FrameTooLargeError', () => {
    fc.assert(fc.property(fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 12 }), (chunks) => {
      const dec = new FrameDecoder(48);
      const got: Buffer[] = [];
      try {
        for (const c of chunks) dec.push(Buffer.from(c), (f) => got.push(Buffer.from(f)));
      } catch (e) {
        assert.ok(e instanceof FrameTooLargeError && e.length > 48, String(e));
      }
      const reencoded = Buffer.concat(got.flatMap((p) => [Buffer.from([0, 0, 0, p.length]), p]));
      assert.deepEqual(reencoded, Buffer.concat(chunks.map((c) => Buffer.from(c))).subarray(0, reencoded.length));
      for (const f of got) assert.ok(f.length <= 48);
    }), { numRuns: runs(20000) });
  });
});

describe('fuzz: request decoding (header, body, schema)', () => {
  test('random header bytes: a header whose fields match the bytes, or RangeError', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 40 }), fc.integer({ min: -2, max: 40 }), (bytes, idLen) => {
      const frame = Buffer.from(bytes);
      if (frame.length >= 10 && idLen !== 40) frame.writeInt16BE(idLen, 8); // make the clientId length plausible most of the time
      try {
        const h = decodeRequestHeader(frame);
        assert.equal(h.apiKey, frame.readInt16BE(0));
        assert.equal(h.apiVersion, frame.readInt16BE(2));
        assert.equal(h.correlationId, frame.readInt32BE(4));
        const len = frame.readInt16BE(8);
        assert.ok(len >= -1 && len <= 255);
        assert.equal(h.bodyOffset, 10 + Math.max(len, 0));
        assert.ok(h.bodyOffset <= frame.length);
        assert.equal(h.clientId === null, len === -1);
      } catch (e) {
        assert.ok(e instanceof RangeError, String(e));
      }
    }), { numRuns: runs(40000) });
  });

  test('random bodies behind a valid header: only MALFORMED_REQUEST', () => {
    fc.assert(fc.property(fc.constantFrom(...API_KEYS), fc.uint8Array({ maxLength: 80 }), (apiKey, body) => {
      const id = Buffer.alloc(0);
      const header = Buffer.alloc(requestHeaderSize(id));
      writeRequestHeader(header, 0, apiKey, 0, 1, id);
      const frame = Buffer.concat([header, Buffer.from(body)]);
      // Half the time, give the body a control length that fits so the MessagePack decoder runs.
      if (body.length >= 4 && body[0]! % 2 === 0) frame.writeUInt32BE(body.length - 4 - (body[1]! % (body.length - 3)), header.length);
      decodeRequest(frame);
    }), { numRuns: runs(30000) });
  });

  test('random MessagePack controls: check accepts or throws MALFORMED_REQUEST', () => {
    fc.assert(fc.property(fc.constantFrom(...API_KEYS), msgpackValue, (apiKey, control) => {
      decodeRequest(requestFrame(apiKey, control));
    }), { numRuns: runs(20000) });
  });

  test('valid controls with one field replaced by a random value', () => {
    const leaves = (v: unknown, path: (string | number)[] = []): (string | number)[][] => {
      if (Array.isArray(v)) return [path, ...v.flatMap((x, i) => leaves(x, [...path, i]))];
      if (v && typeof v === 'object') return [path, ...Object.entries(v).flatMap(([k, x]) => leaves(x, [...path, k]))];
      return [path];
    };
    const seeds = SEED_FRAMES.map((f) => {
      const h = decodeRequestHeader(f);
      return { apiKey: h.apiKey, control: decodeBody(f, h.bodyOffset).control };
    }).filter((x) => leaves(x.control).length > 1); // ApiVersions' {} has no field to replace
    fc.assert(fc.property(fc.nat(), fc.nat(), msgpackValue, (s, l, replacement) => {
      const seed = seeds[s % seeds.length]!;
      const control = structuredClone(seed.control) as Record<string | number, unknown>;
      const paths = leaves(control).filter((p) => p.length > 0);
      const path = paths[l % paths.length]!;
      let parent: Record<string | number, unknown> = control;
      for (const k of path.slice(0, -1)) parent = parent[k] as Record<string | number, unknown>;
      parent[path.at(-1)!] = replacement;
      decodeRequest(requestFrame(seed.apiKey, control));
    }), { numRuns: runs(15000) });
  });

  test('mutated valid request frames', () => {
    fc.assert(fc.property(fc.constantFrom(...SEED_FRAMES), fc.array(mutationArb, { minLength: 1, maxLength: 4 }), (frame, muts) => {
      decodeRequest(Buffer.from(mutate(frame, muts).bytes));
    }), { numRuns: runs(20000) });
  });
});

describe('fuzz: validateBatch and decodeRecords', () => {
  test('random bytes are rejected without throwing', () => {
    fc.assert(fc.property(fc.uint8Array({ minLength: 0, maxLength: 200 }), fc.nat(8), (bytes, pos) => {
      const p = Math.min(pos, bytes.length);
      validateAndDecode(bytes, p, bytes.length);
    }), { numRuns: runs(50000) });
  });

  test('generated batches are accepted and decode to what was built', () => {
    fc.assert(fc.property(fc.array(recordArb, { minLength: 1, maxLength: 8 }), (records) => {
      const b = buildBatch(records);
      assert.equal(validateAndDecode(b), ErrorCode.NONE);
      const out = decodeRecords(b, 0);
      out.forEach((r, i) => {
        assert.equal(r.timestamp, records[i]!.timestamp);
        assert.deepEqual(r.key && [...r.key], records[i]!.key && [...records[i]!.key!]);
        assert.deepEqual(r.value && [...r.value], records[i]!.value && [...records[i]!.value!]);
        assert.equal(r.headers.length, records[i]!.headers!.length);
      });
    }), { numRuns: runs(5000) });
  });

  test('mutated batches: never throws; accepted only if the CRC-covered bytes are intact', () => {
    fc.assert(fc.property(batchArb, fc.array(mutationArb, { minLength: 1, maxLength: 3 }), (batch, muts) => {
      const { bytes } = mutate(batch, muts);
      const info = newBatchInfo();
      if (validateAndDecode(bytes) === ErrorCode.NONE) {
        // Bytes appended after the batch are not part of it; the batch itself must be the
        // original, except baseOffset (0-7) and partitionLeaderEpoch (12-15), which lie outside
        // both the CRC and the framing.
        validateBatch(bytes, 0, bytes.length, info);
        assert.equal(info.size, batch.length, 'a batch of another length was accepted');
        for (let at = 0; at < batch.length; at++) {
          if (bytes[at] !== batch[at]) assert.ok(at < 8 || (at >= 12 && at < 16), `byte ${at} changed, yet the batch was accepted`);
        }
      }
    }), { numRuns: runs(20000) });
  });

  test('mutated then re-sealed batches (valid CRC, hostile framing): never throws; accepted ones decode', () => {
    let accepted = 0;
    fc.assert(fc.property(batchArb, fc.array(mutationArb, { minLength: 1, maxLength: 3 }), fc.boolean(), (batch, muts, fixLength) => {
      // Aim the mutations past the CRC so that re-sealing keeps them.
      const shifted = muts.map((m) => ({ ...m, at: Off.attributes + (m.at % Math.max(1, batch.length - Off.attributes)) }));
      const { bytes } = mutate(batch, shifted);
      if (bytes.length < BATCH_HEADER_BYTES) return;
      reseal(bytes, fixLength);
      if (validateAndDecode(bytes) === ErrorCode.NONE) accepted++;
    }), { numRuns: runs(15000) });
    // The property is only meaningful if some hostile batches get through to decodeRecords.
    assert.ok(accepted > 50, `only ${accepted} mutated batches were accepted`);
  });

  test('a batch followed by garbage: the batch alone validates, the garbage does not', () => {
    fc.assert(fc.property(batchArb, fc.uint8Array({ minLength: 1, maxLength: 70 }), (batch, tail) => {
      const buf = new Uint8Array(batch.length + tail.length);
      buf.set(batch);
      buf.set(tail, batch.length);
      assert.equal(validateAndDecode(buf), ErrorCode.NONE);
      validateAndDecode(buf, batch.length, buf.length);
    }), { numRuns: runs(20000) });
  });
});
