/**
 * Checkpoint files: small text files that cache per-partition state the log implies (leader
 * epochs, the high watermark), in Kafka's CheckpointFile layout so an operator can read them:
 *
 *   <version>\n
 *   <entry count>\n
 *   <field> <field> ...\n      one line per entry, integer fields separated by one space
 *
 * Invariants:
 * - Written whole through writeFileDurable*: the file holds the old or the new content, never
 *   a mix (a leftover `.tmp` is garbage that the loader (log-loader.ts) deletes).
 * - Reading never throws for bad content: it reports 'missing' or 'corrupt' with a problem,
 *   and the owner falls back to what the log itself says.
 * - Bounded: a file larger than CHECKPOINT_BYTES_MAX is corrupt, not read into memory.
 */
import fs from 'node:fs';
import { writeFileDurable, writeFileDurableSync } from './durable-file.ts';

/** Far above any real checkpoint (one short line per leader epoch). */
export const CHECKPOINT_BYTES_MAX = 1024 * 1024;
const INTEGER = /^-?\d{1,16}$/;

export type CheckpointRead = { kind: 'ok'; entries: number[][] } | { kind: 'missing' } | { kind: 'corrupt'; problem: string };

export function encodeCheckpoint(version: number, entries: ReadonlyArray<ReadonlyArray<number>>): Buffer {
  const lines = [String(version), String(entries.length), ...entries.map((e) => e.join(' '))];
  return Buffer.from(lines.join('\n') + '\n', 'utf8');
}

/** Parses `text`; every entry must have exactly fieldsPerEntry safe integers. */
export function decodeCheckpoint(text: string, version: number, fieldsPerEntry: number): CheckpointRead {
  const lines = text.split('\n');
  if (lines[lines.length - 1] !== '') return { kind: 'corrupt', problem: 'no newline at the end (torn write?)' };
  lines.pop();
  if (lines[0] !== String(version)) return { kind: 'corrupt', problem: `version ${JSON.stringify(lines[0])}, expected ${version}` };
  const count = INTEGER.test(lines[1] ?? '') ? Number(lines[1]) : -1;
  if (count < 0 || lines.length !== count + 2) return { kind: 'corrupt', problem: `entry count ${JSON.stringify(lines[1])} does not match ${lines.length - 2} entry lines` };
  const entries: number[][] = [];
  for (let i = 2; i < lines.length; i++) {
    const fields = lines[i]!.split(' ');
    if (fields.length !== fieldsPerEntry || !fields.every((f) => INTEGER.test(f) && Number.isSafeInteger(Number(f)))) {
      return { kind: 'corrupt', problem: `line ${i + 1} ${JSON.stringify(lines[i])} is not ${fieldsPerEntry} integers` };
    }
    entries.push(fields.map(Number));
  }
  return { kind: 'ok', entries };
}

export function readCheckpointSync(filePath: string, version: number, fieldsPerEntry: number): CheckpointRead {
  let bytes: Buffer;
  try {
    const size = fs.statSync(filePath).size;
    if (size > CHECKPOINT_BYTES_MAX) return { kind: 'corrupt', problem: `${size} bytes is more than ${CHECKPOINT_BYTES_MAX}` };
    bytes = fs.readFileSync(filePath);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'missing' };
    return { kind: 'corrupt', problem: `cannot read: ${(e as Error).message}` };
  }
  return decodeCheckpoint(bytes.toString('utf8'), version, fieldsPerEntry);
}

export function writeCheckpointSync(filePath: string, version: number, entries: ReadonlyArray<ReadonlyArray<number>>): void {
  writeFileDurableSync(filePath, encodeCheckpoint(version, entries));
}

export function writeCheckpoint(filePath: string, version: number, entries: ReadonlyArray<ReadonlyArray<number>>): Promise<void> {
  return writeFileDurable(filePath, encodeCheckpoint(version, entries));
}
