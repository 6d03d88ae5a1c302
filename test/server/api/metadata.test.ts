// ApiVersions and Metadata (SPEC §6.1, §6.2) over a real single-broker metadata stack: the
// advertised API ranges; topics in request order (nil = every non-internal topic, sorted),
// UNKNOWN_TOPIC_OR_PARTITION for missing and invalid names, partitions with leader, epoch,
// replicas and ISR, NOT_LEADER with leader -1 for an offline partition; live brokers sorted by
// nodeId; controllerId, -1 while none is elected.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiKey } from '../../../protocol/api-keys.ts';
import type { ApiVersionsResponse } from '../../../protocol/apis/api-versions.ts';
import type { MetadataResponse } from '../../../protocol/apis/metadata.ts';
import { ErrorCode } from '../../../protocol/errors.ts';
import * as api from '../../../server/api/metadata.ts';
import { BROKER_VERSION } from '../../../server/api/metadata.ts';
import type { BrokerContext } from '../../../server/api/context.ts';
import { OFFSETS_TOPIC } from '../../../server/group/offset-store.ts';
import type { BrokerRegistration, ClusterMetadataStore } from '../../../server/metadata/cluster-store.ts';
import { openStack, replying, STACK_BROKER_ID } from './stack.ts';

const handleApiVersions = replying(api.handleApiVersions);
const handleMetadata = replying(api.handleMetadata);

test('ApiVersions: every API of SPEC §6 at version 0, and the broker version', () => {
  const res = handleApiVersions().control as ApiVersionsResponse;
  const apiKeys = res.apis.map((a) => a.apiKey).sort((a, b) => a - b);
  assert.deepEqual(apiKeys, [...Object.values(ApiKey)].sort((a, b) => a - b), 'every key of api-keys.ts (0 ApiVersions … 28 SaslAuthenticate)');
  for (const a of res.apis) assert.deepEqual([a.minVersion, a.maxVersion], [0, 0], `apiKey ${a.apiKey}`);
  assert.ok(res.apis.some((a) => a.apiKey === ApiKey.API_VERSIONS && a.minVersion === 0), 'ApiVersions v0 is always supported');
  assert.equal(res.brokerVersion, BROKER_VERSION);
  assert.match(res.brokerVersion, /^\d+\.\d+\.\d+/);
});

test('Metadata: topics in request order, unknown and invalid names UNKNOWN_TOPIC_OR_PARTITION with [], partition state from the store', async () => {
  const s = await openStack();
  try {
    await s.topics.create('m', 3, 1, {});
    await s.topics.create('a', 1, 1, {});
    await s.topics.ensureInternal(OFFSETS_TOPIC, 2, {}, 1);
    const res = handleMetadata(s.ctx, { topics: ['m', 'nope', 'bad name!', 'a', OFFSETS_TOPIC] }).control as MetadataResponse;
    assert.equal(res.clusterId, s.store.clusterId());
    assert.ok(res.clusterId.length > 0);
    assert.equal(res.controllerId, STACK_BROKER_ID, 'on a single broker, its own nodeId');
    assert.deepEqual(res.brokers, [{ nodeId: STACK_BROKER_ID, host: 'broker0.test', port: 9092 }]);
    assert.deepEqual(res.topics.map((t) => [t.topic, t.errorCode, t.partitions.length]), [
      ['m', 0, 3],
      ['nope', ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, 0],
      ['bad name!', ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, 0],
      ['a', 0, 1],
      [OFFSETS_TOPIC, 0, 2], // described when named
    ]);
    assert.deepEqual(res.topics[0]!.partitions, [0, 1, 2].map((partition) => ({ partition, errorCode: 0, leader: 0, leaderEpoch: 0, replicas: [0], isr: [0] })));
    // nil: every topic but the internal ones, sorted by name; [] = none.
    const all = handleMetadata(s.ctx, { topics: null }).control as MetadataResponse;
    assert.deepEqual(all.topics.map((t) => t.topic), ['a', 'm']);
    const none = handleMetadata(s.ctx, { topics: [] }).control as MetadataResponse;
    assert.deepEqual(none.topics, []);
    assert.equal(none.brokers.length, 1);
  } finally {
    await s.close();
  }
});

test('Metadata: an offline partition is NOT_LEADER with leader -1, its epoch and its last ISR', async () => {
  const s = await openStack({ elected: false }); // no controller pass to elect a leader again meanwhile
  try {
    await s.topics.create('o', 2, 1, {});
    const state = s.store.partitionState('o', 1)!;
    const { partitionEpoch: _, ...rest } = state;
    assert.ok(await s.store.compareAndSetPartitionState('o', 1, state.partitionEpoch, { ...rest, leader: -1, leaderEpoch: state.leaderEpoch + 1 }));
    const res = handleMetadata(s.ctx, { topics: ['o'] }).control as MetadataResponse;
    assert.deepEqual(res.topics[0]!.partitions, [
      { partition: 0, errorCode: 0, leader: 0, leaderEpoch: 0, replicas: [0], isr: [0] },
      { partition: 1, errorCode: ErrorCode.NOT_LEADER, leader: -1, leaderEpoch: 1, replicas: [0], isr: [0] },
    ]);
    assert.equal(res.topics[0]!.errorCode, 0, 'the topic itself exists');
  } finally {
    await s.close();
  }
});

test('Metadata: live brokers sorted by nodeId, controllerId -1 while none is elected', async () => {
  const s = await openStack({ elected: false });
  try {
    const live: BrokerRegistration[] = [
      { brokerId: 7, host: 'h7', port: 7007, startedAtMs: 0 },
      { brokerId: 2, host: 'h2', port: 7002, startedAtMs: 0 },
      { brokerId: 5, host: 'h5', port: 7005, startedAtMs: 0 },
    ];
    const store = Object.create(s.store, { liveBrokers: { value: () => live } }) as ClusterMetadataStore;
    const ctx: BrokerContext = { ...s.ctx, store };
    const res = handleMetadata(ctx, { topics: [] }).control as MetadataResponse;
    assert.equal(res.controllerId, -1);
    assert.deepEqual(res.brokers, [
      { nodeId: 2, host: 'h2', port: 7002 },
      { nodeId: 5, host: 'h5', port: 7005 },
      { nodeId: 7, host: 'h7', port: 7007 },
    ]);
  } finally {
    await s.close();
  }
});

test('Metadata: a partition whose state this broker does not know yet has leaderEpoch -1, no replicas, and NOT_LEADER', async () => {
  const s = await openStack({ elected: false });
  try {
    await s.topics.create('n', 2, 1, {});
    const topics = Object.create(s.topics, {
      partitionState: { value: (topic: string, partition: number) => (partition === 1 ? undefined : s.topics.partitionState(topic, partition)) },
    }) as typeof s.topics;
    const res = handleMetadata({ ...s.ctx, topics }, { topics: ['n'] }).control as MetadataResponse;
    assert.deepEqual(res.topics[0]!.partitions, [
      { partition: 0, errorCode: 0, leader: 0, leaderEpoch: 0, replicas: [0], isr: [0] },
      { partition: 1, errorCode: ErrorCode.NOT_LEADER, leader: -1, leaderEpoch: -1, replicas: [], isr: [] },
    ]);
  } finally {
    await s.close();
  }
});
