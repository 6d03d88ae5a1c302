/**
 * The one error catalogue shared by the broker, the clients and SPEC.md.
 * Codes are stable wire values: never renumber, only append.
 * `retriable` tells a client whether the same request may succeed later
 * (after a metadata refresh or a backoff) without any change on its side.
 */
export const ErrorCode = {
  NONE: 0,
  UNKNOWN_SERVER_ERROR: 1,
  CORRUPT_MESSAGE: 2,
  UNKNOWN_TOPIC_OR_PARTITION: 3,
  OFFSET_OUT_OF_RANGE: 4,
  FRAME_TOO_LARGE: 5,
  UNSUPPORTED_VERSION: 6,
  UNKNOWN_API: 7,
  MALFORMED_REQUEST: 8,
  NOT_LEADER: 9,
  TOPIC_ALREADY_EXISTS: 10,
  INVALID_TOPIC: 11,
  INVALID_PARTITIONS: 12,
  INVALID_CONFIG: 13,
  RECORD_BATCH_TOO_LARGE: 14,
  INVALID_REQUIRED_ACKS: 15,
  REQUEST_TIMED_OUT: 16,
  NOT_ENOUGH_REPLICAS: 17,
  STORAGE_ERROR: 18,
  BROKER_SHUTTING_DOWN: 19,
  UNSUPPORTED_COMPRESSION: 20,
  INVALID_REPLICATION_FACTOR: 21,
  COORDINATOR_NOT_AVAILABLE: 22,
  NOT_COORDINATOR: 23,
  INVALID_GROUP_ID: 24,
  UNKNOWN_MEMBER_ID: 25,
  FENCED_MEMBER_EPOCH: 26,
  STALE_MEMBER_EPOCH: 27,
  NON_EMPTY_GROUP: 28,
  GROUP_ID_NOT_FOUND: 29,
  GROUP_MAX_SIZE_REACHED: 30,
  UNSUPPORTED_ASSIGNOR: 31,
  INVALID_REGULAR_EXPRESSION: 32,
  INVALID_COMMIT_OFFSET: 33,
  INVALID_SESSION_TIMEOUT: 34,
  NOT_CONTROLLER: 35,
  FENCED_LEADER_EPOCH: 36,
  UNKNOWN_LEADER_EPOCH: 37,
  OUT_OF_ORDER_SEQUENCE_NUMBER: 38,
  DUPLICATE_SEQUENCE_NUMBER: 39,
  INVALID_PRODUCER_EPOCH: 40,
  PRODUCER_FENCED: 41,
  UNKNOWN_PRODUCER_ID: 42,
  INVALID_TXN_STATE: 43,
  INVALID_PRODUCER_ID_MAPPING: 44,
  INVALID_TRANSACTION_TIMEOUT: 45,
  CONCURRENT_TRANSACTIONS: 46,
  TRANSACTION_COORDINATOR_FENCED: 47,
  UNSTABLE_OFFSET_COMMIT: 48,
  INVALID_TAGS: 49,
  INVALID_TAG_EXPRESSION: 50,
  INVALID_DELIVERY_TIME: 51,
  DELAYED_MESSAGE_NOT_FOUND: 52,
  DELAYED_CANCELS_LIMIT_REACHED: 53,
  // 54-56: the archive's write side (issue 11).
  ARCHIVE_UNAVAILABLE: 57,
  UNSUPPORTED_SASL_MECHANISM: 58,
  ILLEGAL_SASL_STATE: 59,
  SASL_AUTHENTICATION_FAILED: 60,
  AUTHENTICATION_REQUIRED: 61,
  INVALID_SASL_MESSAGE: 62,
  AUTHORIZATION_FAILED: 63,
} as const;

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export interface ErrorInfo {
  readonly code: ErrorCode;
  readonly name: string;
  readonly retriable: boolean;
  readonly message: string;
}

