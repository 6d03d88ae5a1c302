/** The process streams a command uses, passed in so commands stay testable in-process. */
import type { Readable, Writable } from 'node:stream';

export interface Io {
  stdin: Readable;
  stdout: Writable;
  /** Writes text to stdout (small outputs; consume writes to stdout itself, with backpressure). */
  out(text: string): void;
  /** Writes text to stderr. */
  err(text: string): void;
}

export function processIo(): Io {
  return {
    stdin: process.stdin,
    stdout: process.stdout,
    out: (t) => void process.stdout.write(t),
    err: (t) => void process.stderr.write(t),
  };
}
