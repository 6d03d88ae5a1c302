/**
 * RecordBatch v2 (Kafka "magic 2"), the unit producers send, the log stores and consumers
 * receive, byte for byte. Layout (all big-endian):
 *
 *   off size field
 *     0   8  baseOffset            rewritten by the broker on append (outside the CRC)
 *     8   4  batchLength           bytes after this field: total size - 12
 *    12   4  partitionLeaderEpoch  outside the CRC; -1 from producers
 *    16   1  magic                 always 2
 *    17   4  crc                   CRC-32C (Castagnoli) of bytes [21, end)
 *    21   2  attributes            bits 0-2 codec (0 = none), 3 timestamp type, 4 transactional, 5 control
 *    23   4  lastOffsetDelta       recordCount - 1 (larger after compaction removed records)
 *    27   8  baseTimestamp         first record's timestamp, ms since epoch
 *    35   8  maxTimestamp          largest record timestamp
 *    43   8  producerId            -1 without the idempotent producer, else from InitProducerId
 *    51   2  producerEpoch         -1, else the producer's epoch (0..32767)
 *    53   4  baseSequence          -1, else the first record's sequence number (SPEC §8.5)
 *    57   4  recordCount
 *    61      records               recordCount records, see below
 *
 * Record (varints are zig-zag, see varint.ts):
 *   length varint (bytes after this field), attributes int8 (0), timestampDelta varint,
 *   offsetDelta varint (= index in batch; increasing with gaps after compaction), keyLength varint (-1 = null), key,
 *   valueLength varint (-1 = null), value, headerCount varint,
 *   then per header: keyLength varint, key (UTF-8), valueLength varint (-1 = null), value.
 */
import { crc32c } from './crc32c.ts';
import { ErrorCode } from './errors.ts';
import { readVarint, varintEnd, varintSize, writeVarint } from './varint.ts';

export const BATCH_HEADER_BYTES = 61;
/** The first 12 bytes (baseOffset, batchLength) frame a batch; the rest is "batchLength". */
export const BATCH_LOG_OVERHEAD = 12;
export const MAGIC = 2;
/** Smallest possible record: length, attributes, tsDelta, offsetDelta, key, value, headers: 1 byte each. */
export const RECORD_MIN_BYTES = 7;

/** Attribute bits (the low byte of the int16 at Off.attributes; SPEC §8.2). */
export const ATTR_CODEC_MASK = 0x07;
export const ATTR_TRANSACTIONAL = 0x10;
export const ATTR_CONTROL = 0x20;
/** producerId / producerEpoch / baseSequence of a batch without an idempotent producer. */
export const NO_PRODUCER_ID = -1;
export const NO_PRODUCER_EPOCH = -1;
export const NO_SEQUENCE = -1;
/** Sequence numbers are int32 and wrap from 2^31-1 to 0 (SPEC §8.5), as in Kafka. */
export const SEQUENCE_MAX = 0x7fff_ffff;
export const PRODUCER_EPOCH_MAX = 0x7fff;

/** The sequence `n` records after `seq`, wrapping past 2^31-1 to 0. */
export function addSequence(seq: number, n: number): number {
  return (seq + n) % (SEQUENCE_MAX + 1);
}

export const Off = {
  baseOffset: 0,
  batchLength: 8,
  partitionLeaderEpoch: 12,
  magic: 16,
  crc: 17,
  attributes: 21,
  lastOffsetDelta: 23,
  baseTimestamp: 27,
  maxTimestamp: 35,
  producerId: 43,
  producerEpoch: 51,
  baseSequence: 53,
  recordCount: 57,
  records: 61,
} as const;

const TWO_32 = 0x1_0000_0000;

export function readInt64(b: Uint8Array, pos: number): number {
  const hi = (b[pos]! << 24) | (b[pos + 1]! << 16) | (b[pos + 2]! << 8) | b[pos + 3]!;
  const lo = ((b[pos + 4]! << 24) | (b[pos + 5]! << 16) | (b[pos + 6]! << 8) | b[pos + 7]!) >>> 0;
  return hi * TWO_32 + lo;
}

export function writeInt64(b: Uint8Array, pos: number, v: number): void {
  const hi = Math.floor(v / TWO_32);
  const lo = v - hi * TWO_32;
  writeInt32(b, pos, hi | 0);
  writeInt32(b, pos + 4, lo | 0);
}

