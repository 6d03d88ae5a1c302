/**
 * ProducerState: what one partition replica knows of the idempotent and transactional
 * producers that wrote to it (SPEC §7.7; Kafka's ProducerStateManager). Per producerId: the
 * latest epoch, the metadata of its last PRODUCER_BATCHES_KEPT batches (first/last sequence,
 * first/last offset), the largest batch timestamp seen (for expiry), its open transaction's
 * first offset and the last coordinatorEpoch of a marker.
 *
 * Everything is derived from batch headers alone (producerId, epoch, baseSequence,
 * attributes, offsets, maxTimestamp) and, for a control batch, its one marker record: no
 * record of a data batch is ever decoded. The same `apply` runs on the leader after its
 * checks, on a follower for what it fetched, and at load for the batches after the snapshot,
 * so every replica holds the same state for the same log.
 *
 * Invariants:
 * - A producer's batches are in offset order, at most PRODUCER_BATCHES_KEPT, all of its
 *   current epoch (a new epoch forgets the older epoch's batches).
 * - openTxns holds exactly the producers whose txnFirstOffset >= 0, in increasing order of
 *   that offset (insertion order: transactions open in offset order, and a rebuild inserts
 *   in offset order), so the first entry is the oldest open transaction (the LSO, O(1)).
 * - At most producersMax producers (the broker setting producerIdsPerPartitionMax): a new
 *   one evicts the producer with the oldest timestamp that has no open transaction (ties:
 *   smallest id), deterministically, so a follower evicts what its leader evicted. When every
 *   producer has an open transaction the leader refuses the new producer
 *   (CONCURRENT_TRANSACTIONS, retriable: transactions end by commit, abort or timeout); a
 *   follower or a replay never refuses (the leader already decided) and may then exceed it.
 * - An open transaction keeps its producer's epoch until its marker: the leader refuses a
 *   batch of a newer epoch meanwhile (INVALID_TXN_STATE), so the coordinator's marker, at the
 *   transaction's epoch or above, is never refused as older (which would leave it open).
 * - checkLeaderAppend never changes the state: all or nothing per record set, so it returns
 *   the updates and the caller applies them only after the write succeeded.
 */
import { ErrorCode, SluiceError } from '../../protocol/errors.ts';
import { addSequence, ATTR_CONTROL, ATTR_TRANSACTIONAL, attributesAt, baseSequenceAt, NO_PRODUCER_ID, NO_SEQUENCE, Off, producerEpochAt, producerIdAt, readControlMarker, readInt32, readInt64, SEQUENCE_MAX } from '../../protocol/record-batch.ts';
import { assert } from '../assert.ts';

/** Batches remembered per producer, like Kafka's: as many as a producer may have in flight (SPEC §8.5). */
export const PRODUCER_BATCHES_KEPT = 5;
export const PRODUCER_IDS_PER_PARTITION_MAX_DEFAULT = 10_000;
export const PRODUCER_ID_EXPIRATION_MS_DEFAULT = 86_400_000;

export interface ProducerStateConfig {
  /** Producers remembered per partition replica. */
  producerIdsPerPartitionMax: number;
  /** A producer idle this long, with no open transaction, is forgotten (expire()). */
  producerIdExpirationMs: number;
}

export const DEFAULT_PRODUCER_STATE_CONFIG: ProducerStateConfig = {
  producerIdsPerPartitionMax: PRODUCER_IDS_PER_PARTITION_MAX_DEFAULT,
  producerIdExpirationMs: PRODUCER_ID_EXPIRATION_MS_DEFAULT,
};

export interface BatchMeta {
  firstSeq: number;
  lastSeq: number;
  firstOffset: number;
  lastOffset: number;
}

export interface ProducerEntry {
  producerId: number;
  epoch: number;
  /** Oldest first, at most PRODUCER_BATCHES_KEPT, of the current epoch. */
  batches: BatchMeta[];
  /** Largest maxTimestamp of its batches: a time every replica agrees on (not the local clock). */
  lastTimestampMs: number;
  /** First offset of its open transaction on this partition, -1 when none is open. */
  txnFirstOffset: number;
  /** coordinatorEpoch of the last marker for this producer, -1 before any. */
  coordinatorEpoch: number;
}

/** Attribute bits of a transaction marker (SPEC §8.6); a control batch without bit 4 is a delayed-delivery one. */
const TXN_MARKER_BITS = ATTR_CONTROL | ATTR_TRANSACTIONAL;

