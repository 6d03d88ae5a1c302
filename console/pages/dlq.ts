/**
 * Dead letters: the DLQ topics (`<group>.<topic>.dlq`, filled by the retry runner,
 * client/group/retry-policy.ts), browsed with the message browser, and the replay of one
 * message, exactly as `sluice dlq replay` does it (replayRecord in client/cli/dlq.ts).
 */
import { replayRecord, headerString } from '../../client/cli/dlq.ts';
import { HEADER_ORIGINAL_TOPIC } from '../../client/group/retry-policy.ts';
import { Producer } from '../../client/producer.ts';
import { html, href } from '../html.ts';
import { bytes } from '../layout.ts';
import { browsePartition } from '../message-browser.ts';
import { BadRequest, Forbidden, type PageContext, type Rendered } from '../page-context.ts';
import { isDlqTopic } from './messages.ts';
import { describeListed } from './topics.ts';

export async function dlqPage(ctx: PageContext): Promise<Rendered> {
  const md = await ctx.admin.metadata(null);
  const described = await describeListed(ctx, md.topics.map((t) => t.topic).filter(isDlqTopic));
  const dlqs = described.sort((a, b) => (a.topic < b.topic ? -1 : 1));
  const body = html`
<p>Messages a consumer group gave up on after its retries land in <code>&lt;group&gt;.&lt;topic&gt;.dlq</code>. ${ctx.access.writable ? 'Replay sends a message back to its original topic (the DLQ keeps it).' : 'Replay is off: the console is read-only.'}</p>
${dlqs.length === 0 ? html`<p class="empty">No dead-letter topics.</p>` : html`<table>
<thead><tr><th>DLQ topic</th><th>Partitions</th><th>Messages (approx.)</th><th>Size</th></tr></thead>
<tbody>${dlqs.map((d) => html`<tr><td><a href="${href('/messages', { topic: d.topic })}">${d.topic}</a></td><td>${d.partitions.length}</td><td>${d.partitions.reduce((n, p) => n + Math.max(0, p.logEndOffset - p.logStartOffset), 0)}</td><td>${bytes(d.partitions.reduce((n, p) => n + p.sizeBytes, 0))}</td></tr>`)}</tbody>
</table>`}`;
  return { title: 'Dead letters', section: '/dlq', body };
}

function formInt(form: URLSearchParams, name: string): number {
  const raw = form.get(name) ?? '';
  const n = /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(n)) throw new BadRequest(`${name} must be a non-negative integer`);
  return n;
}

export async function replayAction(ctx: PageContext, form: URLSearchParams): Promise<Rendered> {
  const topic = form.get('topic') ?? '';
  if (!isDlqTopic(topic)) throw new BadRequest('topic must be a DLQ topic (…​.dlq)');
  const partition = formInt(form, 'partition');
  const offset = formInt(form, 'offset');
  if (!ctx.access.canAlter(ctx.req, 'dlq-replay', topic)) throw new Forbidden(ctx.access.refusal);
  const pg = await browsePartition(ctx.admin, ctx.bootstrap, ctx.security, topic, partition, { offset }, 1, ctx.deadlineAtMs - 2000);
  const m = pg.messages[0];
  if (!m || m.offset !== offset) throw new BadRequest(`${topic} has no message at ${partition}:${offset}`);
  const target = headerString(m.headers, HEADER_ORIGINAL_TOPIC);
  if (!target) throw new BadRequest(`${topic} message ${partition}:${offset} has no ${HEADER_ORIGINAL_TOPIC} header; it cannot be replayed`);
  const producer = new Producer({ bootstrap: ctx.bootstrap, ...ctx.security, acks: 'all', clientId: 'sluice-console' });
  let sent;
  try {
    sent = await producer.send(replayRecord(m, topic, target));
  } finally {
    await producer.close();
  }
  const body = html`<p class="ok">Replayed ${topic} message ${partition}:${offset} to <strong>${target}</strong> (partition ${sent.partition}, offset ${sent.offset}).</p>
<p><a href="${href('/messages', { topic, partition, offset })}">Back to the DLQ</a> · <a href="${href('/messages', { topic: target, partition: sent.partition, offset: sent.offset })}">See the replayed message</a></p>`;
  return { title: 'Replayed', section: '/dlq', body };
}
