/**
 * Standalone diagnostic (not part of `sluice bench`): how much metadata writes slow down
 * other clients. Starts a real broker process, creates a topic with many partitions, then
 * measures Metadata latency for a small topic, first with no other load, then while another
 * client loops metadata changes:
 *   --load noop-reassign   AlterPartitionReassignments to each partition's current replicas
 *   --load create-delete   create and delete a 1-partition topic
 *
 *   node --import tsx bench/metadata-latency.ts [--partitions 4000] [--seconds 10]
 *        [--load noop-reassign] [--sluice bin/sluice.mjs]
 *
 * --sluice runs another checkout's broker (e.g. the code before a change) for a comparison.
 * Prints one JSON line per phase: Metadata p50/p99/max in ms, and load iterations per second.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ApiKey } from '../protocol/api-keys.ts';
import { Connection } from '../protocol/connection.ts';

const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i]!.replace(/^--/, ''), process.argv[i + 1]!);
const partitions = Number(args.get('partitions') ?? 4000);
const seconds = Number(args.get('seconds') ?? 10);
const load = args.get('load') ?? 'noop-reassign';
const sluice = resolve(args.get('sluice') ?? fileURLToPath(new URL('../bin/sluice.mjs', import.meta.url)));

function percentile(sorted: number[], p: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]! : NaN;
}

async function measure(c: Connection, untilMs: number): Promise<{ n: number; p50Ms: number; p99Ms: number; maxMs: number }> {
  const samples: number[] = [];
  while (Date.now() < untilMs) {
    const t0 = process.hrtime.bigint();
    await c.send(ApiKey.METADATA, { topics: ['probe'] });
    samples.push(Number(process.hrtime.bigint() - t0) / 1e6);
    await new Promise((r) => setTimeout(r, 5));
  }
  samples.sort((a, b) => a - b);
  const round = (x: number) => Math.round(x * 100) / 100;
  return { n: samples.length, p50Ms: round(percentile(samples, 50)), p99Ms: round(percentile(samples, 99)), maxMs: round(samples[samples.length - 1] ?? NaN) };
}

async function main(): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'sluice-md-latency-'));
  const broker = spawn(process.execPath, [sluice, 'broker', '--data-dir', dataDir, '--host', '127.0.0.1', '--port', '0'], { stdio: ['ignore', 'pipe', 'ignore'] });
  const kill = () => broker.kill('SIGKILL');
  process.on('exit', kill);
  try {
    const port = await new Promise<number>((resolvePort, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error('broker did not start in 60 s')), 60_000);
      broker.stdout!.on('data', (d) => {
        out += d;
        const m = /listening on [^\s]+:(\d+)/.exec(out);
        if (m) {
          clearTimeout(timer);
          resolvePort(Number(m[1]));
        }
      });
      broker.once('exit', (code) => reject(new Error(`broker exited with ${code}`)));
    });
    const admin = await Connection.connect('127.0.0.1', port, { requestTimeoutMs: 600_000 });
    const created = Date.now();
    for (const [topic, count] of [['big', partitions], ['probe', 1]] as const) {
      const r = await admin.send<any>(ApiKey.CREATE_TOPICS, { topics: [{ topic, partitions: count, replicationFactor: 1, configs: {} }], validateOnly: false });
      if (r.control.topics[0].errorCode !== 0) throw new Error(JSON.stringify(r.control));
    }
    console.log(JSON.stringify({ phase: 'setup', partitions, createMs: Date.now() - created, sluice }));
    const probe = await Connection.connect('127.0.0.1', port);
    console.log(JSON.stringify({ phase: 'idle', ...(await measure(probe, Date.now() + seconds * 1000)) }));

    let stop = false;
    let iterations = 0;
    const loader = (async () => {
      for (let i = 0; !stop; i++) {
        const partition = i % partitions;
        if (load === 'noop-reassign') {
          await admin.send(ApiKey.ALTER_PARTITION_REASSIGNMENTS, { partitions: [{ topic: 'big', partition, replicas: [0], throttleBytesPerSec: 0 }] });
        } else {
          await admin.send(ApiKey.CREATE_TOPICS, { topics: [{ topic: 'churn', partitions: 1, replicationFactor: 1, configs: {} }], validateOnly: false });
          await admin.send(ApiKey.DELETE_TOPICS, { topics: ['churn'] });
        }
        iterations++;
      }
    })();
    const started = Date.now();
    const loaded = await measure(probe, started + seconds * 1000);
    stop = true;
    await loader;
    console.log(JSON.stringify({ phase: `under ${load}`, ...loaded, loadPerSec: Math.round((iterations / (Date.now() - started)) * 1000) }));
    probe.close();
    admin.close();
  } finally {
    kill();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
