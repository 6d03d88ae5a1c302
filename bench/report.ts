/** Progress lines (stderr, about once a second) and the final result (human or JSON on stdout). */
import type { BenchMode } from './options.ts';

export interface BenchResult {
  mode: BenchMode;
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
}

const MiB = 1024 * 1024;

export function result(mode: BenchMode, messages: number, sizeBytes: number, seconds: number, extra: Partial<BenchResult> = {}): BenchResult {
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

export function formatResult(r: BenchResult): string {
  const lines = [
    `${r.mode}: ${r.messages.toLocaleString('en-US')} messages of ${r.sizeBytes} B in ${r.seconds.toFixed(3)} s`,
    `  ${r.msgsPerSec.toLocaleString('en-US')} msgs/s, ${r.mbPerSec.toFixed(2)} MB/s`,
  ];
  if (r.p50Ms !== undefined) {
    lines.push(`  latency ms: p50 ${r.p50Ms.toFixed(3)}, p99 ${r.p99Ms!.toFixed(3)}, p99.9 ${r.p999Ms!.toFixed(3)}, max ${r.maxMs!.toFixed(3)}`);
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
