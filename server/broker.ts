/**
 * A broker: the metadata store, the partition logs, and the TCP listener, started and
 * stopped in that order and the reverse. Clean stop: refuse new work, answer parked
 * fetches, let connections flush, close every log (flush + indexes), then mark the data
 * dir clean so the next start skips recovery.
 */
import net from 'node:net';
import { mkdirSync } from 'node:fs';
import type { BrokerContext } from './api/context.ts';
import { createRouter } from './api/router.ts';
import type { BrokerConfig } from './config.ts';
import { DelayedFetches } from './fetch/delayed-fetches.ts';
import { DEFAULT_COORDINATOR_CONFIG, GroupCoordinator } from './group/group-coordinator.ts';
import { OffsetStore } from './group/offset-store.ts';
import { LogManager } from './log/log-manager.ts';
import { createLogger, type Logger } from './logger.ts';
import { EmbeddedMetadataStore } from './metadata/embedded-store.ts';
import type { MetadataStore } from './metadata/metadata-store.ts';
import { ClientConnection } from './network/client-connection.ts';
import { TopicManager } from './topic-manager.ts';

export class Broker {
  readonly log: Logger;
  private server: net.Server | null = null;
  private readonly connections = new Set<ClientConnection>();
  private metadata!: MetadataStore;
  private logs!: LogManager;
  private ctx!: BrokerContext;
  private coordinator!: GroupCoordinator;
  private stopping: Promise<void> | null = null;

  constructor(readonly config: BrokerConfig) {
    this.log = createLogger(`broker-${config.brokerId}`);
  }

  /** Resolves with the port actually bound (useful with port 0). */
  async start(): Promise<number> {
    mkdirSync(this.config.dataDir, { recursive: true });
    this.metadata = new EmbeddedMetadataStore(this.config.dataDir);
    await this.metadata.open();
    this.logs = new LogManager(this.config.dataDir, { logger: this.log.child('log'), retentionCheckIntervalMs: this.config.retentionCheckIntervalMs });
    const topics = new TopicManager(this.metadata, this.logs, this.config.partitionsMax, this.log.child('topics'));
    topics.load();
    this.logs.start();
    const offsets = new OffsetStore(topics, this.log.child('offsets'));
    await offsets.load();
    this.coordinator = new GroupCoordinator(topics, offsets, { ...DEFAULT_COORDINATOR_CONFIG, ...this.config.coordinator }, this.log.child('groups'));
    this.coordinator.start();
    this.ctx = { config: this.config, topics, delayedFetches: new DelayedFetches(), groups: this.coordinator, log: this.log, shuttingDown: false };
    const route = createRouter(this.ctx, () => this.metadata.clusterId());
    const limits = {
      maxFrameBytes: this.config.maxFrameBytes,
      pipelinedRequestsMax: this.config.pipelinedRequestsMax,
      writeBufferBytesMax: this.config.writeBufferBytesMax,
    };
    const server = net.createServer((socket) => {
      const conn = new ClientConnection(socket, route, limits, this.log.child('net'), (c) => this.connections.delete(c));
      this.connections.add(conn);
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.config.port, this.config.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (e) => this.log.error('listener error', { error: e }));
    const port = (server.address() as net.AddressInfo).port;
    if (this.config.advertisedPort === 0) this.config.advertisedPort = port;
    this.log.info('started', { dataDir: this.config.dataDir, host: this.config.host, port, topics: topics.names().length });
    return port;
  }

  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    this.log.info('stopping');
    this.ctx.shuttingDown = true;
    this.ctx.delayedFetches.wakeAll();
    const closed = new Promise<void>((resolve) => this.server?.close(() => resolve()) ?? resolve());
    for (const c of this.connections) c.shutdown(this.config.shutdownGraceMs);
    await Promise.race([closed, new Promise((r) => setTimeout(r, this.config.shutdownGraceMs))]);
    for (const c of this.connections) c.socket.destroy();
    this.coordinator.stop();
    await this.logs.close();
    await this.metadata.close();
    this.log.info('stopped cleanly');
  }
}
