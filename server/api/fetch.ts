/**
 * Fetch: the read path from disk to socket. Each partition's records are whole stored
 * batches that Partition.read (partition/partition.ts) takes from one segment file; they go
 * to the socket as data sections, untouched. When less than minBytes is available the request
 * parks on its partitions (partition/delayed-fetches.ts, long polling) and reads again when
 * an append wakes it or maxWaitMs runs out.
 *
 * Invariants: a response's record bytes are at most min(maxBytes, fetchResponseBytesMax), or
 * one batch when the first batch alone is larger (so a consumer always makes progress);
 * a partition named twice in one request is read once (later entries get no records), so
 * repeating entries cannot multiply the response; minBytes <= 0 never waits.
 *
 * Filtered fetch (tagExpression, SPEC §6.7): the expression is parsed once per request; each
 * partition is read by log/filtered-reader.ts, which returns matching batches and where to
 * fetch next. Within one long poll, a partition whose read found nothing moves its start to
 * that nextFetchOffset, so waking on appends examines only the new batches. A read that stopped
 * at fetchTagScanBatchesMax with nothing found answers at once (the consumer continues), so a
 * request's work stays bounded. Unfiltered requests take exactly the path they took before.
 */
import { CONSUMER_REPLICA_ID, NO_LEADER_EPOCH, READ_COMMITTED, READ_UNCOMMITTED, type FetchPartitionResult, type FetchRequest, type FetchResponse, type FetchTopicResult } from '../../protocol/apis/fetch.ts';
import { ErrorCode, SluiceError } from '../../protocol/errors.ts';
import { batchSizeAt, lastOffsetAt } from '../../protocol/record-batch.ts';
import { TagExpression } from '../../protocol/tag-expression.ts';
import type { FollowerConnection } from '../cluster/replica-manager.ts';
import type { TagFilter } from '../log/filtered-reader.ts';
import type { HandlerResult } from '../network/reply.ts';
import type { TopicTraffic } from '../observability/topic-traffic.ts';
import type { Partition } from '../partition/partition.ts';
import type { BrokerContext } from './context.ts';

interface ReadResult {
  response: FetchResponse;
  sections: Buffer[];
  bytes: number;
  anyError: boolean;
  /** A filtered read found nothing and stopped at the scan bound before the end: answer now. */
  scanCut: boolean;
}

/** Followers read up to the log end; consumers only up to the high watermark. */
function isReplica(req: FetchRequest): boolean {
  return (req.replicaId ?? CONSUMER_REPLICA_ID) >= 0;
}

/** read_committed: a consumer reading below the last stable offset (SPEC §6.7); followers always read the whole log. */
function isReadCommitted(req: FetchRequest): boolean {
  return req.isolationLevel === READ_COMMITTED && !isReplica(req);
}

/** Last offset of the last batch of a record set (headers only, one step per batch). */
function lastOffsetOf(records: Buffer): number {
  let last = -1;
  for (let p = 0; p < records.length; p += batchSizeAt(records, p)) last = lastOffsetAt(records, p);
  return last;
}

/**
 * starts (filtered fetches only; null: every entry from its fetchOffset, as before tags): the
 * offset each partition entry (in request order) is read from: its fetchOffset,
 * or for a filtered fetch, where an earlier read of this request found nothing up to.
 */
