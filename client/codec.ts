/**
 * Conversions between what applications hand the clients (strings, bytes, null) and the
 * bytes records carry. Strings are UTF-8. Each value is encoded exactly once, on send.
 */
import { Buffer } from 'node:buffer';

/** What a record key or value may be given as. undefined is treated as null. */
export type BytesInput = string | Uint8Array | null | undefined;

const EMPTY = new Uint8Array(0);

/** UTF-8 bytes of a string, the bytes themselves, or null. */
export function toBytes(v: BytesInput): Uint8Array | null {
  if (v == null) return null;
  if (typeof v === 'string') return v.length === 0 ? EMPTY : Buffer.from(v, 'utf8');
  if (v instanceof Uint8Array) return v;
  throw new TypeError(`expected a string, a Uint8Array or null, got ${typeof v}`);
}

/** Decodes UTF-8 bytes; null stays null. */
export function bytesToString(b: Uint8Array | null): string | null {
  if (b === null) return null;
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('utf8');
}
