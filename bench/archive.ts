/**
 * bench archive (issue 11): tiered storage throughput, medians of --runs, for one store kind
 * (--store local: a directory; --store s3: an s3rver this process starts). Each run, on a
 * fresh data dir, store and broker processes it starts itself:
 *
 *  1. produce: --mb MiB of --size byte values to topic `arch` (archive.enable, small segments)
 *     and the same to topic `plain` (no archive), on a broker whose uploader is idle (check
 *     interval 1 h: it looks once, at leadership, before anything is sealed);
 *  2. upload: the broker restarted with a 100 ms check interval; uploadMBps = archived bytes /
 *     time from its "listening" line until DescribeArchive reports no sealed segment left to
 *     upload (so the figure is the uploader's, not the producer's; polled every 100 ms);
 *  3. local retention removes the archived segments from disk (local.retention.bytes = two
 *     segments), then the broker is restarted again, so the chunk cache is cold;
 *     archiveConsumeMBps = value bytes of the archived offsets (below the local log start)
 *     read by one consumer from the earliest offset / time;
 *  4. localConsumeMBps: the same consumer reads `plain` (all local) from its start.
 *
 * MB/s is 2^20 bytes per second (values for consume, .log bytes for upload). The page cache
 * is not dropped: the local store's objects and `plain`'s segments may be read from memory.
 * Every process and directory it starts or creates is stopped or removed, also on failure.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Admin } from '../client/admin.ts';
import { bool, int, parseArgs, positionals, str, UsageError, type FlagSpecs } from '../client/cli/args.ts';
import { Consumer } from '../client/consumer.ts';
import { Producer, type ProducerMessage } from '../client/producer.ts';
import type { S3TestServer } from '../test/helpers/s3-server.ts';
import { startBenchBroker, type BenchBroker } from './broker-process.ts';
import { round } from './report.ts';

export const archiveBenchHelp = `Usage: sluice bench archive [--store local|s3] [--runs R] [--mb MIB] [--size BYTES]
                            [--segment-mb MIB] [--partitions P] [--json]

Tiered storage throughput on brokers and a store this command starts itself (s3: an s3rver
in this process): upload MB/s (the uploader catching up on MIB of sealed segments after a
restart), cold-read consume MB/s from the archive (broker restarted: empty chunk cache)
versus local consume MB/s of the same volume. Medians of --runs (default 3).

  --store local|s3   the archive store (default local: a directory)
  --mb MIB           MiB of values produced to each of the two topics (default 256)
  --size BYTES       value size (default 16384)
  --segment-mb MIB   segment.bytes of the topics (default 16)
  --partitions P     partitions of each topic (default 2)
  --json             last stdout line is one JSON object with the results
`;

const flags: FlagSpecs = {
  store: { type: 'string' },
  runs: { type: 'int', min: 1 },
  mb: { type: 'int', min: 1 },
  size: { type: 'int', min: 8 },
  'segment-mb': { type: 'int', min: 1 },
  partitions: { type: 'int', min: 1 },
  json: { type: 'boolean' },
  help: { type: 'boolean' },
};

interface ArchiveBenchOptions {
  store: 'local' | 's3';
  runs: number;
  totalBytes: number;
  sizeBytes: number;
  segmentBytes: number;
  partitions: number;
  json: boolean;
}

export interface ArchiveRun {
  produceMBps: number;
  uploadMBps: number;
  uploadSeconds: number;
  archivedMiB: number;
  archiveConsumeMBps: number;
  archivedConsumedMiB: number;
  localConsumeMBps: number;
}

export interface ArchiveBenchResult {
  mode: 'archive';
  store: 'local' | 's3';
  runs: number;
  mib: number;
  sizeBytes: number;
  segmentBytes: number;
  partitions: number;
  /** Medians over the runs. */
  produceMBps: number;
  uploadMBps: number;
  archiveConsumeMBps: number;
  localConsumeMBps: number;
  each: ArchiveRun[];
}

const MiB = 1024 * 1024;
/** Bounds of the waits for the uploader and local retention (a run of --mb 1024 on a slow store fits). */
const WAIT_MS_MAX = 30 * 60_000;
const POLL_MS = 100;
/** The uploader's check interval while producing: it looks once at leadership, then not for an hour. */
const IDLE_CHECK_INTERVAL_MS = 3_600_000;
const SEND_CHUNK = 256;
const SEND_CHUNKS_IN_FLIGHT_MAX = 8;

