/**
 * The group coordinator: consumer-group membership (ConsumerGroupHeartbeat), committed
 * offsets (OffsetCommit/OffsetFetch) and group administration. On a single broker it
 * coordinates every group.
 *
 * Timers: a sweep every `groupSweepIntervalMs` removes members whose session expired (no
 * heartbeat for sessionTimeoutMs) or who kept revoked partitions past rebalanceTimeoutMs;
 * an expiry pass every `offsetsExpiryCheckIntervalMs` deletes offsets of groups without members
 * whose last commit is older than `offsetsRetentionMs` (Kafka's offsets.retention.minutes).
 * Bounds: groupMembersMax members per group; groupsMax groups (with members or committed
 * offsets) per coordinator, GROUP_MAX_SIZE_REACHED for one more; timeouts within the configured range.
 */
import { randomUUID } from 'node:crypto';
import type { ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse } from '../../protocol/apis/consumer-group-heartbeat.ts';
import { LEAVE_GROUP_MEMBER_EPOCH, JOIN_GROUP_MEMBER_EPOCH } from '../../protocol/apis/consumer-group-heartbeat.ts';
import type { DeleteGroupsResponse, DescribedGroup, DescribeGroupsResponse, ListGroupsResponse } from '../../protocol/apis/groups.ts';
import { OFFSET_METADATA_BYTES_MAX, type OffsetCommitRequest, type OffsetCommitResponse } from '../../protocol/apis/offset-commit.ts';
import type { OffsetFetchRequest, OffsetFetchResponse } from '../../protocol/apis/offset-fetch.ts';
import type { TxnOffsetCommitRequest, TxnOffsetCommitResponse } from '../../protocol/apis/txn-offset-commit.ts';
import { ErrorCode, SluiceError } from '../../protocol/errors.ts';
import { defaultBrokerConfig } from '../config/broker-config.ts';
import type { Logger } from '../logger.ts';
import type { TopicManager } from '../partition/topic-manager.ts';
import { ASSIGNOR_NAMES, type AssignorName } from './assignors.ts';
import { ConsumerGroup, mayActFor, type Member, type MemberOwner, type TopicsView } from './consumer-group.ts';
import { offsetsPartitionFor, type OffsetEntry, type OffsetStore } from './offset-store.ts';
import { PatternSyntaxError, SubscriptionPattern } from './subscription-pattern.ts';
import { fromWire, sameSet, toWire } from './topic-partition-set.ts';

export interface CoordinatorConfig {
  heartbeatIntervalMs: number;
  sessionTimeoutMsMin: number;
  sessionTimeoutMsMax: number;
  sessionTimeoutMsDefault: number;
  rebalanceTimeoutMsDefault: number;
  rebalanceTimeoutMsMax: number;
  groupMembersMax: number;
  /** Groups this coordinator holds (members or committed offsets); a new group beyond it is refused. */
  groupsMax: number;
  offsetsRetentionMs: number;
  groupSweepIntervalMs: number;
  offsetsExpiryCheckIntervalMs: number;
}

/**
 * The coordinator's settings are broker settings (config/broker-config.ts, where their
 * defaults and bounds are); a BrokerConfig is a CoordinatorConfig. This is the default one,
 * for tests and embedders.
 */
export const DEFAULT_COORDINATOR_CONFIG: CoordinatorConfig = defaultBrokerConfig();

/** Counted in UTF-8 bytes, as every length limit of SPEC.md is (§1.1). */
const GROUP_ID_BYTES_MAX = 249;
/** Heartbeat interval told to a member whose assignment has not reached its target yet. */
const RECONCILING_HEARTBEAT_INTERVAL_MS = 100;

function validateGroupId(groupId: string): void {
  if (groupId.length === 0 || Buffer.byteLength(groupId, 'utf8') > GROUP_ID_BYTES_MAX) {
    throw new SluiceError(ErrorCode.INVALID_GROUP_ID, `group id must be 1-${GROUP_ID_BYTES_MAX} bytes of UTF-8`);
  }
}

