// The Prometheus endpoint (issue 12) against a real broker process: counters move by exactly
// what was produced and fetched, the request histograms have samples, the purgatory and
// connection gauges follow what is open, consumer-group lag equals the lag read over the
// protocol, flushes are timed, deleted topics leave the export; the endpoint answers only
// /metrics and is off by default.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { ApiKey } from '../../../protocol/api-keys.ts';
import type { FetchResponse, ListOffsetsResponse, OffsetCommitResponse, OffsetFetchResponse, ProduceResponse } from '../../../protocol/apis/index.ts';
import { buildBatch } from '../../../protocol/record-batch.ts';
import { Connection } from '../../../protocol/connection.ts';
import { repoRoot, startBroker, tempDir, type BrokerProcess } from '../../helpers/broker-process.ts';
import { freePort, metric, scrape } from '../../helpers/metrics-scrape.ts';
import { RawSocket, requestFrame } from '../../helpers/raw-socket.ts';

const enc = new TextEncoder();
let broker: BrokerProcess;
let metricsPort: number;
let c: Connection;

function batchOf(n: number, tag: string): Uint8Array {
  return buildBatch(Array.from({ length: n }, (_, i) => ({ key: enc.encode(`${tag}-${i}`), value: enc.encode(`value ${tag} ${i} ${'x'.repeat(i)}`) })));
}

async function createTopic(topic: string, partitions: number, configs: Record<string, string> = {}) {
  const r = await c.send<any>(ApiKey.CREATE_TOPICS, { topics: [{ topic, partitions, replicationFactor: 1, configs }], validateOnly: false });
  assert.equal(r.control.topics[0].errorCode, 0, JSON.stringify(r.control));
}

async function produce(topic: string, partition: number, batch: Uint8Array, conn = c): Promise<number> {
  const r = await conn.send<ProduceResponse>(ApiKey.PRODUCE, { acks: -1, timeoutMs: 5000, topics: [{ topic, partitions: [{ partition, recordsBytes: batch.length }] }] }, [batch]);
  const p = r.control.topics[0]!.partitions[0]!;
  assert.equal(p.errorCode, 0, p.errorMessage ?? '');
  return p.baseOffset;
}

async function fetchFrom(topic: string, partition: number, fetchOffset: number, opts: { minBytes?: number; maxWaitMs?: number } = {}, conn = c) {
  const r = await conn.send<FetchResponse>(ApiKey.FETCH, { maxWaitMs: opts.maxWaitMs ?? 0, minBytes: opts.minBytes ?? 0, maxBytes: 1 << 20, topics: [{ topic, partitions: [{ partition, fetchOffset, partitionMaxBytes: 1 << 20 }] }] });
  assert.equal(r.control.topics[0]!.partitions[0]!.errorCode, 0);
  return r;
}

before(async () => {
  metricsPort = await freePort();
  broker = await startBroker({ args: ['--metrics-port', String(metricsPort)] });
  c = await Connection.connect(broker.host, broker.port);
});

after(async () => {
  c?.close();
  const code = await broker?.stop();
  assert.equal(code, 0, `broker exited with ${code}:\n${broker?.log()}`);
  broker.cleanup();
});

test('bytes and messages in and out per topic move by exactly what was produced and fetched; a long poll counts once', async () => {
  await createTopic('traffic', 2);
  const before = await scrape(metricsPort);
  assert.equal(metric(before, 'sluice_topic_bytes_in_total', { topic: 'traffic' }), 0);
  const b0 = [batchOf(5, 'a'), batchOf(5, 'b'), batchOf(5, 'c')];
  const b1 = batchOf(7, 'd');
  for (const b of b0) await produce('traffic', 0, b);
  await produce('traffic', 1, b1);
  const bytesIn = b0.reduce((n, b) => n + b.length, 0) + b1.length;
  let s = await scrape(metricsPort);
  assert.equal(metric(s, 'sluice_topic_bytes_in_total', { topic: 'traffic' }), bytesIn);
  assert.equal(metric(s, 'sluice_topic_messages_in_total', { topic: 'traffic' }), 22);
  assert.equal(metric(s, 'sluice_topic_bytes_out_total', { topic: 'traffic' }), 0);

  // Whole batches go out: partition 1 from offset 3 is still its one 7-record batch.
  const r0 = await fetchFrom('traffic', 0, 0);
  const r1 = await fetchFrom('traffic', 1, 3);
  assert.equal(r0.data.length, bytesIn - b1.length);
  assert.equal(r1.data.length, b1.length);
  s = await scrape(metricsPort);
  assert.equal(metric(s, 'sluice_topic_bytes_out_total', { topic: 'traffic' }), bytesIn);
  assert.equal(metric(s, 'sluice_topic_messages_out_total', { topic: 'traffic' }), 22);

  // A fetch parked at the end (the fetch purgatory) for more than one batch: the first append
  // wakes it with too little (it reads, and parks again), the second completes it. Its answer
  // counts once, not the discarded read.
  const other = await Connection.connect(broker.host, broker.port);
  try {
    const late = [batchOf(3, 'e'), batchOf(2, 'f')];
    const parked = fetchFrom('traffic', 1, 7, { minBytes: late[0]!.length + 1, maxWaitMs: 10_000 }, other);
    const parkedNow = async () => {
      for (let i = 0; i < 100; i++) {
        if (metric(await scrape(metricsPort), 'sluice_fetch_purgatory_size') === 1) return true;
        await new Promise((r) => setTimeout(r, 50));
      }
      return false;
    };
    assert.ok(await parkedNow(), 'one fetch parked');
    await produce('traffic', 1, late[0]!);
    assert.ok(await parkedNow(), 'parked again: too little data');
    await produce('traffic', 1, late[1]!);
    const r = await parked;
    const lateBytes = late[0]!.length + late[1]!.length;
    assert.equal(r.data.length, lateBytes);
    s = await scrape(metricsPort);
    assert.equal(metric(s, 'sluice_fetch_purgatory_size'), 0);
    assert.equal(metric(s, 'sluice_topic_bytes_out_total', { topic: 'traffic' }), bytesIn + lateBytes);
    assert.equal(metric(s, 'sluice_topic_messages_out_total', { topic: 'traffic' }), 27);
    assert.equal(metric(s, 'sluice_topic_messages_in_total', { topic: 'traffic' }), 27);
  } finally {
    other.close();
  }
});

