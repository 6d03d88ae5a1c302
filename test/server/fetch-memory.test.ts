// What one client can make the broker hold through Fetch (issue item 9), against a real broker
// process whose RSS is read from /proc: a response is capped at fetchResponseBytesMax however
// many times a request names a partition, and a client that pipelines Fetches without reading
// stops being read once writeBufferBytesMax of responses wait for it, and leaves nothing
// behind when it closes (its buffers after a full GC, from the broker's SIGUSR2 memory report).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { ApiKey } from '../../protocol/api-keys.ts';
import { buildBatch } from '../../protocol/record-batch.ts';
import { startBroker, type BrokerProcess } from '../helpers/broker-process.ts';
import { gcEnv, memoryReport, peakMiB, resetPeak, rssMiB, watchRss } from '../helpers/proc-memory.ts';
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
  broker = await startBroker({ env: gcEnv() });
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

/**
 * 64 pipelined Fetches of a whole 32 MiB partition on a socket that is never read: 2 GiB of
 * responses if the broker kept answering. Returns the broker's peak RSS.
 */
async function nonReadingClient(pid: number, limitMiB: number): Promise<number> {
  const socket = await new Promise<net.Socket>((resolve, reject) => {
    const s = net.connect({ port: broker.port, host: '127.0.0.1' }, () => resolve(s));
    s.once('error', reject);
  });
  socket.on('error', () => {});
  socket.pause(); // never read: the kernel buffers fill and the broker's writes stop
  try {
    for (let i = 0; i < 64; i++) socket.write(fetchFrame(i, PARTITION_MiB * MiB, [0]));
    // Long enough for a broker without the bound to read and answer all 64 (it is caught by
    // the limit long before); one with the bound settles within a second or two.
    const peak = Math.max(await watchRss(pid, 8_000, limitMiB, 'non-reading pipelining client'), peakMiB(pid));
    const held = (await memoryReport(pid, broker.log)).arrayBuffersBytes / MiB;
    console.log(`# arrayBuffers while the client does not read: ${held.toFixed(1)} MiB`);
    return peak;
  } finally {
    socket.destroy();
  }
}

test('a client that pipelines 64 big Fetches and never reads holds at most writeBufferBytesMax plus one response, and nothing after it closes', async () => {
  const pid = broker.proc.pid!;
  const before = await memoryReport(pid, broker.log);
  const base = rssMiB(pid);
  resetPeak(pid);
  const peak = await nonReadingClient(pid, base + GROWTH_BOUND_MiB);
  console.log(`# non-reading client: broker RSS ${base.toFixed(0)} -> peak ${peak.toFixed(0)} MiB`);
  assert.ok(peak - base < GROWTH_BOUND_MiB);
  // Released: once the broker has seen the close, a full GC brings its buffers back down (V8
  // frees dead ArrayBuffers' memory in the background after a GC, hence a few bounded tries).
  let heldMiB = Infinity;
  for (let i = 0; i < 50 && heldMiB >= 8; i++) {
    await new Promise((r) => setTimeout(r, 100));
    heldMiB = ((await memoryReport(pid, broker.log)).arrayBuffersBytes - before.arrayBuffersBytes) / MiB;
  }
  console.log(`# arrayBuffers after close: ${heldMiB.toFixed(1)} MiB above the start`);
  assert.ok(heldMiB < 8, `${heldMiB.toFixed(1)} MiB of buffers still held after the client closed`);
});

test('backpressure, not loss: a pipelining client that reads late gets every response, in order', async () => {
  const m = await ResponseMeter.connect(broker.port);
  try {
    m.socket.pause();
    for (let i = 0; i < 8; i++) m.socket.write(fetchFrame(100 + i, PARTITION_MiB * MiB, [0]));
    await new Promise((r) => setTimeout(r, 1000));
    m.socket.resume();
    await m.waitFor(8, 60_000);
    assert.deepEqual(m.responses.map((r) => r.correlationId), [100, 101, 102, 103, 104, 105, 106, 107]);
    for (const r of m.responses) assert.equal((r.control as any).topics[0].partitions[0].recordsBytes, PARTITION_MiB * batchBytes);
  } finally {
    m.close();
  }
});
