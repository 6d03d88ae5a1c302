/** Delayed messages (SPEC §6.25): pending ones of a topic in release order, paged, and cancel (SPEC §6.26). */
import { parseDelayedRef, type DelayedCursor } from '../../client/admin.ts';
import { html, href } from '../html.ts';
import { actionForm, bytes, isoTime, topicLink } from '../layout.ts';
import { BadRequest, Forbidden, intParam, type PageContext, type Rendered } from '../page-context.ts';

export const DELAYED_PER_PAGE = 50;

export async function delayedPage(ctx: PageContext): Promise<Rendered> {
  const q = ctx.query;
  const topic = q.get('topic') ?? '';
  const topics = (await ctx.admin.listTopics()).filter((t) => !t.startsWith('__'));
  const picker = html`<form method="get" action="/delayed" class="browse"><label>Topic <select name="topic">${topics.map((t) => html`<option${t === topic ? html` selected` : ''}>${t}</option>`)}</select></label> <button type="submit">Show</button></form>`;
  if (topic === '') return { title: 'Delayed messages', section: '/delayed', body: html`${picker}<p>Pick a topic to list its pending delayed messages.</p>` };
  const partition = intParam(q, 'partition', 0, 1_000_000) ?? null;
  const afterAt = intParam(q, 'afterAt', -1, Number.MAX_SAFE_INTEGER);
  const after: DelayedCursor | null = afterAt === undefined ? null : { deliverAtMs: afterAt, partition: intParam(q, 'afterPartition', 0, 1_000_000) ?? 0, offset: intParam(q, 'afterOffset', 0, Number.MAX_SAFE_INTEGER) ?? 0 };
  const list = await ctx.admin.listDelayed(topic, partition, { limit: DELAYED_PER_PAGE, after });
  const body = html`${picker}
<p>Topic ${topicLink(topic)}: ${list.pendingCount} pending delayed message${list.pendingCount === 1 ? '' : 's'}${partition === null ? '' : html` in partition ${partition}`}.</p>
${list.entries.length === 0 ? html`<p class="empty">None pending${after ? ' after this point' : ''}.</p>` : html`<table>
<thead><tr><th>Id</th><th>Delivered at</th><th>Asked for</th><th>Records</th><th>Size</th>${ctx.access.writable ? html`<th></th>` : ''}</tr></thead>
<tbody>${list.entries.map((e) => html`<tr><td><code>${e.id}</code></td><td>${isoTime(e.deliverAtMs)}</td><td>${isoTime(e.requestedDeliverAtMs)}</td><td>${e.recordCount}</td><td>${bytes(e.sizeBytes)}</td>${ctx.access.writable ? html`<td>${actionForm('/delayed/cancel', ctx.csrf, { id: e.id }, 'Cancel')}</td>` : ''}</tr>`)}</tbody>
</table>`}
${list.next ? html`<p class="pager"><a href="${href('/delayed', { topic, partition, afterAt: list.next.deliverAtMs, afterPartition: list.next.partition, afterOffset: list.next.offset })}">next page →</a></p>` : ''}`;
  return { title: `Delayed messages of ${topic}`, section: '/delayed', body };
}

export async function cancelDelayedAction(ctx: PageContext, form: URLSearchParams): Promise<Rendered> {
  const id = form.get('id') ?? '';
  let topic: string;
  try {
    topic = parseDelayedRef(id).topic;
  } catch (e) {
    throw new BadRequest((e as Error).message);
  }
  if (!ctx.access.canAlter(ctx.req, 'delayed-cancel', id)) throw new Forbidden(ctx.access.refusal);
  await ctx.admin.cancelDelayed(id);
  return { title: 'Cancelled', section: '/delayed', body: html`<p class="ok">Cancelled delayed message <code>${id}</code>: it will never be delivered.</p><p><a href="${href('/delayed', { topic })}">Back to the delayed messages of ${topic}</a></p>` };
}
