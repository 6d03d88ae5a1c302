/**
 * The console's HTTP side against a real broker process, without a browser: off by default;
 * a taken --console-port stops the start with a message before any file is written; bad
 * settings are refused; garbage, wrong methods, foreign forms, oversized forms and foreign Host
 * names (DNS rebinding) get clear HTTP errors and the broker and its console go on serving.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { Admin } from '../../client/admin.ts';
import { repoRoot, startBroker, tempDir } from '../helpers/broker-process.ts';
import { freePort } from '../helpers/metrics-scrape.ts';

const sluice = (args: string[], timeout = 30_000) => spawnSync(process.execPath, [join(repoRoot, 'bin/sluice.mjs'), ...args], { cwd: repoRoot, encoding: 'utf8', timeout });

test('the console is off by default; a taken or bad console setting stops the start with one clear message', async () => {
  const plain = await startBroker();
  try {
    assert.doesNotMatch(plain.log(), /web console listening/);
  } finally {
    await plain.stop();
    plain.cleanup();
  }
  const taken = net.createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', () => resolve()));
  try {
    const port = (taken.address() as net.AddressInfo).port;
    const dataDir = tempDir();
    const busy = sluice(['broker', '--data-dir', dataDir, '--port', '0', '--console-port', String(port)]);
    assert.equal(busy.status, 1, busy.stderr);
    assert.match(busy.stderr, new RegExp(`web console \\(--console-host 127\\.0\\.0\\.1 --console-port ${port}\\): listen EADDRINUSE`));
    assert.deepEqual(readdirSync(dataDir).filter((f) => !f.startsWith('.')), [], 'nothing written but the lock');
    rmSync(dataDir, { recursive: true, force: true });
  } finally {
    taken.close();
  }
  const r = sluice(['broker', '--console-allow-writes', 'yes']);
  assert.equal(r.status, 2);
  assert.equal(r.stderr, 'sluice broker: --console-allow-writes must be one of false, true, got "yes"\n');
  const help = sluice(['broker', '--help']);
  assert.match(help.stdout, /--console-port/);
  assert.match(help.stdout, /SLUICE_CONSOLE_ALLOW_WRITES/);
});

test('bad requests get clear HTTP errors and the console and the broker go on serving', async (t) => {
  const port = await freePort();
  const broker = await startBroker({ args: ['--console-port', String(port), '--console-allow-writes', 'true'] });
  const admin = new Admin({ bootstrap: broker.bootstrap });
  t.after(async () => {
    await admin.close();
    await broker.stop();
    broker.cleanup();
  });
  await admin.createTopics([{ topic: 'orders', partitions: 1 }]);
  const url = `http://127.0.0.1:${port}`;
  const req = (path: string, init: RequestInit = {}) => fetch(url + path, { ...init, signal: AbortSignal.timeout(10_000) });

  // Garbage instead of HTTP: node answers 400 and closes that connection.
  const answer = await new Promise<string>((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(Buffer.from([0x00, 0xff, 0x13, 0x37, 0x0d, 0x0a, 0x0d, 0x0a])));
    let got = '';
    s.on('data', (d) => (got += d));
    s.on('close', () => resolve(got));
    s.on('error', reject);
    s.setTimeout(10_000, () => s.destroy(new Error('no answer to garbage')));
  });
  assert.match(answer, /^HTTP\/1\.1 400/);

  assert.equal((await req('/topics', { method: 'POST' })).status, 405);
  assert.equal((await req('/topic/delete')).status, 405);
  const head = await req('/brokers', { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(await head.text(), '');
  const form = { 'content-type': 'application/x-www-form-urlencoded' };
  // A form posted from another site: refused by its Origin before the token is even looked at.
  assert.equal((await req('/topic/delete', { method: 'POST', headers: { ...form, origin: 'not a url' }, body: 'name=orders' })).status, 403);
  const foreign = await req('/topic/delete', { method: 'POST', headers: { ...form, origin: 'http://evil.example' }, body: 'name=orders' });
  assert.equal(foreign.status, 403);
  assert.match(await foreign.text(), /cross-origin form refused/);
  const big = await req('/topic/delete', { method: 'POST', headers: form, body: 'name=' + 'x'.repeat(20_000) });
  assert.equal(big.status, 400);
  const json = await req('/topic/delete', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"name":"orders"}' });
  assert.equal(json.status, 400);
  assert.equal((await req('/delayed/cancel', { method: 'POST', headers: form, body: 'id=nonsense&csrf=x' })).status, 403, 'the token is checked first');
  assert.deepEqual(await admin.listTopics(), ['orders']);

  // DNS rebinding: a page of another site whose name now points at 127.0.0.1 sends its own
  // name in Host; a console on loopback answers only to loopback names.
  const status = (host: string) =>
    new Promise<number>((resolve, reject) => {
      const r = http.get({ host: '127.0.0.1', port, path: '/brokers', headers: { host }, timeout: 10_000 }, (res) => {
        res.resume();
        resolve(res.statusCode!);
      });
      r.on('error', reject);
      r.on('timeout', () => r.destroy(new Error('timeout')));
    });
  assert.equal(await status(`evil.example:${port}`), 421);
  assert.equal(await status(`localhost:${port}`), 200);
  assert.equal(await status(`[::1]:${port}`), 200);
  assert.equal(await status('localhost:9000'), 200, 'any port: a tunnel may forward another one');
  assert.equal(await status('127.0.0.1.evil.example'), 421);

  // Both still serve.
  const page = await req('/topics');
  assert.equal(page.status, 200);
  assert.match(await page.text(), /<a href="\/topic\?name=orders">orders<\/a>/);
  assert.equal(page.headers.get('content-security-policy')?.includes("script-src") ?? true, false, 'no script source is allowed at all');
  assert.ok(broker.proc.exitCode === null);
});
