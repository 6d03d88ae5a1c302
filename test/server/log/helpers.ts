/** Shared fixtures for the log tests: temp dirs, test batches, a logger that records. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildBatch } from '../../../protocol/record-batch.ts';
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
