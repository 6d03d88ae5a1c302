/**
 * Exactly-once consume-transform-produce under kill -9 (issue 9, "Transactions" proof): the
 * pipeline process (eos-pipeline-process.ts) reads IN as group member, writes one record per
 * input to OUT in a transaction with the input offsets, and is killed with SIGKILL at random
 * points at least KILLS times, restarted each time (same transactional id and member id, as a
 * supervisor would). Meanwhile a read_committed consumer reads OUT. Afterwards:
 * - read_committed saw every input exactly once (no loss, no duplicate), and never a record
 *   of an aborted transaction;
 * - read_uncommitted sees the aborted records too (the kills left some), so the check can fail.
 */
import { strict as assert } from 'node:assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { Admin } from '../../client/admin.ts';
import { Consumer } from '../../client/consumer.ts';
import { Producer } from '../../client/producer.ts';
import { repoRoot, startBroker, tempDir } from '../helpers/broker-process.ts';
import { readFileSync, rmSync } from 'node:fs';

const IN = 'eos-in';
const OUT = 'eos-out';
const PARTITIONS = 3;
const INPUTS = 3000;
const KILLS = 20;
/** A kill lands this long after a (re)start, at random: before the join, inside transactions, between them. */
const KILL_AFTER_MS_MIN = 500;
const KILL_AFTER_MS_MAX = 2500;
/** Inputs per produce call (a few per partition): small record batches, so transactions stay small (maxPollRecords 50). */
const INPUT_CHUNK = 15;
const FINISH_TIMEOUT_MS = 120_000;

function startPipeline(bootstrap: string, log: string): ChildProcess {
  return spawn(
    process.execPath,
    ['--import', 'tsx', join(repoRoot, 'test/group/eos-pipeline-process.ts'), '--bootstrap', bootstrap, '--group', 'eos-g', '--in', IN, '--out', OUT, '--transactional-id', 'eos-pipeline-1', '--member-id', 'eos-pipeline-member-1', '--log', log, '--max-poll-records', '50', '--delay-ms', '20'],
    { cwd: repoRoot, stdio: ['ignore', 'ignore', 'inherit'] },
  );
}

function exited(p: ChildProcess): Promise<void> {
  return p.exitCode !== null || p.signalCode !== null ? Promise.resolve() : new Promise((r) => p.once('exit', () => r()));
}

