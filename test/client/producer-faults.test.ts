/**
 * Producer against a scripted in-process fake broker: retries after NOT_LEADER (with a
 * metadata refresh), non-retriable errors, exhausted retries, lost connections, acks=0,
 * multi-batch requests. Deterministic, no real broker needed. The fake answers Produce only,
 * so these producers are plain (idempotent: false); the idempotent producer's retries are
 * tested against producer-idempotence.test.ts's scripted broker.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { Buffer } from 'node:buffer';
import { ApiKey } from '../../protocol/api-keys.ts';
import { decodeBody, encodeControl } from '../../protocol/body.ts';
import { ErrorCode, SluiceError } from '../../protocol/errors.ts';
import { FrameDecoder } from '../../protocol/frame.ts';
import { decodeRequestHeader } from '../../protocol/header.ts';
import { batchSizeAt, decodeRecords, newBatchInfo, validateBatch } from '../../protocol/record-batch.ts';
import type { ProduceRequest } from '../../protocol/apis/produce.ts';
import { Producer } from '../../client/producer.ts';

interface ProduceCall {
  request: ProduceRequest;
  /** Records per topic/partition, decoded from the data section. */
  records: Map<string, string[]>;
}

/** What the fake answers for one partition of one produce request; undefined = success. */
type Script = (topic: string, partition: number, call: number) => number | 'drop' | undefined;

class FakeBroker {
  server!: net.Server;
  port = 0;
  produceCalls: ProduceCall[] = [];
  metadataCalls = 0;
  initProducerIdCalls = 0;
  topics = new Map<string, number>();
  /** Next offset per "topic/partition". */
  logEnd = new Map<string, number>();
  script: Script = () => undefined;
  sockets = new Set<net.Socket>();

  async start(): Promise<void> {
    this.server = net.createServer((s) => this.onSocket(s));
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.port = (this.server.address() as net.AddressInfo).port;
  }

