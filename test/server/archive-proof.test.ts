// Issue 11's proof of the read side, with a real broker process and both archive stores (a
// directory, and S3 through a real s3rver started here): a topic with small segments and a
// small local.retention.bytes takes SLUICE_ARCHIVE_PROOF_BYTES of produce (default 64 MiB);
// most of it moves to the archive (the broker's own files show the local log start far
// ahead of 0, while ListOffsets earliest stays 0); then a consumer from the earliest offset
// reads every message, byte-identical to what was produced, across the archive/local boundary.
//
//   SLUICE_ARCHIVE_PROOF_BYTES=1073741824 node bin/test.mjs test/server/archive-proof
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { Admin } from '../../client/admin.ts';
import { Consumer } from '../../client/consumer.ts';
import { Producer, type ProducerMessage } from '../../client/producer.ts';
import { startBroker, tempDir, type BrokerProcess } from '../helpers/broker-process.ts';
import { startS3Server, type S3TestServer } from '../helpers/s3-server.ts';

const TOTAL_BYTES = Number(process.env.SLUICE_ARCHIVE_PROOF_BYTES ?? 64 * 1024 * 1024);
const VALUE_BYTES = 16 * 1024;
const MESSAGES = Math.max(1, Math.ceil(TOTAL_BYTES / VALUE_BYTES));
const SEGMENT_BYTES = Math.max(1024 * 1024, Math.min(64 * 1024 * 1024, Math.floor(TOTAL_BYTES / 32)));
const LOCAL_RETENTION_BYTES = 2 * SEGMENT_BYTES;
/** Bounds of the waits: produce, archive catching up, consume; scaled with the volume (1 GiB gets minutes). */
const PHASE_MS_MAX = 60_000 + Math.ceil(TOTAL_BYTES / (1024 * 1024)) * 1000;
const SEND_CHUNK = 256;
const SEND_CHUNKS_IN_FLIGHT_MAX = 8;

/** Message i: its index in the first 8 bytes, then bytes every one of which depends on i and the position. */
function valueOf(i: number): Buffer {
  const b = Buffer.allocUnsafe(VALUE_BYTES);
  b.writeBigUInt64BE(BigInt(i), 0);
  let x = (i * 2654435761) >>> 0;
  for (let p = 8; p < VALUE_BYTES; p += 4) {
    x = (x ^ (x << 13)) >>> 0;
    x = (x ^ (x >>> 17)) >>> 0;
    x = (x ^ (x << 5)) >>> 0;
    b.writeUInt32BE(x, p);
  }
  return b;
}

/** The smallest segment base offset in the broker's own directory of the partition: the local log start. */
function localLogStart(dataDir: string, topic: string): number {
  const dir = fs.readdirSync(dataDir).find((d) => d.startsWith(`${topic}-`) && /-0$/.test(d));
  assert.ok(dir, `no directory of ${topic}-0 in ${dataDir}`);
  const bases = fs.readdirSync(path.join(dataDir, dir)).filter((f) => /^\d{20}\.log$/.test(f)).map((f) => Number(f.slice(0, 20)));
  return Math.min(...bases);
}

async function until<T>(what: string, timeoutMs: number, f: () => Promise<T | null> | T | null): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v !== null) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const running: Array<{ stop(): Promise<unknown> }> = [];
after(async () => {
  for (const r of running.reverse()) await r.stop().catch(() => {});
});