export function readInt32(b: Uint8Array, pos: number): number {
  return (b[pos]! << 24) | (b[pos + 1]! << 16) | (b[pos + 2]! << 8) | b[pos + 3]!;
}

export function writeInt32(b: Uint8Array, pos: number, v: number): void {
  b[pos] = v >>> 24;
  b[pos + 1] = v >>> 16;
  b[pos + 2] = v >>> 8;
  b[pos + 3] = v;
}

/** Total bytes of the batch starting at pos (batchLength + 12); needs 12 readable bytes. */
export function batchSizeAt(b: Uint8Array, pos: number): number {
  return readInt32(b, pos + Off.batchLength) + BATCH_LOG_OVERHEAD;
}

export function baseOffsetAt(b: Uint8Array, pos: number): number {
  return readInt64(b, pos + Off.baseOffset);
}

export function lastOffsetAt(b: Uint8Array, pos: number): number {
  return readInt64(b, pos) + readInt32(b, pos + Off.lastOffsetDelta);
}

export function maxTimestampAt(b: Uint8Array, pos: number): number {
  return readInt64(b, pos + Off.maxTimestamp);
}

export function attributesAt(b: Uint8Array, pos: number): number {
  return (b[pos + Off.attributes]! << 8) | b[pos + Off.attributes + 1]!;
}

export function producerIdAt(b: Uint8Array, pos: number): number {
  return readInt64(b, pos + Off.producerId);
}

export function producerEpochAt(b: Uint8Array, pos: number): number {
  return (((b[pos + Off.producerEpoch]! << 8) | b[pos + Off.producerEpoch + 1]!) << 16) >> 16;
}

export function baseSequenceAt(b: Uint8Array, pos: number): number {
  return readInt32(b, pos + Off.baseSequence);
}

export function isTransactionalAt(b: Uint8Array, pos: number): boolean {
  return (b[pos + Off.attributes + 1]! & ATTR_TRANSACTIONAL) !== 0;
}

export function isControlAt(b: Uint8Array, pos: number): boolean {
  return (b[pos + Off.attributes + 1]! & ATTR_CONTROL) !== 0;
}

/** What validateBatch learned about a batch; reused between calls so validation allocates nothing. */
export interface BatchInfo {
  size: number;
  recordCount: number;
  lastOffsetDelta: number;
  baseTimestamp: number;
  maxTimestamp: number;
  /** The int16 attributes (ATTR_*). */
  attributes: number;
  /** NO_PRODUCER_ID (-1) for a batch without an idempotent producer. */
  producerId: number;
  producerEpoch: number;
  baseSequence: number;
  /**
   * Position in the validated buffer of the value of the batch's `sluice-tags` header (SPEC §8.7),
   * and its length; -1 / 0 when the batch's records carry none. Every record of the batch
   * carries the same value (validateBatch checks it), so this is the batch's tag set.
   */
  tagsAt: number;
  tagsBytes: number;
  /** Likewise for the `sluice-deliver-at-ms` header (SPEC §8.8): the batch's delivery time. */
  deliverAtAt: number;
  deliverAtBytes: number;
  /** Detail for the error code validateBatch returned, for logs and error messages. */
  problem: string;
}

export function newBatchInfo(): BatchInfo {
  return { size: 0, recordCount: 0, lastOffsetDelta: 0, baseTimestamp: 0, maxTimestamp: 0, attributes: 0, producerId: -1, producerEpoch: -1, baseSequence: -1, tagsAt: -1, tagsBytes: 0, deliverAtAt: -1, deliverAtBytes: 0, problem: '' };
}

/**
 * Record headers that hold a property of the whole batch (SPEC §8.7, §8.8): when present, every
 * record of the batch carries the header with the same value bytes, so the broker reads a
 * batch's tag set or delivery time from its first record and never decodes the others on the
 * fetch path. Names are compared as bytes.
 */
export const HEADER_TAGS = 'sluice-tags';
export const HEADER_DELIVER_AT_MS = 'sluice-deliver-at-ms';
const HEADER_TAGS_BYTES = new TextEncoder().encode(HEADER_TAGS);
const HEADER_DELIVER_AT_BYTES = new TextEncoder().encode(HEADER_DELIVER_AT_MS);

function fail(info: BatchInfo, code: ErrorCode, problem: string): ErrorCode {
  info.problem = problem;
  return code;
}

