// README's JavaScript snippets run as pasted: `node app.mjs` with `import … from 'sluice'`
// (the package importing itself by name, as a project that installed it would), against a real
// broker. Only the address is changed, from the quickstart's 127.0.0.1:9292 to the test
// broker's. A snippet that ends (most) must exit 0; one that consumes forever (a group
// member loop) must still be running, without an error, after a few seconds. Each runs twice:
// pasting it again must not fail either (topics are created with ifNotExists).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot, startBroker } from '../helpers/broker-process.ts';
import { sluice } from '../helpers/cli.ts';

const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
const snippets = [...readme.matchAll(/^```js\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);
/** A snippet still running after this long is a consumer loop, if it is one by its text. */
const RUNNING_AFTER_MS = 6000;

function runSnippet(file: string): Promise<{ code: number | null; stderr: string; stillRunning: boolean }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [file], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    p.stderr.on('data', (d) => (stderr += d));
    p.stdout.resume();
    const timer = setTimeout(() => {
      p.kill('SIGKILL');
      resolve({ code: null, stderr, stillRunning: true });
    }, RUNNING_AFTER_MS);
    p.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr, stillRunning: false });
    });
  });
}

test('README has JavaScript snippets that import from "sluice", none from the sources', () => {
  assert.ok(snippets.length >= 5, `found ${snippets.length}`);
  for (const s of snippets) assert.match(s, /from 'sluice';/);
  assert.doesNotMatch(readme, /client\/index\.ts'/);
  assert.doesNotMatch(readme, /^```ts$/m, 'TypeScript snippets would need tsx to run');
});

test('README snippets run as pasted (twice) against a broker', async (t) => {
  const b = await startBroker();
  const dir = join(repoRoot, 'tmp', `readme-snippets-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  t.after(async () => {
    rmSync(dir, { recursive: true, force: true });
    await b.stop();
    b.cleanup();
  });
  // The delayed-delivery snippet follows a shell block that creates its topic.
  assert.equal((await sluice(['topic', 'create', 'reminders', '--partitions', '3', '--bootstrap', b.bootstrap])).code, 0);
  for (const [i, text] of snippets.entries()) {
    const file = join(dir, `snippet-${i}.mjs`);
    writeFileSync(file, text.replaceAll('127.0.0.1:9292', b.bootstrap));
    const loops = /for \(;;\)|for await \(const m of consumer\) await/.test(text);
    for (const round of [1, 2]) {
      const r = await runSnippet(file);
      if (loops) assert.ok(r.stillRunning, `snippet ${i} (round ${round}) is a consumer loop and ended: ${r.code}\n${r.stderr}\n${text}`);
      else assert.equal(r.code, 0, `snippet ${i} (round ${round}):\n${r.stderr}\n${text}`);
      assert.doesNotMatch(r.stderr, /Error/, `snippet ${i} (round ${round})`);
    }
  }
});