function heartbeatError(code: ErrorCode, message: string, req: ConsumerGroupHeartbeatRequest): ConsumerGroupHeartbeatResponse {
  return { errorCode: code, errorMessage: message, memberId: req.memberId, memberEpoch: -1, heartbeatIntervalMs: 0, assignment: null };
}

export class GroupCoordinator {
  private readonly groups = new Map<string, ConsumerGroup>();
  private readonly topicsView: TopicsView;
  private timers: NodeJS.Timeout[] = [];

  /**
   * Checks a TxnOffsetCommit against its transaction (the transaction coordinator's
   * checkOffsetsInTxn; throws SluiceError). Unset: no check (unit tests of the group side).
   */
  private txnVerifier: ((req: TxnOffsetCommitRequest) => void) | null = null;

  setTxnVerifier(verify: (req: TxnOffsetCommitRequest) => void): void {
    this.txnVerifier = verify;
  }

  constructor(
    private readonly topics: TopicManager,
    private readonly offsets: OffsetStore,
    /** Whether this broker leads the given offsets-topic partition now. */
    private readonly leadsOffsetsPartition: (partition: number) => boolean,
    private readonly config: CoordinatorConfig,
    private readonly log: Logger,
  ) {
    this.topicsView = { topicNames: () => topics.names(), partitionCount: (t) => topics.partitionCount(t) };
  }

  start(): void {
    this.timers.push(setInterval(() => this.sweep(Date.now()), this.config.groupSweepIntervalMs));
    this.timers.push(setInterval(() => void this.expireOffsets(Date.now()).catch((e) => this.log.error('offset expiry failed', { error: e as Error })), this.config.offsetsExpiryCheckIntervalMs));
    for (const t of this.timers) t.unref();
  }

  stop(): void {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
  }

  /**
   * A group is coordinated by the leader of its offsets-topic partition, once that leader has
   * replayed the partition; elsewhere NOT_COORDINATOR, while replaying COORDINATOR_NOT_AVAILABLE.
   */
  private checkCoordinator(groupId: string): void {
    const partition = offsetsPartitionFor(groupId);
    if (this.offsets.isLoaded(partition)) return;
    if (this.leadsOffsetsPartition(partition)) throw new SluiceError(ErrorCode.COORDINATOR_NOT_AVAILABLE, `loading the offsets of group ${groupId}`);
    throw new SluiceError(ErrorCode.NOT_COORDINATOR, `this broker does not coordinate group ${groupId}; ask FindCoordinator`);
  }

  /** Leadership of an offsets partition moved away: its groups' members will rejoin elsewhere. */
  unloadPartition(partition: number): void {
    this.offsets.unloadPartition(partition);
    for (const id of [...this.groups.keys()]) if (offsetsPartitionFor(id) === partition) this.groups.delete(id);
  }