/**
 * Checks one batch at b[pos, end): framing, magic, CRC-32C, counts, and the framing of every
 * record (lengths and offset deltas, walked without copying anything). Returns ErrorCode.NONE
 * and fills info, or the error code with info.problem set. This is the broker's only gate
 * between a socket and the log, and the consumer's check of what it received.
 *
 * `stored` relaxes one rule for batches read back from a log: compaction removes records
 * from a batch and keeps the survivors' offset deltas, so deltas need only increase and stay
 * within lastOffsetDelta. A producer's batch (stored = false) must number its records 0..n-1.
 */
export function validateBatch(b: Uint8Array, pos: number, end: number, info: BatchInfo, stored = false): ErrorCode {
  if (end - pos < BATCH_HEADER_BYTES) return fail(info, ErrorCode.CORRUPT_MESSAGE, `batch shorter than the ${BATCH_HEADER_BYTES}-byte header`);
  const batchLength = readInt32(b, pos + Off.batchLength);
  const size = batchLength + BATCH_LOG_OVERHEAD;
  if (batchLength < BATCH_HEADER_BYTES - BATCH_LOG_OVERHEAD || size > end - pos) {
    return fail(info, ErrorCode.CORRUPT_MESSAGE, `batchLength ${batchLength} does not fit the ${end - pos} bytes available`);
  }
  const batchEnd = pos + size;
  if (b[pos + Off.magic] !== MAGIC) return fail(info, ErrorCode.CORRUPT_MESSAGE, `magic ${b[pos + Off.magic]} is not 2`);
  const storedCrc = readInt32(b, pos + Off.crc) >>> 0;
  const actualCrc = crc32c(b, pos + Off.attributes, batchEnd);
  if (storedCrc !== actualCrc) return fail(info, ErrorCode.CORRUPT_MESSAGE, `CRC-32C mismatch: stored ${storedCrc.toString(16)}, computed ${actualCrc.toString(16)}`);
  const attributes = (b[pos + Off.attributes]! << 8) | b[pos + Off.attributes + 1]!;
  if ((attributes & ATTR_CODEC_MASK) !== 0) return fail(info, ErrorCode.UNSUPPORTED_COMPRESSION, `compression codec ${attributes & ATTR_CODEC_MASK} is not supported`);
  // A producer may mark a batch transactional; only the broker writes control batches.
  const allowed = stored ? ATTR_TRANSACTIONAL | ATTR_CONTROL : ATTR_TRANSACTIONAL;
  if ((attributes & ~allowed) !== 0) return fail(info, ErrorCode.CORRUPT_MESSAGE, `attributes 0x${attributes.toString(16)}: only the transactional bit${stored ? ' and the control bit are' : ' is'} accepted (no timestamp type, no compression)`);
  const producerId = readInt64(b, pos + Off.producerId);
  const producerEpoch = producerEpochAt(b, pos);
  const baseSequence = readInt32(b, pos + Off.baseSequence);
  if (producerId === NO_PRODUCER_ID) {
    // A stored control batch without a producer is a delayed-delivery one (SPEC §8.6 types 2-4):
    // control bit alone, never transactional; a transaction marker always names its producer.
    const attrsAllowed = stored ? ATTR_CONTROL : 0;
    if (producerEpoch !== NO_PRODUCER_EPOCH || baseSequence !== NO_SEQUENCE || (attributes & ~attrsAllowed & (ATTR_TRANSACTIONAL | ATTR_CONTROL)) !== 0) {
      return fail(info, ErrorCode.CORRUPT_MESSAGE, `producerId -1 needs producerEpoch -1, baseSequence -1 and no transactional${stored ? '' : ' or control'} bit (got ${producerEpoch}, ${baseSequence}, 0x${attributes.toString(16)})`);
    }
  } else if (producerId < 0 || !Number.isSafeInteger(producerId) || producerEpoch < 0 || (baseSequence < 0 && (attributes & ATTR_CONTROL) === 0)) {
    return fail(info, ErrorCode.CORRUPT_MESSAGE, `producerId ${producerId}, producerEpoch ${producerEpoch}, baseSequence ${baseSequence}: an idempotent batch needs all three >= 0`);
  }
  const recordCount = readInt32(b, pos + Off.recordCount);
  const lastOffsetDelta = readInt32(b, pos + Off.lastOffsetDelta);
  const recordsBytes = size - BATCH_HEADER_BYTES;
  if (recordCount < 1 || recordCount * RECORD_MIN_BYTES > recordsBytes) {
    return fail(info, ErrorCode.CORRUPT_MESSAGE, `recordCount ${recordCount} is impossible in ${recordsBytes} bytes`);
  }
  if (stored ? lastOffsetDelta < recordCount - 1 : lastOffsetDelta !== recordCount - 1) {
    return fail(info, ErrorCode.CORRUPT_MESSAGE, `lastOffsetDelta ${lastOffsetDelta} ${stored ? '<' : '!='} recordCount - 1 (${recordCount - 1})`);
  }
  const problem = walkRecords(b, pos + BATCH_HEADER_BYTES, batchEnd, recordCount, stored ? lastOffsetDelta : -1);
  if (problem) return fail(info, walkedProblemCode, problem);
  const baseTimestamp = readInt64(b, pos + Off.baseTimestamp);
  const maxTimestamp = readInt64(b, pos + Off.maxTimestamp);
  // Retention and timestamp lookups trust maxTimestamp, so it must be what the records say.
  if (maxTimestamp !== baseTimestamp + walkedMaxTimestampDelta) {
    return fail(info, ErrorCode.CORRUPT_MESSAGE, `maxTimestamp ${maxTimestamp} != baseTimestamp + largest timestampDelta (${baseTimestamp + walkedMaxTimestampDelta})`);
  }
  info.size = size;
  info.recordCount = recordCount;
  info.lastOffsetDelta = lastOffsetDelta;
  info.baseTimestamp = baseTimestamp;
  info.maxTimestamp = maxTimestamp;
  info.attributes = attributes;
  info.producerId = producerId;
  info.producerEpoch = producerEpoch;
  info.baseSequence = baseSequence;
  info.tagsAt = walkedTagsAt;
  info.tagsBytes = walkedTagsBytes;
  info.deliverAtAt = walkedDeliverAtAt;
  info.deliverAtBytes = walkedDeliverAtBytes;
  info.problem = '';
  return ErrorCode.NONE;
}

