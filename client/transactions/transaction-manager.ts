/**
 * The transactional producer's side of a transaction (SPEC §6.19-6.24, §7.6): InitProducerId
 * at the transactional id's coordinator, AddPartitionsToTxn before a partition's first batch
 * of a transaction, AddOffsetsToTxn + TxnOffsetCommit for a consumer group's offsets, EndTxn.
 *
 * States: 'uninitialized' -> init() -> 'ready' -> begin() -> 'in-transaction' -> commit() /
 * abort() -> 'ready'. An error after which abort() works ('abortable': a batch or the offsets
 * were refused) keeps the transaction open for abort() only; a fencing error is 'fatal' (the
 * sender fails everything and the producer refuses new sends).
 *
 * Invariants:
 *  - a partition with records of the transaction is not drained (`txnBlocked`) until
 *    AddPartitionsToTxn answered for it, except onto the connection that request was just
 *    written to, behind it, on a single broker where one succeeded before on that connection
 *    (`pipelineConn`; the broker holds such batches until it answers, SPEC §6.6); requests
 *    are batched (every partition that appeared while one was in flight goes in the next), at
 *    most one in flight;
 *  - EndTxn(commit) is sent only after every batch of the transaction was acknowledged
 *    (flush), and never once a batch of it failed (the transaction is then abortable);
 *  - coordinator calls retry retriable errors (NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE,
 *    CONCURRENT_TRANSACTIONS, timeouts, lost connections) with capped exponential backoff,
 *    finding the coordinator again where it may have moved, for at most `timeoutMs` per call;
 *  - after an abort that left sequence numbers unacknowledged (failed or unsent batches), the
 *    epoch is bumped at the coordinator (InitProducerId with the current id and epoch) and the
 *    sequences start again at 0, so the next transaction is not refused for a gap.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { ApiKey } from '../../protocol/api-keys.ts';
import type { AddOffsetsToTxnRequest, AddOffsetsToTxnResponse } from '../../protocol/apis/add-offsets-to-txn.ts';
import type { AddPartitionsToTxnRequest, AddPartitionsToTxnResponse } from '../../protocol/apis/add-partitions-to-txn.ts';
import type { EndTxnRequest, EndTxnResponse } from '../../protocol/apis/end-txn.ts';
import type { FindCoordinatorRequest, FindCoordinatorResponse } from '../../protocol/apis/find-coordinator.ts';
import type { TxnOffsetCommitRequest, TxnOffsetCommitResponse } from '../../protocol/apis/txn-offset-commit.ts';
import { ErrorCode, SluiceError } from '../../protocol/errors.ts';
import type { Cluster } from '../cluster.ts';
import { ConnectionError, type Connection } from '../connection.ts';
import type { PartitionQueue, RecordAccumulator } from '../record-accumulator.ts';
import { isRetriable, type Sender } from '../sender.ts';
import { isFencingCode, ProducerFencedError, TransactionAbortableError } from './errors.ts';
import type { ProducerId } from './producer-id.ts';

export type TransactionState = 'uninitialized' | 'ready' | 'in-transaction' | 'committing' | 'aborting' | 'fatal';

/** The consumer group a transaction commits offsets for, with the member that read the records (KIP-447). */
export interface GroupMetadata {
  groupId: string;
  memberId: string;
  memberEpoch: number;
}

/** What sendOffsets accepts: the metadata itself, or anything with a groupMetadata() method (a group consumer). */
export type GroupMetadataSource = GroupMetadata | { groupMetadata(): GroupMetadata };

/** An offset to commit: the NEXT offset to read (last processed + 1). */
export interface TxnOffset {
  topic: string;
  partition: number;
  offset: number;
  metadata?: string | null;
}

export interface TransactionOptions {
  transactionalId: string;
  transactionTimeoutMs: number;
  requestTimeoutMs: number;
  retryBackoffMs: number;
  retryBackoffMaxMs: number;
  /** Bound of one coordinator call with its retries. */
  timeoutMs: number;
}

