/** Topics: the list with partitions, replication, sizes and health; one topic with its partitions and configs. */
import type { TopicDescription } from '../../protocol/apis/describe-topics.ts';
import { ErrorCode, SluiceError } from '../../protocol/errors.ts';
import { actionForm, bytes, topicLink } from '../layout.ts';
import { html, href } from '../html.ts';
import { BadRequest, Forbidden, requiredParam, type PageContext, type Rendered } from '../page-context.ts';

/** Rows on the topic list; more are counted, not shown. */
export const TOPICS_LISTED_MAX = 1000;

export async function topicsPage(ctx: PageContext): Promise<Rendered> {
  const internal = ctx.query.get('internal') === '1';
  const md = await ctx.admin.metadata(null);
  const described = await describeListed(ctx, md.topics.map((t) => t.topic));
  const sizes = new Map(described.map((d) => [d.topic, d]));
  const topics = md.topics.filter((t) => internal || !t.topic.startsWith('__')).sort((a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : 0));
  const shown = topics.slice(0, TOPICS_LISTED_MAX);
  const body = html`
<p>${topics.length} topics${internal ? '' : ' (internal topics hidden)'} · <a href="${href('/topics', internal ? {} : { internal: 1 })}">${internal ? 'hide' : 'show'} internal topics</a></p>
<table>
<thead><tr><th>Topic</th><th>Partitions</th><th>Replicas</th><th>Under-replicated</th><th>Offline</th><th>Messages (approx.)</th><th>Size</th></tr></thead>
<tbody>${shown.map((t) => {
    const d = sizes.get(t.topic);
    const size = d?.partitions.reduce((n, p) => n + p.sizeBytes, 0) ?? 0;
    const count = d?.partitions.reduce((n, p) => n + Math.max(0, p.logEndOffset - p.logStartOffset), 0) ?? 0;
    const under = t.partitions.filter((p) => p.isr.length < p.replicas.length).length;
    const offline = t.partitions.filter((p) => p.leader < 0).length;
    return html`<tr><td>${topicLink(t.topic)}</td><td>${t.partitions.length}</td><td>${t.partitions[0]?.replicas.length ?? 0}</td><td class="${under > 0 ? 'warn' : ''}">${under}</td><td class="${offline > 0 ? 'bad' : ''}">${offline}</td><td>${count}</td><td>${bytes(size)}</td></tr>`;
  })}</tbody>
</table>
${topics.length > shown.length ? html`<p class="note">${topics.length - shown.length} more topics not listed.</p>` : ''}`;
  return { title: 'Topics', section: '/topics', body };
}

/**
 * DescribeTopics of the topics Metadata listed, by name: Metadata lists only the topics the
 * console's user may describe (with ACLs on), where DescribeTopics of all topics would need
 * describe on the whole cluster.
 */
export async function describeListed(ctx: PageContext, names: string[]): Promise<TopicDescription[]> {
  return names.length === 0 ? [] : ctx.admin.describeTopics(names);
}

export async function topicPage(ctx: PageContext): Promise<Rendered> {
  const name = requiredParam(ctx.query, 'name');
  const [md, [d]] = await Promise.all([ctx.admin.metadata([name]), ctx.admin.describeTopics([name])]);
  const t = md.topics.find((x) => x.topic === name);
  if (!t || t.errorCode !== ErrorCode.NONE || !d) throw new SluiceError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `topic ${name} does not exist`);
  const logs = new Map(d.partitions.map((p) => [p.partition, p]));
  const parts = [...t.partitions].sort((a, b) => a.partition - b.partition);
  const body = html`
<p><a href="${href('/messages', { topic: name })}">Browse messages</a> · <a href="${href('/delayed', { topic: name })}">Delayed messages</a>${ctx.access.writable ? html` · ${actionForm('/topic/delete', ctx.csrf, { name }, 'Delete topic')}` : ''}</p>
<h2>Partitions</h2>
<table>
<thead><tr><th>Partition</th><th>Leader</th><th>Epoch</th><th>Replicas</th><th>ISR</th><th>Log start</th><th>Log end</th><th>Size</th><th>Segments</th><th></th></tr></thead>
<tbody>${parts.map((p) => {
    const l = logs.get(p.partition);
    return html`<tr><td>${p.partition}</td><td class="${p.leader < 0 ? 'bad' : ''}">${p.leader < 0 ? 'none' : p.leader}</td><td>${p.leaderEpoch}</td><td>${p.replicas.join(', ')}</td><td class="${p.isr.length < p.replicas.length ? 'warn' : ''}">${p.isr.join(', ')}</td><td>${l?.logStartOffset ?? '-'}</td><td>${l?.logEndOffset ?? '-'}</td><td>${l ? bytes(l.sizeBytes) : '-'}</td><td>${l?.segments ?? '-'}</td><td><a href="${href('/messages', { topic: name, partition: p.partition })}">messages</a></td></tr>`;
  })}</tbody>
</table>
<h2>Configs</h2>
<table class="configs">
<thead><tr><th>Name</th><th>Value</th></tr></thead>
<tbody>${Object.keys(d.configs).sort().map((k) => html`<tr><td>${k}</td><td><code>${d.configs[k]}</code></td></tr>`)}</tbody>
</table>`;
  return { title: `Topic ${name}`, section: '/topics', body };
}

export async function deleteTopicAction(ctx: PageContext, form: URLSearchParams): Promise<Rendered> {
  const name = form.get('name');
  if (!name) throw new BadRequest('name is required');
  if (!ctx.access.canAlter(ctx.req, 'topic-delete', name)) throw new Forbidden(ctx.access.refusal);
  await ctx.admin.deleteTopics([name]);
  return { title: 'Topic deleted', section: '/topics', body: html`<p class="ok">Deleted topic <strong>${name}</strong>.</p><p><a href="/topics">Back to topics</a></p>` };
}
