// A broker with thousands of partitions under a low open-files limit, as a real process
// (`ulimit -n` set by sh before exec): creating them must succeed (or be refused with nothing
// stored), every partition must take writes and serve reads, and the broker must start again
// on that data dir. Segment files are opened lazily through a bounded handle cache, so the
// number of partitions is not bounded by the fd limit.
//
// Regression: every segment held an fd from open to close, so 2,000 partitions under
// `ulimit -n 256` failed part way with "too many open files", the topic was stored anyway,
// and the broker then failed at every start.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ApiKey } from '../../protocol/api-keys.ts';
import type { FetchResponse, ProduceResponse } from '../../protocol/apis/index.ts';
import { ErrorCode } from '../../protocol/errors.ts';
import { batchSizeAt, buildBatch, decodeRecords } from '../../protocol/record-batch.ts';
import { Connection } from '../../client/connection.ts';
import { repoRoot, startBroker, tempDir } from '../helpers/broker-process.ts';

// Overridable for a manual measurement of the case, e.g.
// SLUICE_TEST_PARTITIONS=10000 SLUICE_TEST_FD_LIMIT=4096 node bin/test.mjs many-partitions
const FD_LIMIT = Number(process.env.SLUICE_TEST_FD_LIMIT ?? 256);
const PARTITIONS = Number(process.env.SLUICE_TEST_PARTITIONS ?? 2000);
const TOPIC = 'wide';
const enc = new TextEncoder();
const dec = new TextDecoder();
/** node bin/sluice.mjs under `ulimit -n FD_LIMIT`; startBroker appends `broker --data-dir ...`. */
const lowFdRuntime = ['sh', '-c', `ulimit -n ${FD_LIMIT} && exec "$0" "$@"`, process.execPath, join(repoRoot, 'bin/sluice.mjs')];

async function produce(c: Connection, partition: number, value: string): Promise<void> {
  const batch = buildBatch([{ key: null, value: enc.encode(value) }]);
  const r = await c.send<ProduceResponse>(ApiKey.PRODUCE, { acks: 1, timeoutMs: 5000, topics: [{ topic: TOPIC, partitions: [{ partition, recordsBytes: batch.length }] }] }, [batch]);
  const p = r.control.topics[0]!.partitions[0]!;
  assert.equal(p.errorCode, 0, `produce to ${partition}: ${p.errorCode} ${p.errorMessage}`);
}

async function values(c: Connection, partition: number): Promise<string[]> {
  const r = await c.send<FetchResponse>(ApiKey.FETCH, { maxWaitMs: 0, minBytes: 0, maxBytes: 1 << 20, topics: [{ topic: TOPIC, partitions: [{ partition, fetchOffset: 0, partitionMaxBytes: 1 << 20 }] }] });
  const p = r.control.topics[0]!.partitions[0]!;
  assert.equal(p.errorCode, 0, `fetch ${partition}: ${p.errorCode}`);
  const out: string[] = [];
  for (let pos = 0; pos < r.data.length; pos += batchSizeAt(r.data, pos)) for (const rec of decodeRecords(r.data, pos)) out.push(dec.decode(rec.value!));
  return out;
}

