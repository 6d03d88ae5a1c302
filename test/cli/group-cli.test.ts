/** sluice group, dlq, topic alter and consume --group as a user runs them: child processes against a real broker. */
import { strict as assert } from 'node:assert';
import { join } from 'node:path';
import { test } from 'node:test';
import { Admin } from '../../client/admin.ts';
import { Connection } from '../../client/connection.ts';
import { Consumer, type Message } from '../../client/consumer.ts';
import { Producer } from '../../client/producer.ts';
import { ApiKey } from '../../protocol/api-keys.ts';
import type { ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse } from '../../protocol/apis/consumer-group-heartbeat.ts';
import { ErrorCode } from '../../protocol/errors.ts';
import { startBroker, type BrokerProcess } from '../helpers/broker-process.ts';
import { sluice } from '../helpers/cli.ts';

async function setup(t: { after: (fn: () => Promise<void>) => void }): Promise<{ broker: BrokerProcess; admin: Admin; bs: string[] }> {
  const broker = await startBroker();
  const admin = new Admin({ bootstrap: broker.bootstrap });
  t.after(async () => {
    await admin.close();
    await broker.stop();
    broker.cleanup();
  });
  return { broker, admin, bs: ['--bootstrap', broker.bootstrap] };
}

async function produce(bootstrap: string, msgs: Parameters<Producer['sendBatch']>[0]): Promise<void> {
  const producer = new Producer({ bootstrap, lingerMs: 0 });
  try {
    await producer.sendBatch(msgs);
  } finally {
    await producer.close();
  }
}

/** Every message of the topic up to its current end. */
async function readAll(admin: Admin, bootstrap: string, topic: string): Promise<Message[]> {
  const partitions = (await admin.cluster.topic(topic, true)).partitions.map((p) => p.partition);
  const ends = new Map(await Promise.all(partitions.map(async (p) => [p, await admin.listOffsets(topic, p, 'latest')] as const)));
  const consumer = new Consumer({ bootstrap });
  const out: Message[] = [];
  try {
    await consumer.assign(partitions.map((partition) => ({ topic, partition, offset: 'earliest' })));
    const deadline = Date.now() + 10_000;
    while (partitions.some((p) => consumer.position(topic, p) < ends.get(p)!)) {
      assert.ok(Date.now() < deadline, `reading ${topic} timed out`);
      out.push(...(await consumer.poll(200)));
    }
  } finally {
    await consumer.close();
  }
  return out;
}

function header(m: Message, key: string): string | undefined {
  const h = m.headers.find((x) => x.key === key);
  return h ? (h.value === null ? 'null' : Buffer.from(h.value).toString('utf8')) : undefined;
}

