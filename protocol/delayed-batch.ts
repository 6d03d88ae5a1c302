/**
 * Delayed delivery in the log (SPEC §8.6 types 2-4, §8.8, §7.9): the control batches a
 * partition leader writes for a delayed message, their builders and readers.
 *
 *   SCHEDULED (type 2) wrapper: attributes = control (0x20) only; producerId, producerEpoch and
 *     baseSequence copied from the producer's batch (so idempotent dedup counts it as that
 *     batch); lastOffsetDelta = the producer batch's (it takes as many offsets as the message
 *     has records); recordCount 1. Record: key = int16 0, int16 2; value = int64
 *     effectiveDeliverAtMs, int64 requestedDeliverAtMs, then the producer's batch bytes (as
 *     received but for baseOffset and partitionLeaderEpoch, which validation set to the
 *     wrapper's; both lie outside the batch's CRC).
 *   RELEASED (type 3) marker: producerId -1, control only; value = int64 effectiveDeliverAtMs,
 *     int64 wrapperOffset. Always immediately followed, in the same append, by the released
 *     batch (the producer's batch with producer fields -1, resealed).
 *   CANCELLED (type 4) marker: as RELEASED, type 4; no batch follows.
 *
 * Invariants:
 * - Readers never throw: anything that is not a well-formed version-0 record of the expected
 *   type reads as null (a consumer or the broker then skips the control batch, SPEC §8.6).
 * - Builders produce batches that validateBatch(…, stored = true) accepts.
 * - The delay key (deliverAtMs, wrapperOffset) orders releases; compareKey is that order.
 */
import { Buffer } from 'node:buffer';
import { crc32c } from './crc32c.ts';
import {
  ATTR_CONTROL,
  ATTR_TRANSACTIONAL,
  BATCH_HEADER_BYTES,
  BATCH_LOG_OVERHEAD,
  MAGIC,
  NO_PRODUCER_ID,
  Off,
  readInt32,
  readInt64,
  writeInt32,
  writeInt64,
  writeProducerFields,
} from './record-batch.ts';
import { readVarint, varintEnd, varintSize, writeVarint } from './varint.ts';

export const CONTROL_TYPE_SCHEDULED = 2;
export const CONTROL_TYPE_RELEASED = 3;
export const CONTROL_TYPE_CANCELLED = 4;

/** Digits a `sluice-deliver-at-ms` value may have (SPEC §8.8): 15 digits is year 33658, and exact as a double. */
export const DELIVER_AT_DIGITS_MAX = 15;
/** Bytes of a wrapper's value before the producer's batch: two int64s. */
export const SCHEDULED_VALUE_PREFIX_BYTES = 16;
/** Bytes of a RELEASED / CANCELLED marker's value. */
export const MARKER_VALUE_BYTES = 16;
const CONTROL_KEY_BYTES = 4;

/**
 * The delivery time a `sluice-deliver-at-ms` value holds: 1 to 15 ASCII decimal digits, ms
 * since the epoch; -1 when the bytes are not that (empty, a sign, spaces, too many digits).
 */
export function parseDeliverAtMs(b: Uint8Array, at: number, bytes: number): number {
  if (bytes < 1 || bytes > DELIVER_AT_DIGITS_MAX || at < 0 || at + bytes > b.length) return -1;
  let v = 0;
  for (let i = 0; i < bytes; i++) {
    const d = b[at + i]! - 0x30;
    if (d < 0 || d > 9) return -1;
    v = v * 10 + d;
  }
  return v;
}

/** The header value for a delivery time (decimal ASCII), for producers. */
export function formatDeliverAtMs(ms: number): Uint8Array {
  if (!Number.isSafeInteger(ms) || ms < 0 || String(ms).length > DELIVER_AT_DIGITS_MAX) throw new RangeError(`delivery time ${ms} is not 0 … 10^15-1 ms`);
  return new TextEncoder().encode(String(ms));
}

