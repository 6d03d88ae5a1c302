/**
 * The chrome every console page shares (title, navigation, the read-only notice) and small
 * formatting helpers. Pages return their body as SafeHtml (html.ts); this wraps it.
 */
import { html, href, type SafeHtml } from './html.ts';

export const NAV: ReadonlyArray<readonly [path: string, label: string]> = [
  ['/brokers', 'Brokers'],
  ['/topics', 'Topics'],
  ['/groups', 'Consumer groups'],
  ['/dlq', 'Dead letters'],
  ['/delayed', 'Delayed'],
];

export interface Chrome {
  title: string;
  /** The nav entry to mark as current. */
  section: string;
  writable: boolean;
  brokerId: number;
}

export function page(chrome: Chrome, body: SafeHtml): SafeHtml {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${chrome.title} · Sluice console</title>
<link rel="stylesheet" href="/console.css">
</head>
<body>
<header>
<a class="brand" href="/brokers">Sluice</a>
<nav>${NAV.map(([path, label]) => html`<a href="${path}"${path === chrome.section ? html` class="current" aria-current="page"` : ''}>${label}</a>`)}</nav>
<span class="mode ${chrome.writable ? 'rw' : 'ro'}" title="${chrome.writable ? 'started with --console-allow-writes true' : 'start the broker with --console-allow-writes true to replay, cancel and delete'}">${chrome.writable ? 'read-write' : 'read-only'}</span>
<span class="served">served by broker ${chrome.brokerId}</span>
</header>
<main>
<h1>${chrome.title}</h1>
${body}
</main>
</body>
</html>
`;
}

export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = -1;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

export function isoTime(ms: number): string {
  return ms >= 0 && Number.isFinite(ms) ? new Date(ms).toISOString() : '-';
}

export function topicLink(topic: string): SafeHtml {
  return html`<a href="${href('/topic', { name: topic })}">${topic}</a>`;
}

export function groupLink(group: string): SafeHtml {
  return html`<a href="${href('/group', { id: group })}">${group}</a>`;
}

/** A POST form with the CSRF token; `fields` become hidden inputs. */
export function actionForm(action: string, csrf: string, fields: Record<string, string | number>, label: string, confirmClass = 'danger'): SafeHtml {
  return html`<form method="post" action="${action}" class="inline">${Object.entries(fields).map(([k, v]) => html`<input type="hidden" name="${k}" value="${String(v)}">`)}<input type="hidden" name="csrf" value="${csrf}"><button type="submit" class="${confirmClass}">${label}</button></form>`;
}
