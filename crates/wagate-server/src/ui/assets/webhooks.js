// Webhooks: the list, creating one (its secret shown once), editing, enabling, and each
// webhook's deliveries with their attempts and answers, retry and replay.

import { get, post, patch, del, enc } from './api.js';
import { h, fill, when, badge, notify, act, field, panel } from './dom.js';

/** The fields a webhook is made or edited with. */
function webhookFields(webhook = {}, editing = false) {
  const url = h('input', { name: 'url', type: 'url', required: true, placeholder: 'https://example.com/wagate', value: webhook.url });
  const events = h('input', { name: 'events', value: (webhook.events || ['*']).join(', '), placeholder: 'message.*, session.status' });
  // A webhook keeps the session it was made for.
  const session = h('input', { name: 'session_id', value: webhook.session_id, placeholder: 'every session', disabled: editing });
  const description = h('input', { name: 'description', value: webhook.description, placeholder: 'CRM' });
  const read = () => {
    const body = {
      url: url.value.trim(),
      events: events.value.split(',').map((e) => e.trim()).filter(Boolean),
      description: description.value.trim() || null,
    };
    if (!editing && session.value.trim()) body.session_id = session.value.trim();
    return body;
  };
  const fields = [field('URL', url), field('Events', events, 'Types or prefix.*, comma separated; * for all'),
    field('Session', session), field('Description', description)];
  return { fields, read };
}

function createForm(reload, secretBox) {
  const { fields, read } = webhookFields();
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Create webhook');
  return h('form', { class: 'inline', id: 'webhook-create', onsubmit: (e) => {
    e.preventDefault();
    act(submit, async () => {
      const body = read();
      if (!body.description) delete body.description;
      const created = await post('/webhooks', body);
      e.target.reset();
      fill(secretBox, h('div', { class: 'callout', role: 'status' },
        h('p', {}, h('strong', {}, 'Signing secret for '), created.url, h('strong', {}, ' — shown only this once:')),
        h('p', {}, h('code', { id: 'webhook-secret', class: 'secret' }, created.secret), ' ',
          h('button', { class: 'quiet', onclick: (ev) => act(ev.currentTarget, () => navigator.clipboard.writeText(created.secret).then(() => notify('Copied'))) }, 'Copy')),
        h('button', { class: 'link', onclick: () => fill(secretBox) }, 'I saved it')));
      await reload();
    });
  } }, fields, submit);
}

/** `#/webhooks` or `#/webhooks/{id}`. */
export function render(main, [id]) {
  return id ? renderOne(main, id) : renderList(main);
}

function renderList(main) {
  let gone = false;
  const secretBox = h('div');
  const rows = h('tbody', { id: 'webhooks' });
  const reload = async () => {
    const { data } = await get('/webhooks');
    if (gone) return;
    fill(rows, data.length ? data.map((w) => h('tr', { dataset: { webhook: w.id } },
      h('td', {}, h('a', { href: `#/webhooks/${enc(w.id)}` }, w.url), w.description ? h('div', { class: 'muted small' }, w.description) : null),
      h('td', {}, w.events.join(', ')),
      h('td', {}, w.session_id || 'all'),
      h('td', {}, w.enabled ? badge('enabled') : badge('disabled', w.disabled_reason), w.disabled_reason ? h('div', { class: 'muted small' }, w.disabled_reason) : null),
      h('td', {}, h('a', { class: 'button', href: `#/webhooks/${enc(w.id)}` }, 'Deliveries')))) :
      h('tr', {}, h('td', { colspan: 5, class: 'empty' }, 'No webhooks yet.')));
  };
  fill(main, h('h1', {}, 'Webhooks'), panel('New webhook', createForm(reload, secretBox), secretBox),
    panel(null, h('div', { class: 'scroll' }, h('table', { class: 'list' },
      h('thead', {}, h('tr', {}, ['URL', 'Events', 'Session', 'State', ''].map((t) => h('th', { scope: 'col' }, t)))), rows))));
  reload().catch((e) => notify(e.message, 'error'));
  return () => { gone = true; };
}

function attempts(delivery) {
  if (!delivery.attempts.length) return h('p', { class: 'muted' }, 'No attempt yet.');
  return h('ol', { class: 'attempts' }, delivery.attempts.map((a) => h('li', {},
    h('span', { class: 'nowrap' }, when(a.at)), ' ',
    a.status_code ? badge(a.status_code < 300 ? 'delivered' : 'failed', `HTTP ${a.status_code}`) : badge('failed'),
    ' ', h('strong', {}, a.status_code ? `HTTP ${a.status_code}` : 'no answer'),
    ` in ${a.latency_ms} ms`,
    a.error ? h('div', { class: 'error small' }, a.error) : null,
    a.response_body ? h('pre', { class: 'answer' }, a.response_body) : null)));
}

