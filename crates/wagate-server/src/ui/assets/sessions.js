// Sessions: the list with live status, what can be done to each, and the linking screen.

import { get, post, del, enc } from './api.js';
import { h, fill, when, badge, phone, notify, act, field, panel } from './dom.js';
import { onEvent } from './live.js';

const LINKING = ['connecting', 'qr', 'pairing_code'];

/** The buttons that make sense for a session in its status. */
function actions(session, reload) {
  const id = session.id;
  const run = (label, path, confirmText) => h('button', { class: 'quiet', onclick: (e) => act(e.currentTarget, async () => {
    if (confirmText && !confirm(confirmText)) return;
    await post(`/sessions/${enc(id)}/${path}`);
    notify(`${label}: ${id}`);
    await reload();
  }) }, label);
  const buttons = [];
  if (['created', 'disconnected', 'logged_out', 'failed'].includes(session.status)) {
    buttons.push(h('a', { class: 'button', href: `#/link/${enc(id)}` }, session.phone ? 'Connect' : 'Link'));
  }
  if (LINKING.includes(session.status)) {
    buttons.push(h('a', { class: 'button', href: `#/link/${enc(id)}` }, 'Show code'));
  }
  if (session.status === 'connected') {
    buttons.push(h('a', { class: 'button', href: `#/chats/${enc(id)}` }, 'Chats'));
  }
  if (session.status !== 'created' && session.status !== 'disconnected' && session.status !== 'logged_out') {
    buttons.push(run('Disconnect', 'disconnect'));
  }
  if (session.phone && session.status !== 'logged_out') {
    buttons.push(run('Log out', 'logout', `Log ${id} out? The phone must be linked again.`));
  }
  buttons.push(h('button', { class: 'quiet danger', onclick: (e) => act(e.currentTarget, async () => {
    if (!confirm(`Delete session ${id} with its messages?`)) return;
    await del(`/sessions/${enc(id)}`);
    notify(`Deleted ${id}`);
    await reload();
  }) }, 'Delete'));
  return h('div', { class: 'actions' }, buttons);
}

function createForm(reload) {
  const id = h('input', { name: 'id', placeholder: 'sales-1', pattern: '[A-Za-z0-9_.\\-]{1,64}',
    title: 'Letters, digits, dot, dash or underscore' });
  const name = h('input', { name: 'name', placeholder: 'Sales line' });
  const connector = h('select', { name: 'connector' },
    h('option', { value: 'sim' }, 'sim: the simulated network'),
    h('option', { value: 'web' }, 'web: a real WhatsApp account'));
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Create and link');
  return h('form', { class: 'inline', onsubmit: (e) => {
    e.preventDefault();
    act(submit, async () => {
      const body = { connector: connector.value };
      if (id.value.trim()) body.id = id.value.trim();
      if (name.value.trim()) body.name = name.value.trim();
      const session = await post('/sessions', body);
      await post(`/sessions/${enc(session.id)}/connect`);
      location.hash = `#/link/${enc(session.id)}`;
    });
  } }, field('Id (optional)', id), field('Name (optional)', name), field('Connector', connector), submit);
}

/** `#/sessions`. */
export function renderList(main) {
  const body = h('tbody');
  const table = h('table', { class: 'list', id: 'sessions' },
    h('thead', {}, h('tr', {}, ['Session', 'Status', 'Phone', 'Connector', 'Last connected', ''].map((t) => h('th', { scope: 'col' }, t)))),
    body);
  let gone = false;
  const reload = async () => {
    const { data } = await get('/sessions');
    if (gone) return;
    if (!data.length) {
      fill(body, h('tr', {}, h('td', { colspan: 6, class: 'empty' }, 'No sessions yet: create one above.')));
      return;
    }
    fill(body, data.map((s) => h('tr', { dataset: { session: s.id } },
      h('td', {}, h('strong', {}, s.id), s.name ? h('div', { class: 'muted' }, s.name) : null),
      h('td', {}, badge(s.status, s.status_reason || undefined), s.status_reason ? h('div', { class: 'muted small' }, s.status_reason) : null),
      h('td', {}, phone(s.phone) || '—'),
      h('td', {}, s.connector),
      h('td', {}, when(s.last_connected_at)),
      h('td', {}, actions(s, reload)))));
  };
  fill(main, h('h1', {}, 'Sessions'), panel('New session', createForm(reload)), panel(null, h('div', { class: 'scroll' }, table)));
  reload().catch((e) => notify(e.message, 'error'));
  const off = onEvent((event) => {
    if (event.type === 'session.status') reload().catch(() => {});
  });
  return () => { gone = true; off(); };
}

