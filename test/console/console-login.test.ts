/**
 * The console's login on a broker with --authentication sasl, in a real headless chromium
 * against a real broker process: not signed in it is read-only (no buttons, a POSTed action
 * is 403); a wrong password is refused; signed in as alice (write ACL on `mine`, only
 * describe on `other`) the Cancel button works on `mine` and answers 403 naming the ACL on
 * `other`; after signing out it is read-only again and the old session id is dead.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Admin } from '../../client/admin.ts';
import { Producer } from '../../client/producer.ts';
import { startBroker, tempDir } from '../helpers/broker-process.ts';
import { browserSkipReason, launchBrowser } from '../helpers/browser.ts';
import { sluice } from '../helpers/cli.ts';
import { freePort } from '../helpers/metrics-scrape.ts';

const skip = browserSkipReason();
if (skip) console.log(`console login tests ${skip}`);

const ADMIN = { mechanism: 'SCRAM-SHA-256', username: 'admin', password: 'admin secret' } as const;
const PASSWORDS = { admin: ADMIN.password, console: 'console secret', alice: 'alice secret' };

test('with SASL the console offers a login: read-only until signed in, then actions run as that user under its ACLs', { skip: skip ?? false }, async (t) => {
  const dataDir = tempDir();
  for (const [name, password] of Object.entries(PASSWORDS)) {
    const r = await sluice(['user', 'create', name, '--data-dir', dataDir, '--password-stdin', '--iterations', '4096'], `${password}\n`);
    assert.equal(r.code, 0, r.stderr);
  }
  const acls: string[][] = [
    ['--principal', 'User:console', '--topic', 'mine', '--operation', 'describe', '--operation', 'read'],
    ['--principal', 'User:console', '--topic', 'other', '--operation', 'describe', '--operation', 'read'],
    ['--principal', 'User:alice', '--topic', 'mine', '--operation', 'describe', '--operation', 'read', '--operation', 'write'],
    ['--principal', 'User:alice', '--topic', 'other', '--operation', 'describe'],
    ...['g.mine.dlq', 'g.other.dlq'].flatMap((dlq) => [
      ['--principal', 'User:console', '--topic', dlq, '--operation', 'describe', '--operation', 'read'],
      ['--principal', 'User:alice', '--topic', dlq, '--operation', 'describe', '--operation', 'read'],
    ]),
  ];
  for (const a of acls) {
    const r = await sluice(['acl', 'add', ...a, '--data-dir', dataDir]);
    assert.equal(r.code, 0, r.stderr);
  }
  const port = await freePort();
  // --console-allow-writes true: under SASL it must not let anonymous visitors act as the console user.
  const broker = await startBroker({ dataDir, args: ['--authentication', 'sasl', '--super-users', 'admin', '--console-port', String(port), '--console-sasl-username', 'console', '--console-allow-writes', 'true'], env: { SLUICE_CONSOLE_SASL_PASSWORD: PASSWORDS.console } });
  const admin = new Admin({ bootstrap: broker.bootstrap, sasl: ADMIN });
  let browser: Awaited<ReturnType<typeof launchBrowser>> | undefined;
  t.after(async () => {
    await browser?.close();
    await admin.close();
    await broker.stop();
    broker.cleanup();
  });
  await admin.createTopics([{ topic: 'mine', partitions: 1 }, { topic: 'other', partitions: 1 }, { topic: 'g.mine.dlq', partitions: 1 }, { topic: 'g.other.dlq', partitions: 1 }]);
  const producer = new Producer({ bootstrap: broker.bootstrap, sasl: ADMIN, lingerMs: 0 });
  let mineId: string;
  let otherId: string;
  try {
    mineId = (await producer.send({ topic: 'mine', value: 'later', delayMs: 3_600_000 })).delayedId!;
    otherId = (await producer.send({ topic: 'other', value: 'later', delayMs: 3_600_000 })).delayedId!;
    for (const target of ['mine', 'other']) await producer.send({ topic: `g.${target}.dlq`, value: 'failed', headers: [{ key: 'sluice-original-topic', value: Buffer.from(target) }] });
  } finally {
    await producer.close();
  }
  const url = `http://127.0.0.1:${port}`;
  browser = await launchBrowser();
  const page = await browser.context.newPage();

  // Not signed in: read-only as the console user; no buttons; a POSTed action is 403.
  let res = await page.goto(`${url}/delayed?topic=mine`);
  assert.equal(res?.status(), 200);
  assert.match(await page.locator('table').innerText(), new RegExp(mineId));
  assert.equal(await page.locator('main button', { hasText: 'Cancel' }).count(), 0);
  assert.equal((await page.locator('header .mode').innerText()).trim(), 'read-only');
  await page.goto(`${url}/messages?topic=g.mine.dlq`);
  assert.match(await page.locator('table.messages').innerText(), /failed/);
  assert.equal(await page.locator('main button', { hasText: 'Replay' }).count(), 0);
  await page.locator('header a.account', { hasText: 'Sign in' }).click();
  const csrf = await page.locator('form.login input[name=csrf]').getAttribute('value');
  assert.ok(csrf);
  const anonymousPost = await page.request.post(`${url}/delayed/cancel`, { form: { id: mineId, csrf } });
  assert.equal(anonymousPost.status(), 403);
  assert.match(await anonymousPost.text(), /not signed in/);

  // A wrong password: refused, and still read-only.
  await page.fill('input[name=username]', 'alice');
  await page.fill('input[name=password]', 'not her password');
  const [refused] = await Promise.all([page.waitForResponse((r) => r.url().endsWith('/login') && r.request().method() === 'POST'), page.click('form.login button[type=submit]')]);
  assert.equal(refused.status(), 401);
  assert.match(await page.locator('main p.bad').innerText(), /Sign-in refused/);
  assert.equal((await browser.context.cookies()).length, 0);

  // Signed in as alice: an HttpOnly, SameSite=Strict session cookie; the header names her.
  await page.fill('input[name=username]', 'alice');
  await page.fill('input[name=password]', PASSWORDS.alice);
  await Promise.all([page.waitForURL(`${url}/brokers`), page.click('form.login button[type=submit]')]);
  const cookies = await browser.context.cookies();
  assert.equal(cookies.length, 1);
  assert.equal(cookies[0]!.httpOnly, true);
  assert.equal(cookies[0]!.sameSite, 'Strict');
  const sessionId = cookies[0]!.value;
  assert.match(await page.locator('header .account').innerText(), /alice/);
  assert.equal((await page.locator('header .mode').innerText()).trim(), 'read-write');

  // Cancel on `mine` (alice may write it) works.
  await page.goto(`${url}/delayed?topic=mine`);
  await page.locator('tbody tr', { hasText: mineId }).locator('button', { hasText: 'Cancel' }).click();
  assert.match(await page.locator('main p.ok').innerText(), /Cancelled delayed message/);
  assert.equal((await admin.listDelayed('mine')).pendingCount, 0);

  // Cancel on `other` (alice may only describe it): the button is offered, the broker refuses: 403 naming the ACL.
  await page.goto(`${url}/delayed?topic=other`);
  const [denied] = await Promise.all([page.waitForResponse((r) => r.url().endsWith('/delayed/cancel')), page.locator('tbody tr', { hasText: otherId }).locator('button', { hasText: 'Cancel' }).click()]);
  assert.equal(denied.status(), 403);
  assert.match(await page.locator('main').innerText(), /User:alice may not write topic "other"/);
  assert.equal((await admin.listDelayed('other')).pendingCount, 1);

  // Replay from a DLQ: to `mine` it works (as alice, who may write it); to `other` the broker refuses alice's producer.
  await page.goto(`${url}/messages?topic=g.mine.dlq`);
  await page.locator('table.messages button', { hasText: 'Replay' }).click();
  assert.match(await page.locator('main p.ok').innerText(), /Replayed g\.mine\.dlq message 0:0 to mine \(partition 0, offset \d+\)/);
  await page.goto(`${url}/messages?topic=g.other.dlq`);
  const [replayDenied] = await Promise.all([page.waitForResponse((r) => r.url().endsWith('/dlq/replay')), page.locator('table.messages button', { hasText: 'Replay' }).click()]);
  assert.equal(replayDenied.status(), 403);
  assert.match(await page.locator('main').innerText(), /User:alice may not write topic "other"/);

  // Sign out: read-only again, and the old session id no longer works.
  await Promise.all([page.waitForURL(`${url}/brokers`), page.locator('header .account button', { hasText: 'Sign out' }).click()]);
  assert.equal((await page.locator('header .mode').innerText()).trim(), 'read-only');
  assert.equal((await browser.context.cookies()).length, 0);
  await page.goto(`${url}/delayed?topic=other`);
  assert.equal(await page.locator('main button', { hasText: 'Cancel' }).count(), 0);
  const replayed = await fetch(`${url}/delayed/cancel`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: `sluice_console_session=${sessionId}` }, body: new URLSearchParams({ id: otherId, csrf }).toString(), signal: AbortSignal.timeout(15_000) });
  assert.equal(replayed.status, 403);
  assert.match(await replayed.text(), /not signed in/);
  assert.equal((await admin.listDelayed('other')).pendingCount, 1);
});
