// UploadLimiter (server/archive/upload-limiter.ts): at most `concurrency` uploads at once,
// first come first served, aborted waits leave the queue; pace() holds the long-run rate.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UploadLimiter } from '../../../server/archive/upload-limiter.ts';

test('slots: never more than concurrency in flight, FIFO, an aborted wait gives up its place', async () => {
  const l = new UploadLimiter(2, 0);
  const order: number[] = [];
  let inFlight = 0;
  let peak = 0;
  const job = async (i: number) => {
    const release = await l.acquire();
    inFlight++;
    peak = Math.max(peak, inFlight);
    order.push(i);
    await new Promise((r) => setTimeout(r, 10));
    inFlight--;
    release();
    release(); // a second call changes nothing
  };
  await Promise.all([0, 1, 2, 3, 4, 5].map(job));
  assert.equal(peak, 2);
  assert.deepEqual(order, [0, 1, 2, 3, 4, 5]);
  assert.equal(l.inFlight, 0);

  const a = await l.acquire();
  const b = await l.acquire();
  const ac = new AbortController();
  const waiting = l.acquire(ac.signal);
  const next = l.acquire();
  ac.abort(new Error('leadership lost'));
  await assert.rejects(waiting, /leadership lost/);
  a();
  const c = await next; // the aborted waiter did not take the slot
  b();
  c();
  assert.equal(l.inFlight, 0);
});

test('pace: about bytesPerSec in the long run (1 s of tokens as burst), at once when unlimited', async () => {
  const unlimited = new UploadLimiter(1, 0);
  const t0 = Date.now();
  for (let i = 0; i < 100; i++) await unlimited.pace(1 << 20);
  assert.ok(Date.now() - t0 < 100);

  const rate = 200_000; // bytes per second
  const l = new UploadLimiter(1, rate);
  const start = Date.now();
  let sent = 0;
  while (sent < 160_000) {
    await l.pace(20_000);
    sent += 20_000;
  }
  const ms = Date.now() - start;
  // No saved-up burst at the start: 160 kB at 200 kB/s takes about 800 ms (generous margins).
  assert.ok(ms >= 600 && ms < 3000, `${sent} bytes paced in ${ms} ms`);
});
