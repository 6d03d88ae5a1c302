/**
 * `sluice produce` across a broker failure, as a user runs it: a real broker process that is
 * SIGKILLed while the CLI streams lines into it.
 *
 * (a) The broker comes back after a few seconds: every line is delivered, each partition's
 *     lines in input order (first occurrences: a retry after a lost acknowledgement may
 *     duplicate, that is at-least-once), progress was reported while waiting, exit 0.
 * (b) The broker stays down: with a short --delivery-timeout-ms the CLI gives up after about
 *     that time (not minutes) with a summary, and exits 1; lines delivered before the kill
 *     count as sent.
 *
 * Regression: the producer used to give up after 5 retries (~3 s), so a broker down for
 * longer failed every line; and against a dead broker the CLI kept failing lines for minutes.
 */
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { Admin } from '../../client/admin.ts';
import { startBroker, tempDir, type BrokerProcess } from '../helpers/broker-process.ts';
import { sluice } from '../helpers/cli.ts';
import { startSluice, type CliProcess } from '../helpers/cli-process.ts';
import { readAll, sleep, waitFor } from '../cluster/harness.ts';

const lines = (from: number, to: number): string => Array.from({ length: to - from + 1 }, (_, i) => `${from + i}\n`).join('');

async function createTopic(bootstrap: string, topic: string, partitions: number): Promise<void> {
  const admin = new Admin({ bootstrap, requestTimeoutMs: 5000 });
  try {
    await admin.createTopics([{ topic, partitions }]);
  } finally {
    await admin.close();
  }
}

test('(a) a broker killed mid-stream and restarted: every line delivered, per-partition order kept, exit 0', { timeout: 120_000 }, async (t) => {
  const dataDir = tempDir();
  const brokers: BrokerProcess[] = [await startBroker({ dataDir })];
  let cli: CliProcess | null = null;
  try {
    const bootstrap = brokers[0]!.bootstrap;
    await createTopic(bootstrap, 'lines', 3);
    cli = startSluice(['produce', 'lines', '--bootstrap', bootstrap, '--progress-interval-ms', '500']);
    const total = 3000;
    const chunk = 100;
    let restartedAtMs = 0;
    const admin = new Admin({ bootstrap, requestTimeoutMs: 5000 });
    for (let i = 1; i <= total; i += chunk) {
      await cli.write(lines(i, i + chunk - 1));
      await sleep(100);
      if (i === 1001) {
        // Mid-stream: the CLI is connected and has delivered lines already.
        try {
          await waitFor('lines delivered before the kill', async () => {
            let n = 0;
            for (let p = 0; p < 3; p++) n += await admin.listOffsets('lines', p, 'latest');
            return n > 0;
          }, 30_000);
        } finally {
          await admin.close();
        }
        await brokers[0]!.kill();
        t.diagnostic('broker killed after 1100 lines written');
      }
      if (i === 2001) {
        // ~1 s of writing after the kill, plus a pause: the broker stays down ~5 s in all.
        await sleep(4000);
        brokers.push(await startBroker({ dataDir, port: brokers[0]!.port }));
        restartedAtMs = Date.now();
        t.diagnostic('broker restarted on the same port and data dir');
      }
    }
    cli.end();
    const r = await cli.exit(90_000);
    t.diagnostic(`exit ${r.code} ${Date.now() - restartedAtMs} ms after the restart; stderr:\n${r.stderr}`);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /\d+ sent, \d+ pending, retrying: /, 'progress while the broker was down');
    assert.match(r.stderr, new RegExp(`${total} sent, 0 failed`), 'summary');

    const log = await readAll(bootstrap, 'lines', 3);
    const seen = new Set<number>();
    let records = 0;
    for (const [p, msgs] of log) {
      let max = 0;
      for (const m of msgs) {
        records++;
        const v = Number(m.value!.toString());
        if (seen.has(v)) continue;
        seen.add(v);
        assert.ok(v > max, `partition ${p}: line ${v} at offset ${m.offset} after line ${max}`);
        max = v;
      }
    }
    t.diagnostic(`${records} records for ${total} lines (${records - seen.size} duplicates)`);
    const missing = [];
    for (let v = 1; v <= total; v++) if (!seen.has(v)) missing.push(v);
    assert.deepEqual(missing.slice(0, 10), [], `${missing.length} line(s) lost`);
  } finally {
    cli?.kill();
    for (const b of brokers) await b.kill();
    brokers[0]!.cleanup();
  }
});

