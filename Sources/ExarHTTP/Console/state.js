// The view is kept in the URL's hash (#view=browse&collection=orders&offset=0&limit=50&tag=&order=asc&time=utc),
// so a link can be shared and a reload restores it. A further field (a future "since" for
// jump-to-time, say) only needs an entry in DEFAULTS and a reader in the view that uses it.

export const VIEWS = ['overview', 'browse', 'live', 'publish', 'segments', 'groups'];

const DEFAULTS = {
  view: 'overview',
  collection: '',
  offset: 0,
  limit: 25,
  tag: '',
  order: 'asc',
  time: 'utc',
};

function clampInteger(text, fallback, min, max) {
  const value = Number.parseInt(text, 10);
  if (!Number.isFinite(value) || String(value) !== String(text).trim()) return fallback;
  return Math.min(Math.max(value, min), max);
}

/** Reads and normalises the state from a hash; anything unknown or malformed takes its default. */
export function parseHash(hash) {
  const search = new URLSearchParams(hash.replace(/^#/, ''));
  const get = (key) => search.get(key) ?? '';
  const view = VIEWS.includes(get('view')) ? get('view') : DEFAULTS.view;
  return {
    view,
    collection: get('collection'),
    offset: clampInteger(get('offset'), DEFAULTS.offset, 0, Number.MAX_SAFE_INTEGER),
    limit: clampInteger(get('limit'), DEFAULTS.limit, 1, 10000),
    tag: get('tag'),
    order: get('order') === 'desc' ? 'desc' : 'asc',
    time: get('time') === 'local' ? 'local' : 'utc',
  };
}

/** Writes the state as a hash, leaving out values equal to their defaults to keep links short. */
export function formatHash(state) {
  const search = new URLSearchParams();
  for (const key of Object.keys(DEFAULTS)) {
    const value = state[key];
    if (key === 'view' || (value !== DEFAULTS[key] && value !== '' && value !== undefined)) search.set(key, String(value));
  }
  return `#${search.toString()}`;
}

/** The state and its listeners: views call update(), everyone hears about every change. */
export class Store {
  constructor() {
    this.state = parseHash(location.hash);
    this.listeners = [];
    window.addEventListener('hashchange', () => this.replaceFromHash());
  }

  subscribe(listener) {
    this.listeners.push(listener);
  }

  /** Merges a change; push adds a history entry (Back returns), otherwise the entry is replaced. */
  update(change, { push = true } = {}) {
    const previous = this.state;
    this.state = parseHash(formatHash({ ...previous, ...change }));
    const hash = formatHash(this.state);
    if (hash !== location.hash) {
      if (push) history.pushState(null, '', hash);
      else history.replaceState(null, '', hash);
    }
    this.notify(previous);
  }

  replaceFromHash() {
    const previous = this.state;
    this.state = parseHash(location.hash);
    this.notify(previous);
  }

  notify(previous) {
    for (const listener of this.listeners) listener(this.state, previous);
  }
}