/** The header fields of one batch, as apply() and the leader's checks need them. */
export interface BatchHeader {
  producerId: number;
  epoch: number;
  baseSequence: number;
  attributes: number;
  firstOffset: number;
  lastOffset: number;
  /** lastOffset - firstOffset as produced (lastOffsetDelta): the sequence span. */
  lastOffsetDelta: number;
  maxTimestampMs: number;
  /** Control batches only: the marker's type and coordinatorEpoch (null when unreadable: skipped, like Kafka). */
  marker: { committed: boolean; coordinatorEpoch: number } | null;
}

/**
 * The header of the (validated) batch at b[pos]; for a control batch the whole batch must be
 * in b (its marker record is read: one small record, never a data batch's).
 */
export function batchHeaderAt(b: Uint8Array, pos: number): BatchHeader {
  const attributes = attributesAt(b, pos);
  const firstOffset = readInt64(b, pos + Off.baseOffset);
  const lastOffsetDelta = readInt32(b, pos + Off.lastOffsetDelta);
  let marker: BatchHeader['marker'] = null;
  // Only a transaction marker (control and transactional bits) holds a marker record; a
  // delayed-delivery wrapper (control bit alone, SPEC §8.6 type 2) is the producer's data batch.
  if ((attributes & TXN_MARKER_BITS) === TXN_MARKER_BITS) {
    const m = readControlMarker(b, pos);
    if (m !== null) marker = { committed: m.committed, coordinatorEpoch: m.coordinatorEpoch };
  }
  return {
    producerId: producerIdAt(b, pos),
    epoch: producerEpochAt(b, pos),
    baseSequence: baseSequenceAt(b, pos),
    attributes,
    firstOffset,
    lastOffset: firstOffset + lastOffsetDelta,
    lastOffsetDelta,
    maxTimestampMs: readInt64(b, pos + Off.maxTimestamp),
    marker,
  };
}

/** A transaction that a marker closed: what the aborted-transaction index records. */
export interface CompletedTxn {
  producerId: number;
  firstOffset: number;
  /** The marker's offset. */
  lastOffset: number;
  committed: boolean;
}

/** A leader append's verdict: append (the headers, to apply after the write), or a duplicate of a stored batch. */
export type LeaderCheck = { kind: 'append' } | { kind: 'duplicate'; firstOffset: number; lastOffset: number };

export type AppendOrigin = 'client' | 'coordinator';

const APPEND: LeaderCheck = { kind: 'append' };

/** seq is within the 2^30 sequences before `last` (wrapping): an old sequence rather than a future one. */
function isBehind(seq: number, last: number): boolean {
  const d = (last - seq + SEQUENCE_MAX + 1) % (SEQUENCE_MAX + 1);
  return d < 0x4000_0000;
}

function cloneEntry(e: ProducerEntry): ProducerEntry {
  return { ...e, batches: e.batches.slice() };
}

export class ProducerState {
  private readonly producers = new Map<number, ProducerEntry>();
  /** producerId -> first offset of its open transaction; in increasing offset order (see the top). */
  private readonly openTxns = new Map<number, number>();
  config: ProducerStateConfig;

  constructor(config: ProducerStateConfig = DEFAULT_PRODUCER_STATE_CONFIG) {
    this.config = config;
  }

  get size(): number {
    return this.producers.size;
  }

  get(producerId: number): ProducerEntry | undefined {
    return this.producers.get(producerId);
  }

  /** Every entry, in insertion order (snapshots, tests). */
  entries(): ProducerEntry[] {
    return [...this.producers.values()];
  }

  /** First offset of the oldest open transaction, or -1 when none is open. */
  firstUnstableOffset(): number {
    for (const first of this.openTxns.values()) return first;
    return -1;
  }

  get openTransactionCount(): number {
    return this.openTxns.size;
  }

  clear(): void {
    this.producers.clear();
    this.openTxns.clear();
  }

  /**
   * Loads entries (from a snapshot): replaces the whole state. Open transactions are
   * re-inserted in offset order so the invariant holds.
   */
  load(entries: readonly ProducerEntry[]): void {
    this.clear();
    for (const e of entries) this.producers.set(e.producerId, cloneEntry(e));
    const open = entries.filter((e) => e.txnFirstOffset >= 0).sort((a, b) => a.txnFirstOffset - b.txnFirstOffset);
    for (const e of open) this.openTxns.set(e.producerId, e.txnFirstOffset);
  }

