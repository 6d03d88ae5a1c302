/** client/: the Sluice client library. Depends on protocol/ only. */
// OffsetSpec is also declared by consumer.ts (the same type); index exports that one.
export { Admin, parseDelayedRef, type AdminOptions, type NewTopic, type DelayedRef, type DelayedMessage, type DelayedCursor, type DelayedList, type CancelDelayedResult } from './admin.ts';
export { DELAY_MS_MAX, deliveryTimeOf, parseDuration, parseInstant } from './delivery-time.ts';
export * from './cluster.ts';
export * from './codec.ts';
export * from './connection.ts';
export * from './consumer.ts';
export { GroupConsumer, type GroupConsumerOptions, type ConsumerGroupMetadata, type DeliveryMode, type Assignor } from './group/consumer.ts';
export { GroupMembership, type AssignmentChange, type MembershipHooks, type MemberState, type Subscription, type TopicPartition } from './group/membership.ts';
export { CoordinatorClient, type GroupTransport } from './group/coordinator.ts';
export { OffsetCommitter, type CommitCallback, type TopicPartitionOffsetCommit } from './group/offset-committer.ts';
export { GroupRunner, MessageNackedError, type EachMessageContext, type RunOptions } from './group/runner.ts';
export * from './group/retry-policy.ts';
export * from './partitioner.ts';
export * from './producer.ts';
export { SluiceError, ErrorCode, errorInfo } from '../protocol/errors.ts';
export { canonicalTags, TAG_BYTES_MAX, TAGS_PER_SET_MAX } from '../protocol/tags.ts';
export { TagExpression } from '../protocol/tag-expression.ts';
