/**
 * Issue 9's transaction proof: a consume-transform-produce process (eos-pipeline-process.ts:
 * exactly-once group consumer + transactional producer committing its input offsets with
 * tx.sendOffsets) is killed with kill -9 at random points, at least 20 times, while this test
 * reads its output with a read_committed consumer. Then:
 *
 * - the output, read_committed, holds every input record exactly once (by its input
 *   partition and offset), and the reader that followed the output during the run never saw
 *   a record twice: aborted data never reached read_committed;
 * - the output read read_uncommitted holds more records than that: the transactions the
 *   kills interrupted were aborted, and read_uncommitted sees their records.
 *
 * Real processes: one broker, the pipeline instances (each started, killed, replaced), all
 * stopped at the end. The kills land inside open transactions too (--delay-ms holds each
 * transaction open after its sends).
 */
import { strict as assert } from 'node:assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { Admin } from '../../client/admin.ts';
import { Consumer } from '../../client/consumer.ts';
import { Producer } from '../../client/producer.ts';
import { repoRoot, startBroker, tempDir, type BrokerProcess } from '../helpers/broker-process.ts';

const INPUTS = 10_000;
const PARTITIONS = 3;
const KILLS = 20;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function readLines(file: string): string[] {
  try {
    return readFileSync(file, 'utf8').split('\n');
  } catch {
    return [];
  }
}

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const p of live) p.kill('SIGKILL');
});

function startPipeline(bootstrap: string, logFile: string): ChildProcess {
  const proc = spawn(process.execPath, [
    '--import', 'tsx', join(repoRoot, 'test/group/eos-pipeline-process.ts'),
    '--bootstrap', bootstrap, '--group', 'eos', '--in', 'in', '--out', 'out',
    '--transactional-id', 'eos-pipeline', '--log', logFile,
    '--max-poll-records', '50', '--delay-ms', '100', '--session-timeout-ms', '1500',
  ], { cwd: repoRoot, stdio: ['ignore', 'ignore', 'pipe'] });
  live.add(proc);
  proc.on('exit', () => live.delete(proc));
  proc.stderr!.resume();
  return proc;
}

function exited(proc: ChildProcess): Promise<void> {
  return proc.exitCode !== null || proc.signalCode !== null ? Promise.resolve() : new Promise((r) => proc.once('exit', () => r()));
}

/** Reads the whole output topic at one isolation level; values keyed by the input record they came from. */
async function readOutput(bootstrap: string, isolation: 'read_committed' | 'read_uncommitted'): Promise<string[]> {
  const admin = new Admin({ bootstrap });
  const consumer = new Consumer({ bootstrap, isolation, maxWaitMs: 100, autoOffsetReset: 'none' });
  try {
    const ends: number[] = [];
    for (let p = 0; p < PARTITIONS; p++) ends.push(await admin.listOffsets('out', p, 'latest'));
    await consumer.assign(Array.from({ length: PARTITIONS }, (_, p) => ({ topic: 'out', partition: p, offset: 0 })));
    const out: string[] = [];
    const deadline = Date.now() + 30_000;
    // Positions pass control batches and aborted records too, so they reach the ends.
    while (ends.some((end, p) => consumer.position('out', p) < end)) {
      assert.ok(Date.now() < deadline, `reading out (${isolation}) timed out at ${ends.map((_, p) => consumer.position('out', p)).join(',')} of ${ends.join(',')}`);
      for (const m of await consumer.poll(100)) out.push(m.value!.toString());
    }
    return out;
  } finally {
    await consumer.close();
    await admin.close();
  }
}

