/**
 * The web console in a real headless browser (chromium via playwright-core) against a real
 * broker process started with --console-port: every page loads; the topic, group and message
 * just created show; an XSS attempt in a key, value or header stays text; read-only by
 * default (no buttons, POSTs refused); with --console-allow-writes true a DLQ message is
 * replayed and a delayed message cancelled by clicking.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Admin } from '../../client/admin.ts';
import { Connection } from '../../client/connection.ts';
import { Consumer } from '../../client/consumer.ts';
import { Producer } from '../../client/producer.ts';
import { ApiKey } from '../../protocol/api-keys.ts';
import type { ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse } from '../../protocol/apis/consumer-group-heartbeat.ts';
import { ErrorCode } from '../../protocol/errors.ts';
import { startBroker, type BrokerProcess } from '../helpers/broker-process.ts';
import { browserSkipReason, launchBrowser } from '../helpers/browser.ts';
import { freePort } from '../helpers/metrics-scrape.ts';

const skip = browserSkipReason();
if (skip) console.log(`console browser tests ${skip}`);

const XSS_VALUE = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>';
const XSS_KEY = '"><svg onload="window.__xss=3">';
const XSS_HEADER = "'><iframe src=javascript:window.__xss=4>";

let broker: BrokerProcess;
let consoleUrl: string;
let admin: Admin;
let browser: Awaited<ReturnType<typeof launchBrowser>>;
let member: Connection;

before(async () => {
  if (skip) return;
  const port = await freePort();
  broker = await startBroker({ args: ['--console-port', String(port)] });
  consoleUrl = `http://127.0.0.1:${port}`;
  admin = new Admin({ bootstrap: broker.bootstrap });
  await admin.createTopics([{ topic: 'orders', partitions: 2 }]);
  const producer = new Producer({ bootstrap: broker.bootstrap, lingerMs: 0 });
  try {
    await producer.send({ topic: 'orders', partition: 0, key: 'order-1', value: JSON.stringify({ id: 42, items: ['tea', 'milk'], total: 7.5 }) });
    await producer.send({ topic: 'orders', partition: 0, key: XSS_KEY, value: XSS_VALUE, headers: [{ key: 'origin', value: Buffer.from(XSS_HEADER) }] });
  } finally {
    await producer.close();
  }
  // Group billing: offsets committed while it was empty, then one live member.
  await admin.commitOffsets('billing', [{ topic: 'orders', partition: 0, offset: 1 }]);
  member = await Connection.connect(broker.host, broker.port, { clientId: 'console-test-member' });
  const req: ConsumerGroupHeartbeatRequest = { groupId: 'billing', memberId: '', memberEpoch: 0, rebalanceTimeoutMs: 60_000, sessionTimeoutMs: 60_000, subscribedTopicNames: ['orders'], subscribedTopicRegex: null, assignor: null, ownedPartitions: [] };
  const res = await member.send<ConsumerGroupHeartbeatResponse>(ApiKey.CONSUMER_GROUP_HEARTBEAT, req);
  assert.equal(res.control.errorCode, ErrorCode.NONE, res.control.errorMessage ?? '');
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  member?.close();
  await admin?.close();
  if (broker) {
    const code = await broker.stop();
    broker.cleanup();
    // The console (its HTTP server and its clients of the broker) stops with the broker, cleanly.
    assert.equal(code, 0, broker.log());
  }
});

async function open(path: string) {
  const page = await browser.context.newPage();
  const res = await page.goto(consoleUrl + path);
  assert.equal(res?.status(), 200, `GET ${path}: ${res?.status()} ${await page.textContent('main').catch(() => '')}`);
  return page;
}

test('brokers page: the broker, its controller role and the read-only mode', { skip: skip ?? false }, async () => {
  const page = await open('/');
  assert.equal(await page.title(), 'Brokers · Sluice console');
  const row = await page.locator('table tbody tr').first().innerText();
  assert.match(row, new RegExp(`^0\\s+127\\.0\\.0\\.1\\s+${broker.port}\\s+controller`));
  assert.equal((await page.locator('header .mode').innerText()).trim(), 'read-only');
  await page.close();
});

test('topics page lists the topic just created; its page shows partitions, leaders, ISR, sizes and configs', { skip: skip ?? false }, async () => {
  const page = await open('/topics');
  const row = page.locator('tbody tr', { hasText: 'orders' });
  assert.match(await row.innerText(), /^orders\s+2\s+1\s+0\s+0\s+2\s+\d+(\.\d)? (B|KiB)$/);
  await row.locator('a').click();
  await page.waitForURL(/\/topic\?name=orders$/);
  assert.equal(await page.locator('h1').innerText(), 'Topic orders');
  const p0 = await page.locator('table').first().locator('tbody tr').first().innerText();
  assert.match(p0, /^0\s+0\s+0\s+0\s+0\s+0\s+2\s+/, p0); // partition 0: leader 0, epoch 0, replicas 0, ISR 0, offsets 0..2
  assert.match(await page.locator('table.configs').innerText(), /retention\.ms/);
  await page.close();
});

test('message browser shows the messages just produced, JSON pretty-printed, and an XSS attempt as text', { skip: skip ?? false }, async () => {
  const page = await open('/messages?topic=orders&partition=0');
  let dialogs = 0;
  page.on('dialog', (d) => {
    dialogs++;
    void d.dismiss();
  });
  const rows = page.locator('table.messages tbody tr');
  assert.equal(await rows.count(), 2);
  assert.equal(await rows.nth(0).locator('td.key pre').innerText(), 'order-1');
  assert.equal(await rows.nth(0).locator('td.value pre.json').innerText(), JSON.stringify({ id: 42, items: ['tea', 'milk'], total: 7.5 }, null, 2));
  // The attack is shown exactly as produced, as text, and none of it ran or became markup.
  assert.equal(await rows.nth(1).locator('td.value pre').innerText(), XSS_VALUE);
  assert.equal(await rows.nth(1).locator('td.key pre').innerText(), XSS_KEY);
  assert.equal(await rows.nth(1).locator('td.headers dt').innerText(), 'origin');
  assert.equal(await rows.nth(1).locator('td.headers dd pre').innerText(), XSS_HEADER);
  assert.equal(await page.locator('main img, main script, main svg, main iframe').count(), 0);
  assert.equal(await page.evaluate(() => (globalThis as unknown as { __xss?: number }).__xss), undefined);
  assert.equal(dialogs, 0);
  // By offset: one message from offset 1.
  await page.fill('input[name=offset]', '1');
  await page.fill('input[name=limit]', '1');
  await page.click('form.browse button[type=submit]');
  await page.waitForURL(/offset=1/);
  assert.equal(await page.locator('table.messages tbody tr').count(), 1);
  assert.equal(await page.locator('table.messages tbody tr td').first().innerText(), '1');
  // By time: an hour ago is before both messages.
  await page.goto(`${consoleUrl}/messages?topic=orders&partition=0&time=-1h&limit=5`);
  assert.equal(await page.locator('table.messages tbody tr').count(), 2);
  await page.close();
});

test('groups page shows the group; its page shows the member, its assignment and the lag', { skip: skip ?? false }, async () => {
  const page = await open('/groups');
  const row = page.locator('tbody tr', { hasText: 'billing' });
  assert.match(await row.innerText(), /^billing\s+\w+\s+1$/);
  await row.locator('a').click();
  await page.waitForURL(/\/group\?id=billing$/);
  const members = page.locator('table').first();
  assert.match(await members.innerText(), /console-test-member/);
  assert.match(await members.locator('tbody tr').first().innerText(), /orders: 0, 1/);
  const lag = page.locator('table').nth(1).locator('tbody tr');
  assert.match(await lag.nth(0).innerText(), /^orders\s+0\s+1\s+2\s+1\s+/);
  assert.match(await lag.nth(1).innerText(), /^orders\s+1\s+-\s+0\s+-\s+/);
  assert.match(await page.locator('main p').first().innerText(), /total lag 1/);
  await page.close();
});

test('read-only by default: no mutating buttons, and a POST is refused with 403', { skip: skip ?? false }, async () => {
  const page = await open('/topic?name=orders');
  assert.equal(await page.locator('form[method=post]').count(), 0);
  await page.close();
  const res = await fetch(`${consoleUrl}/topic/delete`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'name=orders&csrf=x', signal: AbortSignal.timeout(10_000) });
  assert.equal(res.status, 403);
  assert.deepEqual(await admin.listTopics(), ['orders']);
});

test('every page loads; bad parameters get 400, unknown paths 404', { skip: skip ?? false }, async () => {
  for (const path of ['/brokers', '/topics', '/topics?internal=1', '/topic?name=orders', '/messages?topic=orders', '/groups', '/group?id=billing', '/dlq', '/delayed', '/delayed?topic=orders']) {
    const page = await open(path);
    await page.close();
  }
  const get = (path: string) => fetch(consoleUrl + path, { signal: AbortSignal.timeout(10_000) });
  assert.equal((await get('/messages?topic=orders&limit=1000')).status, 400);
  assert.equal((await get('/messages?topic=orders&partition=7')).status, 400);
  assert.equal((await get('/messages?topic=orders&time=yesterday')).status, 400);
  assert.equal((await get('/topic?name=nope')).status, 404);
  assert.equal((await get('/group?id=nope')).status, 404);
  assert.equal((await get('/messages?topic=nope')).status, 404);
  assert.equal((await get('/nope')).status, 404);
  const css = await get('/brokers');
  assert.match(css.headers.get('content-security-policy') ?? '', /default-src 'none'/);
});

test('with --console-allow-writes true: replay a DLQ message and cancel a delayed one by clicking', { skip: skip ?? false }, async (t) => {
  const port = await freePort();
  const rw = await startBroker({ args: ['--console-port', String(port), '--console-allow-writes', 'true'] });
  const rwAdmin = new Admin({ bootstrap: rw.bootstrap });
  t.after(async () => {
    await rwAdmin.close();
    const code = await rw.stop();
    rw.cleanup();
    assert.equal(code, 0, rw.log());
  });
  const url = `http://127.0.0.1:${port}`;
  await rwAdmin.createTopics([{ topic: 'orders', partitions: 1 }, { topic: 'billing.orders.dlq', partitions: 1 }]);
  const producer = new Producer({ bootstrap: rw.bootstrap, lingerMs: 0 });
  let delayedId: string;
  try {
    await producer.send({ topic: 'billing.orders.dlq', key: 'k1', value: 'failed order', headers: [{ key: 'sluice-original-topic', value: Buffer.from('orders') }, { key: 'sluice-failure-reason', value: Buffer.from('boom') }] });
    const d = await producer.send({ topic: 'orders', value: 'later', delayMs: 3_600_000 });
    delayedId = d.delayedId!;
  } finally {
    await producer.close();
  }
  const page = await browser.context.newPage();
  await page.goto(`${url}/dlq`);
  await page.locator('tbody a', { hasText: 'billing.orders.dlq' }).click();
  await page.locator('table.messages button', { hasText: 'Replay' }).click();
  assert.match(await page.locator('main p.ok').innerText(), /Replayed billing\.orders\.dlq message 0:0 to orders \(partition 0, offset \d+\)/);
  const consumer = new Consumer({ bootstrap: rw.bootstrap, autoOffsetReset: 'earliest' });
  try {
    await consumer.assign([{ topic: 'orders', partition: 0, offset: 0 }]);
    const deadline = Date.now() + 10_000;
    let got: string[] = [];
    while (got.length === 0 && Date.now() < deadline) got = (await consumer.poll(500)).map((m) => `${m.key}=${m.value}`);
    assert.deepEqual(got, ['k1=failed order']);
  } finally {
    await consumer.close();
  }
  await page.goto(`${url}/delayed?topic=orders`);
  assert.match(await page.locator('table').innerText(), new RegExp(delayedId!));
  await page.locator('button', { hasText: 'Cancel' }).click();
  assert.match(await page.locator('main p.ok').innerText(), /Cancelled delayed message/);
  assert.equal((await rwAdmin.listDelayed('orders')).pendingCount, 0);
  // A form without the console's CSRF token is refused even with writes on.
  const forged = await fetch(`${url}/topic/delete`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'name=orders&csrf=forged', signal: AbortSignal.timeout(10_000) });
  assert.equal(forged.status, 403);
  assert.ok((await rwAdmin.listTopics()).includes('orders'));
  await page.close();
});
