/**
 * What the workload driver needs from a messaging system: create topics, produce, consume.
 * One small adapter per system (sluice.ts, redis.ts, nats.ts), so the same workload file runs
 * against each and their results sit side by side.
 *
 * Invariants: send() resolves only once every message of the call is acknowledged by the
 * server (at the workload's acks), and rejects if any is not; a consumer calls onValues with
 * each message's value once per delivery, in partition order.
 */
import type { KeyDistributor } from '../spec.ts';

export const DRIVERS = ['sluice', 'redis', 'nats'] as const;
export type DriverName = (typeof DRIVERS)[number];

export interface OutMessage {
  value: Buffer;
  key: Buffer | undefined;
}

export interface PeerAdmin {
  createTopic(topic: string, partitions: number, replicationFactor: number, configs: Record<string, string | number>): Promise<void>;
  close(): Promise<void>;
}

export interface PeerProducer {
  send(messages: OutMessage[]): Promise<void>;
  close(): Promise<void>;
}

export interface PeerConsumer {
  /** Resolves once the consumer is positioned at the end of its partitions (or, in a group, joined). */
  ready(): Promise<void>;
  /** Partitions it owns now (a group's assignment may change). */
  owned(): number;
  /** Consumes until close(); calls onValues with each poll's values. Rejects on a failure. */
  run(onValues: (values: ReadonlyArray<Uint8Array>) => void): Promise<void>;
  close(): Promise<void>;
}

export interface ProducerConfig {
  address: string;
  topic: string;
  partitions: number;
  acks: 'all' | 1 | 0;
  /** Paced runs favour latency, max-rate runs throughput (Sluice's producer profiles). */
  paced: boolean;
  clientId: string;
}

export interface ConsumerConfig {
  address: string;
  topic: string;
  partitionCount: number;
  /** Static split: the partitions this consumer reads. Ignored with group. */
  partitions: number[];
  /** A consumer group (Sluice only): the broker assigns partitions. */
  group: string | null;
  clientId: string;
}

export interface Peer {
  admin(address: string): PeerAdmin;
  producer(cfg: ProducerConfig): PeerProducer;
  consumer(cfg: ConsumerConfig): PeerConsumer;
}

/** Picks a partition for a key (peers without a partitioner of their own): FNV-1a. */
export function partitionOfKey(key: Buffer, partitions: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key[i]!, 0x01000193);
  return (h >>> 0) % partitions;
}

/** The keys a producer puts on its messages, as OMB's key distributors do. */
export function keyDistributor(kind: KeyDistributor): () => Buffer | undefined {
  if (kind === 'NO_KEY') return () => undefined;
  if (kind === 'RANDOM_NANO') return () => Buffer.from(process.hrtime.bigint().toString(36));
  // KEY_ROUND_ROBIN: a fixed pool of keys used in turn.
  const KEYS_POOL_SIZE = 10_000;
  const keys = Array.from({ length: KEYS_POOL_SIZE }, (_, i) => Buffer.from(`key-${i}`));
  let next = 0;
  return () => keys[(next = (next + 1) % KEYS_POOL_SIZE)];
}

export async function loadPeer(name: DriverName): Promise<Peer> {
  if (name === 'sluice') return (await import('./sluice.ts')).sluicePeer;
  if (name === 'redis') return (await import('./redis.ts')).redisPeer;
  return (await import('./nats.ts')).natsPeer;
}