/** Group member errors of TxnOffsetCommit: the consumer is no longer a current member; abort. */
const MEMBER_ERRORS: ReadonlySet<number> = new Set([ErrorCode.UNKNOWN_MEMBER_ID, ErrorCode.STALE_MEMBER_EPOCH, ErrorCode.FENCED_MEMBER_EPOCH, ErrorCode.NON_EMPTY_GROUP]);
/** First retry delay after CONCURRENT_TRANSACTIONS (then doubling, capped by retryBackoffMaxMs). */
const CONCURRENT_TXN_BACKOFF_MS = 2;
/** Partitions added in one AddPartitionsToTxn at most; more go in the next request. */
const ADD_PARTITIONS_MAX = 1000;

export class TransactionManager {
  state: TransactionState = 'uninitialized';
  /** Why the open transaction cannot commit (abort() is possible); null when it can. */
  private abortable: Error | null = null;
  /** The coordinator has (or may have) this transaction: EndTxn is needed to end it. */
  private begunAtCoordinator = false;
  /** Sequences of the transaction went unacknowledged: bump the epoch after the abort. */
  private sequenceGap = false;
  private readonly pendingAdd: PartitionQueue[] = [];
  private adding: Promise<void> | null = null;
  /**
   * The connection an AddPartitionsToTxn last succeeded on. Only there, and only with a single
   * broker (which then coordinates and leads everything), do a transaction's first batches of a
   * partition follow its AddPartitionsToTxn before the answer: that broker holds them until it
   * answers and refuses them unless the partition was added (SPEC §6.6). Not on a new
   * connection (a restarted broker may still be loading its transaction state), and not in a
   * cluster (a leader that is not the coordinator could take them on trust).
   */
  private pipelineConn: Connection | null = null;
  private readonly coordinators = new Map<string, { host: string; port: number }>();
  private initializing: Promise<void> | null = null;
  /** The producer closed: coordinator calls stop retrying. */
  private closed = false;

  constructor(
    private readonly cluster: Cluster,
    private readonly acc: RecordAccumulator,
    private readonly sender: Sender,
    private readonly pid: ProducerId,
    private readonly opts: TransactionOptions,
    /** Seals every open batch and resolves when every sealed one completed. */
    private readonly flush: () => Promise<void>,
  ) {
    sender.onTxnBatchFailed = (err) => {
      this.sequenceGap = true;
      if (this.abortable === null) this.abortable = err instanceof TransactionAbortableError || err instanceof ProducerFencedError ? err : new TransactionAbortableError((err as SluiceError).code ?? ErrorCode.UNKNOWN_SERVER_ERROR, `a batch of the transaction failed: ${err.message}`);
    };
  }

  /** Stops coordinator retries (the producer is closing). */
  close(): void {
    this.closed = true;
  }

  get transactionalId(): string {
    return this.opts.transactionalId;
  }

  /** The error a send inside the transaction gets now, or null when it may go ahead. */
  sendRefusal(): Error | null {
    if (this.sender.fatal !== null) return this.sender.fatal;
    if (this.state !== 'in-transaction') return new SluiceError(ErrorCode.INVALID_TXN_STATE, `a transactional producer sends only inside a transaction (begin() or transaction()); state ${this.state}`);
    return this.abortable;
  }

  /** InitProducerId at the coordinator: fences older instances, aborts what they left open. */
  init(): Promise<void> {
    if (this.state !== 'uninitialized') return this.initializing ?? Promise.resolve();
    this.initializing ??= (async () => {
      await this.withCoordinator('InitProducerId', 'transaction', this.opts.transactionalId, async (conn) => {
        await this.pid.request(conn, { transactionalId: this.opts.transactionalId, transactionTimeoutMs: this.opts.transactionTimeoutMs, bump: false, requestTimeoutMs: this.opts.requestTimeoutMs });
        return null;
      });
      this.adoptIdentity(false);
      this.state = 'ready';
    })().catch((e: Error) => {
      this.initializing = null;
      throw this.fatalIfFenced(e);
    });
    return this.initializing;
  }

