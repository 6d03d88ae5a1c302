import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ApiKey } from '../../protocol/api-keys.ts';
import { requestSchemas, responseSchemas } from '../../protocol/apis/index.ts';
import { CONTROL_MAX_BYTES, decodeBody, encodeControl, encodeControlSection } from '../../protocol/body.ts';
import { ErrorCode, SluiceError } from '../../protocol/errors.ts';
import { check, type Schema } from '../../protocol/schema.ts';

const MEMBER = '3f1c2a9e-0000-4000-8000-000000000001';

/** A valid example of every request and response control, by API key. */
const GOOD_REQUESTS: Record<number, unknown> = {
  [ApiKey.API_VERSIONS]: {},
  [ApiKey.METADATA]: { topics: null },
  [ApiKey.CREATE_TOPICS]: { topics: [{ topic: 't', partitions: 3, replicationFactor: 1, configs: { 'retention.ms': '1000' } }], validateOnly: false },
  [ApiKey.DELETE_TOPICS]: { topics: ['t'] },
  [ApiKey.DESCRIBE_TOPICS]: { topics: ['a', 'b'] },
  [ApiKey.PRODUCE]: { acks: -1, timeoutMs: 30000, topics: [{ topic: 't', partitions: [{ partition: 0, recordsBytes: 87 }] }] },
  [ApiKey.FETCH]: { maxWaitMs: 500, minBytes: 1, maxBytes: 1 << 20, topics: [{ topic: 't', partitions: [{ partition: 0, fetchOffset: 2 ** 40, partitionMaxBytes: 1 << 20 }] }] },
  [ApiKey.LIST_OFFSETS]: { topics: [{ topic: 't', partitions: [{ partition: 0, timestamp: -2 }] }] },
  [ApiKey.INIT_PRODUCER_ID]: { transactionalId: 'payments-1', transactionTimeoutMs: 60000, producerId: -1, producerEpoch: -1 },
  [ApiKey.ADD_PARTITIONS_TO_TXN]: { transactionalId: 'payments-1', producerId: 1000, producerEpoch: 0, topics: [{ topic: 'orders', partitions: [0, 1] }] },
  [ApiKey.ADD_OFFSETS_TO_TXN]: { transactionalId: 'payments-1', producerId: 1000, producerEpoch: 0, groupId: 'billing' },
  [ApiKey.END_TXN]: { transactionalId: 'payments-1', producerId: 1000, producerEpoch: 0, committed: true },
  [ApiKey.WRITE_TXN_MARKERS]: { markers: [{ producerId: 1000, producerEpoch: 0, committed: false, coordinatorEpoch: 3, topics: [{ topic: '__consumer_offsets', partitions: [1] }] }] },
  [ApiKey.TXN_OFFSET_COMMIT]: { transactionalId: 'payments-1', groupId: 'billing', producerId: 1000, producerEpoch: 0, memberId: MEMBER, memberEpoch: 4, topics: [{ topic: 'orders', partitions: [{ partition: 0, offset: 42, metadata: null }] }] },
  [ApiKey.LIST_DELAYED]: { topic: 'orders', partition: 0, afterDeliverAtMs: 1_700_000_000_000, afterOffset: 42, limit: 100 },
  [ApiKey.CANCEL_DELAYED]: { topic: 'orders', partitions: [{ partition: 0, offsets: [42, 43] }] },
  [ApiKey.DESCRIBE_ARCHIVE]: { topics: ['history'] },
  [ApiKey.SASL_HANDSHAKE]: { mechanism: 'SCRAM-SHA-256' },
  [ApiKey.SASL_AUTHENTICATE]: { authBytes: 'n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL' },
  [ApiKey.ALTER_TOPIC_CONFIGS]: { topics: [{ topic: 'orders', set: { 'retention.ms': '3600000' }, delete: ['segment.bytes'] }], validateOnly: false },
  [ApiKey.FIND_COORDINATOR]: { key: 'billing', keyType: 'group' },
  // A join: every field sent, ownedPartitions empty (SPEC.md §6.10).
  [ApiKey.CONSUMER_GROUP_HEARTBEAT]: {
    groupId: 'billing', memberId: MEMBER, memberEpoch: 0, rebalanceTimeoutMs: 30000, sessionTimeoutMs: 10000,
    subscribedTopicNames: ['orders'], subscribedTopicRegex: null, assignor: 'uniform', ownedPartitions: [],
  },
  [ApiKey.OFFSET_COMMIT]: {
    groupId: 'billing', memberId: MEMBER, memberEpoch: 3,
    topics: [{ topic: 'orders', partitions: [{ partition: 0, offset: 42, metadata: null }, { partition: 1, offset: 2 ** 40, metadata: 'host-a' }] }],
  },
  [ApiKey.OFFSET_FETCH]: { groupId: 'billing', memberId: MEMBER, memberEpoch: 3, topics: [{ topic: 'orders', partitions: [0, 1] }] },
  [ApiKey.LIST_GROUPS]: {},
  [ApiKey.DESCRIBE_GROUPS]: { groupIds: ['billing', 'audit'] },
  [ApiKey.DELETE_GROUPS]: { groupIds: ['old'] },
  [ApiKey.CREATE_PARTITIONS]: { topics: [{ topic: 'orders', count: 6 }], validateOnly: false },
  // A follower (broker 2) asks where its latest epoch, 3, ended in the leader's log (SPEC.md §6.17).
  [ApiKey.OFFSET_FOR_LEADER_EPOCH]: { replicaId: 2, topics: [{ topic: 'orders', partitions: [{ partition: 0, currentLeaderEpoch: 4, leaderEpoch: 3 }] }] },
  // Move orders/0 to brokers 2, 3, 1 with catch-up limited to 1 MiB/s; cancel the move of orders/1 (SPEC.md §6.18).
  [ApiKey.ALTER_PARTITION_REASSIGNMENTS]: {
    partitions: [
      { topic: 'orders', partition: 0, replicas: [2, 3, 1], throttleBytesPerSec: 1 << 20 },
      { topic: 'orders', partition: 1, replicas: null, throttleBytesPerSec: 0 },
    ],
  },
};

