/**
 * RecordAccumulator pieces of "the producer across failures" (no broker; the behaviour with
 * real broker processes is in test/cli/produce-failures.test.ts and
 * test/cluster/produce-cli-failover.test.ts):
 * - expire() fails ready batches past the delivery timeout, and only those;
 * - a partition whose batch is being retried has one request in flight at a time;
 * - keyless records avoid partitions without a leader or led by an unreachable broker.
 */
import assert from 'node:assert/strict';
import { afterEach, test } from 'node:test';
import { Buffer } from 'node:buffer';
import { estimateRecordBytes, RecordAccumulator, type DeliverySink, type ProducerBatch } from '../../client/record-accumulator.ts';

class Recorder implements DeliverySink {
  delivered_ = 0;
  failed_: Error[] = [];
  delivered(): void {
    this.delivered_++;
  }
  failed(_slot: number, err: Error): void {
    this.failed_.push(err);
  }
}

const live: RecordAccumulator[] = [];
afterEach(() => {
  for (const a of live.splice(0)) a.stop();
});

function make(opts: { deliveryTimeoutMs?: number; batchSizeBytes?: number; random?: () => number } = {}): RecordAccumulator {
  const acc = new RecordAccumulator({
    batchSizeBytes: opts.batchSizeBytes ?? 150,
    lingerMs: 60_000,
    bufferMemoryBytes: 1 << 20,
    onReady: () => {},
    deliveryTimeoutMs: opts.deliveryTimeoutMs,
    random: opts.random,
  });
  live.push(acc);
  return acc;
}

function append(acc: RecordAccumulator, topic: string, partition: number, sink: DeliverySink, timestampMs = Date.now()): number {
  const v = Buffer.alloc(100);
  return acc.append(acc.topic(topic)!, partition, null, v, undefined, timestampMs, estimateRecordBytes(null, v, 0), sink, 0);
}

test('expire() fails ready batches past the delivery timeout only, and says when to look again', () => {
  const acc = make({ deliveryTimeoutMs: 1000 });
  acc.setTopic('t', [0, 0]);
  const sink = new Recorder();
  // A record's own timestamp does not age its batch: replayed old events are not expired.
  append(acc, 't', 0, sink, 1);
  append(acc, 't', 0, sink);
  append(acc, 't', 1, sink);
  acc.sealAll();
  const now = Date.now();
  const expired: ProducerBatch[] = [];
  const next = acc.expire(now, (b) => expired.push(b));
  assert.equal(expired.length, 0);
  assert.ok(next > now && next <= now + 1000, `next check at +${next - now} ms`);
  // One batch in flight is not expired by expire() (its request's end decides).
  const [inFlight] = acc.drainNode(0, now, 1);
  assert.ok(inFlight);
  assert.equal(acc.expire(now + 1000, (b) => expired.push(b)), Infinity);
  assert.deepEqual(expired.map((b) => b.queue.partition).sort(), [0, 1]);
  for (const b of expired) acc.fail(b, new Error('expired'));
  assert.equal(sink.failed_.length, 2);
  // Failing expired batches (never sent) left the in-flight count of partition 0 alone.
  assert.equal(inFlight.queue.inFlight, 1);
  acc.complete(inFlight, 0);
  assert.equal(inFlight.queue.inFlight, 0);
  assert.equal(acc.bufferUsedBytes, 0);
});

test('a partition whose batch is being retried has one request in flight until the retry got through', () => {
  const acc = make();
  acc.setTopic('t', [0]);
  const sink = new Recorder();
  for (let i = 0; i < 3; i++) append(acc, 't', 0, sink);
  acc.sealAll();
  const now = Date.now();
  const [a] = acc.drainNode(0, now, 1);
  const [b] = acc.drainNode(0, now, 1);
  assert.ok(a && b, 'without retries, batches of a partition are pipelined');
  a.attempts++;
  acc.requeue(a, now);
  // b is still out: neither a's retry nor c may go (either could land before b's outcome).
  assert.equal(acc.drainNode(0, now, 1 << 20).length, 0);
  b.attempts++;
  acc.requeue(b, now);
  const retry = acc.drainNode(0, now, 1 << 20);
  assert.deepEqual(retry.map((x) => x.seq), [a.seq, b.seq, b.seq + 1], 'the retries and the next batch in one request, in order');
  for (const x of retry) acc.complete(x, 0);
  // Delivered: pipelining resumes.
  for (let i = 0; i < 2; i++) append(acc, 't', 0, sink);
  acc.sealAll();
  assert.equal(acc.drainNode(0, now, 1).length, 1);
  assert.equal(acc.drainNode(0, now, 1).length, 1);
});

test('keyless records avoid partitions without a leader and those of an unreachable broker', () => {
  const acc = make({ batchSizeBytes: 150, random: () => 0 });
  // Partition 0 (where random() = 0 would start) has no leader.
  acc.setTopic('t', [-1, 1, 2, 1]);
  const sink = new Recorder();
  const used = new Set<number>();
  for (let i = 0; i < 20; i++) used.add(append(acc, 't', -1, sink));
  assert.ok(!used.has(0), `leaderless partition 0 used: ${[...used]}`);
  // Broker 1 becomes unreachable: only partition 2 (broker 2) remains for keyless records.
  acc.setNodeUnavailable(1, Date.now() + 60_000);
  used.clear();
  for (let i = 0; i < 20; i++) used.add(append(acc, 't', -1, sink));
  assert.deepEqual([...used], [2]);
  // Reachable again: spread over every led partition once more.
  acc.setNodeUnavailable(1, 0);
  used.clear();
  for (let i = 0; i < 40; i++) used.add(append(acc, 't', -1, sink));
  assert.ok(used.has(1) || used.has(3), `broker 1's partitions used again: ${[...used]}`);
  // Keyed/explicit partitions are never moved: records for partition 0 wait there.
  assert.equal(append(acc, 't', 0, sink), 0);
});