/** Orders delay keys: negative when (atA, offA) releases before (atB, offB). */
export function compareKey(atA: number, offA: number, atB: number, offB: number): number {
  return atA !== atB ? atA - atB : offA - offB;
}

// ---------------------------------------------------------------------------------------------
// Reading the one record of a control batch

/** Where the last readControlRecord call found the key and value (slots: the readers allocate nothing). */
let recKeyAt = 0;
let recKeyBytes = 0;
let recValueAt = 0;
let recValueBytes = 0;

/**
 * Locates the key and value of the first record of the control batch at pos, within the
 * batch's own bytes and b. False when it is not a control batch or the record is malformed.
 */
function readControlRecord(b: Uint8Array, pos: number): boolean {
  if (pos < 0 || pos + BATCH_HEADER_BYTES > b.length) return false;
  if ((b[pos + Off.attributes + 1]! & ATTR_CONTROL) === 0) return false;
  const end = pos + readInt32(b, pos + Off.batchLength) + BATCH_LOG_OVERHEAD;
  if (end > b.length || end < pos + BATCH_HEADER_BYTES) return false;
  if (readInt32(b, pos + Off.recordCount) < 1) return false;
  try {
    const len = readVarint(b, pos + BATCH_HEADER_BYTES, end);
    const recEnd = varintEnd + len;
    if (len < 6 || recEnd > end) return false;
    let p = varintEnd + 1; // attributes
    readVarint(b, p, recEnd); // timestampDelta
    readVarint(b, varintEnd, recEnd); // offsetDelta
    const keyLen = readVarint(b, varintEnd, recEnd);
    p = varintEnd;
    if (keyLen < 0 || p + keyLen > recEnd) return false;
    recKeyAt = p;
    recKeyBytes = keyLen;
    p += keyLen;
    const valueLen = readVarint(b, p, recEnd);
    p = varintEnd;
    if (valueLen < 0 || p + valueLen > recEnd) return false;
    recValueAt = p;
    recValueBytes = valueLen;
    return true;
  } catch {
    return false;
  }
}

/**
 * The control type of the control batch at pos (0 abort, 1 commit, 2 scheduled, 3 released,
 * 4 cancelled, or another number a newer broker wrote), or -1 when it is not a control batch
 * or its key is not a well-formed version-0 control key.
 */
export function controlTypeAt(b: Uint8Array, pos: number): number {
  if (!readControlRecord(b, pos) || recKeyBytes < CONTROL_KEY_BYTES) return -1;
  const version = (b[recKeyAt]! << 8) | b[recKeyAt + 1]!;
  if (version !== 0) return -1;
  return (b[recKeyAt + 2]! << 8) | b[recKeyAt + 3]!;
}

/** A SCHEDULED wrapper as read from the log. */
export interface ScheduledEntry {
  /** The wrapper's baseOffset: the delayed message's id. */
  wrapperOffset: number;
  effectiveDeliverAtMs: number;
  requestedDeliverAtMs: number;
  /** Position and size, in the buffer read, of the producer's batch inside the wrapper. */
  innerAt: number;
  innerBytes: number;
  /** The producer batch's recordCount and lastOffsetDelta. */
  recordCount: number;
  lastOffsetDelta: number;
}

/** The wrapper at pos, or null when it is not a well-formed SCHEDULED control batch. */
export function readScheduled(b: Uint8Array, pos: number): ScheduledEntry | null {
  if (controlTypeAt(b, pos) !== CONTROL_TYPE_SCHEDULED) return null;
  if (recValueBytes < SCHEDULED_VALUE_PREFIX_BYTES + BATCH_HEADER_BYTES) return null;
  const effectiveDeliverAtMs = readInt64(b, recValueAt);
  const requestedDeliverAtMs = readInt64(b, recValueAt + 8);
  const innerAt = recValueAt + SCHEDULED_VALUE_PREFIX_BYTES;
  const innerBytes = recValueBytes - SCHEDULED_VALUE_PREFIX_BYTES;
  if (readInt32(b, innerAt + Off.batchLength) + BATCH_LOG_OVERHEAD !== innerBytes || b[innerAt + Off.magic] !== MAGIC) return null;
  const recordCount = readInt32(b, innerAt + Off.recordCount);
  const lastOffsetDelta = readInt32(b, innerAt + Off.lastOffsetDelta);
  if (effectiveDeliverAtMs < 0 || requestedDeliverAtMs < 0 || recordCount < 1 || lastOffsetDelta < recordCount - 1) return null;
  return { wrapperOffset: readInt64(b, pos), effectiveDeliverAtMs, requestedDeliverAtMs, innerAt, innerBytes, recordCount, lastOffsetDelta };
}