/** Largest timestampDelta seen by the last walkRecords call (a slot, to allocate nothing). */
let walkedMaxTimestampDelta = 0;
/** Error code for the problem the last walkRecords call returned (slots, like the one above). */
let walkedProblemCode: ErrorCode = ErrorCode.CORRUPT_MESSAGE;
/** Value position/length of the batch-level headers in the last walk's first record; -1: absent. */
let walkedTagsAt = -1;
let walkedTagsBytes = 0;
let walkedDeliverAtAt = -1;
let walkedDeliverAtBytes = 0;

function bytesEqual(b: Uint8Array, at: number, other: Uint8Array, otherAt: number, n: number): boolean {
  for (let i = 0; i < n; i++) if (b[at + i] !== other[otherAt + i]) return false;
  return true;
}

/**
 * Walks record framing; returns a problem description or '' when every record is well formed.
 * lastOffsetDelta < 0: deltas must be 0..count-1; otherwise increasing and <= lastOffsetDelta.
 */
function walkRecords(b: Uint8Array, pos: number, end: number, count: number, lastOffsetDelta: number): string {
  walkedMaxTimestampDelta = -Infinity;
  walkedProblemCode = ErrorCode.CORRUPT_MESSAGE;
  walkedTagsAt = -1;
  walkedTagsBytes = 0;
  walkedDeliverAtAt = -1;
  walkedDeliverAtBytes = 0;
  let previousDelta = -1;
  try {
    for (let i = 0; i < count; i++) {
      const len = readVarint(b, pos, end);
      pos = varintEnd;
      const recEnd = pos + len;
      if (len < RECORD_MIN_BYTES - 1 || recEnd > end) return `record ${i} length ${len} overruns the batch`;
      pos++; // attributes
      const tsDelta = readVarint(b, pos, recEnd);
      if (tsDelta > walkedMaxTimestampDelta) walkedMaxTimestampDelta = tsDelta;
      const offsetDelta = readVarint(b, varintEnd, recEnd);
      if (lastOffsetDelta < 0 ? offsetDelta !== i : offsetDelta <= previousDelta || offsetDelta > lastOffsetDelta) {
        return `record ${i} has offsetDelta ${offsetDelta}`;
      }
      previousDelta = offsetDelta;
      pos = varintEnd;
      const keyLen = readVarint(b, pos, recEnd);
      pos = varintEnd + (keyLen > 0 ? keyLen : 0);
      if (keyLen < -1 || pos > recEnd) return `record ${i} key length ${keyLen} is invalid`;
      const valueLen = readVarint(b, pos, recEnd);
      pos = varintEnd + (valueLen > 0 ? valueLen : 0);
      if (valueLen < -1 || pos > recEnd) return `record ${i} value length ${valueLen} is invalid`;
      const headerCount = readVarint(b, pos, recEnd);
      pos = varintEnd;
      if (headerCount < 0 || headerCount * 2 > recEnd - pos) return `record ${i} header count ${headerCount} is invalid`;
      let tagsSeen = false;
      let deliverAtSeen = false;
      for (let h = 0; h < headerCount; h++) {
        const hk = readVarint(b, pos, recEnd);
        const keyAt = varintEnd;
        pos = varintEnd + (hk > 0 ? hk : 0);
        if (hk < 0 || pos > recEnd) return `record ${i} header ${h} key length ${hk} is invalid`;
        const hv = readVarint(b, pos, recEnd);
        const valueAt = varintEnd;
        pos = varintEnd + (hv > 0 ? hv : 0);
        if (hv < -1 || pos > recEnd) return `record ${i} header ${h} value length ${hv} is invalid`;
        // Batch-level headers (SPEC §8.7, §8.8): the first record sets the value, the others repeat it.
        if (hk === HEADER_TAGS_BYTES.length && bytesEqual(b, keyAt, HEADER_TAGS_BYTES, 0, hk)) {
          if (tagsSeen || hv < 0 || (i === 0 ? false : walkedTagsAt < 0 || hv !== walkedTagsBytes || !bytesEqual(b, valueAt, b, walkedTagsAt, hv))) {
            walkedProblemCode = ErrorCode.INVALID_TAGS;
            return `record ${i} has a ${HEADER_TAGS} header that is ${hv < 0 ? 'null' : tagsSeen ? 'repeated' : 'not the batch\'s first record\'s'}: every record of a batch carries one and the same tag set`;
          }
          tagsSeen = true;
          if (i === 0) { walkedTagsAt = valueAt; walkedTagsBytes = hv; }
        } else if (hk === HEADER_DELIVER_AT_BYTES.length && bytesEqual(b, keyAt, HEADER_DELIVER_AT_BYTES, 0, hk)) {
          if (deliverAtSeen || hv < 0 || (i === 0 ? false : walkedDeliverAtAt < 0 || hv !== walkedDeliverAtBytes || !bytesEqual(b, valueAt, b, walkedDeliverAtAt, hv))) {
            walkedProblemCode = ErrorCode.INVALID_DELIVERY_TIME;
            return `record ${i} has a ${HEADER_DELIVER_AT_MS} header that is ${hv < 0 ? 'null' : deliverAtSeen ? 'repeated' : 'not the batch\'s first record\'s'}: every record of a batch carries one and the same delivery time`;
          }
          deliverAtSeen = true;
          if (i === 0) { walkedDeliverAtAt = valueAt; walkedDeliverAtBytes = hv; }
        }
      }
      if (pos !== recEnd) return `record ${i} has ${recEnd - pos} bytes past its last header`;
      if (i > 0 && (walkedTagsAt >= 0) !== tagsSeen) {
        walkedProblemCode = ErrorCode.INVALID_TAGS;
        return `record ${i} ${tagsSeen ? 'has' : 'lacks'} the ${HEADER_TAGS} header the batch's first record ${tagsSeen ? 'lacks' : 'has'}: every record of a batch carries one and the same tag set`;
      }
      if (i > 0 && (walkedDeliverAtAt >= 0) !== deliverAtSeen) {
        walkedProblemCode = ErrorCode.INVALID_DELIVERY_TIME;
        return `record ${i} ${deliverAtSeen ? 'has' : 'lacks'} the ${HEADER_DELIVER_AT_MS} header the batch's first record ${deliverAtSeen ? 'lacks' : 'has'}: every record of a batch carries one and the same delivery time`;
      }
    }
  } catch (e) {
    return `record framing: ${(e as Error).message}`;
  }
  if (pos !== end) return `${end - pos} bytes after the last record`;
  return '';
}

