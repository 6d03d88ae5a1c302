/**
 * How `sluice consume` prints a message: text (the value, with optional TAB-separated columns
 * before it), json (one object per line) or a kcat-style template (`-f`). Keys, values and
 * header values are decoded as UTF-8 (bytes that are not UTF-8 print as U+FFFD); null stays
 * null ("null" in text and templates).
 *
 * Invariant: text and json output is exactly one line per message (json escapes newlines);
 * a template prints what it says, newlines included.
 */
import type { Message } from '../consumer.ts';
import { UsageError } from './args.ts';

export type OutputFormat = { kind: 'text' } | { kind: 'json' } | { kind: 'template'; parts: TemplatePart[] };
type TemplatePart = string | { field: string };

export interface TextColumns {
  printKey: boolean;
  printOffset: boolean;
  printTags: boolean;
  printTimestamp: boolean;
  printHeaders: boolean;
}

const TEMPLATE_FIELDS = new Set(['t', 'p', 'o', 'T', 'k', 's', 'K', 'S', 'h']);
/** Longest template accepted: a command-line argument, not a program. */
const TEMPLATE_CHARS_MAX = 4096;

export function parseOutputFormat(raw: string): OutputFormat {
  if (raw === 'text') return { kind: 'text' };
  if (raw === 'json') return { kind: 'json' };
  if (!raw.includes('%')) throw new UsageError(`--format must be text, json or a template with %-fields (e.g. '%p:%o %k=%s\\n'), not ${JSON.stringify(raw)}`);
  if (raw.length > TEMPLATE_CHARS_MAX) throw new UsageError(`--format template longer than ${TEMPLATE_CHARS_MAX} characters`);
  const parts: TemplatePart[] = [];
  let lit = '';
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i]!;
    if (c === '\\' && i + 1 < raw.length) {
      const n = raw[++i]!;
      lit += n === 'n' ? '\n' : n === 't' ? '\t' : n === 'r' ? '\r' : n === '\\' ? '\\' : `\\${n}`;
    } else if (c === '%') {
      const f = raw[++i];
      if (f === '%') lit += '%';
      else if (f !== undefined && TEMPLATE_FIELDS.has(f)) {
        if (lit) parts.push(lit);
        lit = '';
        parts.push({ field: f });
      } else throw new UsageError(`--format: unknown field %${f ?? ''} (fields: %t %p %o %T %k %s %K %S %h %%)`);
    } else lit += c;
  }
  if (lit) parts.push(lit);
  return { kind: 'template', parts };
}

const utf8 = (b: Buffer | Uint8Array | null): string | null => (b === null ? null : Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('utf8'));
const orNull = (s: string | null): string => s ?? 'null';

/** ISO 8601, or the raw number for a timestamp no Date can hold. */
function isoOrMs(ms: number): string {
  const d = new Date(ms);
  return Number.isFinite(d.getTime()) ? d.toISOString() : String(ms);
}

function headersText(m: Message): string {
  return m.headers.map((h) => `${h.key}=${orNull(utf8(h.value))}`).join(',');
}

/** {key: value}; a key repeated in one message maps to the array of its values, in order. */
function headersObject(m: Message): Record<string, string | null | Array<string | null>> {
  const out: Record<string, string | null | Array<string | null>> = {};
  for (const h of m.headers) {
    const v = utf8(h.value);
    if (!Object.hasOwn(out, h.key)) out[h.key] = v;
    else {
      const prev = out[h.key]!;
      out[h.key] = Array.isArray(prev) ? [...prev, v] : [prev, v];
    }
  }
  return out;
}

function templateField(m: Message, f: string): string {
  switch (f) {
    case 't': return m.topic;
    case 'p': return String(m.partition);
    case 'o': return String(m.offset);
    case 'T': return String(m.timestamp);
    case 'k': return orNull(utf8(m.key));
    case 's': return orNull(utf8(m.value));
    case 'K': return String(m.key === null ? -1 : m.key.length);
    case 'S': return String(m.value === null ? -1 : m.value.length);
    default: return headersText(m); // 'h'
  }
}

function formatOne(m: Message, f: OutputFormat, cols: TextColumns): string {
  if (f.kind === 'json') {
    return `${JSON.stringify({ topic: m.topic, partition: m.partition, offset: m.offset, timestamp: m.timestamp, key: utf8(m.key), value: utf8(m.value), headers: headersObject(m) })}\n`;
  }
  if (f.kind === 'template') return f.parts.map((p) => (typeof p === 'string' ? p : templateField(m, p.field))).join('');
  let line = orNull(utf8(m.value));
  if (cols.printKey) line = `${orNull(utf8(m.key))}\t${line}`;
  if (cols.printTags) line = `${(m.tags ?? []).join(',')}\t${line}`;
  if (cols.printHeaders) line = `${headersText(m)}\t${line}`;
  if (cols.printTimestamp) line = `${isoOrMs(m.timestamp)}\t${line}`;
  if (cols.printOffset) line = `${m.partition}:${m.offset}\t${line}`;
  return `${line}\n`;
}

/** The first n messages of batch, as one chunk of output. */
export function formatMessages(batch: readonly Message[], n: number, f: OutputFormat, cols: TextColumns): string {
  let out = '';
  for (let i = 0; i < n; i++) out += formatOne(batch[i]!, f, cols);
  return out;
}