/** A RELEASED or CANCELLED marker as read from the log. */
export interface DelayMarker {
  type: typeof CONTROL_TYPE_RELEASED | typeof CONTROL_TYPE_CANCELLED;
  /** The marker's own offset. */
  offset: number;
  /** The key of the wrapper it releases or cancels. */
  deliverAtMs: number;
  wrapperOffset: number;
}

/** The RELEASED / CANCELLED marker at pos, or null when it is not a well-formed one. */
export function readDelayMarker(b: Uint8Array, pos: number): DelayMarker | null {
  const type = controlTypeAt(b, pos);
  if (type !== CONTROL_TYPE_RELEASED && type !== CONTROL_TYPE_CANCELLED) return null;
  if (recValueBytes < MARKER_VALUE_BYTES) return null;
  const deliverAtMs = readInt64(b, recValueAt);
  const wrapperOffset = readInt64(b, recValueAt + 8);
  if (deliverAtMs < 0 || wrapperOffset < 0) return null;
  return { type, offset: readInt64(b, pos), deliverAtMs, wrapperOffset };
}

// ---------------------------------------------------------------------------------------------
// Building

/**
 * A control batch of one record with key (0, type) and the given value; attributes control
 * only, timestamps nowMs; producer fields and lastOffsetDelta as given. baseOffset 0 and
 * partitionLeaderEpoch -1 (the append sets them).
 */
function buildControl(type: number, valueBytes: number, fillValue: (b: Uint8Array, at: number) => void, nowMs: number, lastOffsetDelta: number, producer: { producerId: number; producerEpoch: number; baseSequence: number } | null): Uint8Array {
  const body = 1 + 1 + 1 + varintSize(CONTROL_KEY_BYTES) + CONTROL_KEY_BYTES + varintSize(valueBytes) + valueBytes + 1;
  const size = BATCH_HEADER_BYTES + varintSize(body) + body;
  // From Node's shared pool for small sizes (zeroed here: the fields not written below are 0):
  // a broker wraps every delayed batch it accepts, and one malloc per wrapper left native
  // memory fragmented (broker RSS with millions pending).
  const pooled = Buffer.allocUnsafe(size).fill(0);
  const b = new Uint8Array(pooled.buffer, pooled.byteOffset, size);
  writeInt32(b, Off.batchLength, size - BATCH_LOG_OVERHEAD);
  writeInt32(b, Off.partitionLeaderEpoch, -1);
  b[Off.magic] = MAGIC;
  b[Off.attributes + 1] = ATTR_CONTROL;
  writeInt32(b, Off.lastOffsetDelta, lastOffsetDelta);
  writeInt64(b, Off.baseTimestamp, nowMs);
  writeInt64(b, Off.maxTimestamp, nowMs);
  writeProducerFields(b, 0, producer);
  writeInt32(b, Off.recordCount, 1);
  let p = writeVarint(b, BATCH_HEADER_BYTES, body);
  b[p++] = 0; // attributes
  b[p++] = 0; // timestampDelta 0
  b[p++] = 0; // offsetDelta 0
  p = writeVarint(b, p, CONTROL_KEY_BYTES);
  b[p + 3] = type; // int16 version 0, int16 type
  p += CONTROL_KEY_BYTES;
  p = writeVarint(b, p, valueBytes);
  fillValue(b, p);
  p += valueBytes;
  b[p++] = 0; // headerCount 0
  writeInt32(b, Off.crc, crc32c(b, Off.attributes, size));
  return b;
}

