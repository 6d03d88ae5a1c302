/**
 * Issue 9's transaction proof: a consume-transform-produce process (eos-pipeline-process.ts:
 * exactly-once group consumer + one producer transaction per polled batch, with the consumed
 * offsets sent in the transaction) is killed with SIGKILL at a random point 1-8 s after it
 * started (waiting for its partitions, inside a transaction, or between two), and started
 * again with the same transactional id, which fences the dead instance and aborts what it
 * left open. Finally one instance runs until every input is processed. Then:
 *  - read_committed: every input (partition, offset) is in the output exactly once;
 *  - read_uncommitted: also the aborted records of the killed transactions (more records).
 * Kills: SLUICE_EOS_PIPELINE_KILLS (default 20).
 */
import { strict as assert } from 'node:assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { Admin } from '../../client/admin.ts';
import { Consumer } from '../../client/consumer.ts';
import { Producer } from '../../client/producer.ts';
import { repoRoot, startBroker, tempDir } from '../helpers/broker-process.ts';

const KILLS = Number(process.env.SLUICE_EOS_PIPELINE_KILLS ?? 20);
/** Inputs written before the first instance starts; more arrive steadily during the kills. */
const INITIAL_INPUTS = 1000;
const PARTITIONS = 2;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function txnLines(log: string): string[] {
  return existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter((l) => l.startsWith('TXN ')) : [];
}

async function readOut(bootstrap: string, isolation: 'read_committed' | 'read_uncommitted', idleMs: number): Promise<string[]> {
  const c = new Consumer({ bootstrap, isolation, maxWaitMs: 200 });
  const out: string[] = [];
  try {
    await c.assign(Array.from({ length: PARTITIONS }, (_, p) => ({ topic: 'out', partition: p, offset: 0 })));
    let lastMs = Date.now();
    while (Date.now() - lastMs < idleMs) {
      const ms = await c.poll(200);
      if (ms.length > 0) lastMs = Date.now();
      for (const m of ms) out.push(m.value!.toString());
    }
  } finally {
    await c.close();
  }
  return out;
}

test('consume-transform-produce killed with SIGKILL again and again: read_committed output holds each input exactly once', { timeout: 900_000 }, async (t) => {
  const b = await startBroker();
  const dir = tempDir('sluice-eos-pipeline-');
  const children = new Set<ChildProcess>();
  t.after(async () => {
    for (const c of children) c.kill('SIGKILL');
    await b.stop();
    b.cleanup();
  });
  const admin = new Admin({ bootstrap: b.bootstrap });
  await admin.createTopics([{ topic: 'in', partitions: PARTITIONS }, { topic: 'out', partitions: PARTITIONS }]);
  await admin.close();
  const input = new Producer({ bootstrap: b.bootstrap });
  let inputs = 0;
  const sendInputs = (n: number) => input.sendBatch(Array.from({ length: n }, () => ({ topic: 'in', key: `k${inputs}`, value: `v${inputs++}` })));
  await sendInputs(INITIAL_INPUTS);
  // A trickle of input during the kills keeps transactions small, so instances also get
  // killed between committed transactions, not only inside one.
  let feeding = true;
  const feeder = (async () => {
    while (feeding) {
      await sendInputs(10);
      await sleep(200);
    }
  })();

  const start = (n: number, delayMs: number): { child: ChildProcess; log: string; exited: Promise<number | null> } => {
    const log = join(dir, `pipeline-${n}.log`);
    const child = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, 'test/group/eos-pipeline-process.ts'),
      '--bootstrap', b.bootstrap, '--group', 'pipe', '--in', 'in', '--out', 'out', '--transactional-id', 'pipe-0',
      '--log', log, '--max-poll-records', '50', '--delay-ms', String(delayMs)], { cwd: repoRoot, stdio: 'ignore' });
    children.add(child);
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => { children.delete(child); r(code); }));
    return { child, log, exited };
  };

  let committedTxns = 0;
  for (let k = 0; k < KILLS; k++) {
    const inst = start(k, 100);
    // A random point: while it waits for the dead instance's partitions (group session
    // timeout), inside a transaction (sends done, sleeping), or between transactions.
    await sleep(1000 + Math.floor(Math.random() * 7000));
    inst.child.kill('SIGKILL');
    await inst.exited;
    committedTxns += txnLines(inst.log).length;
  }
  feeding = false;
  await feeder;
  await input.close();
  const INPUTS = inputs;
  // The last instance runs until every input is in a committed transaction.
  const last = start(KILLS, 0);
  const deadline = Date.now() + 180_000;
  let committed: string[] = [];
  while (Date.now() < deadline) {
    committed = await readOut(b.bootstrap, 'read_committed', 1000);
    if (new Set(committed.map((v) => v.slice(v.indexOf('|') + 1))).size >= INPUTS) break;
  }
  last.child.kill('SIGTERM');
  await last.exited;
  committed = await readOut(b.bootstrap, 'read_committed', 1500);
  const uncommitted = await readOut(b.bootstrap, 'read_uncommitted', 1500);

  const count = new Map<string, number>();
  for (const v of committed) {
    const id = v.slice(v.indexOf('|') + 1);
    count.set(id, (count.get(id) ?? 0) + 1);
  }
  const dups = [...count].filter(([, n]) => n > 1).map(([id, n]) => `${id} x${n}`);
  t.diagnostic(`${KILLS} kills (${committedTxns} transactions committed by the killed instances), ${committed.length} committed output records for ${INPUTS} inputs, ${uncommitted.length} read_uncommitted`);
  assert.deepEqual(dups.slice(0, 10), [], `${dups.length} inputs in the committed output more than once`);
  assert.equal(count.size, INPUTS, 'every input in the committed output');
  assert.ok(uncommitted.length > committed.length, 'read_uncommitted also sees aborted records of killed transactions');
});