export interface RecordHeader {
  key: string;
  value: Uint8Array | null;
}

/** A record as a client builds it. key/value are raw bytes; strings are the caller's to encode. */
export interface RecordInput {
  key?: Uint8Array | null;
  value: Uint8Array | null;
  headers?: RecordHeader[];
  timestamp?: number;
}

/** A record as a consumer reads it; key and value are views into the received bytes. */
export interface DecodedRecord {
  offset: number;
  timestamp: number;
  key: Uint8Array | null;
  value: Uint8Array | null;
  headers: RecordHeader[];
}

const EMPTY_HEADERS: RecordHeader[] = [];
const utf8 = new TextEncoder();
const utf8d = new TextDecoder();

/** UTF-8 of header keys, cached: a producer repeats a few keys (sluice-tags, its own) on every record. */
const HEADER_KEY_CACHE_ENTRIES_MAX = 256;
const headerKeyCache = new Map<string, Uint8Array>();
function headerKeyBytes(h: RecordHeader): Uint8Array {
  let b = headerKeyCache.get(h.key);
  if (b === undefined) {
    b = utf8.encode(h.key);
    if (headerKeyCache.size < HEADER_KEY_CACHE_ENTRIES_MAX) headerKeyCache.set(h.key, b);
  }
  return b;
}

