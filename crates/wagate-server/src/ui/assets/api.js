// The API, called with the admin key the person signed in with. The key lives in this tab's
// sessionStorage and travels only in the Authorization header, never in a URL.

const KEY = 'wagate.key';

export const key = {
  get: () => sessionStorage.getItem(KEY),
  set: (value) => sessionStorage.setItem(KEY, value),
  clear: () => sessionStorage.removeItem(KEY),
};

/** An API error as a person reads it: the server's message, its code and status kept. */
export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

/** What went wrong, from an answer that is not 2xx. */
async function failure(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    // not JSON: a proxy's page, say
  }
  const error = body && body.error;
  if (error && error.message) {
    let message = error.message;
    const field = error.details && error.details.field;
    if (field && !message.includes(field)) message = `${field}: ${message}`;
    return new ApiError(response.status, error.code, message, error.details);
  }
  return new ApiError(response.status, 'http_error',
    `The server answered ${response.status} ${response.statusText || ''}`.trim());
}

/** Calls the API: `body` is sent as JSON, or as is when it is FormData or a Blob. */
export async function call(method, path, body, { headers = {}, raw = false, signal } = {}) {
  const init = { method, headers: { Authorization: `Bearer ${key.get()}`, ...headers }, signal };
  if (body instanceof FormData || body instanceof Blob) {
    init.body = body;
  } else if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers['Content-Type'] = 'application/json';
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, 'unreachable', 'Cannot reach the wagate server. Is it running?');
  }
  if (!response.ok) {
    const error = await failure(response);
    if (response.status === 401) window.dispatchEvent(new CustomEvent('wagate:unauthorized', { detail: error }));
    throw error;
  }
  if (raw) return response;
  if (response.status === 204) return null;
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

export const get = (path, opts) => call('GET', `/v1${path}`, undefined, opts);
export const post = (path, body, opts) => call('POST', `/v1${path}`, body, opts);
export const patch = (path, body) => call('PATCH', `/v1${path}`, body);
export const del = (path) => call('DELETE', `/v1${path}`);
export const enc = encodeURIComponent;

/** Files fetched in this tab, by media id: a conversation is drawn again at each event. */
const media = new Map();

/** A stored file as a blob: URL (an <img> cannot send the key itself), fetched once. */
export function mediaUrl(id) {
  if (!media.has(id)) {
    const url = call('GET', `/v1/media/${enc(id)}`, undefined, { raw: true })
      .then((response) => response.blob())
      .then((blob) => URL.createObjectURL(blob));
    url.catch(() => media.delete(id));
    media.set(id, url);
  }
  return media.get(id);
}

/**
 * Reads `GET /v1/events/stream` with fetch, so the key goes in a header (EventSource cannot
 * send one). Calls `onOpen()` once the server accepted it, `onEvent(envelope)` for each event, `onClose(notice)` for the server's
 * `event: close`; returns when the stream ends. `after` resumes after an event id.
 */
export async function readStream({ after, signal, onOpen, onEvent, onClose }) {
  const headers = { Accept: 'text/event-stream' };
  if (after) headers['Last-Event-ID'] = after;
  const response = await call('GET', '/v1/events/stream', undefined, { raw: true, headers, signal });
  onOpen?.();
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replaceAll('\r\n', '\n');
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const frame = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let kind = 'message';
      const data = [];
      for (const line of frame.split('\n')) {
        if (line.startsWith('event:')) kind = line.slice(6).trim();
        else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
      }
      if (!data.length) continue; // a keep-alive comment
      const payload = JSON.parse(data.join('\n'));
      if (kind === 'close') onClose?.(payload);
      else onEvent(payload);
    }
  }
}
