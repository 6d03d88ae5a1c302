/**
 * Replication as metrics, computed at scrape time from the partitions this broker holds and
 * the metadata store's cache (nothing on the produce or fetch path):
 * - under-replicated partitions: led here, with fewer in-sync replicas than replicas (Kafka's
 *   UnderReplicatedPartitions: each broker reports the partitions it leads, so the cluster's
 *   number is the sum over brokers);
 * - offline partitions: without a live leader, reported by the active controller only (0 on
 *   every other broker, so the sum over brokers counts each once, as Kafka's
 *   OfflinePartitionsCount);
 * - ISR shrinks and expands this broker made as leader (counters);
 * - the produce purgatory: acks=all appends waiting for the high watermark, on partitions led here;
 * - partitions led and followed here.
 * A scrape walks this broker's partitions once and, on the controller, every partition state
 * in the cache once: bounded by the partitions (partitionsMax per topic).
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import { NO_LEADER, type ClusterMetadataStore } from '../metadata/cluster-store.ts';
import type { Partition } from '../partition/partition.ts';

export interface ReplicationSource {
  /** This broker's partitions with a role (ReplicaManager.partitions). */
  partitions(): Iterable<Partition>;
  isrChanges(): { shrinks: number; expands: number };
  /** Whether this broker is the active controller. */
  isController(): boolean;
  store(): ClusterMetadataStore;
  /** Every topic (internal ones included) with its partition count. */
  topics(): Iterable<[string, number]>;
}

interface Walk {
  underReplicated: number;
  ackWaits: number;
  leaders: number;
  followers: number;
}

function walk(partitions: Iterable<Partition>): Walk {
  const w: Walk = { underReplicated: 0, ackWaits: 0, leaders: 0, followers: 0 };
  for (const p of partitions) {
    if (p.role === 'follower') w.followers++;
    if (p.role !== 'leader' || p.state === null) continue;
    w.leaders++;
    if (p.state.isr.length < p.state.replicas.length) w.underReplicated++;
    w.ackWaits += p.hwWaiters.length;
  }
  return w;
}

function offlinePartitions(src: ReplicationSource): number {
  if (!src.isController()) return 0;
  const store = src.store();
  const live = new Set(store.liveBrokers().map((b) => b.brokerId));
  let offline = 0;
  for (const [topic, count] of src.topics()) {
    for (let p = 0; p < count; p++) {
      const state = store.partitionState(topic, p);
      if (state === undefined || state.leader === NO_LEADER || !live.has(state.leader)) offline++;
    }
  }
  return offline;
}

export function registerReplicationMetrics(registry: Registry, src: ReplicationSource): void {
  // Each gauge walks the partitions once per scrape: a few passes over at most partitionsMax objects.
  const current = (): Walk => walk(src.partitions());
  new Gauge({
    name: 'sluice_under_replicated_partitions',
    help: 'Partitions led by this broker with fewer in-sync replicas than replicas',
    registers: [registry],
    collect() {
      this.set(current().underReplicated);
    },
  });
  new Gauge({
    name: 'sluice_offline_partitions',
    help: 'Partitions without a live leader; reported by the active controller only (0 on other brokers)',
    registers: [registry],
    collect() {
      this.set(offlinePartitions(src));
    },
  });
  new Gauge({
    name: 'sluice_produce_purgatory_size',
    help: 'acks=all appends waiting for the in-sync replicas (high watermark), on partitions led by this broker',
    registers: [registry],
    collect() {
      this.set(current().ackWaits);
    },
  });
  new Gauge({
    name: 'sluice_partitions',
    help: 'Partitions this broker holds a replica of, by role (leader, follower)',
    labelNames: ['role'],
    registers: [registry],
    collect() {
      const w = current();
      this.set({ role: 'leader' }, w.leaders);
      this.set({ role: 'follower' }, w.followers);
    },
  });
  new Counter({
    name: 'sluice_isr_shrinks_total',
    help: 'In-sync replica sets this broker shrank as leader (a follower fell behind or disconnected)',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(src.isrChanges().shrinks);
    },
  });
  new Counter({
    name: 'sluice_isr_expands_total',
    help: 'In-sync replica sets this broker expanded as leader (a follower caught up)',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(src.isrChanges().expands);
    },
  });
}
