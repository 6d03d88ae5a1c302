/**
 * Every broker setting in one table: name, unit, default, bounds, help. The command-line flag
 * and the environment variable are derived from the name, so they cannot disagree with it:
 * `fetchResponseBytesMax` is `--fetch-response-bytes-max` and SLUICE_FETCH_RESPONSE_BYTES_MAX.
 * `sluice broker --help` is generated from the table (brokerHelp).
 *
 * Naming: units last, and for bounds the unit before `Max`/`Min` (largest first:
 * `frameBytesMax`, `replicaLagTimeMsMax`), as in server/log/log-config.ts. A setting renamed
 * to this convention keeps its old flag as an alias (listed in --help); old flags are never
 * taken away, scripts and docs use them.
 *
 * Invariants (asserted when this module loads, and by parseBrokerConfig):
 * - names, flags, aliases and environment variables are unique;
 * - every integer default lies within its [min, max];
 * - every value parseBrokerConfig returns (what `sluice broker` runs with) is within its
 *   bounds, and ordered settings are ordered (session timeouts min <= default <= max...);
 *   defaultBrokerConfig takes in-process overrides (tests, embedders) as given;
 * - precedence: a flag beats the environment, which beats the default.
 */
import { DEFAULT_PORT } from '../../protocol/frame.ts';
import type { CoordinatorConfig } from '../group/group-coordinator.ts';
import { PRODUCER_ID_EXPIRATION_MS_DEFAULT, PRODUCER_IDS_PER_PARTITION_MAX_DEFAULT } from '../log/producer-state.ts';
import { DELAYED_CANCELS_PENDING_MAX_DEFAULT, DELAYED_DELIVERY_MS_MAX_DEFAULT, DELAYED_ENTRIES_PER_SEGMENT_MAX_DEFAULT, DELAYED_RELEASE_SLICE_BYTES_MAX_DEFAULT, DELAYED_RELEASE_SLICE_ENTRIES_MAX_DEFAULT } from '../delay/delay-config.ts';
import { DEFAULT_ARCHIVE_READ_TIMEOUT_MS } from '../archive/archived-reader.ts';
import { CLEANER_INTERVAL_MS_DEFAULT, FLUSH_CHECK_INTERVAL_MS_DEFAULT, RETENTION_CHECK_INTERVAL_MS_DEFAULT } from '../log/log-manager.ts';

export { DEFAULT_PORT };

export type LogLevelName = 'debug' | 'info' | 'warn' | 'error';
export type LogFormatName = 'text' | 'json';

/** The coordinator's settings (groupsMax, session timeouts...) are part of it, under the same names. */
export interface BrokerConfig extends CoordinatorConfig {
  brokerId: number;
  dataDir: string;
  host: string;
  port: number;
  /** Host and port put in Metadata; defaults to host (127.0.0.1 when host is a wildcard) and port. */
  advertisedHost: string;
  advertisedPort: number;
  /** etcd://host:port[,host:port…] for cluster mode; null for the embedded single-broker store. */
  metadataUrl: string | null;
  logLevel: LogLevelName;
  frameBytesMax: number;
  pipelinedRequestsMax: number;
  writeBufferBytesMax: number;
  fetchResponseBytesMax: number;
  partialFrameBytesTotalMax: number;
  partialFrameTimeoutMs: number;
  connectionsMax: number;
  startupConnectionsQueuedMax: number;
  fetchWaitMsMax: number;
  fetchTagScanBatchesMax: number;
  partitionsMax: number;
  shutdownGraceMs: number;
  retentionCheckIntervalMs: number;
  flushCheckIntervalMs: number;
  cleanerIntervalMs: number;
  brokerSessionTtlSeconds: number;
  replicaLagTimeMsMax: number;
  isrCheckIntervalMs: number;
  replicaFetchWaitMsMax: number;
  replicaFetchResponseBytesMax: number;
  replicaFetchPartitionBytesMax: number;
  replicaFetchBackoffMs: number;
  replicaFetchBackoffMsMax: number;
  offsetsTopicReplicationFactor: number;
  offsetsCommitWaitMsMax: number;
  /** Producers remembered per partition (server/log/producer-state.ts). */
  producerIdsPerPartitionMax: number;
  /** A producer idle this long without an open transaction is forgotten (SPEC §7.7). */
  producerIdExpirationMs: number;
  /** Delayed delivery (SPEC §8.8, §7.9; server/delay/). */
  delayedDeliveryMsMax: number;
  delayedCancelsPendingMax: number;
  delayedEntriesPerSegmentMax: number;
  delayedReleaseSliceEntriesMax: number;
  delayedReleaseSliceBytesMax: number;
  /** Transactions (SPEC §6.19-6.22, §7.6; server/txn/). */
  transactionTimeoutMsMax: number;
  transactionStateReplicationFactor: number;
  transactionalIdsMax: number;
  transactionSweepIntervalMs: number;
  transactionalIdExpirationMs: number;
  txnMarkerBackoffMs: number;
  txnMarkerBackoffMsMax: number;
  /** An event-loop delay at least this long is logged as a stall (server/observability/event-loop-delay.ts). */
  eventLoopStallWarnMs: number;
  /** Metrics and logs (issue 12): log line format; Prometheus endpoint (0: off; server/observability/). */
  logFormat: LogFormatName;
  metricsPort: number;
  metricsHost: string;
  /** Tiered storage (SPEC §7.10; server/archive/): the store (a directory or an S3 bucket, not both) and the uploader. */
  archiveDir: string | null;
  archiveS3Endpoint: string | null;
  archiveS3Bucket: string | null;
  archiveS3Prefix: string;
  archiveS3Region: string;
  /** 'true' | 'false'; null: true with a custom endpoint, false for AWS. */
  archiveS3PathStyle: string | null;
  /** 'true' | 'false': archive.enable of topics created without it. */
  archiveEnable: string;
  archiveUploadConcurrency: number;
  archiveUploadBytesPerSec: number;
  archiveReadCacheBytes: number;
  archiveCheckIntervalMs: number;
  archiveReadTimeoutMs: number;
  /** Security (SPEC §2.5, §2.6; server/security/). TLS: PEM file paths; null = plaintext. */
  tlsCert: string | null;
  tlsKey: string | null;
  tlsCa: string | null;
  tlsClientAuth: 'none' | 'request' | 'required';
  tlsHandshakeTimeoutMs: number;
  /** 'sasl': every connection authenticates (SaslHandshake + SaslAuthenticate) before other requests. */
  authentication: 'none' | 'sasl';
  /** Comma-separated SASL mechanisms offered: SCRAM-SHA-256, PLAIN. */
  saslMechanisms: string;
  saslPlainOverPlaintext: 'refuse' | 'allow';
  saslAuthenticationTimeoutMs: number;
  /** The user a broker authenticates as when it dials another broker of a cluster with authentication. */
  interBrokerSaslUsername: string | null;
  interBrokerSaslPassword: string | null;
  /** ACLs (SPEC §2.7): comma-separated user names allowed everything; enforced when authentication is sasl. */
  superUsers: string | null;
  aclRefreshIntervalMs: number;
  /** Web console (issue 12; console/): HTTP port (0: off), address, and whether it may alter anything. */
  consolePort: number;
  consoleHost: string;
  consoleAllowWrites: 'true' | 'false';
  /** The user the console's clients authenticate as when --authentication is sasl; its ACLs bound what the console shows and does. */
  consoleSaslUsername: string | null;
  consoleSaslPassword: string | null;
}

