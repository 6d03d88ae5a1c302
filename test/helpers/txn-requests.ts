/**
 * The transaction APIs sent raw over a protocol Connection, for tests of the coordinator
 * (the client's transactional producer is engineer C's; these tests check the broker side).
 */
import { ApiKey } from '../../protocol/api-keys.ts';
import type { InitProducerIdRequest, InitProducerIdResponse } from '../../protocol/apis/init-producer-id.ts';
import type { Connection } from '../../protocol/connection.ts';

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
