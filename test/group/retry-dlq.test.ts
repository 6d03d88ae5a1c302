/**
 * Retry topics and the DLQ end to end, in a member process: a message the handler always
 * refuses is handled 3 times with delays [1000, 2000] between attempts, lands in
 * `<group>.<topic>.dlq` with its key, value and own headers plus the retry headers; the other
 * messages of the main topic (same partition included) are not held up by the waiting retry;
 * `sluice dlq replay --all` puts it back on the original topic.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { Admin } from '../../client/admin.ts';
import { Consumer, type Message } from '../../client/consumer.ts';
import { Producer } from '../../client/producer.ts';
import { readRetryInfo } from '../../client/group/retry-policy.ts';
import { repoRoot, startBroker } from '../helpers/broker-process.ts';
import { Member, outputDir, removeOutputDir, sleep, until } from './members.ts';

const TOPIC = 'jobs';
const GROUP = 'workers';
const DELAYS_MS = [1000, 2000];
/** Slack on top of a configured delay: this is a shared 2-core machine. */
const DELAY_SLACK_MS = 1500;
/** A message of the main topic produced while a retry waits must be handled within this. */
const MAIN_LATENCY_MS_MAX = 900;

const header = (m: Message, key: string): string | undefined => {
  const h = m.headers.filter((x) => x.key === key).at(-1);
  return h?.value ? Buffer.from(h.value).toString('utf8') : undefined;
};

/** Everything in topic/partition from offset `from` on, until `n` messages arrived. */
async function readTopic(bootstrap: string, topic: string, partition: number, from: number, n: number): Promise<Message[]> {
  const c = new Consumer({ bootstrap, maxWaitMs: 100 });
  const got: Message[] = [];
  try {
    await c.assign([{ topic, partition, offset: from }]);
    await until(async () => { got.push(...(await c.poll(200))); return got.length >= n; }, `${n} message(s) in ${topic}/${partition} from ${from}`, 15_000, 0);
    return got;
  } finally {
    await c.close();
  }
}

