/**
 * Delivery modes under kill -9 of a consumer in the middle of a stream (slow processing, so
 * the kill lands with messages fetched, some processed, some not, some committed):
 * - at-least-once: once a new member has finished, nothing is lost (duplicates allowed);
 * - at-most-once: nothing is processed twice (losses allowed).
 * Both groups read the same topic at the same time, on one broker.
 */
import { strict as assert } from 'node:assert';
import { join } from 'node:path';
import { test } from 'node:test';
import { Admin } from '../../client/admin.ts';
import { Producer } from '../../client/producer.ts';
import { startBroker } from '../helpers/broker-process.ts';
import { Member, outputDir, removeOutputDir, tpo, until } from './members.ts';

const TOPIC = 'payments';
const MESSAGES = 80;
const SESSION_MS = 3000;
/** Per message: 80 messages take the first member ~3 s, so the kill lands mid-stream. */
const DELAY_MS = 40;
/** Small batches: at-most-once commits (and can lose) one batch at a time. */
const MAX_POLL_RECORDS = 8;
/** No new processed line for this long: the member has finished its batch (8 x 40 ms). */
const IDLE_MS = 1000;

test('kill -9 mid-stream: at-least-once loses nothing, at-most-once repeats nothing', async (t) => {
  const broker = await startBroker();
  const dir = outputDir('modes');
  const admin = new Admin({ bootstrap: broker.bootstrap });
  const members: Member[] = [];
  t.after(async () => {
    await Promise.all(members.map((m) => m.stop()));
    await admin.close();
    await broker.stop();
    broker.cleanup();
    removeOutputDir(dir);
  });
  await admin.createTopics([{ topic: TOPIC, partitions: 2 }]);
  const producer = new Producer({ bootstrap: broker.bootstrap, acks: 'all', profile: 'latency' });
  const acked = new Set<string>();
  try {
    // One at a time: one record batch each, so maxPollRecords (a soft cap, whole batches are
    // decoded) really bounds what one poll returns.
    for (let i = 0; i < MESSAGES; i++) {
      const md = await producer.send({ topic: TOPIC, partition: i % 2, value: `p${i}` });
      acked.add(tpo(md.partition, md.offset));
    }
  } finally {
    await producer.close();
  }

  const spawn = (name: string, mode: 'at-least-once' | 'at-most-once'): Member => {
    const m = new Member(name, { bootstrap: broker.bootstrap, group: `g-${mode}`, topic: TOPIC, out: join(dir, `${name}.out`), mode, sessionMs: SESSION_MS, commitMs: 500, delayMs: DELAY_MS, maxPollRecords: MAX_POLL_RECORDS });
    members.push(m);
    return m;
  };
  const run = async (mode: 'at-least-once' | 'at-most-once'): Promise<{ first: string[]; second: string[] }> => {
    const first = spawn(`${mode}-1`, mode);
    // Kill once a third is processed: well after the first commits, well before the end.
    await until(() => first.output().processed.length >= MESSAGES / 3, `${mode}: the first member to process a third`, 30_000, 10);
    await first.kill();
    assert.ok(first.output().processed.length < MESSAGES * 0.8, `${mode}: the kill landed mid-stream (${first.output().processed.length} processed)`);
    const second = spawn(`${mode}-2`, mode);
    const keys = (m: Member): string[] => m.output().processed.map((x) => tpo(x.partition, x.offset));
    const firstKeys = keys(first);
    // Finished = the group has committed the end of both partitions (at-least-once commits
    // only what was processed) and the second member has been idle for a while (at-most-once
    // commits a batch before processing it: the last one is still being worked on then).
    let lines = -1;
    let idleSince = Date.now();
    await until(async () => {
      const n = second.output().processed.length;
      if (n !== lines) [lines, idleSince] = [n, Date.now()];
      return Date.now() - idleSince >= IDLE_MS && second.owned().length === 2 &&
        (await admin.fetchOffsets(`g-${mode}`, [TOPIC])).every((o) => o.offset === MESSAGES / 2);
    }, `${mode}: the group to commit the end of both partitions and the second member to go idle`, 30_000, 100);
    await second.stop();
    return { first: firstKeys, second: keys(second) };
  };

  const [alo, amo] = await Promise.all([run('at-least-once'), run('at-most-once')]);

  // at-least-once: the union covers everything; the overlap is the duplicates.
  const aloAll = [...alo.first, ...alo.second];
  const aloDistinct = new Set(aloAll);
  assert.deepEqual([...acked].filter((k) => !aloDistinct.has(k)), [], 'at-least-once lost nothing');
  console.log(`[group] at-least-once, kill -9 after ${alo.first.length} processed: duplicates ${aloAll.length - aloDistinct.size}, lost 0`);

  // at-most-once: no message processed twice; some may be lost (the batch in hand when killed).
  const amoAll = [...amo.first, ...amo.second];
  const amoDistinct = new Set(amoAll);
  assert.equal(amoAll.length, amoDistinct.size, `at-most-once processed nothing twice: ${amoAll.filter((k, i) => amoAll.indexOf(k) !== i)}`);
  const lost = [...acked].filter((k) => !amoDistinct.has(k)).length;
  // What is lost is at most the batch in hand at the kill (committed before it was returned).
  assert.ok(lost <= MAX_POLL_RECORDS, `at-most-once lost ${lost}, more than one batch (${MAX_POLL_RECORDS})`);
  console.log(`[group] at-most-once, kill -9 after ${amo.first.length} processed: duplicates 0, lost ${lost}`);
  for (const m of members) assert.deepEqual(m.output().errors, [], m.log());
});
