/**
 * Starts a real broker process for a test, on 127.0.0.1 and a port the OS picks, and stops
 * it again. Every process started here is tracked and killed at exit, so a failing test
 * leaves nothing behind.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { refuseInUnitRun } from './unit-run.ts';

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const p of live) p.kill('SIGKILL');
});

export interface BrokerProcess {
  host: string;
  port: number;
  bootstrap: string;
  dataDir: string;
  proc: ChildProcess;
  /** Everything the broker wrote to stderr so far (its log). */
  log(): string;
  /** SIGTERM and wait for exit; returns the exit code. */
  stop(): Promise<number | null>;
  /** SIGKILL and wait for exit: an unclean stop. */
  kill(): Promise<void>;
  /** Removes the data dir (after stop). */
  cleanup(): void;
}

export interface StartOptions {
  dataDir?: string;
  port?: number;
  args?: string[];
  env?: Record<string, string>;
  /** Runtime command, e.g. ['bun'] or ['deno', 'run', '-A']; default: node with tsx. */
  runtime?: string[];
  startTimeoutMs?: number;
}

export function tempDir(prefix = 'sluice-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export async function startBroker(opts: StartOptions = {}): Promise<BrokerProcess> {
  refuseInUnitRun('a broker process');
  const dataDir = opts.dataDir ?? tempDir();
  const args = ['broker', '--data-dir', dataDir, '--host', '127.0.0.1', '--port', String(opts.port ?? 0), ...(opts.args ?? [])];
  const cmd = opts.runtime ?? [process.execPath, join(repoRoot, 'bin/sluice.mjs')];
  const proc = spawn(cmd[0]!, [...cmd.slice(1), ...args], {
    cwd: repoRoot,
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(proc);
  let stderr = '';
  let stdout = '';
  proc.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => { live.delete(proc); resolve(code); }));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`broker did not start within ${opts.startTimeoutMs ?? 30000} ms:\n${stderr}`)), opts.startTimeoutMs ?? 30000);
    proc.stdout!.on('data', (d) => {
      stdout += d;
      const m = /listening on [^\s]+:(\d+)/.exec(stdout);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`broker exited with ${code} before listening:\n${stderr}`));
    });
  });
  return {
    host: '127.0.0.1',
    port,
    bootstrap: `127.0.0.1:${port}`,
    dataDir,
    proc,
    log: () => stderr,
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode;
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 15000);
      const code = await exited;
      clearTimeout(t);
      return code;
    },
    async kill() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill('SIGKILL');
      await exited;
    },
    cleanup() {
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
