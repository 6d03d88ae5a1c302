/**
 * Keeps protocol/SPEC.md honest: its worked examples, error table, varint examples, murmur2
 * vectors and CRC check value must match what the protocol code does today. When a test here
 * fails after a deliberate wire change, regenerate the blocks with
 *   node --import tsx test/fixtures/spec-examples.ts --write
 * and review the diff of SPEC.md.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { ApiKey, supportedVersions } from '../../protocol/api-keys.ts';
import {
  requestSchemas, responseSchemas, type ConsumerGroupHeartbeatRequest, type ConsumerGroupHeartbeatResponse, type FetchResponse, type ProduceRequest,
} from '../../protocol/apis/index.ts';
import { decodeBody, encodeControl } from '../../protocol/body.ts';
import { crc32c } from '../../protocol/crc32c.ts';
import { allErrors, ErrorCode } from '../../protocol/errors.ts';
import { FrameDecoder } from '../../protocol/frame.ts';
import { decodeRequestHeader, decodeResponseHeader } from '../../protocol/header.ts';
import { murmur2 } from '../../protocol/murmur2.ts';
import { attributesAt, baseSequenceAt, buildBatch, decodeRecords, isControlAt, isTransactionalAt, newBatchInfo, Off, producerEpochAt, producerIdAt, readControlMarker, readInt32, readInt64, validateBatch } from '../../protocol/record-batch.ts';
import { check } from '../../protocol/schema.ts';
import { writeVarint } from '../../protocol/varint.ts';
import { allExamples, EXAMPLE_LEADER_EPOCH, EXAMPLE_MARKER, EXAMPLE_MARKER_LEADER_EPOCH, EXAMPLE_MARKER_OFFSET, EXAMPLE_MEMBER_ID, EXAMPLE_PRODUCER, generatedBlocks, markerPattern, SPEC_PATH } from '../fixtures/spec-examples.ts';
import { refVarint, utf8 } from './helpers.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FetchRequest } from '../../protocol/apis/index.ts';
import { readDelayMarker, readScheduled } from '../../protocol/delayed-batch.ts';
import { TagExpression } from '../../protocol/tag-expression.ts';
import { tagsOfHeaders } from '../../protocol/tags.ts';
import { PartitionLog } from '../../server/log/partition-log.ts';
import { config as logConfig, readRaw, recordingLogger } from '../server/log/helpers.ts';
import { delayedProducerBatch, EXAMPLE_DELAYED_PRODUCER, EXAMPLE_DELIVER_AT_MS, EXAMPLE_RELEASE_OFFSET, EXAMPLE_TAG_EXPRESSION, EXAMPLE_TAGS, EXAMPLE_TIMESTAMP_MS, EXAMPLE_WRAPPER_OFFSET, exampleBatch, filteredExampleLog, taggedExampleBatch } from '../fixtures/spec-examples.ts';
import { decodeTxnKey, decodeTxnValue, encodeTxnKey, encodeTxnValue, txnStatePartitionFor } from '../../server/txn/transaction-log.ts';
import type { AlterTopicConfigsRequest, AlterTopicConfigsResponse } from '../../protocol/apis/alter-topic-configs.ts';
import type { DescribeArchiveRequest, DescribeArchiveResponse } from '../../protocol/apis/describe-archive.ts';
import { handleAlterTopicConfigs } from '../../server/api/topics.ts';
import { ALTER_CONFIGS_EXAMPLE_REQUEST, ALTER_CONFIGS_EXAMPLE_RESPONSE, DESCRIBE_ARCHIVE_EXAMPLE_REQUEST, DESCRIBE_ARCHIVE_EXAMPLE_RESPONSE } from '../fixtures/spec-examples.ts';
import { openStack, replyingAsync } from '../server/api/stack.ts';

const spec = readFileSync(SPEC_PATH, 'utf8');

function block(name: string): string {
  const m = markerPattern(name).exec(spec);
  assert.ok(m, `SPEC.md lacks the <!-- BEGIN ${name} --> ... <!-- END ${name} --> block`);
  return m[2]!;
}

/** Bytes of the first ```hex block of a marked region: everything before `#` on each line. */
function hexBlockBytes(name: string): Buffer {
  const m = /```hex\n([\s\S]*?)```/.exec(block(name));
  assert.ok(m, `${name}: no \`\`\`hex block`);
  const out: number[] = [];
  for (const line of m[1]!.split('\n')) {
    const data = line.split('#')[0]!.trim();
    if (data === '') continue;
    for (const pair of data.split(/\s+/)) {
      assert.match(pair, /^[0-9a-f]{2}$/, `${name}: bad hex "${pair}" in line "${line}"`);
      out.push(parseInt(pair, 16));
    }
  }
  return Buffer.from(out);
}

