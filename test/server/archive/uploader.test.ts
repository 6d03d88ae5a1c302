// The archive uploader in a real in-process broker (server/archive/partition-archive.ts):
// sealed segments below the high watermark go to the archive store with indexes and a
// manifest, the archive state in the metadata store commits them, and only then does local
// retention delete them (local.retention.bytes). Run against a local directory store and an
// S3 store on a real s3rver.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Admin } from '../../../client/admin.ts';
import { Producer } from '../../../client/producer.ts';
import { formatStatus } from '../../../client/cli/archive.ts';
import { ErrorCode, SluiceError } from '../../../protocol/errors.ts';
import { decodeManifest } from '../../../server/archive/segment-manifest.ts';
import { LocalDirStore } from '../../../server/archive/local-dir-store.ts';
import { crcOfBytes } from '../../../server/archive/partition-archive.ts';
import { Broker } from '../../../server/broker.ts';
import { defaultBrokerConfig, type BrokerConfig } from '../../../server/config/broker-config.ts';
import { tempDir } from '../../helpers/broker-process.ts';
import { startS3Server } from '../../helpers/s3-server.ts';

const WAIT_MS_MAX = 20_000;

/** The broker's handler context (private: tests look inside). */
const ctxOf = (b: Broker) => (b as unknown as { ctx: import('../../../server/api/context.ts').BrokerContext }).ctx;

