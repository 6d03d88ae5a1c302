/**
 * One group, real member processes, a producer running throughout: 3 members split 6
 * partitions 2/2/2; a 4th joins and gets a fair share while the others keep consuming; a
 * member killed with kill -9 loses its partitions to the others after the session timeout;
 * partitions added with Admin.createPartitions are assigned and consumed. At the end every
 * acknowledged message was processed at least once, and no partition was owned by two
 * members at the same time (the killed member's ownership ends at its kill).
 */
import { strict as assert } from 'node:assert';
import { join } from 'node:path';
import { test } from 'node:test';
import { Admin } from '../../client/admin.ts';
import { Producer } from '../../client/producer.ts';
import { startBroker } from '../helpers/broker-process.ts';
import { intervalsOf, Member, outputDir, overlaps, removeOutputDir, sleep, tpo, until } from './members.ts';

const TOPIC = 'orders';
const GROUP = 'billing';
const SESSION_MS = 3000;
/** Pause between two produced messages: ~50 messages/s. */
const PRODUCE_GAP_MS = 20;

test('3 members, a 4th joins, one is killed -9, partitions are added: nothing lost, never two owners', async (t) => {
  const broker = await startBroker();
  const dir = outputDir('rebalance');
  const admin = new Admin({ bootstrap: broker.bootstrap });
  const members: Member[] = [];
  let producer = new Producer({ bootstrap: broker.bootstrap, acks: 'all', profile: 'latency' });
  let producing = true;
  let partitionCount = 6;
  let loop: Promise<void> = Promise.resolve();
  t.after(async () => {
    producing = false;
    await loop.catch(() => {});
    await Promise.all(members.map((m) => m.stop()));
    await producer.close().catch(() => {});
    await admin.close();
    await broker.stop();
    broker.cleanup();
    removeOutputDir(dir);
  });

  await admin.createTopics([{ topic: TOPIC, partitions: 6 }]);
  // value -> partition:offset of every acknowledged message
  const acked = new Map<string, string>();
  let sendFailures = 0;
  loop = (async () => {
    for (let seq = 0; producing; seq++) {
      const value = `m${seq}`;
      try {
        const md = await producer.send({ topic: TOPIC, partition: seq % partitionCount, value });
        acked.set(value, tpo(md.partition, md.offset));
      } catch {
        sendFailures++;
      }
      await sleep(PRODUCE_GAP_MS);
    }
  })();

  const spawn = (name: string): Member => {
    const m = new Member(name, { bootstrap: broker.bootstrap, group: GROUP, topic: TOPIC, out: join(dir, `${name}.out`), sessionMs: SESSION_MS, commitMs: 500 });
    members.push(m);
    return m;
  };
  const describe = (): string => members.map((m) => `${m.name}${m.running ? '' : '(dead)'}=[${m.owned().join(',')}]`).join(' ');
  const live = (): Member[] => members.filter((m) => m.running);
  /** The live members' last OWN sets are disjoint and cover 0..n-1, with sizes as fair as possible. */
  const balanced = (n: number): boolean => {
    const sets = live().map((m) => m.owned());
    const all = sets.flat().sort((x, y) => x - y);
    if (all.length !== n || all.some((p, i) => p !== i)) return false;
    const lo = Math.floor(n / sets.length);
    return sets.every((s) => s.length === lo || s.length === lo + 1);
  };

  // -- 3 members: 2 partitions each
  const [a, b, c] = [spawn('a'), spawn('b'), spawn('c')];
  await until(() => balanced(6), () => `3 members with 2 partitions each: ${describe()}`, 30_000);
  for (const m of [a, b, c]) assert.equal(m.owned().length, 2, describe());

  // -- a 4th joins: a fair share (1 or 2) while the others keep consuming
  const d = spawn('d');
  await until(() => d.output().start !== null, 'the 4th member to start', 20_000);
  const joinAt = d.output().start!;
  const countsAtJoin = [a, b, c].map((m) => m.output().processed.length);
  await until(() => balanced(6) && d.owned().length > 0, () => `a stable assignment over 4 members: ${describe()}`, 20_000);
  const stableAt = Math.max(...members.map((m) => m.output().own.at(-1)!.at));
  t.diagnostic(`4th member: join (first poll) to stable assignment ${stableAt - joinAt} ms`);
  console.log(`[group] 4th member join -> stable assignment: ${stableAt - joinAt} ms (${describe()})`);
  assert.ok([1, 2].includes(d.owned().length), describe());
  // The others went on consuming during the rebalance (at least 1 s of it is observed).
  await sleep(Math.max(0, joinAt + 1500 - Date.now()));
  const countsAfter = [a, b, c].map((m) => m.output().processed.length);
  for (let i = 0; i < 3; i++) assert.ok(countsAfter[i]! > countsAtJoin[i]!, `member ${'abc'[i]} kept consuming: ${countsAtJoin} -> ${countsAfter}`);
  // The 4th consumes what it owns.
  await until(() => d.output().processed.length > 0, 'the 4th member to process messages', 10_000);

  // -- kill -9 a member that owns partitions: after the session timeout the others take them over
  const victim = [a, b, c].find((m) => m.owned().length === 2) ?? a;
  const victimParts = victim.owned();
  const victimMax = new Map(victimParts.map((p) => [p, Math.max(-1, ...victim.output().processed.filter((x) => x.partition === p).map((x) => x.offset))]));
  await victim.kill();
  const killAt = victim.killedAtMs!;
  // Taken over = another member processed a message of it beyond what the victim had processed.
  const takenOver = (): boolean =>
    victimParts.every((p) => live().some((m) => m.output().processed.some((x) => x.partition === p && x.offset > victimMax.get(p)!)));
  await until(takenOver, () => `the killed member's partitions ${victimParts} consumed again: ${describe()}`, SESSION_MS + 12_000);
  const takenAt = Date.now();
  t.diagnostic(`kill -9 to the dead member's partitions consumed again: ${takenAt - killAt} ms (session timeout ${SESSION_MS} ms)`);
  console.log(`[group] kill -9 -> partitions ${victimParts} consumed again: ${takenAt - killAt} ms (session timeout ${SESSION_MS} ms)`);
  assert.ok(takenAt - killAt >= SESSION_MS - 1200, `taken over only after the session timeout (${takenAt - killAt} ms)`);
  await until(() => balanced(6), () => `balanced over 3 live members: ${describe()}`, 15_000);

  // -- add partitions: they get assigned and consumed
  await admin.createPartitions(TOPIC, 8);
  const old = producer;
  producer = new Producer({ bootstrap: broker.bootstrap, acks: 'all', profile: 'latency' });
  partitionCount = 8;
  const addedAt = Date.now();
  const consumedNew = (): boolean => [6, 7].every((p) => live().some((m) => m.output().processed.some((x) => x.partition === p)));
  await until(() => balanced(8) && consumedNew(), () => `partitions 6 and 7 assigned and consumed: ${describe()}`, 20_000);
  console.log(`[group] createPartitions 6 -> 8: new partitions consumed after ${Date.now() - addedAt} ms (${describe()})`);
  await old.close();

  // -- stop producing; everything acknowledged is processed
  producing = false;
  await loop;
  const processedKeys = (): Set<string> => new Set(members.flatMap((m) => m.output().processed.map((x) => tpo(x.partition, x.offset))));
  await until(() => { const s = processedKeys(); return [...acked.values()].every((k) => s.has(k)); },
    () => `every acknowledged message processed (${[...acked.values()].filter((k) => !processedKeys().has(k)).length} missing)`, 20_000);
  await Promise.all(live().map((m) => m.stop()));

  const outputs = members.map((m) => ({ m, o: m.output() }));
  for (const { m, o } of outputs) assert.deepEqual(o.errors, [], `${m.name} failed: ${o.errors.join('\n')}\n${m.log()}`);
  const all = outputs.flatMap(({ o }) => o.processed);
  // The value at a partition:offset is always the one the producer was acknowledged for.
  const byKey = new Map([...acked].map(([v, k]) => [k, v]));
  for (const x of all) {
    const v = byKey.get(tpo(x.partition, x.offset));
    if (v !== undefined) assert.equal(x.value, v, `value at ${x.partition}:${x.offset}`);
  }
  const distinct = new Set(all.map((x) => tpo(x.partition, x.offset)));
  const missing = [...acked.values()].filter((k) => !distinct.has(k));
  assert.deepEqual(missing, [], 'every acknowledged message was processed at least once');
  const duplicates = all.length - distinct.size;
  console.log(`[group] produced+acked ${acked.size} (send failures ${sendFailures}), processed ${all.length} lines, duplicates ${duplicates}`);
  t.diagnostic(`acked ${acked.size}, processed ${all.length}, duplicates ${duplicates}`);

  // Never two owners: the intervals of one partition (live members, and the killed one up to its kill) do not overlap.
  const intervals = outputs.flatMap(({ m, o }) => intervalsOf(m.name, o.own, m.killedAtMs));
  const bad = overlaps(intervals);
  assert.deepEqual(bad.map(([x, y]) => `p${x.partition}: ${x.member} [${x.from}, ${x.to}) vs ${y.member} [${y.from}, ${y.to})`), [], 'overlapping ownership');
  for (const { m, o } of outputs) if (m !== victim) assert.ok(o.closed, `${m.name} closed cleanly`);
});
