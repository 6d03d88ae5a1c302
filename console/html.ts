/**
 * HTML built with a tagged template that escapes every interpolated value unless it is
 * already SafeHtml (the output of `html` itself). Everything the console shows from the
 * broker (topic names, group ids, keys, values, headers, client ids) is user data: it only
 * reaches a page through `html`, so it is always text, never markup.
 *
 * Invariants: escapeHtml's output contains none of & < > " ' unescaped; templates quote
 * every attribute with "", so an escaped value cannot leave an attribute either; URLs are
 * built by `href` from fixed paths and encodeURIComponent'd parameters (no javascript: URL
 * can come from data). The pages carry no script at all (console-server.ts sends a CSP
 * without script-src), a second line of defence.
 */

export class SafeHtml {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ENTITIES[c]!);
}

/** null, undefined and false render as nothing; arrays render each element; SafeHtml as is; anything else as escaped text. */
function piece(v: unknown): string {
  if (v === null || v === undefined || v === false) return '';
  if (v instanceof SafeHtml) return v.text;
  if (Array.isArray(v)) return v.map(piece).join('');
  return escapeHtml(String(v));
}

export function html(strings: TemplateStringsArray, ...values: unknown[]): SafeHtml {
  let out = strings[0]!;
  for (let i = 0; i < values.length; i++) out += piece(values[i]) + strings[i + 1]!;
  return new SafeHtml(out);
}

/** A console URL: a fixed path and query parameters, each encoded (undefined and null are left out). */
export function href(path: string, params: Record<string, string | number | undefined | null> = {}): string {
  const q = Object.entries(params)
    .filter(([, v]) => v !== undefined && v !== null && v !== '')
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`)
    .join('&');
  return q ? `${path}?${q}` : path;
}
