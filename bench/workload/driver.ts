/**
 * The workload driver: creates the topics, starts the consumer, idle-connection and producer
 * worker processes (worker.ts) over IPC, runs warm-up, test and drain by ticking them, and
 * builds the result (result.ts) from their deltas: counts summed, histograms merged exactly.
 *
 * Invariants: every worker it starts it stops (exit message, then SIGKILL after WORKER_EXIT_MS_MAX),
 * also on failure; each wait is bounded (READY_MS_MAX, TICK_REPLY_MS_MAX, drainSecondsMax).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { newHistogram, mergeEncoded, summarize } from './histogram.ts';
import type { FromWorker, Phase, ToWorker, WorkerConfig, WorkerStats } from './ipc.ts';
import { loadPeer, type ConsumerConfig, type DriverName, type ProducerConfig } from './peers/peer.ts';
import { RESULT_FORMAT, type Snapshot, type WorkloadResult } from './result.ts';
import type { Workload } from './spec.ts';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const READY_MS_MAX = 60_000;
const TICK_REPLY_MS_MAX = 10_000;
const WORKER_EXIT_MS_MAX = 5000;
const DRAIN_POLL_MS = 100;
/** Default processes when the workload does not say: one per client, at most this many. */
const DEFAULT_PROCESSES_MAX = 8;
const WORKER_STDERR_CHARS_MAX = 10_000;
const MiB = 1024 * 1024;

export interface RunOptions {
  driver: DriverName;
  /** Broker bootstrap (sluice) or the peer's HOST:PORT. */
  address: string;
  snapshotMs: number;
  drainSecondsMax: number;
  /** Progress lines go here (stderr); null for none. */
  progress: ((line: string) => void) | null;
}

class Worker {
  readonly proc: ChildProcess;
  private stderr = '';
  readyP: Promise<void>;
  private waiters = new Map<number, (s: WorkerStats) => void>();
  failure: Error | null = null;
  /** Who to reject when the worker fails: the ready wait and the ticks awaiting an answer (removed once answered). */
  private onFailure = new Set<(e: Error) => void>();

  constructor(readonly name: string, cfg: WorkerConfig) {
    this.proc = fork(join(repoRoot, 'bin/sluice.mjs'), ['bench', 'worker', JSON.stringify(cfg)], { cwd: repoRoot, stdio: ['ignore', 'inherit', 'pipe', 'ipc'] });
    this.proc.stderr!.on('data', (d) => (this.stderr = (this.stderr + d).slice(-WORKER_STDERR_CHARS_MAX)));
    this.readyP = new Promise((resolve, reject) => {
      this.onFailure.add(reject);
      this.proc.on('message', (m: FromWorker) => {
        if (m.t === 'ready') resolve();
        else if (m.t === 'stats') this.waiters.get(m.seq)?.(m);
        else if (m.t === 'error') this.fail(new Error(`${this.name}: ${m.message}`));
      });
    });
    this.readyP.catch(() => {});
    this.proc.once('exit', (code, signal) => this.fail(new Error(`${this.name} exited (${signal ?? code})${this.stderr ? `:\n${this.stderr}` : ''}`)));
  }

  private fail(e: Error): void {
    this.failure ??= e;
    for (const f of this.onFailure) f(this.failure);
  }

  send(m: ToWorker): void {
    if (this.proc.connected) this.proc.send(m);
  }

  tick(seq: number, phase: Phase): Promise<WorkerStats> {
    return new Promise((resolve, reject) => {
      if (this.failure) return reject(this.failure);
      const timer = setTimeout(() => reject(new Error(`${this.name} did not answer tick ${seq} in ${TICK_REPLY_MS_MAX} ms`)), TICK_REPLY_MS_MAX);
      this.onFailure.add(reject);
      this.waiters.set(seq, (s) => {
        clearTimeout(timer);
        this.waiters.delete(seq);
        this.onFailure.delete(reject);
        resolve(s);
      });
      this.send({ t: 'tick', seq, phase });
    });
  }