test('group list, describe, reset-offsets, delete', async (t) => {
  const { broker, admin, bs } = await setup(t);
  await admin.createTopics([{ topic: 'orders', partitions: 2 }, { topic: 'other', partitions: 1 }]);
  const t0 = Date.now() - 60_000;
  await produce(broker.bootstrap, [
    ...Array.from({ length: 6 }, (_, i) => ({ topic: 'orders', partition: 0, value: `x${i}`, timestamp: t0 + i * 1000 })),
    ...Array.from({ length: 2 }, (_, i) => ({ topic: 'orders', partition: 1, value: `y${i}`, timestamp: t0 })),
  ]);
  await admin.commitOffsets('billing', [{ topic: 'orders', partition: 0, offset: 2 }]);

  let r = await sluice(['group', 'list', ...bs]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'GroupId\tState\tMembers\nbilling\tempty\t0\n');

  r = await sluice(['group', 'describe', 'billing', ...bs]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^Group: billing\tState: empty\tEpoch: \d+\tAssignmentEpoch: \d+\tAssignor: \S+$/m);
  assert.match(r.stdout, /^Members: 0$/m);
  assert.ok(
    r.stdout.endsWith('Topic\tPartition\tCommittedOffset\tLogEndOffset\tLag\tOwner\norders\t0\t2\t6\t4\t-\norders\t1\t-\t2\t-\t-\nTopic\tTotalLag\norders\t4\nTotal lag: 4\n'),
    r.stdout,
  );

  r = await sluice(['group', 'reset-offsets', 'billing', '--topic', 'orders', '--to-earliest', ...bs]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'Topic\tPartition\tNewOffset\norders\t0\t0\norders\t1\t0\n');
  r = await sluice(['group', 'reset-offsets', 'billing', '--topic', 'orders', '--to-latest', ...bs]);
  assert.equal(r.stdout, 'Topic\tPartition\tNewOffset\norders\t0\t6\norders\t1\t2\n');
  r = await sluice(['group', 'reset-offsets', 'billing', '--topic', 'orders', '--to-offset', '4', ...bs]);
  assert.equal(r.stdout, 'Topic\tPartition\tNewOffset\norders\t0\t4\norders\t1\t2\n');
  r = await sluice(['group', 'reset-offsets', 'billing', '--topic', 'orders', '--to-datetime', new Date(t0 + 3000).toISOString(), ...bs]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'Topic\tPartition\tNewOffset\norders\t0\t3\norders\t1\t2\n');
  assert.deepEqual((await admin.fetchOffsets('billing')).map((o) => [o.partition, o.offset]), [[0, 3], [1, 2]]);

  // Usage errors.
  r = await sluice(['group', 'reset-offsets', 'billing', '--topic', 'orders', ...bs]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /one of --to-earliest, --to-latest, --to-offset, --to-datetime is needed/);
  r = await sluice(['group', 'reset-offsets', 'billing', '--topic', 'orders', '--to-earliest', '--to-latest', ...bs]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /only one of/);
  r = await sluice(['group', 'reset-offsets', 'billing', '--to-earliest', ...bs]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /--topic is required/);
  r = await sluice(['group', 'reset-offsets', 'billing', '--topic', 'orders', '--to-datetime', 'yesterday', ...bs]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /--to-datetime wants an ISO 8601 time/);
  r = await sluice(['group', 'frobnicate', ...bs]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /unknown subcommand "frobnicate"/);

  // A member joins: describe shows it, reset and delete are refused.
  const conn = await Connection.connect(broker.host, broker.port, { clientId: 'raw-member' });
  t.after(() => conn.close());
  const join: ConsumerGroupHeartbeatRequest = {
    groupId: 'billing',
    memberId: '',
    memberEpoch: 0,
    rebalanceTimeoutMs: 30_000,
    sessionTimeoutMs: 30_000,
    subscribedTopicNames: ['orders', 'other'],
    subscribedTopicRegex: null,
    assignor: null,
    ownedPartitions: [],
  };
  const hb = (await conn.send<ConsumerGroupHeartbeatResponse>(ApiKey.CONSUMER_GROUP_HEARTBEAT, join)).control;
  assert.equal(hb.errorCode, ErrorCode.NONE);
  r = await sluice(['group', 'list', ...bs]);
  assert.match(r.stdout, /^billing\t\w+\t1$/m);
  r = await sluice(['group', 'describe', 'billing', ...bs]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^Members: 1$/m);
  assert.match(r.stdout, /^MemberId\tClientId\tHost\tEpoch\tAssigned$/m);
  assert.match(r.stdout, new RegExp(`^${hb.memberId}\\traw-member\\t[^\\t]*\\t\\d+\\t`, 'm'));
  // Subscribed topics are listed even without commits.
  assert.match(r.stdout, /^other\t0\t-\t0\t-\t/m);

  r = await sluice(['group', 'reset-offsets', 'billing', '--topic', 'orders', '--to-earliest', ...bs]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /NON_EMPTY_GROUP: group billing has active members/);
  r = await sluice(['group', 'delete', 'billing', ...bs]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /NON_EMPTY_GROUP/);

  // The member leaves; now the group can go.
  const leave = await conn.send<ConsumerGroupHeartbeatResponse>(ApiKey.CONSUMER_GROUP_HEARTBEAT, { ...join, memberId: hb.memberId, memberEpoch: -1 });
  assert.equal(leave.control.errorCode, ErrorCode.NONE);
  r = await sluice(['group', 'delete', 'billing', ...bs]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'Deleted group billing.\n');
  r = await sluice(['group', 'list', ...bs]);
  assert.equal(r.stdout, 'GroupId\tState\tMembers\n');
  r = await sluice(['group', 'describe', 'billing', ...bs]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /GROUP_ID_NOT_FOUND: group billing/);
});

test('topic alter --partitions', async (t) => {
  const { bs } = await setup(t);
  assert.equal((await sluice(['topic', 'create', 'grow', ...bs])).code, 0);
  let r = await sluice(['topic', 'alter', 'grow', '--partitions', '4', ...bs]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'Topic grow now has 4 partitions.\n');
  r = await sluice(['topic', 'describe', 'grow', ...bs]);
  assert.match(r.stdout, /^Topic: grow\tPartitions: 4\tReplicationFactor: 1$/m);
  r = await sluice(['topic', 'alter', 'grow', '--partitions', '2', ...bs]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /INVALID_PARTITIONS/);
  r = await sluice(['topic', 'alter', 'grow', ...bs]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /nothing to change: give --partitions, --config or --delete-config/);
});

