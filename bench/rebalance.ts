/**
 * bench rebalance: how long a consumer group takes to absorb a member joining and a member
 * dying, with real processes. Members are child processes (group-member.ts), each reporting
 * on stdout what it owns and the first message it consumes of each partition it is given;
 * this process produces to every partition (round-robin, --rate msgs/s) so that every owned
 * partition keeps having something to consume, and watches the reports.
 *
 * 1. Steady state: --members members of a fresh group; wait until the group is stable (below)
 *    and every partition has been consumed by its owner.
 * 2. joinToStableMs: one more member is spawned; the time from the spawn until the group is
 *    stable again. Stable: the live members' reported assignments are disjoint, cover every
 *    partition and each holds its fair share (floor or ceil of partitions/members), and the
 *    coordinator (DescribeGroups) agrees it is 'stable' with that many members. The time is
 *    that of the last assignment report, i.e. when the members had settled; the coordinator
 *    check only confirms that no further change was coming. Reported next to it:
 *    joinProcessStartMs (spawn until the member process ran: node + tsx start-up) and
 *    joinToConsumingMs (until every partition that moved had a message consumed by its new owner).
 * 3. killToResumedMs: the member owning the most partitions gets SIGKILL; the time until
 *    every partition it owned has had a message consumed by another member. The coordinator
 *    notices only when the session times out, so this is sessionTimeoutMs plus the
 *    coordinator's expiry sweep, a heartbeat interval for the survivors to learn their new
 *    assignment, and their first fetch.
 *
 * Every wait is bounded (WAIT_MS) and fails with what the members reported. Member processes
 * are stopped (SIGTERM, then SIGKILL) when the bench ends, and killed if it exits abruptly;
 * a member whose stdin closes (the bench died) exits by itself.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { Admin } from '../client/admin.ts';
import { Producer, type ProducerMessage } from '../client/producer.ts';
import type { MemberConfig, MemberEvent } from './group-member.ts';
import type { BenchOptions } from './options.ts';
import { Payloads } from './payload.ts';
import { round, type RebalanceResult } from './report.ts';

/** Bound on every wait: fail with a description of the members' state after this long. */
const WAIT_MS = 60_000;
const CHECK_EVERY_MS = 5;
const STOP_GRACE_MS = 5000;

const memberScript = fileURLToPath(new URL('./group-member.ts', import.meta.url));
/** The member processes resolve `--import tsx` from here (the repository's node_modules). */
const repoRoot = fileURLToPath(new URL('..', import.meta.url));

const live = new Set<ChildProcess>();
let exitHookInstalled = false;
function killLiveOnExit(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const p of live) p.kill('SIGKILL');
  });
}

class Member {
  readonly owned = new Set<number>();
  /** Partition -> when (performance.now()) its first message since it was assigned was reported. */
  readonly consumed = new Map<number, number>();
  readonly spawnedAt = performance.now();
  readyAt = -1;
  /** When the owned set last changed. */
  ownedAt = -1;
  exited = false;
  exitDescription = '';
  killed = false;
  error: string | null = null;
  private stderrTail = '';
  private stdoutRest = '';
  readonly proc: ChildProcess;