/** SASL mechanisms a broker can offer (SPEC §2.6). */
export const SASL_MECHANISMS = ['SCRAM-SHA-256', 'PLAIN'] as const;

type IntName = { [K in keyof BrokerConfig]: BrokerConfig[K] extends number ? K : never }[keyof BrokerConfig];
type TextName = Exclude<keyof BrokerConfig, IntName>;

interface SettingBase {
  /** Old flag spellings still accepted (a setting renamed to the units-last convention). */
  readonly aliases?: readonly string[];
  readonly help: string;
  /** Shown as the default in --help when the default is derived from other settings. */
  readonly defaultText?: string;
}
export interface IntSetting extends SettingBase {
  readonly name: IntName;
  readonly kind: 'int';
  readonly unit: 'bytes' | 'ms' | 'seconds' | 'count' | 'id' | 'port';
  /** null: derived from other settings (see resolve()). */
  readonly default: number | null;
  readonly min: number;
  readonly max: number;
}
export interface TextSetting extends SettingBase {
  readonly name: TextName;
  readonly kind: 'text';
  readonly default: string | null;
  /** Returns an error message for a bad value. */
  readonly check?: (value: string) => string | null;
  readonly choices?: readonly string[];
}
export type Setting = IntSetting | TextSetting;

const KiB = 1024;
const MiB = 1024 * KiB;
const INT32_MAX = 2 ** 31 - 1;
/** setTimeout's largest delay; a longer one fires at once. */
const TIMER_MS_MAX = INT32_MAX;
const DAY_MS = 24 * 3600 * 1000;

const int = (s: Omit<IntSetting, 'kind'>): IntSetting => ({ kind: 'int', ...s });
const text = (s: Omit<TextSetting, 'kind'>): TextSetting => ({ kind: 'text', ...s });

