// The same sources on Bun and Deno: a broker started by the runtime, and a producer and a
// consumer run by the same runtime, over real TCP on 127.0.0.1.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot, startBroker } from '../helpers/broker-process.ts';

const bin = (name: string) => join(repoRoot, 'node_modules', '.bin', name);
const runtimes: Record<string, string[]> = {
  bun: [bin('bun')],
  deno: [bin('deno'), 'run', '-A'],
};

for (const [name, cmd] of Object.entries(runtimes)) {
  test(`broker, producer and consumer run under ${name}`, { timeout: 120_000 }, async () => {
    const version = spawnSync(cmd[0]!, ['--version'], { encoding: 'utf8' });
    assert.equal(version.status, 0, `${name} is not installed: ${version.stderr}`);
    const broker = await startBroker({ runtime: [...cmd, join(repoRoot, 'bin/cli.ts')] });
    try {
      const r = spawnSync(cmd[0]!, [...cmd.slice(1), join(repoRoot, 'test/runtimes/smoke-client.ts'), broker.bootstrap, `smoke-${name}`, '2000'], {
        cwd: repoRoot,
        encoding: 'utf8',
        timeout: 90_000,
      });
      assert.equal(r.status, 0, `client under ${name} failed:\n${r.stdout}\n${r.stderr}\nbroker log:\n${broker.log()}`);
      assert.match(r.stdout, /smoke ok 2000/);
    } finally {
      assert.equal(await broker.stop(), 0, `broker under ${name} did not stop cleanly:\n${broker.log()}`);
      broker.cleanup();
    }
  });
}