function parse(argv: string[]): ArchiveBenchOptions | null {
  const p = parseArgs(argv, flags);
  if (bool(p, 'help')) return null;
  positionals(p, [], 'sluice bench archive [options]');
  const store = str(p, 'store', 'local');
  if (store !== 'local' && store !== 's3') throw new UsageError(`--store ${JSON.stringify(store)}: local or s3`);
  return {
    store,
    runs: int(p, 'runs', 3),
    totalBytes: int(p, 'mb', 256) * MiB,
    sizeBytes: int(p, 'size', 16384),
    segmentBytes: int(p, 'segment-mb', 16) * MiB,
    partitions: int(p, 'partitions', 2),
    json: bool(p, 'json'),
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

async function until<T>(what: string, f: () => Promise<T | null>): Promise<T> {
  const deadline = Date.now() + WAIT_MS_MAX;
  for (;;) {
    const v = await f();
    if (v !== null) return v;
    if (Date.now() > deadline) throw new Error(`bench archive: timed out after ${WAIT_MS_MAX} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

async function stopBroker(b: BenchBroker | null): Promise<void> {
  if (!b || b.proc.exitCode !== null || b.proc.signalCode !== null) return;
  const exited = new Promise((r) => b.proc.once('exit', r));
  b.proc.kill('SIGTERM');
  const t = setTimeout(() => b.proc.kill('SIGKILL'), 20_000);
  await exited;
  clearTimeout(t);
}

/** Sends count values of sizeBytes round robin over the partitions; resolves when all are acknowledged. Returns seconds. */
async function produce(bootstrap: string, topic: string, partitions: number, count: number, sizeBytes: number): Promise<number> {
  const producer = new Producer({ bootstrap, clientId: 'sluice-bench-archive', lingerMs: 5 });
  const value = Buffer.alloc(sizeBytes);
  for (let i = 0; i < sizeBytes; i++) value[i] = (i * 131 + 7) & 0xff;
  const startedAt = performance.now();
  try {
    const inFlight = new Set<Promise<unknown>>();
    let failure: unknown = null;
    for (let i = 0; i < count; i += SEND_CHUNK) {
      if (failure) throw failure;
      const msgs: ProducerMessage[] = [];
      for (let k = i; k < Math.min(i + SEND_CHUNK, count); k++) msgs.push({ topic, partition: k % partitions, value });
      const p = producer.sendBatch(msgs).catch((e: unknown) => {
        failure ??= e;
      });
      inFlight.add(p);
      void p.finally(() => inFlight.delete(p));
      if (inFlight.size >= SEND_CHUNKS_IN_FLIGHT_MAX) await Promise.race(inFlight);
    }
    await Promise.all(inFlight);
    if (failure) throw failure;
    return (performance.now() - startedAt) / 1000;
  } finally {
    await producer.close();
  }
}

/** Reads every partition of topic from its earliest offset up to ends[p]; returns [value bytes, seconds]. */
async function consume(bootstrap: string, topic: string, ends: number[]): Promise<[number, number]> {
  const consumer = new Consumer({ bootstrap, clientId: 'sluice-bench-archive', autoOffsetReset: 'earliest', maxBytes: 32 * MiB, partitionMaxBytes: 8 * MiB });
  const startedAt = performance.now();
  let bytes = 0;
  try {
    await consumer.assign(ends.map((_, partition) => ({ topic, partition, offset: 'earliest' as const })));
    const next = ends.map(() => 0);
    const deadline = Date.now() + WAIT_MS_MAX;
    while (next.some((n, p) => n < ends[p]!)) {
      if (Date.now() > deadline) throw new Error(`bench archive: consuming ${topic} took longer than ${WAIT_MS_MAX} ms`);
      for (const m of await consumer.poll(1000)) {
        if (m.offset < ends[m.partition]!) bytes += m.value?.length ?? 0;
        next[m.partition] = m.offset + 1;
      }
    }
    return [bytes, (performance.now() - startedAt) / 1000];
  } finally {
    await consumer.close();
  }
}

async function oneRun(o: ArchiveBenchOptions, run: number): Promise<ArchiveRun> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-bench-archive-'));
  let s3: S3TestServer | null = null;
  let broker: BenchBroker | null = null;
  const note = (s: string) => process.stderr.write(`[archive ${o.store} run ${run}] ${s}\n`);
  try {
    let storeArgs: string[];
    let env: Record<string, string> = {};
    if (o.store === 's3') {
      // Loaded only here: s3rver is a dev dependency and the helper lives with the tests, so a
      // production install (the Docker image) has neither; --store local works everywhere.
      const { startS3Server } = await import('../test/helpers/s3-server.ts').catch((e: Error) => {
        throw new Error(`bench archive --store s3 runs s3rver from the test helpers and dev dependencies (a source checkout with npm ci): ${e.message}`);
      });
      s3 = await startS3Server({ bucket: 'bench-archive', dir: path.join(work, 's3rver') });
      storeArgs = s3.brokerArgs();
      env = s3.env();
    } else {
      storeArgs = ['--archive-dir', path.join(work, 'archive')];
    }
    const dataDir = path.join(work, 'data');
    const start = (extra: string[]) => startBenchBroker(dataDir, { args: [...storeArgs, ...extra], env });

    // 1. Produce with the uploader idle.
    broker = await start(['--archive-check-interval-ms', String(IDLE_CHECK_INTERVAL_MS), '--retention-check-interval-ms', String(IDLE_CHECK_INTERVAL_MS)]);
    const count = Math.ceil(o.totalBytes / o.sizeBytes);
    let admin = new Admin({ bootstrap: broker.bootstrap });
    const common = { 'segment.bytes': String(o.segmentBytes), 'retention.ms': '-1', 'retention.bytes': '-1' };
    await admin.createTopics([
      { topic: 'arch', partitions: o.partitions, configs: { ...common, 'archive.enable': 'true', 'local.retention.bytes': String(2 * o.segmentBytes) } },
      { topic: 'plain', partitions: o.partitions, configs: common },
    ]);
    await admin.close();
    const produceSeconds = await produce(broker.bootstrap, 'arch', o.partitions, count, o.sizeBytes);
    note(`produced ${(count * o.sizeBytes) / MiB} MiB in ${round(produceSeconds, 2)} s`);
    await produce(broker.bootstrap, 'plain', o.partitions, count, o.sizeBytes);
    await stopBroker(broker);

    // 2. Upload: from the restart until nothing sealed is left to archive.
    broker = await start(['--archive-check-interval-ms', '100', '--retention-check-interval-ms', '200']);
    // From "listening" (the process start, tsx included, is not the uploader's time).
    const restartedAt = performance.now();
    admin = new Admin({ bootstrap: broker.bootstrap });
    const a = admin;
    const archivedBytes = await until('the uploader to catch up', async () => {
      const d = await a.describeArchive(['arch']);
      const ps = d.topics[0]?.partitions ?? [];
      if (ps.length !== o.partitions || ps.some((p) => p.lagSegments > 0 || p.archiveEndOffset < 0)) return null;
      return ps.reduce((n, p) => n + p.archivedBytes, 0);
    });
    const uploadSeconds = (performance.now() - restartedAt) / 1000;
    note(`uploaded ${round(archivedBytes / MiB, 1)} MiB in ${round(uploadSeconds, 2)} s`);

    // 3. Local retention removes the archived segments; a restart empties the chunk cache.
    await until('local retention to remove the archived segments', async () => {
      const d = await a.describeArchive(['arch']);
      const ps = d.topics[0]?.partitions ?? [];
      // local.retention.bytes keeps two segments (and the active one): the rest left the disk.
      return ps.every((p) => p.localStartOffset > 0 && (p.localEndOffset - p.localStartOffset) * o.sizeBytes <= 4 * o.segmentBytes) ? true : null;
    });
    const status = (await admin.describeArchive(['arch'])).topics[0]!.partitions;
    const localStarts = status.map((p) => p.localStartOffset);
    await admin.close();
    await stopBroker(broker);
    broker = await start([]);
    const [archivedConsumed, archiveSeconds] = await consume(broker.bootstrap, 'arch', localStarts);
    note(`read ${round(archivedConsumed / MiB, 1)} MiB from the archive in ${round(archiveSeconds, 2)} s`);

    // 4. Local consume of the same volume.
    const ends = Array.from({ length: o.partitions }, (_, p) => Math.floor(count / o.partitions) + (p < count % o.partitions ? 1 : 0));
    const [localBytes, localSeconds] = await consume(broker.bootstrap, 'plain', ends);
    note(`read ${round(localBytes / MiB, 1)} MiB locally in ${round(localSeconds, 2)} s`);

    return {
      produceMBps: round((count * o.sizeBytes) / MiB / produceSeconds, 1),
      uploadMBps: round(archivedBytes / MiB / uploadSeconds, 1),
      uploadSeconds: round(uploadSeconds, 2),
      archivedMiB: round(archivedBytes / MiB, 1),
      archiveConsumeMBps: round(archivedConsumed / MiB / archiveSeconds, 1),
      archivedConsumedMiB: round(archivedConsumed / MiB, 1),
      localConsumeMBps: round(localBytes / MiB / localSeconds, 1),
    };
  } finally {
    await stopBroker(broker);
    await s3?.destroy();
    fs.rmSync(work, { recursive: true, force: true });
  }
}

/** `sluice bench archive ...` (argv without "bench archive"); writes the result, returns the exit code. */
export async function benchArchive(argv: string[]): Promise<number> {
  const o = parse(argv);
  if (o === null) {
    process.stdout.write(archiveBenchHelp);
    return 0;
  }
  const each: ArchiveRun[] = [];
  for (let r = 1; r <= o.runs; r++) each.push(await oneRun(o, r));
  const res: ArchiveBenchResult = {
    mode: 'archive',
    store: o.store,
    runs: o.runs,
    mib: o.totalBytes / MiB,
    sizeBytes: o.sizeBytes,
    segmentBytes: o.segmentBytes,
    partitions: o.partitions,
    produceMBps: median(each.map((e) => e.produceMBps)),
    uploadMBps: median(each.map((e) => e.uploadMBps)),
    archiveConsumeMBps: median(each.map((e) => e.archiveConsumeMBps)),
    localConsumeMBps: median(each.map((e) => e.localConsumeMBps)),
    each,
  };
  process.stdout.write(o.json ? `${JSON.stringify(res)}\n` : `${JSON.stringify(res, null, 2)}\n`);
  return 0;
}
