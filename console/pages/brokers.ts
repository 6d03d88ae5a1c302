/** Brokers and controller, with the partition health the cluster metadata shows. */
import { html } from '../html.ts';
import type { PageContext, Rendered } from '../page-context.ts';

export async function brokersPage(ctx: PageContext): Promise<Rendered> {
  const md = await ctx.admin.metadata(null);
  let partitions = 0;
  let underReplicated = 0;
  let offline = 0;
  for (const t of md.topics) {
    for (const p of t.partitions) {
      partitions++;
      if (p.leader < 0) offline++;
      if (p.isr.length < p.replicas.length) underReplicated++;
    }
  }
  const brokers = [...md.brokers].sort((a, b) => a.nodeId - b.nodeId);
  const body = html`
<section class="cards">
<div class="card"><span class="n">${brokers.length}</span> brokers</div>
<div class="card"><span class="n">${md.topics.length}</span> topics</div>
<div class="card"><span class="n">${partitions}</span> partitions</div>
<div class="card ${underReplicated > 0 ? 'warn' : ''}"><span class="n">${underReplicated}</span> under-replicated</div>
<div class="card ${offline > 0 ? 'bad' : ''}"><span class="n">${offline}</span> offline</div>
</section>
<p>Cluster id <code>${md.clusterId}</code>; controller: broker ${md.controllerId < 0 ? 'none' : md.controllerId}.</p>
<table>
<thead><tr><th>Broker</th><th>Host</th><th>Port</th><th>Role</th><th>Leader of</th></tr></thead>
<tbody>${brokers.map((b) => {
    const leads = md.topics.reduce((n, t) => n + t.partitions.filter((p) => p.leader === b.nodeId).length, 0);
    return html`<tr><td>${b.nodeId}</td><td>${b.host}</td><td>${b.port}</td><td>${b.nodeId === md.controllerId ? html`<span class="badge">controller</span>` : ''}${b.nodeId === ctx.brokerId ? html` <span class="badge muted">this console</span>` : ''}</td><td>${leads} partitions</td></tr>`;
  })}</tbody>
</table>`;
  return { title: 'Brokers', section: '/brokers', body };
}