/**
 * Builds one batch in place, record by record, into a buffer that grows by doubling.
 * The producer keeps one builder per partition while it fills; finish() seals the header
 * and CRC and returns the bytes that go on the wire unchanged.
 */
export class BatchBuilder {
  private buf: Uint8Array;
  private pos = BATCH_HEADER_BYTES;
  private count = 0;
  private baseTimestamp = 0;
  private maxTimestamp = 0;

  constructor(initialBytes = 16 * 1024) {
    this.buf = new Uint8Array(Math.max(initialBytes, BATCH_HEADER_BYTES + 64));
  }

  get recordCount(): number {
    return this.count;
  }

  /** Bytes the batch would have if finished now. */
  get sizeBytes(): number {
    return this.pos;
  }

  /** Bytes a record would add, for callers that must decide before appending. */
  static recordSizeBytes(keyLen: number, valueLen: number, headersBytes: number, offsetDelta: number, tsDelta: number): number {
    const body = 1 + varintSize(tsDelta) + varintSize(offsetDelta) + varintSize(keyLen) + Math.max(keyLen, 0) + varintSize(valueLen) + Math.max(valueLen, 0) + headersBytes;
    return varintSize(body) + body;
  }

  append(key: Uint8Array | null | undefined, value: Uint8Array | null, timestamp: number, headers: RecordHeader[] = EMPTY_HEADERS): void {
    if (this.count === 0) {
      this.baseTimestamp = timestamp;
      this.maxTimestamp = timestamp;
    } else if (timestamp > this.maxTimestamp) {
      this.maxTimestamp = timestamp;
    }
    const tsDelta = timestamp - this.baseTimestamp;
    const keyLen = key == null ? -1 : key.length;
    const valueLen = value == null ? -1 : value.length;
    let headerBytes: Uint8Array[] | null = null;
    let headersSize = varintSize(headers.length);
    if (headers.length > 0) {
      headerBytes = headers.map(headerKeyBytes);
      for (let i = 0; i < headers.length; i++) {
        const hk = headerBytes[i]!.length;
        const hv = headers[i]!.value == null ? -1 : headers[i]!.value!.length;
        headersSize += varintSize(hk) + hk + varintSize(hv) + Math.max(hv, 0);
      }
    }
    const body = 1 + varintSize(tsDelta) + varintSize(this.count) + varintSize(keyLen) + Math.max(keyLen, 0) + varintSize(valueLen) + Math.max(valueLen, 0) + headersSize;
    this.ensure(varintSize(body) + body);
    const b = this.buf;
    let p = writeVarint(b, this.pos, body);
    b[p++] = 0;
    p = writeVarint(b, p, tsDelta);
    p = writeVarint(b, p, this.count);
    p = writeVarint(b, p, keyLen);
    if (key) {
      b.set(key, p);
      p += keyLen;
    }
    p = writeVarint(b, p, valueLen);
    if (value) {
      b.set(value, p);
      p += valueLen;
    }
    p = writeVarint(b, p, headers.length);
    if (headerBytes) {
      for (let i = 0; i < headers.length; i++) {
        const hk = headerBytes[i]!;
        p = writeVarint(b, p, hk.length);
        b.set(hk, p);
        p += hk.length;
        const hv = headers[i]!.value;
        p = writeVarint(b, p, hv == null ? -1 : hv.length);
        if (hv) {
          b.set(hv, p);
          p += hv.length;
        }
      }
    }
    this.pos = p;
    this.count++;
  }

