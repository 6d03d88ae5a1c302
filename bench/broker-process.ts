/**
 * A broker process a benchmark starts for itself (`node bin/sluice.mjs broker` on a loopback
 * port chosen by the OS), resolved once it prints "listening on". Its stderr is kept (the last
 * BROKER_STDERR_CHARS_MAX characters) for the error when it does not start. The caller stops it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = fileURLToPath(new URL('..', import.meta.url));
const BROKER_START_MS_MAX = 30_000;
const BROKER_STDERR_CHARS_MAX = 20_000;

export interface BenchBroker {
  proc: ChildProcess;
  port: number;
  bootstrap: string;
  /** What the broker wrote to stderr so far (the last BROKER_STDERR_CHARS_MAX characters). */
  log(): string;
}

/** opts.args: more broker flags; opts.env: more environment (bench archive: the store). */
export async function startBenchBroker(dataDir: string, opts: { args?: readonly string[]; env?: Record<string, string> } = {}): Promise<BenchBroker> {
  const proc = spawn(process.execPath, [join(repoRoot, 'bin/sluice.mjs'), 'broker', '--data-dir', dataDir, '--host', '127.0.0.1', '--port', '0', ...(opts.args ?? [])], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...opts.env } });
  let err = '';
  proc.stderr!.on('data', (d) => (err = (err + d).slice(-BROKER_STDERR_CHARS_MAX)));
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    const t = setTimeout(() => reject(new Error(`broker did not start:\n${err}`)), BROKER_START_MS_MAX);
    proc.stdout!.on('data', (d) => {
      out += d;
      const m = /listening on [^\s]+:(\d+)/.exec(out);
      if (m) {
        clearTimeout(t);
        resolve(Number(m[1]));
      }
    });
    proc.once('exit', (code) => {
      clearTimeout(t);
      reject(new Error(`broker exited with ${code}:\n${err}`));
    });
  });
  return { proc, port, bootstrap: `127.0.0.1:${port}`, log: () => err };
}
