/**
 * `sluice bench workload FILE`, `sluice bench plot RESULT.json...` and the internal
 * `sluice bench worker` (a worker process of the workload driver). Flags: see workloadHelp.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UsageError } from '../../client/cli/args.ts';
import { startBenchBroker, type BenchBroker } from '../broker-process.ts';
import { runWorkload } from './driver.ts';
import { DRIVERS, type DriverName } from './peers/peer.ts';
import { plotSvg } from './plot.ts';
import { svgToPng } from './png.ts';
import { isWorkloadResult, summaryLine, type WorkloadResult } from './result.ts';
import { parseWorkload, type Workload } from './spec.ts';
import { runWorker } from './worker.ts';


export const workloadHelp = `Usage:
  sluice bench workload FILE [flags]     run a workload file (YAML or JSON, bench/workloads/)
  sluice bench plot RESULT.json... --out FILE.svg|FILE.png
                                         one result: throughput, backlog and latency over time;
                                         several: a comparison bar chart
                                         (PNG is rendered by the system's headless Chromium)

bench workload flags:
  --bootstrap HOST:PORT   the broker or cluster to run against (sluice driver)
  --data-dir DIR          start a broker of its own on DIR (a fresh temporary dir with "temp")
  --driver sluice|redis|nats   the system under test (default sluice)
  --peer HOST:PORT        the Redis or NATS server (--driver redis|nats)
  --warmup-seconds N      override the file's warmupSeconds
  --test-seconds N        override the file's testDurationSeconds
  --rate N                override the file's producerRate (msgs/s, 0 = max)
  --snapshot-seconds N    snapshot interval for plots, 1-10 (default 1)
  --drain-seconds N       at most this long for the backlog to drain after the test (default 30)
  --json                  print the result as one JSON line on stdout (else the summary line)
  --out FILE              also write the result JSON to FILE
Progress goes to stderr while it runs.
`;

const SNAPSHOT_SECONDS_MIN = 1;
const SNAPSHOT_SECONDS_MAX = 10;
const DRAIN_SECONDS_MAX = 3600;

function intFlag(name: string, v: string | undefined, min: number, max: number): number {
  if (v === undefined || !/^\d+$/.test(v) || Number(v) < min || Number(v) > max) throw new UsageError(`${name} needs an integer between ${min} and ${max}, got ${v === undefined ? 'nothing' : JSON.stringify(v)}`);
  return Number(v);
}

export function loadWorkloadFile(path: string): Workload {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new UsageError(`cannot read workload file ${path}: ${(e as Error).message}`);
  }
  return parseWorkload(text, path);
}

export interface WorkloadArgs {
  help: boolean;
  file: string;
  workload: Workload;
  driver: DriverName;
  /** --bootstrap or --peer; '' with --data-dir (the started broker's address replaces it). */
  address: string;
  dataDir: string | undefined;
  json: boolean;
  out: string | undefined;
  snapshotSeconds: number;
  drainSeconds: number;
}

/** Parses `bench workload` arguments and reads the workload file; throws UsageError or WorkloadError. */
export function parseWorkloadArgs(args: string[]): WorkloadArgs {
  let file: string | undefined;
  let bootstrap: string | undefined;
  let dataDir: string | undefined;
  let driver: DriverName = 'sluice';
  let peerAddress: string | undefined;
  let json = false;
  let out: string | undefined;
  let snapshotSeconds = 1;
  let drainSeconds = 30;
  const overrides: Partial<Workload> = {};
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const val = (): string => {
      const v = args[++i];
      if (v === undefined) throw new UsageError(`${a} needs a value`);
      return v;
    };
    if (a === '--help' || a === '-h') {
      return { help: true, file: '', workload: null as unknown as Workload, driver, address: '', dataDir, json, out, snapshotSeconds, drainSeconds };
    } else if (a === '--bootstrap') bootstrap = val();
    else if (a === '--data-dir') dataDir = val();
    else if (a === '--driver') {
      const d = val();
      if (!(DRIVERS as readonly string[]).includes(d)) throw new UsageError(`--driver must be one of ${DRIVERS.join(', ')}, got ${JSON.stringify(d)}`);
      driver = d as DriverName;
    } else if (a === '--peer') peerAddress = val();
    else if (a === '--json') json = true;
    else if (a === '--out') out = val();
    else if (a === '--warmup-seconds') overrides.warmupSeconds = intFlag(a, val(), 0, 86_400);
    else if (a === '--test-seconds') overrides.testDurationSeconds = intFlag(a, val(), 1, 86_400);
    else if (a === '--rate') overrides.producerRate = intFlag(a, val(), 0, 100_000_000);
    else if (a === '--snapshot-seconds') snapshotSeconds = intFlag(a, val(), SNAPSHOT_SECONDS_MIN, SNAPSHOT_SECONDS_MAX);
    else if (a === '--drain-seconds') drainSeconds = intFlag(a, val(), 0, DRAIN_SECONDS_MAX);
    else if (a.startsWith('-')) throw new UsageError(`unknown flag ${a}`);
    else if (file === undefined) file = a;
    else throw new UsageError(`one workload file at a time (got ${file} and ${a})`);
  }
  if (file === undefined) throw new UsageError('bench workload needs a workload FILE (see bench/workloads/)');
  let address: string;
  if (driver === 'sluice') {
    if ((bootstrap === undefined) === (dataDir === undefined)) throw new UsageError('the sluice driver needs exactly one of --bootstrap HOST:PORT or --data-dir DIR');
    if (peerAddress !== undefined) throw new UsageError('--peer is for --driver redis|nats');
    address = bootstrap ?? '';
  } else {
    if (peerAddress === undefined) throw new UsageError(`--driver ${driver} needs --peer HOST:PORT of a running ${driver === 'redis' ? 'redis-server' : 'nats-server -js'}`);
    if (bootstrap !== undefined || dataDir !== undefined) throw new UsageError(`--bootstrap and --data-dir are for the sluice driver; use --peer with --driver ${driver}`);
    address = peerAddress;
  }
  const workload = { ...loadWorkloadFile(file), ...overrides };
  if (driver !== 'sluice' && workload.consumerGroups) throw new UsageError(`${file}: consumerGroups is for the sluice driver; --driver ${driver} splits partitions statically (set consumerGroups: false)`);
  return { help: false, file, workload, driver, address, dataDir, json, out, snapshotSeconds, drainSeconds };
}

