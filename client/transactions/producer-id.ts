/**
 * The producer's identity: producerId and producerEpoch from InitProducerId (SPEC §6.19).
 * An idempotent producer asks any broker; a transactional one its coordinator (the caller
 * passes the connection to use). `bump()` keeps the id and raises the epoch (KIP-360), after
 * which every partition's sequences start again at 0 (SPEC §8.5).
 *
 * Invariants:
 *  - `producerId`/`producerEpoch` are -1 until the first successful init, then >= 0;
 *  - at most one InitProducerId is outstanding (`pending`); callers share its promise;
 *  - `unsupported` is set only when the broker does not know the API (UNKNOWN_API /
 *    UNSUPPORTED_VERSION) and idempotence was not asked for explicitly: the producer then
 *    sends plain batches, as before idempotence existed.
 */
import { ApiKey } from '../../protocol/api-keys.ts';
import type { InitProducerIdRequest, InitProducerIdResponse } from '../../protocol/apis/init-producer-id.ts';
import { ErrorCode, SluiceError } from '../../protocol/errors.ts';
import type { Connection } from '../connection.ts';
import { isFencingCode, ProducerFencedError } from './errors.ts';

export class ProducerId {
  producerId = -1;
  producerEpoch = -1;
  unsupported = false;
  private pending: Promise<void> | null = null;

  get ready(): boolean {
    return this.producerId >= 0 || this.unsupported;
  }

  /**
   * One InitProducerId on `conn`: keepEpoch = false asks for a fresh identity (-1/-1), true
   * bumps the current one. Throws the broker's error (a ProducerFencedError when fenced).
   */
  request(conn: Connection, opts: { transactionalId: string | null; transactionTimeoutMs: number; bump: boolean; requestTimeoutMs: number }): Promise<void> {
    if (this.pending) return this.pending;
    const req: InitProducerIdRequest = {
      transactionalId: opts.transactionalId,
      transactionTimeoutMs: opts.transactionalId === null ? 0 : opts.transactionTimeoutMs,
      producerId: opts.bump ? this.producerId : -1,
      producerEpoch: opts.bump ? this.producerEpoch : -1,
    };
    const p = conn.send<InitProducerIdResponse>(ApiKey.INIT_PRODUCER_ID, req, [], true, opts.requestTimeoutMs).then((res) => {
      const r = res.control;
      if (r.errorCode !== ErrorCode.NONE) {
        const detail = `InitProducerId${opts.transactionalId === null ? '' : ` for ${opts.transactionalId}`}${r.errorMessage ? `: ${r.errorMessage}` : ''}`;
        if (isFencingCode(r.errorCode)) throw new ProducerFencedError(r.errorCode as ErrorCode, detail);
        throw new SluiceError(r.errorCode as ErrorCode, detail);
      }
      if (!(r.producerId >= 0) || !(r.producerEpoch >= 0)) throw new SluiceError(ErrorCode.UNKNOWN_SERVER_ERROR, `InitProducerId answered producerId ${r.producerId}, epoch ${r.producerEpoch}`);
      this.producerId = r.producerId;
      this.producerEpoch = r.producerEpoch;
    });
    this.pending = p;
    p.then(() => { this.pending = null; }, () => { this.pending = null; });
    return p;
  }
}

/** The broker does not implement InitProducerId (an older broker). */
export function isUnsupportedApi(err: unknown): boolean {
  return err instanceof SluiceError && (err.code === ErrorCode.UNKNOWN_API || err.code === ErrorCode.UNSUPPORTED_VERSION);
}