  begin(): void {
    this.checkNotFatal();
    if (this.state === 'uninitialized') throw new SluiceError(ErrorCode.INVALID_TXN_STATE, 'initTransactions() first');
    if (this.state !== 'ready') throw new SluiceError(ErrorCode.INVALID_TXN_STATE, `cannot begin a transaction in state ${this.state}`);
    this.state = 'in-transaction';
    this.abortable = null;
    this.begunAtCoordinator = false;
    this.sequenceGap = false;
    this.acc.stamp.transactional = true;
    this.acc.onNewTxnPartition = (q) => this.onNewPartition(q);
  }

  // ---- partitions ----------------------------------------------------------------------

  private onNewPartition(q: PartitionQueue): void {
    this.pendingAdd.push(q);
    if (this.adding === null) this.adding = this.addPartitions();
  }

  /** Sends AddPartitionsToTxn for what is pending, until nothing is; unblocks the partitions it added. */
  private async addPartitions(): Promise<void> {
    // Let the records of this turn of the event loop name their partitions first: one request.
    await Promise.resolve();
    while (this.pendingAdd.length > 0) {
      const batch = this.pendingAdd.splice(0, ADD_PARTITIONS_MAX);
      const byTopic = new Map<string, number[]>();
      for (const q of batch) {
        const list = byTopic.get(q.topic.name);
        if (list) list.push(q.partition);
        else byTopic.set(q.topic.name, [q.partition]);
      }
      const req: AddPartitionsToTxnRequest = {
        ...this.ref(),
        topics: [...byTopic].map(([topic, partitions]) => ({ topic, partitions })),
      };
      this.begunAtCoordinator = true;
      // Written: the batches may follow on the same connection (see pipelineConn). Answered,
      // either way: they wait again until the partition is unblocked or the request retried.
      const written = (conn: Connection) => {
        if (conn !== this.pipelineConn || this.cluster.knownBrokerCount !== 1) return;
        for (const q of batch) q.txnPipelineConn = conn;
        this.sender.scheduleDrain();
      };
      const answered = (conn: Connection, ok: boolean) => {
        for (const q of batch) q.txnPipelineConn = null;
        this.pipelineConn = ok ? conn : null;
      };
      try {
        await this.call<AddPartitionsToTxnResponse>('AddPartitionsToTxn', ApiKey.ADD_PARTITIONS_TO_TXN, req, (r) => {
          for (const t of r.topics) for (const p of t.partitions) if (p.errorCode !== ErrorCode.NONE) return new SluiceError(p.errorCode as ErrorCode, `AddPartitionsToTxn ${t.topic}/${p.partition}`);
          return null;
        }, { written, answered });
        for (const q of batch) q.txnBlocked = false;
        this.sender.scheduleDrain();
      } catch (e) {
        const err = this.fatalIfFenced(e as Error);
        if (this.sender.fatal !== null) break;
        // The transaction cannot include these partitions: it can only be aborted. Their
        // batches fail now instead of waiting for an abort.
        const cause = err as SluiceError;
        this.abortable ??= new TransactionAbortableError(cause.code ?? ErrorCode.UNKNOWN_SERVER_ERROR, err.message);
        for (const q of batch) this.acc.failPartitionUnsent(q, this.abortable);
      }
    }
    this.adding = null;
  }

  // ---- offsets ---------------------------------------------------------------------------

