// Per-request entry limits against a real broker process: one entry over a limit refuses the
// whole request (request-level MALFORMED_REQUEST naming the limit, nothing done); exactly at
// the limit is served. (bench/event-loop-stall.ts measures what other clients wait.)
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiKey } from '../../protocol/api-keys.ts';
import { ErrorCode } from '../../protocol/errors.ts';
import {
  DELETE_GROUPS_GROUP_IDS_MAX,
  DESCRIBE_GROUPS_GROUP_IDS_MAX,
  HEARTBEAT_OWNED_PARTITIONS_MAX,
  HEARTBEAT_TOPIC_NAMES_MAX,
  LIST_OFFSETS_PARTITIONS_MAX,
  OFFSET_COMMIT_PARTITIONS_MAX,
  OFFSET_FETCH_PARTITIONS_MAX,
} from '../../server/api/request-limits.ts';
import { startBroker, type BrokerProcess } from '../helpers/broker-process.ts';
import { RawSocket, requestFrame } from '../helpers/raw-socket.ts';

let broker: BrokerProcess;
const PARTITIONS = 100;

before(async () => {
  broker = await startBroker();
  const s = await RawSocket.connect(broker.port);
  try {
    s.write(requestFrame(ApiKey.CREATE_TOPICS, 0, 1, { topics: [{ topic: 'wide', partitions: PARTITIONS, replicationFactor: 1, configs: {} }], validateOnly: false }));
    await s.waitFor(1);
    assert.equal(s.responses[0]!.errorCode, 0);
  } finally {
    s.close();
  }
});

after(async () => {
  const code = await broker.stop();
  assert.equal(code, 0, `broker exited with ${code}:\n${broker.log()}`);
  broker.cleanup();
});

/** `count` partition entries of topic wide, cycling over its partitions (duplicates count). */
function partitions(count: number): Array<{ topic: string; partitions: number[] }> {
  const out: Array<{ topic: string; partitions: number[] }> = [];
  for (let done = 0; done < count; done += PARTITIONS) out.push({ topic: 'wide', partitions: Array.from({ length: Math.min(PARTITIONS, count - done) }, (_, p) => p) });
  return out;
}

let correlation = 0;
async function send(apiKey: number, control: unknown) {
  const s = await RawSocket.connect(broker.port);
  try {
    s.write(requestFrame(apiKey, 0, ++correlation, control));
    await s.waitFor(1, 30_000);
    return s.responses[0]!;
  } finally {
    s.close();
  }
}

interface Case {
  api: string;
  apiKey: number;
  max: number;
  field: RegExp;
  request: (n: number) => unknown;
}

const cases: Case[] = [
  { api: 'ListOffsets', apiKey: ApiKey.LIST_OFFSETS, max: LIST_OFFSETS_PARTITIONS_MAX, field: /ListOffsets carries \d+ partitions; at most 10000/, request: (n) => ({ topics: partitions(n).map((t) => ({ topic: t.topic, partitions: t.partitions.map((partition) => ({ partition, timestamp: -1 })) })) }) },
  { api: 'OffsetCommit', apiKey: ApiKey.OFFSET_COMMIT, max: OFFSET_COMMIT_PARTITIONS_MAX, field: /OffsetCommit carries \d+ partitions; at most 10000/, request: (n) => ({ groupId: `commit-${n}`, memberId: '', memberEpoch: -1, topics: partitions(n).map((t) => ({ topic: t.topic, partitions: t.partitions.map((partition) => ({ partition, offset: 7 })) })) }) },
  { api: 'OffsetFetch', apiKey: ApiKey.OFFSET_FETCH, max: OFFSET_FETCH_PARTITIONS_MAX, field: /OffsetFetch carries \d+ partitions; at most 10000/, request: (n) => ({ groupId: 'g', memberId: null, memberEpoch: -1, topics: partitions(n) }) },
  { api: 'DescribeGroups', apiKey: ApiKey.DESCRIBE_GROUPS, max: DESCRIBE_GROUPS_GROUP_IDS_MAX, field: /DescribeGroups carries \d+ groupIds; at most 50/, request: (n) => ({ groupIds: Array.from({ length: n }, (_, i) => `g${i}`) }) },
  { api: 'DeleteGroups', apiKey: ApiKey.DELETE_GROUPS, max: DELETE_GROUPS_GROUP_IDS_MAX, field: /DeleteGroups carries \d+ groupIds; at most 1000/, request: (n) => ({ groupIds: Array.from({ length: n }, (_, i) => `g${i}`) }) },
  { api: 'ConsumerGroupHeartbeat names', apiKey: ApiKey.CONSUMER_GROUP_HEARTBEAT, max: HEARTBEAT_TOPIC_NAMES_MAX, field: /ConsumerGroupHeartbeat carries \d+ subscribedTopicNames; at most 10000/, request: (n) => ({ groupId: `names-${n}`, memberId: 'm', memberEpoch: 0, subscribedTopicNames: Array.from({ length: n }, (_, i) => `t${i}`), ownedPartitions: [] }) },
  { api: 'ConsumerGroupHeartbeat owned', apiKey: ApiKey.CONSUMER_GROUP_HEARTBEAT, max: HEARTBEAT_OWNED_PARTITIONS_MAX, field: /ConsumerGroupHeartbeat carries \d+ ownedPartitions entries; at most 10000/, request: (n) => ({ groupId: `owned-${n}`, memberId: 'm', memberEpoch: 0, subscribedTopicNames: ['wide'], ownedPartitions: partitions(n) }) },
];

for (const c of cases) {
  test(`${c.api}: ${c.max} entries are served, ${c.max + 1} are refused as a whole`, { timeout: 60_000 }, async () => {
    const atLimit = await send(c.apiKey, c.request(c.max));
    assert.equal(atLimit.errorCode, 0, JSON.stringify(atLimit.control).slice(0, 300));
    const over = await send(c.apiKey, c.request(c.max + 1));
    assert.equal(over.errorCode, ErrorCode.MALFORMED_REQUEST, `header errorCode for ${c.max + 1} entries`);
    assert.match((over.control as { message: string }).message, c.field);
  });
}

test('a refused OffsetCommit stores nothing; a refused heartbeat creates no member', async () => {
  const over = OFFSET_COMMIT_PARTITIONS_MAX + 1;
  const fetched = await send(ApiKey.OFFSET_FETCH, { groupId: `commit-${over}`, memberId: null, memberEpoch: -1, topics: null });
  assert.equal(fetched.errorCode, 0);
  assert.deepEqual((fetched.control as { topics: unknown[] }).topics, []);
  const described = await send(ApiKey.DESCRIBE_GROUPS, { groupIds: [`names-${HEARTBEAT_TOPIC_NAMES_MAX + 1}`, `owned-${HEARTBEAT_OWNED_PARTITIONS_MAX + 1}`] });
  for (const g of (described.control as { groups: Array<{ errorCode: number }> }).groups) assert.equal(g.errorCode, ErrorCode.GROUP_ID_NOT_FOUND);
});

test('a topic listed without partitions counts as one entry', async () => {
  const topics = Array.from({ length: LIST_OFFSETS_PARTITIONS_MAX + 1 }, () => ({ topic: 'wide', partitions: [] }));
  const r = await send(ApiKey.LIST_OFFSETS, { topics });
  assert.equal(r.errorCode, ErrorCode.MALFORMED_REQUEST);
});
