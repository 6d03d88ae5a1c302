/**
 * A workload worker process (`sluice bench worker`, started by the driver with an IPC channel,
 * its config as JSON in argv): runs producer clients, consumer clients or idle connections,
 * answers the driver's ticks with stats (ipc.ts), exits on 'exit' or when the driver is gone.
 *
 * Latency clock: each value starts with its send time in ms since the epoch at µs precision
 * (performance.timeOrigin + performance.now(), float64), so end-to-end latency is measured
 * across processes on one machine's clock.
 *
 * Invariants: a producer client has at most IN_FLIGHT_CHUNKS_MAX unacknowledged send() calls of at
 * most CHUNK_MESSAGES_MAX messages / CHUNK_BYTES_MAX bytes each; sends happen only in the
 * 'warmup' and 'test' phases.
 */
import { randomFillSync } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { newHistogram, encodeHistogram, recordMs, type Histogram } from './histogram.ts';
import type { FromWorker, Phase, ToWorker, WorkerConfig } from './ipc.ts';
import { keyDistributor, loadPeer, type OutMessage, type PeerConsumer, type PeerProducer } from './peers/peer.ts';
import { splitAddress } from './peers/redis.ts';

const CHUNK_MESSAGES_MAX = 1000;
const CHUNK_BYTES_MAX = 1024 * 1024;
const IN_FLIGHT_CHUNKS_MAX = 64;
const PACE_TICK_MS = 1;
const CLOSE_MS_MAX = 5000;
const VALUE_POOL_BYTES = 1024 * 1024;

export const epochNowMs = (): number => performance.timeOrigin + performance.now();

function send(m: FromWorker): void {
  process.send!(m);
}

let phase: Phase = 'idle';
let sent = 0;
let acked = 0;
let received = 0;
let inFlight = 0;
let publishHist: Histogram = newHistogram();
let e2eHist: Histogram = newHistogram();
let failed = false;
const closers: Array<() => Promise<void>> = [];
const running: Array<Promise<void>> = [];

function fail(e: unknown): void {
  if (failed) return;
  failed = true;
  send({ t: 'error', message: (e as Error)?.stack ?? String(e) });
  void shutdown(1);
}

async function shutdown(code: number): Promise<void> {
  phase = 'idle';
  const force = setTimeout(() => process.exit(code), CLOSE_MS_MAX);
  force.unref();
  await Promise.allSettled(closers.map((c) => c()));
  process.exit(code);
}

function onTick(seq: number, next: Phase): void {
  const stats: FromWorker = {
    t: 'stats',
    seq,
    sent,
    acked,
    received,
    inFlight,
    owned: owned(),
    publishLatency: publishHist.totalCount > 0 ? encodeHistogram(publishHist) : '',
    endToEndLatency: e2eHist.totalCount > 0 ? encodeHistogram(e2eHist) : '',
  };
  sent = acked = received = 0;
  publishHist.reset();
  e2eHist.reset();
  send(stats);
  phase = next;
}

let owned = (): number => 0;

async function runProducer(p: PeerProducer, messageSize: number, keyOf: () => Buffer | undefined, rate: number): Promise<void> {
  const pool = randomFillSync(Buffer.allocUnsafe(VALUE_POOL_BYTES + messageSize));
  let poolAt = 0;
  const chunkMax = Math.max(1, Math.min(CHUNK_MESSAGES_MAX, Math.floor(CHUNK_BYTES_MAX / messageSize)));
  const pending = new Set<Promise<void>>();
  let pacedFrom = -1;
  let pacedSent = 0;
  while (!failed) {
    if (phase !== 'warmup' && phase !== 'test') {
      if (phase === 'drain' || phase === 'idle') {
        pacedFrom = -1;
        await sleep(PACE_TICK_MS * 5);
        continue;
      }
    }
    let n = chunkMax;
    if (rate > 0) {
      const now = performance.now();
      if (pacedFrom < 0) {
        pacedFrom = now;
        pacedSent = 0;
      }
      const due = Math.floor(((now - pacedFrom) * rate) / 1000) - pacedSent;
      if (due <= 0) {
        await sleep(PACE_TICK_MS);
        continue;
      }
      n = Math.min(n, due);
      pacedSent += n;
    }
    const msgs: OutMessage[] = new Array(n);
    const sentAt = epochNowMs();
    for (let i = 0; i < n; i++) {
      const v = Buffer.allocUnsafe(messageSize);
      pool.copy(v, 0, poolAt, poolAt + messageSize);
      poolAt = (poolAt + 61) % VALUE_POOL_BYTES;
      v.writeDoubleLE(sentAt, 0);
      msgs[i] = { value: v, key: keyOf() };
    }
    sent += n;
    inFlight += n;
    const done = p.send(msgs).then(
      () => {
        inFlight -= n;
        acked += n;
        recordMs(publishHist, epochNowMs() - sentAt, n);
      },
      (e: unknown) => fail(e),
    );
    pending.add(done);
    void done.finally(() => pending.delete(done));
    if (pending.size >= IN_FLIGHT_CHUNKS_MAX) await Promise.race(pending);
    else if (rate === 0) await new Promise((r) => setImmediate(r));
  }
}

function onValues(values: ReadonlyArray<Uint8Array>): void {
  const now = epochNowMs();
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    const sentAt = new DataView(v.buffer, v.byteOffset, v.byteLength).getFloat64(0, true);
    recordMs(e2eHist, now - sentAt);
  }
  received += values.length;
}

async function openIdle(address: string, count: number): Promise<void> {
  const [host, port] = splitAddress(address);
  const sockets: Socket[] = [];
  closers.push(async () => sockets.forEach((s) => s.destroy()));
  for (let i = 0; i < count; i++) {
    await new Promise<void>((resolve, reject) => {
      const s = connect({ host, port }, () => resolve());
      s.once('error', reject);
      sockets.push(s);
    });
  }
}

async function main(): Promise<void> {
  const cfg = JSON.parse(process.argv[process.argv.length - 1]!) as WorkerConfig;
  process.on('message', (m: ToWorker) => {
    if (m.t === 'tick') onTick(m.seq, m.phase);
    else if (m.t === 'exit') void shutdown(0);
  });
  // The driver is gone: no worker outlives it.
  process.on('disconnect', () => void shutdown(0));
  if (cfg.role === 'idle') {
    await openIdle(cfg.address, cfg.connections);
  } else if (cfg.role === 'producer') {
    const peer = await loadPeer(cfg.driver);
    for (const c of cfg.clients) {
      const p = peer.producer(c);
      closers.push(() => p.close());
      running.push(runProducer(p, cfg.messageSize, keyDistributor(cfg.keyDistributor), cfg.ratePerClientMsgsPerSec).catch(fail));
    }
  } else {
    const peer = await loadPeer(cfg.driver);
    const consumers: PeerConsumer[] = cfg.clients.map((c) => peer.consumer(c));
    for (const c of consumers) closers.push(() => c.close());
    await Promise.all(consumers.map((c) => c.ready()));
    owned = () => consumers.reduce((s, c) => s + c.owned(), 0);
    for (const c of consumers) running.push(c.run(onValues).catch(fail));
  }
  send({ t: 'ready' });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export function runWorker(): void {
  if (typeof process.send !== 'function') {
    process.stderr.write('sluice bench worker: started by sluice bench workload (over an IPC channel), not by hand\n');
    process.exit(1);
  }
  main().catch(fail);
}
