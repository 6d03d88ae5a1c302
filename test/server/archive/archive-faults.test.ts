// Archive faults with real broker processes (SPEC §7.10):
// - kill -9 mid-upload, many times at random points (small segments, a throttle so uploads
//   take a while, acks=all produce in between): afterwards every committed segment verifies
//   (manifest CRC = the .log object's), nothing committed is half-visible, and every
//   acknowledged message is readable in order: archive objects read directly below the local
//   log start, then the broker's local log.
// - The S3 server stopped for a while: produce goes on, local deletion pauses (the local log
//   start stays), `sluice archive status` reports the error (exit 1); when the server is back
//   uploads resume, then local deletion.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { Admin } from '../../../client/admin.ts';
import { Consumer } from '../../../client/consumer.ts';
import { Producer } from '../../../client/producer.ts';
import { decodeRecords } from '../../../protocol/record-batch.ts';
import { LocalDirStore } from '../../../server/archive/local-dir-store.ts';
import { MANIFEST_SUFFIX, parseSegmentKey } from '../../../server/archive/archive-keys.ts';
import { decodeManifest, type SegmentManifest } from '../../../server/archive/segment-manifest.ts';
import { crcOfBytes } from '../../../server/archive/partition-archive.ts';
import type { ArchiveStore } from '../../../server/archive/archive-store.ts';
import { EmbeddedMetadataStore } from '../../../server/metadata/embedded-store.ts';
import { startBroker, tempDir, type BrokerProcess } from '../../helpers/broker-process.ts';
import { sluice } from '../../helpers/cli.ts';
import { startS3Server } from '../../helpers/s3-server.ts';

const TOPIC = 'faulty';
const VALUE_PAD = 'x'.repeat(300);