  constructor(readonly name: string, config: MemberConfig) {
    this.proc = spawn(process.execPath, ['--import', 'tsx', memberScript, JSON.stringify(config)], {
      cwd: repoRoot,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    live.add(this.proc);
    this.proc.stdout!.setEncoding('utf8').on('data', (d: string) => this.onStdout(d));
    this.proc.stderr!.setEncoding('utf8').on('data', (d: string) => {
      this.stderrTail = (this.stderrTail + d).slice(-2000);
    });
    // EPIPE after the child died must not crash the bench.
    this.proc.stdin!.on('error', () => {});
    this.proc.once('error', (e) => {
      this.exited = true;
      this.exitDescription = `could not start: ${e.message}`;
      live.delete(this.proc);
    });
    this.proc.once('exit', (code, signal) => {
      this.exited = true;
      this.exitDescription = signal ? `killed by ${signal}` : `exited with code ${code}`;
      live.delete(this.proc);
    });
  }

  get alive(): boolean {
    return !this.exited && !this.killed;
  }

  private onStdout(d: string): void {
    const now = performance.now();
    const lines = (this.stdoutRest + d).split('\n');
    this.stdoutRest = lines.pop()!;
    for (const line of lines) {
      if (!line.startsWith('{')) continue;
      let ev: MemberEvent;
      try {
        ev = JSON.parse(line) as MemberEvent;
      } catch {
        continue;
      }
      if (ev.e === 'ready') this.readyAt = now;
      else if (ev.e === 'owned') {
        this.owned.clear();
        for (const p of ev.partitions) this.owned.add(p);
        for (const p of [...this.consumed.keys()]) if (!this.owned.has(p)) this.consumed.delete(p);
        this.ownedAt = now;
      } else if (ev.e === 'consumed') {
        if (!this.consumed.has(ev.partition)) this.consumed.set(ev.partition, now);
      } else if (ev.e === 'error') this.error = ev.message;
    }
  }

  describe(): string {
    const state = this.killed ? 'killed' : this.exited ? this.exitDescription : this.readyAt < 0 ? 'starting' : 'running';
    return `${this.name} (${state}) owns [${[...this.owned].sort((a, b) => a - b).join(',')}] consumed [${[...this.consumed.keys()].sort((a, b) => a - b).join(',')}]`;
  }

  failure(): string {
    return `member ${this.name} ${this.exitDescription}${this.error ? `: ${this.error}` : ''}${this.stderrTail ? `\n${this.stderrTail.trimEnd()}` : ''}`;
  }

  /** SIGTERM (the member leaves the group), SIGKILL after STOP_GRACE_MS. */
  async stop(): Promise<void> {
    if (this.exited) return;
    const exited = new Promise<void>((r) => this.proc.once('exit', () => r()));
    this.proc.kill('SIGTERM');
    const t = setTimeout(() => this.proc.kill('SIGKILL'), STOP_GRACE_MS);
    await exited;
    clearTimeout(t);
  }
}

/** A producer paced at `rate` msgs/s over all partitions, round-robin, until stopped. */
class PacedProducer {
  private stopped = false;
  failure: Error | null = null;
  sent = 0;
  private readonly done: Promise<void>;

  constructor(private readonly producer: Producer, topic: string, partitions: number[], rate: number, sizeBytes: number) {
    this.done = this.run(topic, partitions, rate, new Payloads(sizeBytes));
  }

  private async run(topic: string, partitions: number[], rate: number, payloads: Payloads): Promise<void> {
    const inFlight = new Set<Promise<void>>();
    const startedAt = performance.now();
    let rr = 0;
    while (!this.stopped && !this.failure) {
      const due = Math.floor(((performance.now() - startedAt) * rate) / 1000) - this.sent;
      if (due <= 0) {
        await sleep(CHECK_EVERY_MS);
        continue;
      }
      const n = Math.min(due, 1000);
      const msgs: ProducerMessage[] = new Array(n);
      for (let i = 0; i < n; i++) msgs[i] = { topic, partition: partitions[rr++ % partitions.length]!, value: payloads.value() };
      this.sent += n;
      const p = this.producer.sendBatch(msgs).then(
        () => {},
        (e: Error) => {
          this.failure ??= e;
        },
      );
      inFlight.add(p);
      void p.finally(() => inFlight.delete(p));
      if (inFlight.size >= 64) await Promise.race(inFlight);
    }
    await Promise.all(inFlight);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
  }
}

export async function benchRebalance(opts: BenchOptions, partitions: number[]): Promise<RebalanceResult> {
  killLiveOnExit();
  const groupId = `sluice-bench-rebalance-${randomUUID().slice(0, 8)}`;
  const log = (s: string): void => void process.stderr.write(`[rebalance] ${s}\n`);
  const admin = new Admin({ bootstrap: opts.bootstrap, clientId: 'sluice-bench' });
  const producer = new Producer({ bootstrap: opts.bootstrap, acks: opts.acks, profile: 'latency', clientId: 'sluice-bench-rebalance' });
  const members: Member[] = [];
  let paced: PacedProducer | null = null;
  let seq = 0;
  const startMember = (): Member => {
    const m = new Member(`m${++seq}`, {
      bootstrap: opts.bootstrap,
      topic: opts.topic,
      groupId,
      clientId: `sluice-bench-member-${seq}`,
      sessionTimeoutMs: opts.sessionTimeoutMs,
    });
    members.push(m);
    return m;
  };
  const alive = (): Member[] => members.filter((m) => m.alive);
  let groupState = 'unknown';

  /** Fails on an unexpected member exit or producer failure; otherwise returns cond() after WAIT_MS or throws. */
  const waitFor = async <T>(what: string, cond: () => Promise<T | null> | T | null): Promise<T> => {
    const deadline = performance.now() + WAIT_MS;
    for (;;) {
      const dead = members.find((m) => m.exited && !m.killed);
      if (dead) throw new Error(`rebalance: ${dead.failure()}`);
      if (paced?.failure) throw new Error(`rebalance: the producer failed: ${paced.failure.message}`);
      const v = await cond();
      if (v !== null) return v;
      if (performance.now() > deadline) {
        throw new Error(`rebalance: ${what} not reached within ${WAIT_MS / 1000} s (group ${groupId} ${groupState}; ${members.map((m) => m.describe()).join('; ')})`);
      }
      await sleep(CHECK_EVERY_MS);
    }
  };

  /** Resolves to when the live members settled on a fair, complete, disjoint assignment the coordinator calls stable. */
  const stable = (): Promise<number> =>
    waitFor('a stable group with a fair share per member', async () => {
      const ms = alive();
      if (!fairShare(ms, partitions.length) || ms.some((m) => m.readyAt < 0)) return null;
      const settledAt = Math.max(...ms.map((m) => m.ownedAt));
      const [g] = await admin.describeGroups([groupId]);
      groupState = `${g!.state}, ${g!.members.length} members`;
      if (g!.state !== 'stable' || g!.members.length !== ms.length) return null;
      // The assignment must not have moved while the coordinator was asked.
      if (!fairShare(alive(), partitions.length) || Math.max(...alive().map((m) => m.ownedAt)) !== settledAt) return null;
      return settledAt;
    });

  /** Resolves to when the last partition had a message consumed by its current owner. */
  const allConsumed = (): Promise<number> =>
    waitFor('every partition consumed by its owner', () => {
      let last = 0;
      for (const m of alive()) {
        for (const p of m.owned) {
          const at = m.consumed.get(p);
          if (at === undefined) return null;
          last = Math.max(last, at);
        }
      }
      return last;
    });

  try {
    await producer.cluster.topic(opts.topic);
    paced = new PacedProducer(producer, opts.topic, partitions, opts.rateMsgsPerSec, opts.sizeBytes);
    log(`group ${groupId}: starting ${opts.members} members on ${partitions.length} partitions, producing ${opts.rateMsgsPerSec} msgs/s`);
    for (let i = 0; i < opts.members; i++) startMember();
    await stable();
    await allConsumed();
    log(`steady: ${alive().map((m) => `${m.name} [${[...m.owned].join(',')}]`).join(' ')}`);

    const joiner = startMember();
    const joinAt = joiner.spawnedAt;
    const stableAt = await stable();
    const consumingAt = await allConsumed();
    log(`joined ${joiner.name}: ${alive().map((m) => `${m.name} [${[...m.owned].join(',')}]`).join(' ')}`);

    const victim = alive().reduce((a, b) => (b.owned.size > a.owned.size ? b : a));
    const orphaned = [...victim.owned];
    const killAt = performance.now();
    victim.killed = true;
    victim.proc.kill('SIGKILL');
    log(`killed ${victim.name} (owned [${orphaned.join(',')}]); waiting for the session timeout (${opts.sessionTimeoutMs} ms)`);
    const resumedAt = await waitFor(`consumption of ${victim.name}'s partitions [${orphaned.join(',')}] by other members`, () => {
      let last = 0;
      for (const p of orphaned) {
        const owner = alive().find((m) => m.owned.has(p));
        const at = owner?.consumed.get(p);
        if (at === undefined || at < killAt) return null;
        last = Math.max(last, at);
      }
      return last;
    });
    return {
      mode: 'rebalance',
      joinToStableMs: round(stableAt - joinAt, 1),
      joinToConsumingMs: round(Math.max(stableAt, consumingAt) - joinAt, 1),
      joinProcessStartMs: round(joiner.readyAt - joinAt, 1),
      killToResumedMs: round(resumedAt - killAt, 1),
      sessionTimeoutMs: opts.sessionTimeoutMs,
      members: opts.members,
      partitions: partitions.length,
      killedOwned: orphaned.length,
      rateMsgsPerSec: opts.rateMsgsPerSec,
    };
  } finally {
    await paced?.stop().catch(() => {});
    await Promise.all(members.map((m) => m.stop()));
    await Promise.all([producer.close().catch(() => {}), admin.close().catch(() => {})]);
  }
}

/** Disjoint, complete, and every member holds floor or ceil of partitions/members. */
function fairShare(members: Member[], partitions: number): boolean {
  if (members.length === 0) return false;
  const lo = Math.floor(partitions / members.length);
  const hi = Math.ceil(partitions / members.length);
  const union = new Set<number>();
  let total = 0;
  for (const m of members) {
    if (m.owned.size < lo || m.owned.size > hi) return false;
    total += m.owned.size;
    for (const p of m.owned) union.add(p);
  }
  return total === partitions && union.size === partitions;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
