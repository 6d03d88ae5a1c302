/**
 * Diagnostic: how long one client's heavy request keeps every other client waiting. Starts a
 * broker process (node bin/sluice.mjs broker, 127.0.0.1, a free port, a temp data dir), then,
 * per scenario, one connection sends a heavy request while another (on a worker thread) sends
 * a Metadata request every 5 ms and records how long each took to answer. Prints one line per scenario: the
 * heavy request's outcome and duration, and the other client's Metadata latency (p50, max).
 *
 *   node --import tsx bench/event-loop-stall.ts [--entries N] [--evil-as N]
 *
 * --entries: entries in each heavy request (default 1000000; the broker's caps refuse them
 * above 10000 or 1000, which is the point). --evil-as: length of the all-'a' topic the
 * (a+)+b pattern is matched against (default 24: ~2^24 backtracking steps without the
 * linear-time matcher; every extra 'a' doubles that).
 * Not a test: numbers depend on the machine; it is run by hand before and after a change.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { ApiKey } from '../protocol/api-keys.ts';
import { RawSocket, requestFrame } from '../test/helpers/raw-socket.ts';
import { startBenchBroker } from './broker-process.ts';

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const ENTRIES = arg('--entries', 1_000_000);
const EVIL_AS = arg('--evil-as', 24);
const PARTITIONS = 1000;
/** A scenario gives up after this long (the broker may be stuck for much longer). */
const SCENARIO_WAIT_MS_MAX = 120_000;

let correlation = 1000;
async function call(s: RawSocket, apiKey: number, control: unknown) {
  const n = s.responses.length;
  s.write(requestFrame(apiKey, 0, ++correlation, control));
  await s.waitFor(n + 1, SCENARIO_WAIT_MS_MAX);
  return s.responses[n]!;
}

const pct = (xs: number[], p: number) => (xs.length ? [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]! : NaN);

/**
 * The other client runs on a worker thread, so that encoding the heavy request and decoding
 * its response in this process never delays the probe: it measures the broker alone. It
 * sends a pre-encoded Metadata frame, waits for one whole response frame, sleeps 5 ms, repeats.
 */
const PROBER = `
const { parentPort, workerData } = require('node:worker_threads');
const net = require('node:net');
const { port, frame } = workerData;
const latencies = [];
let stop = false;
parentPort.on('message', () => { stop = true; });
const s = net.connect({ port, host: '127.0.0.1' }, () => next());
let buf = Buffer.alloc(0), sent = 0;
function next() {
  if (stop) { s.destroy(); parentPort.postMessage(latencies); return; }
  sent = performance.now();
  s.write(Buffer.from(frame));
}
s.on('data', (d) => {
  buf = Buffer.concat([buf, d]);
  while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
    buf = buf.subarray(4 + buf.readUInt32BE(0));
    latencies.push(performance.now() - sent);
    setTimeout(next, 5);
  }
});
`;

async function measure(port: number, name: string, apiKey: number, control: unknown): Promise<void> {
  const frame = requestFrame(apiKey, 0, ++correlation, control);
  const heavy = await RawSocket.connect(port);
  const worker = new Worker(PROBER, { eval: true, workerData: { port, frame: requestFrame(ApiKey.METADATA, 0, 1, { topics: ['wide'] }) } });
  const latenciesP = new Promise<number[]>((resolve) => worker.once('message', resolve));
  await new Promise((r) => setTimeout(r, 200));
  const t = performance.now();
  heavy.write(frame);
  let outcome: string;
  try {
    await heavy.waitFor(1, SCENARIO_WAIT_MS_MAX);
    const r = heavy.responses[0]!;
    const c = r.control as { message?: string; errorCode?: number; errorMessage?: string };
    outcome = r.errorCode !== 0 ? `refused: ${c.message?.slice(0, 60)}` : c.errorCode ? `error ${c.errorCode}: ${c.errorMessage?.slice(0, 50)}` : 'ok';
  } catch (e) {
    outcome = `no answer: ${(e as Error).message}`;
  }
  const heavyMs = performance.now() - t;
  await new Promise((r) => setTimeout(r, 200));
  worker.postMessage('stop');
  const latencies = await latenciesP;
  await worker.terminate();
  heavy.close();
  console.log(`${name.padEnd(36)} ${outcome.padEnd(64)} answered in ${heavyMs.toFixed(0).padStart(6)} ms | other client's Metadata: n=${latencies.length} p50 ${pct(latencies, 50).toFixed(1)} ms, max ${Math.max(...latencies).toFixed(1)} ms`);
}

async function main(): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'sluice-stall-'));
  const broker = await startBenchBroker(dataDir);
  try {
    const s = await RawSocket.connect(broker.port);
    await call(s, ApiKey.CREATE_TOPICS, { topics: [{ topic: 'wide', partitions: PARTITIONS, replicationFactor: 1, configs: {} }, { topic: 'a'.repeat(EVIL_AS), partitions: 1, replicationFactor: 1, configs: {} }], validateOnly: false });
    s.close();
    const entries = Array.from({ length: Math.ceil(ENTRIES / PARTITIONS) }, () => ({ topic: 'wide', partitions: Array.from({ length: PARTITIONS }, (_, p) => ({ partition: p, timestamp: -1 })) }));
    console.log(`entries per heavy request: ${ENTRIES}; all-'a' topic length ${EVIL_AS}`);
    const ids = Math.min(ENTRIES, 100_000); // MessagePack arrays hold at most 100000 elements (SPEC §4.2)
    await measure(broker.port, `ListOffsets x${ENTRIES}`, ApiKey.LIST_OFFSETS, { topics: entries });
    await measure(broker.port, `DescribeGroups x${ids}`, ApiKey.DESCRIBE_GROUPS, { groupIds: Array.from({ length: ids }, (_, i) => `g${i}`) });
    await measure(broker.port, `OffsetFetch x${ENTRIES}`, ApiKey.OFFSET_FETCH, { groupId: 'g', memberId: null, memberEpoch: -1, topics: entries.map((t) => ({ topic: t.topic, partitions: t.partitions.map((p) => p.partition) })) });
    await measure(broker.port, `OffsetCommit x${ENTRIES}`, ApiKey.OFFSET_COMMIT, { groupId: 'g', memberId: '', memberEpoch: -1, topics: entries.map((t) => ({ topic: t.topic, partitions: t.partitions.map((p) => ({ partition: p.partition, offset: 0 })) })) });
    await measure(broker.port, `Heartbeat names x${ids}`, ApiKey.CONSUMER_GROUP_HEARTBEAT, { groupId: 'h', memberId: 'm1', memberEpoch: 0, subscribedTopicNames: Array.from({ length: ids }, (_, i) => `t${i}`), ownedPartitions: [] });
    await measure(broker.port, `Heartbeat owned x${ENTRIES}`, ApiKey.CONSUMER_GROUP_HEARTBEAT, { groupId: 'h2', memberId: 'm1', memberEpoch: 0, subscribedTopicNames: ['wide'], ownedPartitions: entries.map((t) => ({ topic: t.topic, partitions: t.partitions.map((p) => p.partition) })) });
    await measure(broker.port, `Heartbeat regex (a+)+b, ${EVIL_AS} a's`, ApiKey.CONSUMER_GROUP_HEARTBEAT, { groupId: 'r', memberId: 'm1', memberEpoch: 0, subscribedTopicRegex: '(a+)+b', ownedPartitions: [] });
  } finally {
    broker.proc.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  }
}

await main();
