// Small DOM helpers: building elements without innerHTML (text is always text), times, notices.

/** An element: h('button', {class: 'x', onclick: f}, 'text', child, [more]). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') el.addEventListener(name.slice(2), value);
    else if (name === 'class') el.className = value;
    else if (name === 'dataset') Object.assign(el.dataset, value);
    // Through the CSSOM: the Content-Security-Policy forbids style attributes.
    else if (name === 'style') Object.assign(el.style, value);
    else if (name === 'value') el.value = value;
    else if (value === true) el.setAttribute(name, '');
    else el.setAttribute(name, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces an element's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** "14:03:22" today, else "Nov 28, 14:03". */
export function when(iso) {
  if (!iso) return '—';
  const at = new Date(iso);
  const today = new Date().toDateString() === at.toDateString();
  return today
    ? at.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' })
    : at.toLocaleString([], { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
}

/** A duration in seconds as a person says it. */
export function ago(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return '—';
  if (seconds < 1) return 'none';
  if (seconds < 90) return `${Math.round(seconds)} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

/** A status word as a coloured badge. */
export function badge(status, title) {
  return h('span', { class: `badge s-${status}`, title }, status.replaceAll('_', ' '));
}

/** A phone number or JID as people read it: +15550001111. */
export function phone(jidOrPhone) {
  if (!jidOrPhone) return '';
  const user = String(jidOrPhone).split('@')[0].split(':')[0];
  return /^\d+$/.test(user) ? `+${user}` : jidOrPhone;
}

const notices = () => document.getElementById('notices');

/** A message at the bottom of the screen; errors stay until dismissed. */
export function notify(text, kind = 'info') {
  const box = notices();
  if (!box) return;
  const note = h('div', { class: `notice ${kind}`, role: kind === 'error' ? 'alert' : 'status' },
    h('span', {}, text),
    h('button', { class: 'link', 'aria-label': 'Dismiss', onclick: () => note.remove() }, '×'));
  box.append(note);
  if (kind !== 'error') setTimeout(() => note.remove(), 4000);
}

/** Runs an action of a button: disabled while it runs, its error shown. */
export async function act(button, action) {
  button.disabled = true;
  try {
    return await action();
  } catch (e) {
    notify(e.message, 'error');
    return undefined;
  } finally {
    button.disabled = false;
  }
}

/** A labelled form field. */
export function field(label, input, hint) {
  return h('label', { class: 'field' }, h('span', {}, label), input, hint ? h('small', {}, hint) : null);
}

/** A panel with a title. */
export function panel(title, ...children) {
  return h('section', { class: 'panel' }, title ? h('h2', {}, title) : null, ...children);
}