  heartbeat(req: ConsumerGroupHeartbeatRequest, clientId: string, clientHost: string, nowMs = Date.now(), owner?: MemberOwner): ConsumerGroupHeartbeatResponse {
    try {
      validateGroupId(req.groupId);
      this.checkCoordinator(req.groupId);
      // A member id is bound to the principal and live connection that joined with it.
      const bound = req.memberId ? this.groups.get(req.groupId)?.members.get(req.memberId) : undefined;
      if (bound && !mayActFor(bound.owner, owner)) {
        return heartbeatError(ErrorCode.UNKNOWN_MEMBER_ID, `member ${req.memberId} of group ${req.groupId} belongs to another ${bound.owner!.principal !== (owner?.principal ?? null) ? 'principal' : 'connection'}`, req);
      }
      if (req.memberEpoch === LEAVE_GROUP_MEMBER_EPOCH) return this.leave(req);
      const group = this.groupFor(req.groupId, req.memberEpoch === JOIN_GROUP_MEMBER_EPOCH);
      let member: Member;
      if (req.memberEpoch === JOIN_GROUP_MEMBER_EPOCH) {
        member = this.join(group, req, clientId, clientHost, nowMs);
      } else {
        const existing = group?.members.get(req.memberId);
        if (!group || !existing) return heartbeatError(ErrorCode.UNKNOWN_MEMBER_ID, `member ${req.memberId} is not in group ${req.groupId}; rejoin with memberEpoch 0`, req);
        if (req.memberEpoch !== existing.memberEpoch && req.memberEpoch !== existing.previousMemberEpoch) {
          return heartbeatError(ErrorCode.FENCED_MEMBER_EPOCH, `member epoch ${req.memberEpoch} is not current (${existing.memberEpoch}); rejoin with memberEpoch 0`, req);
        }
        member = existing;
        this.update(group, member, req);
      }
      if (owner) member.owner = owner;
      member.lastHeartbeatMs = nowMs;
      const g = this.groups.get(req.groupId)!;
      g.refresh(this.topicsView);
      g.reconcile(member, req.ownedPartitions ? fromWire(req.ownedPartitions) : null, nowMs);
      return {
        errorCode: 0,
        errorMessage: null,
        memberId: member.memberId,
        memberEpoch: member.memberEpoch,
        // A member still waiting for partitions (their owner is releasing them) comes back
        // soon, so a rebalance takes round trips, not heartbeat intervals.
        heartbeatIntervalMs: sameSet(g.targetOf(member.memberId), member.assigned) ? this.config.heartbeatIntervalMs : Math.min(RECONCILING_HEARTBEAT_INTERVAL_MS, this.config.heartbeatIntervalMs),
        assignment: toWire(member.assigned),
      };
    } catch (e) {
      if (e instanceof SluiceError) return heartbeatError(e.code, e.message, req);
      throw e;
    }
  }

  private groupFor(groupId: string, create: boolean): ConsumerGroup | undefined {
    let g = this.groups.get(groupId);
    if (!g && create) {
      this.checkGroupsMax(groupId);
      this.groups.set(groupId, (g = new ConsumerGroup(groupId)));
    }
    return g;
  }

  /** Refuses a group that would be one more than groupsMax; exact count only near the bound. */
  private checkGroupsMax(groupId: string): void {
    if (this.offsets.hasGroup(groupId)) return;
    const max = this.config.groupsMax;
    if (this.groups.size + this.offsets.groupCount < max) return;
    let count = this.groups.size;
    for (const id of this.offsets.groupIds()) if (!this.groups.has(id)) count++;
    if (count >= max) throw new SluiceError(ErrorCode.GROUP_MAX_SIZE_REACHED, `the coordinator already holds ${count} groups (groupsMax ${max})`);
  }

  private join(group: ConsumerGroup | undefined, req: ConsumerGroupHeartbeatRequest, clientId: string, clientHost: string, nowMs: number): Member {
    const g = group!;
    const memberId = req.memberId || randomUUID();
    if (g.members.has(memberId)) {
      // A member rejoining (after being fenced, or a restart with a kept id) starts over.
      g.remove(memberId);
    } else if (g.members.size >= this.config.groupMembersMax) {
      throw new SluiceError(ErrorCode.GROUP_MAX_SIZE_REACHED, `group ${req.groupId} has ${g.members.size} members`);
    }
    if (req.subscribedTopicNames === null && req.subscribedTopicRegex === null) {
      throw new SluiceError(ErrorCode.MALFORMED_REQUEST, 'a joining member must send subscribedTopicNames or subscribedTopicRegex');
    }
    const member: Member = {
      memberId,
      clientId,
      clientHost,
      memberEpoch: 0,
      previousMemberEpoch: 0,
      subscribedTopicNames: [],
      subscribedTopicRegex: null,
      regex: null,
      assignor: 'uniform',
      sessionTimeoutMs: this.config.sessionTimeoutMsDefault,
      rebalanceTimeoutMs: this.config.rebalanceTimeoutMsDefault,
      lastHeartbeatMs: nowMs,
      assigned: new Set(),
      pendingRevocation: new Set(),
      revocationDeadlineMs: 0,
    };
    this.applySettings(member, req);
    g.add(member);
    this.log.info('member joined', { group: req.groupId, member: memberId, client: clientId, members: g.members.size });
    return member;
  }

