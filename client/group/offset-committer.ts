/**
 * Commits a group member's offsets: synchronous commits (awaited, retried until a deadline),
 * asynchronous ones (one attempt, result to a callback), and auto-commit on an interval.
 *
 * Invariants:
 * - Commits reach the coordinator in the order they were made: every commit waits for the
 *   previous one (a chain), so an older async commit can never overwrite a newer one.
 * - A commit carries the member's CURRENT memberId/epoch (read when it is sent). On
 *   STALE_MEMBER_EPOCH it is resent with the newest epoch from the heartbeat, at most
 *   STALE_EPOCH_RETRIES_MAX times, a backoff apart (the heartbeat may not have landed yet).
 * - UNKNOWN_MEMBER_ID / FENCED_MEMBER_EPOCH: the member is a zombie; onFenced() is called and
 *   the commit fails with that code. Nothing is retried.
 * - Auto-commit only moves a partition's committed offset forward; explicit commits commit
 *   exactly what they are given.
 * - An offset is "the next offset to read" (Kafka's convention): last processed + 1.
 */
import type { OffsetCommitRequest } from '../../protocol/apis/offset-commit.ts';
import { ErrorCode, SluiceError } from '../../protocol/errors.ts';
import { isCoordinatorError, isFencedCode, type GroupTransport } from './coordinator.ts';
import { tpKey } from './membership.ts';

export interface TopicPartitionOffsetCommit { topic: string; partition: number; offset: number }

export interface OffsetCommitterOptions {
  groupId: string;
  transport: GroupTransport;
  /** The member's identity now (read at each send). */
  member: () => { memberId: string; memberEpoch: number };
  onFenced: () => void;
  /** Sync commits retry retriable failures until this much time passed. Default 30000. */
  commitTimeoutMs?: number;
  retryBackoffMs?: number;
}

export type CommitCallback = (err: Error | null, offsets: TopicPartitionOffsetCommit[]) => void;

