/**
 * One consumer group's membership and assignment, as in Kafka's KIP-848: the coordinator
 * computes a target assignment whenever the group epoch moves, and each member is walked
 * towards its target one heartbeat at a time.
 *
 * Invariants:
 * - groupEpoch counts changes that need a new target (join, leave, removal, subscription
 *   change, partition count or regex match change); changes between two refreshes share one
 *   bump. assignmentEpoch is the groupEpoch the current target was computed for.
 * - A member owns `assigned` (may consume) plus `pendingRevocation` (taken away, not yet
 *   reported released). A partition is in at most one member's owned set: it is granted only
 *   when no other member owns it. This is the "never two owners" guarantee.
 * - A member's epoch reaches assignmentEpoch only once it has nothing left to revoke;
 *   previousMemberEpoch is kept so a member that missed one response is not fenced for it.
 * - Not persisted: after a broker restart members rejoin (their epochs are unknown, so they
 *   are told UNKNOWN_MEMBER_ID); committed offsets live in the offset store, not here.
 */
import type { GroupState } from '../../protocol/apis/groups.ts';
import { isInternalTopic } from '../partition/topic-names.ts';
import { assignors, type Assignment, type AssignorName } from './assignors.ts';
import type { SubscriptionPattern } from './subscription-pattern.ts';
import { difference, fromAssignment, intersection, type TpSet } from './topic-partition-set.ts';

/**
 * Who may act as a member (issue 12): the principal and connection that joined with its id.
 * Another principal never may; another connection may only once the joining one closed (a
 * client that reconnects). So a member id read from DescribeGroups cannot be used to take a
 * live member's place or make it leave.
 */
export interface MemberOwner {
  principal: string | null;
  /** The joining connection; `destroyed` once it is closed (a net.Socket). */
  connection: object & { readonly destroyed?: boolean };
}

/** Whether `owner` may act for a member owned by `current` (see MemberOwner). */
export function mayActFor(current: MemberOwner | undefined, owner: MemberOwner | undefined): boolean {
  if (!current || !owner) return true;
  if (current.principal !== owner.principal) return false;
  return current.connection === owner.connection || current.connection.destroyed === true;
}

export interface Member {
  readonly memberId: string;
  /** Set when the member joined through a connection (always, on a broker; unit tests may omit it). */
  owner?: MemberOwner;
  clientId: string;
  clientHost: string;
  memberEpoch: number;
  previousMemberEpoch: number;
  subscribedTopicNames: string[];
  subscribedTopicRegex: string | null;
  regex: SubscriptionPattern | null;
  assignor: AssignorName;
  sessionTimeoutMs: number;
  rebalanceTimeoutMs: number;
  lastHeartbeatMs: number;
  assigned: TpSet;
  pendingRevocation: TpSet;
  revocationDeadlineMs: number;
}

/** What the group needs to know about topics: their names and partition counts. */
export interface TopicsView {
  topicNames(): string[];
  partitionCount(topic: string): number | undefined;
}

export class ConsumerGroup {
  groupEpoch = 0;
  assignmentEpoch = 0;
  assignor: AssignorName = 'uniform';
  readonly members = new Map<string, Member>();
  private target: Assignment = new Map();
  private fingerprint = '';
  /** Every topic with its partition count at the last full refresh (see refresh). */
  private topicsKey = '';
  /** Each member's resolved topics, valid while topicsKey and its subscription objects are the same. */
  private readonly resolutions = new Map<string, { topicsKey: string; names: readonly string[]; regex: SubscriptionPattern | null; topics: string[] }>();
  /** A change that needs a new target happened since the last refresh (one epoch bump for all). */
  private changed = false;

  constructor(readonly groupId: string) {}

  get state(): GroupState {
    if (this.members.size === 0) return 'empty';
    if (this.changed || this.groupEpoch !== this.assignmentEpoch) return 'assigning';
    for (const m of this.members.values()) {
      if (m.memberEpoch !== this.assignmentEpoch || m.pendingRevocation.size > 0) return 'reconciling';
    }
    return 'stable';
  }

  targetOf(memberId: string): TpSet {
    return fromAssignment(this.target.get(memberId));
  }

  add(member: Member): void {
    this.members.set(member.memberId, member);
    this.changed = true;
  }

  /** Removes a member; everything it owned is free at once (it can no longer commit). */
  remove(memberId: string): boolean {
    if (!this.members.delete(memberId)) return false;
    this.target.delete(memberId);
    this.resolutions.delete(memberId);
    this.changed = true;
    return true;
  }

  /** Marks the group as needing a new target (a subscription changed). */
  markChanged(): void {
    this.changed = true;
  }