async function proof(store: 'local' | 's3'): Promise<void> {
  const timings: Record<string, number> = {};
  const t0 = performance.now();
  const work = tempDir('sluice-archive-proof-');
  let s3: S3TestServer | null = null;
  let broker: BrokerProcess | null = null;
  try {
    let storeArgs: string[];
    let env: Record<string, string> = {};
    if (store === 'local') {
      storeArgs = ['--archive-dir', path.join(work, 'archive')];
    } else {
      s3 = await startS3Server({ bucket: 'proof' });
      running.push({ stop: () => s3!.destroy() });
      storeArgs = s3.brokerArgs();
      env = s3.env();
    }
    broker = await startBroker({ dataDir: path.join(work, 'data'), args: [...storeArgs, '--archive-check-interval-ms', '100', '--retention-check-interval-ms', '200'], env });
    running.push(broker);
    const topic = `proof-${store}`;
    const admin = new Admin({ bootstrap: broker.bootstrap });
    await admin.createTopics([{ topic, partitions: 1, configs: { 'archive.enable': 'true', 'segment.bytes': SEGMENT_BYTES, 'local.retention.bytes': LOCAL_RETENTION_BYTES, 'retention.bytes': -1, 'retention.ms': -1 } }]);

    // Produce.
    const producer = new Producer({ bootstrap: broker.bootstrap, lingerMs: 5 });
    const inFlight = new Set<Promise<unknown>>();
    for (let i = 0; i < MESSAGES; i += SEND_CHUNK) {
      const msgs: ProducerMessage[] = [];
      for (let k = i; k < Math.min(i + SEND_CHUNK, MESSAGES); k++) msgs.push({ topic, partition: 0, value: valueOf(k) });
      const p = producer.sendBatch(msgs);
      inFlight.add(p);
      void p.finally(() => inFlight.delete(p)).catch(() => {});
      if (inFlight.size >= SEND_CHUNKS_IN_FLIGHT_MAX) await Promise.race(inFlight);
    }
    await Promise.all(inFlight);
    await producer.close();
    timings.produceSeconds = (performance.now() - t0) / 1000;

    // Most of it moves to the archive: local retention deletes segments once they are archived.
    const t1 = performance.now();
    const dataDir = path.join(work, 'data');
    const localStart = await until('most of the log to move to the archive', PHASE_MS_MAX, () => {
      const s = localLogStart(dataDir, topic);
      return s >= MESSAGES * 0.6 ? s : null;
    });
    timings.archiveCatchUpSeconds = (performance.now() - t1) / 1000;
    assert.equal(await admin.listOffsets(topic, 0, 'earliest'), 0, 'consumers are told the archive start');
    assert.equal(await admin.listOffsets(topic, 0, 'latest'), MESSAGES);

    // A consumer from the earliest offset reads every message byte for byte, across the boundary.
    const t2 = performance.now();
    const consumer = new Consumer({ bootstrap: broker.bootstrap, maxBytes: 8 * 1024 * 1024, partitionMaxBytes: 4 * 1024 * 1024 });
    try {
      await consumer.assign([{ topic, partition: 0, offset: 'earliest' }]);
      let next = 0;
      const deadline = Date.now() + PHASE_MS_MAX;
      while (next < MESSAGES) {
        assert.ok(Date.now() < deadline, `consumed ${next} of ${MESSAGES} messages within ${PHASE_MS_MAX} ms`);
        for (const m of await consumer.poll(1000)) {
          assert.equal(m.offset, next, 'offsets are contiguous from 0');
          const want = valueOf(next);
          assert.ok(m.value !== null && Buffer.compare(Buffer.from(m.value), want) === 0, `message ${next} (${next < localStart ? 'archived' : 'local'}) differs from what was produced`);
          next++;
        }
      }
    } finally {
      await consumer.close();
    }
    timings.consumeSeconds = (performance.now() - t2) / 1000;
    await admin.close();
    process.stderr.write(`archive proof (${store}): ${MESSAGES} messages, ${(MESSAGES * VALUE_BYTES) / 1048576} MiB, local start ${localStart}; ${JSON.stringify(timings)}\n`);
  } finally {
    await broker?.stop();
    await s3?.destroy();
    fs.rmSync(work, { recursive: true, force: true });
  }
}

test(`proof, local directory store: ${TOTAL_BYTES} bytes produced, mostly archived, read back byte for byte from the earliest offset`, { timeout: 3 * PHASE_MS_MAX + 60_000 }, async () => {
  await proof('local');
});

test(`proof, S3 store (s3rver): ${TOTAL_BYTES} bytes produced, mostly archived, read back byte for byte from the earliest offset`, { timeout: 3 * PHASE_MS_MAX + 60_000 }, async () => {
  await proof('s3');
});