/** Bytes of the plain ```text hex block of a marked region. */
function plainHexBytes(name: string): Buffer {
  const m = /```text\n([0-9a-f\n]+)```/.exec(block(name));
  assert.ok(m, `${name}: no plain hex block`);
  return Buffer.from(m[1]!.replace(/\n/g, ''), 'hex');
}

/** The one frame in bytes, through the real decoder. */
function onlyFrame(bytes: Buffer): Buffer {
  const frames: Buffer[] = [];
  const dec = new FrameDecoder();
  dec.push(bytes, (f) => frames.push(Buffer.from(f)));
  assert.equal(frames.length, 1);
  assert.ok(dec.idle);
  return frames[0]!;
}

describe('SPEC.md generated blocks', () => {
  for (const [name, text] of generatedBlocks()) {
    test(`${name} is exactly what the code generates`, () => {
      assert.equal(block(name).trimEnd(), text.trimEnd(), `regenerate with: node --import tsx test/fixtures/spec-examples.ts --write`);
    });
  }

  for (const ex of allExamples()) {
    test(`${ex.name}: annotated and plain hex both equal the bytes the protocol code builds`, () => {
      assert.deepEqual(hexBlockBytes(`example:${ex.name}`), ex.bytes);
      assert.deepEqual(plainHexBytes(`example:${ex.name}`), ex.bytes);
    });
  }
});

