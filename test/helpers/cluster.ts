/**
 * A real cluster for a test: one etcd and N broker processes on 127.0.0.1, each with its own
 * data dir, with short timeouts so failures are detected in seconds. Brokers can be killed
 * (SIGKILL) and restarted on the same data dir and port.
 */
import { startBroker, tempDir, type BrokerProcess } from './broker-process.ts';
import { startEtcd, type EtcdProcess } from './etcd-process.ts';

export interface ClusterOptions {
  brokers: number;
  replicaLagTimeMaxMs?: number;
  sessionTtlSeconds?: number;
  offsetsTopicReplicationFactor?: number;
  transactionStateReplicationFactor?: number;
  /** More broker flags, e.g. shorter transaction timeouts. */
  extraArgs?: string[];
  /** Command that runs the broker (see StartOptions.runtime), e.g. to lower `ulimit -n` first. */
  runtime?: string[];
}

export class TestCluster {
  readonly brokers = new Map<number, BrokerProcess>();
  private readonly dirs = new Map<number, string>();
  private readonly ports = new Map<number, number>();

  private constructor(readonly etcd: EtcdProcess, private readonly opts: ClusterOptions) {}

  static async start(opts: ClusterOptions): Promise<TestCluster> {
    const etcd = await startEtcd();
    const c = new TestCluster(etcd, opts);
    try {
      await Promise.all(Array.from({ length: opts.brokers }, (_, i) => c.startBroker(i + 1)));
    } catch (e) {
      await c.stop();
      throw e;
    }
    return c;
  }

  get bootstrap(): string {
    return [...this.brokers.values()].map((b) => b.bootstrap).join(',');
  }

  async startBroker(id: number): Promise<BrokerProcess> {
    const dataDir = this.dirs.get(id) ?? tempDir(`sluice-b${id}-`);
    this.dirs.set(id, dataDir);
    const b = await startBroker({
      dataDir,
      port: this.ports.get(id) ?? 0,
      runtime: this.opts.runtime,
      args: [
        '--broker-id', String(id),
        '--metadata', `etcd://${this.etcd.endpoints}`,
        '--broker-session-ttl-seconds', String(this.opts.sessionTtlSeconds ?? 2),
        '--replica-lag-time-max-ms', String(this.opts.replicaLagTimeMaxMs ?? 3000),
        '--offsets-topic-replication-factor', String(this.opts.offsetsTopicReplicationFactor ?? Math.min(3, this.opts.brokers)),
        '--transaction-state-replication-factor', String(this.opts.transactionStateReplicationFactor ?? Math.min(3, this.opts.brokers)),
        ...(this.opts.extraArgs ?? []),
      ],
    });
    this.ports.set(id, b.port);
    this.brokers.set(id, b);
    return b;
  }

  async kill(id: number): Promise<void> {
    await this.brokers.get(id)?.kill();
    this.brokers.delete(id);
  }

  async stop(): Promise<void> {
    await Promise.all([...this.brokers.values()].map((b) => b.stop()));
    this.brokers.clear();
    for (const d of this.dirs.values()) {
      const { rmSync } = await import('node:fs');
      rmSync(d, { recursive: true, force: true });
    }
    await this.etcd.stop();
  }

  /** All broker logs, for failure messages. */
  logs(): string {
    return [...this.brokers.entries()].map(([id, b]) => `--- broker ${id}\n${b.log()}`).join('\n');
  }
}
