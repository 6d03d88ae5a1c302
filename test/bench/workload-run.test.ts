/**
 * bench workload for real: a broker process, one producer and one consumer worker process,
 * a 2-second test. The JSON has sane rates and latencies and every acknowledged message
 * arrived; bench plot draws it. Then the same file against Redis Streams and NATS JetStream
 * when their servers are installed (skipped with a message where not), and the PNG output when
 * Chromium is.
 */
import { strict as assert } from 'node:assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { findChromium } from '../../bench/workload/png.ts';
import { RESULT_FORMAT, type WorkloadResult } from '../../bench/workload/result.ts';
import { repoRoot, startBroker, tempDir } from '../helpers/broker-process.ts';
import { freePort } from '../helpers/metrics-scrape.ts';

const RUN_MS_MAX = 90_000;
const RATE = 1000;

function sluice(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [join(repoRoot, 'bin/sluice.mjs'), ...args], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.once('error', reject);
    const timer = setTimeout(() => p.kill('SIGKILL'), RUN_MS_MAX);
    p.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** A temporary directory removed when the test ends. */
function scratch(t: { after(fn: () => unknown): void }, prefix: string): string {
  const dir = tempDir(prefix);
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function workloadFile(dir: string, extra = ''): string {
  const f = join(dir, 'w.yaml');
  writeFileSync(f, `name: run-test\npartitionsPerTopic: 2\nmessageSize: 100\nproducersPerTopic: 1\nconsumerPerSubscription: 1\nproducerRate: ${RATE}\nwarmupSeconds: 1\ntestDurationSeconds: 2\n${extra}`);
  return f;
}

/** Sane for a paced 2 s run on a loaded 2-core machine: no thresholds on speed, only on sense. */
function assertSane(r: WorkloadResult, driver: string): void {
  const where = `${driver}: ${JSON.stringify({ ...r, snapshots: r.snapshots.length })}`;
  assert.equal(r.driver, driver);
  assert.equal(r.complete, true, where);
  assert.ok(r.acked > 0 && r.acked === r.sent, where);
  assert.equal(r.expected, r.acked);
  assert.equal(r.received, r.expected, where);
  // Paced at RATE: what was acknowledged in the test phase cannot be far above it, and something arrived.
  assert.ok(r.publishRate > 0 && r.publishRate <= RATE * 1.5, where);
  assert.ok(r.consumeRate > 0 && r.consumeRate <= RATE * 2, where);
  assert.ok(r.testSeconds >= 1.9 && r.testSeconds < 10, where);
  for (const l of [r.publishLatencyMs, r.endToEndLatencyMs]) {
    assert.ok(l.count > 0 && l.p50 > 0 && l.p50 <= l.p99 && l.p99 <= l.p999 && l.p999 <= l.max && l.max < 30_000, where);
  }
  // Every message of the test phase and the drain has one end-to-end latency (exact merge, no loss).
  const testAndDrain = r.snapshots.filter((s) => s.phase === 'test' || s.phase === 'drain');
  assert.ok(testAndDrain.length >= 2, where);
  assert.deepEqual([...new Set(r.snapshots.map((s) => s.phase))], ['warmup', 'test', 'drain']);
  assert.ok(r.endToEndLatencyMs.count <= r.received);
}

test('bench workload on a broker process: separate producer and consumer processes, every message arrives, sane JSON; bench plot draws it', async (t) => {
  const b = await startBroker();
  t.after(async () => {
    await b.stop();
    b.cleanup();
  });
  const dir = scratch(t, 'sluice-workload-test-');
  const out = join(dir, 'r.json');
  const r = await sluice(['bench', 'workload', workloadFile(dir), '--bootstrap', b.bootstrap, '--json', '--out', out]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /1 producer process\(es\) \(1 producers\), 1 consumer process\(es\) \(1 consumers\): running/);
  assert.match(r.stderr, /\[workload\] \d+\.\d s test: pub /);
  const res = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as WorkloadResult;
  assertSane(res, 'sluice');
  assert.deepEqual(JSON.parse(readFileSync(out, 'utf8')), res);

  const svg = join(dir, 'r.svg');
  const p = await sluice(['bench', 'plot', out, out, '--out', svg]);
  assert.equal(p.code, 0, p.stderr);
  assert.match(readFileSync(svg, 'utf8'), /<g data-series="Publish rate">/);
  const one = await sluice(['bench', 'plot', out, '--out', svg]);
  assert.equal(one.code, 0, one.stderr);
  assert.match(readFileSync(svg, 'utf8'), /data-series="e2e p99" d="M/);

  const bad = await sluice(['bench', 'workload', workloadFile(dir, 'partitionPerTopic: 3\n'), '--bootstrap', b.bootstrap]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /w\.yaml: unknown field "partitionPerTopic"/);
});

async function startServer(t: { after(fn: () => unknown): void }, cmd: string, args: (port: number, dir: string) => string[], readyLine: RegExp): Promise<number> {
  const port = await freePort();
  const dir = scratch(t, 'sluice-peer-');
  const proc: ChildProcess = spawn(cmd, args(port, dir), { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGKILL');
      await exited;
    }
  });
  let log = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${cmd} did not start:\n${log}`)), 20_000);
    const on = (d: Buffer): void => {
      log += d;
      if (readyLine.test(log)) {
        clearTimeout(timer);
        resolve();
      }
    };
    proc.stdout!.on('data', on);
    proc.stderr!.on('data', on);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${cmd} exited ${code}:\n${log}`));
    });
  });
  return port;
}

