/**
 * Consumer-group lag per group and partition, computed at scrape time: the high watermark of
 * the partition minus the group's committed offset (0 when the commit is at or past it).
 * Nothing is kept between scrapes and nothing runs on the commit or fetch path.
 *
 * Scope: the groups this broker coordinates (their committed offsets live here), and the
 * partitions this broker holds a replica of (it knows their high watermark: a follower's may
 * trail the leader's by one fetch). On a single broker that is every group and partition; in a
 * cluster the sum over brokers covers each group once, and a partition of it only where its
 * coordinator also holds a replica. A group that committed nothing has no lag series.
 *
 * Bound: at most LAG_SERIES_MAX series per scrape; the rest are left out and counted in
 * sluice_consumer_group_lag_series_dropped, so a broker with a million committed offsets
 * does not produce a million-line scrape.
 */
import { Gauge, type Registry } from 'prom-client';

export const LAG_SERIES_MAX = 10_000;

export interface LagSource {
  /** [groupId, topic, partition, committed offset] of the groups this broker coordinates. */
  committed(): Iterable<[string, string, number, number]>;
  /** The high watermark of a partition this broker holds, undefined otherwise. */
  highWatermark(topic: string, partition: number): number | undefined;
}

export function registerLagMetrics(registry: Registry, src: LagSource, seriesMax = LAG_SERIES_MAX): void {
  let dropped = 0;
  new Gauge({
    name: 'sluice_consumer_group_lag',
    help: `Messages between a consumer group's committed offset and the partition's high watermark, for the groups this broker coordinates and the partitions it holds (at most ${seriesMax} series)`,
    labelNames: ['group', 'topic', 'partition'],
    registers: [registry],
    collect() {
      this.reset();
      let series = 0;
      dropped = 0;
      for (const [group, topic, partition, offset] of src.committed()) {
        const hw = src.highWatermark(topic, partition);
        if (hw === undefined) continue;
        if (series >= seriesMax) {
          dropped++;
          continue;
        }
        series++;
        this.set({ group, topic, partition: String(partition) }, Math.max(hw - offset, 0));
      }
    },
  });
  new Gauge({
    name: 'sluice_consumer_group_lag_series_dropped',
    help: `Lag series left out of the last scrape because of the ${seriesMax}-series bound`,
    registers: [registry],
    collect() {
      this.set(dropped);
    },
  });
}