  private update(group: ConsumerGroup, member: Member, req: ConsumerGroupHeartbeatRequest): void {
    const before = JSON.stringify([member.subscribedTopicNames, member.subscribedTopicRegex, member.assignor]);
    this.applySettings(member, req);
    if (JSON.stringify([member.subscribedTopicNames, member.subscribedTopicRegex, member.assignor]) !== before) {
      group.markChanged();
      this.log.info('member changed subscription', { group: req.groupId, member: member.memberId });
    }
  }

  /**
   * Validates every optional field of a heartbeat first, then applies them: a refused
   * heartbeat changes nothing. null means unchanged; names and regex are one setting, so
   * sending one kind of subscription replaces the other.
   */
  private applySettings(member: Member, req: ConsumerGroupHeartbeatRequest): void {
    const c = this.config;
    if (req.sessionTimeoutMs != null && (req.sessionTimeoutMs < c.sessionTimeoutMsMin || req.sessionTimeoutMs > c.sessionTimeoutMsMax)) {
      throw new SluiceError(ErrorCode.INVALID_SESSION_TIMEOUT, `sessionTimeoutMs must be ${c.sessionTimeoutMsMin}-${c.sessionTimeoutMsMax}, got ${req.sessionTimeoutMs}`);
    }
    if (req.rebalanceTimeoutMs != null && (req.rebalanceTimeoutMs < 0 || req.rebalanceTimeoutMs > c.rebalanceTimeoutMsMax)) {
      throw new SluiceError(ErrorCode.INVALID_SESSION_TIMEOUT, `rebalanceTimeoutMs must be 0-${c.rebalanceTimeoutMsMax}, got ${req.rebalanceTimeoutMs}`);
    }
    if (req.assignor != null && !(ASSIGNOR_NAMES as readonly string[]).includes(req.assignor)) {
      throw new SluiceError(ErrorCode.UNSUPPORTED_ASSIGNOR, `assignor ${JSON.stringify(req.assignor)}`);
    }
    let regex: SubscriptionPattern | null = null;
    if (req.subscribedTopicRegex != null) {
      // Never a JS RegExp: backtracking on a pattern like (a+)+b would stall the event loop.
      try {
        regex = SubscriptionPattern.compile(req.subscribedTopicRegex);
      } catch (e) {
        if (!(e instanceof PatternSyntaxError)) throw e;
        throw new SluiceError(ErrorCode.INVALID_REGULAR_EXPRESSION, `subscribedTopicRegex ${JSON.stringify(req.subscribedTopicRegex.slice(0, 100))}: ${e.message} (SPEC §6.10 lists the supported syntax)`);
      }
    }
    if (req.sessionTimeoutMs != null) member.sessionTimeoutMs = req.sessionTimeoutMs;
    if (req.rebalanceTimeoutMs != null) member.rebalanceTimeoutMs = req.rebalanceTimeoutMs;
    if (req.assignor != null) member.assignor = req.assignor as AssignorName;
    if (req.subscribedTopicNames != null || req.subscribedTopicRegex != null) {
      member.subscribedTopicNames = [...new Set(req.subscribedTopicNames ?? [])].sort();
      member.subscribedTopicRegex = req.subscribedTopicRegex;
      member.regex = regex;
    }
  }

  private leave(req: ConsumerGroupHeartbeatRequest): ConsumerGroupHeartbeatResponse {
    const g = this.groups.get(req.groupId);
    if (g?.remove(req.memberId)) this.log.info('member left', { group: req.groupId, member: req.memberId, members: g.members.size });
    return { errorCode: 0, errorMessage: null, memberId: req.memberId, memberEpoch: LEAVE_GROUP_MEMBER_EPOCH, heartbeatIntervalMs: 0, assignment: [] };
  }