/** In --help order: identity and addresses, client limits, storage, cluster, groups. */
export const BROKER_SETTINGS: readonly Setting[] = Object.freeze([
  text({ name: 'dataDir', default: './data', help: 'where partition logs and metadata live' }),
  text({ name: 'host', default: '127.0.0.1', help: 'address to listen on; 0.0.0.0 (or ::) opens the port on every interface, and without --tls-cert and --authentication sasl anyone who reaches it may produce, consume and delete (README Security)' }),
  int({ name: 'port', unit: 'port', default: DEFAULT_PORT, min: 0, max: 65_535, help: 'TCP port (0 picks a free one)' }),
  int({ name: 'brokerId', unit: 'id', default: 0, min: 0, max: INT32_MAX, help: "this broker's id in metadata" }),
  text({ name: 'advertisedHost', default: null, defaultText: 'host, or 127.0.0.1 for a wildcard', help: 'host clients are told to connect to' }),
  int({ name: 'advertisedPort', unit: 'port', default: null, defaultText: 'the bound port', min: 0, max: 65_535, help: 'port clients are told to connect to' }),
  text({
    name: 'metadataUrl',
    aliases: ['--metadata'],
    default: null,
    defaultText: 'embedded: a single broker with its metadata in the data dir',
    check: (v) => (v.startsWith('etcd://') ? null : 'takes etcd://host:port[,host:port...]'),
    help: 'cluster mode: etcd://host:port[,host:port...] of the etcd cluster that holds membership, controller election and metadata',
  }),
  text({ name: 'logLevel', default: 'info', choices: ['debug', 'info', 'warn', 'error'], help: 'least severe log line written to stderr' }),

  int({ name: 'frameBytesMax', aliases: ['--max-frame-bytes'], unit: 'bytes', default: 64 * MiB, min: 1 * KiB, max: INT32_MAX, help: 'largest request frame accepted; a larger one gets FRAME_TOO_LARGE and the connection closes' }),
  int({ name: 'pipelinedRequestsMax', unit: 'count', default: 256, min: 1, max: 65_536, help: 'requests received on one connection and not yet answered before the broker stops reading it' }),
  int({ name: 'writeBufferBytesMax', unit: 'bytes', default: 64 * MiB, min: 1, max: 2 ** 40, help: 'unsent response bytes per connection before the broker stops reading its requests until the client reads' }),
  int({ name: 'fetchResponseBytesMax', unit: 'bytes', default: 55 * MiB, min: 1, max: INT32_MAX, help: 'most record bytes in one Fetch response, whatever its maxBytes; one batch is always returned even if larger' }),
  int({ name: 'partialFrameBytesTotalMax', unit: 'bytes', default: 256 * MiB, min: 0, max: 2 ** 40, help: 'bytes of half-received request frames, all connections together, before connections sending more pause' }),
  int({ name: 'partialFrameTimeoutMs', unit: 'ms', default: 60_000, min: 1, max: TIMER_MS_MAX, help: 'a connection whose started request frame is not complete within this (and completes no other frame meanwhile) gets REQUEST_TIMED_OUT and is closed' }),
  int({ name: 'connectionsMax', unit: 'count', default: 4096, min: 1, max: 1_000_000, help: 'open client connections; more are closed at once' }),
  int({ name: 'startupConnectionsQueuedMax', unit: 'count', default: 1024, min: 0, max: 1_000_000, help: 'connections accepted while the broker starts, held paused until it serves; more are closed' }),
  int({ name: 'fetchWaitMsMax', unit: 'ms', default: 30_000, min: 0, max: TIMER_MS_MAX, help: 'longest a Fetch may wait for data, whatever the client asks' }),
  int({ name: 'fetchTagScanBatchesMax', unit: 'count', default: 100_000, min: 1, max: 100_000_000, help: 'batches a filtered Fetch (tag expression) examines per request, matching or not, before it answers with what it found and where to fetch next' }),
  int({ name: 'partitionsMax', unit: 'count', default: 10_000, min: 1, max: 10_000_000, help: 'partitions of one topic; creating or growing a topic beyond it gets INVALID_PARTITIONS' }),
  int({ name: 'eventLoopStallWarnMs', unit: 'ms', default: 1000, min: 1, max: TIMER_MS_MAX, help: 'log a warning when the event loop was blocked this long or longer' }),
  int({ name: 'shutdownGraceMs', unit: 'ms', default: 5_000, min: 0, max: TIMER_MS_MAX, help: 'on SIGTERM, how long connections get to receive their responses before they are closed' }),

  int({ name: 'retentionCheckIntervalMs', unit: 'ms', default: RETENTION_CHECK_INTERVAL_MS_DEFAULT, min: 1, max: TIMER_MS_MAX, help: 'how often segments past retention.ms / retention.bytes are deleted' }),
  int({ name: 'flushCheckIntervalMs', unit: 'ms', default: FLUSH_CHECK_INTERVAL_MS_DEFAULT, min: 1, max: TIMER_MS_MAX, help: 'how often partitions are checked against flush.ms / flush.messages' }),
  int({ name: 'cleanerIntervalMs', unit: 'ms', default: CLEANER_INTERVAL_MS_DEFAULT, min: 1, max: TIMER_MS_MAX, help: 'how often compacted topics are cleaned' }),

  int({ name: 'brokerSessionTtlSeconds', unit: 'seconds', default: 6, min: 1, max: 3600, help: 'the broker is dead to the cluster this long after its last lease renewal' }),
  int({ name: 'replicaLagTimeMsMax', aliases: ['--replica-lag-time-max-ms'], unit: 'ms', default: 400, min: 1, max: TIMER_MS_MAX, help: 'a follower that has not caught up for this long leaves the ISR, so acks=all stops waiting for a hung follower after about this long (a dead one leaves at once); raise it where brokers stall for longer (Kafka: 30000)' }),
  int({ name: 'isrCheckIntervalMs', unit: 'ms', default: 100, min: 1, max: TIMER_MS_MAX, help: 'how often a leader checks its followers against replica-lag-time-ms-max' }),
  int({ name: 'replicaFetchWaitMsMax', unit: 'ms', default: 500, min: 0, max: TIMER_MS_MAX, help: "long-poll wait of a follower's fetch" }),
  int({ name: 'replicaFetchResponseBytesMax', unit: 'bytes', default: 16 * MiB, min: 1, max: INT32_MAX, help: "record bytes a follower asks for in one fetch, all partitions together" }),
  int({ name: 'replicaFetchPartitionBytesMax', unit: 'bytes', default: 4 * MiB, min: 1, max: INT32_MAX, help: "record bytes a follower asks for per partition in one fetch" }),
  int({ name: 'replicaFetchBackoffMs', unit: 'ms', default: 100, min: 0, max: TIMER_MS_MAX, help: 'first wait of a follower after a failed fetch; doubles up to replica-fetch-backoff-ms-max' }),
  int({ name: 'replicaFetchBackoffMsMax', unit: 'ms', default: 2000, min: 0, max: TIMER_MS_MAX, help: 'longest wait of a follower between failed fetches' }),
  int({ name: 'offsetsTopicReplicationFactor', unit: 'count', default: 3, min: 1, max: 1000, help: 'replicas of __consumer_offsets in a cluster; created once this many brokers are live (1 on a single broker)' }),
  int({ name: 'producerIdsPerPartitionMax', unit: 'count', default: PRODUCER_IDS_PER_PARTITION_MAX_DEFAULT, min: 1, max: 10_000_000, help: 'idempotent producers remembered per partition; a new one evicts the longest idle without an open transaction (its retries then get UNKNOWN_PRODUCER_ID), or gets CONCURRENT_TRANSACTIONS when all have one' }),
  int({ name: 'producerIdExpirationMs', unit: 'ms', default: PRODUCER_ID_EXPIRATION_MS_DEFAULT, min: 1, max: 365 * DAY_MS, help: 'a producer that wrote nothing to a partition for this long and has no open transaction there is forgotten (checked every retention-check-interval-ms)' }),
  int({ name: 'delayedDeliveryMsMax', unit: 'ms', default: DELAYED_DELIVERY_MS_MAX_DEFAULT, min: 1, max: 100 * 365 * DAY_MS, help: 'largest delay a producer may ask for (sluice-deliver-at-ms at most now + this); a later time gets INVALID_DELIVERY_TIME' }),
  int({ name: 'delayedCancelsPendingMax', unit: 'count', default: DELAYED_CANCELS_PENDING_MAX_DEFAULT, min: 1, max: 100_000_000, help: 'cancelled delayed messages not yet due that one partition holds in memory; a cancel beyond gets DELAYED_CANCELS_LIMIT_REACHED' }),
  int({ name: 'delayedEntriesPerSegmentMax', unit: 'count', default: DELAYED_ENTRIES_PER_SEGMENT_MAX_DEFAULT, min: 1, max: 100_000_000, help: 'a segment rolls once it holds this many scheduled delayed messages, which bounds the delay entries kept for the active segment (16 bytes each)' }),
  int({ name: 'delayedReleaseSliceEntriesMax', unit: 'count', default: DELAYED_RELEASE_SLICE_ENTRIES_MAX_DEFAULT, min: 1, max: 1_000_000, help: 'delayed messages released in one append before the releaser lets other work run' }),
  int({ name: 'delayedReleaseSliceBytesMax', unit: 'bytes', default: DELAYED_RELEASE_SLICE_BYTES_MAX_DEFAULT, min: 1, max: INT32_MAX, help: 'bytes of released messages in one append (at least one message) before the releaser lets other work run' }),
  int({ name: 'offsetsCommitWaitMsMax', unit: 'ms', default: 30_000, min: 1, max: TIMER_MS_MAX, help: 'longest an offset commit waits for the offsets topic to replicate it' }),

  int({ name: 'groupsMax', unit: 'count', default: 10_000, min: 1, max: 10_000_000, help: 'consumer groups this broker coordinates; a new one beyond gets GROUP_MAX_SIZE_REACHED' }),
  int({ name: 'groupMembersMax', unit: 'count', default: 1000, min: 1, max: 1_000_000, help: 'members of one consumer group' }),
  int({ name: 'heartbeatIntervalMs', unit: 'ms', default: 1000, min: 1, max: TIMER_MS_MAX, help: 'heartbeat interval told to group members' }),
  int({ name: 'sessionTimeoutMsMin', unit: 'ms', default: 1000, min: 1, max: TIMER_MS_MAX, help: 'shortest session timeout a member may ask for' }),
  int({ name: 'sessionTimeoutMsMax', unit: 'ms', default: 300_000, min: 1, max: TIMER_MS_MAX, help: 'longest session timeout a member may ask for' }),
  int({ name: 'sessionTimeoutMsDefault', unit: 'ms', default: 10_000, min: 1, max: TIMER_MS_MAX, help: 'session timeout of a member that asks for none' }),
  int({ name: 'rebalanceTimeoutMsDefault', unit: 'ms', default: 30_000, min: 1, max: TIMER_MS_MAX, help: 'rebalance timeout of a member that asks for none' }),
  int({ name: 'rebalanceTimeoutMsMax', unit: 'ms', default: 600_000, min: 1, max: TIMER_MS_MAX, help: 'longest rebalance timeout a member may ask for' }),
  int({ name: 'offsetsRetentionMs', unit: 'ms', default: 7 * DAY_MS, min: 1, max: 365 * DAY_MS, help: 'committed offsets of a group without members are deleted this long after its last commit' }),
  int({ name: 'groupSweepIntervalMs', unit: 'ms', default: 250, min: 1, max: TIMER_MS_MAX, help: 'how often members whose session expired are removed' }),
  int({ name: 'offsetsExpiryCheckIntervalMs', unit: 'ms', default: 60_000, min: 1, max: TIMER_MS_MAX, help: 'how often expired committed offsets are deleted' }),

  int({ name: 'transactionTimeoutMsMax', unit: 'ms', default: 900_000, min: 1, max: INT32_MAX, help: 'longest transactionTimeoutMs a transactional producer may ask for; a longer one gets INVALID_TRANSACTION_TIMEOUT' }),
  int({ name: 'transactionStateReplicationFactor', unit: 'count', default: 3, min: 1, max: 1000, help: 'replicas of __transaction_state in a cluster; created once this many brokers are live (1 on a single broker)' }),
  int({ name: 'transactionalIdsMax', unit: 'count', default: 100_000, min: 1, max: 10_000_000, help: 'transactional ids this broker coordinates; InitProducerId for one more gets COORDINATOR_NOT_AVAILABLE' }),
  int({ name: 'transactionSweepIntervalMs', unit: 'ms', default: 1000, min: 1, max: TIMER_MS_MAX, help: 'how often transactions open longer than their timeout are aborted, and unfinished ones completed again' }),
  int({ name: 'transactionalIdExpirationMs', unit: 'ms', default: 7 * DAY_MS, min: 1, max: 365 * DAY_MS, help: 'a transactional id without an open transaction, unused this long, is forgotten (its next InitProducerId gets a new producer id)' }),
  int({ name: 'txnMarkerBackoffMs', unit: 'ms', default: 50, min: 1, max: TIMER_MS_MAX, help: 'first wait before a transaction marker that a leader did not take is sent again; doubles up to txn-marker-backoff-ms-max' }),
  int({ name: 'txnMarkerBackoffMsMax', unit: 'ms', default: 2000, min: 1, max: TIMER_MS_MAX, help: 'longest wait between attempts to write a transaction marker' }),

  // Metrics and logs (issue 12; README "Metrics and logs"). logLevel is listed above.
  text({ name: 'logFormat', default: 'text', choices: ['text', 'json'], help: 'log lines on stderr: text (TIME LEVEL component: message key=value...) or json (one object per line: time, level, component, msg, fields)' }),
  int({ name: 'metricsPort', unit: 'port', default: 0, min: 0, max: 65_535, help: 'serve Prometheus metrics over HTTP at /metrics on this port; 0 turns the endpoint off' }),
  text({ name: 'metricsHost', default: '127.0.0.1', help: 'address the metrics endpoint listens on (0.0.0.0 for every interface: the metrics then reach whoever can connect, without authentication)' }),

  text({ name: 'archiveDir', default: null, defaultText: 'none', help: 'tiered storage: archive old segments of topics with archive.enable=true into this directory (a local disk, or NFS/an HDFS gateway mounted there); not with --archive-s3-bucket' }),
  text({ name: 'archiveS3Endpoint', default: null, defaultText: "AWS's endpoint for the region", check: (v) => (/^https?:\/\/[^\s/]+/.test(v) ? null : 'takes http(s)://host[:port]'), help: 'tiered storage in an S3-compatible store (MinIO, Ceph, ...): its URL; credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or the SDK\'s other usual sources' }),
  text({ name: 'archiveS3Bucket', default: null, defaultText: 'none', help: 'tiered storage: the S3 bucket that holds the archive (it must exist)' }),
  text({ name: 'archiveS3Prefix', default: '', defaultText: 'none', help: 'tiered storage: key prefix inside the bucket, e.g. sluice/' }),
  text({ name: 'archiveS3Region', default: 'us-east-1', help: 'tiered storage: the S3 region' }),
  text({ name: 'archiveS3PathStyle', default: null, defaultText: 'true with --archive-s3-endpoint, else false', choices: ['true', 'false'], help: 'tiered storage: path-style S3 addressing (http://host/bucket/key), what self-hosted stores want' }),
  text({ name: 'archiveEnable', default: 'false', choices: ['true', 'false'], help: 'archive.enable of topics created without it (needs an archive store; compacted and internal topics are never archived)' }),
  int({ name: 'archiveUploadConcurrency', unit: 'count', default: 2, min: 1, max: 1000, help: 'segments uploaded to the archive at once, all partitions together' }),
  int({ name: 'archiveUploadBytesPerSec', unit: 'bytes', default: 0, min: 0, max: 2 ** 40, help: 'upload bandwidth to the archive, all partitions together, bytes per second; 0 = unlimited' }),
  int({ name: 'archiveReadCacheBytes', unit: 'bytes', default: 64 * MiB, min: 0, max: 2 ** 40, help: 'memory for recently read archived chunks, all partitions together' }),
  int({ name: 'archiveCheckIntervalMs', unit: 'ms', default: 1000, min: 1, max: TIMER_MS_MAX, help: 'how often a leader looks for sealed segments to archive and applies archive retention; failed uploads retry after a backoff from this, doubling up to 30 s' }),
  int({ name: 'archiveReadTimeoutMs', unit: 'ms', default: DEFAULT_ARCHIVE_READ_TIMEOUT_MS, min: 1, max: TIMER_MS_MAX, help: 'longest an archive read may take; a consumer fetch of archived offsets then gets ARCHIVE_UNAVAILABLE (retriable) for that partition' }),

  // Security (SPEC §2.5 TLS, §2.6 SASL; README "Security").
  text({ name: 'tlsCert', default: null, defaultText: 'none: the port speaks plaintext', help: 'PEM certificate (chain) of this broker; with --tls-key the one port speaks TLS only, and brokers of a cluster dial each other over TLS' }),
  text({ name: 'tlsKey', default: null, defaultText: 'none', help: 'PEM private key of --tls-cert' }),
  text({ name: 'tlsCa', default: null, defaultText: "none: the system's roots", help: 'PEM CA certificate(s) that client certificates and, between brokers, peer certificates must chain to' }),
  text({ name: 'tlsClientAuth', default: 'none', choices: ['none', 'request', 'required'], help: 'client certificates: not asked for; asked for and verified when sent; required and verified (needs --tls-ca)' }),
  int({ name: 'tlsHandshakeTimeoutMs', unit: 'ms', default: 10_000, min: 1, max: TIMER_MS_MAX, help: 'a connection whose TLS handshake has not completed within this is closed' }),
  text({ name: 'authentication', default: 'none', choices: ['none', 'sasl'], help: 'sasl: a connection must authenticate (SaslHandshake, SaslAuthenticate) before any request but ApiVersions; users: sluice user create' }),
  text({ name: 'saslMechanisms', default: 'SCRAM-SHA-256', check: checkMechanisms, help: 'comma-separated SASL mechanisms offered: SCRAM-SHA-256, PLAIN (PLAIN only with TLS unless --sasl-plain-over-plaintext allow)' }),
  text({ name: 'saslPlainOverPlaintext', default: 'refuse', choices: ['refuse', 'allow'], help: 'allow PLAIN, which sends the password itself, on a port without TLS' }),
  int({ name: 'saslAuthenticationTimeoutMs', unit: 'ms', default: 10_000, min: 1, max: TIMER_MS_MAX, help: 'with --authentication sasl, a connection not authenticated within this of connecting is closed' }),
  text({ name: 'interBrokerSaslUsername', default: null, defaultText: 'none', help: 'user a broker authenticates as (SCRAM-SHA-256) when it dials a peer; required in a cluster with --authentication sasl' }),
  text({ name: 'interBrokerSaslPassword', default: null, defaultText: 'none', help: 'password of --inter-broker-sasl-username; prefer the environment variable, which ps does not show' }),
  text({ name: 'superUsers', default: null, defaultText: 'none but the inter-broker user', help: 'comma-separated users allowed every operation whatever the ACLs; with --authentication sasl everyone else needs an ACL (sluice acl add) for everything' }),
  int({ name: 'aclRefreshIntervalMs', unit: 'ms', default: 1000, min: 10, max: TIMER_MS_MAX, help: 'how often the broker reads the ACLs from the metadata store; an ACL change counts within about this long' }),

  // Web console (issue 12; README "Web console"; console/).
  int({ name: 'consolePort', unit: 'port', default: 0, min: 0, max: 65_535, help: 'serve the web console over HTTP on this port; 0 turns it off' }),
  text({ name: 'consoleHost', default: '127.0.0.1', help: 'address the web console listens on (0.0.0.0 for every interface: it then shows topics, groups and messages to whoever can connect, without authentication)' }),
  text({ name: 'consoleAllowWrites', default: 'false', choices: ['false', 'true'], help: 'true lets the web console replay DLQ messages, cancel delayed messages and delete topics and groups, for anyone who can reach it; false (the default) keeps it read-only' }),
  text({ name: 'consoleSaslUsername', default: null, defaultText: 'none', help: 'with --authentication sasl, the user the web console authenticates as (SCRAM-SHA-256); the broker applies its ACLs to everything the console reads and does' }),
  text({ name: 'consoleSaslPassword', default: null, defaultText: 'none', help: 'password of --console-sasl-username; prefer the environment variable, which ps does not show' }),
]);

