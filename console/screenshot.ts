/**
 * Takes the README's screenshot of the web console (docs/console.png): starts a broker
 * process with the console on a free port and a fresh data dir, creates a topic, a few
 * messages and a consumer group with a live member, opens the message browser in headless
 * chromium, saves the PNG, and stops everything. Not part of the tests.
 *
 *   node --import tsx console/screenshot.ts [OUT.png] [PAGE_PATH]
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { Admin } from '../client/admin.ts';
import { Connection } from '../client/connection.ts';
import { Producer } from '../client/producer.ts';
import { ApiKey } from '../protocol/api-keys.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const out = process.argv[2] ?? join(root, 'docs/console.png');
const path = process.argv[3] ?? '/messages?topic=orders&partition=0';
const START_TIMEOUT_MS = 30_000;

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const { port } = s.address() as net.AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

const dataDir = mkdtempSync(join(tmpdir(), 'sluice-screenshot-'));
const profile = mkdtempSync(join(tmpdir(), 'sluice-screenshot-chromium-'));
const consolePort = await freePort();
const proc = spawn(process.execPath, [join(root, 'bin/sluice.mjs'), 'broker', '--data-dir', dataDir, '--port', '0', '--console-port', String(consolePort)], { stdio: ['ignore', 'pipe', 'inherit'] });
try {
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the broker did not start')), START_TIMEOUT_MS);
    let text = '';
    proc.stdout!.on('data', (d) => {
      text += d;
      const m = /listening on [^\s]+:(\d+)/.exec(text);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    proc.once('exit', (code) => reject(new Error(`the broker exited with ${code}`)));
  });
  const bootstrap = `127.0.0.1:${port}`;
  const admin = new Admin({ bootstrap });
  await admin.createTopics([{ topic: 'orders', partitions: 3 }, { topic: 'payments', partitions: 2 }]);
  const producer = new Producer({ bootstrap, lingerMs: 0 });
  const t0 = Date.now() - 5 * 60_000;
  for (let i = 0; i < 6; i++) {
    const order = { id: 1000 + i, customer: ['ada', 'grace', 'linus'][i % 3], items: [{ sku: `sku-${i}`, qty: 1 + (i % 2) }], total: 12.5 * (i + 1) };
    await producer.send({ topic: 'orders', partition: 0, key: `order-${1000 + i}`, value: JSON.stringify(order), headers: [{ key: 'source', value: Buffer.from('web') }], timestamp: t0 + i * 30_000 });
  }
  await producer.send({ topic: 'orders', partition: 0, key: 'note', value: 'plain text <b>is shown as text</b>', timestamp: t0 + 200_000 });
  await producer.close();
  await admin.commitOffsets('billing', [{ topic: 'orders', partition: 0, offset: 4 }]);
  const member = await Connection.connect('127.0.0.1', port, { clientId: 'billing-worker' });
  await member.send(ApiKey.CONSUMER_GROUP_HEARTBEAT, { groupId: 'billing', memberId: '', memberEpoch: 0, rebalanceTimeoutMs: 60_000, sessionTimeoutMs: 60_000, subscribedTopicNames: ['orders'], subscribedTopicRegex: null, assignor: null, ownedPartitions: [] });
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 800 },
  });
  try {
    const page = await context.newPage();
    await page.goto(`http://127.0.0.1:${consolePort}${path}`);
    await page.screenshot({ path: out, fullPage: false });
    console.log(`wrote ${out}`);
  } finally {
    await context.close();
    member.close();
    await admin.close();
  }
} finally {
  proc.kill('SIGTERM');
  await new Promise((r) => proc.once('exit', r));
  rmSync(dataDir, { recursive: true, force: true });
  rmSync(profile, { recursive: true, force: true });
}
