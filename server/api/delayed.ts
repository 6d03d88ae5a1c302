/**
 * ListDelayed (SPEC §6.25) and CancelDelayed (SPEC §6.26): the pending delayed messages of a
 * partition, and their cancellation, on the partition's leader. The pending set lives in the
 * log's PendingDelays (server/delay/pending-delays.ts); a message's id is its SCHEDULED
 * wrapper's offset, which both APIs read back from the log to check that it is one.
 *
 * Invariants:
 * - A cancel appends a CANCELLED marker only for a wrapper that is pending at the moment of the
 *   (synchronous) append: not released, not in flight in the releaser, not cancelled before.
 * - Bounded: ListDelayed returns at most LIST_DELAYED_LIMIT_MAX entries; CancelDelayed carries
 *   at most CANCEL_DELAYED_OFFSETS_MAX offsets and waits at most CANCEL_COMMIT_WAIT_MS for the
 *   markers to replicate; the cancel set per partition is bounded by delayedCancelsPendingMax.
 */
import type { CancelDelayedRequest, CancelDelayedResponse, CancelDelayedResult } from '../../protocol/apis/cancel-delayed.ts';
import type { DelayedEntry, ListDelayedRequest, ListDelayedResponse } from '../../protocol/apis/list-delayed.ts';
import { buildCancelMarker } from '../../protocol/delayed-batch.ts';
import { ErrorCode, SluiceError } from '../../protocol/errors.ts';
import type { Partition } from '../partition/partition.ts';
import type { HandlerResult } from '../network/reply.ts';
import type { BrokerContext } from './context.ts';
import { CANCEL_DELAYED_OFFSETS_MAX, checkEntries, ENTRIES_PER_TURN_MAX, LIST_DELAYED_LIMIT_MAX, yieldToEventLoop } from './request-limits.ts';

/** How long a cancel waits for its markers to reach every in-sync replica (SPEC §6.26). */
export const CANCEL_COMMIT_WAIT_MS = 30_000;

function errorOf(e: unknown): { code: number; message: string } {
  if (e instanceof SluiceError) return { code: e.code, message: e.message };
  return { code: ErrorCode.STORAGE_ERROR, message: (e as Error).message };
}

export async function handleListDelayed(ctx: BrokerContext, req: ListDelayedRequest): Promise<HandlerResult> {
  if (req.limit < 1 || req.limit > LIST_DELAYED_LIMIT_MAX) throw new SluiceError(ErrorCode.MALFORMED_REQUEST, `ListDelayed limit ${req.limit} is not 1 … ${LIST_DELAYED_LIMIT_MAX}`);
  const afterAt = req.afterDeliverAtMs ?? null;
  const afterOffset = req.afterOffset ?? null;
  if ((afterAt === null) !== (afterOffset === null)) throw new SluiceError(ErrorCode.MALFORMED_REQUEST, 'ListDelayed: afterDeliverAtMs and afterOffset go together (both, or neither)');
  const res: ListDelayedResponse = { errorCode: 0, errorMessage: null, frontierDeliverAtMs: -1, frontierOffset: -1, pendingCount: 0, entries: [] };
  try {
    const partition = ctx.topics.servable('produce', req.topic, req.partition);
    const log = partition.log;
    const d = log.delays;
    const keys = d.listAfter(afterAt ?? -Infinity, afterOffset ?? -Infinity, req.limit);
    const entries: DelayedEntry[] = [];
    for (const k of keys) {
      const w = await log.readWrapper(k.offset);
      if (w === null) continue; // released and removed meanwhile? (cannot be pending then)
      entries.push({ offset: k.offset, deliverAtMs: k.deliverAtMs, requestedDeliverAtMs: w.entry.requestedDeliverAtMs, recordCount: w.entry.recordCount, sizeBytes: w.entry.innerBytes });
    }
    res.entries = entries;
    res.frontierDeliverAtMs = d.frontierAtMs;
    res.frontierOffset = d.frontierOffset;
    res.pendingCount = d.pendingCount;
  } catch (e) {
    const { code, message } = errorOf(e);
    res.errorCode = code;
    res.errorMessage = message;
    res.entries = [];
  }
  return { control: res };
}

/** Cancels one offset on the leader; returns the marker's offset, or throws SluiceError. */
async function cancelOne(partition: Partition, offset: number): Promise<number> {
  const log = partition.log;
  const w = await log.readWrapper(offset);
  // Checked after the read: the releaser may have taken it meanwhile.
  partition.checkLeader();
  if (w === null) throw new SluiceError(ErrorCode.DELAYED_MESSAGE_NOT_FOUND, `no delayed message has id ${offset} (no SCHEDULED wrapper starts at this offset)`);
  const state = log.delays.stateOf(w.entry.effectiveDeliverAtMs, offset);
  if (state !== 'pending') {
    throw new SluiceError(ErrorCode.DELAYED_MESSAGE_NOT_FOUND, `delayed message ${offset} is not pending: ${state === 'in-flight' ? 'it is being released now' : 'already released or cancelled'}`);
  }
  const max = log.delayConfig.delayedCancelsPendingMax;
  if (log.delays.cancelledCount >= max) {
    throw new SluiceError(ErrorCode.DELAYED_CANCELS_LIMIT_REACHED, `${partition.topic}/${partition.partition} already holds ${log.delays.cancelledCount} cancelled delayed messages not yet due (delayedCancelsPendingMax ${max}); delayed message ${offset} was not cancelled`);
  }
  return partition.appendDelayBatches([buildCancelMarker(w.entry.effectiveDeliverAtMs, offset, Date.now())]).baseOffset;
}

export async function handleCancelDelayed(ctx: BrokerContext, req: CancelDelayedRequest): Promise<HandlerResult> {
  let count = 0;
  for (const p of req.partitions) count += Math.max(1, p.offsets.length);
  checkEntries('CancelDelayed', 'offsets', count, CANCEL_DELAYED_OFFSETS_MAX);
  const partitions: CancelDelayedResponse['topics'][number]['partitions'] = [];
  const waits: Promise<void>[] = [];
  let sinceYield = 0;
  for (const p of req.partitions) {
    const results: CancelDelayedResult[] = p.offsets.map((offset) => ({ offset, errorCode: 0, errorMessage: null }));
    partitions.push({ partition: p.partition, results });
    let partition: Partition;
    try {
      partition = ctx.topics.servable('produce', req.topic, p.partition);
    } catch (e) {
      const { code, message } = errorOf(e);
      for (const r of results) {
        r.errorCode = code;
        r.errorMessage = message;
      }
      continue;
    }
    let lastMarker = -1;
    for (const r of results) {
      if (++sinceYield >= ENTRIES_PER_TURN_MAX) {
        sinceYield = 0;
        await yieldToEventLoop();
      }
      try {
        lastMarker = Math.max(lastMarker, await cancelOne(partition, r.offset));
      } catch (e) {
        const { code, message } = errorOf(e);
        r.errorCode = code;
        r.errorMessage = message;
      }
    }
    if (lastMarker >= 0) {
      // errorCode 0 means committed: wait until every in-sync replica has the markers.
      waits.push(
        partition.waitForHighWatermark(lastMarker + 1, CANCEL_COMMIT_WAIT_MS).catch((e: unknown) => {
          const { code, message } = errorOf(e);
          for (const r of results) {
            if (r.errorCode !== 0) continue;
            r.errorCode = code;
            r.errorMessage = `cancel marker appended but not committed: ${message}`;
          }
        }),
      );
    }
  }
  await Promise.all(waits);
  const response: CancelDelayedResponse = { topics: [{ topic: req.topic, partitions }] };
  return { control: response };
}
