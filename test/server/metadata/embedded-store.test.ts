// The embedded metadata store on real files: changes are journalled, replayed on reopen,
// compacted into the snapshot, a torn journal tail is cut off, concurrent changes share
// fsyncs, and older whole-document files are upgraded.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, readFileSync, rmSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { ErrorCode, SluiceError } from '../../../protocol/errors.ts';
import { EmbeddedMetadataStore } from '../../../server/metadata/embedded-store.ts';
import type { TopicRecord } from '../../../server/metadata/metadata-store.ts';
import { tempDir } from '../../helpers/broker-process.ts';

const topic = (name: string, partitions = 2): TopicRecord => ({ name, id: `id-${name}`, partitions, replicationFactor: 1, configs: {}, createdAtMs: 1 });

async function withStore<T>(dataDir: string, fn: (s: EmbeddedMetadataStore) => Promise<T>, opts = {}): Promise<T> {
  const s = new EmbeddedMetadataStore(dataDir, 0, opts);
  await s.open();
  try {
    return await fn(s);
  } finally {
    await s.close();
  }
}

test('changes are journalled, survive a reopen, and a torn journal tail is cut off', async () => {
  const dir = tempDir();
  try {
    const clusterId = await withStore(dir, async (s) => {
      await s.createTopic(topic('a'));
      await s.createTopic(topic('b', 3));
      assert.equal(await s.compareAndSetPartitionState('a', 1, 0, { leader: 0, leaderEpoch: 4, replicas: [0], isr: [0] }), true);
      assert.equal(await s.deleteTopic('b'), true);
      assert.equal(await s.deleteTopic('b'), false);
      return s.clusterId();
    });
    const journal = join(dir, '__metadata', 'metadata.journal');
    assert.ok(statSync(journal).size > 0, 'the changes are in the journal, not in a rewritten snapshot');
    appendFileSync(journal, Buffer.from([0, 0, 1, 0, 1, 2, 3])); // a record cut short by a crash
    await withStore(dir, async (s) => {
      assert.equal(s.clusterId(), clusterId);
      assert.deepEqual(s.listTopics().map((t) => t.name), ['a']);
      assert.equal(s.partitionState('a', 1)!.leaderEpoch, 4);
      assert.equal(s.partitionState('a', 1)!.partitionEpoch, 1);
      await s.createTopic(topic('c')); // appended after the cut, so it is readable next time
    });
    await withStore(dir, async (s) => assert.deepEqual(s.listTopics().map((t) => t.name), ['a', 'c']));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the journal is compacted into the snapshot once it outgrows it; reopen sees every change once', async () => {
  const dir = tempDir();
  try {
    await withStore(
      dir,
      async (s) => {
        await s.createTopic(topic('t', 50));
        for (let i = 0; i < 200; i++) {
          const p = i % 50;
          const cur = s.partitionState('t', p)!;
          assert.equal(await s.compareAndSetPartitionState('t', p, cur.partitionEpoch, { ...cur, leaderEpoch: cur.leaderEpoch + 1 }), true);
        }
      },
      { journalBytesCompactMin: 4096 },
    );
    const snapshot = JSON.parse(readFileSync(join(dir, '__metadata', 'metadata.json'), 'utf8'));
    assert.equal(snapshot.version, 3);
    assert.ok(snapshot.journalSeq > 0, 'a snapshot was written from the journal');
    assert.ok(statSync(join(dir, '__metadata', 'metadata.journal')).size < 4096 + 2048);
    await withStore(dir, async (s) => {
      for (let p = 0; p < 50; p++) assert.equal(s.partitionState('t', p)!.leaderEpoch, 4, `partition ${p}`);
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('concurrent changes see each other and share fsyncs; nothing is visible before it is durable', async () => {
  const dir = tempDir();
  try {
    await withStore(dir, async (s) => {
      const created = Array.from({ length: 40 }, (_, i) => s.createTopic(topic(`c${i}`)));
      const duplicate = s.createTopic(topic('c0'));
      assert.equal(s.getTopic('c0'), undefined, 'not visible before the write is durable');
      await Promise.all(created);
      await assert.rejects(duplicate, (e: unknown) => e instanceof SluiceError && e.code === ErrorCode.TOPIC_ALREADY_EXISTS);
      assert.equal(s.listTopics().length, 40);
      assert.ok(s.journalBatchesWritten < 40, `40 concurrent changes took ${s.journalBatchesWritten} fsyncs`);
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a version 2 document (whole-file rewrites) is upgraded on open', async () => {
  const dir = tempDir();
  try {
    mkdirSync(join(dir, '__metadata'));
    const state = { leader: 0, leaderEpoch: 2, replicas: [0], isr: [0], partitionEpoch: 7 };
    writeFileSync(join(dir, '__metadata', 'metadata.json'), JSON.stringify({ version: 2, clusterId: 'old', controllerEpoch: 3, topics: [topic('legacy', 1)], partitions: { legacy: [state] } }));
    await withStore(dir, async (s) => {
      assert.equal(s.clusterId(), 'old');
      assert.deepEqual(s.partitionState('legacy', 0), state);
      await s.createTopic(topic('new'));
    });
    assert.equal(JSON.parse(readFileSync(join(dir, '__metadata', 'metadata.json'), 'utf8')).version, 3);
    await withStore(dir, async (s) => assert.deepEqual(s.listTopics().map((t) => t.name), ['legacy', 'new']));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an invalid state is refused after the changes before it, without disturbing the changes around it, and never reaches the journal', async () => {
  const dir = tempDir();
  try {
    await withStore(dir, async (s) => {
      await s.createTopic(topic('t', 1));
      const led = { leader: 0, leaderEpoch: 1, replicas: [0], isr: [0] };
      const before = s.compareAndSetPartitionState('t', 0, 0, led);
      const invalid = s.compareAndSetPartitionState('t', 0, 1, { ...led, leader: 3 });
      const badCreate = s.createTopic(topic('u', 2), [{ ...led, partitionEpoch: 0, isr: [1] }, { ...led, partitionEpoch: 0 }]);
      const after = s.compareAndSetPartitionState('t', 0, 1, { ...led, leaderEpoch: 2 });
      const order: string[] = [];
      await Promise.allSettled([before, invalid, badCreate, after].map((p, i) => p.then(() => order.push(`ok ${i}`), () => order.push(`refused ${i}`))));
      assert.deepEqual([...order].sort(), ['ok 0', 'ok 3', 'refused 1', 'refused 2']);
      assert.ok(order.indexOf('refused 1') > order.indexOf('ok 0') && order.indexOf('refused 2') > order.indexOf('ok 0'), `a refusal comes after the changes submitted before it: ${order.join(', ')}`);
      await assert.rejects(invalid, /not in isr/);
      await assert.rejects(badCreate, /not a subset/);
      assert.equal(await after, true, 'the change behind the refused one sees the one before it');
      assert.equal(s.getTopic('u'), undefined);
    });
    await withStore(dir, async (s) => {
      assert.deepEqual(s.listTopics().map((t) => t.name), ['t']);
      assert.deepEqual(s.partitionState('t', 0), { leader: 0, leaderEpoch: 2, replicas: [0], isr: [0], partitionEpoch: 2 });
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
