/**
 * Diagnostic: the longest the event loop is held by background log work, in-process over real
 * files. Writes a compacted log of --mb MiB (keys overwritten many times), then measures:
 *   - recovery after an unclean stop (PartitionLog.open with cleanShutdown false): synchronous,
 *     so its whole duration is one stall;
 *   - compaction (PartitionLog.compact): its duration and the event loop's longest delay
 *     meanwhile (a timer every 1 ms notes how late it fires).
 *
 *   node --import tsx bench/log-work-stall.ts [--mb N]      (default 64)
 * Not a test: numbers depend on the machine.
 */
import { mkdtempSync, readdirSync, rmSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildBatch } from '../protocol/record-batch.ts';
import { parseLogConfig } from '../server/log/log-config.ts';
import { PartitionLog } from '../server/log/partition-log.ts';
import { createLogger } from '../server/logger.ts';

const i = process.argv.indexOf('--mb');
const MB = i >= 0 ? Number(process.argv[i + 1]) : 64;
const KEYS = 10_000;
const RECORDS_PER_BATCH = 100;
const VALUE_BYTES = 200;

/** The longest gap between ticks of a 1 ms timer while `work` runs. */
async function maxDelayDuring<T>(work: () => Promise<T>): Promise<{ result: T; ms: number; maxDelayMs: number }> {
  let last = performance.now();
  let maxDelayMs = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    maxDelayMs = Math.max(maxDelayMs, now - last - 1);
    last = now;
  }, 1);
  const t = performance.now();
  const result = await work();
  const ms = performance.now() - t;
  clearInterval(timer);
  return { result, ms, maxDelayMs };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-logstall-'));
  const logger = createLogger('bench');
  const config = parseLogConfig({ 'cleanup.policy': 'compact', 'segment.bytes': String(16 * 1024 * 1024) });
  try {
    let log = PartitionLog.open(dir, config, { cleanShutdown: true, logger });
    const enc = new TextEncoder();
    const value = new Uint8Array(VALUE_BYTES).fill(120);
    let n = 0;
    while (log.sizeBytes < MB * 1024 * 1024) {
      const now = Date.now() - 3_600_000;
      const records = Array.from({ length: RECORDS_PER_BATCH }, () => ({ key: enc.encode(`key-${n++ % KEYS}`), value, timestamp: now }));
      log.append(Buffer.from(buildBatch(records, now)), now);
    }
    await log.flush();
    console.log(`log: ${(log.sizeBytes / 1048576).toFixed(0)} MiB, ${n} records, ${KEYS} keys`);
    await log.close();
    // Unclean reopen: the tail past the indexes is scanned and validated before open returns.
    let t = performance.now();
    log = PartitionLog.open(dir, config, { cleanShutdown: false, logger });
    console.log(`recovery after an unclean stop, indexes intact: ${(performance.now() - t).toFixed(0)} ms, synchronous (one stall)`);
    await log.close();
    // Worst case: no index survived, every segment is scanned in full.
    for (const f of readdirSync(dir)) if (f.endsWith('.index') || f.endsWith('.timeindex')) unlinkSync(join(dir, f));
    t = performance.now();
    log = PartitionLog.open(dir, config, { cleanShutdown: false, logger });
    console.log(`recovery of ${(log.sizeBytes / 1048576).toFixed(0)} MiB after an unclean stop, indexes lost: ${(performance.now() - t).toFixed(0)} ms, synchronous (one stall)`);
    await log.flush();
    const c = await maxDelayDuring(() => log.compact(Date.now()));
    console.log(`compaction: ${c.ms.toFixed(0)} ms, removed ${c.result.recordsRemoved} records; longest event-loop delay meanwhile ${c.maxDelayMs.toFixed(1)} ms`);
    await log.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
