/**
 * `sluice produce` against etcd + 3 brokers (RF 3) right after kill -9 of the leader of
 * partition 0, as reported: `seq 1 10000 | sluice produce rep --bootstrap B1,B2,B3 --acks all`
 * with B1 the dead broker.
 *
 * What must hold: every line is delivered, each partition's lines in input order (first
 * occurrences), exit 0; and the partitions with a live leader are not held up by those of
 * the dead one: a progress line shows every line of the live-led partitions sent while the
 * others are still pending (the session TTL is long enough that failover takes seconds).
 *
 * The same run keyless (`seq 1 10000`, exactly as reported) goes on concurrently into a second
 * topic: all delivered, per-partition order, exit 0.
 *
 * Regression: the CLI failed the lines of the dead leader's partitions within ~4 s ("connect
 * ECONNREFUSED"), since the producer gave up after 5 retries; keyless, all 10,000 when the
 * sticky partition was one the dead broker led.
 */
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { partitionForKey } from '../../client/partitioner.ts';
import { startSluice, type CliProcess } from '../helpers/cli-process.ts';
import { createTopic, readAll, withCluster } from './harness.ts';

const TOPIC = 'rep';
const PARTITIONS = 6;
const LINES = 10_000;
const SEQ_TOPIC = 'rep-seq';
const SEQ_PARTITIONS = 3;

/** Checks a topic's log holds every line 1..LINES (value = line number), in order per partition; returns the record count. */
async function checkDelivered(bootstrap: string, topic: string, partitions: number, keyed: boolean): Promise<number> {
  const log = await readAll(bootstrap, topic, partitions);
  const seen = new Set<number>();
  let records = 0;
  for (const [p, msgs] of log) {
    let max = 0;
    for (const m of msgs) {
      records++;
      const v = Number(m.value!.toString());
      if (keyed) {
        assert.equal(m.key!.toString(), `k${v}`);
        assert.equal(partitionForKey(m.key!, partitions), p, `k${v} in its key's partition`);
      }
      if (seen.has(v)) continue;
      seen.add(v);
      assert.ok(v > max, `${topic}/${p}: line ${v} at offset ${m.offset} after line ${max}`);
      max = v;
    }
  }
  const missing = [];
  for (let v = 1; v <= LINES; v++) if (!seen.has(v)) missing.push(v);
  assert.deepEqual(missing.slice(0, 10), [], `${topic}: ${missing.length} line(s) lost`);
  return records;
}

test('sluice produce, acks=all, right after kill -9 of a partition leader: all lines delivered in order, live partitions not held up', { timeout: 180_000 }, async (t) => {
  // Failover takes about the session TTL: long enough to see the other partitions finish first.
  await withCluster(t, { brokers: 3, sessionTtlSeconds: 8 }, async (h) => {
    const admin = h.admin();
    const initial = await createTopic(admin, TOPIC, PARTITIONS, 3);
    await createTopic(admin, SEQ_TOPIC, SEQ_PARTITIONS, 3);
    const victim = initial[0]!.leader;
    const victimBootstrap = h.cluster.brokers.get(victim)!.bootstrap;
    const victimPartitions = new Set(initial.filter((p) => p.leader === victim).map((p) => p.partition));
    assert.ok(victimPartitions.size < PARTITIONS, 'some partition led by another broker');
    t.diagnostic(`leaders: ${initial.map((p) => `${p.partition}->${p.leader}`).join(' ')}; killing broker ${victim}`);

    // Line i is "k<i>:<i>": key k<i> picks the partition, the value is the line number.
    const input = Array.from({ length: LINES }, (_, i) => `k${i + 1}:${i + 1}\n`).join('');
    let liveLines = 0;
    for (let i = 1; i <= LINES; i++) if (!victimPartitions.has(partitionForKey(Buffer.from(`k${i}`), PARTITIONS))) liveLines++;

    await h.kill(victim);
    // The dead broker first: it must be skipped, not fail the run.
    const bootstrap = [victimBootstrap, ...h.liveIds().map((id) => h.cluster.brokers.get(id)!.bootstrap)].join(',');
    let cli: CliProcess | null = null;
    let seqCli: CliProcess | null = null;
    try {
      const startedMs = Date.now();
      cli = startSluice(['produce', TOPIC, '--bootstrap', bootstrap, '--acks', 'all', '--key-separator', ':', '--progress-interval-ms', '500']);
      seqCli = startSluice(['produce', SEQ_TOPIC, '--bootstrap', bootstrap, '--acks', 'all']);
      await Promise.all([cli.write(input), seqCli.write(Array.from({ length: LINES }, (_, i) => `${i + 1}\n`).join(''))]);
      cli.end();
      seqCli.end();
      const [r, rSeq] = await Promise.all([cli.exit(150_000), seqCli.exit(150_000)]);
      t.diagnostic(`keyless run: exit ${rSeq.code}; stderr:\n${rSeq.stderr}`);
      assert.equal(rSeq.code, 0, rSeq.stderr);
      t.diagnostic(`exit ${r.code} after ${Date.now() - startedMs} ms; stderr:\n${r.stderr}`);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, new RegExp(`${LINES} sent, 0 failed`), 'summary');

      // Not held up: at some progress report, every line for a live-led partition was sent
      // while lines (those of the dead leader's partitions) were still pending.
      const progress = [...r.stderr.matchAll(/(\d+) sent, (\d+) pending/g)].map((m) => ({ sent: Number(m[1]), pending: Number(m[2]) }));
      t.diagnostic(`${liveLines} lines for live-led partitions; progress: ${progress.map((p) => `${p.sent}/${p.pending}`).join(' ')}`);
      assert.ok(progress.some((p) => p.sent >= liveLines && p.pending > 0), 'live-led partitions were done while the others waited for failover');

      const records = await checkDelivered(h.bootstrap, TOPIC, PARTITIONS, true);
      const seqRecords = await checkDelivered(h.bootstrap, SEQ_TOPIC, SEQ_PARTITIONS, false);
      t.diagnostic(`records for ${LINES} lines: keyed ${records}, keyless ${seqRecords} (the rest are retry duplicates)`);
    } finally {
      cli?.kill();
      seqCli?.kill();
    }
  });
});
