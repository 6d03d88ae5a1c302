// A metadata change that cannot be written changes nothing: on a really full disk (a small
// tmpfs, mounted when running as root; skipped otherwise), DeleteTopics and CreateTopics
// answer STORAGE_ERROR, the broker lists exactly what it listed before, and a restart after
// space came back shows the same topics and data: no deleted-after-restart victim, no
// created-after-restart ghost.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCode } from '../../../protocol/errors.ts';
import { Connection } from '../../../client/connection.ts';
import { startBroker, type BrokerProcess } from '../../helpers/broker-process.ts';
import { countMessages, createTopic, createTopicCode, deleteTopicCode, produceMessages, topicNames } from '../../helpers/messages.ts';

const PAGE_BYTES = 4096;

/** Appends to `file` until the filesystem refuses a page: the disk is then full. */
function fillUp(file: string): void {
  const fd = openSync(file, 'a');
  const page = Buffer.alloc(PAGE_BYTES, 0x5a);
  try {
    for (let i = 0; i < 1_000_000; i++) writeSync(fd, page);
    throw new Error('the filesystem never filled up');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
  } finally {
    closeSync(fd);
  }
}

/**
 * Deletes topics from `names` while the disk stays full (topping it up after each, since a
 * deleted topic frees its pages) until a deletion is refused; returns that error code. Each
 * accepted deletion fills the journal's last page further, so once one is refused no change
 * at least as large as it can fit any more.
 */
async function deleteUntilRefused(c: Connection, names: string[], filler: string): Promise<{ code: number; name: string }> {
  for (const name of names) {
    const code = await deleteTopicCode(c, name);
    if (code !== 0) return { code, name };
    fillUp(filler);
  }
  throw new Error(`all ${names.length} deletions succeeded on a full disk`);
}

test('on a full disk DeleteTopics and CreateTopics answer STORAGE_ERROR and change nothing, in memory or after a restart', async (t) => {
  if (process.getuid?.() !== 0) {
    t.skip('needs root to mount a small tmpfs as a full disk');
    return;
  }
  const mnt = mkdtempSync(join(tmpdir(), 'sluice-full-disk-'));
  const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=16m', 'tmpfs', mnt]);
  if (mounted.status !== 0) {
    rmSync(mnt, { recursive: true, force: true });
    t.skip(`cannot mount a tmpfs here: ${mounted.stderr}`);
    return;
  }
  const unmount = () => spawnSync('umount', ['-l', mnt]);
  process.once('exit', unmount);
  const dataDir = join(mnt, 'data');
  const filler = join(mnt, 'filler');
  mkdirSync(dataDir);
  let b: BrokerProcess | undefined;
  try {
    b = await startBroker({ dataDir });
    let c = await Connection.connect(b.host, b.port);
    const victim = `victim-${'v'.repeat(120)}`;
    const newbie = `newbie-${'n'.repeat(120)}`;
    await createTopic(c, victim);
    await produceMessages(c, victim, 300, 'kept');
    // Pads: long names fill the journal's last page to within one long deletion record,
    // short ones to within one short record, smaller than any change below.
    const longPads = Array.from({ length: 20 }, (_, i) => `L${i}-${'x'.repeat(200)}`);
    const shortPads = Array.from({ length: 20 }, (_, i) => `s${String.fromCharCode(97 + i)}`);
    for (const name of [...longPads, ...shortPads]) await createTopic(c, name);
    const listedBefore = await topicNames(c);

    fillUp(filler);
    const long = await deleteUntilRefused(c, longPads, filler);
    assert.equal(long.code, ErrorCode.STORAGE_ERROR, `a deletion refused for lack of space answers STORAGE_ERROR, not ${long.code}`);
    const short = await deleteUntilRefused(c, shortPads, filler);
    assert.equal(short.code, ErrorCode.STORAGE_ERROR);
    const listedFull = await topicNames(c);
    assert.ok(listedFull.includes(long.name) && listedFull.includes(short.name), 'refused deletions leave their topics listed');

    assert.equal(await deleteTopicCode(c, victim), ErrorCode.STORAGE_ERROR);
    assert.equal(await createTopicCode(c, newbie), ErrorCode.STORAGE_ERROR);
    const listedAfter = await topicNames(c);
    assert.ok(listedAfter.includes(victim), 'the topic whose deletion failed is still listed');
    assert.ok(!listedAfter.includes(newbie), 'the topic whose creation failed is not listed');
    assert.equal(await countMessages(c, victim), 300);

    // Space comes back: the broker writes metadata again without a restart...
    rmSync(filler);
    await createTopic(c, 'after-full');
    const listedBeforeRestart = await topicNames(c);
    c.close();
    assert.equal(await b.stop(), 0, b.log());
    // ...and a restart shows exactly what was listed.
    b = await startBroker({ dataDir });
    c = await Connection.connect(b.host, b.port);
    assert.deepEqual(await topicNames(c), listedBeforeRestart);
    assert.ok(!listedBeforeRestart.includes(newbie));
    assert.equal(await countMessages(c, victim), 300, 'the victim kept its data');
    for (const name of listedBefore) if (![...longPads, ...shortPads].includes(name)) assert.ok(listedBeforeRestart.includes(name), name);
    c.close();
    assert.equal(await b.stop(), 0, b.log());
  } finally {
    await b?.kill();
    unmount();
    process.off('exit', unmount);
    rmSync(mnt, { recursive: true, force: true });
  }
});