  /**
   * Commits `offsets` for the group as part of the transaction: AddOffsetsToTxn at the
   * transaction coordinator, then TxnOffsetCommit at the group's coordinator with the member
   * that read the records (KIP-447). A member that is no longer current makes the
   * transaction abortable (TransactionAbortableError).
   */
  async sendOffsets(source: GroupMetadataSource, offsets: readonly TxnOffset[]): Promise<void> {
    const refusal = this.sendRefusal();
    if (refusal !== null) throw refusal;
    const g = 'groupMetadata' in source && typeof source.groupMetadata === 'function' ? source.groupMetadata() : (source as GroupMetadata);
    if (typeof g?.groupId !== 'string' || g.groupId.length === 0) throw new SluiceError(ErrorCode.INVALID_GROUP_ID, 'sendOffsets needs { groupId, memberId, memberEpoch } or a consumer with groupMetadata()');
    const byTopic = new Map<string, Array<{ partition: number; offset: number; metadata: string | null }>>();
    for (const o of offsets) {
      if (!Number.isInteger(o.offset) || o.offset < 0) throw new SluiceError(ErrorCode.INVALID_COMMIT_OFFSET, `${o.topic}/${o.partition}: offset ${o.offset}`);
      const list = byTopic.get(o.topic) ?? [];
      list.push({ partition: o.partition, offset: o.offset, metadata: o.metadata ?? null });
      byTopic.set(o.topic, list);
    }
    try {
      const add: AddOffsetsToTxnRequest = { ...this.ref(), groupId: g.groupId };
      this.begunAtCoordinator = true;
      await this.call<AddOffsetsToTxnResponse>('AddOffsetsToTxn', ApiKey.ADD_OFFSETS_TO_TXN, add, () => null);
      const commit: TxnOffsetCommitRequest = {
        transactionalId: this.opts.transactionalId,
        groupId: g.groupId,
        producerId: this.pid.producerId,
        producerEpoch: this.pid.producerEpoch,
        memberId: g.memberId ?? '',
        memberEpoch: g.memberEpoch ?? -1,
        topics: [...byTopic].map(([topic, partitions]) => ({ topic, partitions })),
      };
      await this.withCoordinator('TxnOffsetCommit', 'group', g.groupId, async (conn) => {
        const r = (await conn.send<TxnOffsetCommitResponse>(ApiKey.TXN_OFFSET_COMMIT, commit, [], true, this.opts.requestTimeoutMs)).control;
        let code = r.errorCode;
        if (code === ErrorCode.NONE) for (const t of r.topics) for (const p of t.partitions) if (p.errorCode !== ErrorCode.NONE && code === ErrorCode.NONE) code = p.errorCode;
        if (code === ErrorCode.NONE) return null;
        const detail = `TxnOffsetCommit for group ${g.groupId}${r.errorMessage ? `: ${r.errorMessage}` : ''}`;
        if (MEMBER_ERRORS.has(code)) throw new TransactionAbortableError(code as ErrorCode, `${detail} (member ${g.memberId} epoch ${g.memberEpoch} is no longer current)`);
        return this.typed(code, detail);
      });
    } catch (e) {
      const err = this.fatalIfFenced(e as Error);
      if (this.sender.fatal === null) this.abortable ??= err instanceof TransactionAbortableError ? err : new TransactionAbortableError((err as SluiceError).code ?? ErrorCode.UNKNOWN_SERVER_ERROR, err.message);
      throw this.sender.fatal ?? this.abortable!;
    }
  }

  // ---- ending ----------------------------------------------------------------------------

  /** Flushes, waits for every batch, then EndTxn(commit). Throws (and stays open for abort()) if the transaction cannot commit. */
  async commit(): Promise<void> {
    this.checkNotFatal();
    if (this.state !== 'in-transaction') throw new SluiceError(ErrorCode.INVALID_TXN_STATE, `no transaction to commit (state ${this.state})`);
    if (this.abortable !== null) throw this.abortable;
    this.state = 'committing';
    try {
      await this.flush();
      while (this.adding !== null) await this.adding;
      this.checkNotFatal();
      if (this.abortable !== null) throw this.abortable;
      if (this.begunAtCoordinator) await this.endTxn(true);
    } catch (e) {
      const err = this.fatalIfFenced(e as Error);
      if (this.sender.fatal === null) {
        this.state = 'in-transaction';
        this.abortable ??= err instanceof TransactionAbortableError ? err : new TransactionAbortableError((err as SluiceError).code ?? ErrorCode.UNKNOWN_SERVER_ERROR, `commit failed: ${err.message}`);
      }
      throw err;
    }
    this.endLocally();
  }