export async function workloadCommand(argv: string[]): Promise<number> {
  const a = parseWorkloadArgs(argv);
  if (a.help) {
    process.stdout.write(workloadHelp);
    return 0;
  }
  const { workload: w, driver, json, out } = a;
  let { address, dataDir } = a;
  let broker: BenchBroker | null = null;
  let tempDir: string | null = null;
  try {
    if (dataDir !== undefined) {
      if (dataDir === 'temp') dataDir = tempDir = mkdtempSync(join(tmpdir(), 'sluice-workload-'));
      broker = await startBenchBroker(dataDir);
      address = broker.bootstrap;
    }
    const r = await runWorkload(w, { driver, address, snapshotMs: a.snapshotSeconds * 1000, drainSecondsMax: a.drainSeconds, progress: (l) => process.stderr.write(`${l}\n`) });
    if (out !== undefined) writeFileSync(out, `${JSON.stringify(r, null, 2)}\n`);
    process.stdout.write(json ? `${JSON.stringify(r)}\n` : `${summaryLine(r)}\n`);
    return r.complete ? 0 : 1;
  } finally {
    if (broker) {
      broker.proc.kill('SIGKILL');
      await new Promise((r) => (broker!.proc.exitCode !== null ? r(null) : broker!.proc.once('exit', r)));
    }
    if (tempDir) rmSync(tempDir, { recursive: true, force: true });
  }
}

/** Parses `bench plot` arguments (null for --help); throws UsageError. */
export function parsePlotArgs(args: string[]): { files: string[]; out: string } | null {
  const files: string[] = [];
  let out: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--help' || a === '-h') return null;
    else if (a === '--out') {
      out = args[++i];
      if (out === undefined) throw new UsageError('--out needs a file name');
    } else if (a.startsWith('-')) throw new UsageError(`unknown flag ${a}`);
    else files.push(a);
  }
  if (files.length === 0) throw new UsageError('bench plot needs at least one RESULT.json (from bench workload --out)');
  if (out === undefined) throw new UsageError('bench plot needs --out FILE.svg');
  if (!out.endsWith('.svg') && !out.endsWith('.png')) throw new UsageError(`bench plot writes SVG or PNG: --out must end in .svg or .png, got ${out}`);
  return { files, out };
}

export async function plotCommand(args: string[]): Promise<number> {
  const parsed = parsePlotArgs(args);
  if (parsed === null) {
    process.stdout.write(workloadHelp);
    return 0;
  }
  const { files, out } = parsed;
  const results: WorkloadResult[] = files.map((f) => {
    let v: unknown;
    try {
      v = JSON.parse(readFileSync(f, 'utf8'));
    } catch (e) {
      throw new UsageError(`cannot read ${f} as JSON: ${(e as Error).message}`);
    }
    if (!isWorkloadResult(v)) throw new UsageError(`${f} is not a bench workload result (written by bench workload --out)`);
    return v;
  });
  if (out.endsWith('.png')) await svgToPng(plotSvg(results), out);
  else writeFileSync(out, plotSvg(results));
  process.stderr.write(`[plot] wrote ${out}\n`);
  return 0;
}

export { runWorker };