function checkMechanisms(v: string): string | null {
  const list = v.split(',').map((m) => m.trim());
  for (const m of list) if (!(SASL_MECHANISMS as readonly string[]).includes(m)) return `lists ${JSON.stringify(m)}; known mechanisms: ${SASL_MECHANISMS.join(', ')}`;
  return new Set(list).size === list.length ? null : 'lists a mechanism twice';
}

/** Settings whose values must be ordered: [smaller, larger]. */
const ORDERED: readonly (readonly [IntName, IntName])[] = [
  ['sessionTimeoutMsMin', 'sessionTimeoutMsDefault'],
  ['sessionTimeoutMsDefault', 'sessionTimeoutMsMax'],
  ['rebalanceTimeoutMsDefault', 'rebalanceTimeoutMsMax'],
  ['replicaFetchBackoffMs', 'replicaFetchBackoffMsMax'],
  ['txnMarkerBackoffMs', 'txnMarkerBackoffMsMax'],
];

/** `fetchResponseBytesMax` → `fetch-response-bytes-max`. */
function kebab(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

export function flagOf(s: Setting): string {
  return `--${kebab(s.name)}`;
}

export function envOf(s: Setting): string {
  return `SLUICE_${kebab(s.name).replaceAll('-', '_').toUpperCase()}`;
}

const BY_FLAG = new Map<string, Setting>();
const BY_NAME = new Map<string, Setting>();
for (const s of BROKER_SETTINGS) {
  if (BY_NAME.has(s.name)) throw new Error(`broker setting ${s.name} is listed twice`);
  BY_NAME.set(s.name, s);
  for (const f of [flagOf(s), ...(s.aliases ?? [])]) {
    if (BY_FLAG.has(f)) throw new Error(`broker flag ${f} is listed twice`);
    BY_FLAG.set(f, s);
  }
  if (s.kind === 'int' && s.default !== null && !(s.min <= s.default && s.default <= s.max)) throw new Error(`default of ${s.name} is out of its bounds`);
}

/** A bad flag, environment variable or value: main prints the message on one line and exits 2. */
export class BrokerConfigError extends Error {}

/** `from` names where the value came from, for the error: a flag or an environment variable. */
function parseValue(s: Setting, raw: string, from: string): number | string {
  if (s.kind === 'text') {
    if (s.choices && !s.choices.includes(raw)) throw new BrokerConfigError(`${from} must be one of ${s.choices.join(', ')}, got ${JSON.stringify(raw)}`);
    const problem = s.check?.(raw);
    if (problem) throw new BrokerConfigError(`${from} ${problem}, got ${JSON.stringify(raw)}`);
    return raw;
  }
  const n = /^-?\d+$/.test(raw.trim()) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(n)) throw new BrokerConfigError(`${from} needs an integer (${s.unit}), got ${JSON.stringify(raw)}`);
  if (n < s.min) throw new BrokerConfigError(`${from} is ${n}, below its minimum ${s.min}`);
  if (n > s.max) throw new BrokerConfigError(`${from} is ${n}, above its maximum ${s.max}`);
  return n;
}

