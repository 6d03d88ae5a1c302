/**
 * A broker: the metadata store (embedded, or etcd in a cluster), the partition logs with their
 * replica roles, the group coordinator, and the TCP listener, started and stopped in that
 * order and the reverse. Every broker registers itself and campaigns to be controller; on a
 * single broker it simply is. Clean stop: refuse new work, answer parked
 * fetches, let connections flush, close every log (flush + indexes), then mark the data
 * dir clean so the next start skips recovery.
 *
 * Start-up order matters for the data dir: the directory lock is taken first and the
 * listener bound second, both before any metadata or log file is opened, so a broker that
 * cannot start (dir in use, port in use) has read, recovered or written nothing there.
 */
import net from 'node:net';
import tls from 'node:tls';
import { ErrorCode, SluiceError } from '../protocol/errors.ts';
import { mkdirSync } from 'node:fs';
import type { BrokerContext } from './api/context.ts';
import { createRouter } from './api/router.ts';
import { Controller } from './cluster/controller.ts';
import { ReplicaFetchers } from './cluster/replica-fetchers.ts';
import { ReplicaManager } from './cluster/replica-manager.ts';
import type { BrokerConfig } from './config/broker-config.ts';
import { GroupCoordinator } from './group/group-coordinator.ts';
import { OFFSETS_TOPIC, OffsetStore } from './group/offset-store.ts';
import { DataDirLock } from './data-dir-lock.ts';
import { LogManager } from './log/log-manager.ts';
import { createLogger, type Logger } from './logger.ts';
import type { Campaign, ClusterMetadataStore } from './metadata/cluster-store.ts';
import { EmbeddedMetadataStore } from './metadata/embedded-store.ts';
import { ARCHIVE_RETRY_BACKOFF_MS_MAX, BrokerArchive, openArchiveStore } from './archive/broker-archive.ts';
import { ClientConnection } from './network/client-connection.ts';
import { DroppedConnectionsLog } from './network/dropped-connections-log.ts';
import { PartialFrameBudget } from './network/partial-frame-budget.ts';
import { DEFAULT_EVENT_LOOP_DELAY_CONFIG, EventLoopDelayMonitor } from './observability/event-loop-delay.ts';
import type { BrokerMetrics, BrokerMetricsSources } from './observability/metrics-registry.ts';
import type { MetricsServer } from './observability/metrics-server.ts';
import type { ConsoleServer } from '../console/console-server.ts';
import { DelayedFetches } from './partition/delayed-fetches.ts';
import type { AppendOrigin } from './partition/partition.ts';
import { TopicManager } from './partition/topic-manager.ts';
import { ProducerIdManager } from './txn/producer-id-manager.ts';
import { TransactionCoordinator } from './txn/transaction-coordinator.ts';
import { TXN_STATE_TOPIC } from './txn/transaction-log.ts';
import { TxnMarkerSender, DEFAULT_TXN_MARKER_SENDER_OPTIONS } from './txn/txn-marker-sender.ts';
import { writeTxnMarkers } from './api/txn-markers.ts';
import { openCredentialStore, type CredentialStore } from './security/credential-store.ts';
import { HandshakeFailuresLog } from './security/handshake-failures-log.ts';
import { SaslSession, type SaslSettings } from './security/sasl-session.ts';
import { loadBrokerTls, type BrokerTls } from './security/tls-listener.ts';
import { Authorizer } from './security/authorizer.ts';
import { openAclStore, type AclStore } from './security/acl-store.ts';
import type { ConnectionOptions } from '../protocol/connection.ts';

