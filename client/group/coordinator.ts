/**
 * The client side of one group's coordinator: finds it (FindCoordinator), keeps the
 * connection to it, and sends the group requests there. It does not retry: callers decide
 * (the heartbeat loop backs off, a sync commit retries until its deadline). What it does is
 * forget the coordinator whenever the answer or the connection says it moved
 * (NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE, a dead connection, a timeout), so the next
 * request starts with a fresh FindCoordinator.
 *
 * GroupTransport is the seam the membership and committer use; tests plug in a scripted
 * fake coordinator there.
 */
import { ApiKey } from '../../protocol/api-keys.ts';
import type { ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse } from '../../protocol/apis/consumer-group-heartbeat.ts';
import type { FindCoordinatorRequest, FindCoordinatorResponse } from '../../protocol/apis/find-coordinator.ts';
import type { OffsetCommitRequest, OffsetCommitResponse } from '../../protocol/apis/offset-commit.ts';
import type { OffsetFetchRequest, OffsetFetchResponse } from '../../protocol/apis/offset-fetch.ts';
import { ErrorCode, SluiceError } from '../../protocol/errors.ts';
import type { Cluster } from '../cluster.ts';
import { ConnectionError, type Connection } from '../connection.ts';

export interface GroupTransport {
  heartbeat(req: ConsumerGroupHeartbeatRequest): Promise<ConsumerGroupHeartbeatResponse>;
  offsetCommit(req: OffsetCommitRequest): Promise<OffsetCommitResponse>;
  offsetFetch(req: OffsetFetchRequest): Promise<OffsetFetchResponse>;
}

/** Errors after which the coordinator must be looked up again; all are worth a retry. */
export function isCoordinatorError(e: unknown): boolean {
  if (e instanceof ConnectionError) return true;
  if (!(e instanceof SluiceError)) return false;
  return e.code === ErrorCode.NOT_COORDINATOR || e.code === ErrorCode.COORDINATOR_NOT_AVAILABLE || e.code === ErrorCode.REQUEST_TIMED_OUT || e.code === ErrorCode.BROKER_SHUTTING_DOWN;
}

/** UNKNOWN_MEMBER_ID / FENCED_MEMBER_EPOCH: the member is no longer in the group. */
export function isFencedCode(code: number): boolean {
  return code === ErrorCode.UNKNOWN_MEMBER_ID || code === ErrorCode.FENCED_MEMBER_EPOCH;
}

export class CoordinatorClient implements GroupTransport {
  private coordinator: Promise<Connection> | null = null;

  constructor(
    private readonly cluster: Cluster,
    readonly groupId: string,
    /** Bound on one group request; a heartbeat must not outlive the session. */
    private readonly requestTimeoutMs: number,
  ) {}

  heartbeat(req: ConsumerGroupHeartbeatRequest): Promise<ConsumerGroupHeartbeatResponse> {
    return this.send<ConsumerGroupHeartbeatResponse>(ApiKey.CONSUMER_GROUP_HEARTBEAT, req);
  }

  offsetCommit(req: OffsetCommitRequest): Promise<OffsetCommitResponse> {
    return this.send<OffsetCommitResponse>(ApiKey.OFFSET_COMMIT, req);
  }

  offsetFetch(req: OffsetFetchRequest): Promise<OffsetFetchResponse> {
    return this.send<OffsetFetchResponse>(ApiKey.OFFSET_FETCH, req);
  }

  /** Forgets the coordinator; the next request asks FindCoordinator again. */
  invalidate(): void {
    this.coordinator = null;
  }

  /**
   * Sends one request to the coordinator. Throws SluiceError(NOT_COORDINATOR /
   * COORDINATOR_NOT_AVAILABLE) when the response's top-level errorCode says so (and forgets
   * the coordinator); other top-level error codes are returned in the response for the caller.
   */
  private async send<T extends { errorCode: number; errorMessage: string | null }>(apiKey: number, req: unknown): Promise<T> {
    const pending = this.coordinator ?? (this.coordinator = this.find());
    let conn: Connection;
    try {
      conn = await pending;
    } catch (e) {
      if (this.coordinator === pending) this.coordinator = null;
      throw e;
    }
    try {
      const res = await conn.send<T>(apiKey, req, [], true, this.requestTimeoutMs);
      const code = res.control.errorCode;
      if (code === ErrorCode.NOT_COORDINATOR || code === ErrorCode.COORDINATOR_NOT_AVAILABLE) {
        throw new SluiceError(code, res.control.errorMessage ?? `group ${this.groupId}`);
      }
      return res.control;
    } catch (e) {
      if (isCoordinatorError(e) && this.coordinator === pending) this.coordinator = null;
      throw e;
    }
  }

  private async find(): Promise<Connection> {
    const conn = await this.cluster.anyConnection();
    const req: FindCoordinatorRequest = { key: this.groupId, keyType: 'group' };
    const res = await conn.send<FindCoordinatorResponse>(ApiKey.FIND_COORDINATOR, req, [], true, this.requestTimeoutMs);
    const c = res.control;
    if (c.errorCode !== ErrorCode.NONE) throw new SluiceError(c.errorCode as ErrorCode, c.errorMessage ?? `FindCoordinator for group ${this.groupId}`);
    return this.cluster.connectionTo(c.host, c.port);
  }
}