test('requests are counted and timed per API: the Produce and Fetch histograms have exactly as many samples as requests sent', async () => {
  await createTopic('timed', 1);
  const before = await scrape(metricsPort);
  for (let i = 0; i < 4; i++) await produce('timed', 0, batchOf(2, `t${i}`));
  for (let i = 0; i < 3; i++) await fetchFrom('timed', 0, 0);
  const s = await scrape(metricsPort);
  const moved = (name: string, api: string) => metric(s, name, { api }) - metric(before, name, { api });
  assert.equal(moved('sluice_requests_total', 'produce'), 4);
  assert.equal(moved('sluice_requests_total', 'fetch'), 3);
  assert.equal(moved('sluice_request_duration_seconds_count', 'produce'), 4);
  assert.equal(moved('sluice_request_duration_seconds_count', 'fetch'), 3);
  // Every sample is within the largest finite bucket (30 s) and the sum is positive.
  assert.equal(metric(s, 'sluice_request_duration_seconds_bucket', { le: '30', api: 'produce' }), metric(s, 'sluice_request_duration_seconds_count', { api: 'produce' }));
  assert.ok(metric(s, 'sluice_request_duration_seconds_sum', { api: 'produce' }) > 0);
  assert.ok(metric(s, 'sluice_request_duration_seconds_sum', { api: 'fetch' }) > 0);
  assert.ok(metric(s, 'sluice_requests_total', { api: 'create_topics' }) >= 1);
  assert.equal(moved('sluice_request_errors_total', 'produce'), 0);
});

test('request-level errors are counted per API, an unknown API key under "unknown"', async () => {
  const before = await scrape(metricsPort);
  // UNKNOWN_API for key 999; UNSUPPORTED_VERSION for version 9 of Metadata.
  const s0 = await RawSocket.connect(broker.port);
  try {
    s0.write(requestFrame(999, 0, 1, {}));
    s0.write(requestFrame(ApiKey.METADATA, 9, 2, { topics: null }));
    await s0.waitFor(2);
    assert.notEqual(s0.responses[0]!.errorCode, 0);
    assert.notEqual(s0.responses[1]!.errorCode, 0);
  } finally {
    s0.close();
  }
  const s = await scrape(metricsPort);
  assert.equal(metric(s, 'sluice_requests_total', { api: 'unknown' }) - metric(before, 'sluice_requests_total', { api: 'unknown' }), 1);
  assert.equal(metric(s, 'sluice_request_errors_total', { api: 'unknown' }) - metric(before, 'sluice_request_errors_total', { api: 'unknown' }), 1);
  assert.equal(metric(s, 'sluice_request_errors_total', { api: 'metadata' }) - metric(before, 'sluice_request_errors_total', { api: 'metadata' }), 1);
});