export class Broker {
  readonly log: Logger;
  /** Event-loop delay numbers (p50/p99/max ms) for logs and a metrics endpoint. */
  readonly eventLoopDelay: EventLoopDelayMonitor;
  private server: net.Server | null = null;
  private readonly connections = new Set<ClientConnection>();
  private store!: ClusterMetadataStore;
  private logs!: LogManager;
  private topics!: TopicManager;
  private replicas!: ReplicaManager;
  private ctx!: BrokerContext;
  private coordinator!: GroupCoordinator;
  private txn!: TransactionCoordinator;
  /** Tiered storage (SPEC §7.10); null without an archive store. */
  archive: BrokerArchive | null = null;
  private campaign: Campaign | null = null;
  private stopping: Promise<void> | null = null;
  private dirLock: DataDirLock | null = null;
  /** Set once the broker can serve; connections accepted before wait, paused, in `early`. */
  private route: ReturnType<typeof createRouter> | null = null;
  private readonly early = new Set<net.Socket>();
  /** Caps the bytes of half-received frames over all connections (SPEC §2.4). */
  private readonly frameBudget: PartialFrameBudget;
  /** Prometheus metrics and their HTTP endpoint; null with --metrics-port 0 (the default). */
  metrics: BrokerMetrics | null = null;
  private metricsServer: MetricsServer | null = null;
  /** The port the metrics endpoint listens on; 0 while it is off. */
  metricsPort = 0;
  /** The web console (console/); null with --console-port 0 (the default). */
  private consoleServer: ConsoleServer | null = null;
  /** The port the web console listens on; 0 while it is off. */
  consolePort = 0;
  private offsets!: OffsetStore;
  /** TLS (SPEC §2.5), read at start; null for plaintext. */
  private tls: BrokerTls | null = null;
  /** SASL (SPEC §2.6): every connection gets a session with these settings. */
  private sasl: SaslSettings | null = null;
  private credentials: CredentialStore | null = null;
  /** ACLs (SPEC §2.7): only when authentication is required. */
  private authorizer: Authorizer | null = null;
  private aclStore: AclStore | null = null;

  constructor(readonly config: BrokerConfig) {
    this.log = createLogger(`broker-${config.brokerId}`);
    this.frameBudget = new PartialFrameBudget(config.partialFrameBytesTotalMax);
    this.eventLoopDelay = new EventLoopDelayMonitor({ ...DEFAULT_EVENT_LOOP_DELAY_CONFIG, stallWarnMs: config.eventLoopStallWarnMs }, this.log.child('event-loop'));
  }

  /** The embedded store by default; etcd for clusters, loaded only then (it brings gRPC along). */
  private async openStore(): Promise<ClusterMetadataStore> {
    const c = this.config;
    if (!c.metadataUrl) {
      const store = new EmbeddedMetadataStore(c.dataDir, c.brokerId);
      await store.open();
      return store;
    }
    const { EtcdMetadataStore } = await import('./metadata/etcd-store.ts');
    const store = new EtcdMetadataStore(c.metadataUrl, { log: this.log.child('etcd') });
    await store.open();
    return store;
  }

  /**
   * Starts everything and resolves with the port actually bound (useful with port 0) once the
   * broker is registered and, when it is the controller, after its first reconciliation.
   */
  async start(): Promise<number> {
    const c = this.config;
    // Before the data dir: a missing certificate file must not leave anything behind.
    this.tls = loadBrokerTls(c);
    mkdirSync(c.dataDir, { recursive: true });
    this.dirLock = DataDirLock.acquire(c.dataDir, {
      host: c.host,
      port: c.port,
      onTakeover: (previous, why) => this.log.warn('took over a stale data dir lock', { holderPid: previous?.pid ?? -1, why }),
    });
    // From the start: log recovery at startup is synchronous work too.
    this.eventLoopDelay.start();
    try {
      return await this.startLocked();
    } catch (e) {
      await this.abortStart();
      throw e;
    }
  }