test(`${PARTITIONS} partitions under ulimit -n ${FD_LIMIT}: created, written, read, and the broker restarts`, { timeout: 600_000 }, async (t) => {
  const dataDir = tempDir();
  let b = await startBroker({ dataDir, runtime: lowFdRuntime, startTimeoutMs: 120_000 });
  try {
    const c = await Connection.connect(b.host, b.port, { requestTimeoutMs: 300_000 });
    // Another client keeps asking for ApiVersions while the partitions are made: the slowest
    // answer shows how long the event loop was blocked (diagnostic only; the machine is noisy).
    const pinger = await Connection.connect(b.host, b.port, { requestTimeoutMs: 300_000 });
    let creating = true;
    let slowestPingMs = 0;
    const pings = (async () => {
      for (let i = 0; creating && i < 100_000; i++) {
        const sentAt = Date.now();
        await pinger.send(ApiKey.API_VERSIONS, {});
        slowestPingMs = Math.max(slowestPingMs, Date.now() - sentAt);
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    const startedAt = Date.now();
    const r = await c.send<any>(ApiKey.CREATE_TOPICS, { topics: [{ topic: TOPIC, partitions: PARTITIONS, replicationFactor: 1, configs: {} }], validateOnly: false }).finally(() => (creating = false));
    await pings;
    pinger.close();
    t.diagnostic(`CreateTopics of ${PARTITIONS} partitions answered in ${Date.now() - startedAt} ms; slowest ApiVersions meanwhile ${slowestPingMs} ms`);
    assert.equal(r.control.topics[0].errorCode, 0, JSON.stringify(r.control.topics[0]));
    // Two records in every 7th partition (each partition's segment file is touched), then all read back.
    const written = new Map<number, string[]>();
    for (let p = 0; p < PARTITIONS; p += 7) {
      const vs = [`p${p}-a`, `p${p}-b`];
      for (const v of vs) await produce(c, p, v);
      written.set(p, vs);
    }
    for (const [p, vs] of written) assert.deepEqual(await values(c, p), vs, `partition ${p}`);
    c.close();
    assert.doesNotMatch(b.log(), /EMFILE|too many open files/i);
    assert.equal(await b.stop(), 0);

    const restartAt = Date.now();
    b = await startBroker({ dataDir, runtime: lowFdRuntime, startTimeoutMs: 120_000 });
    t.diagnostic(`restart with ${PARTITIONS} partitions took ${Date.now() - restartAt} ms`);
    const c2 = await Connection.connect(b.host, b.port, { requestTimeoutMs: 60_000 });
    for (const [p, vs] of written) assert.deepEqual(await values(c2, p), vs, `partition ${p} after restart`);
    await produce(c2, PARTITIONS - 1, 'last');
    assert.deepEqual(await values(c2, PARTITIONS - 1), PARTITIONS - 1 in written ? [...written.get(PARTITIONS - 1)!, 'last'] : ['last']);
    c2.close();
    assert.doesNotMatch(b.log(), /EMFILE|too many open files/i);
  } finally {
    await b.stop();
    b.cleanup();
  }
});

test('a topic whose partitions cannot be created is not stored: STORAGE_ERROR, nothing left behind, the broker restarts', async () => {
  const dataDir = tempDir();
  // A plain file where partition 3's directory would go: creating that partition fails.
  writeFileSync(join(dataDir, 'blocked-3'), 'not a directory');
  let b = await startBroker({ dataDir });
  try {
    const c = await Connection.connect(b.host, b.port);
    const r = await c.send<any>(ApiKey.CREATE_TOPICS, { topics: [{ topic: 'blocked', partitions: 5, replicationFactor: 1, configs: {} }], validateOnly: false });
    assert.equal(r.control.topics[0].errorCode, ErrorCode.STORAGE_ERROR, JSON.stringify(r.control.topics[0]));
    const d = await c.send<any>(ApiKey.DESCRIBE_TOPICS, { topics: ['blocked'] });
    assert.equal(d.control.topics[0].errorCode, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, 'the topic was not stored');
    c.close();
    assert.equal(await b.stop(), 0);
    b = await startBroker({ dataDir });
    assert.deepEqual(readdirSync(dataDir).filter((n) => n.startsWith('blocked-') && n !== 'blocked-3'), [], 'no partition directory left behind');
    const c2 = await Connection.connect(b.host, b.port);
    const again = await c2.send<any>(ApiKey.DESCRIBE_TOPICS, { topics: ['blocked'] });
    assert.equal(again.control.topics[0].errorCode, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
    c2.close();
  } finally {
    await b.stop();
    b.cleanup();
  }
});