  /**
   * The leader's checks of SPEC §6.6 for the producer batches of one record set (headers in
   * record-set order, offsets already assigned). Throws SluiceError; changes nothing. A
   * duplicate is accepted only as the whole record set (one batch).
   */
  checkLeaderAppend(headers: readonly BatchHeader[], origin: AppendOrigin): LeaderCheck {
    // The common case, one batch per record set (a producer's request), allocates nothing.
    if (headers.length === 1) {
      const h = headers[0]!;
      if (h.producerId === NO_PRODUCER_ID) return APPEND;
      const stored = this.producers.get(h.producerId);
      const dup = this.checkBatch(h, stored, origin, 1, 0);
      if (dup !== null) return dup;
      if (stored === undefined) this.checkRoom(1, null);
      return APPEND;
    }
    // Entries as they would be after the earlier batches of this set, copied on first touch.
    const pending = new Map<number, ProducerEntry>();
    let newProducers = 0;
    for (let i = 0; i < headers.length; i++) {
      const h = headers[i]!;
      if (h.producerId === NO_PRODUCER_ID) continue;
      const stored = pending.get(h.producerId) ?? this.producers.get(h.producerId);
      const dup = this.checkBatch(h, stored, origin, headers.length, i);
      if (dup !== null) return dup;
      if (stored === undefined) newProducers++;
      const next = stored === undefined ? this.newEntry(h.producerId) : cloneEntry(stored);
      this.update(next, h);
      pending.set(h.producerId, next);
    }
    if (newProducers > 0) this.checkRoom(newProducers, pending);
    return APPEND;
  }

  /** The checks of one batch against the producer's entry (SPEC §6.6); a duplicate's original offsets, or null to append. */
  private checkBatch(h: BatchHeader, stored: ProducerEntry | undefined, origin: AppendOrigin, setSize: number, i: number): LeaderCheck | null {
    if (stored !== undefined && h.epoch < stored.epoch) {
      throw new SluiceError(ErrorCode.INVALID_PRODUCER_EPOCH, `producer ${h.producerId} epoch ${h.epoch} is older than ${stored.epoch}, the latest this partition has`);
    }
    if (stored !== undefined && stored.txnFirstOffset >= 0 && h.epoch > stored.epoch) {
      // A coordinator ends a transaction (its markers, at the epoch it holds or its abort's
      // bump) before its producer gets a newer epoch, so this batch is no producer's legitimate
      // one. Taken, it would raise the partition's epoch above the coordinator's: the marker
      // would be refused as older, and the transaction never end here.
      throw new SluiceError(ErrorCode.INVALID_TXN_STATE, `producer ${h.producerId} has a transaction open on this partition since offset ${stored.txnFirstOffset} at epoch ${stored.epoch}; a batch of epoch ${h.epoch} must wait for its marker`);
    }
    if (origin === 'client') {
      const firstSeq = h.baseSequence;
      if (stored === undefined) {
        if (firstSeq !== 0) throw new SluiceError(ErrorCode.UNKNOWN_PRODUCER_ID, `this partition has no state for producer ${h.producerId} (new, expired or deleted) and its batch starts at sequence ${firstSeq}, not 0`);
      } else if (h.epoch > stored.epoch || stored.batches.length === 0) {
        if (firstSeq !== 0) throw new SluiceError(ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER, `producer ${h.producerId} epoch ${h.epoch}: the first batch of an epoch must start at sequence 0, not ${firstSeq}`);
      } else {
        const batches = stored.batches;
        const last = batches[batches.length - 1]!.lastSeq;
        if (firstSeq !== addSequence(last, 1)) {
          const lastSeq = addSequence(firstSeq, h.lastOffsetDelta);
          for (const b of batches) {
            if (b.firstSeq !== firstSeq || b.lastSeq !== lastSeq) continue;
            if (setSize !== 1) throw new SluiceError(ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER, `producer ${h.producerId}: batch ${i} (sequences ${firstSeq}..${lastSeq}) duplicates one stored at offset ${b.firstOffset}, in a record set of ${setSize} batches`);
            return { kind: 'duplicate', firstOffset: b.firstOffset, lastOffset: b.lastOffset };
          }
          const oldest = batches[0]!.firstSeq;
          if (isBehind(firstSeq, last) && firstSeq !== oldest && isBehind(firstSeq, oldest)) {
            throw new SluiceError(ErrorCode.DUPLICATE_SEQUENCE_NUMBER, `producer ${h.producerId}: sequence ${firstSeq} is older than the ${batches.length} batches this partition remembers (from ${oldest})`);
          }
          throw new SluiceError(ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER, `producer ${h.producerId} epoch ${h.epoch}: expected sequence ${addSequence(last, 1)}, got ${firstSeq}`);
        }
      }
    }
    if ((h.attributes & ATTR_TRANSACTIONAL) === 0 && stored !== undefined && stored.txnFirstOffset >= 0) {
      throw new SluiceError(ErrorCode.INVALID_TXN_STATE, `producer ${h.producerId} has a transaction open on this partition since offset ${stored.txnFirstOffset}: its batches must be transactional until the marker`);
    }
    return null;
  }