export const STALE_EPOCH_RETRIES_MAX = 5;

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export class OffsetCommitter {
  private readonly committed = new Map<string, number>();
  private chain: Promise<unknown> = Promise.resolve();
  private autoTimer: NodeJS.Timeout | null = null;
  private autoOn = false;
  private readonly commitTimeoutMs: number;
  private readonly retryBackoffMs: number;

  constructor(private readonly opts: OffsetCommitterOptions) {
    this.commitTimeoutMs = opts.commitTimeoutMs ?? 30_000;
    this.retryBackoffMs = opts.retryBackoffMs ?? 100;
  }

  /** The offset this member last committed successfully for the partition, or undefined. */
  lastCommitted(topic: string, partition: number): number | undefined {
    return this.committed.get(tpKey(topic, partition));
  }

  /** Forget what was committed for partitions (they left the member). */
  forget(partitions: ReadonlyArray<{ topic: string; partition: number }>): void {
    for (const tp of partitions) this.committed.delete(tpKey(tp.topic, tp.partition));
  }

  /** Commits and resolves when the coordinator stored the offsets (durable); retries until commitTimeoutMs. */
  commitSync(offsets: readonly TopicPartitionOffsetCommit[]): Promise<void> {
    return this.enqueue(offsets, true);
  }

  /** Commits without waiting; one attempt (plus stale-epoch resends). The callback gets the outcome. */
  commitAsync(offsets: readonly TopicPartitionOffsetCommit[], cb?: CommitCallback): void {
    const list = [...offsets];
    this.enqueue(list, false).then(
      () => cb?.(null, list),
      (e: Error) => cb?.(e, list),
    );
  }

  /**
   * The offsets of `candidates` that are ahead of what was committed: what auto-commit
   * (interval, revocation, close) sends.
   */
  forwardOnly(candidates: readonly TopicPartitionOffsetCommit[]): TopicPartitionOffsetCommit[] {
    return candidates.filter((c) => {
      const prev = this.committed.get(tpKey(c.topic, c.partition));
      return prev === undefined || c.offset > prev;
    });
  }

  /** Every intervalMs, commits source()'s offsets that moved forward (async; errors to onError). */
  startAuto(intervalMs: number, source: () => TopicPartitionOffsetCommit[], onError: (e: Error) => void): void {
    this.stopAuto();
    this.autoOn = true;
    const tick = async (): Promise<void> => {
      this.autoTimer = null;
      const offsets = this.forwardOnly(source());
      if (offsets.length > 0) {
        try {
          await this.enqueue(offsets, false);
        } catch (e) {
          onError(e as Error);
        }
      }
      if (this.autoOn) this.autoTimer = setTimeout(() => void tick(), intervalMs);
    };
    this.autoTimer = setTimeout(() => void tick(), intervalMs);
  }

  stopAuto(): void {
    this.autoOn = false;
    if (this.autoTimer) clearTimeout(this.autoTimer);
    this.autoTimer = null;
  }

  /** Resolves when every commit made so far has finished. */
  async drain(): Promise<void> {
    await this.chain.catch(() => {});
  }

  private enqueue(offsets: readonly TopicPartitionOffsetCommit[], retry: boolean): Promise<void> {
    const list = [...offsets];
    for (const o of list) {
      if (!Number.isSafeInteger(o.offset) || o.offset < 0) return Promise.reject(new TypeError(`offset to commit must be an integer >= 0, not ${o.offset} (${o.topic}/${o.partition})`));
    }
    if (list.length === 0) return Promise.resolve();
    const p = this.chain.catch(() => {}).then(() => this.send(list, retry));
    this.chain = p;
    return p;
  }

  private async send(offsets: TopicPartitionOffsetCommit[], retry: boolean): Promise<void> {
    const deadline = Date.now() + this.commitTimeoutMs;
    let staleRetries = 0;
    let attempt = 0;
    for (;;) {
      attempt++;
      const { memberId, memberEpoch } = this.opts.member();
      if (memberEpoch <= 0) throw new SluiceError(ErrorCode.UNKNOWN_MEMBER_ID, `cannot commit for group ${this.opts.groupId}: the member is not in the group (epoch ${memberEpoch})`);
      const byTopic = new Map<string, Array<{ partition: number; offset: number; metadata: string | null }>>();
      for (const o of offsets) {
        let ps = byTopic.get(o.topic);
        if (!ps) byTopic.set(o.topic, (ps = []));
        ps.push({ partition: o.partition, offset: o.offset, metadata: null });
      }
      const req: OffsetCommitRequest = { groupId: this.opts.groupId, memberId, memberEpoch, topics: [...byTopic].map(([topic, partitions]) => ({ topic, partitions })) };
      let code: number = ErrorCode.NONE;
      let message: string | null = null;
      try {
        const res = await this.opts.transport.offsetCommit(req);
        code = res.errorCode;
        message = res.errorMessage;
        if (code === ErrorCode.NONE) {
          // The first partition error decides; STALE/FENCED may also come per partition.
          for (const t of res.topics) for (const p of t.partitions) if (code === ErrorCode.NONE && p.errorCode !== ErrorCode.NONE) { code = p.errorCode; message = `${t.topic}/${p.partition}`; }
        }
      } catch (e) {
        if (retry && isCoordinatorError(e) && Date.now() + this.backoff(attempt) < deadline) {
          await sleep(this.backoff(attempt));
          continue;
        }
        throw e;
      }
      if (code === ErrorCode.NONE) {
        for (const o of offsets) this.committed.set(tpKey(o.topic, o.partition), o.offset);
        return;
      }
      if (code === ErrorCode.STALE_MEMBER_EPOCH && staleRetries < STALE_EPOCH_RETRIES_MAX) {
        staleRetries++;
        await sleep(this.retryBackoffMs);
        continue;
      }
      if (isFencedCode(code)) this.opts.onFenced();
      throw new SluiceError(code as ErrorCode, `offset commit for group ${this.opts.groupId}${message ? `: ${message}` : ''}`);
    }
  }

  private backoff(attempt: number): number {
    return Math.min(2000, this.retryBackoffMs * 2 ** Math.min(attempt - 1, 10));
  }
}