  private async startLocked(): Promise<number> {
    const c = this.config;
    const port = await this.listen();
    this.dirLock!.updatePort(port);
    // Bound before any file is opened too, so a taken metrics port stops the start cleanly.
    if (c.metricsPort > 0) await this.startMetrics();
    if (c.consolePort > 0) await this.startConsole();
    this.store = await this.openStore();
    this.credentials = await openCredentialStore(c);
    const failures = new HandshakeFailuresLog(this.log.child('auth'), 'authentication failed');
    this.sasl = {
      required: c.authentication === 'sasl',
      mechanisms: c.saslMechanisms.split(',').map((m) => m.trim()),
      credentials: this.credentials,
      authenticationTimeoutMs: c.saslAuthenticationTimeoutMs,
      log: this.log.child('auth'),
      onFailure: (remote, username, why) => failures.record({ remote, user: username ?? '', why }),
    };
    if (c.authentication === 'sasl') {
      this.aclStore = openAclStore(c);
      const superUsers = [...(c.superUsers ?? '').split(',').map((u) => u.trim()).filter(Boolean), ...(c.interBrokerSaslUsername ? [c.interBrokerSaslUsername] : [])];
      this.authorizer = new Authorizer({ store: this.aclStore, superUsers, refreshIntervalMs: c.aclRefreshIntervalMs, log: this.log.child('acl') });
      await this.authorizer.start();
    }
    // How this broker dials its peers: TLS and SASL exactly when the cluster uses them.
    const security: Pick<ConnectionOptions, 'tls' | 'sasl'> = {
      ...(this.tls ? { tls: this.tls.client } : {}),
      ...(c.interBrokerSaslUsername && c.interBrokerSaslPassword ? { sasl: { mechanism: 'SCRAM-SHA-256' as const, username: c.interBrokerSaslUsername, password: c.interBrokerSaslPassword } } : {}),
    };
    this.logs = new LogManager(c.dataDir, {
      logger: this.log.child('log'),
      retentionCheckIntervalMs: c.retentionCheckIntervalMs,
      flushCheckIntervalMs: c.flushCheckIntervalMs,
      cleanerIntervalMs: c.cleanerIntervalMs,
      producerState: { producerIdsPerPartitionMax: c.producerIdsPerPartitionMax, producerIdExpirationMs: c.producerIdExpirationMs },
      onFlushCycle: this.metrics?.observeFlush,
      delay: { delayedDeliveryMsMax: c.delayedDeliveryMsMax, delayedCancelsPendingMax: c.delayedCancelsPendingMax, delayedEntriesPerSegmentMax: c.delayedEntriesPerSegmentMax, delayedReleaseSliceEntriesMax: c.delayedReleaseSliceEntriesMax, delayedReleaseSliceBytesMax: c.delayedReleaseSliceBytesMax },
    });
    this.topics = new TopicManager(this.store, this.logs, c.brokerId, c.partitionsMax, this.log.child('topics'));
    // Tiered storage (SPEC §7.10): the archive store, when one is configured.
    const archiveStore = await openArchiveStore(c);
    if (archiveStore) {
      this.archive = new BrokerArchive(archiveStore, this.store, { brokerId: c.brokerId, checkIntervalMs: c.archiveCheckIntervalMs, retryBackoffMsMax: ARCHIVE_RETRY_BACKOFF_MS_MAX, followerPollIntervalMs: c.retentionCheckIntervalMs }, this.log.child('archive'), {
        uploadConcurrency: c.archiveUploadConcurrency,
        uploadBytesPerSec: c.archiveUploadBytesPerSec,
      }, { cacheBytes: c.archiveReadCacheBytes, timeoutMs: c.archiveReadTimeoutMs });
      this.log.info('archive store', { kind: archiveStore.kind, at: archiveStore.describe() });
      const stats = this.archive.stats;
      this.metrics?.addCounters({
        prefix: 'sluice_archive_',
        help: {
          bytesUploaded: '.log bytes of segments committed to the archive (tiered storage)',
          segmentsUploaded: 'segments committed to the archive',
          uploadFailures: 'failed upload attempts (each is retried after a backoff)',
          segmentsDeleted: 'archived segments removed by retention',
          bytesRead: 'bytes read back from the archive store for consumers',
          readFailures: 'archive reads that failed or timed out (the fetch got ARCHIVE_UNAVAILABLE)',
        },
        read: () => stats,
      });
    }
    this.topics.setArchive(this.archive, c.archiveEnable === 'true');
    const fetchers = new ReplicaFetchers(c.brokerId, this.store, {
      fetchMaxWaitMs: c.replicaFetchWaitMsMax,
      fetchMaxBytes: c.replicaFetchResponseBytesMax,
      partitionMaxBytes: c.replicaFetchPartitionBytesMax,
      backoffMs: c.replicaFetchBackoffMs,
      backoffMsMax: c.replicaFetchBackoffMsMax,
      security,
    }, this.log.child('fetcher'));
    this.replicas = new ReplicaManager(c.brokerId, this.store, fetchers, { replicaLagTimeMaxMs: c.replicaLagTimeMsMax, isrCheckIntervalMs: c.isrCheckIntervalMs }, this.log.child('replicas'));
    const offsets = new OffsetStore(this.topics, (partition, records, origin) => this.appendDurably(OFFSETS_TOPIC, partition, records, origin), this.log.child('offsets'));
    this.offsets = offsets;
    // Transactional offsets take effect (or vanish) when their marker lands (SPEC §6.24).
    this.topics.addTxnMarkerListener((topic, partition, marker) => {
      if (topic === OFFSETS_TOPIC) offsets.onTxnMarker(partition, marker);
    });
    this.coordinator = new GroupCoordinator(this.topics, offsets, (p) => this.topics.localPartition(OFFSETS_TOPIC, p)?.isLeader ?? false, c, this.log.child('groups'));
    const producerIds = new ProducerIdManager(this.store);
    const markers = new TxnMarkerSender(c.brokerId, this.store, { ...DEFAULT_TXN_MARKER_SENDER_OPTIONS, backoffMs: c.txnMarkerBackoffMs, backoffMsMax: c.txnMarkerBackoffMsMax, security }, this.log.child('txn-markers'));
    this.txn = new TransactionCoordinator(this.topics, producerIds, (partition, records, fsync) => this.appendDurably(TXN_STATE_TOPIC, partition, records, 'client', fsync), markers, c, this.log.child('txn'));
    // TxnOffsetCommit only for a transaction that added the group (SPEC §6.24), where this broker can tell.
    this.coordinator.setTxnVerifier((req) => this.txn.checkOffsetsInTxn(req));
    const delayedFetches = new DelayedFetches();
    this.replicas.onLeadership = (topic, partition, leader) => {
      if (topic === TXN_STATE_TOPIC) {
        if (leader) void this.txn.loadPartition(partition);
        else this.txn.unloadPartition(partition);
      }
      if (topic !== OFFSETS_TOPIC) return;
      if (leader) offsets.loadPartition(partition).catch((e) => this.log.error('failed to load committed offsets', { partition, error: e as Error }));
      else this.coordinator.unloadPartition(partition);
    };
    this.topics.setReplicaListener(this.replicas);
    this.topics.load();
    this.logs.start();
    this.replicas.start();
    this.coordinator.start();
    this.txn.start();
    const controller = new Controller(c.brokerId, this.store, () => this.ensureInternalTopics(offsets), this.log.child('controller'));
    this.ctx = { config: c, topics: this.topics, store: this.store, replicas: this.replicas, controller, delayedFetches, groups: this.coordinator, producerIds, txn: this.txn, log: this.log, shuttingDown: false, traffic: this.metrics?.traffic, archive: this.archive, authorizer: this.authorizer };
    // Markers for partitions this broker leads go straight to its own handler (txn-marker-sender.ts).
    markers.setLocalWriter((req) => writeTxnMarkers(this.ctx, req));
    this.serve();
    if (c.advertisedPort === 0) c.advertisedPort = port;
    await this.store.registerBroker({ brokerId: c.brokerId, host: c.advertisedHost, port: c.advertisedPort, startedAtMs: Date.now() }, c.brokerSessionTtlSeconds);
    // Only now, under this registration's broker epoch, may partitions be led or followed.
    this.replicas.activate();
    this.campaign = this.store.campaignController(c.brokerId, controller);
    // The embedded store elects this broker as soon as the new controller epoch is on disk.
    if (this.store instanceof EmbeddedMetadataStore) await this.store.settled();
    await controller.whenIdle();
    await offsets.whenLoaded();
    await this.txn.whenLoaded();
    this.metricsServer?.serve();
    if (this.consoleServer) {
      // The console is a client of this broker like any other. In plaintext it dials the
      // listener directly (loopback for a wildcard host); with TLS it dials the advertised
      // address, the name the certificate carries for every client, with the broker's own
      // certificate (client certificates may be required). Under SASL it is the console user.
      const { writesFlagAccess } = await import('../console/access.ts');
      const wildcard = c.host === '0.0.0.0' || c.host === '::' || c.host === '';
      const consoleSecurity: Pick<ConnectionOptions, 'tls' | 'sasl'> = {
        ...(this.tls ? { tls: this.tls.client } : {}),
        ...(c.consoleSaslUsername && c.consoleSaslPassword ? { sasl: { mechanism: 'SCRAM-SHA-256' as const, username: c.consoleSaslUsername, password: c.consoleSaslPassword } } : {}),
      };
      const bootstrap = this.tls ? `${c.advertisedHost}:${c.advertisedPort}` : `${wildcard ? '127.0.0.1' : c.host}:${port}`;
      this.consoleServer.serve({ bootstrap, security: consoleSecurity, brokerId: c.brokerId, access: writesFlagAccess(c.consoleAllowWrites === 'true') });
    }
    this.log.info('started', { dataDir: c.dataDir, host: c.host, port, topics: this.topics.names().length, metadata: c.metadataUrl ?? 'embedded', metricsPort: this.metricsPort, tls: this.tls ? `client-auth ${c.tlsClientAuth}` : 'off', authentication: c.authentication });
    return port;
  }

