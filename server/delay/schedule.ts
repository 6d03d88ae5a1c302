/**
 * The leader's produce-side step of delayed delivery (SPEC §8.8): checks each batch that
 * carries a `sluice-deliver-at-ms` header and replaces those due in the future with a
 * SCHEDULED wrapper (protocol/delayed-batch.ts), which takes the same offsets.
 *
 * Invariants:
 * - Called only for record sets whose validation found a delivery header (the plain path never
 *   gets here); the record set is validated and has its offsets and leader epoch assigned.
 * - All or nothing: every batch is checked before any wrapper is built; a refusal throws
 *   INVALID_DELIVERY_TIME naming the batch and the reason, and nothing is written.
 * - effectiveDeliverAtMs = max(requested, frontier time) > now, so every new wrapper's key is
 *   above the frontier (its offset is above every existing one).
 * - A batch due now or in the past is kept byte for byte (a normal batch).
 */
import { ErrorCode, SluiceError } from '../../protocol/errors.ts';
import { buildScheduledWrapper, DELIVER_AT_DIGITS_MAX, parseDeliverAtMs } from '../../protocol/delayed-batch.ts';
import { ATTR_TRANSACTIONAL, batchSizeAt, HEADER_DELIVER_AT_MS, Off, readInt32, readInt64, writeInt32, writeInt64 } from '../../protocol/record-batch.ts';

/** Where validation found a batch's delivery header: [batch position, value position, value length] per batch. */
export type DelayedBatchPositions = number[];

export interface ScheduleContext {
  nowMs: number;
  /** delayedDeliveryMsMax (broker setting). */
  deliveryMaxMs: number;
  /** The partition's release frontier time (-1 when none). */
  frontierAtMs: number;
  /** The topic's cleanup.policy includes compact, or it is internal. */
  compacted: boolean;
}

/**
 * The record set to write: recordSet itself when every delayed batch is due, else a new buffer
 * with wrappers in place of the future ones. `wrapped` counts the wrappers.
 */
export function scheduleDelayed(recordSet: Uint8Array, positions: DelayedBatchPositions, ctx: ScheduleContext): { records: Uint8Array; wrapped: number } {
  const times: number[] = [];
  let future = 0;
  for (let i = 0; i < positions.length; i += 3) {
    const at = positions[i]!;
    const value = positions[i + 1]!;
    const bytes = positions[i + 2]!;
    const which = `batch at offset ${readInt64(recordSet, at)}`;
    const t = parseDeliverAtMs(recordSet, value, bytes);
    if (t < 0) {
      const shown = Buffer.from(recordSet.subarray(value, value + Math.min(bytes, 32))).toString('latin1');
      throw new SluiceError(ErrorCode.INVALID_DELIVERY_TIME, `${which}: ${HEADER_DELIVER_AT_MS} ${JSON.stringify(shown)} is not 1 to ${DELIVER_AT_DIGITS_MAX} decimal digits (ms since the epoch)`);
    }
    if ((recordSet[at + Off.attributes + 1]! & ATTR_TRANSACTIONAL) !== 0) {
      throw new SluiceError(ErrorCode.INVALID_DELIVERY_TIME, `${which}: a transactional batch cannot carry ${HEADER_DELIVER_AT_MS} (delayed delivery is not transactional)`);
    }
    if (ctx.compacted) {
      throw new SluiceError(ErrorCode.INVALID_DELIVERY_TIME, `${which}: ${HEADER_DELIVER_AT_MS} on a compacted topic (cleanup.policy includes compact) is not supported`);
    }
    if (t > ctx.nowMs + ctx.deliveryMaxMs) {
      throw new SluiceError(ErrorCode.INVALID_DELIVERY_TIME, `${which}: delivery time ${t} is ${t - ctx.nowMs} ms ahead; this broker accepts at most ${ctx.deliveryMaxMs} ms (delayedDeliveryMsMax)`);
    }
    times.push(t);
    if (t > ctx.nowMs) future++;
  }
  if (future === 0) return { records: recordSet, wrapped: 0 };
  // Rebuild the set: wrappers for future batches, the others copied as they are.
  const parts: Uint8Array[] = [];
  let total = 0;
  let k = 0;
  for (let pos = 0; pos < recordSet.length;) {
    const size = batchSizeAt(recordSet, pos);
    let part: Uint8Array = recordSet.subarray(pos, pos + size);
    if (k < positions.length && positions[k] === pos) {
      const t = times[k / 3]!;
      k += 3;
      if (t > ctx.nowMs) {
        const w = buildScheduledWrapper(recordSet, pos, size, Math.max(t, ctx.frontierAtMs), t, ctx.nowMs);
        // Same offsets and epoch as the batch it replaces (set by validation).
        writeInt64(w, Off.baseOffset, readInt64(recordSet, pos));
        writeInt32(w, Off.partitionLeaderEpoch, readInt32(recordSet, pos + Off.partitionLeaderEpoch));
        part = w;
      }
    }
    parts.push(part);
    total += part.length;
    pos += size;
  }
  const out = Buffer.allocUnsafe(total);
  let p = 0;
  for (const part of parts) {
    out.set(part, p);
    p += part.length;
  }
  return { records: out, wrapped: future };
}