/** `#/link/{id}`: the QR code (or pairing code) large, refreshed as it rotates. */
export function renderLink(main, [id]) {
  let gone = false;
  let session = null;
  const title = h('h1', {}, `Link ${id}`);
  const stage = h('div', { class: 'link-stage', 'aria-live': 'polite' });
  const side = h('div', { class: 'link-side' });
  fill(main, h('p', {}, h('a', { href: '#/sessions' }, '← Sessions')), title, h('div', { class: 'link-layout' }, stage, side));

  let qrAsked = 0;
  async function showQr() {
    const mine = ++qrAsked;
    try {
      const code = await get(`/sessions/${enc(id)}/qr`);
      if (gone || mine !== qrAsked) return;
      if (code.pairing_code) return showPairing(code.pairing_code, code.expires_at);
      fill(stage, h('img', { class: 'qr', src: code.image, alt: 'QR code to scan with WhatsApp', dataset: { code: code.code } }),
        h('p', { class: 'muted' }, `The code changes by itself; this one expires at ${when(code.expires_at)}.`));
      drawSide(code.code);
    } catch (e) {
      if (gone) return;
      // The session moved on (linked, say): its event is on its way; ask again meanwhile.
      if (e.code === 'no_qr_code') return setTimeout(() => load().catch(() => {}), 500);
      fill(stage, h('p', { class: 'error' }, e.message));
    }
  }

  function showPairing(code, expires) {
    fill(stage, h('p', {}, 'On the phone: Linked devices → Link with phone number, then type'),
      h('p', { class: 'pairing', id: 'pairing-code' }, code),
      expires ? h('p', { class: 'muted' }, `Valid until ${when(expires)}.`) : null);
    drawSide(code, true);
  }

  function drawSide(code, pairing = false) {
    const items = [
      h('h2', {}, 'How to link'),
      h('ol', {},
        h('li', {}, 'Open WhatsApp on the phone.'),
        h('li', {}, 'Settings → Linked devices → Link a device.'),
        h('li', {}, pairing ? 'Choose "Link with phone number instead" and type the code.' : 'Point the phone at this code.')),
    ];
    if (session?.connector === 'sim') {
      const number = h('input', { id: 'sim-phone', inputmode: 'numeric', value: `1555${String(Date.now()).slice(-7)}` });
      const scan = h('button', { class: 'primary', id: 'sim-scan', onclick: (e) => act(e.currentTarget, async () => {
        await post(pairing ? '/sim/pair' : '/sim/scan', { code, phone: number.value });
      }) }, pairing ? 'Enter the code on a virtual phone' : 'Scan with a virtual phone');
      items.push(h('div', { class: 'sim' }, h('h2', {}, 'No phone at hand?'),
        h('p', { class: 'muted' }, 'This session is on the simulated network: a virtual phone can link it.'),
        field('Virtual phone number', number), scan));
    }
    fill(side, items);
  }

  function pairingForm() {
    const number = h('input', { id: 'pairing-phone', inputmode: 'tel', placeholder: '+1 555 000 1111', required: true });
    const button = h('button', { type: 'submit' }, 'Get a pairing code');
    return h('form', { class: 'inline', onsubmit: (e) => {
      e.preventDefault();
      act(button, async () => {
        await post(`/sessions/${enc(id)}/connect`, { pairing_phone: number.value });
        await load();
      });
    } }, field('Or link by phone number', number), button);
  }

  function draw() {
    if (!session || gone) return;
    title.replaceChildren(`Link ${session.name || session.id} `, badge(session.status));
    if (session.status === 'connected') {
      stage.className = 'link-stage linked';
      fill(stage, h('div', { class: 'done' }, h('span', { class: 'check', 'aria-hidden': 'true' }, '✓'),
        h('p', {}, h('strong', {}, 'Linked'), ` to ${phone(session.phone)}.`),
        h('p', {}, h('a', { class: 'button', href: `#/chats/${enc(id)}` }, 'Open chats'), ' ',
          h('a', { class: 'button', href: '#/sessions' }, 'Back to sessions'))));
      fill(side);
      return;
    }
    stage.className = 'link-stage';
    if (session.status === 'qr') return showQr();
    if (session.status === 'pairing_code') return showQr();
    if (session.status === 'connecting') {
      fill(stage, h('p', { class: 'muted' }, 'Connecting…'));
      return;
    }
    const connect = h('button', { class: 'primary', onclick: (e) => act(e.currentTarget, async () => {
      await post(`/sessions/${enc(id)}/connect`);
      await load();
    }) }, session.phone ? 'Connect' : 'Show a QR code');
    fill(stage, session.status_reason ? h('p', { class: 'muted' }, session.status_reason) : null,
      h('p', {}, connect), pairingForm());
    fill(side);
  }

  // Each change of the session (an event) asks for it again; only the answer to the latest
  // request is drawn, so a slow answer cannot put back an older state.
  let asked = 0;
  async function load() {
    const mine = ++asked;
    const fetched = await get(`/sessions/${enc(id)}`);
    if (mine !== asked || gone) return;
    session = fetched;
    draw();
  }
  load().catch((e) => fill(stage, h('p', { class: 'error' }, e.message)));
  const off = onEvent((event) => {
    if (event.session_id === id && (event.type === 'session.status' || event.type === 'session.qr')) {
      load().catch((e) => notify(e.message, 'error'));
    }
  });
  return () => { gone = true; off(); };
}