async function until(what: string, cond: () => Promise<boolean>, waitMs = 20_000): Promise<void> {
  const deadline = Date.now() + waitMs;
  while (!(await cond())) {
    if (Date.now() > deadline) assert.fail(`timed out after ${waitMs} ms waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Sends values with acks=all; returns the ones acknowledged (an error mid-way ends the batch). */
async function produceAcked(bootstrap: string, values: string[], groupSize = 10): Promise<string[]> {
  const producer = new Producer({ bootstrap, acks: -1, lingerMs: 2, deliveryTimeoutMs: 10_000 });
  const acked: string[] = [];
  try {
    // Groups (10: about 3 KiB) sent one after another: several batches per segment, so
    // segments roll between them.
    for (let i = 0; i < values.length; i += groupSize) {
      const group = values.slice(i, i + groupSize);
      const results = await Promise.allSettled(group.map((v) => producer.send({ topic: TOPIC, partition: 0, value: v })));
      results.forEach((r, j) => {
        if (r.status === 'fulfilled') acked.push(group[j]!);
      });
    }
  } finally {
    await producer.close().catch(() => {});
  }
  return acked;
}

/** Every committed segment of the partition per the broker's metadata (read after it stopped), verified. */
async function committedSegments(store: ArchiveStore, dataDir: string): Promise<{ segments: SegmentManifest[]; startOffset: number; endOffset: number }> {
  const meta = new EmbeddedMetadataStore(dataDir, 0);
  await meta.open();
  try {
    const t = meta.getTopic(TOPIC)!;
    const state = await meta.getArchiveState(TOPIC, t.id, 0);
    if (!state) return { segments: [], startOffset: 0, endOffset: 0 };
    const prefix = `${TOPIC}-${t.id}/0/`;
    const objects = await store.list(prefix);
    const manifests: SegmentManifest[] = [];
    for (const o of objects) {
      const k = parseSegmentKey(o.key.slice(prefix.length));
      if (!k || k.suffix !== MANIFEST_SUFFIX || k.lastOffset >= state.endOffset || k.lastOffset < state.startOffset) continue;
      const m = decodeManifest(await store.get(o.key));
      // No half-visible segment: every file the manifest names is there, whole; the .log's CRC matches.
      for (const [suffix, size] of Object.entries(m.files)) {
        const h = await store.head(`${prefix}${o.key.slice(prefix.length, -MANIFEST_SUFFIX.length)}${suffix}`);
        assert.equal(h?.sizeBytes, size, `${o.key}: ${suffix}`);
      }
      const log = await store.get(`${o.key.slice(0, -MANIFEST_SUFFIX.length)}.log`);
      assert.equal(crcOfBytes(log), m.logCrc32, `${o.key}: CRC`);
      manifests.push(m);
    }
    manifests.sort((a, b) => a.lastOffset - b.lastOffset);
    // Coverage of the committed range is contiguous.
    let covered = state.startOffset;
    for (const m of manifests) {
      assert.ok(m.baseOffset <= covered, `gap before ${m.baseOffset}-${m.lastOffset} (covered to ${covered})`);
      covered = Math.max(covered, m.lastOffset + 1);
    }
    assert.equal(covered, state.endOffset, 'the committed segments cover the archive state');
    return { segments: manifests, ...state };
  } finally {
    await meta.close();
  }
}

/** Record values of offsets [from, to) read from the archived .log objects. */
async function archivedValues(store: ArchiveStore, dataDir: string, segments: SegmentManifest[], from: number, to: number): Promise<Map<number, string>> {
  const meta = new EmbeddedMetadataStore(dataDir, 0);
  await meta.open();
  const id = meta.getTopic(TOPIC)!.id;
  await meta.close();
  const out = new Map<number, string>();
  for (const m of segments) {
    if (m.lastOffset < from || m.baseOffset >= to) continue;
    const key = `${TOPIC}-${id}/0/${String(m.baseOffset).padStart(20, '0')}-${String(m.lastOffset).padStart(20, '0')}.log`;
    const bytes = await store.get(key);
    for (let pos = 0; pos < bytes.length; ) {
      const size = new DataView(bytes.buffer, bytes.byteOffset + pos + 8, 4).getInt32(0) + 12;
      for (const r of decodeRecords(bytes, pos)) if (r.offset >= from && r.offset < to) out.set(r.offset, Buffer.from(r.value!).toString());
      pos += size;
    }
  }
  return out;
}

/** Values by offset, read through the broker from `offset` (or the earliest) until `end`. */
async function consumeFrom(bootstrap: string, offset: number | 'earliest', end: number): Promise<Map<number, string>> {
  const consumer = new Consumer({ bootstrap });
  const out = new Map<number, string>();
  try {
    await consumer.assign([{ topic: TOPIC, partition: 0, offset }]);
    const deadline = Date.now() + 20_000;
    let last = -1;
    while (last < end - 1 && Date.now() < deadline) {
      for (const m of await consumer.poll(200)) {
        out.set(m.offset, m.value!.toString());
        last = Math.max(last, m.offset);
      }
    }
  } finally {
    await consumer.close();
  }
  return out;
}

test('kill -9 mid-upload 20 times: uploads resume, every committed segment verifies, every acknowledged message is readable in order from archive + local log', { timeout: 120_000 }, async () => {
  const dataDir = tempDir();
  const archiveDir = tempDir('sluice-archive-');
  const args = ['--archive-dir', archiveDir, '--archive-upload-bytes-per-sec', String(64 * 1024), '--archive-check-interval-ms', '20', '--retention-check-interval-ms', '50', '--log-level', 'info'];
  let broker: BrokerProcess | null = await startBroker({ dataDir, args });
  let logs = '';
  const acked: string[] = [];
  let seq = 0;
  try {
    const admin = new Admin({ bootstrap: broker.bootstrap, requestTimeoutMs: 10_000 });
    await admin.createTopics([{ topic: TOPIC, partitions: 1, configs: { 'archive.enable': 'true', 'segment.bytes': '16384', 'local.retention.bytes': '32768' } }]);
    await admin.close();
    const KILLS = 20;
    for (let k = 0; k < KILLS; k++) {
      const values = Array.from({ length: 60 }, () => `${seq++}:${VALUE_PAD}`);
      acked.push(...(await produceAcked(broker.bootstrap, values, 30)));
      // Uploads of ~16 KiB at 64 KiB/s take ~250 ms: kill somewhere in there.
      await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 400)));
      await broker.kill();
      logs += broker.log();
      broker = await startBroker({ dataDir, args });
    }
    // Let the last uploads finish, then stop cleanly and check.
    const bootstrap = broker.bootstrap;
    const admin2 = new Admin({ bootstrap, requestTimeoutMs: 10_000 });
    await until('uploads caught up', async () => {
      const d = await admin2.describeArchive([TOPIC]);
      const p = d.topics[0]!.partitions[0]!;
      return p.lagSegments === 0 && p.archiveEndOffset > 0;
    });
    const st = (await admin2.describeArchive([TOPIC])).topics[0]!.partitions[0]!;
    await admin2.close();
    assert.ok(st.localStartOffset > 0, 'local deletion happened');
    assert.ok(st.localStartOffset <= st.archiveEndOffset, 'nothing deleted locally before it was archived');
    const local = await consumeFrom(bootstrap, st.localStartOffset, st.highWatermark);
    // And through the broker from the earliest offset, across the archive/local boundary.
    const viaBroker = await consumeFrom(bootstrap, 'earliest', st.highWatermark);
    logs += broker.log();
    await broker.stop();
    // Some kills did land mid-upload: a restarted leader found the crashed upload's objects.
    const sweeps = logs.match(/swept orphan objects/g)?.length ?? 0;
    assert.ok(sweeps >= 1, 'no restart found a half-done upload: the kills never hit one');
    broker = null;
    const store = new LocalDirStore(archiveDir);
    const { segments, startOffset } = await committedSegments(store, dataDir);
    assert.equal(startOffset, 0);
    const archived = await archivedValues(store, dataDir, segments, 0, st.localStartOffset);
    const all = new Map([...archived, ...local]);
    assert.deepEqual([...viaBroker.entries()].sort((a, b) => a[0] - b[0]), [...all.entries()].sort((a, b) => a[0] - b[0]), 'a consumer from the earliest offset reads what the archive objects and the local log hold');
    const read = [...all.entries()].sort((a, b) => a[0] - b[0]).map(([, v]) => v);
    // Every acknowledged message, in order (unacknowledged ones may be there too: a kill can
    // come after the append and before the answer).
    const pos = new Map(read.map((v, i) => [v, i]));
    let last = -1;
    for (const v of acked) {
      const i = pos.get(v);
      assert.ok(i !== undefined, `acknowledged message ${v.slice(0, 12)} is missing`);
      assert.ok(i > last, `acknowledged message ${v.slice(0, 12)} out of order`);
      last = i;
    }
    assert.ok(acked.length >= KILLS * 30, `${acked.length} acknowledged`);
  } finally {
    await broker?.kill().catch(() => {});
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(archiveDir, { recursive: true, force: true });
  }
});

test('the S3 server stopped: produce goes on, local deletion pauses, archive status reports the error; back: uploads resume, then local deletion', { timeout: 90_000 }, async () => {
  const s3 = await startS3Server();
  const dataDir = tempDir();
  const args = [...s3.brokerArgs(), '--archive-check-interval-ms', '50', '--retention-check-interval-ms', '50', '--log-level', 'warn'];
  const broker = await startBroker({ dataDir, args, env: s3.env() });
  const admin = new Admin({ bootstrap: broker.bootstrap, requestTimeoutMs: 10_000 });
  const status = async () => (await admin.describeArchive([TOPIC])).topics[0]!.partitions[0]!;
  let seq = 0;
  const batch = () => Array.from({ length: 100 }, () => `${seq++}:${VALUE_PAD}`);
  try {
    await admin.createTopics([{ topic: TOPIC, partitions: 1, configs: { 'archive.enable': 'true', 'segment.bytes': '16384', 'local.retention.bytes': '8192' } }]);
    assert.equal((await produceAcked(broker.bootstrap, batch())).length, 100);
    await until('first segments archived and deleted locally', async () => (await status()).localStartOffset > 0).catch(async (e) => {
      throw new Error(`${(e as Error).message}: ${JSON.stringify(await status())}\n${broker.log().slice(-3000)}`);
    });
    await s3.stop();
    const before = await status();
    // Produce goes on while the store is down.
    for (let i = 0; i < 3; i++) assert.equal((await produceAcked(broker.bootstrap, batch())).length, 100);
    await until('the uploader reports the store error', async () => (await status()).lastError !== '');
    const down = await status();
    assert.equal(down.localStartOffset, before.localStartOffset, 'no local deletion while the store is down');
    assert.ok(down.lagSegments >= 2, `lag ${down.lagSegments} segments`);
    const cli = await sluice(['archive', 'status', TOPIC, '--bootstrap', broker.bootstrap]);
    assert.equal(cli.code, 1, cli.stderr);
    const line = cli.stdout.split('\n').find((l) => l.startsWith(`${TOPIC}\t`))!;
    assert.ok(line && line.split('\t')[8] !== '-', `status line: ${line}`);
    assert.doesNotMatch(cli.stdout + cli.stderr, /NodeVersionSupportWarning/);
    assert.doesNotMatch(broker.log(), /NodeVersionSupportWarning/);
    assert.ok((await admin.describeArchive([TOPIC])).brokers[0]!.counters.uploadFailures > 0, 'failed attempts are counted');
    await new Promise((r) => setTimeout(r, 500));
    assert.equal((await status()).localStartOffset, before.localStartOffset, 'still no local deletion');
    await s3.restart();
    await until('uploads resumed and local deletion caught up', async () => {
      const s = await status();
      return s.lagSegments === 0 && s.lastError === '' && s.localStartOffset > before.localStartOffset;
    }, 40_000);
    const cli2 = await sluice(['archive', 'status', TOPIC, '--bootstrap', broker.bootstrap]);
    assert.equal(cli2.code, 0, cli2.stdout + cli2.stderr);
    // Without TOPIC: every archived topic; --json: Admin.describeArchive's object.
    const json = await sluice(['archive', 'status', '--json', '--bootstrap', broker.bootstrap]);
    assert.equal(json.code, 0, json.stderr);
    const d = JSON.parse(json.stdout) as { brokers: Array<{ storeKind: string; storeDescription: string }>; topics: Array<{ topic: string; partitions: Array<{ archiveEndOffset: number; lastError: string }> }> };
    assert.deepEqual(d.topics.map((t) => t.topic), [TOPIC]);
    assert.equal(d.brokers[0]!.storeKind, 's3');
    assert.match(d.brokers[0]!.storeDescription, new RegExp(`${s3.endpoint}/${s3.bucket}/archive/`));
    assert.ok(d.topics[0]!.partitions[0]!.archiveEndOffset > 0);
  } finally {
    await admin.close();
    await broker.kill().catch(() => {});
    rmSync(dataDir, { recursive: true, force: true });
    await s3.destroy();
  }
});