const GOOD_RESPONSES: Record<number, unknown> = {
  [ApiKey.API_VERSIONS]: { apis: [{ apiKey: 0, minVersion: 0, maxVersion: 0 }], brokerVersion: '0.1.0' },
  [ApiKey.METADATA]: { clusterId: 'c', controllerId: 0, brokers: [{ nodeId: 0, host: '127.0.0.1', port: 9292 }], topics: [{ topic: 't', errorCode: 0, partitions: [{ partition: 0, errorCode: 0, leader: 0, leaderEpoch: 0, replicas: [0], isr: [0] }] }] },
  [ApiKey.CREATE_TOPICS]: { topics: [{ topic: 't', errorCode: 0, errorMessage: null }, { topic: 'u', errorCode: 10, errorMessage: 'exists' }] },
  [ApiKey.DELETE_TOPICS]: { topics: [{ topic: 't', errorCode: 3 }] },
  [ApiKey.DESCRIBE_TOPICS]: { topics: [{ topic: 't', errorCode: 0, configs: { 'cleanup.policy': 'delete' }, partitions: [{ partition: 0, logStartOffset: 0, logEndOffset: 5, sizeBytes: 400, segments: 1 }] }] },
  [ApiKey.PRODUCE]: { topics: [{ topic: 't', partitions: [{ partition: 0, errorCode: 0, baseOffset: 0, logStartOffset: 0, errorMessage: null }] }] },
  [ApiKey.FETCH]: { topics: [{ topic: 't', partitions: [{ partition: 0, errorCode: 0, highWatermark: 2, lastStableOffset: 1, logStartOffset: 0, abortedTransactions: [{ producerId: 7, firstOffset: 0 }], recordsBytes: 87 }] }] },
  [ApiKey.INIT_PRODUCER_ID]: { errorCode: 0, errorMessage: null, producerId: 1000, producerEpoch: 0 },
  [ApiKey.ADD_PARTITIONS_TO_TXN]: { errorCode: 0, errorMessage: null, topics: [{ topic: 'orders', partitions: [{ partition: 0, errorCode: 0 }] }] },
  [ApiKey.ADD_OFFSETS_TO_TXN]: { errorCode: 46, errorMessage: 'the previous transaction is still completing' },
  [ApiKey.END_TXN]: { errorCode: 0, errorMessage: null },
  [ApiKey.WRITE_TXN_MARKERS]: { markers: [{ producerId: 1000, topics: [{ topic: 'orders', partitions: [{ partition: 0, errorCode: 0 }] }] }] },
  [ApiKey.TXN_OFFSET_COMMIT]: { errorCode: 0, errorMessage: null, topics: [{ topic: 'orders', partitions: [{ partition: 0, errorCode: 0 }] }] },
  [ApiKey.LIST_DELAYED]: { errorCode: 0, errorMessage: null, frontierDeliverAtMs: 1_700_000_000_000, frontierOffset: 7, pendingCount: 1, entries: [{ offset: 42, deliverAtMs: 1_700_000_060_000, requestedDeliverAtMs: 1_700_000_060_000, recordCount: 3, sizeBytes: 200 }] },
  [ApiKey.SASL_HANDSHAKE]: { mechanisms: ['SCRAM-SHA-256', 'PLAIN'] },
  [ApiKey.SASL_AUTHENTICATE]: { authBytes: 'r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096', complete: false },
  [ApiKey.ALTER_TOPIC_CONFIGS]: { topics: [{ topic: 'orders', errorCode: 0, errorMessage: null }, { topic: 'x', errorCode: 13, errorMessage: 'unknown config colour' }] },
  [ApiKey.CANCEL_DELAYED]: { topics: [{ topic: 'orders', partitions: [{ partition: 0, results: [{ offset: 42, errorCode: 0, errorMessage: null }, { offset: 43, errorCode: 52, errorMessage: 'not pending' }] }] }] },
  [ApiKey.DESCRIBE_ARCHIVE]: {
    brokerId: 0,
    storeKind: 'local',
    storeDescription: '/var/sluice/archive',
    counters: { bytesUploaded: 2591089, segmentsUploaded: 3, uploadFailures: 0, segmentsDeleted: 0, bytesRead: 0, readFailures: 0 },
    topics: [{ topic: 'history', topicId: '6f2c1d9a-7b3e-4c51-9a0e-3d2f8b4c5e17', errorCode: 0, archiveEnabled: true, partitions: [{ partition: 0, leader: true, localStartOffset: 0, localEndOffset: 200000, highWatermark: 200000, archiveStartOffset: 0, archiveEndOffset: 180000, archivedBytes: 2591089, archivedSegments: 3, lagBytes: 0, lagSegments: 0, lastError: '', failures: 0 }] }],
  },
  [ApiKey.LIST_OFFSETS]: { topics: [{ topic: 't', partitions: [{ partition: 0, errorCode: 0, offset: 5, timestamp: -1 }] }] },
  [ApiKey.FIND_COORDINATOR]: { errorCode: 0, errorMessage: null, nodeId: 0, host: '127.0.0.1', port: 9292 },
  [ApiKey.CONSUMER_GROUP_HEARTBEAT]: { errorCode: 0, errorMessage: null, memberId: MEMBER, memberEpoch: 1, heartbeatIntervalMs: 1000, assignment: [{ topic: 'orders', partitions: [0, 1] }] },
  [ApiKey.OFFSET_COMMIT]: { errorCode: 0, errorMessage: null, topics: [{ topic: 'orders', partitions: [{ partition: 0, errorCode: 0 }, { partition: 1, errorCode: 33 }] }] },
  [ApiKey.OFFSET_FETCH]: {
    errorCode: 0, errorMessage: null,
    topics: [{ topic: 'orders', partitions: [
      { partition: 0, offset: 42, metadata: null, commitTimestampMs: 1_700_000_000_000, errorCode: 0 },
      { partition: 1, offset: -1, metadata: null, commitTimestampMs: -1, errorCode: 0 },
    ] }],
  },
  [ApiKey.LIST_GROUPS]: { groups: [{ groupId: 'billing', state: 'stable', members: 2 }, { groupId: 'old', state: 'empty', members: 0 }] },
  [ApiKey.DESCRIBE_GROUPS]: {
    groups: [
      {
        groupId: 'billing', errorCode: 0, state: 'reconciling', groupEpoch: 5, assignmentEpoch: 5, assignor: 'uniform',
        members: [{
          memberId: MEMBER, clientId: 'billing-svc', clientHost: '10.0.0.7', memberEpoch: 4,
          subscribedTopicNames: ['orders'], subscribedTopicRegex: null,
          assignment: [{ topic: 'orders', partitions: [0, 1] }], targetAssignment: [{ topic: 'orders', partitions: [0] }],
        }],
      },
      { groupId: 'audit', errorCode: 29, state: 'empty', groupEpoch: 0, assignmentEpoch: 0, assignor: '', members: [] },
    ],
  },
  [ApiKey.DELETE_GROUPS]: { groups: [{ groupId: 'old', errorCode: 0 }, { groupId: 'billing', errorCode: 28 }] },
  [ApiKey.CREATE_PARTITIONS]: { topics: [{ topic: 'orders', errorCode: 0, errorMessage: null }, { topic: 'events', errorCode: 12, errorMessage: 'count 2 is below the current 4' }] },
  [ApiKey.OFFSET_FOR_LEADER_EPOCH]: {
    topics: [{ topic: 'orders', partitions: [
      { partition: 0, errorCode: 0, leaderEpoch: 3, endOffset: 1200 },
      { partition: 1, errorCode: 36, leaderEpoch: -1, endOffset: -1 },
    ] }],
  },
  [ApiKey.ALTER_PARTITION_REASSIGNMENTS]: {
    partitions: [
      { topic: 'orders', partition: 0, errorCode: 0, errorMessage: null },
      { topic: 'orders', partition: 1, errorCode: 35, errorMessage: 'broker 1 is not the controller (2)' },
    ],
  },
};