const REDIS = '/usr/bin/redis-server';
test('bench workload --driver redis against a real redis-server (AOF everysec)', { skip: existsSync(REDIS) ? false : `${REDIS} is not installed (apt-get install redis-server)` }, async (t) => {
  const port = await startServer(t, REDIS, (p, dir) => ['--port', String(p), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'yes', '--appendfsync', 'everysec', '--dir', dir], /Ready to accept connections/);
  const dir = scratch(t, 'sluice-workload-test-');
  const r = await sluice(['bench', 'workload', workloadFile(dir), '--driver', 'redis', '--peer', `127.0.0.1:${port}`, '--json']);
  assert.equal(r.code, 0, r.stderr);
  assertSane(JSON.parse(r.stdout.trim().split('\n').at(-1)!) as WorkloadResult, 'redis');
});

const NATS = ['/usr/sbin/nats-server', '/usr/bin/nats-server'].find((p) => existsSync(p));
test('bench workload --driver nats against a real nats-server with JetStream', { skip: NATS ? false : 'nats-server is not installed (apt-get install nats-server)' }, async (t) => {
  const port = await startServer(t, NATS!, (p, dir) => ['-js', '-a', '127.0.0.1', '-p', String(p), '-sd', dir], /Server is ready/);
  const dir = scratch(t, 'sluice-workload-test-');
  const r = await sluice(['bench', 'workload', workloadFile(dir), '--driver', 'nats', '--peer', `127.0.0.1:${port}`, '--json']);
  assert.equal(r.code, 0, r.stderr);
  assertSane(JSON.parse(r.stdout.trim().split('\n').at(-1)!) as WorkloadResult, 'nats');
});

test('bench plot --out FILE.png renders the SVG with the system Chromium', { skip: findChromium() ? false : 'no Chromium installed (apt-get install chromium): PNG output not tested' }, async (t) => {
  const dir = scratch(t, 'sluice-plot-test-');
  const result = join(dir, 'r.json');
  const snapshots = [1, 2, 3].map((s) => ({ t: s, phase: 'test', publishRate: 100 * s, consumeRate: 90 * s, backlog: s, publishP50Ms: 1, publishP99Ms: 2, e2eP50Ms: 1, e2eP99Ms: 3, e2eP999Ms: 4 }));
  const lat = { count: 3, p50: 1, p75: 1, p95: 2, p99: 3, p999: 4, max: 4, mean: 1 };
  const w = { name: 'png', topics: 1, partitionsPerTopic: 1, messageSize: 100, producerRate: 0 };
  writeFileSync(result, JSON.stringify({ format: RESULT_FORMAT, workload: w, driver: 'sluice', label: 'png (sluice)', startedAt: '', topics: [], testSeconds: 3, publishRate: 200, publishMBps: 0, consumeRate: 180, consumeMBps: 0, backlog: 0, sent: 1, acked: 1, expected: 1, received: 1, complete: true, publishLatencyMs: lat, endToEndLatencyMs: lat, snapshots }));
  const png = join(dir, 'r.png');
  const p = await sluice(['bench', 'plot', result, '--out', png]);
  assert.equal(p.code, 0, p.stderr);
  const bytes = readFileSync(png);
  assert.deepEqual([...bytes.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  // IHDR: the picture has the SVG's width (chromium may scale the height by its window chrome).
  assert.equal(bytes.readUInt32BE(16), 900);
  assert.ok(bytes.length > 10_000, `a ${bytes.length}-byte PNG is too small to hold the charts`);
});

test('bench workload names the peer it cannot reach and exits 1', async (t) => {
  const dir = scratch(t, 'sluice-workload-test-');
  const port = await freePort();
  const redis = await sluice(['bench', 'workload', workloadFile(dir), '--driver', 'redis', '--peer', `127.0.0.1:${port}`]);
  assert.equal(redis.code, 1);
  assert.match(redis.stderr, new RegExp(`sluice bench: redis at 127\\.0\\.0\\.1:${port}: .*ECONNREFUSED`));
  const nats = await sluice(['bench', 'workload', workloadFile(dir), '--driver', 'nats', '--peer', `127.0.0.1:${port}`]);
  assert.equal(nats.code, 1);
  assert.match(nats.stderr, new RegExp(`sluice bench: nats at 127\\.0\\.0\\.1:${port}: CONNECTION_REFUSED`));
  const usage = await sluice(['bench', 'workload', workloadFile(dir), '--driver', 'redis']);
  assert.equal(usage.code, 1);
  assert.match(usage.stderr, /--driver redis needs --peer HOST:PORT/);
  const groups = await sluice(['bench', 'workload', workloadFile(dir, 'consumerGroups: true\n'), '--driver', 'nats', '--peer', `127.0.0.1:${port}`]);
  assert.equal(groups.code, 1);
  assert.match(groups.stderr, /consumerGroups is for the sluice driver/);
});

test('bench workload with consumer groups: two subscriptions of two members each, every message reaches each subscription', async (t) => {
  const b = await startBroker();
  t.after(async () => {
    await b.stop();
    b.cleanup();
  });
  const dir = scratch(t, 'sluice-workload-test-');
  const f = join(dir, 'g.yaml');
  writeFileSync(f, 'name: group-test\npartitionsPerTopic: 2\nmessageSize: 64\nsubscriptionsPerTopic: 2\nconsumerPerSubscription: 2\nconsumerGroups: true\nproducerRate: 500\nkeyDistributor: KEY_ROUND_ROBIN\ntestDurationSeconds: 2\n');
  const r = await sluice(['bench', 'workload', f, '--bootstrap', b.bootstrap, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const res = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as WorkloadResult;
  assert.ok(res.acked > 0 && res.complete, JSON.stringify({ ...res, snapshots: 0 }));
  assert.equal(res.expected, 2 * res.acked);
  assert.equal(res.received, res.expected);
});
