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
