/**
 * Publish-subscribe: two groups read one topic independently; each receives every message,
 * whether the group has one member or shares the partitions among two.
 */
import { strict as assert } from 'node:assert';
import { join } from 'node:path';
import { test } from 'node:test';
import { Admin } from '../../client/admin.ts';
import { Producer } from '../../client/producer.ts';
import { startBroker } from '../helpers/broker-process.ts';
import { Member, outputDir, removeOutputDir, tpo, until } from './members.ts';

const TOPIC = 'events';
const MESSAGES = 90;

test('two groups on one topic each receive every message', async (t) => {
  const broker = await startBroker();
  const dir = outputDir('pubsub');
  const admin = new Admin({ bootstrap: broker.bootstrap });
  const producer = new Producer({ bootstrap: broker.bootstrap, acks: 'all', profile: 'latency' });
  const members: Member[] = [];
  t.after(async () => {
    await Promise.all(members.map((m) => m.stop()));
    await producer.close();
    await admin.close();
    await broker.stop();
    broker.cleanup();
    removeOutputDir(dir);
  });
  await admin.createTopics([{ topic: TOPIC, partitions: 3 }]);
  const spawn = (name: string, group: string): Member => {
    const m = new Member(name, { bootstrap: broker.bootstrap, group, topic: TOPIC, out: join(dir, `${name}.out`) });
    members.push(m);
    return m;
  };
  // Half the messages before anyone joins (autoOffsetReset earliest), half while they consume.
  const acked = new Set<string>();
  const produce = async (from: number, n: number): Promise<void> => {
    const mds = await Promise.all(Array.from({ length: n }, (_, i) => producer.send({ topic: TOPIC, key: `k${from + i}`, value: `e${from + i}` })));
    for (const md of mds) acked.add(tpo(md.partition, md.offset));
  };
  await produce(0, MESSAGES / 2);
  const groupA = [spawn('a1', 'ga'), spawn('a2', 'ga')];
  const groupB = [spawn('b1', 'gb')];
  await until(() => groupA.every((m) => m.owned().length > 0) && groupB[0]!.owned().length === 3, 'both groups assigned', 30_000);
  await produce(MESSAGES / 2, MESSAGES / 2);

  const seen = (ms: Member[]): Set<string> => new Set(ms.flatMap((m) => m.output().processed.map((x) => tpo(x.partition, x.offset))));
  const values = (ms: Member[]): Set<string> => new Set(ms.flatMap((m) => m.output().processed.map((x) => x.value)));
  for (const [name, ms] of [['ga', groupA], ['gb', groupB]] as const) {
    await until(() => [...acked].every((k) => seen(ms).has(k)), () => `group ${name} to receive all ${MESSAGES} (has ${seen(ms).size})`, 15_000);
    assert.equal(values(ms).size, MESSAGES, `group ${name} saw every value`);
  }
  // A clean handover (revoke, commit, release) repeats nothing: no message twice within a group.
  for (const [name, ms] of [['ga', groupA], ['gb', groupB]] as const) {
    const lines = ms.flatMap((m) => m.output().processed.map((x) => tpo(x.partition, x.offset)));
    assert.equal(lines.length, new Set(lines).size, `group ${name} processed no message twice`);
  }
  for (const m of members) assert.deepEqual(m.output().errors, [], m.log());
});
