/**
 * Memory of another process (a broker under test) from /proc/<pid>/status, Linux only.
 * resetPeak() clears VmHWM (write 5 to clear_refs, Linux >= 4.0), so peakMiB() afterwards is
 * the highest RSS since then, whether or not a poll happened to see it.
 */
import { readFileSync, writeFileSync } from 'node:fs';

const MiB = 1024 * 1024;

function statusKiB(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no ${field} in /proc/${pid}/status`);
  return Number(m[1]);
}

export function rssMiB(pid: number): number {
  return (statusKiB(pid, 'VmRSS') * 1024) / MiB;
}

export function peakMiB(pid: number): number {
  return (statusKiB(pid, 'VmHWM') * 1024) / MiB;
}

export function resetPeak(pid: number): void {
  writeFileSync(`/proc/${pid}/clear_refs`, '5');
}

/**
 * Samples RSS every intervalMs for durationMs (or until `until` returns true), and throws as
 * soon as it exceeds limitMiB, so a broker that grows without bound is caught (and the test
 * ends) before it eats the machine. Returns the highest RSS seen.
 */
export async function watchRss(pid: number, durationMs: number, limitMiB: number, what: string, until: () => boolean = () => false, intervalMs = 50): Promise<number> {
  let max = 0;
  const deadline = Date.now() + durationMs;
  while (Date.now() < deadline && !until()) {
    const now = Math.max(rssMiB(pid), peakMiB(pid));
    max = Math.max(max, now);
    if (now > limitMiB) throw new Error(`${what}: broker RSS reached ${now.toFixed(0)} MiB, over the ${limitMiB.toFixed(0)} MiB bound`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  return max;
}

export interface MemoryReport {
  rssBytes: number;
  heapUsedBytes: number;
  externalBytes: number;
  arrayBuffersBytes: number;
}

/** Environment for startBroker that lets the broker's SIGUSR2 report run a full GC first. */
export function gcEnv(): Record<string, string> {
  return { NODE_OPTIONS: [process.env.NODE_OPTIONS, '--expose-gc'].filter(Boolean).join(' ') };
}

/**
 * Sends SIGUSR2 to a broker process and returns the memory line it logs (process.memoryUsage()
 * after a full GC when started with gcEnv()). `log` returns the broker's stderr so far.
 */
export async function memoryReport(pid: number, log: () => string, timeoutMs = 10_000): Promise<MemoryReport> {
  const pattern = /INFO broker-\d+: memory rssBytes=(\d+) heapUsedBytes=(\d+) externalBytes=(\d+) arrayBuffersBytes=(\d+)/g;
  const before = [...log().matchAll(pattern)].length;
  process.kill(pid, 'SIGUSR2');
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const all = [...log().matchAll(pattern)];
    if (all.length > before) {
      const m = all[all.length - 1]!;
      return { rssBytes: Number(m[1]), heapUsedBytes: Number(m[2]), externalBytes: Number(m[3]), arrayBuffersBytes: Number(m[4]) };
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error('the broker did not log a memory report after SIGUSR2');
}
