// The package used from another project, as a user would: `npm pack` (which generates the type
// declarations, see package.json "prepack"), install the tarball into a fresh project (offline:
// the project's node_modules starts as a hard-linked copy of this repository's, so npm finds
// every dependency already installed), then `import { Producer, Consumer, Admin } from
// 'sluice'` in plain Node against a real broker, and type-check a TypeScript file that
// imports it under strict NodeNext settings, without allowImportingTsExtensions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot, startBroker, tempDir } from '../helpers/broker-process.ts';

test("index.mjs exports exactly client/index.ts's values", async () => {
  const fromSource = await import('../../client/index.ts');
  const fromEntry = (await import(join(repoRoot, 'index.mjs'))) as Record<string, unknown>;
  assert.deepEqual(Object.keys(fromEntry).sort(), Object.keys(fromSource).sort());
  assert.equal(typeof fromEntry.Producer, 'function');
});

test('npm pack, install the tarball into another project, import { Producer } from "sluice" and type-check against it', async (t) => {
  const root = tempDir('sluice-pack-');
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const npm = (args: string[], cwd: string): string => execFileSync('npm', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 180_000 });
  npm(['pack', '--pack-destination', root, '--silent'], repoRoot);
  const tgz = readdirSync(root).find((f) => f.endsWith('.tgz'));
  assert.ok(tgz, 'npm pack made a tarball');
  const app = join(root, 'app');
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', type: 'module', private: true }));
  execFileSync('cp', ['-al', join(repoRoot, 'node_modules'), join(app, 'node_modules')]);
  npm(['install', '--offline', '--no-audit', '--no-fund', '--ignore-scripts', join(root, tgz)], app);

  const b = await startBroker();
  t.after(async () => {
    await b.stop();
    b.cleanup();
  });
  writeFileSync(
    join(app, 'main.mjs'),
    `import { Admin, Producer, Consumer } from 'sluice';
const bootstrap = process.argv[2];
const admin = new Admin({ bootstrap });
await admin.createTopics([{ topic: 'from-package', partitions: 1 }]);
await admin.close();
const producer = new Producer({ bootstrap });
const sent = await producer.send({ topic: 'from-package', key: 'k', value: 'hello from another project' });
await producer.close();
const consumer = new Consumer({ bootstrap });
await consumer.assign([{ topic: 'from-package', partition: 0, offset: 'earliest' }]);
let got = [];
for (let i = 0; i < 40 && got.length === 0; i++) got = await consumer.poll(250);
await consumer.close();
console.log(JSON.stringify({ offset: sent.offset, value: got[0]?.value?.toString() }));
`,
  );
  const run = spawnSync(process.execPath, ['main.mjs', b.bootstrap], { cwd: app, encoding: 'utf8', timeout: 60_000 });
  assert.equal(run.status, 0, run.stderr);
  assert.deepEqual(JSON.parse(run.stdout.trim()), { offset: 0, value: 'hello from another project' });

  // Types: a strict NodeNext project that knows nothing of .ts imports.
  writeFileSync(
    join(app, 'tsconfig.json'),
    JSON.stringify({ compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, types: ['node'], lib: ['ES2022'] }, files: ['typed.ts'] }),
  );
  writeFileSync(
    join(app, 'typed.ts'),
    `import { Producer, type RecordMetadata } from 'sluice';
const p = new Producer({ bootstrap: '127.0.0.1:9292' });
const m: Promise<RecordMetadata> = p.send({ topic: 't', value: 'v' });
void m;
// @ts-expect-error: value is required
void p.send({ topic: 't' });
`,
  );
  const tsc = spawnSync(process.execPath, [join(repoRoot, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], { cwd: app, encoding: 'utf8', timeout: 120_000 });
  assert.equal(tsc.status, 0, tsc.stdout + tsc.stderr);
});
