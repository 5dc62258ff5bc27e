// Chats: a session's conversations, one conversation with its ticks, and sending text or a file.

import { get, post, call, enc, mediaUrl } from './api.js';
import { h, fill, when, phone, notify, act } from './dom.js';
import { onEvent } from './live.js';

const MEDIA = ['image', 'video', 'audio', 'document', 'sticker'];

/** The tick a status shows, with words for screen readers and a tooltip. */
function tick(message) {
  const marks = {
    scheduled: ['🕓', 'scheduled'], queued: ['🕓', 'queued'], sending: ['🕓', 'sending'],
    sent: ['✓', 'sent'], delivered: ['✓✓', 'delivered'], read: ['✓✓', 'read'],
    played: ['✓✓', 'played'], failed: ['!', 'failed'], canceled: ['×', 'canceled'],
  };
  const [mark, word] = marks[message.status] || ['?', message.status];
  const title = message.status_reason ? `${word}: ${message.status_reason}` : word;
  return h('span', { class: `tick t-${message.status}`, title, 'aria-label': title, dataset: { status: message.status } }, mark);
}

/** A media part drawn once its file is fetched with the key. */
function mediaPreview(kind, media) {
  const box = h('div', { class: 'media' }, h('span', { class: 'muted' }, `${kind} · ${Math.ceil(media.size / 1024)} KiB`));
  mediaUrl(media.id).then((url) => {
    if (kind === 'image' || kind === 'sticker') fill(box, h('img', { src: url, alt: media.caption || kind }));
    else if (kind === 'video') fill(box, h('video', { src: url, controls: true, preload: 'metadata' }));
    else if (kind === 'audio') fill(box, h('audio', { src: url, controls: true }));
    else fill(box, h('a', { href: url, download: media.filename || 'file' }, `📄 ${media.filename || media.mime_type}`));
  }).catch((e) => fill(box, h('span', { class: 'error' }, e.message)));
  return box;
}

/** What a message says, as a bubble's body. */
function content(message) {
  const kind = message.type;
  if (kind === 'text') return h('p', {}, message.text.body);
  if (MEDIA.includes(kind)) {
    const media = message[kind];
    return [mediaPreview(kind, media), media.caption ? h('p', {}, media.caption) : null];
  }
  if (kind === 'location') return h('p', {}, `📍 ${message.location.name || ''} ${message.location.latitude}, ${message.location.longitude}`);
  if (kind === 'reaction') return h('p', {}, `Reacted ${message.reaction.emoji || '(removed)'}`);
  if (kind === 'poll') return h('p', {}, `📊 ${message.poll.name}`);
  if (kind === 'contacts') return h('p', {}, `👤 ${message.contacts.map((c) => c.name?.formatted_name || c.name || 'contact').join(', ')}`);
  if (kind === 'edit') return h('p', { class: 'muted' }, `Edited: ${message.edit.text?.body ?? ''}`);
  if (kind === 'revoke') return h('p', { class: 'muted' }, 'Deleted a message');
  return h('p', { class: 'muted' }, `(${kind})`);
}

function bubble(message) {
  const out = message.direction === 'out';
  return h('li', { class: `bubble ${out ? 'out' : 'in'}`, dataset: { id: message.id } },
    content(message),
    h('div', { class: 'meta' }, when(message.created_at), out ? tick(message) : null),
    out && message.status === 'failed' && message.status_reason ? h('div', { class: 'error small' }, message.status_reason) : null);
}

/** The kind of media message a file makes. */
function kindOf(file) {
  if (file.type.startsWith('image/')) return 'image';
  if (file.type.startsWith('video/')) return 'video';
  if (file.type.startsWith('audio/')) return 'audio';
  return 'document';
}

