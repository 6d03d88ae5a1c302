/**
 * Where a new partition's replicas go: on distinct live brokers, spread so that leaders
 * (the first replica) rotate over the brokers. Like Kafka's default placement without racks:
 * brokers sorted by id, partition p starts at (offset + p) mod n, where the offset depends on
 * the topic so that many small topics do not all lead on the first broker.
 */
import { ErrorCode, SluiceError } from '../../protocol/errors.ts';
import { murmur2 } from '../../protocol/murmur2.ts';
import type { PartitionState } from '../metadata/cluster-store.ts';

const utf8 = new TextEncoder();

export function placeReplicas(topic: string, partitions: number, firstPartition: number, replicationFactor: number, liveBrokerIds: readonly number[]): PartitionState[] {
  const brokers = [...liveBrokerIds].sort((a, b) => a - b);
  if (replicationFactor < 1 || replicationFactor > brokers.length) {
    throw new SluiceError(ErrorCode.INVALID_REPLICATION_FACTOR, `replication factor ${replicationFactor} needs that many live brokers; ${brokers.length} are live`);
  }
  const offset = (murmur2(utf8.encode(topic)) & 0x7fffffff) % brokers.length;
  const out: PartitionState[] = [];
  for (let p = firstPartition; p < firstPartition + partitions; p++) {
    const replicas: number[] = [];
    for (let r = 0; r < replicationFactor; r++) replicas.push(brokers[(offset + p + r) % brokers.length]!);
    out.push({ leader: replicas[0]!, leaderEpoch: 0, replicas, isr: [...replicas], partitionEpoch: 0 });
  }
  return out;
}
