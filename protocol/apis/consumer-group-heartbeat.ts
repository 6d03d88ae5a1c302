/**
 * ConsumerGroupHeartbeat (key 9): the one request a group member sends, to join (memberEpoch
 * 0), to stay alive and learn its assignment (its current epoch), and to leave (-1). The
 * coordinator computes assignments (server-side assignors, as Kafka's KIP-848): a member is
 * told which partitions it owns now; partitions to give up are simply missing from that list,
 * and new ones appear only after their previous owner has reported them released, so no
 * partition is owned by two members at once.
 *
 * Fields a member does not change may be sent as null: subscription, assignor, timeouts and
 * ownedPartitions ("unchanged since my last heartbeat"). A joining member sends them all.
 * Topic names and regex are one setting: a heartbeat that sends either replaces both (names
 * with a null regex clears the regex, and the reverse).
 */
import type { Schema } from '../schema.ts';

export const JOIN_GROUP_MEMBER_EPOCH = 0;
export const LEAVE_GROUP_MEMBER_EPOCH = -1;

export interface TopicPartitions { topic: string; partitions: number[] }

export interface ConsumerGroupHeartbeatRequest {
  groupId: string;
  /** Chosen by the member (a UUID) and kept for its lifetime; '' asks the coordinator to pick one. */
  memberId: string;
  memberEpoch: number;
  rebalanceTimeoutMs: number | null;
  sessionTimeoutMs: number | null;
  subscribedTopicNames: string[] | null;
  subscribedTopicRegex: string | null;
  /** 'uniform' (sticky and balanced, the default), 'range' or 'round-robin'. */
  assignor: string | null;
  /** Partitions the member currently consumes; null when unchanged since its last heartbeat. */
  ownedPartitions: TopicPartitions[] | null;
}

export interface ConsumerGroupHeartbeatResponse {
  errorCode: number;
  errorMessage: string | null;
  memberId: string;
  memberEpoch: number;
  heartbeatIntervalMs: number;
  /** The partitions the member owns now (complete list); null only with an error. */
  assignment: TopicPartitions[] | null;
}

const topicPartitions: Schema = { array: { fields: { topic: 'string', partitions: { array: 'int' } } } };

export const consumerGroupHeartbeatRequestSchema: Schema = {
  fields: {
    groupId: 'string',
    memberId: 'string',
    memberEpoch: 'int',
    rebalanceTimeoutMs: 'int?',
    sessionTimeoutMs: 'int?',
    subscribedTopicNames: { array: 'string', nullable: true },
    subscribedTopicRegex: 'string?',
    assignor: 'string?',
    ownedPartitions: { ...topicPartitions, nullable: true },
  },
  optional: ['rebalanceTimeoutMs', 'sessionTimeoutMs', 'subscribedTopicNames', 'subscribedTopicRegex', 'assignor', 'ownedPartitions'],
};
export const consumerGroupHeartbeatResponseSchema: Schema = {
  fields: {
    errorCode: 'int',
    errorMessage: 'string?',
    memberId: 'string',
    memberEpoch: 'int',
    heartbeatIntervalMs: 'int',
    assignment: { ...topicPartitions, nullable: true },
  },
};
export { topicPartitions as topicPartitionsSchema };