test('consumer-group lag per group and partition equals the lag read over the protocol (end offset minus committed offset)', async () => {
  await createTopic('lagged', 2);
  for (let i = 0; i < 4; i++) await produce('lagged', 0, batchOf(5, `l${i}`));
  await produce('lagged', 1, batchOf(6, 'm'));
  const commit = async (group: string, offsets: Array<[number, number]>) => {
    const r = await c.send<OffsetCommitResponse>(ApiKey.OFFSET_COMMIT, { groupId: group, memberId: '', memberEpoch: -1, topics: [{ topic: 'lagged', partitions: offsets.map(([partition, offset]) => ({ partition, offset, metadata: null })) }] });
    assert.equal(r.control.errorCode, 0, r.control.errorMessage ?? '');
  };
  const flushBefore = metric(await scrape(metricsPort), 'sluice_log_flush_duration_seconds_count');
  await commit('readers', [[0, 7], [1, 6]]);
  await commit('slow', [[0, 0]]);
  /** The lag a tool computes over the protocol: ListOffsets latest minus OffsetFetch. */
  const realLag = async (group: string): Promise<Map<number, number>> => {
    const ends = await c.send<ListOffsetsResponse>(ApiKey.LIST_OFFSETS, { topics: [{ topic: 'lagged', partitions: [{ partition: 0, timestamp: -1 }, { partition: 1, timestamp: -1 }] }] });
    const committed = await c.send<OffsetFetchResponse>(ApiKey.OFFSET_FETCH, { groupId: group, memberId: null, memberEpoch: -1, topics: [{ topic: 'lagged', partitions: [0, 1] }] });
    const out = new Map<number, number>();
    for (const p of committed.control.topics[0]!.partitions) {
      if (p.offset < 0) continue;
      const end = ends.control.topics[0]!.partitions.find((e) => e.partition === p.partition)!.offset;
      out.set(p.partition, end - p.offset);
    }
    return out;
  };
  const check = async () => {
    const s = await scrape(metricsPort);
    for (const group of ['readers', 'slow']) {
      const real = await realLag(group);
      for (const partition of [0, 1]) {
        const series = `sluice_consumer_group_lag{group="${group}",topic="lagged",partition="${partition}"}`;
        if (real.has(partition)) assert.equal(s.values.get(series), real.get(partition), series);
        else assert.equal(s.values.has(series), false, `${series}: nothing committed, no series`);
      }
    }
    return s;
  };
  let s = await check();
  assert.equal(metric(s, 'sluice_consumer_group_lag', { group: 'readers', topic: 'lagged', partition: '0' }), 13);
  assert.equal(metric(s, 'sluice_consumer_group_lag', { group: 'readers', topic: 'lagged', partition: '1' }), 0);
  assert.equal(metric(s, 'sluice_consumer_group_lag', { group: 'slow', topic: 'lagged', partition: '0' }), 20);
  // Commits are fsynced: their flush cycles are timed.
  assert.ok(metric(s, 'sluice_log_flush_duration_seconds_count') > flushBefore, 'flush cycles observed');
  // More data: the lag grows by exactly as much; a new commit takes it back.
  await produce('lagged', 1, batchOf(4, 'n'));
  s = await check();
  assert.equal(metric(s, 'sluice_consumer_group_lag', { group: 'readers', topic: 'lagged', partition: '1' }), 4);
  await commit('readers', [[0, 20], [1, 10]]);
  s = await check();
  assert.equal(metric(s, 'sluice_consumer_group_lag', { group: 'readers', topic: 'lagged', partition: '0' }), 0);
  assert.equal(metric(s, 'sluice_consumer_group_lag_series_dropped'), 0);
});

