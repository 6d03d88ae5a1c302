/**
 * Measurement (not a test; the suite does not run it): how long acks=all production stalls
 * when one broker fails. For each fault type it starts a fresh cluster (etcd + 4 brokers on
 * 127.0.0.1, see test/helpers/cluster.ts), creates a topic with 3 partitions, RF 3 and
 * min.insync.replicas 2, runs an acks=all producer at a steady rate on every partition,
 * injects the fault and reports, per partition, the longest gap without any acknowledgement
 * from 1 s before the fault to the end of the observation window.
 *
 * Fault types:
 *   follower-kill   kill -9 of the broker that leads no partition (4 brokers, 3 partitions)
 *   follower-stop   SIGSTOP of that broker (SIGCONT before teardown)
 *   leader-kill     kill -9 of the leader of partition 0 (it follows other partitions too)
 *   leader-stop     SIGSTOP of the leader of partition 0
 * Each partition's line says which role the victim had in it (leader / follower / none).
 *
 * Usage: node --import tsx test/cluster/fault-stall.ts [fault ...] [--ttl S] [--lag MS] [--observe MS]
 * Output: one line per fault and partition, then one JSON line with everything.
 * Every process it starts is stopped again (SIGKILL at teardown), also on failure.
 */
import { Admin } from '../../client/admin.ts';
import { Producer } from '../../client/producer.ts';
import { TestCluster } from '../helpers/cluster.ts';
import { createTopic, sleep, waitFor, withTimeout } from './harness.ts';

const FAULTS = ['follower-kill', 'follower-stop', 'leader-kill', 'leader-stop'] as const;
type Fault = (typeof FAULTS)[number];

const PARTITIONS = 3;
const SEND_INTERVAL_MS = 10;

interface Result {
  fault: Fault;
  victim: number;
  controller: number;
  partitions: Array<{ partition: number; victimRole: 'leader' | 'follower' | 'none'; longestGapMs: number; resumed: boolean; acks: number }>;
  failedSends: number;
  /** 'ISR shrunk' log lines of all brokers before the fault (spurious: every broker was healthy) and after it. */
  isrShrinksBeforeFault: number;
  isrShrinksAfterFault: number;
}

function isrShrinks(cluster: TestCluster): number {
  let n = 0;
  for (const b of cluster.brokers.values()) n += b.log().split('\n').filter((l) => l.includes('ISR shrunk')).length;
  return n;
}

function argValue(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

async function measure(fault: Fault, ttlSeconds: number, lagMs: number, observeMs: number): Promise<Result> {
  const cluster = await TestCluster.start({ brokers: 4, sessionTtlSeconds: ttlSeconds, replicaLagTimeMaxMs: lagMs, offsetsTopicReplicationFactor: 3 });
  const admin = new Admin({ bootstrap: cluster.bootstrap, requestTimeoutMs: 5000 });
  const producer = new Producer({ bootstrap: cluster.bootstrap, acks: 'all', lingerMs: 2, retries: 1000, retryBackoffMs: 50, retryBackoffMaxMs: 250, requestTimeoutMs: 10_000 });
  let stopped: number | null = null;
  let stop = false;
  const pending = new Set<Promise<void>>();
  let producing: Promise<void> = Promise.resolve();
  try {
    const topic = `stall-${fault}`;
    const initial = await createTopic(admin, topic, PARTITIONS, 3, { 'min.insync.replicas': 2 });
    const controller = (await admin.metadata([])).controllerId;
    const leaders = new Set(initial.map((p) => p.leader));
    const ids = [...cluster.brokers.keys()];
    const victim = fault.startsWith('follower') ? ids.find((b) => !leaders.has(b))! : initial[0]!.leader;
    const acks: number[][] = Array.from({ length: PARTITIONS }, () => []);
    let failedSends = 0;
    producing = (async () => {
      while (!stop) {
        for (let p = 0; p < PARTITIONS; p++) {
          const s = producer.send({ topic, partition: p, value: `v${Date.now()}` }).then(
            () => void acks[p]!.push(Date.now()),
            () => void failedSends++,
          ).finally(() => pending.delete(s));
          pending.add(s);
        }
        await sleep(SEND_INTERVAL_MS);
      }
    })();
    await waitFor('acknowledgements on every partition', () => acks.every((a) => a.length >= 50), 20_000);
    await sleep(2000); // steady state
    const isrShrinksBeforeFault = isrShrinks(cluster);
    const faultAt = Date.now();
    const proc = cluster.brokers.get(victim)!;
    if (fault.endsWith('kill')) await cluster.kill(victim);
    else {
      proc.proc.kill('SIGSTOP');
      stopped = victim;
    }
    await sleep(observeMs);
    const end = Date.now();
    const isrShrinksAfterFault = isrShrinks(cluster) - isrShrinksBeforeFault;
    const partitions = initial.map((p) => {
      const times = acks[p.partition]!.filter((t) => t >= faultAt - 1000 && t <= end);
      let longest = 0;
      let prev = faultAt - 1000;
      for (const t of times) {
        longest = Math.max(longest, t - prev);
        prev = t;
      }
      const resumed = prev > faultAt;
      longest = Math.max(longest, end - prev);
      const victimRole = p.leader === victim ? ('leader' as const) : p.replicas.includes(victim) ? ('follower' as const) : ('none' as const);
      return { partition: p.partition, victimRole, longestGapMs: longest, resumed, acks: times.length };
    });
    return { fault, victim, controller, partitions, failedSends, isrShrinksBeforeFault, isrShrinksAfterFault };
  } finally {
    stop = true;
    await producing.catch(() => {});
    if (stopped !== null) cluster.brokers.get(stopped)?.proc.kill('SIGCONT');
    await withTimeout(Promise.allSettled([...pending]), 15_000, 'settling sends').catch(() => {});
    await producer.close().catch(() => {});
    await admin.close().catch(() => {});
    for (const id of [...cluster.brokers.keys()]) await cluster.kill(id).catch(() => {});
    await cluster.stop();
  }
}

const chosen = process.argv.slice(2).filter((a): a is Fault => (FAULTS as readonly string[]).includes(a));
const ttl = argValue('--ttl', 2);
const lag = argValue('--lag', 3000);
const observe = argValue('--observe', 12_000);
const results: Result[] = [];
for (const fault of chosen.length ? chosen : FAULTS) {
  const r = await measure(fault, ttl, lag, observe);
  results.push(r);
  for (const p of r.partitions) {
    console.log(`${fault.padEnd(14)} victim ${r.victim} (controller ${r.controller}) partition ${p.partition} victim-role ${p.victimRole.padEnd(8)} longest gap ${String(p.longestGapMs).padStart(6)} ms${p.resumed ? '' : ' (NOT RESUMED)'}; ${p.acks} acks`);
  }
  if (r.failedSends) console.log(`${fault}: ${r.failedSends} sends failed`);
  console.log(`${fault}: ISR shrinks logged before the fault ${r.isrShrinksBeforeFault} (all brokers healthy), after it ${r.isrShrinksAfterFault}`);
}
console.log(JSON.stringify({ ttlSeconds: ttl, replicaLagTimeMaxMs: lag, observeMs: observe, results }));
process.exit(0);