test('dlq list and replay', async (t) => {
  const { broker, admin, bs } = await setup(t);
  await admin.createTopics([{ topic: 'orders', partitions: 2 }, { topic: 'billing.orders.dlq', partitions: 1 }]);
  const dead = (i: number, reason: string, extra: Record<string, string> = {}) => ({
    topic: 'billing.orders.dlq',
    key: i === 2 ? null : `k${i}`,
    value: `v${i}`,
    headers: {
      'trace-id': `trace-${i}`,
      'sluice-attempt': '4',
      'sluice-original-topic': 'orders',
      'sluice-original-partition': String(i % 2),
      'sluice-original-offset': String(100 + i),
      'sluice-first-failure-ms': '1700000000000',
      'sluice-failure-reason': reason,
      ...extra,
    },
  });
  await produce(broker.bootstrap, [dead(0, 'boom'), dead(1, 'bad\tinput\nline two'), dead(2, 'timeout', { 'tenant': 'acme' })]);

  let r = await sluice(['dlq', 'list', '--group', 'billing', '--topic', 'orders', ...bs]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(
    r.stdout,
    [
      '0:0\t4\torders\t0\t100\tboom\tk0\tv0',
      '0:1\t4\torders\t1\t101\tbad\\tinput\\nline two\tk1\tv1',
      '0:2\t4\torders\t0\t102\ttimeout\tnull\tv2',
    ].join('\n') + '\n',
  );
  assert.match(r.stderr, /Listed 3 messages of billing\.orders\.dlq/);
  r = await sluice(['dlq', 'list', '--group', 'billing', '--topic', 'orders', '--max-messages', '1', ...bs]);
  assert.equal(r.stdout.split('\n').length, 2);

  // Replay two of them by offset, then check what arrived on the original topic.
  r = await sluice(['dlq', 'replay', '--group', 'billing', '--topic', 'orders', '--offset', '0', '--offset', '0:2', ...bs]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'Replayed 2 messages from billing.orders.dlq.\n');
  let replayed = await readAll(admin, broker.bootstrap, 'orders');
  assert.deepEqual(replayed.map((m) => m.value!.toString()).sort(), ['v0', 'v2']);
  const m0 = replayed.find((m) => m.value!.toString() === 'v0')!;
  assert.equal(m0.key!.toString(), 'k0');
  assert.deepEqual(m0.headers.map((h) => h.key), ['trace-id', 'sluice-replayed-from']);
  assert.equal(header(m0, 'trace-id'), 'trace-0');
  assert.equal(header(m0, 'sluice-replayed-from'), 'billing.orders.dlq:0:0');
  const m2 = replayed.find((m) => m.value!.toString() === 'v2')!;
  assert.equal(m2.key, null);
  assert.deepEqual(m2.headers.map((h) => [h.key, Buffer.from(h.value!).toString()]), [['trace-id', 'trace-2'], ['tenant', 'acme'], ['sluice-replayed-from', 'billing.orders.dlq:0:2']]);

  // --all replays everything; the DLQ itself is untouched.
  r = await sluice(['dlq', 'replay', '--group', 'billing', '--topic', 'orders', '--all', ...bs]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'Replayed 3 messages from billing.orders.dlq.\n');
  replayed = await readAll(admin, broker.bootstrap, 'orders');
  assert.equal(replayed.length, 5);
  assert.equal(await admin.listOffsets('billing.orders.dlq', 0, 'latest'), 3);

  // Offsets that are not in the DLQ, and usage errors.
  r = await sluice(['dlq', 'replay', '--group', 'billing', '--topic', 'orders', '--offset', '7', ...bs]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /billing\.orders\.dlq has no message at 0:7/);
  assert.equal(r.stdout, 'Replayed 0 messages from billing.orders.dlq.\n');
  r = await sluice(['dlq', 'replay', '--group', 'billing', '--topic', 'orders', ...bs]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /give --all or one or more --offset/);
  r = await sluice(['dlq', 'replay', '--group', 'billing', '--topic', 'orders', '--offset', 'x', ...bs]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /--offset wants N or PARTITION:N/);
  r = await sluice(['dlq', 'list', '--topic', 'orders', ...bs]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /--group and --topic are required/);
  r = await sluice(['dlq', 'list', '--group', 'nobody', '--topic', 'orders', ...bs]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /UNKNOWN_TOPIC_OR_PARTITION: topic nobody\.orders\.dlq/);
  r = await sluice(['dlq', '--help']);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /DLQ_PARTITION:DLQ_OFFSET {2}ATTEMPTS {2}ORIGINAL_TOPIC/);
});

