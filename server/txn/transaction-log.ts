/**
 * The `__transaction_state` topic (SPEC §7.6): one record per transactional id, the newest
 * winning (compacted). Key: MessagePack ["txn", transactionalId]; value: MessagePack map
 * { producerId, producerEpoch, timeoutMs, state, partitions: [{ topic, partitions }],
 * startMs, updateMs } with keys in that order and shortest encodings, so that one id's key is
 * always the same bytes (compaction compares keys byte for byte).
 *
 * Invariants:
 * - decodeTxnValue accepts exactly what encodeTxnValue can produce (types, ranges, state
 *   names, at most TXN_PARTITIONS_MAX partitions); anything else is a TxnRecordError, never
 *   another exception, so a coordinator replaying a damaged or foreign record skips it.
 * - A key whose first element is not "txn" is reserved for later record types: readers skip it.
 */
import { Decoder, Encoder } from '@msgpack/msgpack';
import { partitionForKey } from '../../protocol/murmur2.ts';
import { TXN_STATES, type TxnMetadata, type TxnState, type TxnTopicPartitions } from './transaction-state.ts';

export const TXN_STATE_TOPIC = '__transaction_state';
export const TXN_STATE_TOPIC_PARTITIONS = 8;
export const TXN_STATE_TOPIC_CONFIG = {
  'cleanup.policy': 'compact',
  'flush.before.ack': 'true',
  'segment.bytes': String(64 * 1024 * 1024),
};
/** Partitions in one transaction (SPEC §6.20); more are refused when added. */
export const TXN_PARTITIONS_MAX = 10_000;
/** Counted in UTF-8 bytes, as every length limit of SPEC.md is (§1.1). */
export const TRANSACTIONAL_ID_BYTES_MAX = 249;
const TOPIC_NAME_BYTES_MAX = 249;
const PRODUCER_EPOCH_MAX = 32767;

const utf8 = new TextEncoder();
const msgpack = new Encoder();
const unpack = new Decoder();

export class TxnRecordError extends Error {
  override name = 'TxnRecordError';
}

export function txnStatePartitionFor(transactionalId: string): number {
  return partitionForKey(utf8.encode(transactionalId), TXN_STATE_TOPIC_PARTITIONS);
}

export function encodeTxnKey(transactionalId: string): Uint8Array {
  return msgpack.encode(['txn', transactionalId]);
}

export function encodeTxnValue(m: TxnMetadata): Uint8Array {
  return msgpack.encode({
    producerId: m.producerId,
    producerEpoch: m.producerEpoch,
    timeoutMs: m.timeoutMs,
    state: m.state,
    partitions: m.partitions.map((t) => ({ topic: t.topic, partitions: t.partitions })),
    startMs: m.startMs,
    updateMs: m.updateMs,
  });
}

/** The transactional id of a `__transaction_state` key, or null for a key of another kind. */
export function decodeTxnKey(key: Uint8Array): string | null {
  let k: unknown;
  try {
    k = unpack.decode(key);
  } catch (e) {
    throw new TxnRecordError(`transaction key is not MessagePack: ${(e as Error).message}`);
  }
  if (!Array.isArray(k) || k[0] !== 'txn') return null;
  if (k.length !== 2 || typeof k[1] !== 'string' || k[1].length === 0 || utf8.encode(k[1]).length > TRANSACTIONAL_ID_BYTES_MAX) throw new TxnRecordError('transaction key must be ["txn", transactionalId]');
  return k[1];
}

function int(v: unknown, what: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) throw new TxnRecordError(`${what} must be an integer ${min}…${max}, got ${typeof v === 'number' ? v : typeof v}`);
  return v;
}

export function decodeTxnValue(value: Uint8Array): TxnMetadata {
  let v: unknown;
  try {
    v = unpack.decode(value);
  } catch (e) {
    throw new TxnRecordError(`transaction value is not MessagePack: ${(e as Error).message}`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v) || v instanceof Uint8Array) throw new TxnRecordError('transaction value must be a map');
  const o = v as Record<string, unknown>;
  const state = o.state;
  if (typeof state !== 'string' || !(TXN_STATES as readonly string[]).includes(state)) throw new TxnRecordError(`unknown transaction state ${JSON.stringify(state)}`);
  if (!Array.isArray(o.partitions)) throw new TxnRecordError('partitions must be an array');
  const partitions: TxnTopicPartitions[] = [];
  const topics = new Set<string>();
  let count = 0;
  for (const t of o.partitions as unknown[]) {
    if (typeof t !== 'object' || t === null || Array.isArray(t)) throw new TxnRecordError('a partitions entry must be a map');
    const { topic, partitions: ps } = t as Record<string, unknown>;
    if (typeof topic !== 'string' || topic.length === 0 || utf8.encode(topic).length > TOPIC_NAME_BYTES_MAX || topics.has(topic)) throw new TxnRecordError('a partitions entry needs a distinct topic name of 1-249 bytes');
    if (!Array.isArray(ps)) throw new TxnRecordError(`partitions of ${topic} must be an array`);
    count += ps.length;
    if (count > TXN_PARTITIONS_MAX) throw new TxnRecordError(`more than ${TXN_PARTITIONS_MAX} partitions`);
    topics.add(topic);
    partitions.push({ topic, partitions: ps.map((p) => int(p, 'partition', 0, 2 ** 31 - 1)) });
  }
  const m: TxnMetadata = {
    producerId: int(o.producerId, 'producerId', 0),
    producerEpoch: int(o.producerEpoch, 'producerEpoch', 0, PRODUCER_EPOCH_MAX),
    timeoutMs: int(o.timeoutMs, 'timeoutMs', 1, 2 ** 31 - 1),
    state: state as TxnState,
    partitions,
    startMs: int(o.startMs, 'startMs', -1),
    updateMs: int(o.updateMs, 'updateMs', 0),
  };
  if (m.state === 'empty' && count > 0) throw new TxnRecordError('an empty transaction state has no partitions');
  return m;
}
