/**
 * bench delayed (issue 10): schedule N delayed messages spread uniformly over a window and
 * measure, in one run:
 *
 *  1. baseline: the rate of normal (not delayed) messages a producer gets onto `<topic>.normal`
 *     for --baseline-ms, before anything is scheduled;
 *  2. scheduling: N messages to the topic's partitions (round robin), message i due at
 *     T0 + i * window / N, T0 = start + --start-after-ms (default: a guess from N, see below);
 *     acceptedMsgsPerSec = N / time until the last acknowledgement. Then the broker's RSS
 *     (VmRSS of /proc/<pid>/status) with all N pending, its peak while scheduling (VmHWM),
 *     and the pending entries the broker reports (ListDelayed pendingCount: one per SCHEDULED
 *     wrapper; messages with the same delivery time and partition share a wrapper);
 *  3. the window: a consumer reads the released messages; lateness = receive time -
 *     `sluice-deliver-at-ms` of each released batch (one header per batch, read from the raw
 *     batch, weighted by its records): p50 / p99 / max, and the count received early (must be
 *     0). Meanwhile a producer sends normal messages to `<topic>.normal` as fast as it can (or
 *     at --rate): normalDuringReleasesMsgsPerSec, to compare with the baseline.
 *
 * The broker: --broker-pid PID of a running one at --bootstrap, or --data-dir DIR to start a
 * broker process of its own there (stopped at the end). Clocks: the consumer and the broker
 * must share a clock (one machine) for lateness to mean anything.
 *
 * Bounds: lateness is kept in a histogram of LATENESS_BUCKETS_MS 1-ms buckets (later ones are
 * counted in the last bucket; max is exact), so memory does not grow with N.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { Admin } from '../client/admin.ts';
import { Consumer } from '../client/consumer.ts';
import { Producer, type ProducerMessage } from '../client/producer.ts';
import { parseDeliverAtMs } from '../protocol/delayed-batch.ts';
import { ErrorCode, SluiceError } from '../protocol/errors.ts';
import { newBatchInfo, validateBatch } from '../protocol/record-batch.ts';
import type { BenchOptions } from './options.ts';
import { Payloads } from './payload.ts';
import { startBenchBroker, type BenchBroker } from './broker-process.ts';
import { Progress, round } from './report.ts';
import { sendMessages, type SendStats } from './send.ts';

export interface DelayedResult {
  mode: 'delayed';
  messages: number;
  sizeBytes: number;
  partitions: number;
  windowMs: number;
  /** Scheduling: first send until the last acknowledgement. */
  scheduleSeconds: number;
  acceptedMsgsPerSec: number;
  /** SCHEDULED wrappers pending after scheduling (ListDelayed pendingCount, all partitions). */
  pendingEntries: number;
  /** Broker RSS with every message pending, and its peak while scheduling (MiB). */
  brokerRssMiB: number;
  brokerPeakRssMiB: number;
  /** The window started before scheduling ended (some messages were due early in the run). */
  scheduleOverranWindow: boolean;
  released: number;
  /** Messages not received within the drain time after the window. */
  missing: number;
  latenessP50Ms: number;
  latenessP99Ms: number;
  latenessMaxMs: number;
  /** Messages received before their delivery time (must be 0). */
  early: number;
  normalBaselineMsgsPerSec: number;
  normalDuringReleasesMsgsPerSec: number;
  /** The normal load's pace (null: unthrottled). */
  normalRateMsgsPerSec: number | null;
  /** Broker RSS after the window (everything released). */
  brokerRssAfterMiB: number;
}

const LATENESS_BUCKETS_MS = 60_000;
/** Normal messages per sendMessages call of the normal load (it checks for stop between calls). */
const NORMAL_CHUNK = 20_000;
/** After the window, how long the consumer may take to receive what is still missing. */
const DRAIN_MS = 60_000;
/** How long the consumer may go without a message once every release is due. */
const QUIET_MS_MAX = 15_000;
const MiB = 1024 * 1024;

