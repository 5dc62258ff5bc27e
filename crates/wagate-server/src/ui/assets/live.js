// One live feed of events for the whole page: every view subscribes to it rather than opening
// a stream of its own. It reconnects after a drop, resuming after the last event it saw, so a
// view misses nothing while the connection is down.

import { readStream } from './api.js';

const listeners = new Set();
/** How many events since sign-in are kept, so that a view opened later can show them. */
export const HISTORY = 5000;
const history = [];
const stateListeners = new Set();
let controller = null;
let lastId = null;
let state = 'off';

function setState(next, detail) {
  state = next;
  for (const listener of stateListeners) listener(next, detail);
}

/** Calls `listener(event)` for each event from now; returns the unsubscribe. */
export function onEvent(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/** The events seen since sign-in (the last `HISTORY`), oldest first. */
export function recent() {
  return history.slice();
}

/** Calls `listener(state)` now and when the feed goes `live`, `reconnecting` or `off`. */
export function onState(listener) {
  stateListeners.add(listener);
  listener(state);
  return () => stateListeners.delete(listener);
}

export function start() {
  if (controller) return;
  controller = new AbortController();
  const signal = controller.signal;
  (async () => {
    let delay = 500;
    while (!signal.aborted) {
      try {
        setState('connecting');
        await readStream({
          after: lastId,
          signal,
          onOpen: () => {
            setState('live');
            delay = 500;
          },
          onEvent: (event) => {
            lastId = event.id;
            history.push(event);
            if (history.length > HISTORY) history.shift();
            for (const listener of listeners) {
              try {
                listener(event);
              } catch (e) {
                console.error(e);
              }
            }
          },
          onClose: (notice) => setState('reconnecting', notice.message),
        });
      } catch (e) {
        if (signal.aborted) return;
        if (e.status === 401) return setState('off', e.message);
        setState('reconnecting', e.message);
      }
      if (signal.aborted) return;
      setState('reconnecting');
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 10000);
    }
  })();
}

export function stop() {
  controller?.abort();
  controller = null;
  lastId = null;
  history.length = 0;
  setState('off');
}