/** Fills in defaults and the derived advertised address, then checks settings against each other. */
function resolve(values: Partial<BrokerConfig>): BrokerConfig {
  const out: Record<string, unknown> = {};
  for (const s of BROKER_SETTINGS) out[s.name] = values[s.name] !== undefined ? values[s.name] : s.default;
  const c = out as unknown as BrokerConfig;
  const wildcard = c.host === '0.0.0.0' || c.host === '::';
  if (c.advertisedHost === null) c.advertisedHost = wildcard ? '127.0.0.1' : c.host;
  if (c.advertisedPort === null) c.advertisedPort = c.port;
  checkSecurity(c);
  checkConsole(c);
  for (const [small, large] of ORDERED) {
    if (c[small] > c[large]) throw new BrokerConfigError(`${flagOf(BY_NAME.get(small)!)} (${c[small]}) must not exceed ${flagOf(BY_NAME.get(large)!)} (${c[large]})`);
  }
  // One archive store per broker: a directory or a bucket.
  if (c.archiveDir && c.archiveS3Bucket) throw new BrokerConfigError('--archive-dir and --archive-s3-bucket both set: the archive is in one store, choose one');
  if (!c.archiveS3Bucket && c.archiveS3Endpoint) throw new BrokerConfigError('--archive-s3-endpoint needs --archive-s3-bucket');
  return c;
}

