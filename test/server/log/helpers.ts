/** Shared fixtures for the log tests: temp dirs, test batches, a logger that records. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import assert from 'node:assert/strict';
import { ErrorCode } from '../../../protocol/errors.ts';
import { batchSizeAt, buildBatch, lastOffsetAt, newBatchInfo, validateBatch, type ProducerFields } from '../../../protocol/record-batch.ts';
import type { PartitionLog } from '../../../server/log/partition-log.ts';
import type { Logger } from '../../../server/logger.ts';
import { parseLogConfig, type LogConfig } from '../../../server/log/log-config.ts';

export function tempDir(): { dir: string; cleanup(): void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-log-'));
  return { dir, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

export interface RecordingLogger extends Logger {
  lines: Array<{ level: string; msg: string; fields?: Record<string, unknown> }>;
}

export function recordingLogger(): RecordingLogger {
  const lines: RecordingLogger['lines'] = [];
  const at = (level: string) => (msg: string, fields?: Record<string, unknown>) => void lines.push({ level, msg, fields });
  const logger: RecordingLogger = { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), child: () => logger };
  return logger;
}

/** A batch of `count` records whose values are `tag-i` padded to valueBytes, all at timestampMs. */
export function batch(count: number, timestampMs = 1_000_000, valueBytes = 10, tag = 'v'): Buffer {
  const enc = new TextEncoder();
  const records = [];
  for (let i = 0; i < count; i++) records.push({ key: null, value: enc.encode(`${tag}-${i}`.padEnd(valueBytes, '.')), timestamp: timestampMs + i });
  return Buffer.from(buildBatch(records));
}

export function config(overrides: Record<string, string> = {}): LogConfig {
  // Flushes only when a test asks, so fsync counts are the test's own.
  return parseLogConfig({ 'flush.messages': '1000000000', 'flush.ms': '1000000000', 'retention.ms': '-1', ...overrides });
}

/** Every batch from `from` up to `maxOffset` (the log end by default), fetch by fetch, each validated as a stored batch. */
export async function readRaw(log: PartitionLog, from = log.logStartOffset, maxBytes = 1 << 20, maxOffset = Infinity): Promise<Buffer> {
  const parts: Buffer[] = [];
  const info = newBatchInfo();
  let offset = from;
  for (;;) {
    const r = await log.read(offset, maxBytes, { maxOffset });
    if (r.records.length === 0) break;
    for (let p = 0; p < r.records.length; p += batchSizeAt(r.records, p)) {
      assert.equal(validateBatch(r.records, p, r.records.length, info, true), ErrorCode.NONE, info.problem);
      offset = lastOffsetAt(r.records, p) + 1;
    }
    parts.push(r.records);
  }
  return Buffer.concat(parts);
}

/** A producer's batch of `count` records starting at sequence `seq`. */
export function pbatch(producerId: number, epoch: number, seq: number, count = 1, opts: { transactional?: boolean; timestampMs?: number } = {}): Buffer {
  const records = [];
  for (let i = 0; i < count; i++) records.push({ key: null, value: new TextEncoder().encode(`p${producerId}-e${epoch}-s${seq + i}`), timestamp: opts.timestampMs ?? 1_000_000 });
  const producer: ProducerFields = { producerId, producerEpoch: epoch, baseSequence: seq, transactional: opts.transactional };
  return Buffer.from(buildBatch(records, 1_000_000, producer));
}

