/**
 * Delayed delivery through leader failover (issue 10's cluster proof), with real processes:
 * etcd + 3 brokers, RF 3, min.insync.replicas 2, the client's producer with acks=all.
 *
 * Each of MESSAGES delayed messages gets its own delivery time, spread over WINDOW_MS; some are
 * cancelled before any fault, more while leaders move. While they fall due, the leader of a
 * partition is SIGKILLed and restarted, KILLS times (a different partition each time). A
 * consumer reads every partition from offset 0 throughout and records when it got each message.
 *
 * What must hold afterwards:
 * - every acknowledged delayed message that was not cancelled is in the log exactly once (a
 *   fresh read of every partition) and the live consumer got it exactly once;
 * - none was received before its delivery time (consumer clock = brokers' clock, one machine);
 * - a message whose cancel was acknowledged (errorCode 0) is never released; one whose cancel
 *   answered DELAYED_MESSAGE_NOT_FOUND was released (exactly once);
 * - a send that failed (none expected) is released at most once;
 * - nothing is left pending.
 * Reported: lateness (receive time - delivery time) p50/p99/max, split by whether a kill
 * happened near the delivery time.
 */
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { Consumer } from '../../client/consumer.ts';
import { Producer, type RecordMetadata } from '../../client/producer.ts';
import { ErrorCode } from '../../protocol/errors.ts';
import { createTopic, partitionsOf, percentile, readAll, sleep, waitFor, waitForIsrSize, withCluster, withTimeout } from './harness.ts';

const TOPIC = 'later';
const PARTITIONS = 3;
const MESSAGES = 600;
/** Delivery times spread over this window, which starts WINDOW_START_MS after the scheduling. */
const WINDOW_MS = 24_000;
const WINDOW_START_MS = 3_000;
const KILLS = 3;
/** Cancelled before the faults: every CANCEL_EVERY-th message due late enough. */
const CANCEL_EVERY = 10;
/** How long after the window's end every release must have reached the consumer. */
const DRAIN_MS = 45_000;

interface Sent {
  value: string;
  partition: number;
  deliverAtMs: number;
  md: RecordMetadata | null;
  error: string | null;
}