/**
 * Defaults, with `overrides` on top (tests and embedders). Overrides are taken as given: code
 * that builds a broker in-process may use values outside the command-line bounds.
 */
export function defaultBrokerConfig(overrides: Partial<BrokerConfig> = {}): BrokerConfig {
  return resolve(overrides);
}

/**
 * Command-line flags over SLUICE_* environment variables over defaults. Throws
 * BrokerConfigError naming the flag or variable for an unknown flag or a value out of bounds;
 * returns 'help' for -h / --help. SLUICE_ variables that name no setting are ignored (the CLI
 * tools have their own, e.g. SLUICE_DEBUG).
 */
export function parseBrokerConfig(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): BrokerConfig | 'help' {
  // Help is shown whatever else is wrong, so it can explain what is.
  if (argv.includes('-h') || argv.includes('--help')) return 'help';
  const values: Record<string, unknown> = {};
  for (const s of BROKER_SETTINGS) {
    const raw = env[envOf(s)];
    if (raw !== undefined && raw !== '') values[s.name] = parseValue(s, raw, envOf(s));
  }
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const s = BY_FLAG.get(flag);
    if (!s) throw new BrokerConfigError(`unknown flag ${flag} (sluice broker --help lists them)`);
    const raw = argv[++i];
    if (raw === undefined) throw new BrokerConfigError(`${flag} needs a value`);
    values[s.name] = parseValue(s, raw, flag);
  }
  return resolve(values as Partial<BrokerConfig>);
}