  /**
   * Topics a member subscribes to that exist now, names and regex matches together. Internal
   * topics are never subscribed, whether named or matched (SPEC §6.10, §7.4).
   */
  resolvedTopics(member: Member, topics: TopicsView, topicNames: readonly string[] = topics.topicNames()): string[] {
    const out = new Set<string>();
    for (const t of member.subscribedTopicNames) if (!isInternalTopic(t) && topics.partitionCount(t) !== undefined) out.add(t);
    if (member.regex) for (const t of topicNames) if (!isInternalTopic(t) && member.regex.matches(t)) out.add(t);
    return [...out].sort();
  }

  /**
   * Bumps the group epoch when what members subscribe to has changed shape (a topic gained
   * partitions, a new topic matches a regex, one was deleted), then recomputes the target if
   * the group epoch moved.
   */
  refresh(topics: TopicsView): void {
    // Most heartbeats change nothing: neither the group (joins, leaves, subscriptions) nor the
    // topics. Resolving every member's subscription costs members x topics (~100 ms for 1000
    // members subscribed to 1000 topics, on every heartbeat of every member), so it is redone
    // only when one of the two changed; the topics' key costs O(topics).
    const topicNames = topics.topicNames();
    const counts = new Map(topicNames.map((t) => [t, topics.partitionCount(t)]));
    const topicsKey = topicNames.map((t) => `${t}:${counts.get(t)}`).join(',');
    if (!this.changed && topicsKey === this.topicsKey) return;
    this.topicsKey = topicsKey;
    const resolved = new Map<string, string[]>();
    const subscribed = new Set<string>();
    for (const m of this.members.values()) {
      // A join or leave re-resolves only the members whose subscription or topics changed.
      let r = this.resolutions.get(m.memberId);
      if (!r || r.topicsKey !== topicsKey || r.names !== m.subscribedTopicNames || r.regex !== m.regex) {
        r = { topicsKey, names: m.subscribedTopicNames, regex: m.regex, topics: this.resolvedTopics(m, topics, topicNames) };
        this.resolutions.set(m.memberId, r);
      }
      resolved.set(m.memberId, r.topics);
      for (const t of r.topics) subscribed.add(t);
    }
    const fingerprint = [...subscribed].sort().map((t) => `${t}:${counts.get(t) ?? topics.partitionCount(t)}`).join(',');
    if (fingerprint !== this.fingerprint) {
      this.fingerprint = fingerprint;
      this.changed = true;
    }
    if (this.changed) {
      this.groupEpoch++;
      this.changed = false;
    }
    if (this.groupEpoch === this.assignmentEpoch) return;
    this.assignor = this.chooseAssignor();
    const members = resolved;
    const partitionCounts = new Map<string, number>();
    for (const t of subscribed) partitionCounts.set(t, counts.get(t) ?? topics.partitionCount(t)!);
    this.target = assignors[this.assignor]({ members, partitionCounts, previous: this.target });
    this.assignmentEpoch = this.groupEpoch;
  }

  /**
   * One step of a member towards its target. `owned` is what the member reported consuming
   * (null: unchanged). Revocations are handed out first and the member's epoch only moves
   * once it has released them; new partitions are granted only when no one else owns them.
   */
  reconcile(member: Member, owned: TpSet | null, nowMs: number): void {
    if (member.pendingRevocation.size > 0) {
      if (owned === null || intersection(owned, member.pendingRevocation).size > 0) return;
      member.pendingRevocation = new Set();
    }
    const target = this.targetOf(member.memberId);
    const revoke = difference(member.assigned, target);
    if (revoke.size > 0) {
      member.assigned = intersection(member.assigned, target);
      member.pendingRevocation = revoke;
      member.revocationDeadlineMs = nowMs + member.rebalanceTimeoutMs;
      return;
    }
    for (const k of target) if (!member.assigned.has(k) && !this.ownedByOther(k, member.memberId)) member.assigned.add(k);
    if (member.memberEpoch !== this.assignmentEpoch) {
      member.previousMemberEpoch = member.memberEpoch;
      member.memberEpoch = this.assignmentEpoch;
    }
  }

  ownerOf(key: string): string | null {
    for (const m of this.members.values()) if (m.assigned.has(key) || m.pendingRevocation.has(key)) return m.memberId;
    return null;
  }

  private ownedByOther(key: string, memberId: string): boolean {
    const owner = this.ownerOf(key);
    return owner !== null && owner !== memberId;
  }

  /** The assignor most members ask for; ties go to the first name in ASSIGNOR order. */
  private chooseAssignor(): AssignorName {
    const votes = new Map<AssignorName, number>();
    for (const m of this.members.values()) votes.set(m.assignor, (votes.get(m.assignor) ?? 0) + 1);
    let best: AssignorName = 'uniform';
    let bestVotes = -1;
    for (const name of Object.keys(assignors) as AssignorName[]) {
      const v = votes.get(name) ?? 0;
      if (v > bestVotes) {
        best = name;
        bestVotes = v;
      }
    }
    return best;
  }
}
