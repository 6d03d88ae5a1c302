/**
 * Consumer isolation against the scripted broker (fake-broker.ts), SPEC §6.7: read_committed
 * drops the records of aborted transactions (from each abortedTransactions entry's firstOffset
 * to the producer's abort marker) and stops at the last stable offset; control batches are
 * never handed out at either level; positions move past everything that was not handed out.
 * A fast-check model test checks random interleavings of transactions against a model.
 */
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import fc from 'fast-check';
import { READ_COMMITTED, READ_UNCOMMITTED } from '../../protocol/apis/fetch.ts';
import { BatchBuilder, buildControlBatch, decodeRecords, isControlAt } from '../../protocol/record-batch.ts';
import { buildReleased, buildReleaseMarker, buildScheduledWrapper, readScheduled } from '../../protocol/delayed-batch.ts';
import { Consumer, type IsolationLevel } from '../../client/consumer.ts';
import { FetchEngine, resolveFetchSettings } from '../../client/fetch-engine.ts';
import { Cluster } from '../../client/cluster.ts';
import { withFake, type FakeBroker } from './fake-broker.ts';

const seqs = new Map<number, number>();

/** A transactional batch of producer `pid` (epoch 0, sequences continuing per producer). */
function txn(pid: number, values: string[]): Uint8Array {
  const b = new BatchBuilder();
  for (const v of values) b.append(null, Buffer.from(v), Date.now());
  const seq = seqs.get(pid) ?? 0;
  seqs.set(pid, seq + values.length);
  return b.finish({ producerId: pid, producerEpoch: 0, baseSequence: seq, transactional: true }).slice();
}

function marker(pid: number, committed: boolean): Uint8Array {
  return buildControlBatch({ producerId: pid, producerEpoch: 0, committed, coordinatorEpoch: 0 }, Date.now());
}

function consumer(broker: FakeBroker, isolation: IsolationLevel): Consumer {
  return new Consumer({ bootstrap: broker.bootstrap, maxWaitMs: 50, isolation });
}

/** Polls until the position reaches `end` (bounded); returns "offset:value" of what came. */
async function readTo(c: Consumer, topic: string, end: number, timeoutMs = 5000): Promise<string[]> {
  const out: string[] = [];
  const deadline = Date.now() + timeoutMs;
  while (c.position(topic, 0) < end) {
    if (Date.now() > deadline) throw new Error(`position ${c.position(topic, 0)} did not reach ${end}; got ${out.join(' ')}`);
    for (const m of await c.poll(100)) out.push(`${m.offset}:${m.value?.toString()}`);
  }
  return out;
}

/** Two producers, one aborted and one committed transaction, and a plain batch. Offsets 0..5. */
function mixedLog(broker: FakeBroker): void {
  broker.appendBatch('t', txn(1, ['a1', 'a2'])); // 0-1, aborted below
  broker.appendBatch('t', txn(2, ['b1'])); // 2, committed below
  broker.appendBatch('t', marker(1, false)); // 3: abort P1
  broker.appendBatch('t', marker(2, true)); // 4: commit P2
  broker.append('t', ['c']); // 5
}

test('read_committed: aborted records are dropped, committed ones kept, control batches never shown, the position passes all', async () => {
  await withFake(async (broker) => {
    mixedLog(broker);
    const c = consumer(broker, 'read_committed');
    try {
      await c.assign([{ topic: 't', partition: 0, offset: 0 }]);
      assert.deepEqual(await readTo(c, 't', 6), ['2:b1', '5:c']);
      assert.equal(c.position('t', 0), 6);
      assert.ok(broker.fetches.length > 0 && broker.fetches.every((f) => f.isolationLevel === READ_COMMITTED), 'every Fetch asks for read_committed');
    } finally {
      await c.close();
    }
  });
});

test('read_uncommitted (the default): aborted records are shown, control batches are not', async () => {
  await withFake(async (broker) => {
    mixedLog(broker);
    const c = new Consumer({ bootstrap: broker.bootstrap, maxWaitMs: 50 });
    try {
      await c.assign([{ topic: 't', partition: 0, offset: 0 }]);
      assert.deepEqual(await readTo(c, 't', 6), ['0:a1', '1:a2', '2:b1', '5:c']);
      assert.ok(broker.fetches.every((f) => f.isolationLevel === READ_UNCOMMITTED));
    } finally {
      await c.close();
    }
  });
});

test('read_committed: interleaved producers, a producer that aborts and then commits a later transaction', async () => {
  await withFake(async (broker) => {
    broker.appendBatch('t', txn(1, ['x1'])); // 0
    broker.appendBatch('t', txn(2, ['y1'])); // 1 aborted
    broker.appendBatch('t', txn(1, ['x2'])); // 2
    broker.appendBatch('t', txn(2, ['y2'])); // 3 aborted
    broker.appendBatch('t', marker(2, false)); // 4 abort P2
    broker.appendBatch('t', txn(3, ['z1'])); // 5 aborted
    broker.appendBatch('t', marker(1, true)); // 6 commit P1
    broker.appendBatch('t', txn(2, ['y3'])); // 7: P2's next transaction, committed
    broker.appendBatch('t', marker(3, false)); // 8 abort P3
    broker.appendBatch('t', marker(2, true)); // 9 commit P2
    const c = consumer(broker, 'read_committed');
    try {
      await c.assign([{ topic: 't', partition: 0, offset: 0 }]);
      assert.deepEqual(await readTo(c, 't', 10), ['0:x1', '2:x2', '7:y3']);
    } finally {
      await c.close();
    }
  });
});