  async stop(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    const exited = new Promise<void>((r) => this.proc.once('exit', () => r()));
    this.send({ t: 'exit' });
    const t = setTimeout(() => this.proc.kill('SIGKILL'), WORKER_EXIT_MS_MAX);
    await exited;
    clearTimeout(t);
  }
}

/** Spreads clients over `processes` groups round robin (0 = one per client, capped). */
function spread<T>(clients: T[], processes: number): T[][] {
  const n = Math.max(1, Math.min(clients.length, processes > 0 ? processes : DEFAULT_PROCESSES_MAX));
  const groups: T[][] = Array.from({ length: n }, () => []);
  clients.forEach((c, i) => groups[i % n]!.push(c));
  return groups.filter((g) => g.length > 0);
}

export async function runWorkload(w: Workload, opts: RunOptions): Promise<WorkloadResult> {
  const log = opts.progress ?? (() => {});
  const runId = randomBytes(3).toString('hex');
  const topics = Array.from({ length: w.topics }, (_, i) => `wl-${w.name}-${runId}-${i}`.replace(/\./g, '_'));
  const peer = await loadPeer(opts.driver);
  const admin = peer.admin(opts.address);
  log(`[workload] ${w.name} on ${opts.driver} at ${opts.address}: creating ${w.topics} topic(s) × ${w.partitionsPerTopic} partition(s)`);
  try {
    for (const t of topics) await admin.createTopic(t, w.partitionsPerTopic, w.replicationFactor, w.topicConfigs);
  } finally {
    await admin.close();
  }

  const producers: ProducerConfig[] = [];
  const consumers: ConsumerConfig[] = [];
  for (const topic of topics) {
    for (let i = 0; i < w.producersPerTopic; i++) producers.push({ address: opts.address, topic, partitions: w.partitionsPerTopic, acks: w.acks, paced: w.producerRate > 0, clientId: `wl-producer-${i}` });
    for (let s = 0; s < w.subscriptionsPerTopic; s++) {
      for (let c = 0; c < w.consumerPerSubscription; c++) {
        const partitions: number[] = [];
        for (let p = c; p < w.partitionsPerTopic; p += w.consumerPerSubscription) partitions.push(p);
        consumers.push({ address: opts.address, topic, partitionCount: w.partitionsPerTopic, partitions, group: w.consumerGroups ? `wl-${runId}-${topic}-sub${s}` : null, clientId: `wl-consumer-${s}-${c}` });
      }
    }
  }
  const ratePerClient = w.producerRate > 0 ? w.producerRate / producers.length : 0;
  const workers: Worker[] = [];
  const consumerWorkers: Worker[] = [];
  const producerWorkers: Worker[] = [];
  try {
    spread(consumers, w.consumerProcesses).forEach((clients, i) => consumerWorkers.push(new Worker(`consumer process ${i}`, { role: 'consumer', driver: opts.driver, clients })));
    if (w.idleConnections > 0) workers.push(new Worker('idle connections', { role: 'idle', address: opts.address, connections: w.idleConnections }));
    workers.push(...consumerWorkers);
    await withTimeout(Promise.all(workers.map((x) => x.readyP)), READY_MS_MAX, 'consumers / idle connections not ready');
    let seq = 0;
    if (w.consumerGroups) {
      // Groups: wait until the members' assignments cover every partition of every subscription.
      const want = w.topics * w.subscriptionsPerTopic * w.partitionsPerTopic;
      const until = Date.now() + READY_MS_MAX;
      for (;;) {
        const stats = await Promise.all(consumerWorkers.map((x) => x.tick(++seq, 'idle')));
        const owned = stats.reduce((s, x) => s + x.owned, 0);
        if (owned === want) break;
        if (Date.now() > until) throw new Error(`consumer groups own ${owned} of ${want} partitions after ${READY_MS_MAX} ms`);
        await sleep(200);
      }
    }
    spread(producers, w.producerProcesses).forEach((clients, i) =>
      producerWorkers.push(new Worker(`producer process ${i}`, { role: 'producer', driver: opts.driver, clients, messageSize: w.messageSize, keyDistributor: w.keyDistributor, ratePerClientMsgsPerSec: ratePerClient })),
    );
    workers.push(...producerWorkers);
    await withTimeout(Promise.all(producerWorkers.map((x) => x.readyP)), READY_MS_MAX, 'producers not ready');
    log(`[workload] ${producerWorkers.length} producer process(es) (${producers.length} producers), ${consumerWorkers.length} consumer process(es) (${consumers.length} consumers)${w.idleConnections ? `, ${w.idleConnections} idle connections` : ''}: running`);

    const active = [...producerWorkers, ...consumerWorkers];
    // Reset the counters (ready-time ticks) and start the producers.
    let phase: Phase = w.warmupSeconds > 0 ? 'warmup' : 'test';
    await Promise.all(active.map((x) => x.tick(++seq, phase)));
    const startedAt = new Date().toISOString();
    const t0 = performance.now();
    let last = t0;
    const pubAll = newHistogram();
    const e2eAll = newHistogram();
    const snapshots: Snapshot[] = [];
    const totals = { sent: 0, acked: 0, received: 0, testAcked: 0, testReceived: 0, testMs: 0, backlogAtTestEnd: 0 };
    let inFlight = 0;
    const warmupEnd = w.warmupSeconds * 1000;
    // Moved to the actual start of the test phase once warm-up ends (a late tick must not shorten the test).
    let testEnd = warmupEnd + w.testDurationSeconds * 1000;
    let drainEnd = testEnd + opts.drainSecondsMax * 1000;

    const tick = async (next: Phase): Promise<void> => {
      const stats = await Promise.all(active.map((x) => x.tick(++seq, next)));
      const now = performance.now();
      const dtMs = now - last;
      last = now;
      const pub = newHistogram();
      const e2e = newHistogram();
      let acked = 0;
      let received = 0;
      inFlight = 0;
      for (const s of stats) {
        totals.sent += s.sent;
        acked += s.acked;
        received += s.received;
        inFlight += s.inFlight;
        mergeEncoded(pub, s.publishLatency);
        mergeEncoded(e2e, s.endToEndLatency);
      }
      totals.acked += acked;
      totals.received += received;
      if (phase === 'test') {
        totals.testAcked += acked;
        totals.testReceived += received;
        totals.testMs += dtMs;
      }
      if (phase === 'test' || phase === 'drain') {
        pubAll.add(pub);
        e2eAll.add(e2e);
      }
      // A consumer can report a message before its producer has seen the acknowledgement: not below 0.
      const backlog = Math.max(0, totals.acked * w.subscriptionsPerTopic - totals.received);
      if (phase === 'test' && next !== 'test') totals.backlogAtTestEnd = backlog;
      const ps = summarize(pub);
      const es = summarize(e2e);
      const snap: Snapshot = {
        t: Math.round(now - t0) / 1000,
        phase,
        publishRate: Math.round((acked * 1000) / Math.max(dtMs, 1)),
        consumeRate: Math.round((received * 1000) / Math.max(dtMs, 1)),
        backlog,
        publishP50Ms: ps.p50,
        publishP99Ms: ps.p99,
        e2eP50Ms: es.p50,
        e2eP99Ms: es.p99,
        e2eP999Ms: es.p999,
      };
      pub.destroy();
      e2e.destroy();
      snapshots.push(snap);
      log(`[workload] ${snap.t.toFixed(1)} s ${phase}: pub ${snap.publishRate.toLocaleString('en-US')} msg/s, cons ${snap.consumeRate.toLocaleString('en-US')} msg/s, backlog ${backlog.toLocaleString('en-US')}, pub p99 ${ps.p99} ms, e2e p50 ${es.p50} p99 ${es.p99} ms`);
      phase = next;
    };

    // Warm-up and test: ticks every snapshotMs, and exactly at the phase boundaries.
    for (;;) {
      const elapsed = performance.now() - t0;
      const boundary = phase === 'warmup' ? warmupEnd : testEnd;
      const from = phase === 'warmup' ? 0 : testEnd - w.testDurationSeconds * 1000;
      const nextTickAt = Math.min(boundary, from + (Math.floor((elapsed - from) / opts.snapshotMs) + 1) * opts.snapshotMs);
      await sleep(Math.max(0, nextTickAt - elapsed));
      const at = performance.now() - t0;
      const next: Phase = phase === 'warmup' ? (at >= warmupEnd - 1 ? 'test' : 'warmup') : at >= testEnd - 1 ? 'drain' : 'test';
      const wasWarmup = phase === 'warmup';
      await tick(next);
      if (wasWarmup && next === 'test') {
        testEnd = last - t0 + w.testDurationSeconds * 1000;
        drainEnd = testEnd + opts.drainSecondsMax * 1000;
      }
      if (next === 'drain') break;
    }
    // Drain: producers stopped; wait for their acknowledgements and for the consumers to catch up.
    let lastDrainTick = performance.now();
    while (performance.now() - t0 < drainEnd) {
      const expected = totals.acked * w.subscriptionsPerTopic;
      if (inFlight === 0 && totals.received >= expected && snapshots.at(-1)!.phase === 'drain') break;
      await sleep(DRAIN_POLL_MS);
      if (performance.now() - lastDrainTick >= DRAIN_POLL_MS) {
        lastDrainTick = performance.now();
        await tickQuiet();
      }
    }
    async function tickQuiet(): Promise<void> {
      const before = snapshots.length;
      await tick('drain');
      // Drain ticks come often; keep a snapshot only every snapshotMs for the plots.
      const s = snapshots[before]!;
      const prev = snapshots[before - 1];
      if (prev && prev.phase === 'drain' && s.t - prev.t < opts.snapshotMs / 1000) {
        prev.t = s.t;
        prev.backlog = s.backlog;
        snapshots.pop();
      }
    }

    const expected = totals.acked * w.subscriptionsPerTopic;
    const testSeconds = totals.testMs / 1000;
    const rate = (n: number): number => Math.round(n / Math.max(testSeconds, 1e-9));
    const result: WorkloadResult = {
      format: RESULT_FORMAT,
      workload: w,
      driver: opts.driver,
      label: `${w.name} (${opts.driver})`,
      startedAt,
      topics,
      testSeconds: Math.round(testSeconds * 1000) / 1000,
      publishRate: rate(totals.testAcked),
      publishMBps: Math.round(((totals.testAcked * w.messageSize) / MiB / Math.max(testSeconds, 1e-9)) * 100) / 100,
      consumeRate: rate(totals.testReceived),
      consumeMBps: Math.round(((totals.testReceived * w.messageSize) / MiB / Math.max(testSeconds, 1e-9)) * 100) / 100,
      backlog: totals.backlogAtTestEnd,
      sent: totals.sent,
      acked: totals.acked,
      expected,
      received: totals.received,
      complete: inFlight === 0 && totals.received >= expected,
      publishLatencyMs: summarize(pubAll),
      endToEndLatencyMs: summarize(e2eAll),
      snapshots,
    };
    pubAll.destroy();
    e2eAll.destroy();
    return result;
  } finally {
    await Promise.all(workers.map((x) => x.stop()));
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  try {
    const timeout = new Promise<never>((_, reject) => {
      t = setTimeout(() => reject(new Error(`${what} after ${ms} ms`)), ms);
    });
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(t);
  }
}