test('retry delays are kept, the main topic is not held up, the DLQ keeps everything, replay works', async (t) => {
  const broker = await startBroker();
  const dir = outputDir('retry');
  const admin = new Admin({ bootstrap: broker.bootstrap });
  const producer = new Producer({ bootstrap: broker.bootstrap, acks: 'all', profile: 'latency' });
  let member: Member | null = null;
  t.after(async () => {
    await member?.stop();
    await producer.close();
    await admin.close();
    await broker.stop();
    broker.cleanup();
    removeOutputDir(dir);
  });
  await admin.createTopics([{ topic: TOPIC, partitions: 2 }]);
  member = new Member('w', { bootstrap: broker.bootstrap, group: GROUP, topic: TOPIC, out: join(dir, 'w.out'), retryDelaysMs: DELAYS_MS, failValue: 'poison' });
  const w = member;
  // Owned: both partitions of the main topic and of each retry topic (the runner subscribes to them).
  await until(() => (w.output().own.at(-1)?.raw.split(',').length ?? 0) === 2 * (1 + DELAYS_MS.length), () => `the member to own main + retry partitions (${w.output().own.at(-1)?.raw})`, 30_000);

  const poison = await producer.send({ topic: TOPIC, partition: 0, key: 'pk', value: 'poison', headers: [{ key: 'trace', value: 't-42' }, { key: 'origin', value: 'test' }] });
  // Normal messages on both partitions (partition 0 too, behind the poison) while the retries wait.
  const sentAt = new Map<string, number>();
  for (let i = 0; i < 30; i++) {
    const value = `ok${i}`;
    sentAt.set(value, Date.now());
    await producer.send({ topic: TOPIC, partition: i % 2, value });
    await sleep(100);
  }
  const tries = () => w.output().tries;
  await until(() => tries().filter((x) => x.value === 'poison').length === 1 + DELAYS_MS.length, () => `all attempts of the poison message (${tries().filter((x) => x.value === 'poison').length})`, 15_000);

  const attempts = tries().filter((x) => x.value === 'poison');
  assert.deepEqual(attempts.map((x) => [x.topic, x.attempt]), [[TOPIC, 0], [`${GROUP}.${TOPIC}.retry-1`, 1], [`${GROUP}.${TOPIC}.retry-2`, 2]]);
  const gaps = attempts.slice(1).map((x, i) => x.at - attempts[i]!.at);
  console.log(`[group] retry: attempt gaps ${gaps.join(', ')} ms for delays ${DELAYS_MS.join(', ')} ms`);
  for (let i = 0; i < DELAYS_MS.length; i++) {
    assert.ok(gaps[i]! >= DELAYS_MS[i]!, `attempt ${i + 2} came ${gaps[i]} ms after the previous one, before the ${DELAYS_MS[i]} ms delay`);
    assert.ok(gaps[i]! <= DELAYS_MS[i]! + DELAY_SLACK_MS, `attempt ${i + 2} came ${gaps[i]} ms after the previous one (delay ${DELAYS_MS[i]} ms + ${DELAY_SLACK_MS} ms slack)`);
  }

  // The normal messages went through while the retries waited, each handled soon after it was produced.
  await until(() => [...sentAt.keys()].every((v) => tries().some((x) => x.value === v)), 'every normal message handled', 10_000);
  const latencies = [...sentAt].map(([v, at]) => tries().find((x) => x.value === v)!.at - at);
  const maxLatency = Math.max(...latencies);
  console.log(`[group] retry: main-topic latency while retries wait: max ${maxLatency} ms over ${latencies.length} messages`);
  assert.ok(maxLatency <= MAIN_LATENCY_MS_MAX, `main-topic messages were held up: max latency ${maxLatency} ms`);
  const during = [...sentAt].filter(([, at]) => at > attempts[0]!.at && at < attempts.at(-1)!.at - 500).map(([v]) => v);
  assert.ok(during.length > 5, 'normal messages were produced while the retries waited');
  for (const v of during) assert.ok(tries().find((x) => x.value === v)!.at < attempts.at(-1)!.at, `${v} handled before the last retry was due`);

  // The retry topics got it as a delayed message (SPEC §8.8): delivery time = due time.
  for (let n = 1; n <= DELAYS_MS.length; n++) {
    const [retried] = await readTopic(broker.bootstrap, `${GROUP}.${TOPIC}.retry-${n}`, 0, 0, 1);
    assert.ok(retried);
    assert.equal(retried.value?.toString(), 'poison');
    const due = header(retried, 'sluice-due-ms');
    assert.ok(due !== undefined && Number(due) > attempts[n - 1]!.at - 1000, `retry-${n} due ${due}`);
    assert.equal(header(retried, 'sluice-deliver-at-ms'), due, `retry-${n}: sluice-deliver-at-ms is the due time`);
    assert.equal(retried.headers.filter((h) => h.key === 'sluice-deliver-at-ms').length, 1, 'one delivery time, not the previous hop\'s as well');
  }

  // The DLQ has it, intact.
  const [dead] = await readTopic(broker.bootstrap, `${GROUP}.${TOPIC}.dlq`, 0, 0, 1);
  assert.ok(dead);
  assert.equal(dead.key?.toString(), 'pk');
  assert.equal(dead.value?.toString(), 'poison');
  assert.deepEqual(dead.headers.filter((h) => !h.key.startsWith('sluice-')).map((h) => [h.key, Buffer.from(h.value!).toString()]), [['trace', 't-42'], ['origin', 'test']]);
  const info = readRetryInfo(dead.headers);
  assert.ok(info, 'retry headers present');
  assert.equal(info.attempt, 1 + DELAYS_MS.length);
  assert.equal(info.originalTopic, TOPIC);
  assert.equal(info.originalPartition, 0);
  assert.equal(info.originalOffset, poison.offset);
  assert.match(info.reason ?? '', /refusing poison \(attempt 2\)/);
  assert.ok(info.firstFailureMs >= attempts[0]!.at && info.firstFailureMs <= attempts[1]!.at, `first failure ${info.firstFailureMs} between attempts 1 and 2`);
  assert.equal(info.dueMs, null, 'no due time in the DLQ');
  assert.equal(header(dead, 'sluice-attempt'), '3');
  assert.equal(header(dead, 'sluice-deliver-at-ms'), undefined, 'the DLQ gets no delivery time');

  // Replay: back on the original topic, with its own headers and where it came from.
  const endBefore = await Promise.all([0, 1].map((q) => admin.listOffsets(TOPIC, q, 'latest')));
  const cli = spawnSync(process.execPath, [join(repoRoot, 'bin/sluice.mjs'), 'dlq', 'replay', '--group', GROUP, '--topic', TOPIC, '--all', '--bootstrap', broker.bootstrap], { cwd: repoRoot, encoding: 'utf8', timeout: 30_000 });
  assert.equal(cli.status, 0, `dlq replay failed: ${cli.stdout}\n${cli.stderr}`);
  assert.match(cli.stdout, /Replayed 1 message/);
  // Keyed 'pk': the partition is the key's; find it on either partition.
  const endAfter = await Promise.all([0, 1].map((q) => admin.listOffsets(TOPIC, q, 'latest')));
  const p = endAfter[0]! > endBefore[0]! ? 0 : 1;
  assert.equal(endAfter[p]! - endBefore[p]!, 1, `one message replayed to ${TOPIC}/${p}`);
  const [replayed] = await readTopic(broker.bootstrap, TOPIC, p, endBefore[p]!, 1);
  assert.ok(replayed);
  assert.equal(replayed.value?.toString(), 'poison');
  assert.equal(replayed.key?.toString(), 'pk');
  assert.equal(header(replayed, 'trace'), 't-42');
  assert.equal(header(replayed, 'sluice-replayed-from'), `${GROUP}.${TOPIC}.dlq:0:${dead.offset}`);
  assert.equal(header(replayed, 'sluice-attempt'), undefined, 'retry headers are not replayed');
  // And the member handles it again as a new message of the main topic.
  await until(() => tries().some((x) => x.value === 'poison' && x.topic === TOPIC && x.offset === replayed.offset && x.partition === p), 'the member to handle the replayed message', 10_000);
  assert.deepEqual(w.output().errors, [], w.log());
});