test('read_committed: an aborted transaction that began before the fetch offset is still dropped', async () => {
  await withFake(async (broker) => {
    broker.appendBatch('t', txn(1, ['a0', 'a1', 'a2'])); // 0-2
    broker.appendBatch('t', txn(1, ['a3'])); // 3
    broker.appendBatch('t', marker(1, false)); // 4
    broker.append('t', ['z']); // 5
    for (const start of [1, 3]) {
      const c = consumer(broker, 'read_committed');
      try {
        await c.assign([{ topic: 't', partition: 0, offset: start }]);
        assert.deepEqual(await readTo(c, 't', 6), ['5:z'], `from offset ${start}`);
      } finally {
        await c.close();
      }
    }
  });
});

test('read_committed: a poll that fetched only aborted and control batches returns nothing but moves the position', async () => {
  await withFake(async (broker) => {
    broker.appendBatch('t', txn(1, ['a'])); // 0
    broker.appendBatch('t', marker(1, false)); // 1
    broker.appendBatch('t', txn(2, ['b'])); // 2
    broker.appendBatch('t', marker(2, false)); // 3
    const c = consumer(broker, 'read_committed');
    try {
      await c.assign([{ topic: 't', partition: 0, offset: 0 }]);
      assert.deepEqual(await readTo(c, 't', 4), []);
      assert.equal(c.endOffset('t', 0), 4);
      // The next fetch starts after the last (control) batch.
      await c.poll(100);
      assert.equal(broker.fetches.at(-1)!.topics[0]!.partitions[0]!.fetchOffset, 4);
    } finally {
      await c.close();
    }
  });
});

test('read_committed stops at the last stable offset; latest and endOffset are the LSO; the commit releases the records', async () => {
  await withFake(async (broker) => {
    broker.append('t', ['p']); // 0
    broker.appendBatch('t', txn(1, ['t1'])); // 1, open
    broker.append('t', ['q']); // 2, after the open transaction's start: not stable yet
    const committed = consumer(broker, 'read_committed');
    const uncommitted = consumer(broker, 'read_uncommitted');
    try {
      await committed.assign([{ topic: 't', partition: 0 }]);
      assert.equal(committed.position('t', 0), 1, "latest is the LSO under read_committed");
      assert.equal(broker.listOffsets.at(-1)!.isolationLevel, READ_COMMITTED);
      await uncommitted.assign([{ topic: 't', partition: 0 }]);
      assert.equal(uncommitted.position('t', 0), 3, 'latest is the high watermark under read_uncommitted');
      committed.seek('t', 0, 0);
      assert.deepEqual(await readTo(committed, 't', 1), ['0:p']);
      assert.deepEqual(await committed.poll(200), [], 'nothing at or after the LSO');
      assert.equal(committed.lastStableOffset('t', 0), 1);
      assert.equal(committed.highWatermark('t', 0), 3);
      assert.equal(committed.endOffset('t', 0), 1, 'lag is measured to the LSO');
      broker.appendBatch('t', marker(1, true)); // 3
      assert.deepEqual(await readTo(committed, 't', 4), ['1:t1', '2:q']);
    } finally {
      await committed.close();
      await uncommitted.close();
    }
  });
});

test('read_committed: an abortedTransactions list out of order is still applied', async () => {
  await withFake(async (broker) => {
    broker.appendBatch('t', txn(1, ['a'])); // 0
    broker.appendBatch('t', txn(2, ['b'])); // 1
    broker.appendBatch('t', marker(1, false)); // 2
    broker.appendBatch('t', marker(2, false)); // 3
    broker.append('t', ['c']); // 4
    broker.abortedOverride = [{ producerId: 2, firstOffset: 1 }, { producerId: 1, firstOffset: 0 }];
    const c = consumer(broker, 'read_committed');
    try {
      await c.assign([{ topic: 't', partition: 0, offset: 0 }]);
      assert.deepEqual(await readTo(c, 't', 5), ['4:c']);
    } finally {
      await c.close();
    }
  });
});

test('pollBatches skips control and aborted batches too, and reports where the position moved past them', async () => {
  await withFake(async (broker) => {
    mixedLog(broker);
    const cluster = new Cluster({ bootstrap: broker.bootstrap });
    const engine = new FetchEngine(cluster, resolveFetchSettings({ maxWaitMs: 50, isolation: 'read_committed' }));
    try {
      await engine.assign([{ topic: 't', partition: 0, offset: 0 }]);
      const got: number[] = [];
      const skipped: number[] = [];
      const deadline = Date.now() + 5000;
      while (engine.position('t', 0) < 6 && Date.now() < deadline) {
        for (const b of await engine.pollBatches(100)) got.push(b.baseOffset);
        for (const s of engine.skippedInLastPoll()) skipped.push(s.next);
      }
      assert.deepEqual(got, [2, 5], 'the committed batch and the plain one');
      // 0-1 aborted, then 3-4 (abort and commit markers): the furthest skip is past 4.
      assert.equal(Math.max(...skipped), 5);
    } finally {
      engine.close();
      cluster.close();
    }
  });
});