  get bootstrap(): string {
    return `127.0.0.1:${this.port}`;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  private onSocket(s: net.Socket): void {
    this.sockets.add(s);
    s.on('close', () => this.sockets.delete(s));
    s.on('error', () => {});
    const dec = new FrameDecoder();
    s.on('data', (chunk: Buffer) => dec.push(chunk, (f) => this.onFrame(s, f)));
  }

  private reply(s: net.Socket, correlationId: number, control: unknown): void {
    const c = encodeControl(control);
    const out = Buffer.alloc(4 + 6 + 4 + c.length);
    out.writeUInt32BE(out.length - 4, 0);
    out.writeInt32BE(correlationId, 4);
    out.writeInt16BE(0, 8);
    out.writeUInt32BE(c.length, 10);
    out.set(c, 14);
    s.write(out);
  }

  private onFrame(s: net.Socket, frame: Buffer): void {
    const h = decodeRequestHeader(frame);
    const body = decodeBody(frame, h.bodyOffset);
    if (h.apiKey === ApiKey.METADATA) {
      this.metadataCalls++;
      const want = (body.control as { topics: string[] | null }).topics ?? [...this.topics.keys()];
      this.reply(s, h.correlationId, {
        clusterId: 'fake',
        controllerId: 0,
        brokers: [{ nodeId: 0, host: '127.0.0.1', port: this.port }],
        topics: want.map((topic) => {
          const n = this.topics.get(topic);
          if (n === undefined) return { topic, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, partitions: [] };
          return { topic, errorCode: 0, partitions: Array.from({ length: n }, (_, partition) => ({ partition, errorCode: 0, leader: 0, leaderEpoch: 0, replicas: [0], isr: [0] })) };
        }),
      });
      return;
    }
    if (h.apiKey === ApiKey.INIT_PRODUCER_ID) {
      // The idempotent producer (the default) asks once for its id; this fake does not
      // deduplicate, so the tests below see every attempt as a plain broker would store it.
      this.initProducerIdCalls++;
      this.reply(s, h.correlationId, { errorCode: 0, errorMessage: null, producerId: 1000 + this.initProducerIdCalls, producerEpoch: 0 });
      return;
    }
    if (h.apiKey !== ApiKey.PRODUCE) throw new Error(`fake broker: unexpected api ${h.apiKey}`);
    const req = body.control as ProduceRequest;
    const call = this.produceCalls.length;
    const records = new Map<string, string[]>();
    this.produceCalls.push({ request: req, records });
    let pos = 0;
    let drop = false;
    const results = req.topics.map((t) => ({
      topic: t.topic,
      partitions: t.partitions.map((p) => {
        const set = body.data.subarray(pos, pos + p.recordsBytes);
        pos += p.recordsBytes;
        const key = `${t.topic}/${p.partition}`;
        const recs: string[] = [];
        let count = 0;
        for (let q = 0; q < set.length; q += batchSizeAt(set, q)) {
          assert.equal(validateBatch(set, q, set.length, newBatchInfo()), ErrorCode.NONE);
          for (const r of decodeRecords(set, q)) recs.push(r.value === null ? '<null>' : Buffer.from(r.value).toString());
          count += decodeRecords(set, q).length;
        }
        records.set(key, recs);
        const verdict = this.script(t.topic, p.partition, call);
        if (verdict === 'drop') drop = true;
        if (typeof verdict === 'number') return { partition: p.partition, errorCode: verdict, baseOffset: -1, logStartOffset: 0, errorMessage: 'scripted' };
        const base = this.logEnd.get(key) ?? 0;
        this.logEnd.set(key, base + count);
        return { partition: p.partition, errorCode: 0, baseOffset: base, logStartOffset: 0, errorMessage: null };
      }),
    }));
    if (drop) {
      s.destroy();
      return;
    }
    if (req.acks === 0) return;
    this.reply(s, h.correlationId, { topics: results });
  }
}

async function withFake(fn: (b: FakeBroker) => Promise<void>): Promise<void> {
  const b = new FakeBroker();
  await b.start();
  try {
    await fn(b);
  } finally {
    await b.stop();
  }
}

test('several batches per partition travel in one request and get consecutive offsets', () =>
  withFake(async (b) => {
    b.topics.set('t', 1);
    const p = new Producer({ bootstrap: b.bootstrap, idempotent: false, batchSize: 200, lingerMs: 0, maxInFlight: 1 });
    try {
      await p.send({ topic: 't', value: 'warm-up' });
      const res = await Promise.all(Array.from({ length: 50 }, (_, i) => p.send({ topic: 't', value: `v${i}` })));
      assert.deepEqual(res.map((r) => r.offset), Array.from({ length: 50 }, (_, i) => i + 1));
      const big = b.produceCalls.find((c) => c.request.topics[0]!.partitions[0]!.recordsBytes > 200);
      assert.ok(big, 'some request carried more than one batch for the partition');
    } finally {
      await p.close();
    }
  }));

test('NOT_LEADER is retried after a metadata refresh; records keep their order', () =>
  withFake(async (b) => {
    b.topics.set('t', 2);
    b.script = (_t, partition, call) => (partition === 1 && call < 2 ? ErrorCode.NOT_LEADER : undefined);
    const p = new Producer({ bootstrap: b.bootstrap, idempotent: false, retryBackoffMs: 5, lingerMs: 0 });
    try {
      const res = await Promise.all(Array.from({ length: 20 }, (_, i) => p.send({ topic: 't', partition: i % 2, value: `v${i}` })));
      for (const r of res.filter((x) => x.partition === 1)) assert.ok(r.offset >= 0);
      assert.deepEqual(res.filter((x) => x.partition === 1).map((r) => r.offset), Array.from({ length: 10 }, (_, i) => i));
      assert.ok(b.metadataCalls >= 2, `metadata refreshed (${b.metadataCalls} calls)`);
      const stored = b.produceCalls.filter((c) => c.records.has('t/1') && c.request.topics[0]).flatMap((c) => c.records.get('t/1')!);
      assert.deepEqual(stored.slice(-10), Array.from({ length: 10 }, (_, i) => `v${2 * i + 1}`));
    } finally {
      await p.close();
    }
  }));

test('a non-retriable error fails the promises with that SluiceError, without retrying', () =>
  withFake(async (b) => {
    b.topics.set('t', 1);
    b.script = () => ErrorCode.RECORD_BATCH_TOO_LARGE;
    const p = new Producer({ bootstrap: b.bootstrap, idempotent: false, lingerMs: 0 });
    try {
      const err = await p.send({ topic: 't', value: 'x' }).catch((e) => e);
      assert.ok(err instanceof SluiceError);
      assert.equal(err.code, ErrorCode.RECORD_BATCH_TOO_LARGE);
      assert.equal(b.produceCalls.length, 1);
    } finally {
      await p.close();
    }
  }));

test('retriable errors give up after `retries` further attempts', () =>
  withFake(async (b) => {
    b.topics.set('t', 1);
    b.script = () => ErrorCode.NOT_ENOUGH_REPLICAS;
    const p = new Producer({ bootstrap: b.bootstrap, idempotent: false, lingerMs: 0, retries: 3, retryBackoffMs: 2 });
    try {
      const err = await p.send({ topic: 't', value: 'x' }).catch((e) => e);
      assert.ok(err instanceof SluiceError);
      assert.equal(err.code, ErrorCode.NOT_ENOUGH_REPLICAS);
      assert.equal(b.produceCalls.length, 4);
    } finally {
      await p.close();
    }
  }));

test('a dropped connection is retried on a new one (at least once: the lost attempt may have been written)', () =>
  withFake(async (b) => {
    b.topics.set('t', 1);
    b.script = (_t, _p, call) => (call === 0 ? 'drop' : undefined);
    const p = new Producer({ bootstrap: b.bootstrap, idempotent: false, lingerMs: 0, retryBackoffMs: 5 });
    try {
      const r = await p.send({ topic: 't', value: 'x' });
      // The fake appended the first attempt before dropping the connection, as a broker may.
      assert.equal(r.offset, 1);
      assert.equal(b.produceCalls.length, 2);
    } finally {
      await p.close();
    }
  }));

test('an unknown topic fails with UNKNOWN_TOPIC_OR_PARTITION after retries; other topics are unaffected', () =>
  withFake(async (b) => {
    b.topics.set('good', 1);
    const p = new Producer({ bootstrap: b.bootstrap, idempotent: false, lingerMs: 0, retries: 2, retryBackoffMs: 5 });
    try {
      const bad = p.send({ topic: 'nope', value: 'x' }).catch((e) => e);
      const good = p.send({ topic: 'good', value: 'y' });
      const err = await bad;
      assert.ok(err instanceof SluiceError, String(err));
      assert.equal(err.code, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
      assert.equal((await good).offset, 0);
      // A later send asks again (the topic may exist by now).
      b.topics.set('nope', 1);
      assert.equal((await p.send({ topic: 'nope', value: 'z' })).offset, 0);
    } finally {
      await p.close();
    }
  }));

test('acks=0 resolves offsets as -1 and the broker sends nothing back', () =>
  withFake(async (b) => {
    b.topics.set('t', 2);
    const p = new Producer({ bootstrap: b.bootstrap, idempotent: false, acks: 0, lingerMs: 0 });
    try {
      const res = await p.sendBatch(Array.from({ length: 100 }, (_, i) => ({ topic: 't', key: `k${i}`, value: `v${i}` })));
      assert.equal(res.length, 100);
      for (const r of res) assert.equal(r.offset, -1);
      await p.flush();
      const total = () => b.produceCalls.reduce((n, c) => n + [...c.records.values()].reduce((m, v) => m + v.length, 0), 0);
      // Written is not yet read by the fake: wait for it to catch up.
      for (let i = 0; i < 100 && total() < 100; i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal(total(), 100);
      for (const c of b.produceCalls) assert.equal(c.request.acks, 0);
    } finally {
      await p.close();
    }
  }));

test('explicit partition out of range and bad values are rejected per message', () =>
  withFake(async (b) => {
    b.topics.set('t', 2);
    const p = new Producer({ bootstrap: b.bootstrap, idempotent: false, lingerMs: 0 });
    try {
      const e1 = await p.send({ topic: 't', partition: 5, value: 'x' }).catch((e) => e);
      assert.equal(e1.code, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
      const e2 = await p.send({ topic: 't', value: 42 as unknown as string }).catch((e) => e);
      assert.ok(e2 instanceof TypeError);
      assert.equal((await p.send({ topic: 't', partition: 1, value: null, headers: { h: 'v', n: null } })).partition, 1);
    } finally {
      await p.close();
    }
  }));

test('close() flushes what is buffered and later sends are rejected', () =>
  withFake(async (b) => {
    b.topics.set('t', 1);
    const p = new Producer({ bootstrap: b.bootstrap, idempotent: false, lingerMs: 50 });
    const pending = Array.from({ length: 10 }, (_, i) => p.send({ topic: 't', value: `v${i}` }));
    await p.close();
    const res = await Promise.all(pending);
    assert.equal(res[9]!.offset, 9);
    await assert.rejects(p.send({ topic: 't', value: 'late' }), /closed/);
  }));

test('back-pressure: a tiny bufferMemory still delivers everything, in order, never holding more than it allows', () =>
  withFake(async (b) => {
    b.topics.set('t', 1);
    const p = new Producer({ bootstrap: b.bootstrap, idempotent: false, bufferMemory: 1000, batchSize: 64 * 1024, lingerMs: 20 });
    try {
      const value = 'x'.repeat(100);
      const res = await Promise.all(Array.from({ length: 2000 }, (_, i) => p.send({ topic: 't', value: `${i}`.padStart(6, '0') + value })));
      assert.deepEqual(res.map((r) => r.offset), Array.from({ length: 2000 }, (_, i) => i));
      for (const c of b.produceCalls) assert.ok(c.request.topics[0]!.partitions[0]!.recordsBytes <= 1000 + 61, 'one request holds at most bufferMemory of records');
      const stored = b.produceCalls.flatMap((c) => c.records.get('t/0') ?? []);
      assert.deepEqual(stored.map((s) => Number(s.slice(0, 6))), Array.from({ length: 2000 }, (_, i) => i));
    } finally {
      await p.close();
    }
  }));

test('flush() waits for sends queued behind back-pressure, too', () =>
  withFake(async (b) => {
    b.topics.set('t', 1);
    const p = new Producer({ bootstrap: b.bootstrap, idempotent: false, bufferMemory: 500, lingerMs: 1000 });
    try {
      let done = 0;
      for (let i = 0; i < 100; i++) void p.send({ topic: 't', value: 'y'.repeat(50) }).then(() => done++);
      await p.flush();
      assert.equal(done, 100);
    } finally {
      await p.close();
    }
  }));