  /** Removes members whose session expired or who held revoked partitions too long. */
  sweep(nowMs: number): void {
    for (const g of this.groups.values()) {
      for (const m of [...g.members.values()]) {
        const expired = nowMs - m.lastHeartbeatMs > m.sessionTimeoutMs;
        const stuck = m.pendingRevocation.size > 0 && nowMs > m.revocationDeadlineMs;
        if (expired || stuck) {
          g.remove(m.memberId);
          this.log.info(expired ? 'member session expired' : 'member did not release revoked partitions in time', { group: g.groupId, member: m.memberId, members: g.members.size });
        }
      }
      if (g.members.size === 0 && !this.offsets.hasGroup(g.groupId)) this.groups.delete(g.groupId);
    }
  }

  /** Checks who may commit or read: a member at its current or previous epoch, or anyone for an empty group. */
  private checkMember(groupId: string, memberId: string, memberEpoch: number): void {
    const g = this.groups.get(groupId);
    if (memberId === '' && memberEpoch < 0) {
      if (g && g.members.size > 0) throw new SluiceError(ErrorCode.NON_EMPTY_GROUP, `group ${groupId} has ${g.members.size} members; commit as a member`);
      return;
    }
    const m = g?.members.get(memberId);
    if (!m) throw new SluiceError(ErrorCode.UNKNOWN_MEMBER_ID, `member ${memberId} is not in group ${groupId}`);
    if (memberEpoch !== m.memberEpoch && memberEpoch !== m.previousMemberEpoch) {
      throw new SluiceError(ErrorCode.STALE_MEMBER_EPOCH, `member epoch ${memberEpoch} is not current (${m.memberEpoch})`);
    }
  }

  async commitOffsets(req: OffsetCommitRequest, nowMs = Date.now()): Promise<OffsetCommitResponse> {
    const results: OffsetCommitResponse['topics'] = req.topics.map((t) => ({ topic: t.topic, partitions: t.partitions.map((p) => ({ partition: p.partition, errorCode: 0 })) }));
    try {
      validateGroupId(req.groupId);
      this.checkCoordinator(req.groupId);
      this.checkMember(req.groupId, req.memberId, req.memberEpoch);
      this.groupFor(req.groupId, true);
    } catch (e) {
      if (!(e instanceof SluiceError)) throw e;
      for (const t of results) for (const p of t.partitions) p.errorCode = e.code;
      return { errorCode: e.code, errorMessage: e.message, topics: results };
    }
    const entries = this.entriesToCommit(req.topics, results, nowMs);
    try {
      await this.offsets.commit(req.groupId, entries);
    } catch (e) {
      if (!(e instanceof SluiceError)) throw e;
      for (const t of results) for (const p of t.partitions) if (p.errorCode === 0) p.errorCode = e.code;
      return { errorCode: e.code, errorMessage: e.message, topics: results };
    }
    return { errorCode: 0, errorMessage: null, topics: results };
  }

  /**
   * The offsets of an OffsetCommit or TxnOffsetCommit to write, checked per partition in the
   * order of SPEC §6.11 (unknown partition, then a bad offset or metadata); a partition that
   * fails gets its error in results and is left out.
   */
  private entriesToCommit(topics: OffsetCommitRequest['topics'], results: OffsetCommitResponse['topics'], nowMs: number): OffsetEntry[] {
    const entries: OffsetEntry[] = [];
    topics.forEach((t, ti) =>
      t.partitions.forEach((p, pi) => {
        const r = results[ti]!.partitions[pi]!;
        const count = this.topics.partitionCount(t.topic);
        if (count === undefined || p.partition < 0 || p.partition >= count) r.errorCode = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION;
        else if (p.offset < 0 || Buffer.byteLength(p.metadata ?? '', 'utf8') > OFFSET_METADATA_BYTES_MAX) r.errorCode = ErrorCode.INVALID_COMMIT_OFFSET;
        else entries.push({ topic: t.topic, partition: p.partition, offset: p.offset, metadata: p.metadata ?? null, commitTimestampMs: nowMs });
      }),
    );
    return entries;
  }

