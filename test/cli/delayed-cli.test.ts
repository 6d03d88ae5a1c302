/**
 * Delayed delivery through the CLI, against one real broker process: `sluice produce --delay`
 * and `--deliver-at` print ids, `sluice delayed list` shows them pending (text and --json),
 * `sluice delayed cancel` cancels one (by id, then by TOPIC PARTITION OFFSET: not found),
 * `sluice consume` gets the others not before their time and never the cancelled one; bad
 * delays are refused with a clear error before anything is sent.
 */
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { startBroker, type BrokerProcess } from '../helpers/broker-process.ts';
import { sluice } from '../helpers/cli.ts';

async function broker(t: { after: (fn: () => Promise<void>) => void }): Promise<BrokerProcess> {
  const b = await startBroker();
  t.after(async () => {
    await b.stop();
    b.cleanup();
  });
  return b;
}

/** `ID<TAB>ISO` lines of sluice produce --delay. */
function ids(stdout: string): Array<{ id: string; atMs: number }> {
  return stdout.trim().split('\n').filter((l) => l.length > 0).map((l) => {
    const [id, at] = l.split('\t');
    return { id: id!, atMs: Date.parse(at!) };
  });
}

test('produce --delay / --deliver-at, delayed list, delayed cancel, consume: released at their time, the cancelled one never', async (t) => {
  const b = await broker(t);
  const bs = ['--bootstrap', b.bootstrap];
  let r = await sluice(['topic', 'create', 'orders', '--partitions', '2', ...bs]);
  assert.equal(r.code, 0, r.stderr);

  // Three lines to partition 0, 4 s from now; one to partition 1 at a time a minute away (to be cancelled).
  const before = Date.now();
  r = await sluice(['produce', 'orders', '--partition', '0', '--delay', '4s', ...bs], 'a\nb\nc\n');
  assert.equal(r.code, 0, r.stderr);
  const soon = ids(r.stdout);
  assert.ok(soon.length >= 1 && soon.length <= 3, r.stdout);
  for (const s of soon) {
    assert.match(s.id, /^orders\/0\/\d+$/);
    assert.ok(s.atMs >= before + 4000 && s.atMs <= Date.now() + 4000, `delivery time ${s.atMs} is 4 s after the send`);
  }
  const lateAt = new Date(Date.now() + 60_000).toISOString();
  r = await sluice(['produce', 'orders', '--partition', '1', '--deliver-at', lateAt, ...bs], 'never\n');
  assert.equal(r.code, 0, r.stderr);
  const [late] = ids(r.stdout);
  assert.ok(late);
  assert.match(late.id, /^orders\/1\/\d+$/);
  assert.equal(late.atMs, Date.parse(lateAt));
  // --delay 0: delivered at once.
  r = await sluice(['produce', 'orders', '--partition', '1', '--delay', '0', ...bs], 'now\n');
  assert.equal(r.code, 0, r.stderr);

  // Listed pending, in release order.
  r = await sluice(['delayed', 'list', 'orders', ...bs]);
  assert.equal(r.code, 0, r.stderr);
  const rows = r.stdout.trim().split('\n').map((l) => l.split('\t'));
  assert.deepEqual(rows.map((x) => x[0]), [...soon.map((s) => s.id), late.id]);
  assert.equal(rows.reduce((n, x) => n + Number(x[3]), 0), 4, 'records of the listed messages');
  assert.equal(rows.at(-1)![1], new Date(late.atMs).toISOString());
  assert.match(r.stderr, new RegExp(`^${soon.length + 1} delayed messages pending in orders`));
  r = await sluice(['delayed', 'list', 'orders', '--partition', '1', '--json', ...bs]);
  assert.equal(r.code, 0, r.stderr);
  const listed = JSON.parse(r.stdout) as { pendingCount: number; entries: Array<{ id: string; deliverAtMs: number; recordCount: number }> };
  assert.equal(listed.pendingCount, 1);
  assert.deepEqual(listed.entries.map((e) => [e.id, e.deliverAtMs, e.recordCount]), [[late.id, late.atMs, 1]]);

  // Cancel by id; again (now by TOPIC PARTITION OFFSET): not found, exit 1.
  r = await sluice(['delayed', 'cancel', late.id, ...bs]);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.equal(r.stdout, `cancelled ${late.id}\n`);
  const [, , lateOffset] = late.id.split('/');
  r = await sluice(['delayed', 'cancel', 'orders', '1', lateOffset!, ...bs]);
  assert.equal(r.code, 1);
  assert.match(r.stdout, new RegExp(`^not cancelled ${late.id}: DELAYED_MESSAGE_NOT_FOUND`));
  r = await sluice(['delayed', 'list', 'orders', '--partition', '1', ...bs]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /^0 delayed messages pending in orders\/1/);

  // Consume both partitions from the beginning: 'now' at once, a b c not before their time, 'never' never.
  r = await sluice(['consume', 'orders', '--from-beginning', '--max-messages', '5', '--idle-timeout-ms', '8000', '--print-offset', ...bs], '', 30_000);
  const consumedAt = Date.now();
  assert.equal(r.code, 0, r.stderr);
  const values = r.stdout.trim().split('\n').map((l) => l.split('\t')[1]);
  assert.deepEqual([...values].sort(), ['a', 'b', 'c', 'now']);
  assert.ok(consumedAt >= soon[0]!.atMs, 'the delayed lines came at their time, not before');
  r = await sluice(['delayed', 'list', 'orders', '--json', ...bs]);
  assert.equal(JSON.parse(r.stdout).pendingCount, 0);
});

test('bad delays are refused before anything is sent: negative, unitless nonsense, beyond 400 days, both flags, ISO without a zone; ids that are not ids', async (t) => {
  const b = await broker(t);
  const bs = ['--bootstrap', b.bootstrap];
  assert.equal((await sluice(['topic', 'create', 'jobs', ...bs])).code, 0);
  const cases: Array<[string[], RegExp]> = [
    [['--delay', '-5m'], /--delay: .*cannot be negative/],
    [['--delay', 'soon'], /--delay: .*not a duration/],
    [['--delay', '401d'], /--delay: .*beyond the maximum delay/],
    [['--delay', '1m', '--deliver-at', '2030-01-01T00:00:00Z'], /exclude each other/],
    [['--deliver-at', '2030-01-01 10:00'], /--deliver-at: .*not an ISO time with a zone/],
    [['--delay', '1m', '--transactional-id', 'tx'], /cannot be used with --transactional-id/],
  ];
  for (const [args, re] of cases) {
    const r = await sluice(['produce', 'jobs', ...args, ...bs], 'x\n');
    assert.equal(r.code, 1, args.join(' '));
    assert.match(r.stderr, re, args.join(' '));
  }
  const r = await sluice(['delayed', 'cancel', 'jobs/0/x', ...bs]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /not a delayed message id/);
  // Nothing reached the topic.
  const d = await sluice(['topic', 'describe', 'jobs', ...bs]);
  assert.match(d.stdout, /^0\t0\t0\t/m);
});