/** `#/chats[/{session}[/{chat}]]`. */
export function render(main, [sessionId, chat]) {
  let gone = false;
  const picker = h('select', { id: 'chat-session', 'aria-label': 'Session', onchange: () => { location.hash = `#/chats/${enc(picker.value)}`; } });
  const list = h('ul', { class: 'chats', id: 'chat-list' });
  const newChat = h('input', { id: 'new-chat', placeholder: 'Phone number, e.g. +1 555 000 2222', inputmode: 'tel', required: true });
  const conversation = h('div', { class: 'conversation' });
  fill(main, h('h1', {}, 'Chats'),
    h('div', { class: 'chat-layout' },
      h('aside', { class: 'panel' }, picker,
        h('form', { class: 'new-chat', onsubmit: (e) => {
          e.preventDefault();
          location.hash = `#/chats/${enc(sessionId)}/${enc(newChat.value.replace(/[^\d]/g, ''))}`;
        } }, newChat, h('button', { type: 'submit' }, 'Open')),
        list),
      conversation));

  async function loadSessions() {
    const { data } = await get('/sessions');
    if (gone) return;
    fill(picker, data.length ? null : h('option', { value: '' }, 'No sessions'),
      data.map((s) => h('option', { value: s.id, selected: s.id === sessionId }, `${s.id}${s.phone ? ` (${phone(s.phone)})` : ''} · ${s.status}`)));
    if (!sessionId && data.length) location.hash = `#/chats/${enc(data[0].id)}`;
  }

  async function loadChats() {
    if (!sessionId) return;
    const { data } = await get(`/sessions/${enc(sessionId)}/chats?limit=200`);
    if (gone) return;
    fill(list, data.length ? data.map((c) => h('li', {},
      h('a', { href: `#/chats/${enc(sessionId)}/${enc(c.jid)}`, 'aria-current': c.jid === chat || phone(c.jid) === phone(chat) ? 'page' : null },
        h('strong', {}, c.name || phone(c.jid)), h('span', { class: 'muted small' }, when(c.last_message_at)))))
      : h('li', { class: 'muted' }, 'No chats yet. Open one with a number above.'));
  }

  const thread = h('ol', { class: 'thread', id: 'thread', 'aria-live': 'polite' });
  async function loadThread() {
    if (!sessionId || !chat) return;
    const { data } = await get(`/sessions/${enc(sessionId)}/messages?chat=${enc(chat)}&limit=200`);
    if (gone) return;
    const atBottom = thread.scrollHeight - thread.scrollTop - thread.clientHeight < 40;
    fill(thread, data.length ? data.reverse().map(bubble) : h('li', { class: 'muted empty' }, 'No messages yet.'));
    if (atBottom) thread.scrollTop = thread.scrollHeight;
  }

  function composer() {
    const text = h('textarea', { id: 'compose-text', rows: 2, placeholder: 'Write a message', 'aria-label': 'Message',
      onkeydown: (e) => { if (e.key === 'Enter' && !e.shiftKey) { e.preventDefault(); form.requestSubmit(); } } });
    const file = h('input', { type: 'file', id: 'compose-file', 'aria-label': 'Attach a file' });
    const send = h('button', { type: 'submit', class: 'primary', id: 'compose-send' }, 'Send');
    const form = h('form', { class: 'composer', onsubmit: (e) => {
      e.preventDefault();
      act(send, async () => {
        const chosen = file.files[0];
        let body;
        if (chosen) {
          const upload = new FormData();
          upload.append('file', chosen, chosen.name);
          const media = await call('POST', '/v1/media', upload);
          const kind = kindOf(chosen);
          const part = { media_id: media.id };
          if (text.value.trim() && kind !== 'audio') part.caption = text.value.trim();
          if (kind === 'document') part.filename = chosen.name;
          body = { to: chat, type: kind, [kind]: part };
        } else {
          if (!text.value.trim()) return;
          body = { to: chat, type: 'text', text: { body: text.value } };
        }
        await post(`/sessions/${enc(sessionId)}/messages`, body);
        text.value = '';
        file.value = '';
        await loadThread();
        thread.scrollTop = thread.scrollHeight;
        text.focus();
      });
    } }, text, file, send);
    return form;
  }

  if (sessionId && chat) {
    fill(conversation, h('header', { class: 'chat-head' }, h('h2', {}, phone(chat))), thread, composer());
  } else {
    fill(conversation, h('p', { class: 'muted empty' }, sessionId ? 'Pick a chat, or open one with a phone number.' : 'Pick a session.'));
  }
  const failed = (e) => notify(e.message, 'error');
  loadSessions().then(loadChats).then(loadThread).catch(failed);

  let pending = null;
  const soon = () => {
    clearTimeout(pending);
    pending = setTimeout(() => Promise.all([loadChats(), loadThread()]).catch(() => {}), 100);
  };
  const off = onEvent((event) => {
    if (event.session_id !== sessionId) return;
    if (event.type === 'message.received' || event.type === 'message.status') soon();
  });
  return () => { gone = true; clearTimeout(pending); off(); };
}
