/**
 * Helpers for the process-level group tests: spawning member processes (member-process.ts),
 * reading their output files, bounded waits, and the ownership-interval check.
 *
 * Every member process is tracked and SIGKILLed at exit, so a failing test leaves nothing
 * behind; tests still stop their members in finally/t.after.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot, tempDir } from '../helpers/broker-process.ts';

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const p of live) p.kill('SIGKILL');
});

export interface MemberOptions {
  bootstrap: string;
  group: string;
  topic: string;
  out: string;
  mode?: 'at-least-once' | 'at-most-once';
  sessionMs?: number;
  commitMs?: number;
  delayMs?: number;
  maxPollRecords?: number;
  /** run() with these retry delays instead of the iterator. */
  retryDelaysMs?: number[];
  failValue?: string;
}

export interface Processed { partition: number; offset: number; value: string }
export interface OwnEvent { epoch: number; at: number; partitions: number[]; raw: string }

export interface MemberOutput {
  start: number | null;
  processed: Processed[];
  own: OwnEvent[];
  tries: Array<{ at: number; topic: string; partition: number; offset: number; attempt: number; value: string }>;
  errors: string[];
  closed: boolean;
}

/** A directory for the members' output files; removeOutputDir() it after the members stopped. */
export function outputDir(prefix: string): string {
  return tempDir(`sluice-group-${prefix}-`);
}

/** Removes an output directory, unless SLUICE_KEEP_TEST_OUTPUT is set (then prints where it is). */
export function removeOutputDir(dir: string): void {
  if (process.env.SLUICE_KEEP_TEST_OUTPUT) console.log(`[group] member output kept in ${dir}`);
  else rmSync(dir, { recursive: true, force: true });
}

export class Member {
  readonly proc: ChildProcess;
  readonly exited: Promise<void>;
  private stderr = '';
  killedAtMs: number | null = null;

  constructor(readonly name: string, readonly opts: MemberOptions) {
    const args = [
      '--import', 'tsx', join(repoRoot, 'test/group/member-process.ts'),
      '--bootstrap', opts.bootstrap, '--group', opts.group, '--topic', opts.topic, '--out', opts.out,
      '--mode', opts.mode ?? 'at-least-once',
      '--session-ms', String(opts.sessionMs ?? 3000),
      '--commit-ms', String(opts.commitMs ?? 500),
      '--delay-ms', String(opts.delayMs ?? 0),
      '--max-poll-records', String(opts.maxPollRecords ?? 5000),
    ];
    if (opts.retryDelaysMs) args.push('--run-retry', opts.retryDelaysMs.join(','));
    if (opts.failValue !== undefined) args.push('--fail-value', opts.failValue);
    this.proc = spawn(process.execPath, args, { cwd: repoRoot, stdio: ['ignore', 'ignore', 'pipe'] });
    live.add(this.proc);
    this.proc.stderr!.on('data', (d) => { if (this.stderr.length < 20_000) this.stderr += d; });
    this.exited = new Promise((resolve) => this.proc.once('exit', () => { live.delete(this.proc); resolve(); }));
  }

  get running(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  log(): string {
    return this.stderr;
  }

  output(): MemberOutput {
    return parseOutput(this.opts.out);
  }

  /** The partitions of the main topic it owns according to its last OWN line. */
  owned(): number[] {
    return this.output().own.at(-1)?.partitions ?? [];
  }

  /** SIGTERM (clean close: commit, leave); SIGKILL if it has not exited within timeoutMs. */
  async stop(timeoutMs = 8000): Promise<void> {
    if (!this.running) return;
    this.proc.kill('SIGTERM');
    const t = setTimeout(() => this.proc.kill('SIGKILL'), timeoutMs);
    await this.exited;
    clearTimeout(t);
  }

  /** kill -9; records the kill time (its ownership intervals end there). */
  async kill(): Promise<void> {
    if (!this.running) return;
    this.killedAtMs = Date.now();
    this.proc.kill('SIGKILL');
    await this.exited;
  }
}

export function parseOutput(file: string): MemberOutput {
  const o: MemberOutput = { start: null, processed: [], own: [], tries: [], errors: [], closed: false };
  if (!existsSync(file)) return o;
  const text = readFileSync(file, 'utf8');
  for (const l of text.split('\n')) {
    if (l.length === 0) continue;
    const f = l.split(' ');
    if (f[0] === 'START') o.start = Number(f[1]);
    else if (f[0] === 'OWN') {
      const parts = f[3] === '-' ? [] : f[3]!.split(',').filter((x) => /^\d+$/.test(x)).map(Number);
      o.own.push({ epoch: Number(f[1]), at: Number(f[2]), partitions: parts, raw: f[3]! });
    } else if (f[0] === 'TRY') {
      o.tries.push({ at: Number(f[1]), topic: f[2]!, partition: Number(f[3]), offset: Number(f[4]), attempt: Number(f[5]), value: f.slice(6).join(' ') });
    } else if (f[0] === 'ERR') o.errors.push(l);
    else if (f[0] === 'CLOSED') o.closed = true;
    else if (/^\d+$/.test(f[0]!)) o.processed.push({ partition: Number(f[0]), offset: Number(f[1]), value: f.slice(2).join(' ') });
    // A line cut short by a kill -9 mid-write cannot happen (one write per line), but anything
    // unknown is ignored rather than failing the parse.
  }
  return o;
}

export async function until(cond: () => boolean | Promise<boolean>, what: string | (() => string), timeoutMs = 20_000, stepMs = 50): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === 'string' ? what : what()}`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** One member's ownership of one partition: [from, to) in ms; to = Infinity while open. */
export interface Interval { member: string; partition: number; from: number; to: number }

/**
 * Ownership intervals from a member's OWN lines. An interval still open at the end closes at
 * the member's kill time (kill -9), or stays open (Infinity) for a live member.
 */
export function intervalsOf(name: string, own: readonly OwnEvent[], killedAtMs: number | null): Interval[] {
  const out: Interval[] = [];
  const open = new Map<number, number>();
  for (const e of own) {
    const now = new Set(e.partitions);
    for (const [p, from] of open) {
      if (!now.has(p)) {
        out.push({ member: name, partition: p, from, to: e.at });
        open.delete(p);
      }
    }
    for (const p of now) if (!open.has(p)) open.set(p, e.at);
  }
  for (const [p, from] of open) out.push({ member: name, partition: p, from, to: killedAtMs ?? Infinity });
  return out;
}

/** Pairs of intervals of the same partition, of different members, that overlap. */
export function overlaps(intervals: readonly Interval[]): Array<[Interval, Interval]> {
  const bad: Array<[Interval, Interval]> = [];
  for (let i = 0; i < intervals.length; i++) {
    for (let j = i + 1; j < intervals.length; j++) {
      const x = intervals[i]!;
      const y = intervals[j]!;
      if (x.partition !== y.partition || x.member === y.member) continue;
      if (x.from < y.to && y.from < x.to) bad.push([x, y]);
    }
  }
  return bad;
}

export const tpo = (p: number, o: number): string => `${p}:${o}`;
