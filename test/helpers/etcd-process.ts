/**
 * Starts a real single-member etcd for a test: 127.0.0.1 only, client and peer ports picked
 * free by the OS, a fresh temp data dir. Resolves once etcd answers `/health` with
 * "true". Every process started here is tracked and SIGKILLed at exit (like
 * broker-process.ts), so a failing test leaves no etcd behind.
 *
 * Ports: the OS gives a free port when we bind port 0; we close that socket and hand the
 * port to etcd. Another process may take it in between, so a start that fails with
 * "address already in use" is retried with new ports, at most START_ATTEMPTS_MAX times.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { refuseInUnitRun } from './unit-run.ts';

export const ETCD_BIN = process.env.SLUICE_ETCD_BIN ?? '/usr/bin/etcd';
const START_ATTEMPTS_MAX = 3;
const HEALTH_POLL_INTERVAL_MS = 50;
const STOP_GRACE_MS = 10_000;

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const p of live) p.kill('SIGKILL');
});

export interface EtcdProcess {
  /** For EtcdMetadataStore / etcd3: '127.0.0.1:PORT'. */
  endpoints: string;
  clientUrl: string;
  dataDir: string;
  proc: ChildProcess;
  /** Everything etcd wrote to stderr so far (its log). */
  log(): string;
  /** SIGTERM, wait for exit, remove the data dir. */
  stop(): Promise<void>;
  /** SIGKILL, wait for exit, remove the data dir. */
  kill(): Promise<void>;
  /** SIGSTOP / SIGCONT: etcd stops answering without closing connections (a partition). */
  pause(): void;
  resume(): void;
}

export interface EtcdStartOptions {
  startTimeoutMs?: number;
  /** More etcd flags, e.g. ['--quota-backend-bytes', '8388608'] for a small space quota. */
  extraArgs?: string[];
}

export function etcdAvailable(): boolean {
  return existsSync(ETCD_BIN);
}

export async function startEtcd(opts: EtcdStartOptions = {}): Promise<EtcdProcess> {
  if (!etcdAvailable()) {
    throw new Error(`etcd not found at ${ETCD_BIN}: install it with \`apt-get install -y etcd-server\` (or set SLUICE_ETCD_BIN)`);
  }
  let lastError: Error | undefined;
  for (let attempt = 1; attempt <= START_ATTEMPTS_MAX; attempt++) {
    try {
      return await startOnce(opts.startTimeoutMs ?? 20_000, opts.extraArgs ?? []);
    } catch (e) {
      lastError = e as Error;
      if (!/address already in use/i.test(lastError.message)) throw lastError;
    }
  }
  throw new Error(`etcd did not start after ${START_ATTEMPTS_MAX} attempts (port conflicts): ${lastError?.message}`);
}

async function startOnce(startTimeoutMs: number, extraArgs: string[]): Promise<EtcdProcess> {
  const [clientPort, peerPort] = await freePorts(2);
  const dataDir = mkdtempSync(join(tmpdir(), 'sluice-etcd-'));
  const name = `sluice-test-${process.pid}-${clientPort}`;
  const clientUrl = `http://127.0.0.1:${clientPort}`;
  const peerUrl = `http://127.0.0.1:${peerPort}`;
  const args = [
    '--name', name,
    '--data-dir', dataDir,
    '--listen-client-urls', clientUrl,
    '--advertise-client-urls', clientUrl,
    '--listen-peer-urls', peerUrl,
    '--initial-advertise-peer-urls', peerUrl,
    '--initial-cluster', `${name}=${peerUrl}`,
    '--initial-cluster-state', 'new',
    '--initial-cluster-token', name,
    // A single member elects itself; short raft timers make that (and startup) quick.
    '--heartbeat-interval', '50',
    '--election-timeout', '500',
    '--logger', 'zap',
    '--log-level', 'warn',
    ...extraArgs,
  ];
  refuseInUnitRun('an etcd process');
  const proc = spawn(ETCD_BIN, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  live.add(proc);
  let stderr = '';
  proc.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<void>((resolve) => proc.once('exit', () => { live.delete(proc); resolve(); }));
  const cleanup = (): void => rmSync(dataDir, { recursive: true, force: true });

  const deadline = Date.now() + startTimeoutMs;
  while (!(await healthy(clientUrl))) {
    if (proc.exitCode !== null || proc.signalCode !== null) {
      cleanup();
      throw new Error(`etcd exited with ${proc.exitCode ?? proc.signalCode} before answering:\n${stderr}`);
    }
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      await exited;
      cleanup();
      throw new Error(`etcd did not answer /health within ${startTimeoutMs} ms:\n${stderr}`);
    }
    await new Promise((r) => setTimeout(r, HEALTH_POLL_INTERVAL_MS));
  }

  const gone = (): boolean => proc.exitCode !== null || proc.signalCode !== null;
  return {
    endpoints: `127.0.0.1:${clientPort}`,
    clientUrl,
    dataDir,
    proc,
    log: () => stderr,
    async stop() {
      if (!gone()) {
        proc.kill('SIGCONT');
        proc.kill('SIGTERM');
        const t = setTimeout(() => proc.kill('SIGKILL'), STOP_GRACE_MS);
        await exited;
        clearTimeout(t);
      }
      cleanup();
    },
    async kill() {
      if (!gone()) {
        proc.kill('SIGKILL');
        await exited;
      }
      cleanup();
    },
    pause() {
      proc.kill('SIGSTOP');
    },
    resume() {
      proc.kill('SIGCONT');
    },
  };
}

async function healthy(clientUrl: string): Promise<boolean> {
  try {
    const res = await fetch(`${clientUrl}/health`, { signal: AbortSignal.timeout(1000) });
    const body = (await res.json()) as { health?: string };
    return res.ok && body.health === 'true';
  } catch {
    return false;
  }
}

/** Ports the OS reports free right now; all are held open together so they differ. */
async function freePorts(count: number): Promise<number[]> {
  const servers: net.Server[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const s = net.createServer();
      servers.push(s);
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.listen(0, '127.0.0.1', () => resolve());
      });
    }
    return servers.map((s) => (s.address() as net.AddressInfo).port);
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  }
}
