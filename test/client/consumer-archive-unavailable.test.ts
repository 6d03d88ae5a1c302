/**
 * The consumer and ARCHIVE_UNAVAILABLE (SPEC §6.7, §7.10), with a real broker process and a
 * real S3 server: while the store is down, a consumer positioned on archived offsets neither
 * fails its poll() nor resets its position, and asks again at the same offset only after
 * retryBackoffMs (the broker's archive read-failure counter stays near polls/backoff instead
 * of one per round trip); once the store is back it reads on from that very offset.
 */
import { strict as assert } from 'node:assert';
import { rmSync } from 'node:fs';
import { test } from 'node:test';
import { Admin } from '../../client/admin.ts';
import { Consumer } from '../../client/consumer.ts';
import { Producer } from '../../client/producer.ts';
import { startBroker, tempDir } from '../helpers/broker-process.ts';
import { startS3Server } from '../helpers/s3-server.ts';

const TOPIC = 'cold';
const PAD = 'x'.repeat(300);

async function until(what: string, cond: () => Promise<boolean>, waitMs = 30_000): Promise<void> {
  const deadline = Date.now() + waitMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('store down: poll() neither throws nor resets, retries the same offset after a backoff; store back: reads on from there', { timeout: 90_000 }, async () => {
  const s3 = await startS3Server();
  const dataDir = tempDir();
  const args = [...s3.brokerArgs(), '--archive-check-interval-ms', '50', '--retention-check-interval-ms', '50', '--archive-read-timeout-ms', '2000', '--log-level', 'warn'];
  const broker = await startBroker({ dataDir, args, env: s3.env() });
  const admin = new Admin({ bootstrap: broker.bootstrap, requestTimeoutMs: 10_000 });
  const consumer = new Consumer({ bootstrap: broker.bootstrap, retryBackoffMs: 100 });
  try {
    await admin.createTopics([{ topic: TOPIC, partitions: 1, configs: { 'archive.enable': 'true', 'segment.bytes': '16384', 'local.retention.bytes': '8192' } }]);
    const producer = new Producer({ bootstrap: broker.bootstrap, acks: -1, lingerMs: 2 });
    try {
      for (let i = 0; i < 200; i += 10) await Promise.all(Array.from({ length: 10 }, (_, j) => producer.send({ topic: TOPIC, partition: 0, value: `${i + j}:${PAD}` })));
    } finally {
      await producer.close();
    }
    const status = async () => (await admin.describeArchive([TOPIC])).topics[0]!.partitions[0]!;
    await until('segments archived and deleted locally', async () => (await status()).localStartOffset > 0);
    const archiveStart = (await status()).archiveStartOffset;
    assert.equal(archiveStart, 0);
    await s3.stop();
    const failures = async () => (await admin.describeArchive([TOPIC])).brokers[0]!.counters.readFailures;
    const failuresBefore = await failures();

    await consumer.assign([{ topic: TOPIC, partition: 0, offset: 0 }]);
    const pollingMs = 1500;
    const end = Date.now() + pollingMs;
    while (Date.now() < end) {
      // Not one poll may throw: ARCHIVE_UNAVAILABLE is retried inside the consumer.
      assert.deepEqual(await consumer.poll(100), [], 'nothing is readable while the store is down');
    }
    const attempts = (await failures()) - failuresBefore;
    assert.ok(attempts >= 1, 'the consumer did ask for the archived offset');
    // One attempt per retryBackoffMs (100 ms) at most, with a generous margin; without the
    // backoff a store that refuses at once is asked hundreds of times.
    assert.ok(attempts <= pollingMs / 100 + 10, `${attempts} archive reads in ${pollingMs} ms`);

    await s3.restart();
    const got: number[] = [];
    const deadline = Date.now() + 30_000;
    while (got.length < 200 && Date.now() < deadline) for (const m of await consumer.poll(200)) got.push(m.offset);
    assert.deepEqual(got, Array.from({ length: 200 }, (_, i) => i), 'read on from offset 0, across archive and local log, in order');
  } finally {
    await consumer.close().catch(() => {});
    await admin.close().catch(() => {});
    await broker.kill().catch(() => {});
    rmSync(dataDir, { recursive: true, force: true });
    await s3.destroy();
  }
});
