// What one client can make the broker hold through Fetch (issue item 9), against a real broker
// process whose RSS is read from /proc: a response is capped at fetchResponseBytesMax however
// many times a request names a partition.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiKey } from '../../protocol/api-keys.ts';
import { buildBatch } from '../../protocol/record-batch.ts';
import { startBroker, type BrokerProcess } from '../helpers/broker-process.ts';
import { peakMiB, resetPeak, rssMiB, watchRss } from '../helpers/proc-memory.ts';
import { RawSocket, requestFrame } from '../helpers/raw-socket.ts';
import { ResponseMeter } from '../helpers/response-meter.ts';

const MiB = 1024 * 1024;
const FETCH_RESPONSE_BYTES_MAX = 55 * MiB; // the broker default
const PARTITION_MiB = 32;
const INT32_MAX = 2 ** 31 - 1;
// Generous: with the limits the broker stays well under this; without them it grows by GiBs.
const GROWTH_BOUND_MiB = 400;

let broker: BrokerProcess;
let small: BrokerProcess | null = null;
let batchBytes = 0;

async function call(port: number, apiKey: number, control: unknown, data?: Uint8Array): Promise<RawSocket['responses'][number]> {
  const s = await RawSocket.connect(port);
  try {
    s.write(requestFrame(apiKey, 0, 1, control, data));
    await s.waitFor(1, 60_000);
    assert.ok(s.responses[0], 'a response arrived');
    return s.responses[0];
  } finally {
    s.close();
  }
}

async function produce(port: number, topic: string, partition: number, batches: Uint8Array[]): Promise<void> {
  const data = Buffer.concat(batches);
  const r = await call(port, ApiKey.PRODUCE, { acks: 1, timeoutMs: 30_000, topics: [{ topic, partitions: [{ partition, recordsBytes: data.length }] }] }, data);
  assert.equal(r.errorCode, 0);
  assert.equal((r.control as any).topics[0].partitions[0].errorCode, 0);
}

function fetchFrame(correlationId: number, maxBytes: number, partitions: number[]): Buffer {
  return requestFrame(ApiKey.FETCH, 0, correlationId, {
    maxWaitMs: 0,
    minBytes: 1,
    maxBytes,
    topics: [{ topic: 'big', partitions: partitions.map((partition) => ({ partition, fetchOffset: 0, partitionMaxBytes: INT32_MAX })) }],
  });
}

before(async () => {
  broker = await startBroker();
  const r = await call(broker.port, ApiKey.CREATE_TOPICS, { topics: [{ topic: 'big', partitions: 2, replicationFactor: 1, configs: {} }], validateOnly: false });
  assert.equal((r.control as any).topics[0].errorCode, 0);
  // 1 MiB batches (incompressible bytes), PARTITION_MiB of them in each partition.
  const value = Buffer.alloc(MiB - 1024);
  for (let i = 0; i < value.length; i++) value[i] = (i * 2654435761) >>> 24;
  const batch = buildBatch([{ value }]);
  batchBytes = batch.length;
  for (const partition of [0, 1]) for (let i = 0; i < PARTITION_MiB; i += 8) await produce(broker.port, 'big', partition, Array(8).fill(batch));
});

after(async () => {
  for (const b of [broker, small]) {
    if (!b) continue;
    const code = await b.stop();
    b.cleanup();
    assert.equal(code, 0, `broker exited with ${code}:\n${b.log()}`);
  }
});

test('a Fetch naming two 32 MiB partitions 16 times each gets at most fetchResponseBytesMax, not 1 GiB', async () => {
  const pid = broker.proc.pid!;
  const base = rssMiB(pid);
  resetPeak(pid);
  const m = await ResponseMeter.connect(broker.port);
  try {
    const entries = Array.from({ length: 32 }, (_, i) => i % 2);
    m.socket.write(fetchFrame(5, INT32_MAX, entries));
    await watchRss(pid, 60_000, base + GROWTH_BOUND_MiB, 'one 32 x 32 MiB fetch', () => m.responses.length > 0);
    await m.waitFor(1, 60_000);
    const peak = peakMiB(pid);
    const r = m.responses[0]!;
    assert.equal(r.correlationId, 5);
    assert.equal(r.errorCode, 0);
    const parts = (r.control as any).topics[0].partitions as Array<{ partition: number; errorCode: number; recordsBytes: number }>;
    assert.equal(parts.length, 32, 'one result per request entry');
    for (const p of parts) assert.equal(p.errorCode, 0);
    const records = parts.reduce((n, p) => n + p.recordsBytes, 0);
    // The first entry of partition 0 gets the whole partition; the repeats get nothing.
    assert.equal(parts[0]!.recordsBytes, PARTITION_MiB * batchBytes);
    for (const p of parts.slice(2)) assert.equal(p.recordsBytes, 0, 'a repeated partition is not read again');
    assert.ok(parts[1]!.recordsBytes > 0, 'partition 1 fills what is left of the cap');
    assert.ok(records <= FETCH_RESPONSE_BYTES_MAX, `${records} record bytes exceed the cap`);
    assert.ok(r.frameBytes <= FETCH_RESPONSE_BYTES_MAX + MiB, `response of ${r.frameBytes} bytes`);
    console.log(`# 32-entry fetch: response ${(r.frameBytes / MiB).toFixed(1)} MiB, broker RSS ${base.toFixed(0)} -> peak ${peak.toFixed(0)} MiB`);
    assert.ok(peak - base < GROWTH_BOUND_MiB, `broker grew by ${(peak - base).toFixed(0)} MiB`);
  } finally {
    m.close();
  }
});

test('the cap still lets one batch through when that batch alone exceeds it', async () => {
  small = await startBroker({ args: ['--fetch-response-bytes-max', '1000'] });
  const r = await call(small.port, ApiKey.CREATE_TOPICS, { topics: [{ topic: 'big', partitions: 1, replicationFactor: 1, configs: {} }], validateOnly: false });
  assert.equal((r.control as any).topics[0].errorCode, 0);
  const batch = buildBatch([{ value: Buffer.alloc(3000, 7) }]);
  await produce(small.port, 'big', 0, [batch, batch, batch]);
  const f = await call(small.port, ApiKey.FETCH, { maxWaitMs: 0, minBytes: 1, maxBytes: INT32_MAX, topics: [{ topic: 'big', partitions: [{ partition: 0, fetchOffset: 0, partitionMaxBytes: INT32_MAX }] }] });
  const p = (f.control as any).topics[0].partitions[0];
  assert.equal(p.errorCode, 0);
  assert.equal(p.recordsBytes, batch.length, 'exactly one whole batch');
  assert.equal(f.data.length, batch.length);
});