/**
 * The SCHEDULED wrapper for the producer's batch at producerBatch[at, at + bytes) (validated;
 * one batch): its producer fields and lastOffsetDelta are copied, its bytes embedded as received.
 */
export function buildScheduledWrapper(producerBatch: Uint8Array, at: number, bytes: number, effectiveDeliverAtMs: number, requestedDeliverAtMs: number, nowMs: number): Uint8Array {
  const producer = {
    producerId: readInt64(producerBatch, at + Off.producerId),
    producerEpoch: ((((producerBatch[at + Off.producerEpoch]! << 8) | producerBatch[at + Off.producerEpoch + 1]!) << 16) >> 16),
    baseSequence: readInt32(producerBatch, at + Off.baseSequence),
  };
  const idempotent = producer.producerId !== NO_PRODUCER_ID;
  return buildControl(
    CONTROL_TYPE_SCHEDULED,
    SCHEDULED_VALUE_PREFIX_BYTES + bytes,
    (b, p) => {
      writeInt64(b, p, effectiveDeliverAtMs);
      writeInt64(b, p + 8, requestedDeliverAtMs);
      b.set(producerBatch.subarray(at, at + bytes), p + SCHEDULED_VALUE_PREFIX_BYTES);
    },
    nowMs,
    readInt32(producerBatch, at + Off.lastOffsetDelta),
    idempotent ? producer : null,
  );
}

function buildMarker(type: number, deliverAtMs: number, wrapperOffset: number, nowMs: number): Uint8Array {
  return buildControl(type, MARKER_VALUE_BYTES, (b, p) => {
    writeInt64(b, p, deliverAtMs);
    writeInt64(b, p + 8, wrapperOffset);
  }, nowMs, 0, null);
}

/** The RELEASED marker for the wrapper with key (deliverAtMs, wrapperOffset). */
export function buildReleaseMarker(deliverAtMs: number, wrapperOffset: number, nowMs: number): Uint8Array {
  return buildMarker(CONTROL_TYPE_RELEASED, deliverAtMs, wrapperOffset, nowMs);
}

/** The CANCELLED marker for the wrapper with key (deliverAtMs, wrapperOffset). */
export function buildCancelMarker(deliverAtMs: number, wrapperOffset: number, nowMs: number): Uint8Array {
  return buildMarker(CONTROL_TYPE_CANCELLED, deliverAtMs, wrapperOffset, nowMs);
}

/**
 * The released batch of a wrapper read with readScheduled from b: a copy of the producer's
 * batch with producerId / producerEpoch / baseSequence -1, the transactional bit clear,
 * partitionLeaderEpoch -1 and baseOffset 0 (the append sets both), the CRC recomputed. Keys,
 * values, headers and timestamps are the producer's.
 */
export function buildReleased(b: Uint8Array, entry: ScheduledEntry): Uint8Array {
  const out = b.slice(entry.innerAt, entry.innerAt + entry.innerBytes);
  writeInt64(out, Off.baseOffset, 0);
  writeInt32(out, Off.partitionLeaderEpoch, -1);
  writeProducerFields(out, 0, null);
  out[Off.attributes + 1] = out[Off.attributes + 1]! & ~ATTR_TRANSACTIONAL;
  writeInt32(out, Off.crc, crc32c(out, Off.attributes, out.length));
  return out;
}

/** The released batch plus its marker, in append order (marker first): one record set. */
export function buildReleasePair(b: Uint8Array, entry: ScheduledEntry, nowMs: number): [Uint8Array, Uint8Array] {
  return [buildReleaseMarker(entry.effectiveDeliverAtMs, entry.wrapperOffset, nowMs), buildReleased(b, entry)];
}
