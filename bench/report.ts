/** Progress lines (stderr, about once a second) and the final result (human or JSON on stdout). */
import type { BenchMode } from './options.ts';

export interface BenchResult {
  mode: Exclude<BenchMode, 'rebalance'>;
  messages: number;
  sizeBytes: number;
  seconds: number;
  msgsPerSec: number;
  /** 2^20 bytes of values per second. */
  mbPerSec: number;
  p50Ms?: number;
  p99Ms?: number;
  p999Ms?: number;
  maxMs?: number;
  /** consume --group: the group, and the messages each member received (duplicates included). */
  group?: string;
  consumers?: number;
  memberMessages?: number[];
  /** consume --group: messages delivered more than once (sum of memberMessages - messages). */
  duplicates?: number;
  /** consume --group: first poll until every member owned its fair share of the partitions. */
  joinMs?: number;
  /** consume --group: msgs/s of the union after joinMs (the group's rate without its formation). */
  afterJoinMsgsPerSec?: number;
}

/** bench rebalance: see rebalance.ts. Times in ms. */
export interface RebalanceResult {
  mode: 'rebalance';
  /** Spawn of the joining member until the group is stable, every member owning its fair share. */
  joinToStableMs: number;
  /** Spawn of the joining member until every partition was consumed by its (new) owner. */
  joinToConsumingMs: number;
  /** Spawn of the joining member until it was running (the process start, tsx included). */
  joinProcessStartMs: number;
  /** SIGKILL of a member until each partition it owned had a message consumed by another member. */
  killToResumedMs: number;
  /** The members' session timeout: the floor under killToResumedMs. */
  sessionTimeoutMs: number;
  /** Members before the join (one more joins; one is killed). */
  members: number;
  partitions: number;
  /** Partitions the killed member owned. */
  killedOwned: number;
  rateMsgsPerSec: number;
}

const MiB = 1024 * 1024;

export function result(mode: BenchResult['mode'], messages: number, sizeBytes: number, seconds: number, extra: Partial<BenchResult> = {}): BenchResult {
  const s = Math.max(seconds, 1e-9);
  return {
    mode,
    messages,
    sizeBytes,
    seconds: round(seconds, 4),
    msgsPerSec: Math.round(messages / s),
    mbPerSec: round((messages * sizeBytes) / MiB / s, 2),
    ...extra,
  };
}

export function round(v: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

export function formatResult(r: BenchResult | RebalanceResult): string {
  if (r.mode === 'rebalance') {
    return [
      `rebalance: ${r.partitions} partitions, ${r.members} members + 1 joining, producer at ${r.rateMsgsPerSec.toLocaleString('en-US')} msgs/s`,
      `  join -> stable (fair share each): ${r.joinToStableMs} ms (process start ${r.joinProcessStartMs} ms; every partition consumed again ${r.joinToConsumingMs} ms)`,
      `  kill -9 -> its ${r.killedOwned} partition(s) consumed by others: ${r.killToResumedMs} ms (session timeout ${r.sessionTimeoutMs} ms)`,
    ].join('\n') + '\n';
  }
  const lines = [
    `${r.mode}: ${r.messages.toLocaleString('en-US')} messages of ${r.sizeBytes} B in ${r.seconds.toFixed(3)} s`,
    `  ${r.msgsPerSec.toLocaleString('en-US')} msgs/s, ${r.mbPerSec.toFixed(2)} MB/s`,
  ];
  if (r.p50Ms !== undefined) {
    lines.push(`  latency ms: p50 ${r.p50Ms.toFixed(3)}, p99 ${r.p99Ms!.toFixed(3)}, p99.9 ${r.p999Ms!.toFixed(3)}, max ${r.maxMs!.toFixed(3)}`);
  }
  if (r.memberMessages !== undefined) {
    lines.push(`  group ${r.group}: ${r.consumers} members received ${r.memberMessages.map((n) => n.toLocaleString('en-US')).join(' / ')} (duplicates ${r.duplicates})`,
      `  group formed (fair share each) after ${r.joinMs} ms; ${r.afterJoinMsgsPerSec?.toLocaleString('en-US') ?? '-'} msgs/s from then on`);
  }
  return lines.join('\n') + '\n';
}

/**
 * Prints `label: count msgs, rate` to stderr about once a second while running.
 * `count` is read on every tick; stop() ends it.
 */
export class Progress {
  private readonly timer: NodeJS.Timeout;
  private lastCount = 0;
  private lastAt = performance.now();
  private readonly startedAt = performance.now();

  constructor(private readonly label: string, private readonly total: number, private readonly count: () => number, private readonly extra: () => string = () => '') {
    this.timer = setInterval(() => this.tick(), 1000);
    this.timer.unref();
  }

  private tick(): void {
    const now = performance.now();
    const c = this.count();
    const rate = ((c - this.lastCount) * 1000) / Math.max(now - this.lastAt, 1);
    this.lastCount = c;
    this.lastAt = now;
    const pct = ((100 * c) / this.total).toFixed(1);
    const extra = this.extra();
    process.stderr.write(
      `[${this.label}] ${((now - this.startedAt) / 1000).toFixed(0)}s ${c.toLocaleString('en-US')}/${this.total.toLocaleString('en-US')} (${pct}%) ${Math.round(rate).toLocaleString('en-US')} msgs/s${extra ? ` ${extra}` : ''}\n`,
    );
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
