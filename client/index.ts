/** client/: the Sluice client library. Depends on protocol/ only. */
// OffsetSpec is also declared by consumer.ts (the same type); index exports that one.
export { Admin, type AdminOptions, type NewTopic } from './admin.ts';
export * from './cluster.ts';
export * from './codec.ts';
export * from './connection.ts';
export * from './consumer.ts';
export * from './partitioner.ts';
export * from './producer.ts';
export { SluiceError, ErrorCode, errorInfo } from '../protocol/errors.ts';
