/**
 * Admin.listDelayed / cancelDelayed against a real broker process: paging across partitions
 * in release order (ties in delivery time broken by partition, then offset) with no entry lost
 * or repeated between pages; several ids in one cancel with per-id results.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Admin, type DelayedMessage } from '../../client/admin.ts';
import { Producer } from '../../client/producer.ts';
import { ErrorCode, SluiceError } from '../../protocol/errors.ts';
import { startBroker } from '../helpers/broker-process.ts';

test('listDelayed pages across partitions in (deliverAt, partition, offset) order; cancelDelayed answers per id', async (t) => {
  const broker = await startBroker();
  const admin = new Admin({ bootstrap: broker.bootstrap });
  const producer = new Producer({ bootstrap: broker.bootstrap, lingerMs: 0 });
  t.after(async () => {
    await producer.close();
    await admin.close();
    await broker.stop();
    broker.cleanup();
  });
  await admin.createTopics([{ topic: 'later', partitions: 3 }]);
  const base = Date.now() + 600_000;
  // Times chosen so that several partitions share a time, and one partition has two entries at one time.
  const plan: Array<[number, number]> = [[2, 0], [1, 0], [0, 0], [0, 5], [2, 5], [1, 9], [1, 9], [0, 9], [2, 1]];
  const results = [];
  for (const [partition, dt] of plan) results.push(await producer.send({ topic: 'later', partition, value: `p${partition}+${dt}`, deliverAt: base + dt }));
  for (const r of results) assert.equal(r.delayedId, `later/${r.partition}/${r.offset}`);

  const all = await admin.listDelayed('later', null, { limit: 1000 });
  assert.equal(all.pendingCount, plan.length);
  assert.equal(all.next, null);
  const key = (e: DelayedMessage) => [e.deliverAtMs, e.partition, e.offset];
  const sorted = [...all.entries].sort((a, b) => a.deliverAtMs - b.deliverAtMs || a.partition - b.partition || a.offset - b.offset);
  assert.deepEqual(all.entries.map(key), sorted.map(key));
  assert.deepEqual(all.entries.map((e) => e.id).sort(), results.map((r) => r.delayedId!).sort());

  const paged: DelayedMessage[] = [];
  let after = null;
  for (let guard = 0; guard < 20; guard++) {
    const page = await admin.listDelayed('later', undefined, { limit: 2, after });
    assert.ok(page.entries.length <= 2);
    paged.push(...page.entries);
    if (page.next === null) break;
    after = page.next;
  }
  assert.deepEqual(paged.map(key), all.entries.map(key), 'pages of 2 give the whole list, in order, once');

  const one = await admin.listDelayed('later', 1);
  assert.deepEqual(one.entries.map((e) => e.partition), [1, 1, 1]);
  await assert.rejects(admin.listDelayed('later', 7), (e: unknown) => e instanceof SluiceError && e.code === ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
  await assert.rejects(admin.listDelayed('later', 0, { limit: 0 }), RangeError);

  // Several ids at once: a pending one, the same again (already cancelled by then), an offset that is no wrapper.
  const victim = results[3]!;
  const r = await admin.cancelDelayed([victim.delayedId!, { topic: 'later', partition: victim.partition, offset: victim.offset }, 'later/0/999']);
  assert.deepEqual(r.map((x) => [x.id, x.cancelled, x.errorCode]), [
    [victim.delayedId, true, ErrorCode.NONE],
    [victim.delayedId, false, ErrorCode.DELAYED_MESSAGE_NOT_FOUND],
    ['later/0/999', false, ErrorCode.DELAYED_MESSAGE_NOT_FOUND],
  ]);
  await assert.rejects(admin.cancelDelayed(victim.delayedId!), (e: unknown) => e instanceof SluiceError && e.code === ErrorCode.DELAYED_MESSAGE_NOT_FOUND && e.message.includes(victim.delayedId!));
  assert.equal((await admin.listDelayed('later')).pendingCount, plan.length - 1);
});
