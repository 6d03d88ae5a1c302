// The ArchiveStore contract (server/archive/archive-store.ts), one suite for every
// implementation: archive-store-local.test.ts runs it against LocalDirStore on a temp dir,
// archive-store-s3.test.ts against S3Store on a real s3rver started in the test. Not a test
// file itself (no `.test.ts`): it only registers tests when a runner calls archiveStoreContract().
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ArchiveStoreError, type ArchiveStore } from '../../../server/archive/archive-store.ts';

export interface ArchiveStoreTarget {
  name: string;
  /** A fresh, empty store; cleanup stops what it started and removes its files. */
  fresh(): Promise<{ store: ArchiveStore; cleanup: () => Promise<void> }>;
  /**
   * Makes the store unreachable (S3: the server stops) and returns a function that brings it
   * back; undefined when the implementation has no such state (a local directory).
   */
  makeUnreachable?: (store: ArchiveStore) => Promise<() => Promise<void>>;
  /** Upper bound on how long a call may take against an unreachable store. */
  unreachableBoundMs?: number;
  /**
   * false when the store behind the implementation shows a PUT in progress or leaves a
   * failed one behind (s3rver writes the object file in place; AWS S3 and MinIO do not). The
   * archive does not depend on it (a segment is visible through its committed manifest only,
   * and orphans are swept), but the implementation must not add such windows of its own.
   */
  writesAtomically?: boolean;
}

const TEST_TIMEOUT_MS = 60_000;