test('delayed messages through 3 leader kills (RF 3, acks=all): each released exactly once, none early, cancelled ones never', { timeout: 300_000 }, async (t) => {
  await withCluster(t, { brokers: 3 }, async (h) => {
    const admin = h.admin();
    await createTopic(admin, TOPIC, PARTITIONS, 3, { 'min.insync.replicas': 2 });

    // ---- a consumer that runs throughout: value -> receive times ----
    const live = new Consumer({ bootstrap: h.allBootstrap, maxWaitMs: 100, autoOffsetReset: 'none', retryBackoffMs: 50 });
    await live.assign(Array.from({ length: PARTITIONS }, (_, p) => ({ topic: TOPIC, partition: p, offset: 0 })));
    const received = new Map<string, number[]>();
    const consumerErrors: string[] = [];
    let stopConsumer = false;
    const consuming = (async () => {
      while (!stopConsumer) {
        try {
          const batch = await live.poll(100);
          const now = Date.now();
          for (const m of batch) {
            const v = m.value!.toString();
            const list = received.get(v) ?? [];
            list.push(now);
            received.set(v, list);
          }
        } catch (e) {
          consumerErrors.push((e as Error).message);
          await sleep(100);
        }
      }
    })();

    const producer = new Producer({ bootstrap: h.allBootstrap, acks: 'all', lingerMs: 2, retryBackoffMs: 50, retryBackoffMaxMs: 500, requestTimeoutMs: 5000, deliveryTimeoutMs: 60_000 });
    const sent: Sent[] = [];
    const cancelledOk = new Set<string>();
    const mustRelease = new Set<string>();
    const uncertainCancels = new Set<string>();
    const killTimes: number[] = [];
    const uncertainWhy: string[] = [];
    try {
      // ---- schedule: one message per delivery time, round robin over the partitions ----
      const base = Date.now() + WINDOW_START_MS;
      await Promise.all(
        Array.from({ length: MESSAGES }, (_, i) => {
          const s: Sent = { value: `m${i}`, partition: i % PARTITIONS, deliverAtMs: base + Math.floor((i * WINDOW_MS) / MESSAGES), md: null, error: null };
          sent.push(s);
          return producer.send({ topic: TOPIC, partition: s.partition, value: s.value, deliverAt: s.deliverAtMs }).then(
            (md) => void (s.md = md),
            (e: Error) => void (s.error = e.message),
          );
        }),
      );
      const scheduledMs = Date.now();
      t.diagnostic(`scheduled ${MESSAGES} in ${scheduledMs - base + WINDOW_START_MS} ms; window ${new Date(base).toISOString()} + ${WINDOW_MS} ms`);
      assert.ok(scheduledMs < base, 'scheduling finished before the first delivery time');
      assert.deepEqual(sent.filter((s) => s.error !== null).map((s) => s.error), [], 'every delayed send acknowledged');
      for (const s of sent) assert.match(s.md!.delayedId!, new RegExp(`^${TOPIC}/${s.partition}/\\d+$`));
      const listed = await admin.listDelayed(TOPIC);
      assert.equal(listed.pendingCount, MESSAGES, 'all pending before the window');

      // ---- cancels before any fault: must all succeed ----
      const firstCancels = sent.filter((s, i) => i % CANCEL_EVERY === 5 && s.deliverAtMs > Date.now() + 2000);
      const r1 = await admin.cancelDelayed(firstCancels.map((s) => s.md!.delayedId!));
      r1.forEach((r, k) => {
        assert.equal(r.errorCode, ErrorCode.NONE, `cancel ${r.id}: ${r.errorMessage}`);
        cancelledOk.add(firstCancels[k]!.value);
      });

      // ---- kills while messages fall due; more cancels between them ----
      for (let k = 0; k < KILLS; k++) {
        // Kill k at (k+1)/(KILLS+1) of the window.
        await sleep(Math.max(0, base + ((k + 1) * WINDOW_MS) / (KILLS + 1) - Date.now()));
        const partitions = await partitionsOf(admin, TOPIC);
        const victim = partitions[k % PARTITIONS]!.leader;
        assert.ok(victim >= 0 && h.cluster.brokers.has(victim), `partition ${k % PARTITIONS} has a live leader`);
        t.diagnostic(`kill -9 broker ${victim} (leader of ${TOPIC}/${k % PARTITIONS}, leaders ${partitions.map((p) => p.leader).join(',')}) at window + ${Date.now() - base} ms`);
        killTimes.push(Date.now());
        await h.kill(victim);
        // Cancels while the leader is gone: the admin finds the new leader (or the answer says why not).
        const later = sent.filter((s, i) => i % CANCEL_EVERY === k && !cancelledOk.has(s.value) && s.deliverAtMs > Date.now() + 3000).slice(0, 10);
        const r2 = await admin.cancelDelayed(later.map((s) => s.md!.delayedId!));
        r2.forEach((r, j) => {
          const v = later[j]!.value;
          if (r.errorCode === ErrorCode.NONE) cancelledOk.add(v);
          else if (r.errorCode === ErrorCode.DELAYED_MESSAGE_NOT_FOUND) mustRelease.add(v);
          else {
          uncertainCancels.add(v);
          uncertainWhy.push(`${r.id}: ${r.errorCode} ${r.errorMessage ?? ''}`);
        }
        });
        await sleep(800);
        await h.restart(victim);
        await waitForIsrSize(admin, TOPIC, 3, 45_000);
      }
      t.diagnostic(`cancelled ${cancelledOk.size} (uncertain ${uncertainCancels.size}, not found ${mustRelease.size})${uncertainWhy.length > 0 ? `; uncertain: ${uncertainWhy.slice(0, 3).join('; ')}` : ''}`);

      // ---- every due message reaches the consumer ----
      const expected = sent.filter((s) => !cancelledOk.has(s.value) && !uncertainCancels.has(s.value));
      await waitFor('every non-cancelled delayed message received', () => expected.every((s) => received.has(s.value)), Math.max(0, base + WINDOW_MS - Date.now()) + DRAIN_MS, 200);
      // A little longer: a duplicate or a cancelled message would show up now.
      await sleep(3000);
    } finally {
      stopConsumer = true;
      await withTimeout(consuming, 10_000, 'consumer stopped');
      await live.close();
      await producer.close();
    }

    // ---- checks ----
    const stored = await readAll(h.allBootstrap, TOPIC, PARTITIONS, 60_000);
    const storedCount = new Map<string, number>();
    for (const [p, messages] of stored) {
      for (const m of messages) {
        const v = m.value!.toString();
        storedCount.set(v, (storedCount.get(v) ?? 0) + 1);
        assert.equal(Number(v.slice(1)) % PARTITIONS, p, `${v} released in its own partition`);
      }
    }
    const problems: string[] = [];
    const lateness: number[] = [];
    const latenessNearKill: number[] = [];
    for (const s of sent) {
      const inLog = storedCount.get(s.value) ?? 0;
      const got = received.get(s.value) ?? [];
      if (cancelledOk.has(s.value)) {
        if (inLog !== 0 || got.length !== 0) problems.push(`${s.value} cancelled but released (${inLog} in log, received ${got.length}x)`);
        continue;
      }
      if (uncertainCancels.has(s.value)) {
        if (inLog > 1 || got.length > 1) problems.push(`${s.value} (cancel uncertain) released ${inLog}x`);
        continue;
      }
      if (inLog !== 1) problems.push(`${s.value} is ${inLog}x in the log`);
      if (got.length !== 1) problems.push(`${s.value} received ${got.length}x`);
      if (got.length > 0) {
        const late = got[0]! - s.deliverAtMs;
        if (late < 0) problems.push(`${s.value} received ${-late} ms before its delivery time`);
        (killTimes.some((k) => s.deliverAtMs >= k - 500 && s.deliverAtMs <= k + 15_000) ? latenessNearKill : lateness).push(late);
      }
    }
    for (const v of mustRelease) if (storedCount.get(v) !== 1) problems.push(`${v}: cancel said not found, yet it is ${storedCount.get(v) ?? 0}x in the log`);
    const stats = (xs: number[]) => (xs.length === 0 ? 'none' : `p50 ${percentile(xs, 50)} p99 ${percentile(xs, 99)} max ${Math.max(...xs)} ms (${xs.length})`);
    t.diagnostic(`lateness away from kills: ${stats(lateness)}; within 15 s after a kill: ${stats(latenessNearKill)}`);
    t.diagnostic(`consumer errors (retried): ${consumerErrors.length}`);
    assert.deepEqual(problems, []);
    const after = await admin.listDelayed(TOPIC);
    assert.equal(after.pendingCount, 0, `nothing left pending: ${JSON.stringify(after.partitions)}`);
    assert.ok(lateness.length > 0 && latenessNearKill.length > 0, 'messages fell due both away from and right after kills');
  });
});
