/**
 * Diagnostic: what one steady heartbeat of a large group costs the coordinator, in-process
 * over a real TopicManager in a temp data dir: T topics of one partition, M members all
 * subscribed to them, by name or by the pattern t.*; prints the median of 20 heartbeats of a
 * member whose state does not change, and what the M joins cost.
 *
 *   node --import tsx bench/group-heartbeat-cost.ts T M names|regex     (e.g. 1000 1000 names)
 * Not a test: numbers depend on the machine.
 */
import { DEFAULT_COORDINATOR_CONFIG, GroupCoordinator } from '../server/group/group-coordinator.ts';
import { OFFSETS_TOPIC, OFFSETS_TOPIC_PARTITIONS, OffsetStore } from '../server/group/offset-store.ts';
import { LogManager } from '../server/log/log-manager.ts';
import { createLogger } from '../server/logger.ts';
import { EmbeddedMetadataStore } from '../server/metadata/embedded-store.ts';
import { TopicManager } from '../server/partition/topic-manager.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
const log = createLogger('bench');
const dataDir = mkdtempSync(join(tmpdir(), 'sluice-group-cost-'));
const metadata = new EmbeddedMetadataStore(dataDir, 0);
await metadata.open();
await metadata.registerBroker({ brokerId: 0, host: '127.0.0.1', port: 0, startedAtMs: 0 });
const logs = new LogManager(dataDir, { logger: log });
const topics = new TopicManager(metadata, logs, 0, 100000, log);
topics.load();
const offsets = new OffsetStore(topics, async (partition, records) => { const l = topics.partition(OFFSETS_TOPIC, partition)!; await l.waitForFlush(l.append(records).lastOffset); }, log);
await offsets.ensureTopic(1);
for (let p = 0; p < OFFSETS_TOPIC_PARTITIONS; p++) await offsets.loadPartition(p);
const T = Number(process.argv[2]), M = Number(process.argv[3]), regex = process.argv[4] === 'regex';
const names: string[] = [];
for (let t = 0; t < T; t++) { const n = `t${t}`; await topics.create(n, 1, 1, {}); names.push(n); }
const c = new GroupCoordinator(topics, offsets, () => true, { ...DEFAULT_COORDINATOR_CONFIG, groupMembersMax: 100000 }, log);
const joinsStart = performance.now();
let slowestJoinMs = 0;
for (let m = 0; m < M; m++) {
  const t = performance.now();
  c.heartbeat({ groupId: 'g', memberId: `m${m}`, memberEpoch: 0, rebalanceTimeoutMs: 5000, sessionTimeoutMs: 30000, subscribedTopicNames: regex ? null : names, subscribedTopicRegex: regex ? 't.*' : null, assignor: null, ownedPartitions: [] }, 'c', 'h');
  slowestJoinMs = Math.max(slowestJoinMs, performance.now() - t);
}
console.log(`${M} joins: ${(performance.now() - joinsStart).toFixed(0)} ms in all, slowest ${slowestJoinMs.toFixed(1)} ms`);
const times: number[] = [];
for (let i = 0; i < 20; i++) { const t = performance.now(); c.heartbeat({ groupId: 'g', memberId: `m0`, memberEpoch: 1, rebalanceTimeoutMs: null, sessionTimeoutMs: null, subscribedTopicNames: null, subscribedTopicRegex: null, assignor: null, ownedPartitions: null }, 'c', 'h'); times.push(performance.now() - t); }
times.sort((a, b) => a - b);
console.log(`${T} topics, ${M} members subscribed ${regex ? 'by pattern t.*' : 'by name to all'}: steady heartbeat median ${times[10]!.toFixed(1)} ms`);
await logs.close(); await metadata.close(); rmSync(dataDir, { recursive: true, force: true });
