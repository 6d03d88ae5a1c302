import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { OffsetIndex } from '../../../server/log/offset-index.ts';
import { tempDir } from './helpers.ts';

function sample(file: string): OffsetIndex {
  const idx = new OffsetIndex(file, 100);
  idx.append(110, 4096);
  idx.append(120, 8200);
  idx.append(135, 12_400);
  return idx;
}

test('offset index lookup: exact, between entries, before first, after last, empty', () => {
  const idx = sample('/nonexistent/x.index');
  assert.deepEqual(idx.lookup(120), { offset: 120, position: 8200 });
  assert.deepEqual(idx.lookup(125), { offset: 120, position: 8200 });
  assert.deepEqual(idx.lookup(105), { offset: 100, position: 0 });
  assert.deepEqual(idx.lookup(100), { offset: 100, position: 0 });
  assert.deepEqual(idx.lookup(1_000_000), { offset: 135, position: 12_400 });
  assert.deepEqual(new OffsetIndex('/nonexistent/y.index', 7).lookup(50), { offset: 7, position: 0 });
});

test('offset index refuses entries that are not strictly after the last one', () => {
  const idx = sample('/nonexistent/x.index');
  assert.throws(() => idx.append(135, 20_000));
  assert.throws(() => idx.append(140, 12_400));
  assert.throws(() => idx.append(99, 0));
});

test('offset index grows past its initial capacity and round-trips through its file', () => {
  const t = tempDir();
  try {
    const file = path.join(t.dir, 'a.index');
    const idx = new OffsetIndex(file, 1000);
    for (let i = 1; i <= 500; i++) idx.append(1000 + i * 3, i * 100);
    idx.persistSync();
    assert.equal(fs.statSync(file).size, 500 * 8);
    const loaded = OffsetIndex.load(file, 1000, 500 * 100 + 1);
    assert.ok(loaded.index, loaded.problem);
    assert.equal(loaded.index.entryCount, 500);
    assert.deepEqual(loaded.index.lookup(1000 + 250 * 3 + 1), { offset: 1000 + 250 * 3, position: 25_000 });
  } finally {
    t.cleanup();
  }
});

test('offset index load reports problems instead of returning a bad index', () => {
  const t = tempDir();
  try {
    const file = path.join(t.dir, 'b.index');
    assert.match(OffsetIndex.load(file, 0, 100).problem, /cannot read/);
    fs.writeFileSync(file, Buffer.alloc(12));
    assert.match(OffsetIndex.load(file, 0, 100).problem, /multiple of 8/);
    sample(file).persistSync();
    assert.match(OffsetIndex.load(file, 100, 10_000).problem, /past the log size/);
    const decreasing = Buffer.alloc(16);
    decreasing.writeUInt32BE(5, 0);
    decreasing.writeUInt32BE(100, 4);
    decreasing.writeUInt32BE(4, 8);
    decreasing.writeUInt32BE(200, 12);
    fs.writeFileSync(file, decreasing);
    assert.match(OffsetIndex.load(file, 0, 1000).problem, /not after/);
  } finally {
    t.cleanup();
  }
});
