/** Retry/DLQ naming and headers (client/group/retry-policy.ts): pure functions, no broker. */
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import {
  dlqTopicName,
  nextDestination,
  parseRetryTopic,
  readRetryInfo,
  retryTopicName,
  retryTopicsFor,
  FAILURE_REASON_CHARS_MAX,
} from '../../../client/group/retry-policy.ts';
import type { RecordHeader } from '../../../protocol/record-batch.ts';

const enc = (s: string): Uint8Array => Buffer.from(s);
const get = (hs: RecordHeader[], k: string): string | null => {
  const all = hs.filter((h) => h.key === k);
  assert.ok(all.length <= 1, `header ${k} appears ${all.length} times`);
  return all[0]?.value ? Buffer.from(all[0].value).toString() : null;
};

test('retry and DLQ topic names are <group>.<topic>.retry-<n> and <group>.<topic>.dlq', () => {
  assert.equal(retryTopicName('billing', 'orders', 1), 'billing.orders.retry-1');
  assert.equal(dlqTopicName('billing', 'orders'), 'billing.orders.dlq');
  assert.deepEqual(retryTopicsFor('g', 't', { delaysMs: [10, 20] }), { retry: ['g.t.retry-1', 'g.t.retry-2'], dlq: 'g.t.dlq' });
  assert.deepEqual(parseRetryTopic('g', 'g.t.x.retry-12'), { sourceTopic: 't.x', n: 12 });
  assert.equal(parseRetryTopic('g', 'other.t.retry-1'), null);
  assert.equal(parseRetryTopic('g', 'g.t.dlq'), null);
  assert.throws(() => retryTopicName('group with spaces', 't', 1), /not a valid topic name/);
  assert.throws(() => retryTopicName('g', 't', 0), RangeError);
});

test('a message that always fails goes retry-1, retry-2, then the DLQ; headers keep the first failure', () => {
  const policy = { delaysMs: [1000, 2000] };
  const userHeaders: RecordHeader[] = [{ key: 'trace', value: enc('abc') }, { key: 'empty', value: null }];
  const d1 = nextDestination('g', policy, { topic: 'orders', partition: 3, offset: 41, headers: userHeaders }, 'boom', 10_000);
  assert.equal(d1.topic, 'g.orders.retry-1');
  assert.equal(d1.partition, 3);
  assert.equal(d1.attempt, 1);
  assert.equal(d1.dueMs, 11_000);
  assert.equal(d1.deadLetter, false);
  assert.equal(get(d1.headers, 'trace'), 'abc');
  assert.deepEqual(d1.headers.find((h) => h.key === 'empty'), { key: 'empty', value: null });
  assert.equal(get(d1.headers, 'sluice-attempt'), '1');
  assert.equal(get(d1.headers, 'sluice-original-topic'), 'orders');
  assert.equal(get(d1.headers, 'sluice-original-partition'), '3');
  assert.equal(get(d1.headers, 'sluice-original-offset'), '41');
  assert.equal(get(d1.headers, 'sluice-first-failure-ms'), '10000');
  assert.equal(get(d1.headers, 'sluice-failure-reason'), 'boom');
  assert.equal(get(d1.headers, 'sluice-due-ms'), '11000');

  // Read back from retry-1 (partition 3, another offset) and failing again.
  const d2 = nextDestination('g', policy, { topic: d1.topic, partition: 3, offset: 7, headers: d1.headers }, 'again', 12_000);
  assert.equal(d2.topic, 'g.orders.retry-2');
  assert.equal(d2.attempt, 2);
  assert.equal(d2.dueMs, 14_000);
  assert.equal(get(d2.headers, 'sluice-original-offset'), '41', 'original offset is the first failure');
  assert.equal(get(d2.headers, 'sluice-first-failure-ms'), '10000');
  assert.equal(get(d2.headers, 'sluice-failure-reason'), 'again', 'reason is the latest');
  assert.equal(get(d2.headers, 'trace'), 'abc');

  const d3 = nextDestination('g', policy, { topic: d2.topic, partition: 3, offset: 2, headers: d2.headers }, 'still', 15_000);
  assert.equal(d3.topic, 'g.orders.dlq');
  assert.equal(d3.deadLetter, true);
  assert.equal(d3.dueMs, null);
  assert.equal(get(d3.headers, 'sluice-attempt'), '3');
  assert.equal(get(d3.headers, 'sluice-due-ms'), null);
  assert.equal(get(d3.headers, 'sluice-original-topic'), 'orders');
  const info = readRetryInfo(d3.headers)!;
  assert.deepEqual({ ...info }, { attempt: 3, originalTopic: 'orders', originalPartition: 3, originalOffset: 41, firstFailureMs: 10_000, reason: 'still', dueMs: null });
});

test('no delays sends a failure straight to the DLQ; long reasons are truncated', () => {
  const d = nextDestination('g', { delaysMs: [] }, { topic: 't', partition: 0, offset: 0, headers: [] }, 'x'.repeat(5000), 1);
  assert.equal(d.topic, 'g.t.dlq');
  assert.equal(get(d.headers, 'sluice-failure-reason')!.length, FAILURE_REASON_CHARS_MAX);
});