  /**
   * TxnOffsetCommit (SPEC §6.24): the member is checked exactly as for OffsetCommit (KIP-447
   * fencing), then the offsets are written as a transactional batch of the producer and stay
   * pending until its marker reaches the group's partition. A stale producer epoch is refused
   * by the partition's producer state (INVALID_PRODUCER_EPOCH / PRODUCER_FENCED).
   */
  async txnCommitOffsets(req: TxnOffsetCommitRequest, nowMs = Date.now()): Promise<TxnOffsetCommitResponse> {
    const results: TxnOffsetCommitResponse['topics'] = req.topics.map((t) => ({ topic: t.topic, partitions: t.partitions.map((p) => ({ partition: p.partition, errorCode: 0 })) }));
    const failAll = (e: SluiceError): TxnOffsetCommitResponse => {
      for (const t of results) for (const p of t.partitions) if (p.errorCode === 0) p.errorCode = e.code;
      return { errorCode: e.code, errorMessage: e.message, topics: results };
    };
    try {
      validateGroupId(req.groupId);
      this.checkCoordinator(req.groupId);
      this.checkMember(req.groupId, req.memberId, req.memberEpoch);
      if (req.producerId < 0 || req.producerEpoch < 0 || req.producerEpoch > 32767) throw new SluiceError(ErrorCode.INVALID_PRODUCER_EPOCH, `producerId ${req.producerId} with producerEpoch ${req.producerEpoch} is not a transactional producer`);
      // Synchronous up to the append below, so no EndTxn can end the transaction in between.
      this.txnVerifier?.(req);
      this.groupFor(req.groupId, true);
    } catch (e) {
      if (!(e instanceof SluiceError)) throw e;
      return failAll(e);
    }
    const entries = this.entriesToCommit(req.topics, results, nowMs);
    try {
      await this.offsets.commitTransactional(req.groupId, req, entries);
    } catch (e) {
      if (!(e instanceof SluiceError)) throw e;
      return failAll(e);
    }
    return { errorCode: 0, errorMessage: null, topics: results };
  }

  fetchOffsets(req: OffsetFetchRequest): OffsetFetchResponse {
    try {
      validateGroupId(req.groupId);
      this.checkCoordinator(req.groupId);
      if (req.memberId !== null) this.checkMember(req.groupId, req.memberId, req.memberEpoch);
    } catch (e) {
      if (!(e instanceof SluiceError)) throw e;
      return { errorCode: e.code, errorMessage: e.message, topics: [] };
    }
    // topics nil: every partition with a committed offset and, with requireStable, every
    // partition a transaction has sent an offset for (UNSTABLE_OFFSET_COMMIT below), so a
    // consumer never takes a partition whose first offsets are in flight for one without any.
    const keys = this.offsets.entries(req.groupId).map(([k]) => k);
    const wanted = req.topics ?? toWire(req.requireStable ? new Set([...keys, ...this.offsets.pendingKeys(req.groupId)]) : keys);
    return {
      errorCode: 0,
      errorMessage: null,
      topics: wanted.map((t) => ({
        topic: t.topic,
        partitions: t.partitions.map((partition) => {
          // A transaction is about to replace this offset: a consumer must not start from it.
          if (req.requireStable && this.offsets.isPending(req.groupId, t.topic, partition)) {
            return { partition, offset: -1, metadata: null, commitTimestampMs: -1, errorCode: ErrorCode.UNSTABLE_OFFSET_COMMIT };
          }
          const c = this.offsets.get(req.groupId, t.topic, partition);
          return { partition, offset: c?.offset ?? -1, metadata: c?.metadata ?? null, commitTimestampMs: c?.commitTimestampMs ?? -1, errorCode: 0 };
        }),
      })),
    };
  }

