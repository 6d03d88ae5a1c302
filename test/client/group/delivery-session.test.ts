/**
 * DeliverySession (client/group/delivery-session.ts) on a real fetch engine and broker, without
 * a group: what is handed out bounds what counts as consumed, records of inactive partitions
 * are dropped and their partition rewound, and a revocation waits for the application.
 */
import { strict as assert } from 'node:assert';
import { after, before, test } from 'node:test';
import { Admin } from '../../../client/admin.ts';
import { Cluster } from '../../../client/cluster.ts';
import { FetchEngine, resolveFetchSettings, type Message } from '../../../client/fetch-engine.ts';
import { DeliverySession } from '../../../client/group/delivery-session.ts';
import { Producer } from '../../../client/producer.ts';
import { startBroker, type BrokerProcess } from '../../helpers/broker-process.ts';

let broker: BrokerProcess;

before(async () => {
  broker = await startBroker();
  const admin = new Admin({ bootstrap: broker.bootstrap });
  const producer = new Producer({ bootstrap: broker.bootstrap, acks: 'all', profile: 'latency' });
  try {
    await admin.createTopics([{ topic: 'ds', partitions: 2 }]);
    await producer.sendBatch(Array.from({ length: 20 }, (_, i) => ({ topic: 'ds', partition: i % 2, value: `v${i}` })));
  } finally {
    await producer.close();
    await admin.close();
  }
});

after(async () => {
  await broker?.stop();
  broker?.cleanup();
});

const TPS = [{ topic: 'ds', partition: 0 }, { topic: 'ds', partition: 1 }];

/** A session over a fresh engine reading both partitions from the start; `owned` is the membership's view. */
async function open(): Promise<{ engine: FetchEngine; session: DeliverySession; owned: Set<number>; close: () => void }> {
  const cluster = new Cluster({ bootstrap: broker.bootstrap });
  const engine = new FetchEngine(cluster, resolveFetchSettings({ autoOffsetReset: 'earliest', maxWaitMs: 100 }));
  const owned = new Set([0, 1]);
  const session = new DeliverySession(engine, 'at-least-once', (topic, partition) => topic === 'ds' && owned.has(partition));
  await engine.addPartitions(TPS);
  return { engine, session, owned, close: () => { engine.close(); cluster.close(); } };
}

/** Polls until records of both partitions arrived (bounded). */
async function pollBoth(engine: FetchEngine): Promise<Message[]> {
  const out: Message[] = [];
  const deadline = Date.now() + 10_000;
  while (new Set(out.map((m) => m.partition)).size < 2) {
    if (Date.now() > deadline) throw new Error('no records of both partitions within 10 s');
    out.push(...(await engine.poll(100)));
  }
  return out;
}

test('a partition is active only once started; consumed never passes what was handed out', async () => {
  const { engine, session, close } = await open();
  try {
    assert.equal(session.isActive('ds', 0), false, 'no start offset yet');
    session.start(TPS);
    assert.equal(session.isActive('ds', 0), true);
    assert.deepEqual(session.consumedOffsets(TPS), [{ topic: 'ds', partition: 0, offset: 0 }, { topic: 'ds', partition: 1, offset: 0 }]);

    const msgs = (await pollBoth(engine)).filter((m) => m.partition === 0).slice(0, 3);
    session.handOut(msgs);
    assert.throws(() => session.markConsumed('ds', 0, 4), /at-least-once violated/);
    session.markConsumed('ds', 0, 2);
    assert.equal(session.consumedOffsets(TPS)[0]!.offset, 2);
    session.markHeldConsumed();
    assert.equal(session.consumedOffsets(TPS)[0]!.offset, 3, 'everything handed out counts once the batch is done');

    // An explicit seek forward moves what counts as handed out; rewind goes back to the first unprocessed record.
    session.seek('ds', 0, 7);
    session.markConsumed('ds', 0, 7);
    session.rewind([{ ...msgs[2]!, offset: 5 }, { ...msgs[2]!, offset: 6 }]);
    assert.equal(engine.position('ds', 0), 5);
  } finally {
    close();
  }
});

test('records of a partition not active are dropped and its engine position rewound to the first of them', async () => {
  const { engine, session, owned, close } = await open();
  try {
    session.start(TPS);
    owned.delete(1); // the membership no longer owns partition 1, the engine still reads it
    const msgs = await pollBoth(engine);
    const first1 = msgs.find((m) => m.partition === 1)!;
    const kept = session.keepActive(msgs);
    assert.ok(kept.length > 0 && kept.every((m) => m.partition === 0));
    assert.equal(engine.position('ds', 1), first1.offset, 'partition 1 will be fetched again from its first dropped record');
  } finally {
    close();
  }
});

test('a revocation waits until the application consumed what it holds, or settles it; a loss releases it', async () => {
  const { engine, session, close } = await open();
  try {
    session.start(TPS);
    const msgs = (await pollBoth(engine)).filter((m) => m.partition === 0);
    session.handOut(msgs);
    const entries = session.beginRevoke([TPS[0]!]);
    assert.equal(engine.isAssigned('ds', 0), false, 'fetching stops at once');
    assert.equal(session.isActive('ds', 0), false);
    assert.equal(session.revokedConsumed(entries), false, 'the application still holds records of it');

    let released = false;
    const wait = session.waitProgress(() => session.revokedConsumed(entries), 30_000).then(() => { released = true; });
    session.markConsumed('ds', 0, msgs[0]!.offset + 1);
    await new Promise((r) => setImmediate(r));
    assert.equal(released, false, 'one of several records consumed is not enough');
    session.markConsumed('ds', 0, msgs.at(-1)!.offset + 1);
    await wait;
    assert.equal(session.consumedOffsets([TPS[0]!])[0]!.offset, msgs.at(-1)!.offset + 1);

    // Partition 1: the application settles it (skips the rest of its batch) instead.
    session.handOut([{ topic: 'ds', partition: 1, offset: 0, timestamp: 0, key: null, value: null, headers: [] }]);
    const entries1 = session.beginRevoke([TPS[1]!]);
    assert.equal(session.revokedConsumed(entries1), false);
    const wait1 = session.waitProgress(() => session.revokedConsumed(entries1), 30_000);
    session.settleRevoking('ds', 1);
    await wait1;

    // A loss releases every waiter at once, whatever the application does.
    session.forget([TPS[0]!]);
    await engine.addPartitions([{ topic: 'ds', partition: 0, offset: 0 }]);
    session.start([TPS[0]!]);
    session.handOut([{ topic: 'ds', partition: 0, offset: 0, timestamp: 0, key: null, value: null, headers: [] }]);
    const entries2 = session.beginRevoke([TPS[0]!]);
    const t0 = Date.now();
    const wait2 = session.waitProgress(() => session.revokedConsumed(entries2), 30_000);
    session.lose([TPS[0]!]);
    await wait2;
    assert.ok(Date.now() - t0 < 10_000, 'released by the loss, not by the timeout');
  } finally {
    close();
  }
});
