/** One small run of each bench mode: the --json line parses and has positive numbers (no thresholds). */
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { repoRoot, startBroker } from '../helpers/broker-process.ts';

function bench(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [join(repoRoot, 'bin/sluice.mjs'), 'bench', ...args], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.once('error', reject);
    const timer = setTimeout(() => p.kill('SIGKILL'), 120_000);
    p.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

test('bench produce, consume and e2e report positive JSON results', async (t) => {
  const b = await startBroker();
  t.after(async () => {
    await b.stop();
    b.cleanup();
  });
  const common = ['--bootstrap', b.bootstrap, '--messages', '20000', '--size', '100', '--json'];
  const runs: Array<[string, string[]]> = [
    ['produce', ['--topic', 'bp', '--partitions', '2', '--producers', '2']],
    // A fresh topic: consume must produce the 20000 messages first.
    ['consume', ['--topic', 'bc']],
    ['e2e', ['--topic', 'be', '--rate', '20000', '--profile', 'latency']],
  ];
  for (const [mode, extra] of runs) {
    const r = await bench([mode, ...extra, ...common]);
    assert.equal(r.code, 0, `${mode}: ${r.stderr}`);
    const last = r.stdout.trim().split('\n').at(-1)!;
    const res = JSON.parse(last) as Record<string, unknown>;
    assert.equal(res.mode, mode);
    assert.equal(res.messages, 20000);
    assert.equal(res.sizeBytes, 100);
    for (const k of ['seconds', 'msgsPerSec', 'mbPerSec']) assert.ok((res[k] as number) > 0, `${mode}.${k} = ${res[k]}`);
    if (mode === 'e2e') {
      for (const k of ['p50Ms', 'p99Ms', 'p999Ms', 'maxMs']) assert.ok((res[k] as number) > 0, `${mode}.${k} = ${res[k]}`);
      assert.ok((res.p50Ms as number) <= (res.p99Ms as number) && (res.p99Ms as number) <= (res.maxMs as number));
    }
  }
});

test('bench consume --group and bench rebalance report positive JSON results', async (t) => {
  const b = await startBroker();
  t.after(async () => {
    await b.stop();
    b.cleanup();
  });
  const positive = (res: Record<string, unknown>, keys: string[]): void => {
    for (const k of keys) assert.ok(typeof res[k] === 'number' && (res[k] as number) > 0, `${res.mode}.${k} = ${res[k]}`);
  };

  // Two members of a fresh group read 20000 messages produced first to a 4-partition topic.
  const c = await bench(['consume', '--bootstrap', b.bootstrap, '--topic', 'bg', '--partitions', '4', '--messages', '20000', '--size', '100', '--group', 'bg-g', '--consumers', '2', '--json']);
  assert.equal(c.code, 0, `consume --group: ${c.stderr}`);
  const cr = JSON.parse(c.stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
  assert.equal(cr.mode, 'consume');
  assert.equal(cr.messages, 20000);
  assert.equal(cr.group, 'bg-g');
  assert.equal(cr.consumers, 2);
  positive(cr, ['seconds', 'msgsPerSec', 'mbPerSec']);
  // joinMs is -1 when one member read everything before the others got their share (a small
  // run on a fast join); otherwise the time until the group formed.
  assert.ok(cr.joinMs === -1 || (typeof cr.joinMs === 'number' && cr.joinMs > 0), `joinMs = ${cr.joinMs}`);
  const counts = cr.memberMessages as number[];
  assert.equal(counts.length, 2);
  assert.ok(counts.every((n) => Number.isInteger(n) && n >= 0), `memberMessages = ${counts}`);
  assert.ok(counts.reduce((a, x) => a + x, 0) >= 20000, `memberMessages = ${counts}`);

  // Two members, one joins, one is killed; a short session timeout keeps the kill phase short.
  const r = await bench(['rebalance', '--bootstrap', b.bootstrap, '--topic', 'br', '--partitions', '4', '--members', '2', '--session-timeout-ms', '2000', '--rate', '1000', '--json']);
  assert.equal(r.code, 0, `rebalance: ${r.stderr}`);
  const rr = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
  assert.equal(rr.mode, 'rebalance');
  assert.equal(rr.sessionTimeoutMs, 2000);
  assert.equal(rr.members, 2);
  assert.equal(rr.partitions, 4);
  positive(rr, ['joinToStableMs', 'joinToConsumingMs', 'joinProcessStartMs', 'killToResumedMs', 'killedOwned']);
});

test('bench produce --idempotent, --no-idempotent and --transactional report positive JSON results (needs the broker side of issue 9)', async (t) => {
  const b = await startBroker();
  t.after(async () => {
    await b.stop();
    b.cleanup();
  });
  const common = ['--bootstrap', b.bootstrap, '--topic', 'bi', '--partitions', '2', '--messages', '5000', '--size', '100', '--json'];
  for (const extra of [['--no-idempotent', '--acks', 'all'], ['--idempotent'], ['--transactional', '--txn-messages', '1000']]) {
    const r = await bench(['produce', ...extra, ...common]);
    assert.equal(r.code, 0, `${extra.join(' ')}: ${r.stderr}`);
    const res = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
    assert.equal(res.messages, 5000);
    assert.ok((res.msgsPerSec as number) > 0, `${extra.join(' ')}: msgsPerSec = ${res.msgsPerSec}`);
  }
});

test('bench delayed: every scheduled message released, none early, RSS and rates reported', async (t) => {
  const b = await startBroker();
  t.after(async () => {
    await b.stop();
    b.cleanup();
  });
  const r = await bench(['delayed', '--bootstrap', b.bootstrap, '--broker-pid', String(b.proc.pid), '--messages', '5000', '--partitions', '2', '--window-ms', '3000', '--start-after-ms', '4000', '--baseline-ms', '500', '--rate', '20000', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const res = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
  assert.equal(res.mode, 'delayed');
  assert.equal(res.messages, 5000);
  assert.equal(res.released, 5000, r.stderr);
  assert.equal(res.missing, 0);
  assert.equal(res.early, 0);
  assert.equal(res.scheduleOverranWindow, false);
  for (const k of ['acceptedMsgsPerSec', 'pendingEntries', 'brokerRssMiB', 'brokerPeakRssMiB', 'normalBaselineMsgsPerSec', 'normalDuringReleasesMsgsPerSec', 'latenessMaxMs']) {
    assert.ok(typeof res[k] === 'number' && (res[k] as number) > 0, `${k} = ${res[k]}`);
  }
  assert.ok((res.pendingEntries as number) <= 5000);
  assert.ok((res.latenessP50Ms as number) <= (res.latenessP99Ms as number) && (res.latenessP99Ms as number) <= (res.latenessMaxMs as number));
  // Bad flags: a clear usage error.
  const bad = await bench(['delayed', '--messages', '10']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /needs one of --broker-pid PID .* and --data-dir DIR/);
});