test('model check: random interleavings of transactions; read_committed returns exactly the committed and plain records, read_uncommitted every non-control one', async () => {
  // A step: a plain batch, a transactional batch of producer 1-3, or the end of a producer's
  // open transaction (commit or abort). Open transactions are ended at the end, so all is stable.
  const step = fc.oneof(
    { arbitrary: fc.record({ kind: fc.constant('plain' as const), n: fc.integer({ min: 1, max: 3 }) }), weight: 1 },
    { arbitrary: fc.record({ kind: fc.constant('txn' as const), pid: fc.integer({ min: 1, max: 3 }), n: fc.integer({ min: 1, max: 3 }) }), weight: 3 },
    { arbitrary: fc.record({ kind: fc.constant('end' as const), pid: fc.integer({ min: 1, max: 3 }), commit: fc.boolean() }), weight: 2 },
  );
  await fc.assert(
    fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 40 }), fc.boolean(), fc.nat(), fc.integer({ min: 1, max: 4000 }), async (steps, endCommit, startSeed, partitionMaxBytes) => {
      await withFake(async (broker) => {
        const open = new Map<number, string[]>();
        const committed = new Set<string>();
        const all: string[] = [];
        let id = 0;
        const end = (pid: number, commit: boolean): void => {
          if (!open.has(pid)) return;
          broker.appendBatch('t', marker(pid, commit));
          if (commit) for (const v of open.get(pid)!) committed.add(v);
          open.delete(pid);
        };
        for (const s of steps) {
          if (s.kind === 'end') {
            end(s.pid, s.commit);
            continue;
          }
          const values = Array.from({ length: s.n }, () => `v${id++}`);
          all.push(...values);
          if (s.kind === 'plain') {
            broker.append('t', values);
            for (const v of values) committed.add(v);
          } else {
            broker.appendBatch('t', txn(s.pid, values));
            open.set(s.pid, [...(open.get(s.pid) ?? []), ...values]);
          }
        }
        for (const pid of [...open.keys()]) end(pid, endCommit);
        const t = broker.topic('t');
        const logEnd = broker.endOffset(t);
        const start = startSeed % (logEnd + 1);
        const offsetOf = new Map<string, number>();
        for (const b of t.batches) {
          if (isControlAt(b, 0)) continue;
          for (const r of decodeRecords(b, 0)) offsetOf.set(Buffer.from(r.value!).toString(), r.offset);
        }
        for (const isolation of ['read_committed', 'read_uncommitted'] as const) {
          const c = new Consumer({ bootstrap: broker.bootstrap, maxWaitMs: 20, isolation, partitionMaxBytes });
          try {
            await c.assign([{ topic: 't', partition: 0, offset: start }]);
            const got = await readTo(c, 't', logEnd);
            const expected = all
              .filter((v) => offsetOf.get(v)! >= start && (isolation === 'read_uncommitted' || committed.has(v)))
              .map((v) => `${offsetOf.get(v)}:${v}`);
            assert.deepEqual(got, expected, `${isolation} from ${start}`);
            assert.equal(c.position('t', 0), logEnd);
          } finally {
            await c.close();
          }
        }
      });
    }),
    { numRuns: 100 },
  );
});

test('delayed-delivery control batches (SPEC §8.6 types 2-4) are never shown and end no aborted transaction; the released batch is a normal message', async () => {
  await withFake(async (broker) => {
    const inner = new BatchBuilder();
    inner.append(null, Buffer.from('later'), Date.now());
    const innerBytes = inner.finish({ producerId: 1, producerEpoch: 0, baseSequence: 100 }).slice();
    const wrapper = buildScheduledWrapper(innerBytes, 0, innerBytes.length, Date.now(), Date.now(), Date.now());
    broker.appendBatch('t', txn(1, ['a1'])); // 0: P1's transaction, aborted below
    broker.appendBatch('t', wrapper); // 1: a SCHEDULED wrapper carrying P1's id (not a marker)
    broker.appendBatch('t', txn(1, ['a2'])); // 2: still in P1's aborted transaction
    broker.appendBatch('t', marker(1, false)); // 3: abort P1
    broker.appendBatch('t', buildReleaseMarker(Date.now(), 1, Date.now())); // 4
    broker.appendBatch('t', buildReleased(wrapper, readScheduled(wrapper, 0)!)); // 5
    for (const isolation of ['read_committed', 'read_uncommitted'] as const) {
      const c = consumer(broker, isolation);
      try {
        await c.assign([{ topic: 't', partition: 0, offset: 0 }]);
        const got = await readTo(c, 't', 6);
        assert.deepEqual(got, isolation === 'read_committed' ? ['5:later'] : ['0:a1', '2:a2', '5:later'], isolation);
      } finally {
        await c.close();
      }
    }
  });
});
