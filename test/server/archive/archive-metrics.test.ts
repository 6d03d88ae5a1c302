/**
 * The archive's counters on the Prometheus endpoint (README "Metrics and logs"): a real broker
 * with --archive-dir and --metrics-port uploads rolled segments, and
 * sluice_archive_{segments,bytes}_uploaded_total move by what the archive holds; a consumer
 * reading from the earliest offset (below the local log start) moves
 * sluice_archive_bytes_read_total.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { Admin } from '../../../client/admin.ts';
import { Consumer } from '../../../client/consumer.ts';
import { Producer } from '../../../client/producer.ts';
import { startBroker, tempDir } from '../../helpers/broker-process.ts';
import { freePort, metric, scrape } from '../../helpers/metrics-scrape.ts';

const TOPIC = 'metered';
const WAIT_MS_MAX = 30_000;

async function until<T>(what: string, f: () => Promise<T | null>): Promise<T> {
  const deadline = Date.now() + WAIT_MS_MAX;
  for (;;) {
    const v = await f();
    if (v !== null) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('archive counters are exported: uploads and reads from the archive move them', { timeout: 90_000 }, async () => {
  const archiveDir = tempDir('sluice-archive-');
  const metricsPort = await freePort();
  const broker = await startBroker({ args: ['--archive-dir', archiveDir, '--metrics-port', String(metricsPort), '--archive-check-interval-ms', '20', '--retention-check-interval-ms', '50'] });
  try {
    const before = await scrape(metricsPort);
    assert.equal(metric(before, 'sluice_archive_segments_uploaded_total'), 0);
    assert.match(before.text, /# TYPE sluice_archive_bytes_uploaded_total counter/);
    const admin = new Admin({ bootstrap: broker.bootstrap, requestTimeoutMs: 10_000 });
    await admin.createTopics([{ topic: TOPIC, partitions: 1, configs: { 'archive.enable': 'true', 'segment.bytes': '16384', 'local.retention.bytes': '16384' } }]);
    const producer = new Producer({ bootstrap: broker.bootstrap, lingerMs: 0 });
    const sent = Array.from({ length: 400 }, (_, i) => `${i}:${'v'.repeat(200)}`);
    for (let i = 0; i < sent.length; i += 20) await Promise.all(sent.slice(i, i + 20).map((v) => producer.send({ topic: TOPIC, partition: 0, value: v })));
    await producer.close();
    // Uploaded, and the local log trimmed below it (so the earliest offsets are only in the archive).
    const status = await until('segments archived and deleted locally', async () => {
      const d = await admin.describeArchive([TOPIC]);
      const p = d.topics[0]?.partitions[0];
      return p && p.archivedSegments >= 3 && p.localStartOffset > 0 ? { d, p } : null;
    });
    const afterUpload = await scrape(metricsPort);
    const counters = status.d.brokers[0]!.counters;
    assert.ok(metric(afterUpload, 'sluice_archive_segments_uploaded_total') >= status.p.archivedSegments);
    assert.equal(metric(afterUpload, 'sluice_archive_segments_uploaded_total') >= counters.segmentsUploaded, true);
    assert.ok(metric(afterUpload, 'sluice_archive_bytes_uploaded_total') >= status.p.archivedBytes && status.p.archivedBytes > 0);
    assert.equal(metric(afterUpload, 'sluice_archive_upload_failures_total'), 0);
    await admin.close();

    const consumer = new Consumer({ bootstrap: broker.bootstrap });
    await consumer.assign([{ topic: TOPIC, partition: 0, offset: 'earliest' }]);
    const got: string[] = [];
    try {
      await until('every message consumed', async () => {
        for (const m of await consumer.poll(200)) got.push(Buffer.from(m.value!).toString());
        return got.length >= sent.length ? true : null;
      });
    } finally {
      await consumer.close();
    }
    assert.deepEqual(got, sent);
    const afterRead = await scrape(metricsPort);
    assert.ok(metric(afterRead, 'sluice_archive_bytes_read_total') > 0, 'reads below the local log start came from the archive');
  } finally {
    await broker.stop();
    broker.cleanup();
    rmSync(archiveDir, { recursive: true, force: true });
  }
});
