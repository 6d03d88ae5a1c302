/** The sluice CLI as a user runs it: a child process per command, against a real broker. */
import { strict as assert } from 'node:assert';
import { join } from 'node:path';
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

test('topic create, list, describe, delete', async (t) => {
  const b = await broker(t);
  const bs = ['--bootstrap', b.bootstrap];
  let r = await sluice(['topic', 'create', 'orders', '--partitions', '3', '--config', 'retention.ms=3600000', ...bs]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /Created topic orders with 3 partitions/);
  r = await sluice(['topic', 'create', 'audit', ...bs]);
  assert.equal(r.code, 0, r.stderr);

  r = await sluice(['topic', 'list', '--names', ...bs]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.stdout.trim().split('\n'), ['audit', 'orders']);

  r = await sluice(['topic', 'describe', 'orders', ...bs]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^Topic: orders\tPartitions: 3\tReplicationFactor: 1$/m);
  assert.match(r.stdout, /^ {2}retention\.ms=3600000$/m);
  assert.match(r.stdout, /^Partition\tLogStartOffset\tLogEndOffset/m);
  for (const p of [0, 1, 2]) assert.match(r.stdout, new RegExp(`^${p}\\t0\\t0\\t`, 'm'));

  r = await sluice(['topic', 'create', 'orders', ...bs]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /TOPIC_ALREADY_EXISTS/);

  r = await sluice(['topic', 'delete', 'orders', ...bs]);
  assert.equal(r.code, 0, r.stderr);
  r = await sluice(['topic', 'list', '--names', ...bs]);
  assert.deepEqual(r.stdout.trim().split('\n'), ['audit']);
  r = await sluice(['topic', 'describe', 'orders', ...bs]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /UNKNOWN_TOPIC_OR_PARTITION/);
});

test('produce stdin lines, consume them back', async (t) => {
  const b = await broker(t);
  const bs = ['--bootstrap', b.bootstrap];
  assert.equal((await sluice(['topic', 'create', 'lines', '--partitions', '2', ...bs])).code, 0);
  const lines = Array.from({ length: 500 }, (_, i) => `line ${i} ✓`);
  let r = await sluice(['produce', 'lines', '--partition', '1', ...bs], lines.join('\n') + '\n');
  assert.equal(r.code, 0, r.stderr);

  r = await sluice(['consume', 'lines', '--from-beginning', '--max-messages', '500', ...bs]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.stdout.split('\n').slice(0, -1), lines);

  // Keys, offsets, a single partition from an offset.
  r = await sluice(['produce', 'lines', '--key-separator', '=', '--partition', '0', ...bs], 'a=1\nb=2\nno separator\nc=3\n');
  assert.equal(r.code, 1, 'a line without the separator is an error');
  assert.match(r.stderr, /line 3: no key separator/);
  r = await sluice(['consume', 'lines', '--partition', '0', '--offset', '1', '--max-messages', '2', '--print-key', '--print-offset', ...bs]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, '0:1\tb\t2\n0:2\tc\t3\n');

  // Default start is the end: with nothing new, the idle timeout ends the command.
  r = await sluice(['consume', 'lines', '--idle-timeout-ms', '500', ...bs]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, '');
});

test('usage errors and help', async () => {
  let r = await sluice(['consume']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /missing TOPIC/);
  r = await sluice(['produce', 't', '--acks', '2']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /--acks must be 0, 1 or all/);
  r = await sluice(['produce', 't', '--delivery', 'exactly-once']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /exactly-once' needs a transactionalId/);
  r = await sluice(['produce', 't', '--idempotent', '--acks', '1']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /idempotence needs acks 'all'/);
  r = await sluice(['produce', 't', '--delivery', 'twice']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /--delivery must be at-most-once, at-least-once or exactly-once/);
  r = await sluice(['bench', 'produce', '--topic', 't', '--messages', '1', '--size', '1', '--idempotent', '--acks', '1']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /need --acks all/);
  r = await sluice(['topic', 'list', '--bogus']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /unknown option --bogus/);
  r = await sluice(['nope']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /unknown command "nope"/);
  r = await sluice(['consume', '--help']);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /Usage: sluice consume TOPIC/);
  r = await sluice(['topic', 'list', '--bootstrap', '127.0.0.1:1']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /127\.0\.0\.1:1/);
});

test('health: 0 against a live broker, 1 against nothing', async (t) => {
  const b = await broker(t);
  let r = await sluice(['health', '--bootstrap', b.bootstrap]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^ok: broker /);
  r = await sluice(['health', '--bootstrap', '127.0.0.1:1', '--timeout-ms', '1000']);
  assert.equal(r.code, 1);
});
