// When a Fetch that finds nothing must answer without waiting for maxWaitMs (SPEC 6.7, 6.4):
// minBytes <= 0, and a topic deleted while the Fetch is long-polling on it. Real broker
// process, raw TCP on loopback.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiKey } from '../../protocol/api-keys.ts';
import { ErrorCode } from '../../protocol/errors.ts';
import { startBroker, type BrokerProcess } from '../helpers/broker-process.ts';
import { RawSocket, requestFrame } from '../helpers/raw-socket.ts';

let broker: BrokerProcess;
// Long enough that an answer "at once" and one at the deadline cannot be confused, even on a
// loaded machine; every assertion below allows a quarter of it.
const MAX_WAIT_MS = 20_000;
const AT_ONCE_MS = 5_000;

async function request(apiKey: number, control: unknown): Promise<RawSocket['responses'][number]> {
  const s = await RawSocket.connect(broker.port);
  try {
    s.write(requestFrame(apiKey, 0, 1, control));
    await s.waitFor(1);
    return s.responses[0]!;
  } finally {
    s.close();
  }
}

async function createTopic(topic: string): Promise<void> {
  const r = await request(ApiKey.CREATE_TOPICS, { topics: [{ topic, partitions: 1, replicationFactor: 1, configs: {} }], validateOnly: false });
  assert.equal((r.control as any).topics[0].errorCode, 0);
}

function fetchFrame(correlationId: number, topic: string, minBytes: number): Buffer {
  return requestFrame(ApiKey.FETCH, 0, correlationId, {
    maxWaitMs: MAX_WAIT_MS,
    minBytes,
    maxBytes: 1 << 20,
    topics: [{ topic, partitions: [{ partition: 0, fetchOffset: 0, partitionMaxBytes: 1 << 20 }] }],
  });
}

before(async () => {
  broker = await startBroker();
  await createTopic('empty');
});

after(async () => {
  const code = await broker.stop();
  broker.cleanup();
  assert.equal(code, 0, `broker exited with ${code}:\n${broker.log()}`);
});

for (const minBytes of [0, -7]) {
  test(`a Fetch with minBytes ${minBytes} and nothing available is answered at once, not after maxWaitMs`, async () => {
    const s = await RawSocket.connect(broker.port);
    try {
      const t0 = Date.now();
      s.write(fetchFrame(1, 'empty', minBytes));
      await s.waitFor(1, MAX_WAIT_MS + 10_000);
      const elapsed = Date.now() - t0;
      const r = s.responses[0]!;
      assert.equal(r.errorCode, 0);
      const p = (r.control as any).topics[0].partitions[0];
      assert.equal(p.errorCode, 0);
      assert.equal(p.recordsBytes, 0);
      assert.ok(elapsed < AT_ONCE_MS, `answered after ${elapsed} ms`);
    } finally {
      s.close();
    }
  });
}

test('a Fetch long-polling on a topic that is then deleted is answered at once with UNKNOWN_TOPIC_OR_PARTITION', async () => {
  await createTopic('doomed');
  const s = await RawSocket.connect(broker.port);
  try {
    s.write(fetchFrame(7, 'doomed', 1));
    // Let it park: nothing to read, minBytes 1.
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(s.responses.length, 0, 'the fetch is still waiting before the delete');
    const deleted = await request(ApiKey.DELETE_TOPICS, { topics: ['doomed'] });
    assert.equal((deleted.control as any).topics[0].errorCode, 0);
    const t0 = Date.now();
    await s.waitFor(1, MAX_WAIT_MS + 10_000);
    const elapsed = Date.now() - t0;
    const r = s.responses[0]!;
    assert.equal(r.correlationId, 7);
    assert.equal((r.control as any).topics[0].partitions[0].errorCode, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
    assert.ok(elapsed < AT_ONCE_MS, `answered ${elapsed} ms after the delete`);
  } finally {
    s.close();
  }
});

test('a Produce behind a parked Fetch on the same connection is appended at once and wakes that Fetch (SPEC 5.1)', async () => {
  await createTopic('same-conn');
  const { buildBatch } = await import('../../protocol/record-batch.ts');
  const records = buildBatch([{ value: new TextEncoder().encode('hello') }]);
  const s = await RawSocket.connect(broker.port);
  try {
    const t0 = Date.now();
    s.write(fetchFrame(1, 'same-conn', 1));
    s.write(requestFrame(ApiKey.PRODUCE, 0, 2, { acks: 1, timeoutMs: 5000, topics: [{ topic: 'same-conn', partitions: [{ partition: 0, recordsBytes: records.length }] }] }, records));
    await s.waitFor(2, MAX_WAIT_MS + 10_000);
    const elapsed = Date.now() - t0;
    assert.deepEqual(s.responses.map((r) => r.correlationId), [1, 2], 'responses in request order');
    const fetched = (s.responses[0]!.control as any).topics[0].partitions[0];
    assert.equal(fetched.errorCode, 0);
    assert.ok(fetched.recordsBytes > 0, 'the Fetch returned the record its own connection produced');
    assert.ok(elapsed < AT_ONCE_MS, `answered after ${elapsed} ms, not at maxWaitMs`);
  } finally {
    s.close();
  }
});
