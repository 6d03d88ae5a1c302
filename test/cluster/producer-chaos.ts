/**
 * The producer-side exactly-once proof of issue 9: a real cluster (etcd + 3 brokers, RF 3,
 * min.insync.replicas 2), a producer with acks=all sending numbered records to every
 * partition without pause, and a chaos loop that kill -9s partition leaders (then restarts
 * them) and freezes leaders with SIGSTOP (then SIGCONT). Afterwards the topic is read from
 * offset 0 and compared with what the producer was told:
 *
 * - lost: an acknowledged record missing from its partition;
 * - duplicated: a record (acknowledged or not) stored more than once;
 * - out of order: a partition whose records are not in send order (their numbers must
 *   strictly increase along the log).
 *
 * With the idempotent producer all three must be 0. Without it, retries across leader
 * changes duplicate records: run `node --import tsx test/cluster/producer-chaos.ts
 * --no-idempotent` to see how many (the figures come out as JSON), which shows the checks
 * can fail. The test file producer-chaos.test.ts runs the idempotent case.
 *
 * Every process started here is stopped by the harness, failure or not. Loops are bounded by
 * the fault count and every wait has a timeout.
 */
import type { TestContext } from 'node:test';
import { Producer } from '../../client/producer.ts';
import { createTopic, partitionsOf, readAll, sleep, waitForIsrSize, withCluster, withTimeout, type Harness } from './harness.ts';

export interface ChaosOptions {
  idempotent: boolean;
  kills: number;
  pauses: number;
  partitions: number;
  /** Pause between two sends to each partition. */
  sendIntervalMs: number;
  log?: (line: string) => void;
}

export interface ChaosResult {
  idempotent: boolean;
  kills: number;
  pauses: number;
  sent: number;
  acknowledged: number;
  failed: number;
  stored: number;
  lost: number;
  duplicated: number;
  outOfOrder: number;
  durationMs: number;
  /** Why the producer retried, with counts (reasons sampled from retryStatus(), numbers stripped). */
  retryReasons: Record<string, number>;
  examples: string[];
}

const TOPIC = 'chaos';
/** How long a restarted or resumed broker may take to be back in every ISR before the next fault. */
const ISR_RECOVERY_MS = 45_000;

/** Runs the faults one after another: kills and pauses interleaved, each on the current leader of a partition. */
async function chaos(h: Harness, opts: ChaosOptions, log: (line: string) => void): Promise<{ kills: number; pauses: number }> {
  const admin = h.admin();
  const total = opts.kills + opts.pauses;
  let kills = 0;
  let pauses = 0;
  // A fault is skipped (and tried again on the next pass) while a partition has no live
  // leader; the bound keeps a cluster that never recovers from looping forever.
  for (let i = 0; kills + pauses < total && i < total * 3; i++) {
    // Spread the pauses evenly among the kills.
    const pause = pauses < opts.pauses && (kills >= opts.kills || (i * opts.pauses) % total < opts.pauses);
    const partitions = await partitionsOf(admin, TOPIC);
    const leader = partitions[i % partitions.length]!.leader;
    if (leader < 0 || !h.cluster.brokers.has(leader)) {
      await sleep(500);
      continue;
    }
    if (pause) {
      const proc = h.cluster.brokers.get(leader)!.proc;
      const frozenMs = 1000 + Math.floor(Math.random() * 2500);
      log(`fault ${i + 1}/${total}: SIGSTOP broker ${leader} (leader of ${TOPIC}/${i % partitions.length}) for ${frozenMs} ms`);
      proc.kill('SIGSTOP');
      await sleep(frozenMs);
      proc.kill('SIGCONT');
      pauses++;
    } else {
      log(`fault ${i + 1}/${total}: kill -9 broker ${leader} (leader of ${TOPIC}/${i % partitions.length})`);
      await h.kill(leader);
      await sleep(200 + Math.floor(Math.random() * 1500));
      await h.restart(leader);
      kills++;
    }
    await waitForIsrSize(admin, TOPIC, 3, ISR_RECOVERY_MS);
    await sleep(300 + Math.floor(Math.random() * 700));
  }
  return { kills, pauses };
}