test('(b) a broker killed and not restarted: exit 1 after about --delivery-timeout-ms, with a summary', { timeout: 120_000 }, async (t) => {
  const broker = await startBroker();
  let cli: CliProcess | null = null;
  try {
    await createTopic(broker.bootstrap, 'dead', 1);
    const deliveryTimeoutMs = 3000;
    cli = startSluice(['produce', 'dead', '--bootstrap', broker.bootstrap, '--delivery-timeout-ms', String(deliveryTimeoutMs), '--progress-interval-ms', '500']);
    await cli.write(lines(1, 200));
    const admin = new Admin({ bootstrap: broker.bootstrap, requestTimeoutMs: 5000 });
    try {
      await waitFor('the first 200 lines delivered', async () => (await admin.listOffsets('dead', 0, 'latest')) === 200, 30_000);
    } finally {
      await admin.close();
    }
    await broker.kill();
    await cli.write(lines(201, 400));
    cli.end();
    const endedAtMs = Date.now();
    const r = await cli.exit(60_000);
    const elapsedMs = Date.now() - endedAtMs;
    t.diagnostic(`exit ${r.code} ${elapsedMs} ms after end of input (delivery timeout ${deliveryTimeoutMs} ms); stderr:\n${r.stderr}`);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /line 201: .*delivery timeout of 3000 ms/);
    assert.match(r.stderr, /200 sent, 200 failed, \d+ retries; first error: line 201: .*delivery timeout.*last error: .*127\.0\.0\.1/);
    assert.match(r.stderr, /200 sent, 200 pending, retrying: /);
    // It retried for the delivery timeout, and gave up soon after: not minutes.
    assert.ok(elapsedMs >= deliveryTimeoutMs * 0.6, `gave up after ${elapsedMs} ms, before the delivery timeout`);
    assert.ok(elapsedMs < deliveryTimeoutMs + 20_000, `gave up only after ${elapsedMs} ms`);

    // The broker dead from the start: the topic's metadata cannot be fetched; same bound.
    const startedAtMs = Date.now();
    const r2 = await sluice(['produce', 'dead', '--bootstrap', broker.bootstrap, '--delivery-timeout-ms', '2000'], 'a\nb\n', 60_000);
    const elapsed2Ms = Date.now() - startedAtMs;
    t.diagnostic(`dead from the start: exit ${r2.code} after ${elapsed2Ms} ms; stderr:\n${r2.stderr}`);
    assert.equal(r2.code, 1);
    assert.match(r2.stderr, /0 sent, 2 failed/);
    assert.match(r2.stderr, /delivery timeout of 2000 ms .*ECONNREFUSED/);
    assert.ok(elapsed2Ms < 2000 + 20_000, `gave up only after ${elapsed2Ms} ms`);
  } finally {
    cli?.kill();
    await broker.kill();
    broker.cleanup();
  }
});

test('(c) a dead broker and a long input: once a message runs out of delivery time, the CLI stops reading and exits 1', { timeout: 120_000 }, async (t) => {
  const broker = await startBroker();
  await broker.kill();
  try {
    const total = 100_000;
    const startedAtMs = Date.now();
    const r = await sluice(['produce', 'gone', '--bootstrap', broker.bootstrap, '--delivery-timeout-ms', '2000', '--progress-interval-ms', '0'], lines(1, total), 90_000);
    const elapsedMs = Date.now() - startedAtMs;
    t.diagnostic(`exit ${r.code} after ${elapsedMs} ms; stderr tail:\n${r.stderr.split('\n').slice(-3).join('\n')}`);
    assert.equal(r.code, 1);
    const m = /stopped reading input at line (\d+), the rest is not sent/.exec(r.stderr);
    assert.ok(m, 'it says it stopped reading');
    assert.ok(Number(m[1]) < total, `it stopped before the end of the input (line ${m[1]} of ${total})`);
    assert.match(r.stderr, new RegExp(`0 sent, \\d+ failed, \\d+ retries; first error: .*delivery timeout.*; input from line ${m[1]} on not read`));
  } finally {
    broker.cleanup();
  }
});