/** Encodes and decodes through the wire path, as a receiver sees a control. */
function wire(control: unknown): unknown {
  const section = encodeControlSection(control);
  return decodeBody(Buffer.concat([Buffer.alloc(3), section]), 3).control;
}

function assertMalformed(fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof SluiceError, `expected SluiceError, got ${String(e)}`);
    assert.equal(e.code, ErrorCode.MALFORMED_REQUEST);
    assert.match(e.message, message);
    return true;
  });
}

describe('schema check: good shapes', () => {
  for (const key of Object.values(ApiKey)) {
    test(`request and response of API ${key} pass after a wire round-trip`, () => {
      assert.deepEqual(check(requestSchemas[key]!, wire(GOOD_REQUESTS[key])), GOOD_REQUESTS[key]);
      assert.deepEqual(check(responseSchemas[key]!, wire(GOOD_RESPONSES[key])), GOOD_RESPONSES[key]);
    });
  }

  test('unknown keys are ignored at every level', () => {
    const c = { acks: 1, timeoutMs: 0, future: [1, 2], topics: [{ topic: 't', extra: { x: null }, partitions: [{ partition: 0, recordsBytes: 0, crc: true }] }] };
    assert.doesNotThrow(() => check(requestSchemas[ApiKey.PRODUCE]!, wire(c)));
  });

  test('nullable arrays accept nil; empty arrays are not nil', () => {
    assert.equal(check(requestSchemas[ApiKey.METADATA]!, wire({ topics: null })) !== null, true);
    assert.deepEqual(check(requestSchemas[ApiKey.METADATA]!, wire({ topics: [] })), { topics: [] });
  });

  test('every API key has a sample request and response', () => {
    for (const key of Object.values(ApiKey)) {
      assert.ok(GOOD_REQUESTS[key] !== undefined && GOOD_RESPONSES[key] !== undefined, `API ${key} lacks a sample`);
      assert.ok(requestSchemas[key] && responseSchemas[key], `API ${key} lacks a schema`);
    }
  });

  test('ConsumerGroupHeartbeat: a heartbeat may send the unchanged fields as nil or omit them', () => {
    const hb = requestSchemas[ApiKey.CONSUMER_GROUP_HEARTBEAT]!;
    const nils = {
      groupId: 'billing', memberId: MEMBER, memberEpoch: 7, rebalanceTimeoutMs: null, sessionTimeoutMs: null,
      subscribedTopicNames: null, subscribedTopicRegex: null, assignor: null, ownedPartitions: null,
    };
    assert.deepEqual(check(hb, wire(nils)), nils);
    const minimal = { groupId: 'billing', memberId: MEMBER, memberEpoch: 7 };
    assert.deepEqual(check(hb, wire(minimal)), minimal);
    // A leave: epoch -1, nothing else.
    assert.doesNotThrow(() => check(hb, wire({ groupId: 'billing', memberId: MEMBER, memberEpoch: -1 })));
    // The response's assignment is nil only with an error.
    assert.doesNotThrow(() => check(responseSchemas[ApiKey.CONSUMER_GROUP_HEARTBEAT]!, wire({ errorCode: 26, errorMessage: 'fenced', memberId: MEMBER, memberEpoch: -1, heartbeatIntervalMs: 1000, assignment: null })));
  });

  test('Fetch: replicaId and currentLeaderEpoch may be omitted (a consumer) or sent (a follower), but not as nil', () => {
    const fetch = requestSchemas[ApiKey.FETCH]!;
    const follower = {
      replicaId: 2, maxWaitMs: 500, minBytes: 1, maxBytes: 1 << 20,
      topics: [{ topic: 't', partitions: [{ partition: 0, fetchOffset: 7, partitionMaxBytes: 1 << 20, currentLeaderEpoch: 3 }] }],
    };
    assert.deepEqual(check(fetch, wire(follower)), follower);
    const consumer = { replicaId: -1, maxWaitMs: 0, minBytes: 0, maxBytes: 0, topics: [{ topic: 't', partitions: [{ partition: 0, fetchOffset: 0, partitionMaxBytes: 0, currentLeaderEpoch: -1 }] }] };
    assert.deepEqual(check(fetch, wire(consumer)), consumer);
    assertMalformed(() => check(fetch, wire({ ...follower, replicaId: null })), /\.replicaId: expected integer, got null/);
    assertMalformed(
      () => check(fetch, wire({ ...consumer, topics: [{ topic: 't', partitions: [{ partition: 0, fetchOffset: 0, partitionMaxBytes: 0, currentLeaderEpoch: null }] }] })),
      /\.topics\[0\]\.partitions\[0\]\.currentLeaderEpoch: expected integer, got null/,
    );
  });

  test('OffsetForLeaderEpoch: every request field is required', () => {
    const ofle = requestSchemas[ApiKey.OFFSET_FOR_LEADER_EPOCH]!;
    assertMalformed(() => check(ofle, wire({ topics: [] })), /\.replicaId: expected a value/);
    assertMalformed(() => check(ofle, wire({ replicaId: 1, topics: [{ topic: 't', partitions: [{ partition: 0, leaderEpoch: 0 }] }] })), /\.currentLeaderEpoch: expected a value/);
  });

  test('AlterPartitionReassignments: replicas may be nil (cancel) but not omitted', () => {
    const apr = requestSchemas[ApiKey.ALTER_PARTITION_REASSIGNMENTS]!;
    assert.doesNotThrow(() => check(apr, wire({ partitions: [{ topic: 't', partition: 0, replicas: null, throttleBytesPerSec: 0 }] })));
    assertMalformed(() => check(apr, wire({ partitions: [{ topic: 't', partition: 0, throttleBytesPerSec: 0 }] })), /\.replicas: expected a value/);
  });

  test('OffsetCommit: metadata may be nil or omitted; OffsetFetch: memberId and topics may be nil', () => {
    const commit = requestSchemas[ApiKey.OFFSET_COMMIT]!;
    const c = { groupId: 'g', memberId: '', memberEpoch: -1, topics: [{ topic: 't', partitions: [{ partition: 0, offset: 0 }] }] };
    assert.deepEqual(check(commit, wire(c)), c);
    const f = { groupId: 'g', memberId: null, memberEpoch: -1, topics: null };
    assert.deepEqual(check(requestSchemas[ApiKey.OFFSET_FETCH]!, wire(f)), f);
    // TxnOffsetCommit's partitions are OffsetCommit's (SPEC §6.24): metadata omissible too.
    const tc = { transactionalId: 'tx', groupId: 'g', producerId: 1, producerEpoch: 0, memberId: '', memberEpoch: -1, topics: [{ topic: 't', partitions: [{ partition: 0, offset: 0 }] }] };
    assert.deepEqual(check(requestSchemas[ApiKey.TXN_OFFSET_COMMIT]!, wire(tc)), tc);
  });

  test('integers of every MessagePack width up to 2^53-1 pass', () => {
    for (const v of [0, 127, -32, 255, -128, 65535, -32768, 2 ** 32 - 1, -(2 ** 31), 2 ** 53 - 1, -(2 ** 53 - 1)]) {
      assert.doesNotThrow(() => check('int', wire(v)), `int ${v}`);
    }
  });
});