/** Security settings that only make sense together (SPEC §2.5, §2.6). */
function checkSecurity(c: BrokerConfig): void {
  if (Boolean(c.tlsCert) !== Boolean(c.tlsKey)) throw new BrokerConfigError('--tls-cert and --tls-key go together: give both or neither');
  if (c.tlsClientAuth !== 'none' && !c.tlsCert) throw new BrokerConfigError(`--tls-client-auth ${c.tlsClientAuth} needs TLS: --tls-cert and --tls-key`);
  if (c.tlsClientAuth !== 'none' && !c.tlsCa) throw new BrokerConfigError(`--tls-client-auth ${c.tlsClientAuth} needs --tls-ca to verify client certificates against`);
  const mechanisms = c.saslMechanisms.split(',').map((m) => m.trim());
  if (mechanisms.includes('PLAIN') && !c.tlsCert && c.saslPlainOverPlaintext !== 'allow') {
    throw new BrokerConfigError('--sasl-mechanisms PLAIN sends passwords as they are: it needs TLS (--tls-cert, --tls-key), or --sasl-plain-over-plaintext allow');
  }
  if (Boolean(c.interBrokerSaslUsername) !== Boolean(c.interBrokerSaslPassword)) throw new BrokerConfigError('--inter-broker-sasl-username and --inter-broker-sasl-password go together');
  if (c.authentication === 'sasl' && c.metadataUrl && !c.interBrokerSaslUsername) {
    throw new BrokerConfigError('a cluster with --authentication sasl needs --inter-broker-sasl-username and --inter-broker-sasl-password (SLUICE_INTER_BROKER_SASL_PASSWORD): brokers authenticate to each other');
  }
}

