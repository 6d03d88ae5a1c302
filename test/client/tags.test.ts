/**
 * Tag filtering end to end against real broker processes (SPEC §6.7, §7.8, §8.7): producers
 * send tagged messages (one batch per tag set), consumers filtered on the broker get exactly
 * the matching messages with their tags, a consumer group's committed offsets advance past
 * skipped messages so a restarted group neither misses nor repeats anything, a broker killed
 * with SIGKILL rebuilds its tag index and answers the same, retry topics and the DLQ keep the
 * tags, and bad tags or expressions get clear errors.
 */
import { strict as assert } from 'node:assert';
import { after, before, test } from 'node:test';
import { Admin } from '../../client/admin.ts';
import { Consumer, type Message } from '../../client/consumer.ts';
import { GroupConsumer } from '../../client/group/consumer.ts';
import { Producer } from '../../client/producer.ts';
import { ErrorCode, SluiceError } from '../../protocol/errors.ts';
import { TagExpression } from '../../protocol/tag-expression.ts';
import { startBroker, type BrokerProcess } from '../helpers/broker-process.ts';

let broker: BrokerProcess;

before(async () => {
  // Small segments, so the data spans sealed segments (persisted indexes) and the active one.
  broker = await startBroker({ env: { SLUICE_FETCH_TAG_SCAN_BATCHES_MAX: '50' } });
});

after(async () => {
  await broker?.stop();
  broker?.cleanup();
});

