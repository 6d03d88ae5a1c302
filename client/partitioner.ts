/**
 * Partition choice for the producer, Kafka-compatible so a keyed record lands on the same
 * partition whichever client wrote it:
 *   - an explicit partition wins;
 *   - a key maps to toPositive(murmur2(key)) % numPartitions (Kafka's default partitioner);
 *   - a keyless record goes to the topic's "sticky" partition, which changes only when the
 *     batch being filled for it is sealed (KIP-480). Small keyless records therefore fill
 *     one batch at a time instead of spreading one record per partition per request.
 */
import { partitionForKey } from '../protocol/murmur2.ts';

export { murmur2, partitionForKey } from '../protocol/murmur2.ts';

/** Partition for a key given as UTF-8 bytes. */
export function keyPartition(key: Uint8Array, numPartitions: number): number {
  return partitionForKey(key, numPartitions);
}

/**
 * The next sticky partition: uniformly random, and different from `previous` when there is
 * more than one partition, so consecutive batches spread across the topic.
 * `random` is injectable so tests are deterministic.
 */
export function nextStickyPartition(previous: number, numPartitions: number, random: () => number = Math.random): number {
  if (numPartitions <= 1) return 0;
  if (previous < 0 || previous >= numPartitions) return Math.floor(random() * numPartitions);
  // Pick among the n-1 others: draw from [0, n-1) and skip over `previous`.
  const r = Math.floor(random() * (numPartitions - 1));
  return r >= previous ? r + 1 : r;
}
