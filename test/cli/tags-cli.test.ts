/** `sluice produce --tag / --tags-separator` and `sluice consume --tags / --tag-expression` against a real broker. */
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { startBroker } from '../helpers/broker-process.ts';
import { sluice } from '../helpers/cli.ts';

test('produce with --tag and per-line tags; consume filters on the broker and prints tags', async (t) => {
  const b = await startBroker();
  t.after(async () => {
    await b.stop();
    b.cleanup();
  });
  const bs = ['--bootstrap', b.bootstrap];
  assert.equal((await sluice(['topic', 'create', 'shop', ...bs])).code, 0);
  let r = await sluice(['produce', 'shop', '--tag', 'shop:1', ...bs], 'plain one\nplain two\n');
  assert.equal(r.code, 0, r.stderr);
  r = await sluice(['produce', 'shop', '--tags-separator', '|', ...bs], 'order.created,region:eu|o1\nregion:us|o2\n|o3\nbad tag|o4\nno separator\n');
  assert.equal(r.code, 1, 'two bad lines');
  assert.match(r.stderr, /line 4: .*bad tag/);
  assert.match(r.stderr, /line 5: no tags separator/);

  const consume = (...args: string[]) => sluice(['consume', 'shop', '--from-beginning', '--idle-timeout-ms', '1500', ...args, ...bs]);
  r = await consume('--print-tags');
  assert.equal(r.code, 0, r.stderr);
  // Lines with different tags go in different batches, which may land in any order (one batch, one tag set).
  assert.deepEqual(r.stdout.trim().split('\n').sort(), ['\to3', 'order.created,region:eu\to1', 'region:us\to2', 'shop:1\tplain one', 'shop:1\tplain two']);
  r = await consume('--tags', 'region:eu,region:us');
  assert.deepEqual(r.stdout.trim().split('\n').sort(), ['o1', 'o2']);
  r = await consume('--tag-expression', '!shop:1 && !region:us');
  assert.deepEqual(r.stdout.trim().split('\n').sort(), ['o1', 'o3']);
  r = await consume('--tag-expression', 'a &&');
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /--tag-expression: .*expected a tag/);
  r = await sluice(['produce', 'shop', '--tag', 'no spaces allowed', ...bs], 'x\n');
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /--tag: INVALID_TAGS: tag "no spaces allowed"/);
});

test('consume --group --tags: the group\'s committed offsets move past the messages that do not match', async (t) => {
  const b = await startBroker();
  t.after(async () => {
    await b.stop();
    b.cleanup();
  });
  const bs = ['--bootstrap', b.bootstrap];
  assert.equal((await sluice(['topic', 'create', 'feed', ...bs])).code, 0);
  const lines = Array.from({ length: 30 }, (_, i) => `${i % 3 === 0 ? 'keep' : 'drop'}|m${i}`);
  assert.equal((await sluice(['produce', 'feed', '--tags-separator', '|', ...bs], lines.join('\n') + '\n')).code, 0);
  let r = await sluice(['consume', 'feed', '--group', 'g1', '--from-beginning', '--tags', 'keep', '--idle-timeout-ms', '2000', ...bs]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim().split('\n').length, 10);
  r = await sluice(['group', 'describe', 'g1', ...bs]);
  assert.equal(r.code, 0, r.stderr);
  // TOPIC PARTITION ... COMMITTED LOG-END LAG: the committed offset is the log end, lag 0.
  assert.match(r.stdout, /^feed\s+0\s+.*\b30\s+30\s+0\b/m, r.stdout);
});
