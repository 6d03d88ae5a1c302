// Subscriptions against a real broker process: a pattern that makes a backtracking regex
// engine take exponential time must not stall other clients; patterns outside the supported
// subset are refused with INVALID_REGULAR_EXPRESSION; internal topics are never assigned, not
// even when named.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiKey } from '../../protocol/api-keys.ts';
import type { ConsumerGroupHeartbeatResponse } from '../../protocol/apis/consumer-group-heartbeat.ts';
import { ErrorCode } from '../../protocol/errors.ts';
import { startBroker, type BrokerProcess } from '../helpers/broker-process.ts';
import { RawSocket, requestFrame } from '../helpers/raw-socket.ts';

let broker: BrokerProcess;
// 40 'a's: a backtracking engine needs ~2^40 steps for (a+)+b (hours); 30 took 20 s in the report.
const EVIL_TOPIC = 'a'.repeat(40);
/** Generous: the machine is shared and noisy; a stalled broker takes hours, not seconds. */
const METADATA_WAIT_MS_MAX = 10_000;

before(async () => {
  broker = await startBroker();
  const s = await RawSocket.connect(broker.port);
  try {
    s.write(requestFrame(ApiKey.CREATE_TOPICS, 0, 1, { topics: [{ topic: EVIL_TOPIC, partitions: 1, replicationFactor: 1, configs: {} }, { topic: 'orders', partitions: 2, replicationFactor: 1, configs: {} }], validateOnly: false }));
    await s.waitFor(1);
    assert.equal(s.responses[0]!.errorCode, 0);
  } finally {
    s.close();
  }
});

after(async () => {
  // SIGKILL: on a broker that regressed, the event loop is busy for hours and SIGTERM would wait.
  await broker.kill();
  broker.cleanup();
});

function join(groupId: string, sub: { names?: string[]; regex?: string }) {
  return { groupId, memberId: `m-${groupId}`, memberEpoch: 0, subscribedTopicNames: sub.names ?? null, subscribedTopicRegex: sub.regex ?? null, ownedPartitions: [] };
}

test('a pattern matches whole topic names with the supported syntax', async () => {
  const s = await RawSocket.connect(broker.port);
  try {
    s.write(requestFrame(ApiKey.CONSUMER_GROUP_HEARTBEAT, 0, 1, join('good', { regex: '(?:ord|xyz)[a-z]+s|a{40}' })));
    await s.waitFor(1);
    const hb = s.responses[0]!.control as ConsumerGroupHeartbeatResponse;
    assert.equal(hb.errorCode, 0, hb.errorMessage ?? '');
    assert.deepEqual(hb.assignment, [{ topic: EVIL_TOPIC, partitions: [0] }, { topic: 'orders', partitions: [0, 1] }]);
  } finally {
    s.close();
  }
});

test('patterns outside the supported subset are refused with INVALID_REGULAR_EXPRESSION and a reason', async () => {
  const cases: Array<[string, RegExp]> = [
    ['(a)\\1', /backreferences are not supported/],
    ['(?=orders)o.*', /lookaround/],
    ['(?<name>x)', /lookaround and named groups/],
    ['\\border', /word boundaries/],
    ['a'.repeat(1001), /longer than 1000 characters/],
    ['(a{1000}){1000}', /more than 2000 automaton states/],
    ['orders(', /unterminated group/],
  ];
  const s = await RawSocket.connect(broker.port);
  try {
    let id = 0;
    for (const [pattern] of cases) s.write(requestFrame(ApiKey.CONSUMER_GROUP_HEARTBEAT, 0, ++id, join(`bad-${id}`, { regex: pattern })));
    await s.waitFor(cases.length);
    cases.forEach(([pattern, reason], i) => {
      const hb = s.responses[i]!.control as ConsumerGroupHeartbeatResponse;
      assert.equal(hb.errorCode, ErrorCode.INVALID_REGULAR_EXPRESSION, `${pattern}: ${hb.errorMessage}`);
      assert.match(hb.errorMessage ?? '', reason, pattern);
      assert.equal(hb.assignment, null);
    });
    // The refused joins left nobody behind: those groups do not exist.
    s.write(requestFrame(ApiKey.DESCRIBE_GROUPS, 0, 100, { groupIds: ['bad-1'] }));
    await s.waitFor(cases.length + 1);
    const described = s.responses[cases.length]!.control as { groups: Array<{ members: unknown[] }> };
    assert.deepEqual(described.groups[0]!.members, []);
  } finally {
    s.close();
  }
});

test('a member naming __consumer_offsets is not assigned its partitions (internal topics are never subscribed)', async () => {
  const s = await RawSocket.connect(broker.port);
  try {
    s.write(requestFrame(ApiKey.CONSUMER_GROUP_HEARTBEAT, 0, 1, join('sneaky', { names: ['__consumer_offsets', 'orders'] })));
    s.write(requestFrame(ApiKey.CONSUMER_GROUP_HEARTBEAT, 0, 2, join('sneaky-regex', { regex: '__consumer_offsets|orders' })));
    await s.waitFor(2);
    for (const r of s.responses) {
      const hb = r.control as ConsumerGroupHeartbeatResponse;
      assert.equal(hb.errorCode, 0, hb.errorMessage ?? '');
      assert.deepEqual(hb.assignment, [{ topic: 'orders', partitions: [0, 1] }]);
    }
  } finally {
    s.close();
  }
});

// Last: on a broker without the fix, this one leaves the event loop busy for hours.
test('a member subscribing with (a+)+b does not stall another client (linear-time matching)', { timeout: 60_000 }, async () => {
  const member = await RawSocket.connect(broker.port);
  const other = await RawSocket.connect(broker.port);
  try {
    member.write(requestFrame(ApiKey.CONSUMER_GROUP_HEARTBEAT, 0, 1, join('evil', { regex: '(a+)+b' })));
    // Give the heartbeat a head start so it is being handled when the Metadata request arrives.
    await new Promise((r) => setTimeout(r, 100));
    const sent = Date.now();
    other.write(requestFrame(ApiKey.METADATA, 0, 2, { topics: null }));
    await other.waitFor(1, METADATA_WAIT_MS_MAX);
    const elapsedMs = Date.now() - sent;
    console.log(`metadata latency while (a+)+b is matched against ${EVIL_TOPIC.length} a's: ${elapsedMs} ms`);
    assert.equal(other.responses[0]!.errorCode, 0);
    await member.waitFor(1, METADATA_WAIT_MS_MAX);
    const hb = member.responses[0]!.control as ConsumerGroupHeartbeatResponse;
    assert.equal(hb.errorCode, 0, hb.errorMessage ?? '');
    assert.deepEqual(hb.assignment, [], 'no topic ends in b');
  } finally {
    member.close();
    other.close();
  }
});