export function archiveStoreContract(t: ArchiveStoreTarget): void {
  const withStore = (name: string, body: (s: ArchiveStore) => Promise<void>) =>
    test(`${t.name}: ${name}`, { timeout: TEST_TIMEOUT_MS }, async () => {
      const { store, cleanup } = await t.fresh();
      try {
        await body(store);
      } finally {
        await store.close();
        await cleanup();
      }
    });

  withStore('put then get, head and list return the same bytes and size', async (s) => {
    const body = randomBytes(10_000);
    await s.put('t-id/0/a.log', body);
    assert.deepEqual(Buffer.from(await s.get('t-id/0/a.log')), body);
    assert.deepEqual(await s.head('t-id/0/a.log'), { key: 't-id/0/a.log', sizeBytes: 10_000 });
    assert.deepEqual(await s.list('t-id/0/'), [{ key: 't-id/0/a.log', sizeBytes: 10_000 }]);
    // An empty object is an object.
    await s.put('t-id/0/empty.index', new Uint8Array(0));
    assert.equal((await s.get('t-id/0/empty.index')).length, 0);
    assert.deepEqual(await s.head('t-id/0/empty.index'), { key: 't-id/0/empty.index', sizeBytes: 0 });
  });

  withStore('put of an existing key replaces it whole', async (s) => {
    await s.put('k/0/x.manifest', randomBytes(5000));
    const second = randomBytes(100);
    await s.put('k/0/x.manifest', second);
    assert.deepEqual(Buffer.from(await s.get('k/0/x.manifest')), second);
    assert.equal((await s.head('k/0/x.manifest'))?.sizeBytes, 100);
  });

  withStore('putFile streams the first sizeBytes of a file, calling pace for every chunk', async (s) => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-putfile-'));
    try {
      const data = randomBytes(3 * 1024 * 1024 + 123);
      const file = join(dir, 'seg.log');
      writeFileSync(file, data);
      const paced: number[] = [];
      const size = data.length - 23; // a segment's valid size may be below the file's size
      await s.putFile('p/0/seg.log', file, size, async (n) => {
        paced.push(n);
      });
      assert.equal(paced.reduce((a, b) => a + b, 0), size);
      assert.ok(paced.length >= 4, `paced ${paced.length} chunks`);
      const got = Buffer.from(await s.get('p/0/seg.log'));
      assert.equal(got.length, size);
      assert.ok(got.equals(data.subarray(0, size)));
      // A file shorter than sizeBytes is refused and leaves no object.
      await assert.rejects(s.putFile('p/0/short.log', file, data.length + 10), (e: unknown) => e instanceof ArchiveStoreError && !e.retryable && /ended at/.test(e.message));
      if (t.writesAtomically !== false) assert.equal(await s.head('p/0/short.log'), null);
      // A pacer that throws aborts the upload and leaves no object.
      await assert.rejects(
        s.putFile('p/0/aborted.log', file, size, async () => {
          throw new Error('segment deleted');
        }),
        /segment deleted/,
      );
      if (t.writesAtomically !== false) assert.equal(await s.head('p/0/aborted.log'), null);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  withStore('getRange returns the asked bytes, shorter only at the end of the object', async (s) => {
    const body = randomBytes(5000);
    await s.put('r/0/a.log', body);
    assert.deepEqual(Buffer.from(await s.getRange('r/0/a.log', 0, 10)), body.subarray(0, 10));
    assert.deepEqual(Buffer.from(await s.getRange('r/0/a.log', 1234, 4321)), body.subarray(1234, 4321));
    assert.deepEqual(Buffer.from(await s.getRange('r/0/a.log', 4990, 6000)), body.subarray(4990));
    assert.equal((await s.getRange('r/0/a.log', 5000, 5100)).length, 0);
    assert.equal((await s.getRange('r/0/a.log', 100, 100)).length, 0);
    await assert.rejects(s.getRange('r/0/missing.log', 0, 10), (e: unknown) => e instanceof ArchiveStoreError && e.notFound && !e.retryable);
  });

  withStore('a missing object: get rejects notFound (not retryable), head is null, delete succeeds', async (s) => {
    await assert.rejects(s.get('m/0/none.log'), (e: unknown) => e instanceof ArchiveStoreError && e.notFound && !e.retryable);
    assert.equal(await s.head('m/0/none.log'), null);
    await s.delete('m/0/none.log');
    assert.deepEqual(await s.list('m/'), []);
  });

  withStore('list: only keys under the prefix, sorted, after deletes', async (s) => {
    const keys = ['a-1/0/00000000000000000010-00000000000000000019.log', 'a-1/0/00000000000000000000-00000000000000000009.log', 'a-1/0/00000000000000000000-00000000000000000009.manifest', 'a-1/1/00000000000000000000-00000000000000000004.log', 'a-10/0/x.log', 'b-2/0/y.log'];
    for (const k of keys) await s.put(k, new Uint8Array([1, 2, 3]));
    assert.deepEqual(
      (await s.list('a-1/0/')).map((o) => o.key),
      ['a-1/0/00000000000000000000-00000000000000000009.log', 'a-1/0/00000000000000000000-00000000000000000009.manifest', 'a-1/0/00000000000000000010-00000000000000000019.log'],
    );
    assert.deepEqual((await s.list('a-1/')).length, 4);
    assert.deepEqual((await s.list('a-1')).length, 5);
    await s.delete('a-1/0/00000000000000000000-00000000000000000009.log');
    assert.deepEqual((await s.list('a-1/0/')).length, 2);
    assert.deepEqual(await s.list('zzz/'), []);
  });

  withStore('a listing of several pages is complete (S3 target: 100 keys a page)', async (s) => {
    const n = 250;
    const keys: string[] = [];
    for (let i = 0; i < n; i++) keys.push(`many/0/${String(i).padStart(6, '0')}.index`);
    for (let i = 0; i < n; i += 50) await Promise.all(keys.slice(i, i + 50).map((k) => s.put(k, new Uint8Array(1))));
    const got = (await s.list('many/0/')).map((o) => o.key);
    assert.deepEqual(got, keys);
  });

  if (t.writesAtomically !== false) withStore('atomic visibility: a reader during a slow putFile sees nothing or the whole object', async (s) => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-putfile-'));
    try {
      const data = randomBytes(4 * 1024 * 1024);
      const file = join(dir, 'seg.log');
      writeFileSync(file, data);
      let chunks = 0;
      const seen: Array<number | null> = [];
      const upload = s.putFile('v/0/seg.log', file, data.length, async () => {
        chunks++;
        const h = await s.head('v/0/seg.log');
        seen.push(h?.sizeBytes ?? null);
        assert.deepEqual(await s.list('v/'), h ? [{ key: 'v/0/seg.log', sizeBytes: data.length }] : []);
        await new Promise((r) => setTimeout(r, 20));
      });
      await upload;
      assert.ok(chunks >= 4);
      assert.ok(seen.every((x) => x === null), `saw ${JSON.stringify(seen)} during the upload`);
      assert.equal((await s.head('v/0/seg.log'))?.sizeBytes, data.length);
      // A replacement in progress still shows the old whole object.
      const small = join(dir, 'small.log');
      writeFileSync(small, data.subarray(0, 2 * 1024 * 1024 + 1));
      const during: number[] = [];
      await s.putFile('v/0/seg.log', small, 2 * 1024 * 1024 + 1, async () => {
        during.push((await s.get('v/0/seg.log')).length);
      });
      assert.ok(during.every((x) => x === data.length), `saw sizes ${during}`);
      assert.equal((await s.get('v/0/seg.log')).length, 2 * 1024 * 1024 + 1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  withStore('keys that would escape are refused', async (s) => {
    for (const k of ['../x', 'a/../../x', 'a/./b', 'a\\b', '']) {
      await assert.rejects(s.put(k, new Uint8Array(1)), (e: unknown) => e instanceof ArchiveStoreError && !e.retryable, k);
    }
  });

  if (t.makeUnreachable) {
    const bound = t.unreachableBoundMs ?? 10_000;
    withStore(`an unreachable store fails every call with a retryable error within ${bound} ms, and works again when back`, async (s) => {
      await s.put('u/0/a.log', new Uint8Array([1, 2, 3]));
      const dir = mkdtempSync(join(tmpdir(), 'sluice-putfile-'));
      const file = join(dir, 'f');
      writeFileSync(file, randomBytes(1000));
      const back = await t.makeUnreachable!(s);
      try {
        const calls: Array<[string, () => Promise<unknown>]> = [
          ['put', () => s.put('u/0/b.log', new Uint8Array(3))],
          ['putFile', () => s.putFile('u/0/c.log', file, 1000)],
          ['get', () => s.get('u/0/a.log')],
          ['getRange', () => s.getRange('u/0/a.log', 0, 2)],
          ['head', () => s.head('u/0/a.log')],
          ['list', () => s.list('u/')],
          ['delete', () => s.delete('u/0/a.log')],
        ];
        for (const [name, call] of calls) {
          const t0 = Date.now();
          await assert.rejects(call(), (e: unknown) => e instanceof ArchiveStoreError && e.retryable && !e.notFound, name);
          const ms = Date.now() - t0;
          assert.ok(ms < bound, `${name} took ${ms} ms`);
        }
      } finally {
        await back();
        rmSync(dir, { recursive: true, force: true });
      }
      assert.deepEqual(Array.from(await s.get('u/0/a.log')), [1, 2, 3]);
    });
  }
}