export async function runProducerChaos(t: TestContext | null, opts: ChaosOptions): Promise<ChaosResult> {
  const log = opts.log ?? ((line: string) => t?.diagnostic(line));
  let result: ChaosResult | null = null;
  const body = async (h: Harness): Promise<void> => {
    const startedMs = Date.now();
    const admin = h.admin();
    await createTopic(admin, TOPIC, opts.partitions, 3, { 'min.insync.replicas': 2 });
    const producer = new Producer({
      bootstrap: h.allBootstrap,
      acks: 'all',
      idempotent: opts.idempotent,
      maxInFlight: 5,
      lingerMs: 2,
      retryBackoffMs: 50,
      retryBackoffMaxMs: 500,
      requestTimeoutMs: 5_000,
      deliveryTimeoutMs: 120_000,
    });
    const acked = new Map<string, number>();
    const failures: string[] = [];
    const pending = new Set<Promise<void>>();
    let sent = 0;
    let stop = false;
    const sender = (async () => {
      for (let n = 0; !stop; n++) {
        for (let p = 0; p < opts.partitions; p++) {
          const value = `${p}:${n}`;
          sent++;
          const s: Promise<void> = producer.send({ topic: TOPIC, partition: p, value }).then(
            (md) => void acked.set(value, md.offset),
            (e: Error) => void failures.push(`${value}: ${e.message}`),
          ).finally(() => pending.delete(s));
          pending.add(s);
        }
        // Bound what is in the air: a leaderless partition must not queue without limit.
        while (pending.size > 5_000 && !stop) await sleep(5);
        await sleep(opts.sendIntervalMs);
      }
    })();
    const retryReasons: Record<string, number> = {};
    let lastRetries = 0;
    const sampler = setInterval(() => {
      const r = producer.retryStatus();
      if (r.retries !== lastRetries && r.lastReason) {
        const reason = r.lastReason.replace(/\d+/g, 'N').slice(0, 160);
        retryReasons[reason] = (retryReasons[reason] ?? 0) + r.retries - lastRetries;
        lastRetries = r.retries;
      }
    }, 20);
    let faults = { kills: 0, pauses: 0 };
    try {
      faults = await chaos(h, opts, log);
    } finally {
      stop = true;
      await sender;
      await withTimeout(Promise.all([...pending]), 150_000, 'every send settled');
      await producer.close();
      clearInterval(sampler);
    }
    await waitForIsrSize(admin, TOPIC, 3, ISR_RECOVERY_MS);
    const stored = await readAll(h.allBootstrap, TOPIC, opts.partitions, 60_000);
    let storedCount = 0;
    let duplicated = 0;
    let outOfOrder = 0;
    const examples: string[] = [];
    const seen = new Set<string>();
    for (const [p, messages] of stored) {
      let last = -1;
      for (const m of messages) {
        storedCount++;
        const value = m.value!.toString();
        if (seen.has(value)) {
          duplicated++;
          if (examples.length < 10) examples.push(`duplicate ${value} at ${p}/${m.offset}`);
        }
        seen.add(value);
        const n = Number(value.split(':')[1]);
        if (n <= last) {
          outOfOrder++;
          if (examples.length < 10) examples.push(`${value} at ${p}/${m.offset} after ${p}:${last}`);
        }
        last = Math.max(last, n);
      }
    }
    let lost = 0;
    for (const value of acked.keys()) {
      if (!seen.has(value)) {
        lost++;
        if (examples.length < 10) examples.push(`acknowledged ${value} (offset ${acked.get(value)}) missing`);
      }
    }
    result = {
      idempotent: opts.idempotent,
      ...faults,
      sent,
      acknowledged: acked.size,
      failed: failures.length,
      stored: storedCount,
      lost,
      duplicated,
      outOfOrder,
      durationMs: Date.now() - startedMs,
      retryReasons,
      examples: [...examples, ...failures.slice(0, 5)],
    };
  };
  if (t) await withCluster(t, { brokers: 3 }, body);
  else {
    // Outside node:test (the script mode): withCluster needs only a name and diagnostic().
    const context = { name: 'producer-chaos', diagnostic: (m: string) => log(m) } as unknown as TestContext;
    await withCluster(context, { brokers: 3 }, body);
  }
  return result!;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const idempotent = !process.argv.includes('--no-idempotent');
  const arg = (name: string, dflt: number): number => {
    const i = process.argv.indexOf(name);
    return i >= 0 ? Number(process.argv[i + 1]) : dflt;
  };
  const r = await runProducerChaos(null, {
    idempotent,
    kills: arg('--kills', 20),
    pauses: arg('--pauses', 10),
    partitions: arg('--partitions', 3),
    sendIntervalMs: arg('--send-interval-ms', 5),
    log: (line) => process.stderr.write(`${line}\n`),
  });
  process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
}
