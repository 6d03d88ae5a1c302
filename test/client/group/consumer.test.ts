/**
 * GroupConsumer against a real broker: partitions split between members and never owned by
 * two at once, at-least-once commits surviving a member, at-most-once committing before
 * poll() returns, and retry topics + DLQ end to end.
 */
import { strict as assert } from 'node:assert';
import { after, before, test } from 'node:test';
import { Admin } from '../../../client/admin.ts';
import { Cluster } from '../../../client/cluster.ts';
import type { Message } from '../../../client/consumer.ts';
import { GroupConsumer } from '../../../client/group/consumer.ts';
import { CoordinatorClient, type GroupTransport } from '../../../client/group/coordinator.ts';
import { Producer } from '../../../client/producer.ts';
import { readRetryInfo } from '../../../client/group/retry-policy.ts';
import { startBroker, type BrokerProcess } from '../../helpers/broker-process.ts';

let broker: BrokerProcess;
let admin: Admin;
let producer: Producer;

before(async () => {
  broker = await startBroker();
  admin = new Admin({ bootstrap: broker.bootstrap });
  producer = new Producer({ bootstrap: broker.bootstrap, acks: 'all', profile: 'latency' });
});

after(async () => {
  await producer?.close();
  await admin?.close();
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

async function produce(topic: string, n: number, from = 0): Promise<void> {
  await Promise.all(Array.from({ length: n }, (_, i) => producer.send({ topic, key: `k${from + i}`, value: `v${from + i}` })));
}

test('two members split 4 partitions 2/2 and never own a partition at the same time', async () => {
  await admin.createTopics([{ topic: 'split', partitions: 4 }]);
  // Ownership timeline: [member, partition, 'add'|'del', time]
  const timeline: Array<{ m: string; p: number; op: 'add' | 'del'; at: number }> = [];
  const mk = (name: string) =>
    new GroupConsumer({
      bootstrap: broker.bootstrap,
      groupId: 'g-split',
      topics: ['split'],
      autoOffsetReset: 'earliest',
      maxWaitMs: 100,
      onAssignmentChange: (e) => {
        const at = performance.now();
        for (const tp of e.revoked) timeline.push({ m: name, p: tp.partition, op: 'del', at });
        for (const tp of e.assigned) timeline.push({ m: name, p: tp.partition, op: 'add', at });
      },
    });
  const a = mk('a');
  const b = mk('b');
  let stop = false;
  const seen = new Map<string, Set<number>>([['a', new Set()], ['b', new Set()]]);
  const loop = async (c: GroupConsumer, name: string) => {
    while (!stop) for (const m of await c.poll(100)) seen.get(name)!.add(m.partition);
  };
  const la = loop(a, 'a');
  try {
    await until(() => a.assignment().length === 4, 'a owns all 4');
    const lb = loop(b, 'b');
    await until(() => a.assignment().length === 2 && b.assignment().length === 2, 'a 2/2 split');
    const pa = a.assignment().map((x) => x.partition);
    const pb = b.assignment().map((x) => x.partition);
    assert.deepEqual([...pa, ...pb].sort(), [0, 1, 2, 3]);
    await produce('split', 40);
    await until(() => seen.get('a')!.size + seen.get('b')!.size >= 4, 'messages from every partition');
    stop = true;
    await Promise.all([la, lb]);
  } finally {
    stop = true;
    await a.close();
    await b.close();
  }
  // No partition is owned by both members at any instant.
  for (let p = 0; p < 4; p++) {
    const owners = new Set<string>();
    for (const ev of timeline.filter((e) => e.p === p).sort((x, y) => x.at - y.at || (x.op === 'del' ? -1 : 1))) {
      if (ev.op === 'add') {
        assert.equal(owners.size, 0, `partition ${p} given to ${ev.m} while owned by ${[...owners]}: ${JSON.stringify(timeline)}`);
        owners.add(ev.m);
      } else owners.delete(ev.m);
    }
  }
});

test('at-least-once: committed progress survives the member; a new member resumes after it', async () => {
  await admin.createTopics([{ topic: 'resume', partitions: 4 }]);
  await produce('resume', 40);
  const opts = { bootstrap: broker.bootstrap, groupId: 'g-resume', topics: ['resume'], autoOffsetReset: 'earliest' as const, maxWaitMs: 100, maxPollRecords: 5 };
  const first = new GroupConsumer(opts);
  const got1: Message[] = [];
  try {
    await until(async () => {
      got1.push(...(await first.poll(200)));
      return got1.length >= 10;
    }, '10 messages');
    await first.commit(); // everything returned so far is consumed and committed
  } finally {
    await first.close();
  }
  const second = new GroupConsumer(opts);
  const got2: Message[] = [];
  try {
    await until(async () => {
      got2.push(...(await second.poll(200)));
      return got1.length + got2.length >= 40;
    }, 'the rest');
    await second.commit();
  } finally {
    await second.close();
  }
  const ids = [...got1, ...got2].map((m) => `${m.partition}:${m.offset}`);
  assert.equal(new Set(ids).size, 40, 'each message exactly once across the two members');
  assert.equal(ids.length, 40);
});

test('at-least-once: close() without commit() does not commit the batch in hand', async () => {
  await admin.createTopics([{ topic: 'inhand', partitions: 1 }]);
  await produce('inhand', 5);
  const opts = { bootstrap: broker.bootstrap, groupId: 'g-inhand', topics: ['inhand'], autoOffsetReset: 'earliest' as const, maxWaitMs: 100 };
  const c1 = new GroupConsumer(opts);
  let batch: Message[] = [];
  try {
    await until(async () => (batch = await c1.poll(200)).length > 0, 'a batch');
  } finally {
    await c1.close(); // crash-like: the batch was never consumed
  }
  const c2 = new GroupConsumer(opts);
  try {
    let again: Message[] = [];
    await until(async () => (again = await c2.poll(200)).length > 0, 'redelivery');
    assert.equal(again[0]!.offset, batch[0]!.offset, 'redelivered from the first unconsumed offset');
  } finally {
    await c2.close();
  }
});

test('at-most-once: the batch is committed before poll() returns it', async () => {
  await admin.createTopics([{ topic: 'amo', partitions: 2 }]);
  await produce('amo', 10);
  const events: string[] = [];
  const cluster = new Cluster({ bootstrap: broker.bootstrap });
  const real = new CoordinatorClient(cluster, 'g-amo', 10_000);
  const transport: GroupTransport = {
    heartbeat: (r) => real.heartbeat(r),
    offsetFetch: (r) => real.offsetFetch(r),
    offsetCommit: async (r) => {
      const res = await real.offsetCommit(r);
      events.push(`commit ${r.topics.flatMap((t) => t.partitions.map((p) => `${p.partition}@${p.offset}`)).sort().join(',')}`);
      return res;
    },
  };
  const c = new GroupConsumer({ bootstrap: broker.bootstrap, groupId: 'g-amo', topics: ['amo'], autoOffsetReset: 'earliest', deliveryMode: 'at-most-once', maxWaitMs: 100, transport });
  try {
    let total = 0;
    await until(async () => {
      const msgs = await c.poll(200);
      if (msgs.length > 0) {
        const ends = new Map<number, number>();
        for (const m of msgs) ends.set(m.partition, m.offset + 1);
        events.push(`returned ${[...ends].map(([p, o]) => `${p}@${o}`).sort().join(',')}`);
        total += msgs.length;
      }
      return total >= 10;
    }, '10 messages');
  } finally {
    await c.close();
    cluster.close();
  }
  const returned = events.filter((e) => e.startsWith('returned'));
  assert.ok(returned.length > 0);
  for (const r of returned) {
    const i = events.indexOf(r);
    assert.equal(events[i - 1], r.replace('returned', 'commit'), `commit precedes return: ${JSON.stringify(events)}`);
  }
});

test('run() with retry topics: delays are respected and the DLQ gets intact headers', async () => {
  await admin.createTopics([{ topic: 'jobs', partitions: 2 }]);
  const delays = [300, 600];
  const c = new GroupConsumer({ bootstrap: broker.bootstrap, groupId: 'g-retry', topics: ['jobs'], autoOffsetReset: 'earliest', maxWaitMs: 50, autoCommitIntervalMs: 200 });
  const handled: Array<{ topic: string; at: number; attempt: number; value: string }> = [];
  const running = c.run({
    retry: { delaysMs: delays },
    eachMessage: async (m, ctx) => {
      const value = m.value!.toString();
      handled.push({ topic: m.topic, at: Date.now(), attempt: ctx.attempt, value });
      if (value === 'bad') throw new Error('cannot process bad');
      if (value === 'nack-once' && ctx.attempt === 0) ctx.nack('try later');
    },
  });
  try {
    await until(() => c.assignment().length === 2 * 3, 'main + 2 retry topics assigned (6 partitions)');
    await producer.send({ topic: 'jobs', key: 'x', value: 'bad', headers: { trace: 'abc-123' }, partition: 1 });
    await producer.send({ topic: 'jobs', key: 'y', value: 'nack-once', partition: 0 });
    await producer.send({ topic: 'jobs', key: 'z', value: 'good', partition: 0 });
    await until(() => handled.filter((h) => h.value === 'bad').length === 3 && handled.filter((h) => h.value === 'nack-once').length === 2, 'all attempts', 15_000);
  } finally {
    await c.stop();
    await running;
    await c.close();
  }
  const bad = handled.filter((h) => h.value === 'bad');
  assert.deepEqual(bad.map((h) => [h.topic, h.attempt]), [['jobs', 0], ['g-retry.jobs.retry-1', 1], ['g-retry.jobs.retry-2', 2]]);
  assert.ok(bad[1]!.at - bad[0]!.at >= delays[0]!, `first retry after >= ${delays[0]} ms, was ${bad[1]!.at - bad[0]!.at}`);
  assert.ok(bad[2]!.at - bad[1]!.at >= delays[1]!, `second retry after >= ${delays[1]} ms, was ${bad[2]!.at - bad[1]!.at}`);
  assert.equal(handled.filter((h) => h.value === 'good').length, 1);
  // The DLQ holds the message with its original key, value and headers, plus the retry headers.
  const { Consumer } = await import('../../../client/consumer.ts');
  const dlq = new Consumer({ bootstrap: broker.bootstrap, maxWaitMs: 100 });
  try {
    await dlq.assign([{ topic: 'g-retry.jobs.dlq', partition: 1, offset: 0 }]);
    let msgs: Message[] = [];
    await until(async () => (msgs = await dlq.poll(200)).length > 0, 'the DLQ message');
    assert.equal(msgs.length, 1);
    const m = msgs[0]!;
    assert.equal(m.key!.toString(), 'x');
    assert.equal(m.value!.toString(), 'bad');
    const h = (k: string) => { const x = m.headers.find((y) => y.key === k); return x?.value ? Buffer.from(x.value).toString() : undefined; };
    assert.equal(h('trace'), 'abc-123');
    const info = readRetryInfo(m.headers)!;
    assert.equal(info.attempt, 3);
    assert.equal(info.originalTopic, 'jobs');
    assert.equal(info.originalPartition, 1);
    assert.equal(info.originalOffset, 0);
    assert.match(info.reason ?? '', /cannot process bad/);
    assert.equal(info.dueMs, null);
    assert.ok(info.firstFailureMs <= bad[0]!.at + 50);
  } finally {
    await dlq.close();
  }
});
