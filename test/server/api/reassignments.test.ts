// AlterPartitionReassignments (SPEC §6.18) over a real single-broker metadata stack and a real
// Controller: one result per entry in request order with topic and partition, NOT_CONTROLLER
// first, then the target (INVALID_REPLICATION_FACTOR) before the partition's existence
// (UNKNOWN_TOPIC_OR_PARTITION); a no-op target or cancel writes nothing; a started move shows
// the union of replicas with the ISR and leader unchanged, and a cancel takes it back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse } from '../../../protocol/apis/alter-partition-reassignments.ts';
import { ErrorCode } from '../../../protocol/errors.ts';
import type { BrokerContext } from '../../../server/api/context.ts';
import * as api from '../../../server/api/reassignments.ts';
import { Controller } from '../../../server/cluster/controller.ts';
import type { ClusterMetadataStore } from '../../../server/metadata/cluster-store.ts';
import { recordingLogger } from '../log/helpers.ts';
import { openStack, replyingAsync } from './stack.ts';

const handleAlterPartitionReassignments = replyingAsync(api.handleAlterPartitionReassignments);

type Entry = [topic: string, partition: number, replicas: number[] | null];
const request = (entries: Entry[]): AlterPartitionReassignmentsRequest => ({ partitions: entries.map(([topic, partition, replicas]) => ({ topic, partition, replicas, throttleBytesPerSec: 0 })) });
async function codes(ctx: BrokerContext, entries: Entry[]): Promise<Array<[string, number, number]>> {
  const res = (await handleAlterPartitionReassignments(ctx, request(entries))).control as AlterPartitionReassignmentsResponse;
  for (const p of res.partitions) {
    if (p.errorCode === 0) assert.equal(p.errorMessage, null);
    else assert.equal(typeof p.errorMessage, 'string');
  }
  return res.partitions.map((p) => [p.topic, p.partition, p.errorCode]);
}

test('not the controller: every entry NOT_CONTROLLER, before the target is looked at', async () => {
  const s = await openStack({ elected: false });
  try {
    await s.topics.create('t', 1, 1, {});
    assert.deepEqual(await codes(s.ctx, [['t', 0, [0]], ['t', 0, []], ['nope', 0, [0]]]), [
      ['t', 0, ErrorCode.NOT_CONTROLLER],
      ['t', 0, ErrorCode.NOT_CONTROLLER],
      ['nope', 0, ErrorCode.NOT_CONTROLLER],
    ]);
  } finally {
    await s.close();
  }
});

test('checks in SPEC order, per entry; no-op targets and cancels write nothing', async () => {
  const s = await openStack();
  try {
    await s.topics.create('t', 2, 1, {});
    await s.controller.whenIdle();
    const before = s.store.partitionState('t', 0)!;
    assert.deepEqual(await codes(s.ctx, [
      ['t', 0, []], // empty target
      ['t', 0, [0, 0]], // duplicates
      ['t', 0, [0, 3]], // broker 3 is not live
      ['nope', 0, [3]], // the target is checked before the partition
      ['nope', 0, [0]],
      ['t', 2, [0]], // no such partition
      ['t', 0, [0]], // same replicas, same order: nothing to do
      ['t', 1, null], // cancel with none in progress
      ['nope', 0, null],
    ]), [
      ['t', 0, ErrorCode.INVALID_REPLICATION_FACTOR],
      ['t', 0, ErrorCode.INVALID_REPLICATION_FACTOR],
      ['t', 0, ErrorCode.INVALID_REPLICATION_FACTOR],
      ['nope', 0, ErrorCode.INVALID_REPLICATION_FACTOR],
      ['nope', 0, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION],
      ['t', 2, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION],
      ['t', 0, 0],
      ['t', 1, 0],
      ['nope', 0, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION],
    ]);
    assert.deepEqual(s.store.partitionState('t', 0), before, 'nothing was written');
  } finally {
    await s.close();
  }
});

test('a started reassignment: replicas become the union, ISR and leader unchanged; a cancel drops the joiner', async () => {
  const s = await openStack({ elected: false });
  // Two live brokers as far as the controller knows; only broker 0 really exists, so broker 1
  // never joins the ISR and the move stays in progress.
  const store = Object.create(s.store, {
    liveBrokers: { value: () => [...s.store.liveBrokers(), { brokerId: 1, host: 'h1', port: 1, startedAtMs: 0 }] },
  }) as ClusterMetadataStore;
  const controller = new Controller(0, store, async () => {}, recordingLogger());
  try {
    await s.topics.create('t', 1, 1, {});
    controller.onElected(s.store.controller()?.controllerEpoch ?? 0);
    await controller.whenIdle();
    const ctx: BrokerContext = { ...s.ctx, store, controller };
    const before = s.store.partitionState('t', 0)!;
    assert.deepEqual(await codes(ctx, [['t', 0, [1]]]), [['t', 0, 0]]);
    const moving = s.store.partitionState('t', 0)!;
    assert.deepEqual([moving.replicas, moving.isr, moving.leader, moving.leaderEpoch, moving.targetReplicas], [[0, 1], [0], 0, before.leaderEpoch, [1]]);
    assert.equal(moving.partitionEpoch, before.partitionEpoch + 1);
    await controller.whenIdle();
    assert.deepEqual(await codes(ctx, [['t', 0, null]]), [['t', 0, 0]]);
    const cancelled = s.store.partitionState('t', 0)!;
    assert.deepEqual([cancelled.replicas, cancelled.isr, cancelled.leader, cancelled.targetReplicas], [[0], [0], 0, undefined]);
  } finally {
    controller.onResigned();
    await controller.whenIdle();
    await s.close();
  }
});
