/** RecordAccumulator unit tests: batching by size and linger, sticky partitions, memory accounting. No broker. */
import assert from 'node:assert/strict';
import { afterEach, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { Buffer } from 'node:buffer';
import { decodeRecords, newBatchInfo, validateBatch } from '../../protocol/record-batch.ts';
import { ErrorCode } from '../../protocol/errors.ts';
import { estimateRecordBytes, RecordAccumulator, type DeliverySink, type ProducerBatch } from '../../client/record-accumulator.ts';

class Recorder implements DeliverySink {
  readonly delivered_: Array<[number, string, number, number]> = [];
  readonly failed_: Array<[number, Error]> = [];
  delivered(slot: number, topic: string, partition: number, offset: number): void {
    this.delivered_.push([slot, topic, partition, offset]);
  }
  failed(slot: number, err: Error): void {
    this.failed_.push([slot, err]);
  }
}

const live: RecordAccumulator[] = [];
afterEach(() => {
  for (const a of live.splice(0)) a.stop();
});

function make(opts: { batchSizeBytes?: number; lingerMs?: number; bufferMemoryBytes?: number; random?: () => number } = {}) {
  let readyCalls = 0;
  const acc = new RecordAccumulator({
    batchSizeBytes: opts.batchSizeBytes ?? 1024,
    lingerMs: opts.lingerMs ?? 60_000,
    bufferMemoryBytes: opts.bufferMemoryBytes ?? 1 << 20,
    onReady: () => readyCalls++,
    random: opts.random,
  });
  live.push(acc);
  return { acc, readyCalls: () => readyCalls };
}

function take(acc: RecordAccumulator, node = 0): ProducerBatch[] {
  return acc.drainNode(node, Date.now(), Number.MAX_SAFE_INTEGER);
}

const value = (n: number, fill = 1) => Buffer.alloc(n, fill);

function appendOne(acc: RecordAccumulator, topic: string, partition: number, v: Uint8Array, sink: DeliverySink, slot = 0, key: Uint8Array | null = null): number {
  const t = acc.topic(topic)!;
  return acc.append(t, partition, key, v, undefined, 1_700_000_000_000, estimateRecordBytes(key, v, 0), sink, slot);
}

test('a batch is sealed when the next record would exceed batchSize, and stays valid RecordBatch bytes', () => {
  const { acc } = make({ batchSizeBytes: 1000 });
  acc.setTopic('t', [0]);
  const sink = new Recorder();
  for (let i = 0; i < 30; i++) appendOne(acc, 't', 0, value(100, i), sink, i);
  acc.sealAll();
  const batches = take(acc);
  assert.ok(batches.length >= 3, `got ${batches.length} batches`);
  let n = 0;
  for (const b of batches) {
    const bytes = b.bytes!;
    assert.ok(bytes.length <= 1000, `batch of ${bytes.length} bytes exceeds batchSize`);
    assert.equal(validateBatch(bytes, 0, bytes.length, newBatchInfo()), ErrorCode.NONE);
    const recs = decodeRecords(bytes, 0);
    for (const r of recs) assert.equal(r.value![0], n++ & 0xff, 'records keep send order');
  }
  assert.equal(n, 30);
  // Batches for one partition are consecutive: offsets handed out by the broker follow send order.
  let base = 0;
  for (const b of batches) {
    acc.complete(b, base);
    base += b.recordCount;
  }
  assert.deepEqual(sink.delivered_.map((d) => d[3]), Array.from({ length: 30 }, (_, i) => i));
  assert.deepEqual(sink.delivered_.map((d) => d[0]), Array.from({ length: 30 }, (_, i) => i));
  assert.equal(acc.bufferUsedBytes, 0);
});

test('a record larger than batchSize travels alone, sealed at once', () => {
  const { acc, readyCalls } = make({ batchSizeBytes: 200 });
  acc.setTopic('t', [0]);
  const sink = new Recorder();
  appendOne(acc, 't', 0, value(10), sink);
  appendOne(acc, 't', 0, value(500), sink);
  assert.equal(readyCalls(), 2, 'small batch sealed by the big record, the big one sealed by itself');
  const batches = take(acc);
  assert.deepEqual(batches.map((b) => b.recordCount), [1, 1]);
});

test('lingerMs seals an open batch once it is old enough', async () => {
  const { acc, readyCalls } = make({ batchSizeBytes: 1 << 20, lingerMs: 30 });
  acc.setTopic('t', [0, 0]);
  const sink = new Recorder();
  appendOne(acc, 't', 0, value(10), sink);
  appendOne(acc, 't', 1, value(10), sink);
  await delay(5);
  assert.equal(readyCalls(), 0, 'not sealed before lingerMs');
  assert.equal(take(acc).length, 0);
  await delay(60);
  assert.equal(readyCalls(), 2);
  assert.equal(take(acc).length, 2);
  acc.stop();
});

test('lingerMs 0 batches what arrives in the same tick and seals it on the next turn', async () => {
  const { acc } = make({ batchSizeBytes: 1 << 20, lingerMs: 0 });
  acc.setTopic('t', [0]);
  const sink = new Recorder();
  for (let i = 0; i < 5; i++) appendOne(acc, 't', 0, value(10), sink);
  assert.equal(take(acc).length, 0);
  await new Promise((r) => setImmediate(r));
  const batches = take(acc);
  assert.deepEqual(batches.map((b) => b.recordCount), [5]);
});

test('keyless records stick to one partition until its batch is sealed, then move to another', () => {
  const draws = [0.1, 0.6, 0.9, 0.2, 0.5, 0.8, 0.3];
  let i = 0;
  const { acc } = make({ batchSizeBytes: 600, random: () => draws[i++ % draws.length]! });
  acc.setTopic('t', [0, 0, 0, 0]);
  const sink = new Recorder();
  const used: number[] = [];
  for (let r = 0; r < 40; r++) used.push(appendOne(acc, 't', -1, value(100), sink, r));
  acc.sealAll();
  const batches = take(acc);
  // Runs of the same partition, one per batch; consecutive runs differ.
  const runs: Array<[number, number]> = [];
  for (const p of used) {
    if (runs.length && runs[runs.length - 1]![0] === p) runs[runs.length - 1]![1]++;
    else runs.push([p, 1]);
  }
  assert.ok(runs.length >= 5, `expected several sticky runs, got ${JSON.stringify(runs)}`);
  for (let r = 1; r < runs.length; r++) assert.notEqual(runs[r]![0], runs[r - 1]![0]);
  // Each run is exactly one batch (KIP-480: the record that does not fit goes to the next partition).
  assert.equal(batches.length, runs.length);
  for (const b of batches) assert.ok(b.bytes!.length <= 600);
  assert.ok(new Set(used).size > 1);
});

test('keyed and explicit partitions are not moved by stickiness', () => {
  const { acc } = make({ batchSizeBytes: 300 });
  acc.setTopic('t', [0, 0, 0]);
  const sink = new Recorder();
  for (let r = 0; r < 20; r++) assert.equal(appendOne(acc, 't', 2, value(50), sink), 2);
});

test('bufferUsedBytes tracks records until completion; hasRoom enforces bufferMemory', () => {
  const { acc } = make({ batchSizeBytes: 10_000, bufferMemoryBytes: 1000 });
  acc.setTopic('t', [0]);
  const sink = new Recorder();
  const size = estimateRecordBytes(null, value(100), 0);
  let n = 0;
  while (acc.hasRoom(size)) {
    appendOne(acc, 't', 0, value(100), sink, n++);
  }
  assert.equal(n, Math.floor(1000 / size));
  assert.equal(acc.bufferUsedBytes, n * size);
  acc.sealAll();
  const [b] = take(acc);
  acc.fail(b!, new Error('boom'));
  assert.equal(sink.failed_.length, n);
  assert.equal(acc.bufferUsedBytes, 0);
  assert.ok(acc.hasRoom(size));
  // An empty buffer always admits one record, however big, so nothing can wedge.
  assert.ok(acc.hasRoom(1 << 30));
});

test('a requeued batch keeps its place before later batches and waits out its backoff', () => {
  const { acc } = make({ batchSizeBytes: 150 });
  acc.setTopic('t', [0]);
  const sink = new Recorder();
  for (let r = 0; r < 3; r++) appendOne(acc, 't', 0, value(100), sink, r);
  acc.sealAll();
  const [a, b, c] = take(acc);
  assert.ok(a && b && c);
  const now = Date.now();
  acc.requeue(c, now - 1);
  acc.requeue(a, now + 60_000);
  acc.requeue(b, now - 1);
  // a is first and backing off, so nothing of this partition may go.
  assert.equal(acc.drainNode(0, now, 1 << 20).length, 0);
  const order = acc.drainNode(0, now + 60_000, 1 << 20);
  assert.deepEqual(order.map((x) => x.seq), [a.seq, b.seq, c.seq]);
});

test('drainNode respects maxBytes but always takes one batch, and only for the given leader', () => {
  const { acc } = make({ batchSizeBytes: 500 });
  acc.setTopic('a', [1, 2]);
  const sink = new Recorder();
  for (let r = 0; r < 10; r++) appendOne(acc, 'a', r % 2, value(400), sink);
  acc.sealAll();
  assert.equal(acc.drainNode(3, Date.now(), 1 << 20).length, 0);
  const one = acc.drainNode(1, Date.now(), 10);
  assert.equal(one.length, 1);
  assert.equal(one[0]!.queue.partition, 0);
  const rest = acc.drainNode(1, Date.now(), 1 << 20);
  assert.equal(rest.length, 4);
  assert.equal(acc.drainNode(2, Date.now(), 1 << 20).length, 5);
});

test('whenSealedComplete waits for sealed batches only', async () => {
  const { acc } = make();
  acc.setTopic('t', [0]);
  const sink = new Recorder();
  appendOne(acc, 't', 0, value(10), sink);
  acc.sealAll();
  let done = false;
  acc.whenSealedComplete(() => (done = true));
  appendOne(acc, 't', 0, value(10), sink); // opened after: not waited for
  assert.equal(done, false);
  const [b] = take(acc);
  acc.complete(b!, 7);
  assert.equal(done, true);
  assert.deepEqual(sink.delivered_[0], [0, 't', 0, 7]);
  acc.stop();
});

test('tags: one open batch per (partition, tag set); each batch gets its place and sequence when sealed, so sequences follow the send order of batches', () => {
  const acc = new RecordAccumulator({ batchSizeBytes: 400, lingerMs: 60_000, bufferMemoryBytes: 1 << 20, onReady: () => {}, idempotent: true });
  live.push(acc);
  acc.stamp.producerId = 7;
  acc.stamp.producerEpoch = 0;
  acc.setTopic('t', [0]);
  const t = acc.topic('t')!;
  const sink = new Recorder();
  const header = (tag: string) => [{ key: 'sluice-tags', value: Buffer.from(tag) }];
  let slot = 0;
  const add = (tag: string) => {
    const v = value(100, slot);
    acc.append(t, 0, null, v, tag ? header(tag) : undefined, 1_700_000_000_000, estimateRecordBytes(null, v, 30), sink, slot++, tag);
  };
  // Interleaved: x opens first but fills last; y fills (3 records of ~130 bytes) first.
  add('x'); add('y'); add(''); add('y'); add('y'); add('y'); add('x');
  acc.sealAll();
  // An idempotent partition sends one batch per request: take them one by one.
  const batches: ProducerBatch[] = [];
  for (let got = take(acc), base = 0; got.length > 0; got = take(acc)) {
    batches.push(...got);
    for (const b of got) {
      for (const r of decodeRecords(b.bytes!, 0)) assert.equal(Buffer.from(r.headers.find((h) => h.key === 'sluice-tags')?.value ?? []).toString(), b.tagKey, 'one batch, one tag set');
      acc.complete(b, base);
      base += b.recordCount;
    }
  }
  const tagOf = (b: ProducerBatch) => b.tagKey;
  assert.deepEqual(batches.map(tagOf), ['y', '', 'x', 'y'], 'y sealed when full, then the rest in sealAll order');
  for (let i = 1; i < batches.length; i++) {
    assert.ok(batches[i]!.seq > batches[i - 1]!.seq, 'place by seal order');
    assert.equal(batches[i]!.baseSequence, batches[i - 1]!.baseSequence + batches[i - 1]!.recordCount, 'sequences continue from batch to batch');
  }
});