test('consume-transform-produce killed with kill -9 20 times: read_committed output holds each input exactly once', async (t) => {
  const broker = await startBroker();
  const dir = tempDir('eos-pipeline-');
  const admin = new Admin({ bootstrap: broker.bootstrap });
  const reader = new Consumer({ bootstrap: broker.bootstrap, isolation: 'read_committed', maxWaitMs: 200 });
  let pipeline: ChildProcess | null = null;
  t.after(async () => {
    pipeline?.kill('SIGKILL');
    await reader.close();
    await admin.close();
    await broker.stop();
    broker.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });
  await admin.createTopics([{ topic: IN, partitions: PARTITIONS }, { topic: OUT, partitions: PARTITIONS }]);
  const producer = new Producer({ bootstrap: broker.bootstrap, acks: 'all' });
  try {
    for (let from = 0; from < INPUTS; from += INPUT_CHUNK) {
      await producer.sendBatch(Array.from({ length: Math.min(INPUT_CHUNK, INPUTS - from) }, (_, j) => ({ topic: IN, partition: (from + j) % PARTITIONS, value: `in-${from + j}` })));
    }
  } finally {
    await producer.close();
  }

  // The read_committed reader runs throughout, as the issue asks.
  await reader.assign(Array.from({ length: PARTITIONS }, (_, partition) => ({ topic: OUT, partition, offset: 'earliest' as const })));
  const seen: string[] = [];
  let reading = true;
  const readLoop = (async () => {
    while (reading) for (const m of await reader.poll(200)) seen.push(m.value!.toString());
  })();

  const log = join(dir, 'pipeline.log');
  for (let kill = 0; kill < KILLS; kill++) {
    pipeline = startPipeline(broker.bootstrap, log);
    await new Promise((r) => setTimeout(r, KILL_AFTER_MS_MIN + Math.random() * (KILL_AFTER_MS_MAX - KILL_AFTER_MS_MIN)));
    pipeline.kill('SIGKILL');
    await exited(pipeline);
  }
  // The last instance runs until the group's committed offsets reach the end of IN (restarted,
  // as a supervisor would, should it exit on an error: counted and reported).
  pipeline = startPipeline(broker.bootstrap, log);
  let restarts = 0;
  const deadline = Date.now() + FINISH_TIMEOUT_MS;
  for (;;) {
    if (pipeline.exitCode !== null || pipeline.signalCode !== null) {
      restarts++;
      pipeline = startPipeline(broker.bootstrap, log);
    }
    const offsets = await admin.fetchOffsets('eos-g', [IN]);
    if (offsets.length === PARTITIONS && offsets.reduce((n, o) => n + Math.max(o.offset, 0), 0) >= INPUTS) break;
    if (Date.now() > deadline) throw new Error(`the pipeline did not finish within ${FINISH_TIMEOUT_MS} ms: committed ${JSON.stringify(offsets)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  pipeline.kill('SIGTERM');
  await exited(pipeline);
  pipeline = null;
  // Let the reader catch up with the last committed transaction.
  const until = Date.now() + 10_000;
  while (new Set(seen).size < INPUTS && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
  reading = false;
  await readLoop;

  const inputs = seen.map((v) => v.split('|')[0]!);
  const counts = new Map<string, number>();
  for (const v of inputs) counts.set(v, (counts.get(v) ?? 0) + 1);
  const missing = Array.from({ length: INPUTS }, (_, i) => `in-${i}`).filter((v) => !counts.has(v));
  const duplicated = [...counts].filter(([, n]) => n > 1);
  assert.deepEqual(missing, [], `read_committed: ${missing.length} inputs missing`);
  assert.deepEqual(duplicated, [], `read_committed: ${duplicated.length} inputs duplicated`);
  assert.equal(seen.length, INPUTS);

  // read_uncommitted sees what the killed transactions wrote before they were aborted.
  const dirty = new Consumer({ bootstrap: broker.bootstrap, isolation: 'read_uncommitted', maxWaitMs: 200 });
  try {
    await dirty.assign(Array.from({ length: PARTITIONS }, (_, partition) => ({ topic: OUT, partition, offset: 'earliest' as const })));
    let dirtyCount = 0;
    const ends = await Promise.all(Array.from({ length: PARTITIONS }, async (_, p) => (await admin.listOffsets(OUT, p, 'latest')) as number));
    const stop = Date.now() + 10_000;
    while (Array.from({ length: PARTITIONS }, (_, p) => dirty.position(OUT, p) < ends[p]!).some(Boolean) && Date.now() < stop) dirtyCount += (await dirty.poll(200)).length;
    assert.ok(dirtyCount > INPUTS, `read_uncommitted saw ${dirtyCount} records: the aborted ones too (read_committed ${seen.length})`);
    const lines = readFileSync(log, 'utf8').split('\n');
    const starts = lines.filter((l) => l.startsWith('START ')).length;
    const txns = lines.filter((l) => l.startsWith('TXN ')).length;
    // Transactions committed by instances that were later killed: the kills hit a running pipeline.
    let beforeLastStart = 0;
    let seenStarts = 0;
    for (const l of lines) {
      if (l.startsWith('START ')) seenStarts++;
      else if (l.startsWith('TXN ') && seenStarts < starts - restarts) beforeLastStart++;
    }
    assert.ok(beforeLastStart > 0, 'the killed instances committed transactions too');
    const errors = lines.filter((l) => l.startsWith('ERR ') || l.startsWith('LOST '));
    if (errors.length > 0) t.diagnostic(`${errors.length} ERR/LOST lines, the first: ${errors[0]!.slice(0, 300)}`);
    t.diagnostic(`${KILLS} kills, ${restarts} restarts after an error exit, ${starts} starts, ${txns} committed transactions (${beforeLastStart} by killed instances); read_committed ${seen.length} records, read_uncommitted ${dirtyCount} (${dirtyCount - seen.length} of aborted transactions)`);
  } finally {
    await dirty.close();
  }
});