describe('SPEC.md worked examples decode with the protocol code', () => {
  test('produce request', () => {
    const frame = onlyFrame(hexBlockBytes('example:produce-request'));
    const h = decodeRequestHeader(frame);
    assert.deepEqual({ ...h }, { apiKey: ApiKey.PRODUCE, apiVersion: 0, correlationId: 7, clientId: 'spec', bodyOffset: 14 });
    const body = decodeBody(frame, h.bodyOffset);
    const req = check<ProduceRequest>(requestSchemas[ApiKey.PRODUCE]!, body.control);
    assert.equal(req.acks, 1);
    assert.equal(req.timeoutMs, 30_000);
    const p = req.topics[0]!.partitions[0]!;
    assert.equal(req.topics[0]!.topic, 'events');
    assert.equal(p.partition, 0);
    assert.equal(p.recordsBytes, body.data.length);
    const info = newBatchInfo();
    assert.equal(validateBatch(body.data, 0, body.data.length, info), ErrorCode.NONE, info.problem);
    assert.equal(info.size, body.data.length);
    const records = decodeRecords(body.data, 0);
    assert.deepEqual(records.map((r) => ({ offset: r.offset, timestamp: r.timestamp, key: r.key && Buffer.from(r.key).toString(), value: r.value && Buffer.from(r.value).toString() })), [
      { offset: 0, timestamp: 1_700_000_000_000, key: 'k1', value: 'hello' },
      { offset: 1, timestamp: 1_700_000_000_000, key: null, value: 'world' },
    ]);
  });

  test('produce response', () => {
    const frame = onlyFrame(hexBlockBytes('example:produce-response'));
    assert.deepEqual(decodeResponseHeader(frame), { correlationId: 7, errorCode: 0 });
    const body = decodeBody(frame, 6);
    check(responseSchemas[ApiKey.PRODUCE]!, body.control);
    assert.equal(body.data.length, 0);
  });

  test('fetch request', () => {
    const frame = onlyFrame(hexBlockBytes('example:fetch-request'));
    const h = decodeRequestHeader(frame);
    assert.equal(h.apiKey, ApiKey.FETCH);
    assert.equal(h.correlationId, 8);
    const body = decodeBody(frame, h.bodyOffset);
    check(requestSchemas[ApiKey.FETCH]!, body.control);
    assert.equal(body.data.length, 0);
  });

  test('fetch response carries the produced batch, with only baseOffset and partitionLeaderEpoch written by the broker', () => {
    const frame = onlyFrame(hexBlockBytes('example:fetch-response'));
    assert.deepEqual(decodeResponseHeader(frame), { correlationId: 8, errorCode: 0 });
    const body = decodeBody(frame, 6);
    const res = check<FetchResponse>(responseSchemas[ApiKey.FETCH]!, body.control);
    const p = res.topics[0]!.partitions[0]!;
    assert.deepEqual({ ...p }, { partition: 0, errorCode: 0, highWatermark: 2, lastStableOffset: 2, logStartOffset: 0, abortedTransactions: [], recordsBytes: body.data.length });
    // A stored batch: the CRC the producer computed still holds (§8.1), and so does every check of §9.
    assert.equal(validateBatch(body.data, 0, body.data.length, newBatchInfo(), true), ErrorCode.NONE);
    const produced = decodeBody(onlyFrame(hexBlockBytes('example:produce-request')), 14).data;
    assert.equal(body.data.length, produced.length);
    assert.equal(readInt32(produced, Off.partitionLeaderEpoch), -1, 'the producer sends partitionLeaderEpoch -1');
    assert.equal(readInt32(body.data, Off.partitionLeaderEpoch), EXAMPLE_LEADER_EPOCH, 'the leader stamps its epoch');
    assert.equal(readInt64(body.data, Off.baseOffset), 0);
    // Every other byte is the producer's.
    assert.deepEqual(body.data.subarray(Off.partitionLeaderEpoch + 4), produced.subarray(Off.partitionLeaderEpoch + 4));
    assert.deepEqual(body.data.subarray(Off.batchLength, Off.partitionLeaderEpoch), produced.subarray(Off.batchLength, Off.partitionLeaderEpoch));
  });

  test('consumer group heartbeat request: a join with every field', () => {
    const frame = onlyFrame(hexBlockBytes('example:consumer-group-heartbeat-request'));
    const h = decodeRequestHeader(frame);
    assert.deepEqual({ ...h }, { apiKey: ApiKey.CONSUMER_GROUP_HEARTBEAT, apiVersion: 0, correlationId: 42, clientId: 'spec', bodyOffset: 14 });
    const body = decodeBody(frame, h.bodyOffset);
    const req = check<ConsumerGroupHeartbeatRequest>(requestSchemas[ApiKey.CONSUMER_GROUP_HEARTBEAT]!, body.control);
    assert.deepEqual(req, {
      groupId: 'billing', memberId: EXAMPLE_MEMBER_ID, memberEpoch: 0, rebalanceTimeoutMs: 30_000, sessionTimeoutMs: 10_000,
      subscribedTopicNames: ['orders'], subscribedTopicRegex: null, assignor: 'uniform', ownedPartitions: [],
    });
    assert.equal(body.data.length, 0);
  });

  test('consumer group heartbeat response: epoch 1 and partitions 0 and 1 of orders', () => {
    const frame = onlyFrame(hexBlockBytes('example:consumer-group-heartbeat-response'));
    assert.deepEqual(decodeResponseHeader(frame), { correlationId: 42, errorCode: 0 });
    const body = decodeBody(frame, 6);
    const res = check<ConsumerGroupHeartbeatResponse>(responseSchemas[ApiKey.CONSUMER_GROUP_HEARTBEAT]!, body.control);
    assert.deepEqual(res, {
      errorCode: 0, errorMessage: null, memberId: EXAMPLE_MEMBER_ID, memberEpoch: 1, heartbeatIntervalMs: 1000,
      assignment: [{ topic: 'orders', partitions: [0, 1] }],
    });
    assert.equal(body.data.length, 0);
  });

  test('§13.7: an idempotent batch the broker accepts, with the producer fields of §8.5 and the records of §13.1', () => {
    const batch = hexBlockBytes('example:idempotent-batch');
    assert.deepEqual(batch, plainHexBytes('example:idempotent-batch'));
    const info = newBatchInfo();
    assert.equal(validateBatch(batch, 0, batch.length, info), ErrorCode.NONE, info.problem);
    assert.equal(attributesAt(batch, 0), 0);
    assert.equal(producerIdAt(batch, 0), EXAMPLE_PRODUCER.producerId);
    assert.equal(producerEpochAt(batch, 0), EXAMPLE_PRODUCER.producerEpoch);
    assert.equal(baseSequenceAt(batch, 0), EXAMPLE_PRODUCER.baseSequence);
    // Bytes 43-60 (producer fields) and the CRC are all that differ from the plain batch of §13.1.
    const plain = decodeBody(onlyFrame(hexBlockBytes('example:produce-request')), 14).data;
    assert.equal(plain.length, batch.length);
    for (let i = 0; i < batch.length; i++) {
      if (batch[i] !== plain[i]) assert.ok((i >= Off.crc && i < Off.crc + 4) || (i >= Off.producerId && i < Off.recordCount), `byte ${i} differs`);
    }
    assert.deepEqual(decodeRecords(batch, 0).map((r) => r.value && Buffer.from(r.value).toString('utf8')), ['hello', 'world']);
  });

  test('§13.8: a control batch as stored, accepted as a stored batch only, with the marker of §8.6', () => {
    const batch = hexBlockBytes('example:control-batch');
    assert.deepEqual(batch, plainHexBytes('example:control-batch'));
    assert.equal(batch.length, 78, '§8.6: a control batch is 78 bytes');
    const info = newBatchInfo();
    assert.equal(validateBatch(batch, 0, batch.length, info, true), ErrorCode.NONE, info.problem);
    assert.equal(validateBatch(batch, 0, batch.length, info, false), ErrorCode.CORRUPT_MESSAGE, 'a producer may not send the control bit (§8.2)');
    assert.equal(attributesAt(batch, 0), 48);
    assert.ok(isControlAt(batch, 0) && isTransactionalAt(batch, 0));
    assert.equal(readInt64(batch, Off.baseOffset), EXAMPLE_MARKER_OFFSET);
    assert.equal(readInt32(batch, Off.partitionLeaderEpoch), EXAMPLE_MARKER_LEADER_EPOCH);
    assert.equal(baseSequenceAt(batch, 0), -1);
    assert.equal(readInt32(batch, Off.lastOffsetDelta), 0);
    assert.equal(readInt64(batch, Off.baseTimestamp), readInt64(batch, Off.maxTimestamp));
    assert.deepEqual(readControlMarker(batch, 0), EXAMPLE_MARKER);
  });

  test('§13.9: a tagged batch the broker accepts, every record with the same canonical sluice-tags header', () => {
    const batch = hexBlockBytes('example:tagged-batch');
    const info = newBatchInfo();
    assert.equal(validateBatch(batch, 0, batch.length, info), ErrorCode.NONE, info.problem);
    const records = decodeRecords(batch, 0);
    assert.equal(records.length, 2);
    for (const r of records) assert.deepEqual(r.headers.map((h) => [h.key, h.value && Buffer.from(h.value).toString('latin1')]), [['sluice-tags', 'order.created,region:eu']]);
    assert.deepEqual(tagsOfHeaders(records[0]!.headers), [...EXAMPLE_TAGS].sort());
  });

  test('§13.10/13.11: the filtered Fetch request parses, and the broker\'s filtered read of that log returns exactly the response\'s batch and nextFetchOffset', async () => {
    const reqFrame = onlyFrame(hexBlockBytes('example:filtered-fetch-request'));
    const h = decodeRequestHeader(reqFrame);
    const req = check<FetchRequest>(requestSchemas[ApiKey.FETCH]!, decodeBody(reqFrame, h.bodyOffset).control);
    assert.equal(req.tagExpression, EXAMPLE_TAG_EXPRESSION);
    const expression = TagExpression.parse(req.tagExpression!);
    const frame = onlyFrame(hexBlockBytes('example:filtered-fetch-response'));
    const body = decodeBody(frame, 6);
    const p = check<FetchResponse>(responseSchemas[ApiKey.FETCH]!, body.control).topics[0]!.partitions[0]!;
    assert.deepEqual({ ...p }, { partition: 0, errorCode: 0, highWatermark: 4, lastStableOffset: 4, logStartOffset: 0, abortedTransactions: [], recordsBytes: body.data.length, nextFetchOffset: 4 });
    // The same log, written by the broker's append path, read by its filtered reader.
    const dir = mkdtempSync(join(tmpdir(), 'spec-filtered-'));
    try {
      const log = PartitionLog.open(dir, logConfig(), { cleanShutdown: true, logger: recordingLogger() });
      log.append(taggedExampleBatch(), EXAMPLE_TIMESTAMP_MS, { leaderEpoch: EXAMPLE_LEADER_EPOCH });
      log.append(exampleBatch(), EXAMPLE_TIMESTAMP_MS, { leaderEpoch: EXAMPLE_LEADER_EPOCH });
      assert.deepEqual(Buffer.concat(filteredExampleLog()), await readRaw(log, 0), 'the log the example describes');
      const read = await log.read(req.topics[0]!.partitions[0]!.fetchOffset, req.maxBytes, { filter: { expression, scanBatchesMax: 100_000 } });
      assert.deepEqual(read.records, body.data);
      assert.equal(read.nextFetchOffset, p.nextFetchOffset);
      await log.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('§13.12: the SCHEDULED wrapper is what the leader stores for the delayed batch, a stored control batch (attributes 32) a consumer skips', async () => {
    const wrapper = hexBlockBytes('example:scheduled-wrapper');
    const info = newBatchInfo();
    assert.equal(validateBatch(wrapper, 0, wrapper.length, info, true), ErrorCode.NONE, info.problem);
    assert.equal(attributesAt(wrapper, 0), 32);
    assert.ok(isControlAt(wrapper, 0) && !isTransactionalAt(wrapper, 0));
    const entry = readScheduled(wrapper, 0)!;
    assert.deepEqual({ w: entry.wrapperOffset, at: entry.effectiveDeliverAtMs, req: entry.requestedDeliverAtMs, n: entry.recordCount, d: entry.lastOffsetDelta },
      { w: EXAMPLE_WRAPPER_OFFSET, at: EXAMPLE_DELIVER_AT_MS, req: EXAMPLE_DELIVER_AT_MS, n: 2, d: 1 });
    assert.equal(readInt32(wrapper, Off.lastOffsetDelta), 1, 'the wrapper takes the producer batch\'s offsets');
    assert.equal(readInt32(wrapper, Off.recordCount), 1);
    // The leader's append path: offsets 0-9 plain, then the delayed batch at 10 with the clock 60 s before its time.
    const dir = mkdtempSync(join(tmpdir(), 'spec-delayed-'));
    try {
      const log = PartitionLog.open(dir, logConfig(), { cleanShutdown: true, logger: recordingLogger() });
      // Offsets 0-6: the producer's sequences 0-6 (its delayed batch is next, sequence 7); 7-9 plain.
      const rec = (n: number) => Array.from({ length: n }, () => ({ key: null, value: utf8.encode('x'), timestamp: EXAMPLE_TIMESTAMP_MS }));
      for (const [seq, n] of [[0, 2], [2, 2], [4, 2], [6, 1]] as const) {
        log.append(Buffer.from(buildBatch(rec(n), EXAMPLE_TIMESTAMP_MS, { ...EXAMPLE_DELAYED_PRODUCER, baseSequence: seq })), EXAMPLE_TIMESTAMP_MS, { leaderEpoch: EXAMPLE_MARKER_LEADER_EPOCH });
      }
      log.append(Buffer.from(buildBatch(rec(3), EXAMPLE_TIMESTAMP_MS)), EXAMPLE_TIMESTAMP_MS, { leaderEpoch: EXAMPLE_MARKER_LEADER_EPOCH });
      const r = log.append(delayedProducerBatch(), EXAMPLE_TIMESTAMP_MS, { leaderEpoch: EXAMPLE_MARKER_LEADER_EPOCH });
      assert.equal(r.baseOffset, EXAMPLE_WRAPPER_OFFSET, 'the Produce answer\'s baseOffset is the wrapper\'s offset, the id');
      assert.equal(log.logEndOffset, EXAMPLE_WRAPPER_OFFSET + 2);
      assert.deepEqual(await readRaw(log, EXAMPLE_WRAPPER_OFFSET), wrapper);
      await log.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('§13.12: the release pair: a RELEASED marker naming the wrapper\'s key, then the producer\'s batch with producer fields -1 and a new CRC', () => {
    const pair = hexBlockBytes('example:release-pair');
    const info = newBatchInfo();
    assert.equal(validateBatch(pair, 0, pair.length, info, true), ErrorCode.NONE, info.problem);
    const markerSize = readInt32(pair, Off.batchLength) + 12;
    assert.equal(markerSize, 88);
    assert.equal(attributesAt(pair, 0), 32);
    assert.deepEqual(readDelayMarker(pair, 0), { type: 3, offset: EXAMPLE_RELEASE_OFFSET, deliverAtMs: EXAMPLE_DELIVER_AT_MS, wrapperOffset: EXAMPLE_WRAPPER_OFFSET });
    const released = pair.subarray(markerSize);
    assert.equal(validateBatch(released, 0, released.length, info), ErrorCode.NONE, 'the released batch is a plain producer batch');
    assert.equal(readInt64(released, Off.baseOffset), EXAMPLE_RELEASE_OFFSET + 1);
    assert.deepEqual([producerIdAt(released, 0), producerEpochAt(released, 0), baseSequenceAt(released, 0)], [-1, -1, -1]);
    const inner = hexBlockBytes('example:scheduled-wrapper');
    const entry = readScheduled(inner, 0)!;
    const produced = inner.subarray(entry.innerAt, entry.innerAt + entry.innerBytes);
    assert.deepEqual(released.subarray(Off.attributes, Off.producerId), produced.subarray(Off.attributes, Off.producerId));
    assert.deepEqual(released.subarray(Off.recordCount), produced.subarray(Off.recordCount), 'records, keys, values and headers are the producer\'s');
  });

  test('the CRC quoted in §11 is the example batch CRC', () => {
    const data = decodeBody(onlyFrame(hexBlockBytes('example:produce-request')), 14).data;
    const crc = crc32c(data, 21, data.length).toString(16).padStart(8, '0');
    assert.ok(spec.includes(`attributes to the end of the batch is 0x${crc}`), `SPEC.md §11 should quote 0x${crc}`);
  });
});

describe('SPEC.md §13.13-13.14: AlterTopicConfigs and DescribeArchive', () => {
  test('§13.13: the request parses to the example\'s control, and a broker answers it with exactly the response shown', async () => {
    const reqFrame = onlyFrame(hexBlockBytes('example:alter-topic-configs-request'));
    const h = decodeRequestHeader(reqFrame);
    assert.deepEqual({ ...h }, { apiKey: ApiKey.ALTER_TOPIC_CONFIGS, apiVersion: 0, correlationId: 9, clientId: 'spec', bodyOffset: 14 });
    const body = decodeBody(reqFrame, h.bodyOffset);
    assert.equal(body.data.length, 0);
    const req = check<AlterTopicConfigsRequest>(requestSchemas[ApiKey.ALTER_TOPIC_CONFIGS]!, body.control);
    assert.deepEqual(req, ALTER_CONFIGS_EXAMPLE_REQUEST);
    const resFrame = onlyFrame(hexBlockBytes('example:alter-topic-configs-response'));
    assert.deepEqual(decodeResponseHeader(resFrame), { correlationId: 9, errorCode: 0 });
    const shown = check<AlterTopicConfigsResponse>(responseSchemas[ApiKey.ALTER_TOPIC_CONFIGS]!, decodeBody(resFrame, 6).control);
    assert.deepEqual(shown, ALTER_CONFIGS_EXAMPLE_RESPONSE);
    // A real (in-process) controller with topic events answers the request with these very values.
    const s = await openStack();
    try {
      await s.topics.create('events', 1, 1, { 'segment.bytes': '1048576' });
      const r = await replyingAsync(handleAlterTopicConfigs)(s.ctx, req);
      assert.equal(r.errorCode ?? 0, 0);
      assert.deepEqual(r.control, shown);
      assert.deepEqual(s.topics.get('events')!.record.configs, { 'retention.ms': '86400000' });
    } finally {
      await s.close();
    }
  });

  test('§13.14: the request and response parse to the example\'s controls; archive end = local start, so the tiers join', () => {
    const reqFrame = onlyFrame(hexBlockBytes('example:describe-archive-request'));
    const h = decodeRequestHeader(reqFrame);
    assert.deepEqual({ ...h }, { apiKey: ApiKey.DESCRIBE_ARCHIVE, apiVersion: 0, correlationId: 10, clientId: 'spec', bodyOffset: 14 });
    assert.deepEqual(check<DescribeArchiveRequest>(requestSchemas[ApiKey.DESCRIBE_ARCHIVE]!, decodeBody(reqFrame, h.bodyOffset).control), DESCRIBE_ARCHIVE_EXAMPLE_REQUEST);
    const resFrame = onlyFrame(hexBlockBytes('example:describe-archive-response'));
    assert.deepEqual(decodeResponseHeader(resFrame), { correlationId: 10, errorCode: 0 });
    const res = check<DescribeArchiveResponse>(responseSchemas[ApiKey.DESCRIBE_ARCHIVE]!, decodeBody(resFrame, 6).control);
    assert.deepEqual(res, DESCRIBE_ARCHIVE_EXAMPLE_RESPONSE);
    const p = res.topics[0]!.partitions[0]!;
    assert.equal(p.archiveEndOffset, p.localStartOffset);
  });
});

describe('SPEC.md error table', () => {
  const rows = block('errors').split('\n').filter((l) => /^\| \d+ \|/.test(l)).map((l) => l.split('|').map((c) => c.trim()));
  test('lists every code of errors.ts with the same name and retriability, and nothing else', () => {
    const listed = rows.map((c) => ({ code: Number(c[1]), name: c[2]!.replace(/`/g, ''), retriable: c[3] === 'yes' }));
    const expected = allErrors().map((e) => ({ code: e.code, name: e.name, retriable: e.retriable }));
    assert.deepEqual(listed, expected);
  });
  test('the catalogue and the ErrorCode constants agree', () => {
    assert.deepEqual(Object.entries(ErrorCode).map(([name, code]) => ({ name, code })), allErrors().map((e) => ({ name: e.name, code: e.code })));
  });
  test('every code name the prose of SPEC.md mentions with a number is the right one', () => {
    for (const m of spec.matchAll(/`([A-Z_]+)` \((\d+)\)/g)) {
      const info = allErrors().find((e) => e.name === m[1]);
      assert.ok(info, `SPEC.md mentions unknown error ${m[1]}`);
      assert.equal(info.code, Number(m[2]), `SPEC.md gives ${m[1]} the code ${m[2]}`);
    }
  });
});

describe('SPEC.md API table', () => {
  test('§6 lists every API key of api-keys.ts with its name and version range, and a section for each', () => {
    const section = spec.slice(spec.indexOf('## 6. The APIs'), spec.indexOf('## 7.'));
    const rows = [...section.matchAll(/^\| (\d+) \| (\w+) \| (\d+) \|/gm)].map((m) => ({ key: Number(m[1]), name: m[2]!, version: Number(m[3]) }));
    assert.deepEqual(rows.map((r) => r.key), Object.values(ApiKey));
    for (const r of rows) {
      // The table says CamelCase, api-keys.ts UPPER_SNAKE: compare them letter for letter.
      const constant = Object.entries(ApiKey).find(([, k]) => k === r.key)![0];
      assert.equal(r.name.toUpperCase(), constant.replace(/_/g, ''), `apiKey ${r.key}`);
      assert.equal(r.version, supportedVersions[r.key]!.max, `apiKey ${r.key} version`);
      assert.match(section, new RegExp(`^### 6\\.\\d+ ${r.name} \\(apiKey ${r.key}\\)$`, 'm'), `no section for ${r.name}`);
    }
  });

  test('the table of contents matches the section headings', () => {
    const toc = spec.slice(spec.indexOf('Contents'), spec.indexOf('---'));
    const entries = [...toc.matchAll(/^(\d+)\. (.+)$/gm)].map((m) => `${m[1]}. ${m[2]}`);
    const headings = [...spec.matchAll(/^## (\d+)\. (.+)$/gm)].map((m) => `${m[1]}. ${m[2]}`);
    assert.deepEqual(entries, headings);
  });

  test('every § reference points at a section that exists', () => {
    const headings = new Set([...spec.matchAll(/^#{2,3} (\d+(?:\.\d+)?)\.? /gm)].map((m) => m[1]!));
    for (const m of spec.matchAll(/§(\d+(?:\.\d+)?)/g)) assert.ok(headings.has(m[1]!), `§${m[1]} has no heading`);
  });
});

describe('SPEC.md tables of examples', () => {
  test('varint table: the reference algorithm and writeVarint agree with every row', () => {
    const section = spec.slice(spec.indexOf('### 1.2'), spec.indexOf('### 1.3'));
    const rows = [...section.matchAll(/^\| (.+?) \| (.+?) \| `([0-9a-f ]+)` \|$/gm)];
    assert.ok(rows.length >= 15, 'varint rows not found');
    const value = (s: string): bigint => {
      const t = s.includes('=') ? s.split('=').at(-1)!.trim() : s.trim();
      const pow = /^(-?)2\^(\d+)$/.exec(t);
      if (pow) return (pow[1] ? -1n : 1n) * 2n ** BigInt(pow[2]!);
      return BigInt(t);
    };
    for (const [, v, , bytes] of rows) {
      const n = value(v!);
      const want = bytes!.replace(/ /g, '');
      assert.equal(Buffer.from(refVarint(n)).toString('hex'), want, `reference encoding of ${v}`);
      if (n >= -(2n ** 52n) && n <= 2n ** 52n) {
        const buf = new Uint8Array(10);
        const end = writeVarint(buf, 0, Number(n));
        assert.equal(Buffer.from(buf.subarray(0, end)).toString('hex'), want, `writeVarint(${v})`);
      }
    }
  });

  test('murmur2 vectors', () => {
    const section = spec.slice(spec.indexOf('## 10.'), spec.indexOf('## 11.'));
    const rows = [...section.matchAll(/^\| (`[^`]*`|\(empty\)) \| (-?\d+) \|$/gm)];
    assert.ok(rows.length >= 10, 'murmur2 rows not found');
    for (const [, key, want] of rows) {
      const k = key === '(empty)' ? '' : key!.slice(1, -1);
      assert.equal(murmur2(utf8.encode(k)), Number(want), `murmur2("${k}")`);
    }
  });

  test('§7.4: the partition of group billing and the key and value bytes of a committed offset', () => {
    const section = spec.slice(spec.indexOf('### 7.4'), spec.indexOf('## 8.'));
    const h = murmur2(utf8.encode('billing'));
    const partition = (h & 0x7fffffff) % 8;
    const flat = section.replace(/\s+/g, ' ');
    assert.ok(flat.includes(`murmur2(\`billing\`) = ${h}, so group \`billing\` is stored in partition ${partition}.`), `§7.4 should say murmur2 ${h}, partition ${partition}`);
    const spaced = (b: Uint8Array) => Buffer.from(b).toString('hex').replace(/(..)(?!$)/g, '$1 ');
    const key = encodeControl(['offset', 'billing', 'orders', 0]);
    const value = encodeControl({ offset: 42, metadata: null, commitTimestampMs: 1_700_000_000_000 });
    assert.ok(flat.includes(`Key (${key.length} bytes): \`${spaced(key)}\``), `§7.4 key should be ${spaced(key)}`);
    assert.ok(flat.includes(`Value (${value.length} bytes): \`${spaced(value)}\``), `§7.4 value should be ${spaced(value)}`);
  });

  test('§7.6: the partition of transactional id payments-1 and the key and value bytes of its record, as the coordinator writes them', () => {
    const section = spec.slice(spec.indexOf('### 7.6'), spec.indexOf('### 7.7'));
    const flat = section.replace(/\s+/g, ' ');
    const h = murmur2(utf8.encode('payments-1'));
    assert.equal(txnStatePartitionFor('payments-1'), (h & 0x7fffffff) % 8);
    assert.ok(flat.includes(`\`payments-1\` (murmur2 ${h}, so partition ${txnStatePartitionFor('payments-1')})`), `§7.6 should say murmur2 ${h}`);
    const spaced = (b: Uint8Array) => Buffer.from(b).toString('hex').replace(/(..)(?!$)/g, '$1 ');
    const key = encodeTxnKey('payments-1');
    const meta = { producerId: 4000, producerEpoch: 3, timeoutMs: 60_000, state: 'ongoing' as const, partitions: [{ topic: 'orders', partitions: [0, 1] }], startMs: 1_700_000_000_000, updateMs: 1_700_000_000_000 };
    const value = encodeTxnValue(meta);
    assert.ok(flat.includes(`Key (${key.length} bytes): \`${spaced(key)}\``), `§7.6 key should be ${spaced(key)}`);
    assert.ok(flat.includes(`Value (${value.length} bytes): \`${spaced(value)}\``), `§7.6 value should be ${spaced(value)}`);
    assert.deepEqual(decodeTxnValue(value), meta);
    assert.equal(decodeTxnKey(key), 'payments-1');
  });

  test('CRC-32C check value', () => {
    assert.ok(spec.includes('**0xE3069283**'));
    assert.equal(crc32c(utf8.encode('123456789')), 0xe3069283);
  });
});
