import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { TimeIndex } from '../../../server/log/time-index.ts';
import { tempDir } from './helpers.ts';

test('time index keeps only growing timestamps and looks up the scan start', () => {
  const idx = new TimeIndex('/nonexistent/x.timeindex', 50);
  assert.equal(idx.lookup(123), 50, 'empty: scan from the segment start');
  assert.ok(idx.maybeAppend(1000, 60));
  assert.ok(!idx.maybeAppend(1000, 70), 'same timestamp is not growth');
  assert.ok(!idx.maybeAppend(900, 80), 'older timestamp is not growth');
  assert.ok(idx.maybeAppend(2000, 90));
  assert.ok(idx.maybeAppend(3000, 120));
  assert.equal(idx.entryCount, 3);
  assert.equal(idx.lookup(999), 50, 'before the first entry');
  assert.equal(idx.lookup(1000), 60, 'exact');
  assert.equal(idx.lookup(2500), 90, 'between entries');
  assert.equal(idx.lookup(9999), 120, 'after the last entry');
});

test('time index round-trips through its file and rejects a damaged one', () => {
  const t = tempDir();
  try {
    const file = path.join(t.dir, 'a.timeindex');
    const idx = new TimeIndex(file, 0);
    for (let i = 1; i <= 100; i++) idx.maybeAppend(1_700_000_000_000 + i * 10, i * 5);
    idx.persistSync();
    const loaded = TimeIndex.load(file, 0);
    assert.ok(loaded.index, loaded.problem);
    assert.equal(loaded.index.entryCount, 100);
    assert.equal(loaded.index.lookup(1_700_000_000_000 + 505), 250);
    fs.appendFileSync(file, Buffer.alloc(5));
    assert.match(TimeIndex.load(file, 0).problem, /multiple of 12/);
  } finally {
    t.cleanup();
  }
});