function renderOne(main, id) {
  let gone = false;
  let webhook = null;
  const head = h('div');
  const rows = h('tbody', { id: 'deliveries' });
  const status = h('select', { 'aria-label': 'Delivery status', onchange: () => loadDeliveries() },
    ['', 'pending', 'delivered', 'failed'].map((s) => h('option', { value: s }, s || 'All deliveries')));

  async function load() {
    webhook = await get(`/webhooks/${enc(id)}`);
    if (gone) return;
    drawHead();
  }

  function drawHead() {
    const { fields, read } = webhookFields(webhook, true);
    const save = h('button', { type: 'submit', class: 'primary' }, 'Save');
    const toggle = h('button', { id: 'webhook-toggle', onclick: (e) => act(e.currentTarget, async () => {
      webhook = await patch(`/webhooks/${enc(id)}`, { enabled: !webhook.enabled });
      notify(webhook.enabled ? 'Enabled' : 'Disabled');
      drawHead();
    }) }, webhook.enabled ? 'Disable' : 'Enable');
    const since = h('input', { type: 'datetime-local', 'aria-label': 'Replay since', required: true,
      value: new Date(Date.now() - 3600e3 - new Date().getTimezoneOffset() * 60e3).toISOString().slice(0, 16) });
    const replay = h('button', { type: 'submit' }, 'Replay');
    fill(head,
      h('h1', {}, 'Webhook ', webhook.enabled ? badge('enabled') : badge('disabled', webhook.disabled_reason)),
      webhook.disabled_reason ? h('p', { class: 'error' }, webhook.disabled_reason) : null,
      panel('Settings', h('form', { class: 'inline', onsubmit: (e) => {
        e.preventDefault();
        act(save, async () => {
          webhook = await patch(`/webhooks/${enc(id)}`, read());
          notify('Saved');
          drawHead();
        });
      } }, fields, save), h('div', { class: 'actions' }, toggle,
        h('button', { class: 'quiet danger', onclick: (e) => act(e.currentTarget, async () => {
          if (!confirm(`Delete the webhook to ${webhook.url}?`)) return;
          await del(`/webhooks/${enc(id)}`);
          location.hash = '#/webhooks';
        }) }, 'Delete'))),
      panel('Replay', h('form', { class: 'inline', onsubmit: (e) => {
        e.preventDefault();
        act(replay, async () => {
          const result = await post(`/webhooks/${enc(id)}/replay`, { since: new Date(since.value).toISOString() });
          notify(`Queued ${result.queued} events again`);
          await loadDeliveries();
        });
      } }, field('Events since', since), replay)));
  }

  async function loadDeliveries() {
    const query = status.value ? `?status=${status.value}` : '';
    const { data } = await get(`/webhooks/${enc(id)}/deliveries${query}`);
    if (gone) return;
    const open = new Set([...rows.querySelectorAll('details[open]')].map((d) => d.dataset.id));
    fill(rows, data.length ? data.map((d) => h('tr', { dataset: { delivery: d.id, status: d.status } },
      h('td', { class: 'nowrap' }, when(d.created_at)),
      h('td', {}, h('code', {}, d.event_type)),
      h('td', {}, badge(d.status)),
      h('td', {}, h('details', { dataset: { id: d.id }, open: open.has(d.id) },
        h('summary', {}, `${d.attempt_count} attempt${d.attempt_count === 1 ? '' : 's'}`,
          d.next_attempt_at ? `, next ${when(d.next_attempt_at)}` : ''),
        attempts(d))),
      h('td', {}, h('button', { class: 'quiet', onclick: (e) => act(e.currentTarget, async () => {
        await post(`/webhooks/${enc(id)}/deliveries/${enc(d.id)}/retry`);
        notify('Retrying now');
        await loadDeliveries();
      }) }, 'Retry')))) :
      h('tr', {}, h('td', { colspan: 5, class: 'empty' }, 'No deliveries yet.')));
  }

  fill(main, h('p', {}, h('a', { href: '#/webhooks' }, '← Webhooks')), head,
    panel('Deliveries', h('div', { class: 'toolbar' }, status),
      h('div', { class: 'scroll' }, h('table', { class: 'list' },
        h('thead', {}, h('tr', {}, ['Created', 'Event', 'Status', 'Attempts and answers', ''].map((t) => h('th', { scope: 'col' }, t)))), rows))));
  const failed = (e) => notify(e.message, 'error');
  load().then(loadDeliveries).catch(failed);
  // Deliveries make no events of their own: look again every two seconds while shown.
  const timer = setInterval(() => loadDeliveries().catch(() => {}), 2000);
  return () => { gone = true; clearInterval(timer); };
}