/** The web console's own credentials: needed exactly when its clients must authenticate. */
function checkConsole(c: BrokerConfig): void {
  if (Boolean(c.consoleSaslUsername) !== Boolean(c.consoleSaslPassword)) throw new BrokerConfigError('--console-sasl-username and --console-sasl-password go together');
  if (c.consolePort > 0 && c.authentication === 'sasl' && !c.consoleSaslUsername) {
    throw new BrokerConfigError('the web console (--console-port) of a broker with --authentication sasl needs --console-sasl-username and --console-sasl-password (SLUICE_CONSOLE_SASL_PASSWORD): the user it reads as, whose ACLs the broker applies');
  }
}

const HELP_WIDTH = 96;

function wrap(textToWrap: string, indent: string): string {
  const lines: string[] = [];
  let line = '';
  for (const word of textToWrap.split(' ')) {
    if (line && indent.length + line.length + 1 + word.length > HELP_WIDTH) {
      lines.push(indent + line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(indent + line);
  return lines.join('\n');
}

function defaultOf(s: Setting): string {
  if (s.defaultText) return s.defaultText;
  if (s.kind === 'text') return String(s.default);
  const n = s.default!;
  if (s.unit === 'bytes' && n >= MiB && n % MiB === 0) return `${n}, ${n / MiB} MiB`;
  return String(n);
}

const METAVAR: Record<IntSetting['unit'], string> = { bytes: 'BYTES', ms: 'MS', seconds: 'SECONDS', count: 'N', id: 'N', port: 'PORT' };

const TEXT_METAVAR: Partial<Record<TextName, string>> = { superUsers: 'USERS', tlsCert: 'FILE', tlsKey: 'FILE', tlsCa: 'FILE', saslMechanisms: 'LIST', interBrokerSaslUsername: 'USER', interBrokerSaslPassword: 'PASSWORD', consoleSaslUsername: 'USER', consoleSaslPassword: 'PASSWORD' };

/** The text of `sluice broker --help`, generated from BROKER_SETTINGS. */
export function brokerHelp(): string {
  const out = [
    'usage: sluice broker [--FLAG VALUE]...',
    '',
    'Every setting can also be given in the environment as SLUICE_<NAME> (shown under each flag);',
    'a flag beats the environment, which beats the default. Values out of bounds are refused.',
    '',
  ];
  for (const s of BROKER_SETTINGS) {
    const metavar = s.kind === 'int' ? METAVAR[s.unit] : s.choices ? s.choices.join('|') : s.name === 'metadataUrl' || s.name === 'archiveS3Endpoint' ? 'URL' : s.name.endsWith('Dir') ? 'DIR' : s.name.startsWith('archiveS3') ? 'TEXT' : TEXT_METAVAR[s.name] ?? 'HOST';
    out.push(`  ${flagOf(s)} ${metavar}`);
    const bounds = s.kind === 'int' ? `; ${s.min}..${s.max}` : '';
    out.push(wrap(`${s.help} (default ${defaultOf(s)}${bounds})`, '      '));
    const also = s.aliases ?? [];
    out.push(wrap(`env ${envOf(s)}${also.length ? `; also ${also.join(', ')}` : ''}`, '      '));
  }
  out.push('  -h, --help', '      this text', '');
  return out.join('\n');
}
