/**
 * WriteTxnMarkers (SPEC §6.23): a transaction coordinator asks this broker, as the leader of
 * some partitions, to append the commit or abort marker of a producer's transaction. Each
 * marker is appended through Partition.appendTxnMarker and acknowledged like a Produce with
 * acks -1: once the high watermark has passed it (REQUEST_TIMED_OUT after
 * TXN_MARKER_WAIT_MS_MAX; the marker stays appended and the coordinator retries, which is
 * harmless: a marker for a producer with no open transaction changes nothing). After each
 * append the TopicManager's marker listeners run (the group coordinator completes the
 * transaction's offsets there).
 *
 * Invariants: every request entry gets exactly one result per partition, in request order;
 * per-partition errors never fail the request; waits are bounded; at most
 * WRITE_TXN_MARKERS_PARTITIONS_MAX partition entries per request (MALFORMED_REQUEST beyond,
 * before anything is appended: SPEC §6, Entry limits).
 */
import type { WriteTxnMarkersRequest, WriteTxnMarkersResponse } from '../../protocol/apis/write-txn-markers.ts';
import { ErrorCode, SluiceError } from '../../protocol/errors.ts';
import type { HandlerResult } from '../network/reply.ts';
import type { BrokerContext } from './context.ts';
import { checkEntries, partitionEntries, WRITE_TXN_MARKERS_PARTITIONS_MAX } from './request-limits.ts';
import { TXN_STATE_TOPIC, TXN_STATE_TOPIC_PARTITIONS } from '../txn/transaction-log.ts';

/** Longest a marker waits for the in-sync replicas (Kafka's request timeout for markers is 30 s too). */
export const TXN_MARKER_WAIT_MS_MAX = 30_000;

export async function handleWriteTxnMarkers(ctx: BrokerContext, req: WriteTxnMarkersRequest, waitMs = TXN_MARKER_WAIT_MS_MAX): Promise<HandlerResult> {
  let entries = 0;
  for (const m of req.markers) entries += Math.max(1, partitionEntries(m.topics));
  checkEntries('WriteTxnMarkers', 'partition entries', entries, WRITE_TXN_MARKERS_PARTITIONS_MAX);
  return { control: await writeTxnMarkers(ctx, req, waitMs, coordinatorEpochMax(ctx)) };
}

/**
 * The highest coordinatorEpoch a real coordinator can hold now: the largest leader epoch of
 * the `__transaction_state` partitions in this broker's metadata (a coordinator's epoch is its
 * partition's leader epoch at load, SPEC §7.6, never above the current one). A marker above it
 * comes from no coordinator; taken, it would raise the partition's coordinatorEpoch for its
 * producer past every real one and fence their markers for good. -1 when the topic does not
 * exist (no coordinator yet); null without a metadata store (the in-process test context).
 * A broker whose metadata lags refuses a legitimate marker only until it catches up: the
 * coordinator retries.
 */
function coordinatorEpochMax(ctx: BrokerContext): number | null {
  const store = ctx.store as BrokerContext['store'] | undefined;
  if (store === undefined) return null;
  let max = -1;
  for (let p = 0; p < TXN_STATE_TOPIC_PARTITIONS; p++) max = Math.max(max, store.partitionState(TXN_STATE_TOPIC, p)?.leaderEpoch ?? -1);
  return max;
}

/** The work of WriteTxnMarkers, also called directly by this broker's own transaction coordinator for partitions it leads. */
export async function writeTxnMarkers(ctx: BrokerContext, req: WriteTxnMarkersRequest, waitMs = TXN_MARKER_WAIT_MS_MAX, maxCoordinatorEpoch: number | null = null): Promise<WriteTxnMarkersResponse> {
  const waits: Promise<void>[] = [];
  const response: WriteTxnMarkersResponse = { markers: [] };
  for (const m of req.markers) {
    const topics: WriteTxnMarkersResponse['markers'][number]['topics'] = [];
    for (const t of m.topics) {
      const partitions: Array<{ partition: number; errorCode: number }> = [];
      for (const partition of t.partitions) {
        const result = { partition, errorCode: 0 };
        partitions.push(result);
        if (ctx.shuttingDown) {
          result.errorCode = ErrorCode.BROKER_SHUTTING_DOWN;
          continue;
        }
        try {
          if (!(Number.isSafeInteger(m.producerId) && m.producerId >= 0 && m.producerEpoch >= 0 && m.producerEpoch <= 0x7fff && Number.isInteger(m.coordinatorEpoch) && m.coordinatorEpoch >= 0 && m.coordinatorEpoch <= 0x7fff_ffff)) {
            throw new SluiceError(ErrorCode.MALFORMED_REQUEST, `marker producerId ${m.producerId}, producerEpoch ${m.producerEpoch}, coordinatorEpoch ${m.coordinatorEpoch} out of range`);
          }
          if (maxCoordinatorEpoch !== null && m.coordinatorEpoch > maxCoordinatorEpoch) {
            throw new SluiceError(ErrorCode.MALFORMED_REQUEST, `marker coordinatorEpoch ${m.coordinatorEpoch} is above every ${TXN_STATE_TOPIC} leader epoch (${maxCoordinatorEpoch}): no coordinator sent it`);
          }
          const p = ctx.topics.servable('txn-marker', t.topic, partition);
          const marker = { producerId: m.producerId, producerEpoch: m.producerEpoch, committed: m.committed, coordinatorEpoch: m.coordinatorEpoch };
          const offset = p.appendTxnMarker(marker);
          ctx.topics.notifyTxnMarker(t.topic, partition, marker, offset);
          waits.push(p.waitForHighWatermark(offset + 1, waitMs).catch((e: unknown) => {
            result.errorCode = e instanceof SluiceError ? e.code : ErrorCode.STORAGE_ERROR;
          }));
        } catch (e) {
          if (!(e instanceof SluiceError)) throw e;
          result.errorCode = e.code;
          ctx.log.debug('txn marker refused', { topic: t.topic, partition, producerId: m.producerId, error: e });
        }
      }
      topics.push({ topic: t.topic, partitions });
    }
    response.markers.push({ producerId: m.producerId, topics });
  }
  if (waits.length > 0) await Promise.all(waits);
  return response;
}
