/**
 * A `sluice` CLI child process whose stdin the test writes over time (test/helpers/cli.ts
 * gives the whole input at once): for runs during which brokers die and come back.
 * Every process started here is SIGKILLed at exit if still running.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot } from './broker-process.ts';
import type { Run } from './cli.ts';

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const p of live) p.kill('SIGKILL');
});

export interface CliProcess {
  proc: ChildProcess;
  /** stderr so far. */
  stderr(): string;
  /** Writes to stdin, waiting for the pipe to drain if it is full. */
  write(text: string): Promise<void>;
  /** Closes stdin (end of input). */
  end(): void;
  /** Resolves when the process exits; SIGKILLs it (and rejects) after timeoutMs. */
  exit(timeoutMs: number): Promise<Run>;
  /** SIGKILL if still running (cleanup, also on failure). */
  kill(): void;
}

export function startSluice(args: string[]): CliProcess {
  const proc = spawn(process.execPath, [join(repoRoot, 'bin/sluice.mjs'), ...args], { cwd: repoRoot, stdio: ['pipe', 'pipe', 'pipe'] });
  live.add(proc);
  let stdout = '';
  let stderr = '';
  proc.stdout!.on('data', (d) => (stdout += d));
  proc.stderr!.on('data', (d) => (stderr += d));
  proc.stdin!.on('error', () => {}); // EPIPE if the process died: the exit code tells
  const exited = new Promise<number | null>((resolve) => proc.once('close', (code) => {
    live.delete(proc);
    resolve(code);
  }));
  return {
    proc,
    stderr: () => stderr,
    write: (text) => new Promise<void>((resolve) => {
      if (proc.stdin!.write(text)) resolve();
      else proc.stdin!.once('drain', resolve);
    }),
    end: () => proc.stdin!.end(),
    async exit(timeoutMs) {
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          proc.kill('SIGKILL');
          reject(new Error(`sluice ${args.join(' ')} did not exit within ${timeoutMs} ms; stderr:\n${stderr}`));
        }, timeoutMs);
      });
      try {
        const code = await Promise.race([exited, timedOut]);
        return { code, stdout, stderr };
      } finally {
        clearTimeout(timer);
      }
    },
    kill: () => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    },
  };
}
