// Health: readiness, the nodes sharing the database, and a few numbers from /metrics.

import { get, call, enc } from './api.js';
import { h, fill, when, badge, ago, notify, act, panel } from './dom.js';

/** The value of each sample of a metric in Prometheus text, summed over its labels. */
function metric(text, name) {
  let found = null;
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name} `) || line.startsWith(`${name}{`)) {
      const value = Number(line.slice(line.lastIndexOf(' ') + 1));
      if (!Number.isNaN(value)) found = (found ?? 0) + value;
    }
  }
  return found;
}

function tile(label, value, id) {
  return h('div', { class: 'tile', id }, h('span', { class: 'muted' }, label), h('strong', {}, value));
}

/** `#/health`. */
export function render(main) {
  let gone = false;
  const ready = h('div');
  const numbers = h('div', { class: 'tiles' });
  const nodes = h('tbody', { id: 'nodes' });

  async function load() {
    const [readiness, cluster, metrics] = await Promise.all([
      call('GET', '/readyz', undefined, { raw: true }).then((r) => r.json()).catch((e) => ({ error: { message: e.message } })),
      get('/cluster/nodes'),
      call('GET', '/metrics', undefined, { raw: true }).then((r) => r.text()).catch((e) => e),
    ]);
    if (gone) return;
    fill(ready, readiness.status === 'ready'
      ? h('p', { id: 'readiness' }, badge('ready'), ' ', Object.entries(readiness.checks).map(([c, v]) => `${c}: ${v}`).join(' · '))
      : h('p', { id: 'readiness' }, badge('not_ready'), ' ', readiness.error?.message || 'not ready'));
    if (typeof metrics === 'string') {
      fill(numbers,
        tile('Outbox: messages waiting', metric(metrics, 'wagate_outbox_messages') ?? '—', 'outbox-depth'),
        tile('Oldest waiting', ago(metric(metrics, 'wagate_outbox_oldest_age_seconds')), 'outbox-oldest'),
        tile('Webhook deliveries pending', metric(metrics, 'wagate_webhook_deliveries_pending') ?? '—', 'webhook-backlog'),
        tile('Oldest pending delivery', ago(metric(metrics, 'wagate_webhook_oldest_pending_age_seconds'))),
        tile('Sessions', metric(metrics, 'wagate_sessions') ?? '—'));
    } else {
      fill(numbers, h('p', { class: 'muted' }, `Metrics are not served here (${metrics.message}); see metrics.listen.`));
    }
    fill(nodes, cluster.data.map((n) => h('tr', {},
      h('td', {}, h('strong', {}, n.id), h('div', { class: 'muted small' }, n.address)),
      h('td', {}, badge(n.state)),
      h('td', {}, `${n.sessions} / ${n.max_sessions}`),
      h('td', {}, n.version),
      h('td', {}, when(n.started_at)),
      h('td', {}, when(n.last_heartbeat)),
      h('td', {}, n.state === 'active' ? h('button', { class: 'quiet', onclick: (e) => act(e.currentTarget, async () => {
        if (!confirm(`Drain ${n.id}? It hands its sessions to other nodes and takes no new ones.`)) return;
        await call('POST', `/v1/cluster/nodes/${enc(n.id)}/drain`);
        await load();
      }) }, 'Drain') : null))));
  }

  fill(main, h('h1', {}, 'Health'), panel('Readiness', ready), panel('Key numbers', numbers),
    panel('Nodes', h('div', { class: 'scroll' }, h('table', { class: 'list' },
      h('thead', {}, h('tr', {}, ['Node', 'State', 'Sessions', 'Version', 'Started', 'Last heartbeat', ''].map((t) => h('th', { scope: 'col' }, t)))), nodes))));
  load().catch((e) => notify(e.message, 'error'));
  const timer = setInterval(() => load().catch(() => {}), 5000);
  return () => { gone = true; clearInterval(timer); };
}
