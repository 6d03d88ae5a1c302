import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { FileHandleCache, segmentFilesOpenMaxFor } from '../../../server/log/file-handle-cache.ts';
import { LogManager } from '../../../server/log/log-manager.ts';
import { batch, config, recordingLogger, tempDir } from './helpers.ts';

test('at most openFilesMax fds: least recently used unpinned files are closed, pinned ones never', () => {
  const t = tempDir();
  try {
    const cache = new FileHandleCache(3);
    const files = Array.from({ length: 6 }, (_, i) => {
      const p = path.join(t.dir, `f${i}`);
      fs.writeFileSync(p, `file ${i}`);
      return cache.file(p);
    });
    const pinned = files[0]!.pin(); // held across everything below
    for (const f of files.slice(1)) {
      const fd = f.pin();
      assert.equal(fs.readFileSync(fd, 'utf8').length > 0, true);
      f.unpin();
      assert.ok(cache.openCount <= 3, `open ${cache.openCount}`);
    }
    assert.equal(files[0]!.fd, pinned, 'a pinned fd stays open');
    assert.ok(cache.evictions >= 2);
    // Reopened on demand, same content.
    const buf = Buffer.alloc(6);
    fs.readSync(files[1]!.pin(), buf, 0, 6, 0);
    files[1]!.unpin();
    assert.equal(buf.toString(), 'file 1');
    files[0]!.retire();
    assert.ok(files[0]!.fd >= 0, 'retired while pinned: closed at the last unpin');
    files[0]!.unpin();
    assert.equal(files[0]!.fd, -1);
    assert.throws(() => files[0]!.pin());
    for (const f of files) f.retire();
    assert.equal(cache.openCount, 0);
  } finally {
    t.cleanup();
  }
});

test('the default bound follows the open-files limit', () => {
  assert.equal(segmentFilesOpenMaxFor(256), 64);
  assert.equal(segmentFilesOpenMaxFor(8), 16);
  assert.equal(segmentFilesOpenMaxFor(1 << 20), 1024);
  assert.equal(segmentFilesOpenMaxFor(null), 1024);
});

test('a LogManager with 100 partitions keeps at most segmentFilesOpenMax segment fds and serves them all', async () => {
  const t = tempDir();
  try {
    let mgr = new LogManager(t.dir, { logger: recordingLogger(), segmentFilesOpenMax: 8 });
    await mgr.prepareNewPartitions('many', Array.from({ length: 100 }, (_, p) => p), 'id-1', config({ 'segment.bytes': '1024' }));
    for (let p = 0; p < 100; p++) mgr.loadPartition('many', p, config({ 'segment.bytes': '1024' }), 'id-1').append(batch(2, 1_000_000, 400));
    for (let p = 0; p < 100; p++) mgr.get('many', p)!.append(batch(2, 1_000_000, 400)); // rolls: a second segment each
    assert.ok(mgr.files.openCount <= 8, `open ${mgr.files.openCount}`);
    for (let p = 0; p < 100; p++) await mgr.get('many', p)!.flush();
    for (let p = 0; p < 100; p += 13) assert.equal((await mgr.get('many', p)!.read(0, 1 << 20)).records.length > 0, true);
    assert.ok(mgr.files.openCount <= 8, `open ${mgr.files.openCount}`);
    await mgr.close();
    mgr = new LogManager(t.dir, { logger: recordingLogger(), segmentFilesOpenMax: 8 });
    for (let p = 0; p < 100; p++) {
      const log = mgr.loadPartition('many', p, config(), 'id-1');
      assert.equal(log.logEndOffset, 4);
      assert.equal(log.segmentCount, 2);
    }
    assert.ok(mgr.files.openCount <= 8);
    await mgr.close();
  } finally {
    t.cleanup();
  }
});