  /**
   * Seals the header and CRC. The returned view stays valid until reset(). `producer` stamps
   * an idempotent (and, with transactional, a transactional) producer's fields (SPEC §8.5).
   */
  finish(producer?: ProducerFields): Uint8Array {
    if (this.count === 0) throw new Error('an empty batch cannot be finished');
    const b = this.buf;
    writeInt64(b, Off.baseOffset, 0);
    writeInt32(b, Off.batchLength, this.pos - BATCH_LOG_OVERHEAD);
    writeInt32(b, Off.partitionLeaderEpoch, -1);
    b[Off.magic] = MAGIC;
    b[Off.attributes] = 0;
    b[Off.attributes + 1] = producer?.transactional ? ATTR_TRANSACTIONAL : 0;
    writeInt32(b, Off.lastOffsetDelta, this.count - 1);
    writeInt64(b, Off.baseTimestamp, this.baseTimestamp);
    writeInt64(b, Off.maxTimestamp, this.maxTimestamp);
    writeProducerFields(b, 0, producer ?? null);
    writeInt32(b, Off.recordCount, this.count);
    writeInt32(b, Off.crc, crc32c(b, Off.attributes, this.pos));
    return b.subarray(0, this.pos);
  }

  reset(): void {
    this.pos = BATCH_HEADER_BYTES;
    this.count = 0;
  }

  private ensure(extra: number): void {
    if (this.pos + extra <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.pos + extra) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
  }
}

/** The idempotent producer's fields of a batch (SPEC §8.5). */
export interface ProducerFields {
  producerId: number;
  producerEpoch: number;
  baseSequence: number;
  transactional?: boolean;
}

/** Writes producerId, producerEpoch and baseSequence at batch position pos (-1s for null). Inside the CRC: the caller reseals. */
export function writeProducerFields(b: Uint8Array, pos: number, producer: ProducerFields | null): void {
  writeInt64(b, pos + Off.producerId, producer ? producer.producerId : NO_PRODUCER_ID);
  const epoch = producer ? producer.producerEpoch : NO_PRODUCER_EPOCH;
  b[pos + Off.producerEpoch] = (epoch >> 8) & 0xff;
  b[pos + Off.producerEpoch + 1] = epoch & 0xff;
  writeInt32(b, pos + Off.baseSequence, producer ? producer.baseSequence : NO_SEQUENCE);
}

/** Recomputes the CRC-32C of the batch at pos after a change inside the CRC'd range. */
export function resealBatch(b: Uint8Array, pos = 0): void {
  writeInt32(b, pos + Off.crc, crc32c(b, pos + Off.attributes, pos + batchSizeAt(b, pos)));
}

/**
 * Control batches (SPEC §8.6): the commit or abort marker a partition leader writes for a
 * transaction. One record; key = int16 version 0, int16 type (0 abort, 1 commit); value =
 * int16 version 0, int32 coordinatorEpoch. Attributes: transactional | control.
 */
export const CONTROL_TYPE_ABORT = 0;
export const CONTROL_TYPE_COMMIT = 1;

export interface TxnMarker {
  producerId: number;
  producerEpoch: number;
  committed: boolean;
  coordinatorEpoch: number;
}

export function buildControlBatch(marker: TxnMarker, timestampMs: number): Uint8Array {
  const key = new Uint8Array(4);
  key[3] = marker.committed ? CONTROL_TYPE_COMMIT : CONTROL_TYPE_ABORT;
  const value = new Uint8Array(6);
  writeInt32(value, 2, marker.coordinatorEpoch);
  const builder = new BatchBuilder(BATCH_HEADER_BYTES + 64);
  builder.append(key, value, timestampMs);
  const b = builder.finish({ producerId: marker.producerId, producerEpoch: marker.producerEpoch, baseSequence: NO_SEQUENCE }).slice();
  b[Off.attributes + 1] = ATTR_TRANSACTIONAL | ATTR_CONTROL;
  resealBatch(b);
  return b;
}

/**
 * The marker of the control batch at pos (validated), or null when its record is not a
 * well-formed version-0 marker (a reader skips such a control batch, as Kafka's does).
 */
export function readControlMarker(b: Uint8Array, pos: number): TxnMarker | null {
  const [r] = decodeRecords(b, pos);
  if (!r || r.key === null || r.key.length < 4 || r.value === null || r.value.length < 6) return null;
  const version = (r.key[0]! << 8) | r.key[1]!;
  const type = (r.key[2]! << 8) | r.key[3]!;
  if (version !== 0 || (type !== CONTROL_TYPE_ABORT && type !== CONTROL_TYPE_COMMIT)) return null;
  return { producerId: producerIdAt(b, pos), producerEpoch: producerEpochAt(b, pos), committed: type === CONTROL_TYPE_COMMIT, coordinatorEpoch: readInt32(r.value, 2) };
}