  /** Fails what was not sent, waits for what is in flight, EndTxn(abort). */
  async abort(): Promise<void> {
    this.checkNotFatal();
    if (this.state !== 'in-transaction') throw new SluiceError(ErrorCode.INVALID_TXN_STATE, `no transaction to abort (state ${this.state})`);
    this.state = 'aborting';
    const aborted = new TransactionAbortableError(ErrorCode.INVALID_TXN_STATE, 'the transaction was aborted before this record was sent');
    try {
      if (this.acc.failAll(aborted) > 0) this.sequenceGap = true;
      await this.flush();
      while (this.adding !== null) await this.adding;
      this.checkNotFatal();
      if (this.begunAtCoordinator) await this.endTxn(false);
      if (this.sequenceGap) {
        await this.withCoordinator('InitProducerId (epoch bump)', 'transaction', this.opts.transactionalId, async (conn) => {
          await this.pid.request(conn, { transactionalId: this.opts.transactionalId, transactionTimeoutMs: this.opts.transactionTimeoutMs, bump: true, requestTimeoutMs: this.opts.requestTimeoutMs });
          return null;
        });
        this.adoptIdentity(true);
      }
    } catch (e) {
      const err = this.fatalIfFenced(e as Error);
      if (this.sender.fatal === null) this.state = 'in-transaction';
      throw err;
    }
    this.endLocally();
  }

  private async endTxn(committed: boolean): Promise<void> {
    const req: EndTxnRequest = { ...this.ref(), committed };
    await this.call<EndTxnResponse>(committed ? 'EndTxn(commit)' : 'EndTxn(abort)', ApiKey.END_TXN, req, () => null);
  }

  private endLocally(): void {
    for (const q of this.acc.partitionQueues()) {
      q.inTxn = false;
      q.txnBlocked = false;
      q.txnPipelineConn = null;
    }
    this.pendingAdd.length = 0;
    this.acc.stamp.transactional = false;
    this.acc.onNewTxnPartition = null;
    this.abortable = null;
    this.begunAtCoordinator = false;
    this.sequenceGap = false;
    this.state = 'ready';
  }

  // ---- plumbing --------------------------------------------------------------------------

  private adoptIdentity(bumped: boolean): void {
    this.acc.stamp.producerId = this.pid.producerId;
    this.acc.stamp.producerEpoch = this.pid.producerEpoch;
    if (bumped) this.acc.renumberAll();
    this.sender.scheduleDrain();
  }

  private ref(): { transactionalId: string; producerId: number; producerEpoch: number } {
    return { transactionalId: this.opts.transactionalId, producerId: this.pid.producerId, producerEpoch: this.pid.producerEpoch };
  }

  private checkNotFatal(): void {
    if (this.sender.fatal !== null) {
      this.state = 'fatal';
      throw this.sender.fatal;
    }
  }

  /** A fencing error makes the producer fatal (every pending send fails with it); returns the error to throw. */
  private fatalIfFenced(err: Error): Error {
    if (err instanceof ProducerFencedError) {
      this.sender.setFatal(err);
      this.state = 'fatal';
      return this.sender.fatal!;
    }
    return err;
  }

  private typed(code: number, detail: string): SluiceError {
    return isFencingCode(code) ? new ProducerFencedError(code as ErrorCode, detail) : new SluiceError(code as ErrorCode, detail);
  }

