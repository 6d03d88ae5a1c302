/**
 * How the message browser shows a key, value or header value: UTF-8 text, pretty-printed
 * when it is JSON, as hex when it is not valid UTF-8, and never more than `bytesMax` bytes
 * of it (the rest is counted, not shown): a page of 100 messages of 10 MiB each must not
 * become a 1 GB page.
 *
 * Invariant: `text` is at most bytesMax characters of text (or 2 * bytesMax hex digits);
 * escaping is the page's job (html.ts), this module returns plain strings.
 */
import { Buffer } from 'node:buffer';

/** Values larger than this are not parsed as JSON (parsing is the cost, not the showing). */
export const JSON_PARSE_BYTES_MAX = 256 * 1024;

export interface ShownValue {
  kind: 'null' | 'json' | 'text' | 'binary';
  text: string;
  sizeBytes: number;
  /** Bytes (or characters of the pretty form) left out. */
  truncated: boolean;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

export function showValue(value: Uint8Array | null, bytesMax: number): ShownValue {
  if (value === null) return { kind: 'null', text: 'null', sizeBytes: 0, truncated: false };
  const sizeBytes = value.byteLength;
  let text: string;
  try {
    text = utf8.decode(value.byteLength > JSON_PARSE_BYTES_MAX ? value.subarray(0, bytesMax) : value);
  } catch {
    // A cut in the middle of a character is not binary: retry on what was cut, else hex.
    if (value.byteLength > JSON_PARSE_BYTES_MAX) {
      const lenient = Buffer.from(value.buffer, value.byteOffset, Math.min(bytesMax, value.byteLength)).toString('utf8');
      return { kind: 'text', text: lenient.slice(0, bytesMax), sizeBytes, truncated: true };
    }
    const hex = Buffer.from(value.buffer, value.byteOffset, Math.min(bytesMax, value.byteLength)).toString('hex');
    return { kind: 'binary', text: hex, sizeBytes, truncated: value.byteLength > bytesMax };
  }
  if (value.byteLength <= JSON_PARSE_BYTES_MAX) {
    const t = text.trimStart();
    if (t.startsWith('{') || t.startsWith('[')) {
      try {
        const pretty = JSON.stringify(JSON.parse(text), null, 2);
        return { kind: 'json', text: pretty.slice(0, bytesMax), sizeBytes, truncated: pretty.length > bytesMax };
      } catch {
        // not JSON: shown as text
      }
    }
  }
  return { kind: 'text', text: text.slice(0, bytesMax), sizeBytes, truncated: text.length > bytesMax || value.byteLength > JSON_PARSE_BYTES_MAX };
}
