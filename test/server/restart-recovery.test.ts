// Durability across broker restarts, with real processes and real files: a clean stop keeps
// everything and skips recovery; SIGKILL loses nothing that was acknowledged; a damaged log
// (torn tail, flipped byte, missing index) still starts and serves every intact batch.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ApiKey } from '../../protocol/api-keys.ts';
import type { FetchResponse, ProduceResponse } from '../../protocol/apis/index.ts';
import { batchSizeAt, buildBatch, Off } from '../../protocol/record-batch.ts';
import { Connection } from '../../client/connection.ts';
import { startBroker, tempDir } from '../helpers/broker-process.ts';

const enc = new TextEncoder();

async function createTopic(c: Connection, topic: string, partitions: number, configs: Record<string, string> = {}) {
  const r = await c.send<any>(ApiKey.CREATE_TOPICS, { topics: [{ topic, partitions, replicationFactor: 1, configs }], validateOnly: false });
  assert.equal(r.control.topics[0].errorCode, 0, JSON.stringify(r.control));
}

async function produce(c: Connection, topic: string, partition: number, batch: Uint8Array): Promise<number> {
  const r = await c.send<ProduceResponse>(ApiKey.PRODUCE, { acks: 1, timeoutMs: 5000, topics: [{ topic, partitions: [{ partition, recordsBytes: batch.length }] }] }, [batch]);
  const p = r.control.topics[0]!.partitions[0]!;
  assert.equal(p.errorCode, 0, p.errorMessage ?? '');
  return p.baseOffset;
}

/** Every batch of a partition, as stored, keyed by base offset. */
async function readAll(c: Connection, topic: string, partition: number): Promise<Map<number, Buffer>> {
  const out = new Map<number, Buffer>();
  let offset = 0;
  for (let i = 0; i < 100_000; i++) {
    const r = await c.send<FetchResponse>(ApiKey.FETCH, { maxWaitMs: 0, minBytes: 0, maxBytes: 1 << 20, topics: [{ topic, partitions: [{ partition, fetchOffset: offset, partitionMaxBytes: 1 << 20 }] }] });
    const p = r.control.topics[0]!.partitions[0]!;
    assert.equal(p.errorCode, 0);
    if (p.recordsBytes === 0) break;
    let pos = 0;
    while (pos < r.data.length) {
      const size = batchSizeAt(r.data, pos);
      const base = Number(r.data.readBigInt64BE(pos));
      const last = base + r.data.readInt32BE(pos + Off.lastOffsetDelta);
      out.set(base, Buffer.from(r.data.subarray(pos, pos + size)));
      offset = last + 1;
      pos += size;
    }
  }
  return out;
}

/**
 * The batch bytes the producer sent: all but baseOffset and partitionLeaderEpoch, the two
 * fields (outside the CRC) the broker stamps.
 */
function sameBatch(stored: Buffer, sent: Uint8Array): boolean {
  const s = Buffer.from(sent);
  return stored.length === s.length && stored.readInt32BE(Off.batchLength) === s.readInt32BE(Off.batchLength) && Buffer.compare(stored.subarray(Off.magic), s.subarray(Off.magic)) === 0;
}

test('clean stop and restart keeps every batch and skips recovery', async () => {
  const dataDir = tempDir();
  let b = await startBroker({ dataDir });
  const sent = new Map<number, Uint8Array>();
  try {
    const c = await Connection.connect(b.host, b.port);
    await createTopic(c, 'keep', 1, { 'segment.bytes': '4096' });
    for (let i = 0; i < 200; i++) {
      const batch = buildBatch([{ key: enc.encode(`k${i}`), value: enc.encode(`value-${i}-${'x'.repeat(i % 50)}`) }]);
      sent.set(await produce(c, 'keep', 0, batch), batch);
    }
    c.close();
    assert.equal(await b.stop(), 0);
    b = await startBroker({ dataDir });
    assert.doesNotMatch(b.log(), /no clean shutdown marker/);
    const c2 = await Connection.connect(b.host, b.port);
    const stored = await readAll(c2, 'keep', 0);
    assert.equal(stored.size, sent.size);
    for (const [offset, batch] of sent) assert.ok(sameBatch(stored.get(offset)!, batch), `batch at ${offset}`);
    c2.close();
  } finally {
    await b.stop();
    b.cleanup();
  }
});

