// Events: the live tail of the event log, filtered by session and type, with a pause.

import { get } from './api.js';
import { h, fill, when, notify } from './dom.js';
import { onEvent, recent, HISTORY } from './live.js';

const TYPES = ['session.status', 'session.qr', 'message.received', 'message.status', 'webhook.disabled', 'campaign.status'];
/** Rows on screen: the newest that match the filters. */
const SHOWN = 300;

/** One line saying what an event is about. */
function summary(event) {
  const d = event.data || {};
  switch (event.type) {
    case 'session.status': return `${d.status}${d.reason ? ` (${d.reason})` : ''}${d.phone ? ` +${d.phone}` : ''}`;
    case 'session.qr': return `new QR code, expires ${when(d.expires_at)}`;
    case 'message.received': return `${d.type} from ${d.from || d.chat}${d.text ? `: ${d.text.body}` : ''}`;
    case 'message.status': return `${d.message_id} → ${d.status}${d.reason ? ` (${d.reason})` : ''}`;
    case 'webhook.disabled': return `${d.url}: ${d.reason}`;
    case 'campaign.status': return `${d.name}: ${d.status}, ${d.counts ? Object.entries(d.counts).filter(([, n]) => n).map(([k, n]) => `${n} ${k}`).join(', ') : ''}`;
    default: return '';
  }
}

/** `#/events`. */
export function render(main) {
  let paused = false;
  let held = [];
  const session = h('select', { id: 'events-session', 'aria-label': 'Session' }, h('option', { value: '' }, 'All sessions'));
  const type = h('select', { id: 'events-type', 'aria-label': 'Type' }, h('option', { value: '' }, 'All types'),
    TYPES.map((t) => h('option', { value: t }, t)));
  const count = h('span', { class: 'muted', id: 'events-held' });
  const pause = h('button', { id: 'events-pause', 'aria-pressed': 'false', onclick: () => {
    paused = !paused;
    pause.textContent = paused ? 'Resume' : 'Pause';
    pause.setAttribute('aria-pressed', String(paused));
    if (!paused) {
      held.forEach(show);
      held = [];
    }
    count.textContent = '';
  } }, 'Pause');
  const clear = h('button', { class: 'quiet', onclick: () => { seen = []; fill(rows); } }, 'Clear');
  const rows = h('tbody', { id: 'events' });
  // What the feed brought since sign-in; the filters choose from it.
  let seen = recent();
  const matches = (event) => (!session.value || event.session_id === session.value) && (!type.value || event.type === type.value);
  const redraw = () => fill(rows, seen.filter(matches).slice(-SHOWN).reverse().map(row));
  session.addEventListener('change', redraw);
  type.addEventListener('change', redraw);

  function row(event) {
    const details = h('details', {}, h('summary', {}, summary(event)), h('pre', {}, JSON.stringify(event.data, null, 2)));
    return h('tr', { dataset: { type: event.type } },
      h('td', { class: 'nowrap' }, when(event.created_at)),
      h('td', {}, h('code', {}, event.type)),
      h('td', {}, event.session_id || '—'),
      h('td', {}, details));
  }

  function show(event) {
    seen.push(event);
    if (seen.length > HISTORY) seen.shift();
    if (!matches(event)) return;
    rows.prepend(row(event));
    while (rows.children.length > SHOWN) rows.lastChild.remove();
  }

  fill(main, h('h1', {}, 'Events'),
    h('p', { class: 'muted' }, 'Live, from sign-in on. The whole log is at GET /v1/events.'),
    h('div', { class: 'toolbar' }, session, type, pause, count, clear),
    h('div', { class: 'panel scroll' }, h('table', { class: 'list' },
      h('thead', {}, h('tr', {}, ['Time', 'Type', 'Session', 'What'].map((t) => h('th', { scope: 'col' }, t)))), rows)));

  get('/sessions').then(({ data }) => session.append(...data.map((s) => h('option', { value: s.id }, s.id))))
    .catch((e) => notify(e.message, 'error'));
  redraw();
  return onEvent((event) => {
    if (paused) {
      held.push(event);
      count.textContent = `${held.length} new while paused`;
    } else {
      show(event);
    }
  });
}