async function readAll(ctx: BrokerContext, req: FetchRequest, filter: TagFilter | undefined, starts: number[] | null): Promise<ReadResult> {
  const replica = isReplica(req);
  const committed = isReadCommitted(req);
  const kind = replica ? 'follower-fetch' : 'consumer-fetch';
  // The broker's own cap, whatever the client asks (Kafka's fetch.max.bytes).
  let budget = Math.min(Math.max(req.maxBytes, 0), ctx.config.fetchResponseBytesMax);
  let bytes = 0;
  let anyError = false;
  let scanCut = false;
  let k = -1;
  const sections: Buffer[] = [];
  const topics: FetchTopicResult[] = [];
  // A partition named twice is read once (by object, no key built per entry).
  const seen = new Set<Partition>();
  // Archive reads (SPEC §7.10) of all partitions of this read share one deadline.
  const archiveDeadlineMs = Date.now() + ctx.config.archiveReadTimeoutMs;
  for (const t of req.topics) {
    const partitions: FetchPartitionResult[] = [];
    for (const p of t.partitions) {
      const result: FetchPartitionResult = { partition: p.partition, errorCode: 0, highWatermark: -1, lastStableOffset: -1, logStartOffset: -1, abortedTransactions: [], recordsBytes: 0 };
      const start = starts === null ? p.fetchOffset : starts[++k]!;
      // Filtered: every partition says where to fetch next; -1 with an error (below).
      if (filter) result.nextFetchOffset = start;
      partitions.push(result);
      let partition: Partition;
      try {
        // SPEC §6.7 order: unknown, internal (consumers), leader epoch, not the leader.
        partition = ctx.topics.servable(kind, t.topic, p.partition, p.currentLeaderEpoch ?? NO_LEADER_EPOCH);
      } catch (e) {
        if (!(e instanceof SluiceError)) throw e;
        result.errorCode = e.code;
        if (filter) result.nextFetchOffset = -1;
        anyError = true;
        continue;
      }
      const repeated = seen.has(partition);
      seen.add(partition);
      const log = partition.log;
      result.highWatermark = log.highWatermark;
      result.lastStableOffset = log.lastStableOffset;
      // Consumers are told the archive's start when there is one (SPEC §7.10); followers the local start.
      result.logStartOffset = replica ? log.logStartOffset : partition.consumerLogStartOffset;
      // A partition's first batch may exceed partitionMaxBytes if it fits in the response
      // budget, or exceed both while the response is still empty: that keeps consumers moving
      // and bounds a response by max(maxBytes, one batch).
      const allowed = Math.min(Math.max(p.partitionMaxBytes, 0), budget);
      if (repeated || (allowed === 0 && bytes > 0)) continue;
      try {
        const read = await partition.read(start, Math.max(allowed, 1), replica, committed, filter, archiveDeadlineMs);
        result.highWatermark = read.highWatermark;
        result.lastStableOffset = Math.min(log.lastStableOffset, read.highWatermark);
        result.logStartOffset = read.logStartOffset;
        if (filter && read.nextFetchOffset !== undefined && read.records.length === 0) {
          // Nothing matched below nextFetchOffset: a later read of this request starts there.
          result.nextFetchOffset = read.nextFetchOffset;
          starts![k] = read.nextFetchOffset;
          if (read.scanLimited) scanCut = true;
        }
        if (read.records.length > 0 && (bytes === 0 || read.records.length <= budget)) {
          // A read that reached the archive brings its aborts (archived .txnindex too, SPEC §7.10).
          if (committed) result.abortedTransactions = (read.abortedTransactions ?? log.abortedTransactions(start, lastOffsetOf(read.records))).map((a) => ({ producerId: a.producerId, firstOffset: a.firstOffset }));
          result.recordsBytes = read.records.length;
          // Only with its records: records left out for the response budget are fetched again.
          if (filter && read.nextFetchOffset !== undefined) result.nextFetchOffset = read.nextFetchOffset;
          sections.push(read.records);
          bytes += read.records.length;
          budget = Math.max(budget - read.records.length, 0);
        }
      } catch (e) {
        if (!(e instanceof SluiceError)) throw e;
        result.errorCode = e.code;
        if (filter) result.nextFetchOffset = -1;
        // The start may have moved while the read waited (retention): tell the consumer where it is now.
        if (!replica) result.logStartOffset = partition.consumerLogStartOffset;
        anyError = true;
      }
    }
    topics.push({ topic: t.topic, partitions });
  }
  return { response: { topics }, sections, bytes, anyError, scanCut };
}

/**
 * Metrics: the records a consumer is sent, per topic (headers only). Counted on the answer,
 * not in readAll: a long poll may read, find too little, and read again.
 */
function countFetched(traffic: TopicTraffic, r: ReadResult): void {
  let k = 0;
  for (const t of r.response.topics) {
    for (const p of t.partitions) if (p.recordsBytes > 0) traffic.fetched(t.topic, r.sections[k++]!);
  }
}

