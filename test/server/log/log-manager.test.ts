import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ErrorCode, SluiceError } from '../../../protocol/errors.ts';
import { LogManager, readPartitionTopicId } from '../../../server/log/log-manager.ts';
import { batch, config, recordingLogger, tempDir } from './helpers.ts';

test('partitions live in <topic>-<partition> dirs; deleteTopic removes them', async () => {
  const t = tempDir();
  try {
    const mgr = new LogManager(t.dir, { logger: recordingLogger() });
    const a0 = mgr.createPartition('a-b', 0, config());
    mgr.createPartition('a-b', 1, config());
    mgr.createPartition('c', 0, config());
    assert.equal(mgr.get('a-b', 0), a0);
    assert.equal(mgr.get('a-b', 2), undefined);
    assert.throws(() => mgr.createPartition('c', 0, config()), (e: unknown) => e instanceof SluiceError && e.code === ErrorCode.TOPIC_ALREADY_EXISTS);
    assert.throws(() => mgr.createPartition('../x', 0, config()), (e: unknown) => e instanceof SluiceError && e.code === ErrorCode.INVALID_TOPIC);
    fs.mkdirSync(path.join(t.dir, 'orphan-3'));
    fs.mkdirSync(path.join(t.dir, '__metadata'));
    assert.deepEqual(mgr.partitionDirs(), ['a-b-0', 'a-b-1', 'c-0', 'orphan-3']);
    mgr.removeDir('orphan-3');
    a0.append(batch(2));
    await mgr.deleteTopic('a-b', 2);
    assert.deepEqual(mgr.partitionDirs(), ['c-0']);
    assert.equal(mgr.get('a-b', 0), undefined);
    await assert.rejects(a0.read(0, 100), (e: unknown) => e instanceof SluiceError && e.code === ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
    await mgr.close();
    assert.ok(fs.existsSync(path.join(t.dir, '__metadata')), 'only partition dirs are touched');
  } finally {
    t.cleanup();
  }
});

test('reload after close keeps data; the scheduler applies retention and flushes', async () => {
  const t = tempDir();
  try {
    let mgr = new LogManager(t.dir, { logger: recordingLogger() });
    let log = mgr.createPartition('events', 0, config());
    log.append(batch(5));
    await mgr.close();
    mgr = new LogManager(t.dir, { logger: recordingLogger(), retentionCheckIntervalMs: 20, flushCheckIntervalMs: 10 });
    // Records from 1970 with a 1 s retention: all expire at the first check.
    const cfg = config({ 'retention.ms': '1000', 'segment.bytes': '1024', 'flush.ms': '0' });
    log = mgr.loadPartition('events', 0, cfg);
    assert.equal(log.logEndOffset, 5);
    for (let i = 0; i < 10; i++) log.append(batch(3, 1_000_000, 100));
    assert.ok(log.segmentCount > 1);
    mgr.start();
    await new Promise((r) => setTimeout(r, 120));
    assert.equal(log.segmentCount, 1);
    assert.equal(log.logStartOffset, 35);
    assert.equal(log.logEndOffset, 35);
    assert.equal(log.flushedOffset, 35);
    await mgr.close();
    await mgr.close();
  } finally {
    t.cleanup();
  }
});

test('topic ids fence partition dirs: a dir of another topic id is never reused; deletion renames first', async () => {
  const t = tempDir();
  try {
    const mgr = new LogManager(t.dir, { logger: recordingLogger() });
    const old = mgr.loadPartition('x', 0, config(), 'id-old');
    old.append(batch(3));
    assert.equal(readPartitionTopicId(path.join(t.dir, 'x-0')), 'id-old');
    const removal = mgr.deleteTopic('x', 1);
    // Renamed aside before deleteTopic returned: the name is free at once, and the old files are elsewhere.
    assert.deepEqual(mgr.partitionDirs(), []);
    const fresh = mgr.loadPartition('x', 0, config(), 'id-new');
    await removal;
    assert.equal(fresh.logEndOffset, 0, 'a re-created topic starts empty');
    fresh.append(batch(1));
    assert.ok(fs.existsSync(path.join(t.dir, 'x-0')), 'the old removal left the new dir alone');
    await mgr.close();

    // A dir with another topic's id (e.g. a crash before the old dir was removed) is moved aside, not reused.
    const mgr2 = new LogManager(t.dir, { logger: recordingLogger() });
    const other = mgr2.loadPartition('x', 0, config(), 'id-third');
    assert.equal(other.logEndOffset, 0);
    assert.equal(readPartitionTopicId(path.join(t.dir, 'x-0')), 'id-third');
    other.append(batch(2));
    await mgr2.close();
    // Same id: reused with its data.
    const mgr3 = new LogManager(t.dir, { logger: recordingLogger() });
    assert.equal(mgr3.loadPartition('x', 0, config(), 'id-third').logEndOffset, 2);
    fs.mkdirSync(path.join(t.dir, `x-1.${'ab'.repeat(16)}-delete`));
    assert.equal(mgr3.removeDeletedDirs(), 1);
    await mgr3.close();
  } finally {
    t.cleanup();
  }
});
