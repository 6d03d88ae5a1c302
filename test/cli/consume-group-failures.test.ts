/**
 * `sluice consume --group` reports a group it cannot reach instead of waiting forever and
 * exiting 0 with "0 messages": a coordinator that cannot be placed (a cluster with fewer live
 * brokers than the offsets topic's replication factor), and a broker that dies while the
 * member consumes. Real etcd, real broker processes.
 */
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { repoRoot, startBroker } from '../helpers/broker-process.ts';
import { sluice } from '../helpers/cli.ts';
import { startEtcd } from '../helpers/etcd-process.ts';

test('a coordinator that cannot be placed: exit 1 after --join-timeout-ms, naming COORDINATOR_NOT_AVAILABLE', async (t) => {
  const etcd = await startEtcd();
  t.after(() => etcd.stop());
  // One live broker; __consumer_offsets wants 3 replicas (the default), so it is never created.
  const b = await startBroker({ args: ['--broker-id', '1', '--metadata', `etcd://${etcd.endpoints}`] });
  t.after(async () => {
    await b.stop();
    b.cleanup();
  });
  const bs = ['--bootstrap', b.bootstrap];
  let r = await sluice(['topic', 'create', 'orders', '--replication-factor', '1', ...bs]);
  assert.equal(r.code, 0, r.stderr);
  const t0 = Date.now();
  r = await sluice(['consume', 'orders', '--group', 'g', '--join-timeout-ms', '3000', ...bs], '', 30_000);
  const tookMs = Date.now() - t0;
  assert.equal(r.code, 1, r.stderr);
  assert.ok(tookMs < 20_000, `took ${tookMs} ms`);
  assert.match(r.stderr, /^sluice consume: could not join group g within 3000 ms: COORDINATOR_NOT_AVAILABLE/);
  assert.doesNotMatch(r.stderr, /Processed a total/);
});

test('the broker dies while a group member consumes: exit 1 after --join-timeout-ms', async (t) => {
  const b = await startBroker();
  t.after(async () => {
    await b.kill();
    b.cleanup();
  });
  const bs = ['--bootstrap', b.bootstrap];
  assert.equal((await sluice(['topic', 'create', 'events', ...bs])).code, 0);
  assert.equal((await sluice(['produce', 'events', ...bs], 'a\nb\n')).code, 0);
  const proc = spawn(process.execPath, [join(repoRoot, 'bin/sluice.mjs'), 'consume', 'events', '--group', 'g', '--from-beginning', '--join-timeout-ms', '3000', ...bs], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => void proc.kill('SIGKILL'));
  let stdout = '';
  let stderr = '';
  proc.stdout.on('data', (d) => (stdout += d));
  proc.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  const deadline = Date.now() + 30_000;
  while (stdout !== 'a\nb\n' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  assert.equal(stdout, 'a\nb\n');
  await b.kill();
  const t0 = Date.now();
  const code = await Promise.race([exited, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 45_000))]);
  assert.equal(code, 1, stderr);
  assert.ok(Date.now() - t0 < 30_000, `exited ${Date.now() - t0} ms after the kill`);
  assert.match(stderr, /sluice consume: lost contact with the coordinator of group g for more than 3000 ms/);
});