  /** At the cap, new producers need as many evictable ones (no open transaction, not in this set); else CONCURRENT_TRANSACTIONS. */
  private checkRoom(newProducers: number, pending: ReadonlyMap<number, ProducerEntry> | null): void {
    const max = this.config.producerIdsPerPartitionMax;
    if (this.producers.size + newProducers <= max) return;
    let evictable = 0;
    for (const e of this.producers.values()) if (e.txnFirstOffset < 0 && !(pending?.has(e.producerId) ?? false)) evictable++;
    if (this.producers.size + newProducers - evictable > max) {
      throw new SluiceError(ErrorCode.CONCURRENT_TRANSACTIONS, `this partition already holds ${this.producers.size} producers (producerIdsPerPartitionMax), each with an open transaction; retry once one ends`);
    }
  }

  /**
   * Applies one stored batch (leader after its write, follower, replay). No checks. Returns the
   * transaction a control batch closed, if it closed one.
   */
  apply(h: BatchHeader): CompletedTxn | null {
    if (h.producerId === NO_PRODUCER_ID) return null;
    let e = this.producers.get(h.producerId);
    if (e === undefined) {
      this.makeRoom();
      e = this.newEntry(h.producerId);
      this.producers.set(h.producerId, e);
    }
    const hadTxn = e.txnFirstOffset;
    this.update(e, h);
    if (hadTxn < 0 && e.txnFirstOffset >= 0) this.openTxns.set(e.producerId, e.txnFirstOffset);
    if (hadTxn >= 0 && e.txnFirstOffset < 0) {
      this.openTxns.delete(e.producerId);
      return { producerId: e.producerId, firstOffset: hadTxn, lastOffset: h.firstOffset, committed: h.marker!.committed };
    }
    return null;
  }

  /**
   * Forgets producers idle (by batch timestamps) for producerIdExpirationMs with no open
   * transaction. Returns how many were removed.
   */
  expire(nowMs: number): number {
    let removed = 0;
    for (const [id, e] of this.producers) {
      if (e.txnFirstOffset < 0 && nowMs - e.lastTimestampMs >= this.config.producerIdExpirationMs) {
        this.producers.delete(id);
        removed++;
      }
    }
    return removed;
  }

  private newEntry(producerId: number): ProducerEntry {
    return { producerId, epoch: -1, batches: [], lastTimestampMs: -1, txnFirstOffset: -1, coordinatorEpoch: -1 };
  }

  /** The state change of one batch on one entry (shared by the checks' preview and apply). */
  private update(e: ProducerEntry, h: BatchHeader): void {
    if (h.epoch > e.epoch) {
      e.epoch = h.epoch;
      e.batches = [];
    }
    if (h.maxTimestampMs > e.lastTimestampMs) e.lastTimestampMs = h.maxTimestampMs;
    if ((h.attributes & TXN_MARKER_BITS) === TXN_MARKER_BITS) {
      // A marker ends whatever transaction is open (an unreadable one ends it too: its
      // type is unknown, but the coordinator wrote it to end the transaction).
      e.txnFirstOffset = -1;
      if (h.marker !== null && h.marker.coordinatorEpoch > e.coordinatorEpoch) e.coordinatorEpoch = h.marker.coordinatorEpoch;
      return;
    }
    if (h.baseSequence !== NO_SEQUENCE) {
      e.batches.push({ firstSeq: h.baseSequence, lastSeq: addSequence(h.baseSequence, h.lastOffsetDelta), firstOffset: h.firstOffset, lastOffset: h.lastOffset });
      if (e.batches.length > PRODUCER_BATCHES_KEPT) e.batches.shift();
    }
    if ((h.attributes & ATTR_TRANSACTIONAL) !== 0 && e.txnFirstOffset < 0) e.txnFirstOffset = h.firstOffset;
    assert(e.batches.length <= PRODUCER_BATCHES_KEPT, 'producer batches exceed the window');
  }

  /** Before adding a producer at the cap: evict the oldest idle one without an open transaction, if any. */
  private makeRoom(): void {
    if (this.producers.size < this.config.producerIdsPerPartitionMax) return;
    let victim: ProducerEntry | undefined;
    for (const e of this.producers.values()) {
      if (e.txnFirstOffset >= 0) continue;
      if (victim === undefined || e.lastTimestampMs < victim.lastTimestampMs || (e.lastTimestampMs === victim.lastTimestampMs && e.producerId < victim.producerId)) victim = e;
    }
    if (victim !== undefined) this.producers.delete(victim.producerId);
  }
}
