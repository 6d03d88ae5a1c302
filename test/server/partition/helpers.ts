/**
 * Partitions without a broker: a real PartitionLog in a temp dir, the role and state set by
 * hand (as the replica manager would), and a registry with the TopicManager's lookups over
 * them, for the Partition, replica manager and API handler tests.
 */
import type { TxnMarker } from '../../../protocol/record-batch.ts';
import path from 'node:path';
import { ErrorCode, SluiceError } from '../../../protocol/errors.ts';
import type { BrokerContext } from '../../../server/api/context.ts';
import { defaultBrokerConfig } from '../../../server/config/broker-config.ts';
import { PartitionLog } from '../../../server/log/partition-log.ts';
import type { PartitionState } from '../../../server/metadata/cluster-store.ts';
import { DelayedFetches } from '../../../server/partition/delayed-fetches.ts';
import { Partition, servable, type ServedTopic, type ServeKind } from '../../../server/partition/partition.ts';
import type { TopicManager } from '../../../server/partition/topic-manager.ts';
import type { ReplicaManager } from '../../../server/cluster/replica-manager.ts';
import { config, recordingLogger } from '../log/helpers.ts';

export const BROKER_ID = 1;

export function leaderState(s: Partial<PartitionState> = {}): PartitionState {
  return { leader: BROKER_ID, leaderEpoch: 5, replicas: [BROKER_ID], isr: [BROKER_ID], partitionEpoch: 1, ...s };
}

/** A partition whose log lives in dir/<topic>-<partition>; role 'none' unless a state is given. */
export function openPartition(dir: string, topic: string, partition: number, opts: { state?: PartitionState; minInsyncReplicas?: number; logConfig?: Record<string, string> } = {}): Partition {
  const log = PartitionLog.open(path.join(dir, `${topic}-${partition}`), config(opts.logConfig), { cleanShutdown: true, logger: recordingLogger() });
  const p = new Partition(topic, partition, log, BROKER_ID, { minInsyncReplicas: opts.minInsyncReplicas ?? 1, uncleanLeaderElection: false });
  if (opts.state) {
    p.state = opts.state;
    p.role = opts.state.leader === BROKER_ID ? 'leader' : 'follower';
    p.log.replicated = opts.state.replicas.length > 1; // as the replica manager sets it
    if (p.role === 'leader') p.log.beginLeaderEpoch(opts.state.leaderEpoch);
  }
  return p;
}

/** Makes broker `id` a follower the leader has heard from, at logEndOffset. */
export function addFollower(p: Partition, id: number, logEndOffset = 0): void {
  p.followers.set(id, { logEndOffset, lastCaughtUpMs: 0, lastFetchMs: 0, lastFetchLeaderLogEnd: -1, disconnected: false, fetched: true });
}

/** The lookups of TopicManager the handlers use, over hand-made topics. */
export class FakeRegistry {
  readonly topics = new Map<string, ServedTopic>();

  add(topic: string, partitionCount: number, local: Partition[]): void {
    const partitions = new Map(local.map((p) => [p.partition, p]));
    this.topics.set(topic, { record: { name: topic, id: `id-${topic}`, partitions: partitionCount, replicationFactor: 1, configs: {}, createdAtMs: 0 }, partitions });
  }

  localPartition(topic: string, partition: number): Partition | undefined {
    return this.topics.get(topic)?.partitions.get(partition);
  }

  servable(kind: ServeKind, topic: string, partition: number, currentLeaderEpoch = -1): Partition {
    return servable(kind, this.topics.get(topic), topic, partition, currentLeaderEpoch);
  }
}

export interface FakeContext {
  ctx: BrokerContext;
  registry: FakeRegistry;
  followerFetches: Array<{ partition: Partition; replicaId: number; fetchOffset: number }>;
  /** notifyTxnMarker calls, in order. */
  txnMarkers: Array<{ topic: string; partition: number; marker: TxnMarker; offset: number }>;
  close(): Promise<void>;
  partitions: Partition[];
}

/** A handler context over the registry; the replica manager only records follower fetches. */
export function fakeContext(registry: FakeRegistry, partitions: Partition[], overrides: Partial<BrokerContext> = {}): FakeContext {
  const followerFetches: FakeContext['followerFetches'] = [];
  const replicas = { recordFollowerFetch: (partition: Partition, replicaId: number, fetchOffset: number) => void followerFetches.push({ partition, replicaId, fetchOffset }) };
  const txnMarkers: FakeContext['txnMarkers'] = [];
  const topics = {
    notifyTxnMarker: (topic: string, partition: number, marker: TxnMarker, offset: number) => void txnMarkers.push({ topic, partition, marker, offset }),
    servable: registry.servable.bind(registry),
    localPartition: registry.localPartition.bind(registry),
    leaderPartition(topic: string, partition: number, epoch = -1): Partition {
      const p = registry.localPartition(topic, partition);
      if (!p) throw new SluiceError(ErrorCode.NOT_LEADER, `this broker holds no replica of ${topic}/${partition}`);
      p.checkLeader(epoch);
      return p;
    },
  };
  const ctx = {
    config: defaultBrokerConfig(),
    topics: topics as unknown as TopicManager,
    replicas: replicas as unknown as ReplicaManager,
    delayedFetches: new DelayedFetches(),
    log: recordingLogger(),
    shuttingDown: false,
    ...overrides,
  } as BrokerContext;
  return { ctx, registry, followerFetches, txnMarkers, partitions, close: async () => { for (const p of partitions) await p.log.close(); } };
}