describe('schema check: bad shapes name the path', () => {
  const produce = requestSchemas[ApiKey.PRODUCE]!;
  const good = GOOD_REQUESTS[ApiKey.PRODUCE] as { acks: number; timeoutMs: number; topics: { topic: string; partitions: { partition: number; recordsBytes: number }[] }[] };
  const withPartition = (p: unknown) => ({ ...good, topics: [{ topic: 't', partitions: [p] }] });

  test('a control that is not a map', () => {
    for (const v of [null, 1, 'x', [], true, new Uint8Array(2)]) assertMalformed(() => check(produce, v), /^MALFORMED_REQUEST: control: expected map/);
  });

  test('a missing field', () => {
    assertMalformed(() => check(produce, { acks: 1, topics: [] }), /\.timeoutMs: expected a value, got undefined/);
    assertMalformed(() => check(produce, withPartition({ partition: 0 })), /\.topics\[0\]\.partitions\[0\]\.recordsBytes: expected a value/);
  });

  test('wrong types', () => {
    assertMalformed(() => check(produce, { ...good, acks: '1' }), /\.acks: expected integer, got string/);
    assertMalformed(() => check(produce, { ...good, acks: null }), /\.acks: expected integer, got null/);
    assertMalformed(() => check(produce, { ...good, topics: {} }), /\.topics: expected array, got object/);
    assertMalformed(() => check(produce, { ...good, topics: null }), /\.topics: expected array, got null/);
    assertMalformed(() => check(produce, withPartition({ partition: 0, recordsBytes: 'x' })), /\.topics\[0\]\.partitions\[0\]\.recordsBytes: expected integer, got string/);
    assertMalformed(() => check(requestSchemas[ApiKey.CREATE_TOPICS]!, { topics: [], validateOnly: 0 }), /\.validateOnly: expected boolean, got number/);
    assertMalformed(() => check(requestSchemas[ApiKey.DELETE_TOPICS]!, { topics: ['a', 1] }), /\.topics\[1\]: expected string, got number/);
    assertMalformed(() => check(requestSchemas[ApiKey.FETCH]!, { maxWaitMs: 1, minBytes: 1, maxBytes: 1, topics: [{ topic: 7, partitions: [] }] }), /\.topics\[0\]\.topic: expected string/);
  });

  test('group APIs: missing required fields and wrong types', () => {
    const hb = requestSchemas[ApiKey.CONSUMER_GROUP_HEARTBEAT]!;
    const join = GOOD_REQUESTS[ApiKey.CONSUMER_GROUP_HEARTBEAT] as Record<string, unknown>;
    assertMalformed(() => check(hb, { ...join, memberId: undefined }), /^MALFORMED_REQUEST: \.memberId: expected a value/);
    assertMalformed(() => check(hb, { ...join, memberId: null }), /\.memberId: expected string, got null/);
    assertMalformed(() => check(hb, { ...join, memberEpoch: null }), /\.memberEpoch: expected integer, got null/);
    assertMalformed(() => check(hb, { ...join, subscribedTopicNames: 'orders' }), /\.subscribedTopicNames: expected array, got string/);
    assertMalformed(() => check(hb, { ...join, ownedPartitions: [{ topic: 'orders', partitions: ['0'] }] }), /\.ownedPartitions\[0\]\.partitions\[0\]: expected integer, got string/);
    const commit = requestSchemas[ApiKey.OFFSET_COMMIT]!;
    assertMalformed(() => check(commit, { groupId: 'g', memberId: '', memberEpoch: -1, topics: [{ topic: 't', partitions: [{ partition: 0 }] }] }), /\.topics\[0\]\.partitions\[0\]\.offset: expected a value/);
    assertMalformed(() => check(commit, { groupId: 'g', memberId: null, memberEpoch: -1, topics: [] }), /\.memberId: expected string, got null/);
    assertMalformed(() => check(requestSchemas[ApiKey.OFFSET_FETCH]!, { groupId: 'g', memberId: null, topics: null }), /\.memberEpoch: expected a value/);
    assertMalformed(() => check(requestSchemas[ApiKey.FIND_COORDINATOR]!, { key: 'g' }), /\.keyType: expected a value/);
    assertMalformed(() => check(requestSchemas[ApiKey.DELETE_GROUPS]!, { groupIds: null }), /\.groupIds: expected array, got null/);
    assertMalformed(() => check(requestSchemas[ApiKey.CREATE_PARTITIONS]!, { topics: [{ topic: 't', count: '3' }], validateOnly: false }), /\.topics\[0\]\.count: expected integer, got string/);
  });

  test('integers that are not safe, or not integers', () => {
    for (const v of [2 ** 53, -(2 ** 53), 1.5, Number.NaN, Infinity]) {
      assertMalformed(() => check(produce, { ...good, timeoutMs: v }), /\.timeoutMs: expected integer/);
    }
    // Through the wire: a uint64 of 2^53 + 2 decodes to an unsafe number and is rejected.
    assertMalformed(() => check(produce, wire({ ...good, timeoutMs: 2 ** 53 + 2 })), /\.timeoutMs: expected integer/);
  });

  test('string maps must hold strings', () => {
    const create = requestSchemas[ApiKey.CREATE_TOPICS]!;
    const topic = { topic: 't', partitions: 1, replicationFactor: 1 };
    assertMalformed(() => check(create, { topics: [{ ...topic, configs: { 'retention.ms': 1000 } }], validateOnly: false }), /\.topics\[0\]\.configs\.retention\.ms: expected string, got number/);
    assertMalformed(() => check(create, { topics: [{ ...topic, configs: ['a'] }], validateOnly: false }), /\.configs: expected map of strings, got array/);
    assertMalformed(() => check(create, { topics: [{ ...topic, configs: null }], validateOnly: false }), /\.configs: expected map of strings, got null/);
  });

  test('nullable scalars: nil passes, a wrong type does not', () => {
    const s: Schema = { fields: { m: 'string?', n: 'int?' } };
    assert.doesNotThrow(() => check(s, { m: null, n: null }));
    assertMalformed(() => check(s, { m: 1, n: null }), /\.m: expected string/);
    assertMalformed(() => check(s, { m: null, n: 'x' }), /\.n: expected integer/);
  });
});