/** Whether reading now could end the wait: some partition has an error to report, or data. */
function hasData(ctx: BrokerContext, req: FetchRequest, starts: readonly number[] | null): boolean {
  const replica = isReplica(req);
  const committed = isReadCommitted(req);
  const kind = replica ? 'follower-fetch' : 'consumer-fetch';
  let k = -1;
  for (const t of req.topics) for (const p of t.partitions) {
    const fetchOffset = starts === null ? p.fetchOffset : starts[++k]!;
    let partition: Partition;
    try {
      // Every error readAll would report (a fenced or unknown leader epoch included) answers at once (SPEC 6.7).
      partition = ctx.topics.servable(kind, t.topic, p.partition, p.currentLeaderEpoch ?? NO_LEADER_EPOCH);
    } catch (e) {
      if (!(e instanceof SluiceError)) throw e;
      return true;
    }
    const log = partition.log;
    // A consumer at or above the high watermark (but within the log) waits, like one at the end.
    // read_committed: the same below the last stable offset.
    if (replica ? fetchOffset !== log.logEndOffset : fetchOffset < (committed ? log.lastStableOffset : log.highWatermark) || fetchOffset > log.logEndOffset) return true;
  }
  return false;
}

/** The local partitions a fetch parks on (the others answer with an error, so it does not park on them). */
function parkingOf(ctx: BrokerContext, req: FetchRequest): Partition[] {
  const on: Partition[] = [];
  for (const t of req.topics) for (const p of t.partitions) {
    const partition = ctx.topics.localPartition(t.topic, p.partition);
    if (partition) on.push(partition);
  }
  return on;
}

/** conn: the connection a follower's fetch came on (its closing drops the follower from the ISR). */
export async function handleFetch(ctx: BrokerContext, req: FetchRequest, conn?: FollowerConnection): Promise<HandlerResult> {
  const isolation = req.isolationLevel ?? READ_UNCOMMITTED;
  if (isolation !== READ_UNCOMMITTED && isolation !== READ_COMMITTED) throw new SluiceError(ErrorCode.MALFORMED_REQUEST, `isolationLevel ${isolation} is neither 0 (read_uncommitted) nor 1 (read_committed)`);
  let filter: TagFilter | undefined;
  if (req.tagExpression != null) {
    if (isReplica(req)) throw new SluiceError(ErrorCode.MALFORMED_REQUEST, `a follower fetch (replicaId ${req.replicaId}) cannot filter by tags: it copies the whole log`);
    // Throws INVALID_TAG_EXPRESSION, answered as the request's error body (SPEC §6.7).
    filter = { expression: TagExpression.parse(req.tagExpression), scanBatchesMax: ctx.config.fetchTagScanBatchesMax };
  }
  let starts: number[] | null = null;
  if (filter) {
    starts = [];
    for (const t of req.topics) for (const p of t.partitions) starts.push(p.fetchOffset);
  }
  if (isReplica(req)) {
    // A follower's fetch offset is its log end: everything below it is replicated.
    const nowMs = Date.now();
    for (const t of req.topics) for (const p of t.partitions) {
      // Only a fetch the leader would serve counts: current epoch, offset within its log.
      try {
        const r = ctx.topics.leaderPartition(t.topic, p.partition, p.currentLeaderEpoch ?? NO_LEADER_EPOCH);
        if (p.fetchOffset <= r.log.logEndOffset) ctx.replicas.recordFollowerFetch(r, req.replicaId!, p.fetchOffset, nowMs, conn);
      } catch (e) {
        if (!(e instanceof SluiceError)) throw e; // answered per partition by readAll
      }
    }
  }
  // Metrics: consumers only (followers' fetches are replication, not traffic out).
  const traffic = isReplica(req) ? undefined : ctx.traffic;
  const waitMs = Math.min(Math.max(req.maxWaitMs, 0), ctx.config.fetchWaitMsMax);
  const deadline = Date.now() + waitMs;
  for (;;) {
    // Cheap check first: with nothing new anywhere, park without touching the disk. With
    // minBytes <= 0 any answer satisfies the request, so it never parks (SPEC 6.7).
    if (req.minBytes <= 0 || hasData(ctx, req, starts) || Date.now() >= deadline || ctx.shuttingDown) {
      const r = await readAll(ctx, req, filter, starts);
      const remaining = deadline - Date.now();
      if (r.anyError || r.bytes >= req.minBytes || remaining <= 0 || ctx.shuttingDown || r.scanCut) {
        if (traffic !== undefined) countFetched(traffic, r);
        return { control: r.response, sections: r.sections };
      }
    }
    const parked = ctx.delayedFetches.wait(parkingOf(ctx, req), deadline - Date.now());
    if (parked === null) {
      const r = await readAll(ctx, req, filter, starts);
      if (traffic !== undefined) countFetched(traffic, r);
      return { control: r.response, sections: r.sections };
    }
    await parked;
  }
}