  /** A request to the transaction coordinator whose answer is { errorCode, errorMessage }; `check` looks further (per-partition codes). */
  private call<T extends { errorCode: number; errorMessage: string | null }>(
    what: string,
    apiKey: number,
    req: unknown,
    check: (r: T) => SluiceError | null,
    hooks?: { written(conn: Connection): void; answered(conn: Connection, ok: boolean): void },
  ): Promise<T> {
    let answer: T | null = null;
    return this.withCoordinator(what, 'transaction', this.opts.transactionalId, async (conn) => {
      let ok = false;
      try {
        const sent = conn.send<T>(apiKey, req, [], true, this.opts.requestTimeoutMs);
        hooks?.written(conn);
        const r = (await sent).control;
        if (r.errorCode !== ErrorCode.NONE) return this.typed(r.errorCode, `${what}${r.errorMessage ? `: ${r.errorMessage}` : ''}`);
        answer = r;
        const err = check(r);
        ok = err === null;
        return err;
      } finally {
        hooks?.answered(conn, ok);
      }
    }).then(() => answer!);
  }

  /**
   * Runs `attempt` on a connection to the coordinator of (keyType, key) until it returns null
   * (success), retrying retriable errors (returned or thrown) with backoff for up to timeoutMs;
   * NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE and lost connections look the coordinator up again.
   */
  private async withCoordinator(what: string, keyType: 'transaction' | 'group', key: string, attempt: (conn: Connection) => Promise<SluiceError | null>): Promise<void> {
    const deadlineMs = Date.now() + this.opts.timeoutMs;
    const cacheKey = `${keyType}:${key}`;
    for (let n = 0; ; n++) {
      let err: Error | null;
      try {
        const conn = await this.coordinatorConnection(keyType, key);
        err = await attempt(conn);
        if (err === null) return;
      } catch (e) {
        err = e as Error;
      }
      if (err instanceof ConnectionError || (err instanceof SluiceError && (err.code === ErrorCode.NOT_COORDINATOR || err.code === ErrorCode.COORDINATOR_NOT_AVAILABLE || err.code === ErrorCode.REQUEST_TIMED_OUT))) {
        this.coordinators.delete(cacheKey);
      }
      if (!isRetriable(err) || err instanceof TransactionAbortableError || this.closed) throw err;
      const now = Date.now();
      if (now >= deadlineMs) throw new SluiceError(ErrorCode.REQUEST_TIMED_OUT, `${what} did not succeed within ${this.opts.timeoutMs} ms (last error: ${err.message})`);
      this.sender.noteRetry(`${what}: ${err.message}`);
      // CONCURRENT_TRANSACTIONS: the previous transaction's markers are being written, which
      // takes a few ms; the usual backoff would cost each transaction 100 ms (Kafka also
      // retries AddPartitionsToTxn faster here).
      const firstMs = err instanceof SluiceError && err.code === ErrorCode.CONCURRENT_TRANSACTIONS ? CONCURRENT_TXN_BACKOFF_MS : this.opts.retryBackoffMs;
      const backoff = Math.min(this.opts.retryBackoffMaxMs, firstMs * 2 ** Math.min(n, 30));
      await delay(Math.min(deadlineMs - now, Math.max(1, Math.round(backoff * (0.8 + 0.4 * Math.random())))));
    }
  }

  private async coordinatorConnection(keyType: 'transaction' | 'group', key: string): Promise<Connection> {
    const cacheKey = `${keyType}:${key}`;
    let c = this.coordinators.get(cacheKey);
    if (!c) {
      const req: FindCoordinatorRequest = { key, keyType };
      const r = (await (await this.cluster.anyConnection()).send<FindCoordinatorResponse>(ApiKey.FIND_COORDINATOR, req, [], true, this.opts.requestTimeoutMs)).control;
      if (r.errorCode !== ErrorCode.NONE) throw new SluiceError(r.errorCode as ErrorCode, `FindCoordinator ${keyType} ${key}${r.errorMessage ? `: ${r.errorMessage}` : ''}`);
      c = { host: r.host, port: r.port };
      this.coordinators.set(cacheKey, c);
    }
    return this.cluster.connectionTo(c.host, c.port);
  }
}
