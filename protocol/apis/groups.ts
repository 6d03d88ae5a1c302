/**
 * Group administration: ListGroups (key 12), DescribeGroups (key 13), DeleteGroups (key 14).
 * Group states: 'empty' (no members), 'assigning' (target assignment being computed),
 * 'reconciling' (members moving towards the target), 'stable'.
 * Deleting a group removes its committed offsets; it must be empty (NON_EMPTY_GROUP).
 */
import type { Schema } from '../schema.ts';
import { topicPartitionsSchema, type TopicPartitions } from './consumer-group-heartbeat.ts';

export type GroupState = 'empty' | 'assigning' | 'reconciling' | 'stable';

export type ListGroupsRequest = Record<string, never>;
export interface ListedGroup { groupId: string; state: GroupState; members: number }
export interface ListGroupsResponse { groups: ListedGroup[] }

export interface DescribeGroupsRequest { groupIds: string[] }
export interface DescribedMember {
  memberId: string;
  clientId: string;
  clientHost: string;
  memberEpoch: number;
  subscribedTopicNames: string[];
  subscribedTopicRegex: string | null;
  /** What the member owns now. */
  assignment: TopicPartitions[];
  /** Where the coordinator is moving it. */
  targetAssignment: TopicPartitions[];
}
export interface DescribedGroup {
  groupId: string;
  errorCode: number;
  state: GroupState;
  groupEpoch: number;
  assignmentEpoch: number;
  assignor: string;
  members: DescribedMember[];
}
export interface DescribeGroupsResponse { groups: DescribedGroup[] }

export interface DeleteGroupsRequest { groupIds: string[] }
export interface DeleteGroupsResponse { groups: Array<{ groupId: string; errorCode: number }> }

export const listGroupsRequestSchema: Schema = { fields: {} };
export const listGroupsResponseSchema: Schema = {
  fields: { groups: { array: { fields: { groupId: 'string', state: 'string', members: 'int' } } } },
};
export const describeGroupsRequestSchema: Schema = { fields: { groupIds: { array: 'string' } } };
export const describeGroupsResponseSchema: Schema = {
  fields: {
    groups: {
      array: {
        fields: {
          groupId: 'string',
          errorCode: 'int',
          state: 'string',
          groupEpoch: 'int',
          assignmentEpoch: 'int',
          assignor: 'string',
          members: {
            array: {
              fields: {
                memberId: 'string',
                clientId: 'string',
                clientHost: 'string',
                memberEpoch: 'int',
                subscribedTopicNames: { array: 'string' },
                subscribedTopicRegex: 'string?',
                assignment: topicPartitionsSchema,
                targetAssignment: topicPartitionsSchema,
              },
            },
          },
        },
      },
    },
  },
};
export const deleteGroupsRequestSchema: Schema = { fields: { groupIds: { array: 'string' } } };
export const deleteGroupsResponseSchema: Schema = {
  fields: { groups: { array: { fields: { groupId: 'string', errorCode: 'int' } } } },
};