const table: ErrorInfo[] = [
  { code: 0, name: 'NONE', retriable: false, message: 'Success.' },
  { code: 1, name: 'UNKNOWN_SERVER_ERROR', retriable: false, message: 'The broker hit an unexpected error while handling the request; it is logged on the broker.' },
  { code: 2, name: 'CORRUPT_MESSAGE', retriable: false, message: 'A record batch failed validation: bad CRC-32C, wrong magic, impossible length or record count.' },
  { code: 3, name: 'UNKNOWN_TOPIC_OR_PARTITION', retriable: true, message: 'The topic or partition does not exist on this broker.' },
  { code: 4, name: 'OFFSET_OUT_OF_RANGE', retriable: false, message: 'The requested offset is below the log start offset or above the log end offset.' },
  { code: 5, name: 'FRAME_TOO_LARGE', retriable: false, message: 'The frame length exceeds the broker limit; the connection is closed after this response.' },
  { code: 6, name: 'UNSUPPORTED_VERSION', retriable: false, message: 'The API version is not supported by this broker; see ApiVersions.' },
  { code: 7, name: 'UNKNOWN_API', retriable: false, message: 'The API key is not known to this broker.' },
  { code: 8, name: 'MALFORMED_REQUEST', retriable: false, message: 'The request header or control section could not be decoded, a field has the wrong type, or the request carries more entries than the broker allows (SPEC §6).' },
  { code: 9, name: 'NOT_LEADER', retriable: true, message: 'This broker is not the leader of the partition; refresh metadata.' },
  { code: 10, name: 'TOPIC_ALREADY_EXISTS', retriable: false, message: 'A topic with this name already exists.' },
  { code: 11, name: 'INVALID_TOPIC', retriable: false, message: 'The topic name is empty, longer than 249 characters, "." or "..", has characters outside [a-zA-Z0-9._-], or the topic is internal (names starting with "__" belong to the broker).' },
  { code: 12, name: 'INVALID_PARTITIONS', retriable: false, message: 'The partition count is not an integer in the allowed range.' },
  { code: 13, name: 'INVALID_CONFIG', retriable: false, message: 'A topic config key is unknown or its value is invalid.' },
  { code: 14, name: 'RECORD_BATCH_TOO_LARGE', retriable: false, message: 'A record batch is larger than the topic max.message.bytes.' },
  { code: 15, name: 'INVALID_REQUIRED_ACKS', retriable: false, message: 'acks must be 0, 1 or -1 (all).' },
  { code: 16, name: 'REQUEST_TIMED_OUT', retriable: true, message: 'The request did not complete within its timeout.' },
  { code: 17, name: 'NOT_ENOUGH_REPLICAS', retriable: true, message: 'Fewer replicas are in sync than the topic requires for acks=all; the write was refused.' },
  { code: 18, name: 'STORAGE_ERROR', retriable: true, message: 'The broker failed to read or write its log on disk.' },
  { code: 19, name: 'BROKER_SHUTTING_DOWN', retriable: true, message: 'The broker is shutting down and takes no new work.' },
  { code: 20, name: 'UNSUPPORTED_COMPRESSION', retriable: false, message: 'The batch uses a compression codec this broker does not accept.' },
  { code: 21, name: 'INVALID_REPLICATION_FACTOR', retriable: false, message: 'The replication factor is larger than the number of brokers or below 1.' },
  { code: 22, name: 'COORDINATOR_NOT_AVAILABLE', retriable: true, message: 'The group or transaction coordinator is not ready (still loading its state, or its internal topic has no live leader yet); retry shortly.' },
  { code: 23, name: 'NOT_COORDINATOR', retriable: true, message: 'This broker is not the coordinator of the group or transactional id; ask FindCoordinator again.' },
  { code: 24, name: 'INVALID_GROUP_ID', retriable: false, message: 'The group id is empty or longer than 249 bytes of UTF-8.' },
  { code: 25, name: 'UNKNOWN_MEMBER_ID', retriable: false, message: 'The member is not in the group (it left or was removed after its session timed out); rejoin with memberEpoch 0.' },
  { code: 26, name: 'FENCED_MEMBER_EPOCH', retriable: false, message: 'The member epoch is not the current one: the member was fenced; rejoin with memberEpoch 0.' },
  { code: 27, name: 'STALE_MEMBER_EPOCH', retriable: false, message: 'An offset commit or fetch carried a member epoch that is neither the member\'s current nor its previous one; retry with the current epoch.' },
  { code: 28, name: 'NON_EMPTY_GROUP', retriable: false, message: 'The group has active members; the operation needs an empty group.' },
  { code: 29, name: 'GROUP_ID_NOT_FOUND', retriable: false, message: 'The group does not exist.' },
  { code: 30, name: 'GROUP_MAX_SIZE_REACHED', retriable: false, message: 'The group already has the largest number of members the broker allows, or it would be a new group beyond the coordinator\'s groupsMax.' },
  { code: 31, name: 'UNSUPPORTED_ASSIGNOR', retriable: false, message: 'The requested partition assignor is not one of uniform, range or round-robin.' },
  { code: 32, name: 'INVALID_REGULAR_EXPRESSION', retriable: false, message: 'The subscription regular expression is not valid, or uses syntax outside the subset the broker matches in linear time (SPEC §6.10).' },
  { code: 33, name: 'INVALID_COMMIT_OFFSET', retriable: false, message: 'A committed offset is negative or the metadata string is too long.' },
  { code: 34, name: 'INVALID_SESSION_TIMEOUT', retriable: false, message: 'The session or rebalance timeout is outside the range the broker allows.' },
  { code: 35, name: 'NOT_CONTROLLER', retriable: true, message: 'This broker is not the controller; topic changes go to the controller named in Metadata.' },
  { code: 36, name: 'FENCED_LEADER_EPOCH', retriable: true, message: 'The request carried an older leader epoch than the partition has; refresh metadata.' },
  { code: 37, name: 'UNKNOWN_LEADER_EPOCH', retriable: true, message: 'The request carried a newer leader epoch than this broker knows yet; retry shortly.' },
  { code: 38, name: 'OUT_OF_ORDER_SEQUENCE_NUMBER', retriable: true, message: 'The batch\'s sequence number leaves a gap after the last one this partition has from the producer: an earlier batch has not arrived (yet). Nothing was appended; resend in order once the earlier batch is written (SPEC §8.5).' },
  { code: 39, name: 'DUPLICATE_SEQUENCE_NUMBER', retriable: false, message: 'The batch was written before, but too long ago for the partition to remember its offset (only the producer\'s last 5 batches are); nothing was appended again.' },
  { code: 40, name: 'INVALID_PRODUCER_EPOCH', retriable: false, message: 'The producer epoch is older than the one the partition has seen for this producer id: a newer instance of the producer exists, and this one is fenced.' },
  { code: 41, name: 'PRODUCER_FENCED', retriable: false, message: 'The transactional id has a newer producer epoch: another instance took it over (InitProducerId); this producer must stop.' },
  { code: 42, name: 'UNKNOWN_PRODUCER_ID', retriable: false, message: 'The partition has no state for this producer id (it expired, or the records were deleted) and the batch does not start a new sequence; the producer must get a new producer id or epoch.' },
  { code: 43, name: 'INVALID_TXN_STATE', retriable: false, message: 'The request is not valid in the transaction\'s current state (for example an EndTxn deciding the other way than the transaction was decided, a non-transactional batch while the producer has a transaction open on the partition, a transaction over 10000 partitions), or the transactional id is empty or longer than 249 bytes.' },
  { code: 44, name: 'INVALID_PRODUCER_ID_MAPPING', retriable: false, message: 'The producer id does not belong to this transactional id.' },
  { code: 45, name: 'INVALID_TRANSACTION_TIMEOUT', retriable: false, message: 'The transaction timeout is not within the range the broker allows.' },
  { code: 46, name: 'CONCURRENT_TRANSACTIONS', retriable: true, message: 'The previous transaction of this transactional id is still being completed, or another request for it is being written; or a partition holds its limit of producers, all in open transactions. Retry shortly.' },
  { code: 47, name: 'TRANSACTION_COORDINATOR_FENCED', retriable: false, message: 'A transaction marker came from a coordinator older than one the partition has heard from.' },
  { code: 48, name: 'UNSTABLE_OFFSET_COMMIT', retriable: true, message: 'The group has offsets for these partitions in a transaction that is not yet committed or aborted; retry shortly.' },
  { code: 49, name: 'INVALID_TAGS', retriable: false, message: 'A batch\'s sluice-tags header is not a valid tag set (SPEC §8.7), or its records do not all carry the same one.' },
  { code: 50, name: 'INVALID_TAG_EXPRESSION', retriable: false, message: 'The Fetch tag expression is not valid (SPEC §6.7): unknown syntax, an invalid tag, or longer than the broker allows.' },
  { code: 51, name: 'INVALID_DELIVERY_TIME', retriable: false, message: 'A batch\'s sluice-deliver-at-ms header is not a valid delivery time (SPEC §8.8): not a decimal number of ms, beyond the broker\'s maximum delay, different between the batch\'s records, on a transactional batch, or on a compacted topic.' },
  { code: 52, name: 'DELAYED_MESSAGE_NOT_FOUND', retriable: false, message: 'No pending delayed message has this id: it was never scheduled, was already released, or was cancelled.' },
  { code: 53, name: 'DELAYED_CANCELS_LIMIT_REACHED', retriable: false, message: 'The partition already holds as many cancelled delayed messages not yet due as the broker allows (delayedCancelsPendingMax, SPEC §6.26); this id was not cancelled (earlier ids of the same request may have been). The limit frees up as cancelled messages reach their time.' },
  { code: 57, name: 'ARCHIVE_UNAVAILABLE', retriable: true, message: 'The offset lies in the partition\'s archive (tiered storage, SPEC §7.10) and the archive store did not answer in time or failed; the broker keeps the data, retry after a backoff.' },
  { code: 58, name: 'UNSUPPORTED_SASL_MECHANISM', retriable: false, message: 'The broker does not offer this SASL mechanism on this connection (SPEC §2.6); the error body lists the ones it offers. The connection stays open for another SaslHandshake.' },
  { code: 59, name: 'ILLEGAL_SASL_STATE', retriable: false, message: 'A SASL request out of order (SPEC §2.6): SaslAuthenticate without a SaslHandshake, a second handshake, a SASL request on an authenticated or failed connection, a request other than ApiVersions between handshake and completion, or two SaslAuthenticate in flight. The connection is closed after this response.' },
  { code: 60, name: 'SASL_AUTHENTICATION_FAILED', retriable: false, message: 'Authentication failed: unknown user, wrong password, or a SCRAM exchange that does not verify (e.g. a replayed message). The broker does not say which. The connection is closed after this response.' },
  { code: 61, name: 'AUTHENTICATION_REQUIRED', retriable: false, message: 'The broker requires SASL authentication (SPEC §2.6) and this connection has not authenticated: only ApiVersions, SaslHandshake and SaslAuthenticate are accepted before. The connection is closed after this response.' },
  { code: 62, name: 'INVALID_SASL_MESSAGE', retriable: false, message: 'A SaslAuthenticate message does not follow its mechanism\'s grammar (SPEC §2.6), e.g. a SCRAM message with a bad attribute, nonce or base64. The connection is closed after this response.' },
  { code: 63, name: 'AUTHORIZATION_FAILED', retriable: false, message: 'The authenticated user is not allowed this operation on this resource (ACLs, SPEC §2.7); the message names the first resource denied. Nothing of the request was done; the connection stays open.' },
];

const byCode = new Map<number, ErrorInfo>(table.map((e) => [e.code, e]));

export function errorInfo(code: number): ErrorInfo {
  return byCode.get(code) ?? { code: code as ErrorCode, name: `UNKNOWN_ERROR_${code}`, retriable: false, message: `Error code ${code} is not in this client's catalogue.` };
}

export function allErrors(): readonly ErrorInfo[] {
  return table;
}

/** An error that carries a wire code, thrown by both the broker and the clients. */
export class SluiceError extends Error {
  readonly code: ErrorCode;
  readonly retriable: boolean;
  constructor(code: ErrorCode, detail?: string) {
    const info = errorInfo(code);
    super(detail ? `${info.name}: ${detail}` : `${info.name}: ${info.message}`);
    this.name = 'SluiceError';
    this.code = code;
    this.retriable = info.retriable;
  }
}
