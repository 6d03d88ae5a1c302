/**
 * Bytes and messages in and out per topic: what clients produced (Produce, appended by this
 * broker as leader) and what consumers fetched (Fetch, followers excluded). The hot path does
 * one map lookup per produce or fetch partition entry and adds to plain numbers; prom-client
 * reads them only at scrape time (metrics-registry.ts).
 *
 * Messages are counted from the batch headers' recordCount field (one read per batch, no
 * record is decoded). Fetched messages are the records of the batches sent, which may include
 * records below the fetch offset in the first batch (the consumer skips them), as Kafka counts.
 *
 * Invariants:
 * - Counters only grow, while the topic is tracked.
 * - At most topicsTrackedMax topics are tracked; traffic of a topic beyond it is added to the
 *   `overflow` entry (label topic="(other)", which no topic name can be), so totals stay right and series stay bounded.
 *   forgetMissing() drops topics that no longer exist (called at scrape time).
 */

/** Topics tracked by name at most; more go to OVERFLOW_TOPIC. Bounds the series (4 per topic). */
export const TOPICS_TRACKED_MAX = 10_000;
/** The label of traffic beyond TOPICS_TRACKED_MAX topics (parentheses are not allowed in topic names: it cannot clash). */
export const OVERFLOW_TOPIC = '(other)';

const OFF_BATCH_LENGTH = 8;
const OFF_RECORD_COUNT = 57;
const BATCH_HEADER_BYTES = 61;
const BATCH_LOG_OVERHEAD = 12;

export interface TopicCounters {
  bytesIn: number;
  messagesIn: number;
  bytesOut: number;
  messagesOut: number;
}

/** Big-endian int32 at pos, without a DataView or Buffer allocated per call (hot path). */
function int32At(b: Uint8Array, pos: number): number {
  return (b[pos]! << 24) | (b[pos + 1]! << 16) | (b[pos + 2]! << 8) | b[pos + 3]!;
}

/** Records in a record set of whole, validated batches: the sum of their recordCount fields. */
export function recordCountOf(recordSet: Uint8Array): number {
  let n = 0;
  for (let pos = 0; pos + BATCH_HEADER_BYTES <= recordSet.length; pos += BATCH_LOG_OVERHEAD + int32At(recordSet, pos + OFF_BATCH_LENGTH)) {
    n += int32At(recordSet, pos + OFF_RECORD_COUNT);
  }
  return n;
}

export class TopicTraffic {
  private readonly byTopic = new Map<string, TopicCounters>();
  private readonly overflow: TopicCounters = { bytesIn: 0, messagesIn: 0, bytesOut: 0, messagesOut: 0 };

  constructor(private readonly topicsTrackedMax = TOPICS_TRACKED_MAX) {}

  private counters(topic: string): TopicCounters {
    let c = this.byTopic.get(topic);
    if (c === undefined) {
      if (this.byTopic.size >= this.topicsTrackedMax) return this.overflow;
      c = { bytesIn: 0, messagesIn: 0, bytesOut: 0, messagesOut: 0 };
      this.byTopic.set(topic, c);
    }
    return c;
  }

  /** A record set appended for a producer (not a duplicate). */
  produced(topic: string, recordSet: Uint8Array): void {
    const c = this.counters(topic);
    c.bytesIn += recordSet.length;
    c.messagesIn += recordCountOf(recordSet);
  }

  /** Whole batches sent to a consumer. */
  fetched(topic: string, records: Uint8Array): void {
    const c = this.counters(topic);
    c.bytesOut += records.length;
    c.messagesOut += recordCountOf(records);
  }

  /** Drops the counters of topics for which exists() is false (deleted topics stop being exported). */
  forgetMissing(exists: (topic: string) => boolean): void {
    for (const topic of this.byTopic.keys()) if (!exists(topic)) this.byTopic.delete(topic);
  }

  /** Every tracked topic's counters, and the overflow's when it has any. */
  *entries(): IterableIterator<[string, TopicCounters]> {
    yield* this.byTopic;
    const o = this.overflow;
    if (o.bytesIn + o.bytesOut + o.messagesIn + o.messagesOut > 0) yield [OVERFLOW_TOPIC, o];
  }
}