async function until(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const TAG_SETS: string[][] = [['a'], ['b'], [], ['region:eu', 'a'], ['c'], ['b', 'c'], []];

/** n messages to `topic`, message i tagged TAG_SETS[i % 7], value `v<i>`, key `k<i>`. */
async function produce(bootstrap: string, topic: string, n: number, from = 0, idempotent = true): Promise<void> {
  const producer = new Producer({ bootstrap, acks: 'all', idempotent, lingerMs: 5 });
  try {
    await Promise.all(Array.from({ length: n }, (_, k) => {
      const i = from + k;
      return producer.send({ topic, key: `k${i}`, value: `v${i}`, tags: TAG_SETS[i % TAG_SETS.length]! });
    }));
  } finally {
    await producer.close();
  }
}

function expected(expr: string, n: number, from = 0): string[] {
  const e = TagExpression.parse(expr);
  const out: string[] = [];
  for (let i = from; i < from + n; i++) if (e.matches(new Set(TAG_SETS[i % TAG_SETS.length]))) out.push(`v${i}`);
  return out.sort();
}

/** Everything a filtered consumer of `partitions` partitions reads from the start until it reaches the log end. */
async function drain(bootstrap: string, topic: string, partitions: number, opts: { tags?: string[]; tagExpression?: string }): Promise<Message[]> {
  const admin = new Admin({ bootstrap });
  const c = new Consumer({ bootstrap, maxWaitMs: 100, ...opts });
  try {
    const ends = await Promise.all(Array.from({ length: partitions }, (_, p) => admin.listOffsets(topic, p, 'latest')));
    await c.assign(Array.from({ length: partitions }, (_, p) => ({ topic, partition: p, offset: 0 })));
    const got: Message[] = [];
    await until(async () => {
      got.push(...(await c.poll(100)));
      return ends.every((end, p) => c.position(topic, p) >= end);
    }, 'the filtered consumer to reach the log end');
    return got;
  } finally {
    await c.close();
    await admin.close();
  }
}

test('filtered consumers get exactly the matching messages with their tags; unfiltered ones everything', async () => {
  const admin = new Admin({ bootstrap: broker.bootstrap });
  await admin.createTopics([{ topic: 'orders', partitions: 2, configs: { 'segment.bytes': '4096' } }]);
  await admin.close();
  await produce(broker.bootstrap, 'orders', 700, 0, true);
  await produce(broker.bootstrap, 'orders', 70, 700, false);
  const N = 770;
  const all = await drain(broker.bootstrap, 'orders', 2, {});
  assert.equal(all.length, N);
  for (const m of all) {
    const i = Number(m.value!.toString().slice(1));
    assert.deepEqual(m.tags, [...TAG_SETS[i % 7]!].sort(), `tags of v${i}`);
  }
  for (const opts of [{ tags: ['a'] }, { tags: ['c', 'region:eu'] }, { tagExpression: 'b && !c' }, { tagExpression: '!a && !b && !c' }, { tags: ['nothing'] }]) {
    const expr = opts.tags ? opts.tags.join(' || ') : opts.tagExpression!;
    const got = await drain(broker.bootstrap, 'orders', 2, opts);
    assert.deepEqual(got.map((m) => m.value!.toString()).sort(), expected(expr, N), expr);
  }
});

test('bad tags fail the send with INVALID_TAGS; a bad expression fails the consumer with INVALID_TAG_EXPRESSION', async () => {
  const producer = new Producer({ bootstrap: broker.bootstrap, acks: 'all' });
  try {
    await assert.rejects(producer.send({ topic: 'orders', value: 'x', tags: ['has space'] }), (e) => e instanceof SluiceError && e.code === ErrorCode.INVALID_TAGS && /has space/.test(e.message));
    await assert.rejects(producer.send({ topic: 'orders', value: 'x', tags: Array.from({ length: 17 }, (_, i) => `t${i}`) }), (e) => e instanceof SluiceError && e.code === ErrorCode.INVALID_TAGS);
  } finally {
    await producer.close();
  }
  assert.throws(() => new Consumer({ bootstrap: broker.bootstrap, tagExpression: 'a && (b' }), (e) => e instanceof SluiceError && e.code === ErrorCode.INVALID_TAG_EXPRESSION && /expected "\)"/.test(e.message));
  assert.throws(() => new Consumer({ bootstrap: broker.bootstrap, tags: ['a'], tagExpression: 'a' }), TypeError);
});

test('a filtered group of 2 commits past skipped messages; restarted, it neither repeats nor misses anything', async () => {
  const admin = new Admin({ bootstrap: broker.bootstrap });
  await admin.createTopics([{ topic: 'events', partitions: 4 }]);
  const EXPR = 'a || b && !c';
  const seen: string[] = [];
  const members: GroupConsumer[] = [];
  const start = (n: number) => {
    for (let k = 0; k < n; k++) {
      const c = new GroupConsumer({ bootstrap: broker.bootstrap, groupId: 'g-tags', topics: ['events'], autoOffsetReset: 'earliest', maxWaitMs: 100, autoCommitIntervalMs: 100, tagExpression: EXPR });
      members.push(c);
      void c.run({ eachMessage: async (m) => void seen.push(m.value!.toString()) });
    }
  };
  const stopAll = async () => {
    for (const c of members.splice(0)) {
      await c.stop();
      await c.close();
    }
  };
  const committedAtEnd = async () => {
    const offs = await admin.fetchOffsets('g-tags', ['events']);
    const ends = await Promise.all([0, 1, 2, 3].map((p) => admin.listOffsets('events', p, 'latest')));
    return ends.every((end, p) => (offs.find((o) => o.partition === p)?.offset ?? -1) === end);
  };
  try {
    await produce(broker.bootstrap, 'events', 350);
    start(2);
    await until(() => seen.length >= expected(EXPR, 350).length, 'the group to process the matching messages');
    // Committed offsets reach the log end although the last messages of a partition may not match.
    await until(committedAtEnd, 'committed offsets at the log end');
    await stopAll();
    assert.deepEqual([...seen].sort(), expected(EXPR, 350));
    // Only non-matching messages arrive: the committed offsets still move to the end.
    const producer = new Producer({ bootstrap: broker.bootstrap, acks: 'all' });
    await Promise.all(Array.from({ length: 40 }, (_, i) => producer.send({ topic: 'events', value: `skip${i}`, tags: ['c'] })));
    await producer.close();
    start(2);
    await until(committedAtEnd, 'committed offsets past the non-matching messages');
    await produce(broker.bootstrap, 'events', 140, 350);
    await until(() => seen.length >= expected(EXPR, 490).length, 'the restarted group to process the new matching messages');
    await until(committedAtEnd, 'committed offsets at the log end again');
    await stopAll();
    assert.deepEqual([...seen].sort(), expected(EXPR, 490), 'every matching message exactly once across the restart');
  } finally {
    await stopAll();
    await admin.close();
  }
});

test('retry topics and the DLQ keep the tags; the runner\'s retry consumers filter like the main one', async () => {
  const admin = new Admin({ bootstrap: broker.bootstrap });
  await admin.createTopics([{ topic: 'jobs', partitions: 1 }]);
  await admin.close();
  const c = new GroupConsumer({ bootstrap: broker.bootstrap, groupId: 'g-tag-retry', topics: ['jobs'], autoOffsetReset: 'earliest', maxWaitMs: 50, autoCommitIntervalMs: 100, tags: ['urgent'] });
  const handled: Array<{ topic: string; value: string; tags: string[] }> = [];
  const running = c.run({
    retry: { delaysMs: [100] },
    eachMessage: async (m) => {
      handled.push({ topic: m.topic, value: m.value!.toString(), tags: m.tags! });
      if (m.value!.toString().startsWith('bad')) throw new Error('cannot');
    },
  });
  const producer = new Producer({ bootstrap: broker.bootstrap, acks: 'all' });
  try {
    await until(() => c.assignment().length === 2, 'main + retry topic assigned');
    await producer.send({ topic: 'jobs', value: 'bad-urgent', tags: ['urgent', 'x'] });
    await producer.send({ topic: 'jobs', value: 'bad-other', tags: ['other'] });
    await until(() => handled.filter((h) => h.value === 'bad-urgent').length === 2, 'the urgent message and its retry');
    // The other one never reaches the handler: the retry topic gets only what the main filter let through.
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(handled.map((h) => [h.topic, h.value, h.tags]), [['jobs', 'bad-urgent', ['urgent', 'x']], ['g-tag-retry.jobs.retry-1', 'bad-urgent', ['urgent', 'x']]]);
  } finally {
    await producer.close();
    await c.stop();
    await running;
    await c.close();
  }
  const dlq = await drain(broker.bootstrap, 'g-tag-retry.jobs.dlq', 1, { tags: ['urgent'] });
  assert.deepEqual(dlq.map((m) => [m.value!.toString(), m.tags]), [['bad-urgent', ['urgent', 'x']]]);
});

test('SIGKILL: the restarted broker rebuilds its tag index and filters the same', async () => {
  let b = await startBroker();
  try {
    const admin = new Admin({ bootstrap: b.bootstrap });
    await admin.createTopics([{ topic: 'k9', partitions: 1, configs: { 'segment.bytes': '8192' } }]);
    await admin.close();
    await produce(b.bootstrap, 'k9', 500);
    const before = (await drain(b.bootstrap, 'k9', 1, { tagExpression: 'b || region:eu' })).map((m) => m.value!.toString()).sort();
    assert.deepEqual(before, expected('b || region:eu', 500));
    await b.kill();
    b = await startBroker({ dataDir: b.dataDir, port: b.port });
    const afterKill = (await drain(b.bootstrap, 'k9', 1, { tagExpression: 'b || region:eu' })).map((m) => m.value!.toString()).sort();
    assert.deepEqual(afterKill, before);
    await produce(b.bootstrap, 'k9', 70, 500);
    const more = (await drain(b.bootstrap, 'k9', 1, { tagExpression: 'b || region:eu' })).map((m) => m.value!.toString()).sort();
    assert.deepEqual(more, expected('b || region:eu', 570));
  } finally {
    await b.stop();
    b.cleanup();
  }
});

test('delayed tagged messages: a filtered consumer never gets the scheduled wrapper, and gets the released message with its tags', async () => {
  const admin = new Admin({ bootstrap: broker.bootstrap });
  await admin.createTopics([{ topic: 'later', partitions: 1 }]);
  await admin.close();
  const producer = new Producer({ bootstrap: broker.bootstrap, acks: 'all' });
  const c = new Consumer({ bootstrap: broker.bootstrap, maxWaitMs: 100, tags: ['pay'] });
  try {
    await c.assign([{ topic: 'later', partition: 0, offset: 0 }]);
    const sentAt = Date.now();
    await producer.send({ topic: 'later', value: 'cancel-unpaid', tags: ['pay', 'order:1'], delayMs: 800 });
    await producer.send({ topic: 'later', value: 'now-other', tags: ['other'] });
    await producer.send({ topic: 'later', value: 'now-pay', tags: ['pay'] });
    const got: Array<[string, string[], number]> = [];
    await until(async () => {
      for (const m of await c.poll(100)) got.push([m.value!.toString(), m.tags!, Date.now() - sentAt]);
      return got.length >= 2;
    }, 'the immediate and the released message', 15_000);
    assert.deepEqual(got.map(([v, t]) => [v, t]), [['now-pay', ['pay']], ['cancel-unpaid', ['order:1', 'pay']]]);
    assert.ok(got[1]![2] >= 700, `released after ${got[1]![2]} ms, not before its time`);
  } finally {
    await c.close();
    await producer.close();
  }
});