function statusMiB(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no ${field} in /proc/${pid}/status`);
  return round((Number(m[1]) * 1024) / MiB, 1);
}

function resetPeak(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false; // not ours to write: the peak then covers the broker's whole life
  }
}

/** Default --start-after-ms: the scheduling time at an assumed 10 000 msgs/s, plus 5 s. */
export function defaultStartAfterMs(messages: number): number {
  return 5_000 + Math.ceil(messages / 10);
}

async function createTopic(admin: Admin, topic: string, partitions: number, configs: Record<string, string>): Promise<void> {
  try {
    await admin.createTopics([{ topic, partitions, configs }]);
  } catch (e) {
    if (!(e instanceof SluiceError && e.code === ErrorCode.TOPIC_ALREADY_EXISTS)) throw e;
  }
  for (let attempt = 0; attempt < 50; attempt++) {
    const md = await admin.cluster.topic(topic, true).catch(() => null);
    if (md && md.partitions.length > 0 && md.partitions.every((p) => p.leader >= 0)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`topic ${topic} has partitions without a leader`);
}

/** Sends normal messages to topic as fast as the producer takes them until stop(); counts acknowledgements. */
function normalLoad(bootstrap: string, topic: string, sizeBytes: number, rateMsgsPerSec: number): { stop: () => Promise<number> } {
  const producer = new Producer({ bootstrap, acks: 1, profile: 'throughput', clientId: 'sluice-bench-normal' });
  const stats: SendStats = { sent: 0, acked: 0 };
  let stopped = false;
  const payloads = new Payloads(sizeBytes);
  const startedAt = performance.now();
  const loop = (async () => {
    // Chunks of NORMAL_CHUNK through the bench's sending loop (paced per chunk), until stopped.
    while (!stopped) await sendMessages(producer, topic, Math.min(NORMAL_CHUNK, rateMsgsPerSec), () => payloads.value(), rateMsgsPerSec, stats);
  })();
  return {
    stop: async () => {
      stopped = true;
      await loop;
      const seconds = (performance.now() - startedAt) / 1000;
      await producer.close();
      return Math.round(stats.acked / seconds);
    },
  };
}

export async function benchDelayed(opts: BenchOptions): Promise<DelayedResult> {
  let own: BenchBroker | null = null;
  if (opts.dataDir !== null) own = await startBenchBroker(opts.dataDir);
  const bootstrap = own?.bootstrap ?? opts.bootstrap;
  const pid = own?.proc.pid ?? opts.brokerPid;
  if (pid === null || pid === undefined) throw new Error('bench delayed needs --broker-pid PID or --data-dir DIR (to read the broker\'s RSS)');
  const admin = new Admin({ bootstrap, clientId: 'sluice-bench' });
  const normalTopic = `${opts.topic}.normal`;
  try {
    await createTopic(admin, opts.topic, opts.partitions, opts.configs);
    await createTopic(admin, normalTopic, opts.partitions, {});

    // 1. baseline
    process.stderr.write(`[delayed] baseline: normal messages to ${normalTopic} for ${opts.baselineMs} ms\n`);
    const baseline = normalLoad(bootstrap, normalTopic, opts.sizeBytes, opts.rateMsgsPerSec);
    await new Promise((r) => setTimeout(r, opts.baselineMs));
    const normalBaselineMsgsPerSec = await baseline.stop();

    // 2. scheduling
    const n = opts.messages;
    const window = opts.windowMs;
    const startAfterMs = opts.startAfterMs ?? defaultStartAfterMs(n);
    const startEnds = await Promise.all(Array.from({ length: opts.partitions }, (_, p) => admin.listOffsets(opts.topic, p, 'latest')));
    const pendingBefore = (await admin.listDelayed(opts.topic)).pendingCount;
    const peakReset = resetPeak(pid);
    const producer = new Producer({ bootstrap, acks: opts.acks, profile: opts.profile, clientId: 'sluice-bench-delayed', ...(opts.idempotent !== undefined ? { idempotent: opts.idempotent } : {}) });
    await producer.cluster.topic(opts.topic);
    const stats: SendStats = { sent: 0, acked: 0 };
    const progress = new Progress('delayed schedule', n, () => stats.acked);
    const t0 = Date.now() + startAfterMs;
    const payloads = new Payloads(opts.sizeBytes);
    const startedAt = performance.now();
    let i = 0;
    const partitions = opts.partitions;
    try {
      await sendMessages(producer, opts.topic, n, () => payloads.value(), Infinity, stats, (m: ProducerMessage) => {
        m.partition = i % partitions;
        m.deliverAt = t0 + Math.floor((i * window) / n);
        i++;
      });
    } finally {
      progress.stop();
      await producer.close();
    }
    const scheduleSeconds = (performance.now() - startedAt) / 1000;
    const scheduledAt = Date.now();
    const brokerRssMiB = statusMiB(pid, 'VmRSS');
    const brokerPeakRssMiB = statusMiB(pid, 'VmHWM');
    const pendingEntries = (await admin.listDelayed(opts.topic)).pendingCount - pendingBefore;
    process.stderr.write(`[delayed] scheduled ${n} in ${scheduleSeconds.toFixed(1)} s; ${pendingEntries} pending entries; broker RSS ${brokerRssMiB} MiB (peak ${brokerPeakRssMiB}${peakReset ? '' : ', since broker start'})\n`);

    // 3. the window: consumer of the releases, normal load alongside
    const consumer = new Consumer({ bootstrap, clientId: 'sluice-bench-delayed-consumer', maxWaitMs: 50 });
    await consumer.assign(startEnds.map((offset, partition) => ({ topic: opts.topic, partition, offset })));
    const hist = new Float64Array(LATENESS_BUCKETS_MS + 1);
    let released = 0;
    let early = 0;
    let maxLate = 0;
    const info = newBatchInfo();
    if (Date.now() < t0) await new Promise((r) => setTimeout(r, t0 - Date.now()));
    process.stderr.write(`[delayed] window: ${window} ms of releases; normal load on ${normalTopic}\n`);
    const during = normalLoad(bootstrap, normalTopic, opts.sizeBytes, opts.rateMsgsPerSec);
    const rp = new Progress('delayed release', n, () => released);
    let normalDuringReleasesMsgsPerSec = 0;
    let lastMessageAt = Date.now();
    const windowEnd = t0 + window;
    try {
      while (released < n) {
        const now = Date.now();
        if (now > windowEnd && normalDuringReleasesMsgsPerSec === 0) normalDuringReleasesMsgsPerSec = Math.max(1, await during.stop());
        if (now > windowEnd + DRAIN_MS || (now > windowEnd && now - lastMessageAt > QUIET_MS_MAX)) break;
        const batches = await consumer.pollBatches(100);
        const at = Date.now();
        for (const b of batches) {
          const count = b.lastOffset + 1 - Math.max(b.firstOffset, b.baseOffset);
          if (count <= 0) continue;
          lastMessageAt = at;
          if (validateBatch(b.bytes, 0, b.bytes.length, info, true) !== ErrorCode.NONE || info.deliverAtAt < 0) continue; // not one of ours
          const due = parseDeliverAtMs(b.bytes, info.deliverAtAt, info.deliverAtBytes);
          const late = at - due;
          released += count;
          if (late < 0) early += count;
          if (late > maxLate) maxLate = late;
          hist[Math.min(LATENESS_BUCKETS_MS, Math.max(0, late))]! += count;
        }
      }
    } finally {
      rp.stop();
      if (normalDuringReleasesMsgsPerSec === 0) normalDuringReleasesMsgsPerSec = await during.stop();
      await consumer.close();
    }
    const pct = (q: number): number => {
      const target = Math.ceil((q / 100) * released);
      let acc = 0;
      for (let ms = 0; ms <= LATENESS_BUCKETS_MS; ms++) {
        acc += hist[ms]!;
        if (acc >= target && acc > 0) return ms;
      }
      return NaN;
    };
    return {
      mode: 'delayed',
      messages: n,
      sizeBytes: opts.sizeBytes,
      partitions,
      windowMs: window,
      scheduleSeconds: round(scheduleSeconds, 3),
      acceptedMsgsPerSec: Math.round(n / scheduleSeconds),
      pendingEntries,
      brokerRssMiB,
      brokerPeakRssMiB,
      scheduleOverranWindow: scheduledAt > t0,
      released,
      missing: n - released,
      latenessP50Ms: pct(50),
      latenessP99Ms: pct(99),
      latenessMaxMs: maxLate,
      early,
      normalBaselineMsgsPerSec,
      normalDuringReleasesMsgsPerSec,
      normalRateMsgsPerSec: opts.rateMsgsPerSec === Infinity ? null : opts.rateMsgsPerSec,
      brokerRssAfterMiB: statusMiB(pid, 'VmRSS'),
    };
  } finally {
    await admin.close();
    if (own !== null) {
      own.proc.kill('SIGTERM');
      await new Promise((r) => own!.proc.once('exit', r));
    }
  }
}

export function formatDelayed(r: DelayedResult): string {
  return [
    `delayed: ${r.messages.toLocaleString('en-US')} messages of ${r.sizeBytes} B over ${r.partitions} partitions, window ${r.windowMs} ms`,
    `  accepted ${r.acceptedMsgsPerSec.toLocaleString('en-US')} msgs/s (${r.scheduleSeconds} s); ${r.pendingEntries.toLocaleString('en-US')} pending entries; broker RSS ${r.brokerRssMiB} MiB with all pending (peak ${r.brokerPeakRssMiB} MiB)${r.scheduleOverranWindow ? ' [scheduling overran the window start: raise --start-after-ms]' : ''}`,
    `  released ${r.released.toLocaleString('en-US')} (missing ${r.missing}); lateness ms p50 ${r.latenessP50Ms}, p99 ${r.latenessP99Ms}, max ${r.latenessMaxMs}; early ${r.early}`,
    `  normal produce: ${r.normalBaselineMsgsPerSec.toLocaleString('en-US')} msgs/s before, ${r.normalDuringReleasesMsgsPerSec.toLocaleString('en-US')} msgs/s while releases fire; broker RSS after ${r.brokerRssAfterMiB} MiB`,
  ].join('\n') + '\n';
}
