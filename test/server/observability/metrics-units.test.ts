// The metrics' building blocks in-process: record counts from batch headers, the per-topic
// bound, the request histogram's exposition (cumulative buckets, sum, count, error counts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Registry } from 'prom-client';
import { buildBatch } from '../../../protocol/record-batch.ts';
import { ErrorCode, SluiceError } from '../../../protocol/errors.ts';
import { RequestMetrics } from '../../../server/api/request-metrics.ts';
import { NO_REPLY, type HandlerResult } from '../../../server/network/reply.ts';
import { OVERFLOW_TOPIC, recordCountOf, TopicTraffic } from '../../../server/observability/topic-traffic.ts';
import type { RequestHeader } from '../../../protocol/header.ts';

test('recordCountOf sums the recordCount of every batch of a record set (headers only)', () => {
  fc.assert(
    fc.property(fc.array(fc.array(fc.uint8Array({ maxLength: 300 }), { minLength: 1, maxLength: 40 }), { minLength: 0, maxLength: 8 }), (batches) => {
      const sets = batches.map((values) => buildBatch(values.map((value) => ({ key: null, value }))));
      const joined = Buffer.concat(sets);
      assert.equal(recordCountOf(joined), batches.reduce((n, b) => n + b.length, 0));
      // A slice of a larger buffer (as produce hands over) reads the same.
      const framed = Buffer.concat([Buffer.alloc(7, 0xff), joined, Buffer.alloc(5, 0xff)]);
      assert.equal(recordCountOf(framed.subarray(7, 7 + joined.length)), batches.reduce((n, b) => n + b.length, 0));
    }),
    { numRuns: 200 },
  );
});

test('TopicTraffic: at most topicsTrackedMax topics by name, the rest under (other); deleted topics are forgotten', () => {
  const t = new TopicTraffic(3);
  const batch = buildBatch([{ key: null, value: new Uint8Array(10) }, { key: null, value: new Uint8Array(20) }]);
  for (const name of ['a', 'b', 'c', 'd', 'e']) t.produced(name, batch);
  t.fetched('e', batch);
  const seen = new Map(t.entries());
  assert.deepEqual([...seen.keys()], ['a', 'b', 'c', OVERFLOW_TOPIC]);
  assert.deepEqual(seen.get(OVERFLOW_TOPIC), { bytesIn: 2 * batch.length, messagesIn: 4, bytesOut: batch.length, messagesOut: 2 });
  t.forgetMissing((name) => name !== 'b');
  t.produced('f', batch);
  assert.deepEqual([...new Map(t.entries()).keys()], ['a', 'c', 'f', OVERFLOW_TOPIC]);
});

test('request metrics: cumulative buckets, sum and count per API, errors (error codes, throws) counted, unknown keys bounded', async () => {
  const registry = new Registry();
  const m = new RequestMetrics(registry);
  const header = (apiKey: number) => ({ apiKey, apiVersion: 0, correlationId: 1, clientId: null, bodyOffset: 0 }) as unknown as RequestHeader;
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const route = m.instrument(async (h: RequestHeader): Promise<HandlerResult> => {
    if (h.apiKey === 5) {
      await sleep(60);
      return { control: {} };
    }
    if (h.apiKey === 1) return { control: {}, errorCode: ErrorCode.UNSUPPORTED_VERSION };
    if (h.apiKey === 6) throw new SluiceError(ErrorCode.MALFORMED_REQUEST, 'bad');
    return NO_REPLY;
  });
  await route(header(5));
  await route(header(5));
  await route(header(1));
  await assert.rejects(route(header(6)) as Promise<HandlerResult>);
  for (const k of [999, 1000, -1]) await route(header(k));
  const text = await registry.metrics();
  const v = (line: string) => {
    const found = text.split('\n').find((l) => l.startsWith(`${line} `));
    assert.ok(found, `${line} in\n${text}`);
    return Number(found.slice(line.length + 1));
  };
  assert.match(text, /^# TYPE sluice_request_duration_seconds histogram$/m);
  assert.equal(v('sluice_request_duration_seconds_count{api="produce"}'), 2);
  assert.equal(v('sluice_request_duration_seconds_bucket{le="+Inf",api="produce"}'), 2);
  // 60 ms sleeps: none below 50 ms, every one by 30 s; buckets are cumulative.
  assert.equal(v('sluice_request_duration_seconds_bucket{le="0.05",api="produce"}'), 0);
  assert.equal(v('sluice_request_duration_seconds_bucket{le="30",api="produce"}'), 2);
  assert.ok(v('sluice_request_duration_seconds_sum{api="produce"}') >= 0.11);
  let previous = 0;
  for (const le of ['0.0005', '0.001', '0.0025', '0.005', '0.01', '0.025', '0.05', '0.1', '0.25', '0.5', '1', '2.5', '5', '10', '30']) {
    const c = v(`sluice_request_duration_seconds_bucket{le="${le}",api="produce"}`);
    assert.ok(c >= previous, `cumulative at ${le}`);
    previous = c;
  }
  assert.equal(v('sluice_requests_total{api="produce"}'), 2);
  assert.equal(v('sluice_request_errors_total{api="metadata"}'), 1);
  assert.equal(v('sluice_request_errors_total{api="fetch"}'), 1);
  assert.equal(v('sluice_requests_total{api="unknown"}'), 3);
  assert.equal(v('sluice_request_errors_total{api="produce"}'), 0);
  // APIs without requests have no series.
  assert.doesNotMatch(text, /api="list_offsets"/);
});

test('a counters object (the archive lane\'s ArchiveStats, later) is exported as sluice_<prefix>_<field>_total, read at scrape time', async () => {
  const { registerCounters } = await import('../../../server/observability/counters-source.ts');
  const registry = new Registry();
  const stats = { segmentsUploaded: 0, bytesUploaded: 0, uploadFailures: Number.NaN };
  registerCounters(registry, {
    prefix: 'sluice_archive_',
    help: { segmentsUploaded: 'segments copied to the archive', bytesUploaded: 'bytes copied', uploadFailures: 'failed uploads' },
    read: () => stats,
  });
  stats.segmentsUploaded = 3;
  stats.bytesUploaded = 4096;
  const text = await registry.metrics();
  assert.match(text, /^# TYPE sluice_archive_segments_uploaded_total counter$/m);
  assert.match(text, /^sluice_archive_segments_uploaded_total 3$/m);
  assert.match(text, /^sluice_archive_bytes_uploaded_total 4096$/m);
  assert.match(text, /^sluice_archive_upload_failures_total 0$/m, 'a non-number is exported as 0, the scrape does not fail');
  stats.segmentsUploaded = 5;
  assert.match(await registry.metrics(), /^sluice_archive_segments_uploaded_total 5$/m);
  assert.throws(() => registerCounters(new Registry(), { prefix: 'archive_', help: { a: 'x' }, read: () => ({ a: 1 }) }), /must start with sluice_/);
});
