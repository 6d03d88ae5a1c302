/**
 * The transaction APIs sent raw over a protocol Connection, for tests of the coordinator
 * (the client's transactional producer is engineer C's; these tests check the broker side).
 */
import { ApiKey } from '../../protocol/api-keys.ts';
import type { InitProducerIdRequest, InitProducerIdResponse } from '../../protocol/apis/init-producer-id.ts';
import type { Connection } from '../../protocol/connection.ts';
import type { AddOffsetsToTxnResponse } from '../../protocol/apis/add-offsets-to-txn.ts';
import type { AddPartitionsToTxnResponse } from '../../protocol/apis/add-partitions-to-txn.ts';
import type { EndTxnResponse } from '../../protocol/apis/end-txn.ts';
import type { FindCoordinatorResponse } from '../../protocol/apis/find-coordinator.ts';
import type { OffsetFetchResponse } from '../../protocol/apis/offset-fetch.ts';
import type { TxnOffsetCommitRequest, TxnOffsetCommitResponse } from '../../protocol/apis/txn-offset-commit.ts';
import { ErrorCode } from '../../protocol/errors.ts';

export async function initProducerId(conn: Connection, req: Partial<InitProducerIdRequest> = {}): Promise<InitProducerIdResponse> {
  const full: InitProducerIdRequest = { transactionalId: null, transactionTimeoutMs: 0, producerId: -1, producerEpoch: -1, ...req };
  return (await conn.send<InitProducerIdResponse>(ApiKey.INIT_PRODUCER_ID, full)).control;
}

/** n InitProducerId without a transactionalId, at most `concurrency` in flight; returns the ids. */
export async function newProducerIds(conn: Connection, n: number, concurrency = 200): Promise<number[]> {
  const ids: number[] = [];
  for (let i = 0; i < n; i += concurrency) {
    const batch = await Promise.all(Array.from({ length: Math.min(concurrency, n - i) }, () => initProducerId(conn)));
    for (const r of batch) {
      if (r.errorCode !== 0) throw new Error(`InitProducerId failed: ${r.errorCode} ${r.errorMessage}`);
      if (r.producerEpoch !== 0) throw new Error(`a new producer id came with epoch ${r.producerEpoch}`);
      ids.push(r.producerId);
    }
  }
  return ids;
}

export interface TxnProducer {
  transactionalId: string;
  producerId: number;
  producerEpoch: number;
}

export async function findTxnCoordinator(conn: Connection, transactionalId: string): Promise<FindCoordinatorResponse> {
  return (await conn.send<FindCoordinatorResponse>(ApiKey.FIND_COORDINATOR, { key: transactionalId, keyType: 'transaction' })).control;
}

export async function initTxnProducer(conn: Connection, transactionalId: string, transactionTimeoutMs = 60_000, current?: { producerId: number; producerEpoch: number }): Promise<InitProducerIdResponse> {
  return initProducerId(conn, { transactionalId, transactionTimeoutMs, producerId: current?.producerId ?? -1, producerEpoch: current?.producerEpoch ?? -1 });
}

export async function addPartitionsToTxn(conn: Connection, p: TxnProducer, topics: Array<{ topic: string; partitions: number[] }>): Promise<AddPartitionsToTxnResponse> {
  return (await conn.send<AddPartitionsToTxnResponse>(ApiKey.ADD_PARTITIONS_TO_TXN, { ...p, topics })).control;
}

export async function addOffsetsToTxn(conn: Connection, p: TxnProducer, groupId: string): Promise<AddOffsetsToTxnResponse> {
  return (await conn.send<AddOffsetsToTxnResponse>(ApiKey.ADD_OFFSETS_TO_TXN, { ...p, groupId })).control;
}

export async function endTxn(conn: Connection, p: TxnProducer, committed: boolean): Promise<EndTxnResponse> {
  return (await conn.send<EndTxnResponse>(ApiKey.END_TXN, { ...p, committed })).control;
}

/** Whether the broker handles WriteTxnMarkers (engineer A's handler); an empty request tells. */
export async function supportsWriteTxnMarkers(conn: Connection): Promise<boolean> {
  try {
    await conn.send(ApiKey.WRITE_TXN_MARKERS, { markers: [] });
    return true;
  } catch (e) {
    if ((e as { code?: number }).code === ErrorCode.UNKNOWN_API) return false;
    throw e;
  }
}

export async function txnOffsetCommit(conn: Connection, p: TxnProducer, groupId: string, topics: TxnOffsetCommitRequest['topics'], member = { memberId: '', memberEpoch: -1 }): Promise<TxnOffsetCommitResponse> {
  return (await conn.send<TxnOffsetCommitResponse>(ApiKey.TXN_OFFSET_COMMIT, { ...p, groupId, ...member, topics } satisfies TxnOffsetCommitRequest)).control;
}

export async function offsetFetch(conn: Connection, groupId: string, topics: Array<{ topic: string; partitions: number[] }>, requireStable: boolean): Promise<OffsetFetchResponse> {
  return (await conn.send<OffsetFetchResponse>(ApiKey.OFFSET_FETCH, { groupId, memberId: null, memberEpoch: -1, topics, requireStable })).control;
}
