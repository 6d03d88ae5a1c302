// Long polling without a broker: parking on partitions, waking by any of them, the deadline,
// the bound on parked fetches, and shutdown.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DelayedFetches, wakeParkedFetches, type FetchParking } from '../../../server/partition/delayed-fetches.ts';

const parking = (): FetchParking => ({ parkedFetches: new Set() });
const settled = async (p: Promise<void>) => {
  let done = false;
  void p.then(() => (done = true));
  await new Promise((r) => setImmediate(r));
  return done;
};

test('a fetch parked on two partitions wakes on either and then leaves both', async () => {
  const d = new DelayedFetches();
  const a = parking();
  const b = parking();
  const parked = d.wait([a, b], 60_000)!;
  assert.ok(parked);
  assert.equal(d.parkedCount, 1);
  assert.equal(a.parkedFetches.size, 1);
  assert.equal(b.parkedFetches.size, 1);
  assert.equal(await settled(parked), false);
  wakeParkedFetches(b);
  assert.equal(await settled(parked), true);
  assert.equal(d.parkedCount, 0);
  assert.equal(a.parkedFetches.size, 0, 'woken by b, it no longer waits on a');
  assert.equal(b.parkedFetches.size, 0);
  wakeParkedFetches(a); // nothing parked: a no-op
});

test('waking a partition wakes every fetch parked on it, not those parked elsewhere', async () => {
  const d = new DelayedFetches();
  const a = parking();
  const b = parking();
  const onA1 = d.wait([a], 60_000)!;
  const onA2 = d.wait([a], 60_000)!;
  const onB = d.wait([b], 60_000)!;
  wakeParkedFetches(a);
  assert.equal(await settled(onA1), true);
  assert.equal(await settled(onA2), true);
  assert.equal(await settled(onB), false);
  assert.equal(d.parkedCount, 1);
  d.wakeAll();
  assert.equal(await settled(onB), true);
  assert.equal(d.parkedCount, 0);
});

test('the deadline wakes a parked fetch and unregisters it', async () => {
  const d = new DelayedFetches();
  const a = parking();
  const started = Date.now();
  await d.wait([a], 30)!;
  assert.ok(Date.now() - started >= 25, 'not before its wait');
  assert.equal(a.parkedFetches.size, 0);
  assert.equal(d.parkedCount, 0);
});

test('no wait, no partitions, or the bound reached: it does not park (null)', () => {
  const d = new DelayedFetches(2);
  const a = parking();
  assert.equal(d.wait([a], 0), null);
  assert.equal(d.wait([a], -5), null);
  assert.equal(d.wait([], 1000), null);
  assert.ok(d.wait([a], 60_000));
  assert.ok(d.wait([a], 60_000));
  assert.equal(d.wait([a], 60_000), null, 'waitersMax 2');
  assert.equal(a.parkedFetches.size, 2);
  d.wakeAll();
  assert.ok(d.wait([a], 60_000), 'room again once they answered');
  d.wakeAll();
});

test('a fetch naming one partition twice is woken once', async () => {
  const d = new DelayedFetches();
  const a = parking();
  let wakes = 0;
  const parked = d.wait([a, a], 60_000)!.then(() => wakes++);
  assert.equal(a.parkedFetches.size, 1);
  wakeParkedFetches(a);
  wakeParkedFetches(a);
  await parked;
  assert.equal(wakes, 1);
  assert.equal(d.parkedCount, 0);
});