  listGroups(): ListGroupsResponse {
    const ids = new Set([...[...this.groups.values()].filter((g) => g.members.size > 0).map((g) => g.groupId), ...this.offsets.groupIds()]);
    return {
      groups: [...ids].sort().map((groupId) => {
        const g = this.groups.get(groupId);
        return { groupId, state: g?.state ?? 'empty', members: g?.members.size ?? 0 };
      }),
    };
  }

  describeGroups(groupIds: string[]): DescribeGroupsResponse {
    return {
      groups: groupIds.map((groupId): DescribedGroup => {
        try {
          this.checkCoordinator(groupId);
        } catch (e) {
          if (!(e instanceof SluiceError)) throw e;
          return { groupId, errorCode: e.code, state: 'empty', groupEpoch: 0, assignmentEpoch: 0, assignor: '', members: [] };
        }
        const g = this.groups.get(groupId);
        if (!g && !this.offsets.hasGroup(groupId)) {
          return { groupId, errorCode: ErrorCode.GROUP_ID_NOT_FOUND, state: 'empty', groupEpoch: 0, assignmentEpoch: 0, assignor: '', members: [] };
        }
        if (!g) return { groupId, errorCode: 0, state: 'empty', groupEpoch: 0, assignmentEpoch: 0, assignor: 'uniform', members: [] };
        return {
          groupId,
          errorCode: 0,
          state: g.state,
          groupEpoch: g.groupEpoch,
          assignmentEpoch: g.assignmentEpoch,
          assignor: g.assignor,
          members: [...g.members.values()].map((m) => ({
            memberId: m.memberId,
            clientId: m.clientId,
            clientHost: m.clientHost,
            memberEpoch: m.memberEpoch,
            subscribedTopicNames: m.subscribedTopicNames,
            subscribedTopicRegex: m.subscribedTopicRegex,
            assignment: toWire(m.assigned),
            targetAssignment: toWire(g.targetOf(m.memberId)),
          })),
        };
      }),
    };
  }

  async deleteGroups(groupIds: string[]): Promise<DeleteGroupsResponse> {
    const out: DeleteGroupsResponse = { groups: [] };
    for (const groupId of groupIds) {
      try {
        this.checkCoordinator(groupId);
      } catch (e) {
        if (!(e instanceof SluiceError)) throw e;
        out.groups.push({ groupId, errorCode: e.code });
        continue;
      }
      const g = this.groups.get(groupId);
      if (g && g.members.size > 0) {
        out.groups.push({ groupId, errorCode: ErrorCode.NON_EMPTY_GROUP });
      } else if (!g && !this.offsets.hasGroup(groupId)) {
        out.groups.push({ groupId, errorCode: ErrorCode.GROUP_ID_NOT_FOUND });
      } else {
        try {
          await this.offsets.remove(groupId);
        } catch (e) {
          if (!(e instanceof SluiceError)) throw e;
          out.groups.push({ groupId, errorCode: e.code });
          continue;
        }
        this.groups.delete(groupId);
        this.log.info('group deleted', { group: groupId });
        out.groups.push({ groupId, errorCode: 0 });
      }
    }
    return out;
  }

  /** Deletes the offsets of member-less groups whose commits are older than the retention. */
  async expireOffsets(nowMs: number): Promise<number> {
    let removed = 0;
    for (const groupId of this.offsets.groupIds()) {
      if ((this.groups.get(groupId)?.members.size ?? 0) > 0) continue;
      const old = this.offsets.entries(groupId).filter(([, c]) => nowMs - c.commitTimestampMs > this.config.offsetsRetentionMs).map(([k]) => k);
      if (old.length > 0) {
        removed += await this.offsets.remove(groupId, old);
        this.log.info('expired committed offsets', { group: groupId, partitions: old.length });
      }
    }
    return removed;
  }
}