/** Builds a finished batch from records in one call (tests, admin tools, small producers). */
export function buildBatch(records: RecordInput[], now = Date.now(), producer?: ProducerFields): Uint8Array {
  const builder = new BatchBuilder();
  for (const r of records) builder.append(r.key, r.value, r.timestamp ?? now, r.headers);
  return builder.finish(producer).slice();
}

/** Builds the object a decoded record becomes (a consumer makes its message type in one step). */
export type RecordFactory<T> = (offset: number, timestamp: number, key: Uint8Array | null, value: Uint8Array | null, headers: RecordHeader[]) => T;

const decodedRecord: RecordFactory<DecodedRecord> = (offset, timestamp, key, value, headers) => ({ offset, timestamp, key, value, headers });

/**
 * Decodes the records of a batch that validateBatch accepted. Keys and values are views
 * into b: copy them if b will be reused. `make` shapes each record (default DecodedRecord).
 */
export function decodeRecords(b: Uint8Array, pos: number, out?: DecodedRecord[]): DecodedRecord[];
export function decodeRecords<T>(b: Uint8Array, pos: number, out: T[], make: RecordFactory<T>): T[];
export function decodeRecords<T>(b: Uint8Array, pos: number, out: T[] = [], make: RecordFactory<T> = decodedRecord as unknown as RecordFactory<T>): T[] {
  const baseOffset = readInt64(b, pos);
  const baseTimestamp = readInt64(b, pos + Off.baseTimestamp);
  const count = readInt32(b, pos + Off.recordCount);
  const end = pos + batchSizeAt(b, pos);
  let p = pos + BATCH_HEADER_BYTES;
  // A tagged batch's records often carry only the batch's sluice-tags header (SPEC §8.7): they
  // share one headers array (like EMPTY_HEADERS, not to be mutated) instead of three objects each.
  let tagsOnly: RecordHeader[] | null = null;
  for (let i = 0; i < count; i++) {
    readVarint(b, p, end);
    p = varintEnd + 1; // skip attributes
    const tsDelta = readVarint(b, p, end);
    const offsetDelta = readVarint(b, varintEnd, end);
    const keyLen = readVarint(b, varintEnd, end);
    p = varintEnd;
    const key = keyLen < 0 ? null : b.subarray(p, p + keyLen);
    p += Math.max(keyLen, 0);
    const valueLen = readVarint(b, p, end);
    p = varintEnd;
    const value = valueLen < 0 ? null : b.subarray(p, p + valueLen);
    p += Math.max(valueLen, 0);
    const headerCount = readVarint(b, p, end);
    p = varintEnd;
    let headers = EMPTY_HEADERS;
    if (headerCount === 1 && tagsOnly !== null) {
      const hk = readVarint(b, p, end);
      const keyAt = varintEnd;
      if (hk === HEADER_TAGS_BYTES.length && bytesEqual(b, keyAt, HEADER_TAGS_BYTES, 0, hk)) {
        const hv = readVarint(b, keyAt + hk, end);
        const valueAt = varintEnd;
        const shared = tagsOnly[0]!.value!;
        if (hv === shared.length && bytesEqual(b, valueAt, shared, 0, hv)) {
          headers = tagsOnly;
          p = valueAt + hv;
        }
      }
    }
    if (headerCount > 0 && headers === EMPTY_HEADERS) {
      headers = [];
      for (let h = 0; h < headerCount; h++) {
        const hk = readVarint(b, p, end);
        p = varintEnd;
        // The batch-level tag header is on every record of a tagged batch: no string decode for it.
        const hkey = hk === HEADER_TAGS_BYTES.length && bytesEqual(b, p, HEADER_TAGS_BYTES, 0, hk) ? HEADER_TAGS : utf8d.decode(b.subarray(p, p + hk));
        p += hk;
        const hv = readVarint(b, p, end);
        p = varintEnd;
        headers.push({ key: hkey, value: hv < 0 ? null : b.subarray(p, p + hv) });
        p += Math.max(hv, 0);
      }
      if (headerCount === 1 && headers[0]!.key === HEADER_TAGS && headers[0]!.value !== null) tagsOnly = headers;
    }
    out.push(make(baseOffset + offsetDelta, baseTimestamp + tsDelta, key, value, headers));
  }
  return out;
}