test('open connections are a gauge; a deleted topic leaves the traffic counters', async () => {
  const start = metric(await scrape(metricsPort), 'sluice_connections_active');
  assert.ok(start >= 1, 'this test\'s connection');
  const extra = await Promise.all([1, 2, 3].map(() => Connection.connect(broker.host, broker.port)));
  // A connection counts once the broker accepted it: one request on each makes sure.
  await Promise.all(extra.map((x) => x.send(ApiKey.API_VERSIONS, {})));
  assert.equal(metric(await scrape(metricsPort), 'sluice_connections_active'), start + 3);
  for (const x of extra) x.close();
  let now = -1;
  for (let i = 0; i < 100 && now !== start; i++) {
    now = metric(await scrape(metricsPort), 'sluice_connections_active');
    if (now !== start) await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal(now, start);

  await createTopic('doomed', 1);
  await produce('doomed', 0, batchOf(2, 'z'));
  assert.ok(metric(await scrape(metricsPort), 'sluice_topic_bytes_in_total', { topic: 'doomed' }) > 0);
  const r = await c.send<any>(ApiKey.DELETE_TOPICS, { topics: ['doomed'] });
  assert.equal(r.control.topics[0].errorCode, 0, JSON.stringify(r.control));
  const s = await scrape(metricsPort);
  assert.doesNotMatch(s.text, /topic="doomed"/);
  assert.ok(metric(s, 'sluice_topic_bytes_in_total', { topic: 'traffic' }) > 0, 'other topics stay');
});

test('the endpoint: process metrics and every documented sluice_ metric are there; other paths 404, other methods 405', async () => {
  const s = await scrape(metricsPort);
  for (const name of ['process_cpu_seconds_total', 'process_resident_memory_bytes', 'nodejs_heap_size_used_bytes', 'nodejs_eventloop_lag_seconds']) assert.ok(s.values.has(name), name);
  const documented = [
    'sluice_topic_bytes_in_total', 'sluice_topic_messages_in_total', 'sluice_topic_bytes_out_total', 'sluice_topic_messages_out_total',
    'sluice_requests_total', 'sluice_request_errors_total', 'sluice_request_duration_seconds', 'sluice_fetch_purgatory_size', 'sluice_produce_purgatory_size',
    'sluice_under_replicated_partitions', 'sluice_offline_partitions', 'sluice_isr_shrinks_total', 'sluice_isr_expands_total', 'sluice_partitions',
    'sluice_consumer_group_lag', 'sluice_consumer_group_lag_series_dropped', 'sluice_log_flush_duration_seconds', 'sluice_connections_active',
    'sluice_event_loop_delay_seconds', 'sluice_event_loop_stalls_total',
  ];
  for (const name of documented) assert.match(s.text, new RegExp(`^# TYPE ${name} `, 'm'), name);
  // Every sluice_ metric exported is documented in README.
  const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
  for (const m of s.text.matchAll(/^# TYPE (sluice_\w+) /gm)) {
    assert.ok(documented.includes(m[1]!), `${m[1]} is in this test's list`);
    assert.ok(readme.includes(`\`${m[1]}\``), `${m[1]} is in README`);
  }
  // A single broker: no offline or under-replicated partitions; everything led here.
  assert.equal(metric(s, 'sluice_offline_partitions'), 0);
  assert.equal(metric(s, 'sluice_under_replicated_partitions'), 0);
  assert.equal(metric(s, 'sluice_partitions', { role: 'follower' }), 0);
  assert.ok(metric(s, 'sluice_partitions', { role: 'leader' }) > 0);
  assert.equal((await fetch(`http://127.0.0.1:${metricsPort}/`)).status, 404);
  assert.equal((await fetch(`http://127.0.0.1:${metricsPort}/metricsx`)).status, 404);
  assert.equal((await fetch(`http://127.0.0.1:${metricsPort}/metrics`, { method: 'POST', body: 'x' })).status, 405);
  assert.equal((await fetch(`http://127.0.0.1:${metricsPort}/metrics?x=1`)).status, 200);
  // Garbage on the metrics port is the HTTP server's problem (400, closed), not the broker's.
  const junk = net.connect(metricsPort, '127.0.0.1');
  await new Promise<void>((resolve) => junk.once('connect', () => resolve()));
  junk.write(Buffer.from('\x00\xffNOT HTTP AT ALL\r\n\r\n'));
  const answer = await new Promise<string>((resolve) => {
    let got = '';
    junk.on('data', (d) => (got += d));
    junk.once('close', () => resolve(got));
  });
  assert.match(answer, /^HTTP\/1\.1 400/);
  assert.equal((await fetch(`http://127.0.0.1:${metricsPort}/metrics`, { method: 'HEAD' })).status, 200);
  assert.ok(metric(await scrape(metricsPort), 'sluice_partitions', { role: 'leader' }) > 0, 'still serving');
});

test('the endpoint is off by default; a bad --metrics-port is refused with one line', async () => {
  const plain = await startBroker();
  try {
    assert.doesNotMatch(plain.log(), /metrics endpoint listening/);
  } finally {
    await plain.stop();
    plain.cleanup();
  }
  // A metrics port in use stops the start, naming the endpoint, before any file is written.
  const taken = net.createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', () => resolve()));
  try {
    const port = (taken.address() as net.AddressInfo).port;
    const dataDir = tempDir();
    const busy = spawnSync(process.execPath, [join(repoRoot, 'bin/sluice.mjs'), 'broker', '--data-dir', dataDir, '--port', '0', '--metrics-port', String(port)], { cwd: repoRoot, encoding: 'utf8', timeout: 30_000 });
    assert.equal(busy.status, 1, busy.stderr);
    assert.match(busy.stderr, new RegExp(`metrics endpoint \\(--metrics-host 127\\.0\\.0\\.1 --metrics-port ${port}\\): listen EADDRINUSE`));
    assert.deepEqual(readdirSync(dataDir).filter((f) => !f.startsWith('.')), [], 'nothing written but the lock');
    rmSync(dataDir, { recursive: true, force: true });
  } finally {
    taken.close();
  }
  const r = spawnSync(process.execPath, [join(repoRoot, 'bin/sluice.mjs'), 'broker', '--metrics-port', '70000'], { cwd: repoRoot, encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 2);
  assert.equal(r.stderr, 'sluice broker: --metrics-port is 70000, above its maximum 65535\n');
});