test(`consume-transform-produce killed ${KILLS} times: read_committed output holds each input exactly once`, { timeout: 300_000 }, async (t) => {
  const broker: BrokerProcess = await startBroker();
  const logFile = join(tempDir('sluice-eos-pipeline-'), 'pipeline.log');
  let proc: ChildProcess | null = null;
  let follower: Consumer | null = null;
  try {
    const admin = new Admin({ bootstrap: broker.bootstrap });
    await admin.createTopics([{ topic: 'in', partitions: PARTITIONS, replicationFactor: 1 }, { topic: 'out', partitions: PARTITIONS, replicationFactor: 1 }]);
    await admin.close();
    // Small batches: a poll hands out whole batches, and a transaction per ~50 inputs gives
    // the kills many transactions to interrupt.
    const producer = new Producer({ bootstrap: broker.bootstrap, batchSize: 2048 });
    await Promise.all(Array.from({ length: INPUTS }, (_, i) => producer.send({ topic: 'in', partition: i % PARTITIONS, value: `in-${i}` })));
    await producer.close();

    // Follows the output during the run, read_committed: it must never see a record twice.
    follower = new Consumer({ bootstrap: broker.bootstrap, isolation: 'read_committed', maxWaitMs: 100 });
    await follower.assign(Array.from({ length: PARTITIONS }, (_, p) => ({ topic: 'out', partition: p, offset: 0 })));
    const followed = new Map<string, number>();
    let followerDuplicates = 0;
    let following = true;
    const followLoop = (async () => {
      while (following) {
        for (const m of await follower!.poll(100)) {
          const v = m.value!.toString();
          if (followed.has(v)) followerDuplicates++;
          followed.set(v, (followed.get(v) ?? 0) + 1);
        }
      }
    })();

    const lines = (prefix: string): number => readLines(logFile).filter((l) => l.startsWith(prefix)).length;
    for (let kill = 0; kill < KILLS; kill++) {
      const started = lines('START');
      proc = startPipeline(broker.bootstrap, logFile);
      // Once it runs (its group session replaced the killed one's, about 1.5 s later, and it
      // is inside its transactions), at a random point.
      const startDeadline = Date.now() + 30_000;
      while (lines('START') === started) {
        assert.ok(Date.now() < startDeadline, 'a pipeline instance did not start within 30 s');
        await sleep(50);
      }
      await sleep(500 + Math.floor(Math.random() * 2500));
      proc.kill('SIGKILL');
      await exited(proc);
    }
    // A last instance finishes the input.
    t.diagnostic(`after ${KILLS} kills: ${followed.size} of ${INPUTS} inputs in the read_committed output`);
    proc = startPipeline(broker.bootstrap, logFile);
    const deadline = Date.now() + 120_000;
    while (followed.size < INPUTS) {
      assert.ok(Date.now() < deadline, `the pipeline did not finish: ${followed.size} of ${INPUTS} inputs in the output`);
      if (proc.exitCode !== null) proc = startPipeline(broker.bootstrap, logFile); // an ERR exit: go on
      await sleep(200);
    }
    proc.kill('SIGTERM');
    await exited(proc);
    following = false;
    await followLoop;

    const committed = await readOutput(broker.bootstrap, 'read_committed');
    const uncommitted = await readOutput(broker.bootstrap, 'read_uncommitted');
    const starts = lines('START');
    const txns = lines('TXN');
    t.diagnostic(`${starts} pipeline instances, ${txns} committed transactions; output: ${committed.length} read_committed, ${uncommitted.length} read_uncommitted`);

    // Every input exactly once, by the (partition, offset) it came from.
    const count = new Map<string, number>();
    for (const v of committed) {
      const [, partition, offset] = v.split('|');
      const k = `${partition}/${offset}`;
      count.set(k, (count.get(k) ?? 0) + 1);
    }
    const twice = [...count].filter(([, n]) => n > 1).map(([k]) => k);
    assert.deepEqual(twice.slice(0, 10), [], `${twice.length} inputs appear more than once in the read_committed output`);
    assert.equal(count.size, INPUTS, `every input once: ${count.size} distinct of ${INPUTS}`);
    assert.equal(committed.length, INPUTS);
    assert.equal(followerDuplicates, 0, 'the read_committed reader never saw a record twice during the run');
    assert.ok(starts >= KILLS, `${starts} instances started`);
    // The kills interrupted open transactions: their records are in the log, aborted.
    assert.ok(uncommitted.length > committed.length, `read_uncommitted sees the aborted records too (${uncommitted.length} > ${committed.length})`);
  } finally {
    if (proc && proc.exitCode === null) {
      proc.kill('SIGKILL');
      await exited(proc);
    }
    for (const p of live) p.kill('SIGKILL');
    await follower?.close().catch(() => {});
    await broker.stop();
    broker.cleanup();
  }
});
