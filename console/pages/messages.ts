/**
 * The message browser: one partition, from an offset, a time, or the last page; key, value
 * and headers of each message, JSON pretty-printed, each shown up to VALUE_BYTES_SHOWN_MAX.
 * A DLQ topic (…​.dlq) gets a Replay button per message when writes are allowed (dlq.ts).
 */
import type { Message } from '../../client/consumer.ts';
import { parseDuration, parseInstant } from '../../client/delivery-time.ts';
import { ErrorCode, SluiceError } from '../../protocol/errors.ts';
import { html, href, type SafeHtml } from '../html.ts';
import { actionForm, isoTime, topicLink } from '../layout.ts';
import { browsePartition, MESSAGES_PER_PAGE_DEFAULT, MESSAGES_PER_PAGE_MAX, type BrowseFrom } from '../message-browser.ts';
import { BadRequest, intParam, requiredParam, type PageContext, type Rendered } from '../page-context.ts';
import { showValue } from '../render-value.ts';

/** Bytes of a key, value or header value shown; the rest is counted. */
export const VALUE_BYTES_SHOWN_MAX = 4096;
/** Headers shown per message; the rest are counted. */
export const HEADERS_SHOWN_MAX = 32;

export const isDlqTopic = (topic: string): boolean => topic.endsWith('.dlq');

export async function messagesPage(ctx: PageContext): Promise<Rendered> {
  const q = ctx.query;
  const topic = requiredParam(q, 'topic');
  const md = await ctx.admin.metadata([topic]);
  const t = md.topics.find((x) => x.topic === topic);
  if (!t || t.errorCode !== ErrorCode.NONE) throw new SluiceError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `topic ${topic} does not exist`);
  const partitions = t.partitions.map((p) => p.partition).sort((a, b) => a - b);
  const partition = intParam(q, 'partition', 0, Math.max(0, partitions.length - 1)) ?? 0;
  const limit = intParam(q, 'limit', 1, MESSAGES_PER_PAGE_MAX) ?? MESSAGES_PER_PAGE_DEFAULT;
  const offset = intParam(q, 'offset', 0, Number.MAX_SAFE_INTEGER);
  const timeRaw = q.get('time') ?? '';
  let from: BrowseFrom = 'last';
  if (offset !== undefined) from = { offset };
  else if (timeRaw !== '') {
    try {
      from = { timeMs: timeRaw.trim().startsWith('-') ? Date.now() - parseDuration(timeRaw.trim().slice(1)) : parseInstant(timeRaw) };
    } catch (e) {
      throw new BadRequest(`time: ${(e as Error).message}`);
    }
  }
  const pg = await browsePartition(ctx.admin, ctx.bootstrap, ctx.security, topic, partition, from, limit, ctx.deadlineAtMs - 500);
  const dlq = isDlqTopic(topic) && ctx.access.writable;
  const prev = Math.max(pg.logStartOffset, pg.startOffset - limit);
  const body = html`
<p>Topic ${topicLink(topic)} · partition ${partition} holds offsets ${pg.logStartOffset} to ${pg.logEndOffset - 1} (log end ${pg.logEndOffset}).</p>
<form method="get" action="/messages" class="browse">
<input type="hidden" name="topic" value="${topic}">
<label>Partition <select name="partition">${partitions.map((p) => html`<option value="${p}"${p === partition ? html` selected` : ''}>${p}</option>`)}</select></label>
<label>From offset <input name="offset" inputmode="numeric" size="10" value="${offset ?? ''}"></label>
<label>or time <input name="time" size="24" placeholder="2026-01-01T00:00:00Z or -1h" value="${timeRaw}"></label>
<label>Messages <input name="limit" inputmode="numeric" size="4" value="${limit}"></label>
<button type="submit">Show</button>
<a href="${href('/messages', { topic, partition, limit })}">last page</a>
</form>
<p class="pager">${pg.startOffset > pg.logStartOffset ? html`<a href="${href('/messages', { topic, partition, offset: prev, limit })}">← older</a>` : ''}
Showing ${pg.messages.length} message${pg.messages.length === 1 ? '' : 's'} from offset ${pg.startOffset}${pg.timedOut ? html` <span class="warn">(stopped at the request timeout)</span>` : ''}
${pg.nextOffset < pg.logEndOffset ? html`<a href="${href('/messages', { topic, partition, offset: pg.nextOffset, limit })}">newer →</a>` : ''}</p>
${pg.messages.length === 0 ? html`<p class="empty">No messages here.</p>` : html`<table class="messages">
<thead><tr><th>Offset</th><th>Timestamp</th><th>Key</th><th>Headers</th><th>Value</th>${dlq ? html`<th></th>` : ''}</tr></thead>
<tbody>${pg.messages.map((m) => messageRow(m, dlq ? actionForm('/dlq/replay', ctx.csrf, { topic, partition: m.partition, offset: m.offset }, 'Replay', 'primary') : null))}</tbody>
</table>`}`;
  return { title: `Messages of ${topic}`, section: isDlqTopic(topic) ? '/dlq' : '/topics', body };
}

function shown(v: Uint8Array | null): SafeHtml {
  const s = showValue(v, VALUE_BYTES_SHOWN_MAX);
  const note = s.truncated ? html`<span class="note">… ${s.sizeBytes} bytes in all</span>` : '';
  if (s.kind === 'null') return html`<span class="null">null</span>`;
  return html`<pre class="${s.kind}">${s.text}</pre>${note}`;
}

function messageRow(m: Message, action: SafeHtml | null): SafeHtml {
  const headers = m.headers.slice(0, HEADERS_SHOWN_MAX);
  return html`<tr><td>${m.offset}</td><td>${isoTime(m.timestamp)}</td><td class="key">${shown(m.key)}</td>
<td class="headers">${headers.length === 0 ? '' : html`<dl>${headers.map((h) => html`<dt>${h.key}</dt><dd>${shown(h.value)}</dd>`)}</dl>`}${m.headers.length > headers.length ? html`<span class="note">${m.headers.length - headers.length} more headers</span>` : ''}</td>
<td class="value">${shown(m.value)}</td>${action ? html`<td>${action}</td>` : ''}</tr>`;
}
