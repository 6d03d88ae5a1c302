/** Consumer groups: the list; one group with its members, their assignments, and lag per partition. */
import { ErrorCode, SluiceError } from '../../protocol/errors.ts';
import { html } from '../html.ts';
import { actionForm, groupLink, topicLink } from '../layout.ts';
import { BadRequest, Forbidden, requiredParam, type PageContext, type Rendered } from '../page-context.ts';

/** Rows on the group list; more are counted, not shown. */
export const GROUPS_LISTED_MAX = 1000;

export async function groupsPage(ctx: PageContext): Promise<Rendered> {
  const groups = await ctx.admin.listGroups();
  const shown = groups.slice(0, GROUPS_LISTED_MAX);
  const body = html`
<p>${groups.length} groups.</p>
<table>
<thead><tr><th>Group</th><th>State</th><th>Members</th></tr></thead>
<tbody>${shown.map((g) => html`<tr><td>${groupLink(g.groupId)}</td><td><span class="state ${g.state}">${g.state}</span></td><td>${g.members}</td></tr>`)}</tbody>
</table>
${groups.length > shown.length ? html`<p class="note">${groups.length - shown.length} more groups not listed.</p>` : ''}`;
  return { title: 'Consumer groups', section: '/groups', body };
}

export async function groupPage(ctx: PageContext): Promise<Rendered> {
  const id = requiredParam(ctx.query, 'id');
  const [g] = await ctx.admin.describeGroups([id]);
  if (!g) throw new SluiceError(ErrorCode.GROUP_ID_NOT_FOUND, `group ${id}`);
  const lag = await ctx.admin.groupLag(id, g);
  const total = lag.reduce((n, r) => n + (r.lag ?? 0), 0);
  const members = [...g.members].sort((a, b) => (a.memberId < b.memberId ? -1 : 1));
  const tps = (list: Array<{ topic: string; partitions: number[] }>) => list.map((a) => html`<div>${topicLink(a.topic)}: ${[...a.partitions].sort((x, y) => x - y).join(', ')}</div>`);
  const body = html`
<p>State <span class="state ${g.state}">${g.state}</span> · group epoch ${g.groupEpoch} · assignment epoch ${g.assignmentEpoch} · assignor ${g.assignor || '-'} · total lag <strong>${total}</strong>${ctx.access.writable && g.state === 'empty' ? html` · ${actionForm('/group/delete', ctx.csrf, { id }, 'Delete group')}` : ''}</p>
<h2>Members (${members.length})</h2>
${members.length === 0 ? html`<p class="empty">No members.</p>` : html`<table>
<thead><tr><th>Member</th><th>Client</th><th>Host</th><th>Epoch</th><th>Subscribed</th><th>Assigned</th><th>Target</th></tr></thead>
<tbody>${members.map((m) => html`<tr><td><code>${m.memberId}</code></td><td>${m.clientId}</td><td>${m.clientHost}</td><td>${m.memberEpoch}</td><td>${m.subscribedTopicRegex !== null ? html`<code>/${m.subscribedTopicRegex}/</code>` : m.subscribedTopicNames.join(', ')}</td><td>${tps(m.assignment)}</td><td>${tps(m.targetAssignment)}</td></tr>`)}</tbody>
</table>`}
<h2>Lag</h2>
${lag.length === 0 ? html`<p class="empty">No committed offsets or subscriptions.</p>` : html`<table>
<thead><tr><th>Topic</th><th>Partition</th><th>Committed</th><th>Log end</th><th>Lag</th><th>Owner</th></tr></thead>
<tbody>${lag.map((r) => html`<tr><td>${topicLink(r.topic)}</td><td>${r.partition}</td><td>${r.committedOffset < 0 ? '-' : r.committedOffset}</td><td>${r.logEndOffset < 0 ? '-' : r.logEndOffset}</td><td class="${(r.lag ?? 0) > 0 ? 'warn' : ''}">${r.lag ?? '-'}</td><td>${r.owner === null ? '-' : html`<code>${r.owner}</code>`}</td></tr>`)}</tbody>
</table>`}`;
  return { title: `Group ${id}`, section: '/groups', body };
}

export async function deleteGroupAction(ctx: PageContext, form: URLSearchParams): Promise<Rendered> {
  const id = form.get('id');
  if (!id) throw new BadRequest('id is required');
  if (!ctx.access.canAlter(ctx.req, 'group-delete', id)) throw new Forbidden(ctx.access.refusal);
  await ctx.admin.deleteGroups([id]);
  return { title: 'Group deleted', section: '/groups', body: html`<p class="ok">Deleted group <strong>${id}</strong> and its committed offsets.</p><p><a href="/groups">Back to groups</a></p>` };
}