async function until(what: string, cond: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + WAIT_MS_MAX;
  while (!(await cond())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function withBroker(overrides: Partial<BrokerConfig>, body: (b: Broker, bootstrap: string) => Promise<void>): Promise<void> {
  const dataDir = tempDir();
  const broker = new Broker(defaultBrokerConfig({ dataDir, host: '127.0.0.1', port: 0, archiveCheckIntervalMs: 50, retentionCheckIntervalMs: 50, logLevel: 'warn', ...overrides }));
  const port = await broker.start();
  try {
    await body(broker, `127.0.0.1:${port}`);
  } finally {
    await broker.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

const VALUE = 'v'.repeat(200);

async function produceAll(bootstrap: string, topic: string, n: number): Promise<void> {
  const producer = new Producer({ bootstrap, acks: -1, lingerMs: 0 });
  try {
    for (let i = 0; i < n; i += 50) {
      await Promise.all(Array.from({ length: Math.min(50, n - i) }, (_, k) => producer.send({ topic, partition: 0, key: `k${i + k}`, value: `${i + k}:${VALUE}` })));
    }
  } finally {
    await producer.close();
  }
}

for (const kind of ['local', 's3'] as const) {
  test(`${kind}: sealed segments are archived and committed, then deleted locally down to local.retention.bytes; the manifests' CRCs match the archived .log objects`, { timeout: 60_000 }, async () => {
    const archiveDir = tempDir('sluice-archive-');
    const s3 = kind === 's3' ? await startS3Server() : null;
    const overrides: Partial<BrokerConfig> = s3 ? { archiveS3Endpoint: s3.endpoint, archiveS3Bucket: s3.bucket, archiveS3Prefix: 'a/' } : { archiveDir };
    if (s3) Object.assign(process.env, s3.env());
    try {
      await withBroker(overrides, async (broker, bootstrap) => {
        const admin = new Admin({ bootstrap, requestTimeoutMs: 10_000 });
        try {
          await admin.createTopics([{ topic: 'arch', partitions: 1, configs: { 'archive.enable': 'true', 'segment.bytes': '8192', 'local.retention.bytes': '16384' } }]);
          // A compacted topic cannot be archived.
          await assert.rejects(admin.createTopics([{ topic: 'compacted', partitions: 1, configs: { 'archive.enable': 'true', 'cleanup.policy': 'compact' } }]), (e: unknown) => e instanceof SluiceError && e.code === ErrorCode.INVALID_CONFIG);
          await produceAll(bootstrap, 'arch', 1000);
          const p = ctxOf(broker).topics.localPartition('arch', 0)!;
          assert.ok(p.archive, 'p.archive exists for an archived topic');
          await until('most segments archived and deleted locally', () => {
            const st = p.archive!.status();
            return st.archiveEndOffset > 0 && st.lagSegments === 0 && p.log.logStartOffset > 0 && p.log.logStartOffset <= st.archiveEndOffset && p.log.sizeBytes <= 16384 + 8192 + 8192;
          });
          const st = p.archive!.status();
          assert.equal(st.archiveStartOffset, 0);
          assert.ok(p.log.sizeBytes <= 16384 + 8192 + 8192, `local log ${p.log.sizeBytes} bytes`);
          // The commit point is in the metadata store.
          const topicId = ctxOf(broker).store.getTopic('arch')!.id;
          assert.deepEqual(await ctxOf(broker).store.getArchiveState('arch', topicId, 0), { startOffset: 0, endOffset: st.archiveEndOffset });
          // Every committed segment: manifest + .log with the manifest's CRC, contiguous coverage.
          const segs = p.archive!.segments.all();
          assert.ok(segs.length >= 3, `${segs.length} archived segments`);
          let expectBase = 0;
          for (const m of segs) {
            assert.equal(m.baseOffset, expectBase);
            expectBase = m.lastOffset + 1;
            const keyBase = `${p.archive!.prefix}${String(m.baseOffset).padStart(20, '0')}-${String(m.lastOffset).padStart(20, '0')}`;
            const manifest = decodeManifest(await p.archive!.store.get(`${keyBase}.manifest`));
            assert.deepEqual(manifest, m);
            const logBytes = await p.archive!.store.get(`${keyBase}.log`);
            assert.equal(logBytes.length, m.sizeBytes);
            assert.equal(crcOfBytes(logBytes), m.logCrc32);
            assert.ok((await p.archive!.store.head(`${keyBase}.index`)) !== null);
            assert.ok((await p.archive!.store.head(`${keyBase}.timeindex`)) !== null);
          }
          assert.equal(expectBase, st.archiveEndOffset);
          const stats = broker.archive!.stats;
          assert.equal(stats.segmentsUploaded, segs.length);
          assert.equal(stats.bytesUploaded, segs.reduce((a, m) => a + m.sizeBytes, 0));
          if (kind === 'local') {
            const m = segs[0]!;
            const file = join(archiveDir, `${p.archive!.prefix}${String(m.baseOffset).padStart(20, '0')}-${String(m.lastOffset).padStart(20, '0')}.log`);
            assert.equal(readFileSync(file).length, m.sizeBytes);
          }
          // DescribeArchive (API 26) through the admin client, and the CLI's formatting of it.
          const d = await admin.describeArchive(['arch']);
          assert.equal(d.brokers.length, 1);
          assert.equal(d.brokers[0]!.storeKind, kind);
          assert.equal(d.brokers[0]!.counters.segmentsUploaded, segs.length);
          const dp = d.topics[0]!.partitions[0]!;
          assert.equal(d.topics[0]!.archiveEnabled, true);
          assert.deepEqual([dp.leader, dp.archiveStartOffset, dp.archiveEndOffset, dp.archivedSegments, dp.localStartOffset, dp.lastError], [true, 0, st.archiveEndOffset, segs.length, p.log.logStartOffset, '']);
          const line = formatStatus(d).split('\n').find((l) => l.startsWith('arch\t'))!.split('\t');
          assert.deepEqual([line[0], line[1], line[2], line[3], line[5], line[8]], ['arch', '0', `[${p.log.logStartOffset}, ${p.log.logEndOffset})`, `[0, ${st.archiveEndOffset})`, String(segs.length), '-']);
          await assert.rejects(admin.describeArchive(['nope']), (e: unknown) => e instanceof SluiceError && e.code === ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
          // Deleting the topic removes its archive (in the background) and its archive state.
          const store = p.archive!.store;
          const prefix = p.archive!.prefix;
          await admin.deleteTopics(['arch']);
          await until('the deleted topic\'s archive removed', async () => (await store.list(prefix)).length === 0);
          assert.equal(await ctxOf(broker).store.getArchiveState('arch', topicId, 0), undefined);
        } finally {
          await admin.close();
        }
      });
    } finally {
      await s3?.destroy();
      rmSync(archiveDir, { recursive: true, force: true });
    }
  });
}

test('archive.enable=true on a broker without an archive store is INVALID_CONFIG; --archive-enable makes it the default of new delete-policy topics', { timeout: 30_000 }, async () => {
  await withBroker({}, async (_b, bootstrap) => {
    const admin = new Admin({ bootstrap, requestTimeoutMs: 10_000 });
    try {
      await assert.rejects(admin.createTopics([{ topic: 'x', partitions: 1, configs: { 'archive.enable': 'true' } }]), (e: unknown) => e instanceof SluiceError && e.code === ErrorCode.INVALID_CONFIG && /no archive store/.test(e.message));
    } finally {
      await admin.close();
    }
  });
  const archiveDir = tempDir('sluice-archive-');
  try {
    await withBroker({ archiveDir, archiveEnable: 'true' }, async (broker, bootstrap) => {
      const admin = new Admin({ bootstrap, requestTimeoutMs: 10_000 });
      try {
        await admin.createTopics([{ topic: 'd', partitions: 1 }, { topic: 'c', partitions: 1, configs: { 'cleanup.policy': 'compact' } }]);
        assert.equal(ctxOf(broker).store.getTopic('d')!.configs['archive.enable'], 'true');
        assert.equal(ctxOf(broker).store.getTopic('c')!.configs['archive.enable'], undefined);
      } finally {
        await admin.close();
      }
    });
  } finally {
    rmSync(archiveDir, { recursive: true, force: true });
  }
});

test('a restarted leader sweeps orphans (uncommitted objects) from the partition prefix; total retention.bytes drops archived segments from the front (state first, then objects)', { timeout: 60_000 }, async () => {
  const archiveDir = tempDir('sluice-archive-');
  const dataDir = tempDir();
  // A fresh config per start: a broker writes its bound port into its config (advertisedPort).
  const config = () => defaultBrokerConfig({ dataDir, host: '127.0.0.1', port: 0, archiveDir, archiveCheckIntervalMs: 50, retentionCheckIntervalMs: 50, logLevel: 'warn' });
  let broker = new Broker(config());
  try {
    let bootstrap = `127.0.0.1:${await broker.start()}`;
    const admin = new Admin({ bootstrap, requestTimeoutMs: 10_000 });
    await admin.createTopics([{ topic: 'ret', partitions: 1, configs: { 'archive.enable': 'true', 'segment.bytes': '8192', 'local.retention.bytes': '8192', 'retention.bytes': '40000' } }]);
    await admin.close();
    const id = ctxOf(broker).store.getTopic('ret')!.id;
    const prefix = `ret-${id}/0/`;
    await broker.stop();
    // What a crashed upload leaves: a .log and a manifest whose range was never committed, and junk.
    const store = new LocalDirStore(archiveDir);
    const orphanKeys = [`${prefix}00000000000000000000-00000000000000000009.log`, `${prefix}00000000000000000000-00000000000000000009.manifest`, `${prefix}not-a-segment`];
    for (const k of orphanKeys) await store.put(k, new Uint8Array([1, 2, 3]));
    broker = new Broker(config());
    bootstrap = `127.0.0.1:${await broker.start()}`;
    await until('orphans swept', async () => (await store.list(prefix)).length === 0);
    await produceAll(bootstrap, 'ret', 1500);
    const p = ctxOf(broker).topics.localPartition('ret', 0)!;
    await until('archive retention dropped the front', () => p.archive!.status().archiveStartOffset > 0 && broker.archive!.stats.segmentsDeleted > 0);
    // Once uploads and retention have settled: only the kept segments' objects remain, the
    // first kept segment reaches the archive start, and the state in the metadata says the same.
    const basesOf = async () => [...new Set((await store.list(prefix)).map((o) => Number(o.key.slice(prefix.length).slice(0, 20))))].sort((a, b) => a - b);
    await until('objects match the kept segments', async () => {
      const st = p.archive!.status();
      const kept = p.archive!.segments.all();
      return st.lagSegments === 0 && kept.length > 0 && JSON.stringify(await basesOf()) === JSON.stringify(kept.map((m) => m.baseOffset));
    });
    const st = p.archive!.status();
    assert.deepEqual(await ctxOf(broker).store.getArchiveState('ret', id, 0), { startOffset: st.archiveStartOffset, endOffset: p.archive!.state!.endOffset });
    assert.ok(p.archive!.segments.all()[0]!.lastOffset >= st.archiveStartOffset);
    // Archive + local stay near retention.bytes (one segment of slack).
    const total = p.archive!.segments.sizeBytes + p.log.bytesFrom(p.archive!.segments.endOffset);
    assert.ok(total <= 40000 + 8192 * 2, `archive + local = ${total} bytes`);
    for (const k of orphanKeys) assert.equal(await store.head(k), null);
  } finally {
    await broker.stop().catch(() => {});
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(archiveDir, { recursive: true, force: true });
  }
});

test('AlterTopicConfigs: archive.enable=true on a live topic starts archiving its open replicas; it cannot be turned off again, nor on without a store', { timeout: 60_000 }, async () => {
  await withBroker({}, async (_b, bootstrap) => {
    const admin = new Admin({ bootstrap, requestTimeoutMs: 10_000 });
    try {
      await admin.createTopics([{ topic: 'plain', partitions: 1 }]);
      await assert.rejects(admin.alterTopicConfigs('plain', { 'archive.enable': 'true' }), (e: unknown) => e instanceof SluiceError && e.code === ErrorCode.INVALID_CONFIG && /no archive store/.test(e.message));
    } finally {
      await admin.close();
    }
  });
  const archiveDir = tempDir('sluice-archive-');
  try {
    await withBroker({ archiveDir }, async (broker, bootstrap) => {
      const admin = new Admin({ bootstrap, requestTimeoutMs: 10_000 });
      try {
        await admin.createTopics([{ topic: 'later', partitions: 1, configs: { 'segment.bytes': '8192' } }]);
        await produceAll(bootstrap, 'later', 300);
        const p = ctxOf(broker).topics.localPartition('later', 0)!;
        assert.equal(p.archive, null);
        await assert.rejects(admin.alterTopicConfigs('later', { 'archive.enable': 'true', 'cleanup.policy': 'compact' }), (e: unknown) => e instanceof SluiceError && e.code === ErrorCode.INVALID_CONFIG);
        await admin.alterTopicConfigs('later', { 'archive.enable': 'true', 'local.retention.bytes': '8192' });
        assert.ok(p.archive, 'the open replica got its archive');
        await until('sealed segments archived', () => p.archive!.status().archiveEndOffset > 0 && p.archive!.status().lagSegments === 0);
        await assert.rejects(admin.alterTopicConfigs('later', { 'archive.enable': 'false' }), (e: unknown) => e instanceof SluiceError && e.code === ErrorCode.INVALID_CONFIG && /cannot be turned off/.test(e.message));
        await assert.rejects(admin.alterTopicConfigs('later', {}, ['archive.enable']), (e: unknown) => e instanceof SluiceError && e.code === ErrorCode.INVALID_CONFIG);
      } finally {
        await admin.close();
      }
    });
  } finally {
    rmSync(archiveDir, { recursive: true, force: true });
  }
});