  /**
   * Binds the listener. Until serve() a connection is accepted but paused (its bytes wait in
   * the kernel), at most `startupConnectionsQueuedMax` of them; more are closed.
   */
  private async listen(): Promise<number> {
    const { startupConnectionsQueuedMax } = this.config;
    const onConnection = (socket: net.Socket) => {
      if (this.route) return this.accept(socket);
      if (this.early.size >= startupConnectionsQueuedMax) return socket.destroy();
      socket.pause();
      socket.on('error', () => {}); // a client giving up before start-up ends is not an error
      socket.once('close', () => this.early.delete(socket));
      this.early.add(socket);
    };
    // One port: TLS only when configured, plaintext only otherwise (SPEC §2.5).
    const server = this.tls ? tls.createServer(this.tls.server, (socket) => this.onSecureConnection(socket, onConnection)) : net.createServer(onConnection);
    if (this.tls) {
      const failed = new HandshakeFailuresLog(this.log.child('tls'), 'TLS handshake failed');
      server.on('tlsClientError', (e: Error, socket: tls.TLSSocket) => failed.record({ remote: `${socket.remoteAddress}:${socket.remotePort}`, why: e.message }));
    }
    // Node closes connections beyond maxConnections as soon as they are accepted.
    server.maxConnections = this.config.connectionsMax;
    const dropped = new DroppedConnectionsLog(this.log.child('net'), this.config.connectionsMax);
    server.on('drop', () => dropped.record());
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.config.port, this.config.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (e) => this.log.error('listener error', { error: e }));
    return (server.address() as net.AddressInfo).port;
  }

  /**
   * The metrics (loaded only when asked for: prom-client stays out of a broker without them)
   * and their endpoint, which answers 503 until the broker serves.
   */
  private async startMetrics(): Promise<void> {
    const [{ BrokerMetrics }, { MetricsServer }] = await Promise.all([import('./observability/metrics-registry.ts'), import('./observability/metrics-server.ts')]);
    this.metrics = new BrokerMetrics(this.metricsSources());
    this.metricsServer = new MetricsServer(this.metrics, this.log.child('metrics'));
    this.metricsPort = await this.metricsServer.start(this.config.metricsHost, this.config.metricsPort);
    this.log.info('metrics endpoint listening', { url: `http://${this.config.metricsHost}:${this.metricsPort}/metrics` });
  }

  /** The web console (loaded only when asked for), bound now so a taken port stops the start cleanly; pages answer 503 until the broker serves. */
  private async startConsole(): Promise<void> {
    const { ConsoleServer } = await import('../console/console-server.ts');
    this.consoleServer = new ConsoleServer(this.log.child('console'));
    this.consolePort = await this.consoleServer.start(this.config.consoleHost, this.config.consolePort);
    this.log.info('web console listening', { url: `http://${this.config.consoleHost}:${this.consolePort}/`, writes: this.config.consoleAllowWrites === 'true' });
  }

  /** What the scrape-time collectors read; called only once the broker serves (MetricsServer answers 503 before). */
  private metricsSources(): BrokerMetricsSources {
    return {
      connections: () => this.connections.size,
      parkedFetches: () => this.ctx.delayedFetches.parkedCount,
      eventLoopDelay: () => this.eventLoopDelay.snapshot(),
      topicExists: (topic) => this.topics.get(topic) !== undefined,
      replication: {
        partitions: () => this.replicas.partitions,
        isrChanges: () => this.replicas.isrChanges,
        isController: () => this.ctx.controller.active,
        store: () => this.store,
        topics: () => this.topics.names(true).map((t): [string, number] => [t, this.topics.partitionCount(t) ?? 0]),
      },
      lag: {
        committed: () => this.offsets.committed(),
        highWatermark: (topic, partition) => this.topics.localPartition(topic, partition)?.log.highWatermark,
      },
    };
  }

  /**
   * --tls-client-auth request: a certificate that was sent must verify (Node accepts an
   * unverified one when it does not reject a missing one, so this checks by hand).
   */
  private onSecureConnection(socket: tls.TLSSocket, next: (s: net.Socket) => void): void {
    if (this.config.tlsClientAuth === 'request' && !socket.authorized && Object.keys(socket.getPeerCertificate() ?? {}).length > 0) {
      this.log.child('tls').info('client certificate does not verify, closing', { remote: `${socket.remoteAddress}:${socket.remotePort}`, why: String(socket.authorizationError) });
      socket.destroy();
      return;
    }
    next(socket);
  }

  /** Starts handling requests, first those of the connections that waited for start-up. */
  private serve(): void {
    const route = createRouter(this.ctx);
    this.route = this.metrics ? this.metrics.requests.instrument(route) : route;
    for (const socket of this.early) this.accept(socket);
    this.early.clear();
  }

  private accept(socket: net.Socket): void {
    const limits = {
      frameBytesMax: this.config.frameBytesMax,
      pipelinedRequestsMax: this.config.pipelinedRequestsMax,
      writeBufferBytesMax: this.config.writeBufferBytesMax,
      partialFrameTimeoutMs: this.config.partialFrameTimeoutMs,
    };
    const session = new SaslSession(this.sasl!, `${socket.remoteAddress}:${socket.remotePort}`);
    session.watch(socket);
    const conn = new ClientConnection(socket, session.gate(this.route!), limits, this.log.child('net'), (c) => this.connections.delete(c), this.frameBudget);
    this.connections.add(conn);
    socket.resume();
  }

  /** A failed start: close what was opened, in reverse, and give the data dir back. */
  private async abortStart(): Promise<void> {
    this.eventLoopDelay.stop();
    for (const socket of this.early) socket.destroy();
    this.early.clear();
    await new Promise<void>((resolve) => (this.server?.listening ? this.server.close(() => resolve()) : resolve()));
    for (const c of this.connections) c.socket.destroy();
    await this.metricsServer?.stop();
    await this.consoleServer?.stop();
    this.replicas?.stop();
    this.coordinator?.stop();
    this.txn?.stop();
    this.topics?.stop();
    await this.logs?.close().catch(() => {});
    await this.archive?.close().catch(() => {});
    await this.store?.close().catch(() => {});
    await this.credentials?.close().catch(() => {});
    this.authorizer?.stop();
    await this.aclStore?.close().catch(() => {});
    this.dirLock?.release();
  }

  /**
   * Appends to an internal topic (__consumer_offsets, __transaction_state) as its leader and
   * resolves once the records are on every in-sync replica and, unless `fsync` is false,
   * fsynced. (false: a record whose loss is harmless and which the next record's fsync covers,
   * see TransactionCoordinator.complete.)
   */
  private async appendDurably(topic: string, partition: number, records: Buffer, origin: AppendOrigin = 'client', fsync = true): Promise<void> {
    try {
      const p = this.topics.leaderPartition(topic, partition);
      // Waited for like acks=all below, but (as ever) not refused by min.insync.replicas: requiredAcks 1.
      const appended = p.appendAsLeader(records, 1, origin);
      await Promise.all([fsync ? p.log.waitForFlush(appended.lastOffset) : undefined, p.waitForHighWatermark(appended.lastOffset + 1, this.config.offsetsCommitWaitMsMax)]);
    } catch (e) {
      // To a group member or a transactional producer, losing leadership of the partition means another coordinator.
      if (e instanceof SluiceError && (e.code === ErrorCode.NOT_LEADER || e.code === ErrorCode.FENCED_LEADER_EPOCH)) {
        throw new SluiceError(ErrorCode.NOT_COORDINATOR, e.message);
      }
      throw e;
    }
  }

  /** The controller creates __consumer_offsets and __transaction_state once enough brokers are live for their replication factors. */
  private async ensureInternalTopics(offsets: OffsetStore): Promise<void> {
    const live = this.store.liveBrokers().length;
    const cluster = Boolean(this.config.metadataUrl);
    const offsetsFactor = cluster ? this.config.offsetsTopicReplicationFactor : 1;
    if (!this.topics.get(OFFSETS_TOPIC) && live >= offsetsFactor) await offsets.ensureTopic(offsetsFactor);
    const txnFactor = cluster ? this.config.transactionStateReplicationFactor : 1;
    if (!this.topics.get(TXN_STATE_TOPIC) && live >= txnFactor) await this.txn.ensureTopic(txnFactor);
  }

  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    this.log.info('stopping');
    // First: its clients are connections to this broker, and its pages read what closes below.
    await this.consoleServer?.stop();
    this.ctx.shuttingDown = true;
    // No ISR changes from a broker on its way out: its followers' connections close during
    // the grace period, and shrinking the ISR to itself would leave partitions leaderless.
    this.replicas.stop();
    this.ctx.delayedFetches.wakeAll();
    const closed = new Promise<void>((resolve) => this.server?.close(() => resolve()) ?? resolve());
    for (const c of this.connections) c.shutdown(this.config.shutdownGraceMs);
    await Promise.race([closed, new Promise((r) => setTimeout(r, this.config.shutdownGraceMs))]);
    for (const c of this.connections) c.socket.destroy();
    // Scrapes end before the parts they read close.
    await this.metricsServer?.stop();
    this.coordinator.stop();
    this.txn.stop();
    this.topics.stop();
    await this.campaign?.cancel().catch(() => {});
    await this.logs.close();
    await this.archive?.close().catch(() => {});
    await this.store.close();
    await this.credentials?.close().catch(() => {});
    this.authorizer?.stop();
    await this.aclStore?.close().catch(() => {});
    this.dirLock?.release();
    this.eventLoopDelay.stop();
    this.log.info('stopped cleanly');
  }
}