test('SIGKILL mid-stream loses no acknowledged batch; the log is recovered and appendable', async () => {
  const dataDir = tempDir();
  let b = await startBroker({ dataDir });
  const acked = new Map<number, Uint8Array>();
  try {
    const c = await Connection.connect(b.host, b.port);
    await createTopic(c, 'crash', 1, { 'segment.bytes': '65536' });
    // Keep 20 produce requests in flight, and kill the broker while they are.
    let stop = false;
    const workers = Array.from({ length: 20 }, async (_, w) => {
      for (let i = 0; !stop && i < 10_000; i++) {
        const batch = buildBatch(Array.from({ length: 5 }, (_, j) => ({ value: enc.encode(`w${w}-i${i}-j${j}`) })));
        try {
          acked.set(await produce(c, 'crash', 0, batch), batch);
        } catch {
          return; // the connection died with the broker: unacknowledged, may or may not be stored
        }
      }
    });
    while (acked.size < 500) await new Promise((r) => setTimeout(r, 10));
    await b.kill();
    stop = true;
    await Promise.all(workers);
    b = await startBroker({ dataDir });
    assert.match(b.log(), /no clean shutdown marker/);
    const c2 = await Connection.connect(b.host, b.port);
    const stored = await readAll(c2, 'crash', 0);
    for (const [offset, batch] of acked) assert.ok(stored.has(offset) && sameBatch(stored.get(offset)!, batch), `acknowledged batch at ${offset} survived`);
    const end = Math.max(...[...stored.keys()].map((o) => o + 4)) + 1;
    assert.equal(await produce(c2, 'crash', 0, buildBatch([{ value: enc.encode('after') }])), end);
    c2.close();
  } finally {
    await b.stop();
    b.cleanup();
  }
});

test('torn tail, flipped byte and missing index: the broker starts and serves every intact batch', async () => {
  const dataDir = tempDir();
  let b = await startBroker({ dataDir });
  const sent: Uint8Array[] = [];
  try {
    const c = await Connection.connect(b.host, b.port);
    await createTopic(c, 'damaged', 1, { 'segment.bytes': '8192' });
    for (let i = 0; i < 120; i++) {
      const batch = buildBatch([{ value: enc.encode(`record-${i}-${'y'.repeat(60)}`) }]);
      assert.equal(await produce(c, 'damaged', 0, batch), i);
      sent.push(batch);
    }
    c.close();
    await b.kill();
    const dir = join(dataDir, 'damaged-0');
    const logs = readdirSync(dir).filter((f) => f.endsWith('.log')).sort();
    assert.ok(logs.length >= 3, `several segments (${logs.join(',')})`);
    // 1. Tear the active segment in the middle of its last batch.
    const active = join(dir, logs.at(-1)!);
    truncateSync(active, statSync(active).size - 7);
    // 2. Flip a byte in the payload of the first batch of the middle segment (index removed so it is rescanned).
    const middle = join(dir, logs[1]!);
    const bytes = readFileSync(middle);
    bytes[bytes.length > 100 ? 80 : 70]! ^= 0x5a;
    writeFileSync(middle, bytes);
    rmSync(middle.replace(/\.log$/, '.index'), { force: true });
    // 3. Delete the first segment's index.
    rmSync(join(dir, logs[0]!.replace(/\.log$/, '.index')), { force: true });
    const corruptBase = Number(logs[1]!.slice(0, 20));

    b = await startBroker({ dataDir });
    const c2 = await Connection.connect(b.host, b.port);
    const stored = await readAll(c2, 'damaged', 0);
    for (let i = 0; i < sent.length - 1; i++) {
      if (i === corruptBase) {
        assert.ok(!stored.has(i), 'the corrupt batch is dropped, not served');
        continue;
      }
      assert.ok(stored.has(i) && sameBatch(stored.get(i)!, sent[i]!), `intact batch ${i} is served`);
    }
    assert.ok(!stored.has(sent.length - 1), 'the torn batch is gone');
    assert.equal(await produce(c2, 'damaged', 0, buildBatch([{ value: enc.encode('next') }])), sent.length - 1);
    c2.close();
  } finally {
    await b.stop();
    b.cleanup();
  }
});