describe('decodeBody', () => {
  test('splits control and data; encodeControlSection writes the length', () => {
    const section = encodeControlSection({ a: 1 });
    assert.equal(section.readUInt32BE(0), section.length - 4);
    assert.deepEqual(section.subarray(4), Buffer.from(encodeControl({ a: 1 })));
    const frame = Buffer.concat([Buffer.from([9, 9]), section, Buffer.from('DATA')]);
    const body = decodeBody(frame, 2);
    assert.deepEqual(body.control, { a: 1 });
    assert.equal(body.data.toString(), 'DATA');
  });

  test('omits undefined fields when encoding', () => {
    assert.deepEqual(Buffer.from(encodeControl({ a: undefined, b: 1 })), Buffer.from([0x81, 0xa1, 0x62, 0x01]));
  });

  test('rejects a body too short for controlLength', () => {
    for (let n = 0; n < 4; n++) assertMalformed(() => decodeBody(Buffer.alloc(n), 0), /body shorter than its control length/);
  });

  test('rejects a controlLength past the frame or above 16 MiB', () => {
    assertMalformed(() => decodeBody(Buffer.from([0, 0, 0, 2, 0x80]), 0), /control length 2 overruns the 1 bytes left/);
    const huge = Buffer.alloc(8);
    huge.writeUInt32BE(CONTROL_MAX_BYTES + 1, 0);
    assertMalformed(() => decodeBody(huge, 0), /control length 16777217/);
    huge.writeUInt32BE(0xffffffff, 0);
    assertMalformed(() => decodeBody(huge, 0), /control length 4294967295/);
  });

  test('rejects invalid MessagePack, trailing bytes inside the control, and an empty control', () => {
    assertMalformed(() => decodeBody(Buffer.from([0, 0, 0, 1, 0xc1]), 0), /not valid MessagePack/);
    assertMalformed(() => decodeBody(Buffer.from([0, 0, 0, 2, 0x80, 0x80]), 0), /not valid MessagePack: Extra/);
    assertMalformed(() => decodeBody(Buffer.from([0, 0, 0, 2, 0x82, 0xa1]), 0), /not valid MessagePack/);
    assertMalformed(() => decodeBody(Buffer.from([0, 0, 0, 0]), 0), /not valid MessagePack/);
  });

  test('rejects ext values and the __proto__ key, as SPEC.md §4.2 says', () => {
    assertMalformed(() => decodeBody(Buffer.from([0, 0, 0, 6, 0xd6, 0xff, 0, 0, 0, 1]), 0), /not valid MessagePack/);
    // A look-alike key is an ordinary unknown key ...
    assert.doesNotThrow(() => decodeBody(encodeControlSection({ __proto__x: 1 }), 0));
    // ... but __proto__ itself is refused by the decoder, whatever its value.
    const bad = Buffer.concat([Buffer.from([0x81, 0xa9]), Buffer.from('__proto__'), Buffer.from([0x80])]);
    assertMalformed(() => decodeBody(Buffer.concat([Buffer.from([0, 0, 0, bad.length]), bad]), 0), /__proto__/);
  });

  test('limits: a string over 1 MiB and a map over 10000 entries are rejected', () => {
    const longStr = encodeControlSection({ s: 'x'.repeat(1024 * 1024 + 1) });
    assertMalformed(() => decodeBody(longStr, 0), /not valid MessagePack/);
    const bigMap = encodeControlSection(Object.fromEntries(Array.from({ length: 10_001 }, (_, i) => [`k${i}`, 0])));
    assertMalformed(() => decodeBody(bigMap, 0), /not valid MessagePack/);
  });
});