test('dlq replay in a multi-partition DLQ needs PARTITION:OFFSET; a message without its original topic fails', async (t) => {
  const { broker, admin, bs } = await setup(t);
  await admin.createTopics([{ topic: 'orders', partitions: 1 }, { topic: 'g.orders.dlq', partitions: 2 }]);
  await produce(broker.bootstrap, [
    { topic: 'g.orders.dlq', partition: 1, key: 'a', value: 'no-origin', headers: { 'sluice-attempt': '2' } },
    { topic: 'g.orders.dlq', partition: 1, key: 'b', value: 'ok', headers: { 'sluice-original-topic': 'orders' } },
  ]);
  let r = await sluice(['dlq', 'replay', '--group', 'g', '--topic', 'orders', '--offset', '0', ...bs]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /g\.orders\.dlq has 2 partitions: give --offset PARTITION:0/);
  r = await sluice(['dlq', 'replay', '--group', 'g', '--topic', 'orders', '--all', ...bs]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /g\.orders\.dlq message 1:0 has no sluice-original-topic header; not replayed/);
  assert.equal(r.stdout, 'Replayed 1 message from g.orders.dlq.\n');
  r = await sluice(['dlq', 'list', '--group', 'g', '--topic', 'orders', ...bs]);
  assert.equal(r.stdout, '1:0\t2\t-\t-\t-\t-\ta\tno-origin\n1:1\t-\torders\t-\t-\t-\tb\tok\n');
});

test('consume --group: resumes where the group left off, commits exactly what it printed', async (t) => {
  const { broker, admin, bs } = await setup(t);
  await admin.createTopics([{ topic: 'events', partitions: 2 }]);
  await produce(broker.bootstrap, Array.from({ length: 10 }, (_, i) => ({ topic: 'events', partition: i % 2, value: `e${i}` })));

  let r = await sluice(['consume', 'events', '--group', 'cg', '--from-beginning', '--max-messages', '3', '--print-offset', ...bs]);
  assert.equal(r.code, 0, r.stderr);
  const first = r.stdout.trim().split('\n');
  assert.equal(first.length, 3);
  // The group committed the next offset after each printed message, per partition, nothing more.
  const printedNext = new Map<number, number>();
  for (const line of first) {
    const [p, o] = line.split('\t')[0]!.split(':').map(Number);
    printedNext.set(p!, Math.max(printedNext.get(p!) ?? 0, o! + 1));
  }
  // (A partition with nothing printed may have its start, 0, committed, or nothing.)
  const committed = await admin.fetchOffsets('cg', ['events']);
  for (const c of committed) {
    if (printedNext.has(c.partition)) assert.equal(c.offset, printedNext.get(c.partition), `partition ${c.partition}`);
    else assert.ok(c.offset === 0 || c.offset === -1, `partition ${c.partition}: ${c.offset}`);
  }

  // The second run reads the rest, no duplicates; --from-beginning does not override commits.
  r = await sluice(['consume', 'events', '--group', 'cg', '--from-beginning', '--max-messages', '7', '--idle-timeout-ms', '15000', '--print-offset', ...bs]);
  assert.equal(r.code, 0, r.stderr);
  const second = r.stdout.trim().split('\n');
  assert.equal(second.length, 7, r.stdout);
  const values = [...first, ...second].map((l) => l.split('\t')[1]).sort();
  assert.deepEqual(values, Array.from({ length: 10 }, (_, i) => `e${i}`).sort());

  // Both runs left the group; everything is committed.
  r = await sluice(['group', 'describe', 'cg', ...bs]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /State: empty/);
  assert.match(r.stdout, /^events\t0\t5\t5\t0\t-$/m);
  assert.match(r.stdout, /^events\t1\t5\t5\t0\t-$/m);

  // A new group without --from-beginning starts at the end: nothing to print.
  r = await sluice(['consume', 'events', '--group', 'fresh', '--idle-timeout-ms', '3000', ...bs]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, '');
});

test('consume --group --delivery at-most-once: the batch is committed before printing, nothing after', async (t) => {
  const { broker, admin, bs } = await setup(t);
  await admin.createTopics([{ topic: 'amo', partitions: 1 }]);
  await produce(broker.bootstrap, Array.from({ length: 6 }, (_, i) => ({ topic: 'amo', partition: 0, value: `m${i}` })));
  // All six arrive in one batch, committed before two are printed: the other four are skipped
  // for the group (at-least-once would commit 2, what was printed).
  let r = await sluice(['consume', 'amo', '--group', 'amo-g', '--delivery', 'at-most-once', '--from-beginning', '--max-messages', '2', ...bs]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'm0\nm1\n');
  assert.deepEqual((await admin.fetchOffsets('amo-g', ['amo'])).map((c) => c.offset), [6]);
  r = await sluice(['consume', 'amo', '--group', 'amo-l', '--delivery', 'at-least-once', '--from-beginning', '--max-messages', '2', ...bs]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual((await admin.fetchOffsets('amo-l', ['amo'])).map((c) => c.offset), [2]);
});

test('consume --group: usage errors', async () => {
  let r = await sluice(['consume', 't', '--group', 'g', '--partition', '0']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /--partition, --offset and --from-time cannot be used with --group/);
  r = await sluice(['consume', 't', '--group', 'g', '--offset', '3']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /cannot be used with --group/);
  r = await sluice(['group', '--help']);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /reset-offsets GROUP --topic T/);
});
