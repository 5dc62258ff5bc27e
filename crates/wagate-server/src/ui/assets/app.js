// The dashboard's shell: sign-in, navigation and the hash router (`#/sessions`,
// `#/link/alice`, `#/chats/alice/15550002222@s.whatsapp.net`, ...). Each view is a module
// whose `render(main, params)` draws into `main` and returns what to do when it is left.

import { key, get, ApiError } from './api.js';
import { h, fill, notify } from './dom.js';
import * as live from './live.js';
import * as sessions from './sessions.js';
import * as chats from './chats.js';
import * as events from './events.js';
import * as webhooks from './webhooks.js';
import * as campaigns from './campaigns.js';
import * as health from './health.js';

const app = document.getElementById('app');

const SECTIONS = [
  ['sessions', 'Sessions', sessions.renderList],
  ['chats', 'Chats', chats.render],
  ['events', 'Events', events.render],
  ['webhooks', 'Webhooks', webhooks.render],
  ['campaigns', 'Campaigns', campaigns.render],
  ['health', 'Health', health.render],
];
const ROUTES = { link: sessions.renderLink };

let leave = null;

function signIn(error) {
  live.stop();
  leave?.();
  leave = null;
  const input = h('input', { id: 'key', type: 'password', autocomplete: 'current-password', required: true,
    placeholder: 'wg_…', 'aria-describedby': 'key-help' });
  const problem = h('p', { class: 'error', role: 'alert', id: 'sign-in-error' }, error || '');
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Sign in');
  const form = h('form', { class: 'sign-in panel', onsubmit: async (e) => {
    e.preventDefault();
    submit.disabled = true;
    problem.textContent = '';
    key.set(input.value.trim());
    try {
      await get('/sessions');
      if (!location.hash || location.hash === '#/') location.hash = '#/sessions';
      shell();
    } catch (err) {
      key.clear();
      problem.textContent = err.status === 401
        ? `The server refused this key: ${err.message}.`
        : err.message;
      input.focus();
    } finally {
      submit.disabled = false;
    }
  } },
  h('h1', {}, h('img', { src: './icon.svg', alt: '', width: 32, height: 32 }), ' wagate'),
  h('label', { for: 'key' }, 'Admin API key'),
  input,
  h('small', { id: 'key-help' },
    'Printed at the first start and kept in the data directory (admin.key). It stays in this tab only.'),
  problem,
  submit);
  fill(app, h('main', { class: 'center' }, form));
  input.focus();
}

function shell() {
  const status = h('span', { class: 'live off', role: 'status' }, 'offline');
  const nav = h('nav', { 'aria-label': 'Sections' },
    SECTIONS.map(([id, label]) => h('a', { href: `#/${id}`, dataset: { section: id } }, label)));
  const main = h('main', { id: 'main', tabindex: '-1' });
  fill(app,
    h('a', { class: 'skip', href: '#main', onclick: (e) => { e.preventDefault(); main.focus(); } }, 'Skip to content'),
    h('header', { class: 'top' },
      h('a', { class: 'brand', href: '#/sessions' }, h('img', { src: './icon.svg', alt: '', width: 24, height: 24 }), 'wagate'),
      nav,
      status,
      h('button', { class: 'quiet', onclick: signOut }, 'Sign out')),
    main,
    h('div', { id: 'notices', 'aria-live': 'polite' }));
  live.onState((state, detail) => {
    status.className = `live ${state}`;
    status.textContent = { live: 'live', connecting: 'connecting…', reconnecting: 'reconnecting…', off: 'offline' }[state];
    status.title = detail || '';
  });
  live.start();
  route();
}

function signOut() {
  key.clear();
  location.hash = '';
  signIn();
}

function route() {
  const main = document.getElementById('main');
  if (!main) return;
  const [section = 'sessions', ...params] = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  const known = SECTIONS.find(([id]) => id === section);
  const view = known ? known[2] : ROUTES[section];
  for (const link of document.querySelectorAll('nav a')) {
    const current = link.dataset.section === section || (section === 'link' && link.dataset.section === 'sessions');
    if (current) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  leave?.();
  leave = null;
  fill(main);
  if (!view) {
    fill(main, h('p', {}, 'No such page. ', h('a', { href: '#/sessions' }, 'Go to sessions')));
    return;
  }
  try {
    leave = view(main, params) || null;
  } catch (e) {
    notify(e.message, 'error');
  }
}

window.addEventListener('hashchange', route);
window.addEventListener('wagate:unauthorized', (e) => {
  if (!document.getElementById('main')) return;
  key.clear();
  signIn(`Signed out: ${e.detail.message}.`);
});
window.addEventListener('unhandledrejection', (e) => {
  if (e.reason instanceof ApiError || e.reason instanceof Error) notify(e.reason.message, 'error');
});

if (key.get()) shell();
else signIn();
