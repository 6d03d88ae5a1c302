/** Runs the `sluice` command as a user would: a child process, stdin given, output collected. */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot } from './broker-process.ts';

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** env: added to (or, with undefined values, removed from) this process's environment. */
export function sluice(args: string[], stdin = '', timeoutMs = 60_000, env: Record<string, string | undefined> = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const fullEnv: Record<string, string | undefined> = { ...process.env, ...env };
    for (const [k, v] of Object.entries(env)) if (v === undefined) delete fullEnv[k];
    const p = spawn(process.execPath, [join(repoRoot, 'bin/sluice.mjs'), ...args], { cwd: repoRoot, env: fullEnv, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.once('error', reject);
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    // A command may stop reading before the end of its input (as `head` does): not an error here.
    p.stdin.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code !== 'EPIPE') reject(e);
    });
    p.stdin.end(stdin);
  });
}
