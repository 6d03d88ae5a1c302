/**
 * Committed offsets survive broker restarts, clean (SIGTERM) and unclean (SIGKILL): after each
 * restart the committed offsets read back the same, the running member rejoins and goes on
 * from them (nothing it had committed is processed again), and a fresh member of the group
 * started afterwards sees nothing that was committed before it started.
 */
import { strict as assert } from 'node:assert';
import { join } from 'node:path';
import { test } from 'node:test';
import { Admin } from '../../client/admin.ts';
import { Producer } from '../../client/producer.ts';
import { startBroker, type BrokerProcess } from '../helpers/broker-process.ts';
import { Member, outputDir, type Processed, removeOutputDir, until } from './members.ts';

const TOPIC = 'ledger';
const GROUP = 'auditors';
const PARTITIONS = 3;
const BATCH = 30;

test('committed offsets survive SIGTERM and SIGKILL restarts; members resume where they committed', async (t) => {
  let broker: BrokerProcess = await startBroker();
  const dataDir = broker.dataDir;
  const port = broker.port;
  const bootstrap = broker.bootstrap;
  const dir = outputDir('restart');
  const members: Member[] = [];
  t.after(async () => {
    await Promise.all(members.map((m) => m.stop()));
    await broker.stop();
    broker.cleanup();
    removeOutputDir(dir);
  });

  const withClients = async <T>(f: (admin: Admin, producer: Producer) => Promise<T>): Promise<T> => {
    const admin = new Admin({ bootstrap });
    const producer = new Producer({ bootstrap, acks: 'all', profile: 'latency' });
    try {
      return await f(admin, producer);
    } finally {
      await producer.close().catch(() => {});
      await admin.close().catch(() => {});
    }
  };
  let seq = 0;
  const produce = (n: number): Promise<void> =>
    withClients(async (_, producer) => {
      await Promise.all(Array.from({ length: n }, () => { const i = seq++; return producer.send({ topic: TOPIC, partition: i % PARTITIONS, value: `r${i}` }); }));
    });
  const committed = (): Promise<number[]> =>
    withClients(async (admin) => {
      const offs = await admin.fetchOffsets(GROUP, [TOPIC]);
      return Array.from({ length: PARTITIONS }, (_, p) => offs.find((o) => o.partition === p)?.offset ?? -1);
    });
  const logEnd = (): Promise<number[]> =>
    withClients(async (admin) => Promise.all(Array.from({ length: PARTITIONS }, (_, p) => admin.listOffsets(TOPIC, p, 'latest'))));
  /** Waits until the group committed everything in the log; returns those offsets. */
  const fullyCommitted = async (): Promise<number[]> => {
    const end = await logEnd();
    let c: number[] = [];
    await until(async () => (c = await committed()).every((o, p) => o === end[p]), () => `committed ${c} to reach the log end ${end}`, 15_000, 200);
    return c;
  };
  const spawn = (name: string): Member => {
    const m = new Member(name, { bootstrap, group: GROUP, topic: TOPIC, out: join(dir, `${name}.out`), commitMs: 300 });
    members.push(m);
    return m;
  };
  const before = (xs: Processed[], offsets: number[]): Processed[] => xs.filter((x) => x.offset < offsets[x.partition]!);

  await withClients((admin) => admin.createTopics([{ topic: TOPIC, partitions: PARTITIONS }]));
  const m1 = spawn('m1');
  await produce(BATCH);
  await until(() => m1.output().processed.length >= BATCH, 'm1 to process the first batch', 30_000);
  let c = await fullyCommitted();

  for (const how of ['SIGTERM', 'SIGKILL'] as const) {
    const seenBefore = m1.output().processed.length;
    const downAt = Date.now();
    if (how === 'SIGTERM') assert.equal(await broker.stop(), 0, 'clean broker exit');
    else await broker.kill();
    broker = await startBroker({ dataDir, port });
    const restartMs = Date.now() - downAt;
    assert.deepEqual(await committed(), c, `committed offsets after a ${how} restart`);
    await produce(BATCH);
    await until(() => m1.output().processed.length >= seenBefore + BATCH, () => `m1 to process the batch after the ${how} restart (${m1.output().processed.length - seenBefore}/${BATCH})`, 30_000);
    const resumedAt = Date.now();
    const after = m1.output().processed.slice(seenBefore);
    assert.deepEqual(before(after, c), [], `after the ${how} restart m1 re-processed nothing below the committed offsets ${c}`);
    console.log(`[group] broker ${how} restart: down->listening ${restartMs} ms, member consumed the new batch ${resumedAt - downAt} ms after the stop; re-processed after restart: ${after.length - BATCH}`);
    c = await fullyCommitted();
  }

  // A fresh member, after m1 left cleanly, starts at the committed offsets.
  await m1.stop();
  const atHandover = await committed();
  assert.deepEqual(atHandover, c);
  const m2 = spawn('m2');
  await produce(BATCH);
  await until(() => m2.output().processed.length >= BATCH, () => `m2 to process the last batch (${m2.output().processed.length}/${BATCH})`, 30_000);
  await m2.stop();
  const seen2 = m2.output().processed;
  assert.deepEqual(before(seen2, atHandover), [], `the fresh member saw nothing committed before it started (${atHandover})`);
  assert.equal(seen2.length, BATCH, 'the fresh member processed exactly the new batch');
  // Nothing lost over the whole run: every produced value was processed.
  const values = new Set(members.flatMap((m) => m.output().processed.map((x) => x.value)));
  assert.equal(values.size, seq, 'every produced message was processed');
  for (const m of members) assert.deepEqual(m.output().errors, [], m.log());
});
