/**
 * Consumer with manual partition assignment: the facade over the fetch engine
 * (fetch-engine.ts, where the model of positions, fetch offsets and epochs is described).
 * It owns its Cluster (metadata and connections) and closes it on close().
 *
 * Groups plug in above the same engine (GroupConsumer, group/consumer.ts): the coordinator
 * decides the assignment, which arrives through addPartitions()/unassign(), and the group
 * commits what poll() handed out. pause()/resume() let it hold back one partition (retry
 * topics not yet due).
 *
 * Isolation (option `isolation`): 'read_uncommitted' by default, as in Kafka; 'read_committed'
 * reads only committed transactions (SPEC §6.7). Transaction markers (control batches) are
 * never returned at either level; the position moves past them.
 *
 * Not safe for concurrent poll() calls: one poll at a time (the async iterator obeys this).
 */
import { Cluster, type ClientSecurity } from './cluster.ts';
import { FetchEngine, resolveFetchSettings, type FetchOptions, type Message, type OffsetSpec, type RawBatch, type TopicPartitionOffset } from './fetch-engine.ts';

export type { AutoOffsetReset, IsolationLevel, Message, OffsetSpec, RawBatch, TopicPartitionOffset } from './fetch-engine.ts';

export interface ConsumerOptions extends FetchOptions, ClientSecurity {
  /** Comma-separated host:port list, or an array of them. */
  bootstrap: string | string[];
  clientId?: string;
  connectTimeoutMs?: number;
}

export class Consumer {
  private readonly cluster: Cluster;
  private readonly engine: FetchEngine;
  private closed = false;

  constructor(options: ConsumerOptions) {
    const settings = resolveFetchSettings(options);
    this.cluster = new Cluster({
      bootstrap: options.bootstrap,
      clientId: options.clientId ?? 'sluice-consumer',
      requestTimeoutMs: settings.requestTimeoutMs,
      tls: options.tls,
      sasl: options.sasl,
      ...(options.connectTimeoutMs !== undefined ? { connectTimeoutMs: options.connectTimeoutMs } : {}),
    });
    this.engine = new FetchEngine(this.cluster, settings);
  }

  /**
   * Replaces the assignment. Partitions assigned before and listed again without an offset
   * keep their position; others start at `offset`, or per autoOffsetReset when it is omitted.
   * 'earliest'/'latest' are resolved with ListOffsets before this resolves; new partitions
   * are fetched only once all their lookups answered, and if one fails (thrown) none of the
   * new partitions is added. Throws UNKNOWN_TOPIC_OR_PARTITION for a partition the cluster
   * does not have.
   */
  assign(partitions: TopicPartitionOffset[]): Promise<void> {
    return this.engine.assign(partitions);
  }

  /**
   * Adds partitions to the assignment, leaving the others untouched. Offsets as for assign().
   */
  addPartitions(partitions: TopicPartitionOffset[]): Promise<void> {
    return this.engine.addPartitions(partitions);
  }

  /**
   * Removes partitions from the assignment at once (synchronously): nothing more of them is
   * fetched or returned by poll(). Partitions not assigned are ignored.
   */
  unassign(partitions: ReadonlyArray<{ topic: string; partition: number }>): void {
    this.engine.unassign(partitions);
  }

  /**
   * Stops fetching an assigned partition and drops what is buffered for it; poll() returns
   * nothing of it until resume(). Its position stays where it is. Unassigned: ignored.
   */
  pause(topic: string, partition: number): void {
    this.engine.pause(topic, partition);
  }

  /** Undoes pause(); fetching continues from the position. Unassigned or not paused: ignored. */
  resume(topic: string, partition: number): void {
    this.engine.resume(topic, partition);
  }

  /** Whether the partition is assigned and paused. */
  isPaused(topic: string, partition: number): boolean {
    return this.engine.isPaused(topic, partition);
  }

  /** Whether the partition is in the assignment. */
  isAssigned(topic: string, partition: number): boolean {
    return this.engine.isAssigned(topic, partition);
  }

  /** The current assignment with each partition's position (next offset poll() returns). */
  assignment(): Array<{ topic: string; partition: number; position: number }> {
    return this.engine.assignment();
  }

  /**
   * Moves the position of an assigned partition. A number takes effect on the next poll();
   * 'earliest'/'latest' are resolved with ListOffsets before the partition is fetched again.
   * Buffered and in-flight data for the partition is discarded.
   */
  seek(topic: string, partition: number, offset: OffsetSpec): void {
    this.engine.seek(topic, partition, offset);
  }

  /** Offset of the next message poll() returns for the partition. */
  position(topic: string, partition: number): number {
    return this.engine.position(topic, partition);
  }

  /** The partition's high watermark as of the last Fetch response (-1 before the first). */
  highWatermark(topic: string, partition: number): number {
    return this.engine.highWatermark(topic, partition);
  }

  /** The partition's last stable offset (SPEC §7.7) as of the last Fetch response (-1 before the first). */
  lastStableOffset(topic: string, partition: number): number {
    return this.engine.lastStableOffset(topic, partition);
  }

  /**
   * Where this consumer's reading of the partition ends, as of the last Fetch response: the
   * last stable offset under read_committed, else the high watermark (-1 before the first).
   * The lag is endOffset() - position().
   */
  endOffset(topic: string, partition: number): number {
    return this.engine.endOffset(topic, partition);
  }

  /**
   * Returns the next messages: what is buffered, or else waits up to timeoutMs (default
   * maxWaitMs) for a Fetch response and returns [] when none brings data. Messages of one
   * partition come in offset order, each exactly once unless seek() moves back.
   * Throws the first pending partition error (CORRUPT_MESSAGE, OFFSET_OUT_OF_RANGE under
   * autoOffsetReset 'none', ...) when no messages are ready to return.
   */
  poll(timeoutMs = this.engine.settings.maxWaitMs): Promise<Message[]> {
    return this.engine.poll(timeoutMs);
  }

  /**
   * As poll(), but returns the validated batches undecoded (views into the responses), for
   * callers that decode records themselves. Positions advance past the returned batches.
   */
  pollBatches(timeoutMs = this.engine.settings.maxWaitMs): Promise<RawBatch[]> {
    return this.engine.pollBatches(timeoutMs);
  }

  /** Yields messages one by one until close(). Breaking out of the loop does not close the consumer. */
  async *[Symbol.asyncIterator](): AsyncGenerator<Message, void, undefined> {
    while (!this.closed) {
      let batch: Message[];
      try {
        batch = await this.engine.poll(this.engine.settings.maxWaitMs);
      } catch (e) {
        if (this.closed) return;
        throw e;
      }
      for (let i = 0; i < batch.length; i++) yield batch[i]!;
    }
  }

  /** Stops fetching and closes the connections; a pending poll() returns []. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.engine.close();
    this.cluster.close();
  }
}
