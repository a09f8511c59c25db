// The message log: for every action the console takes over HTTP, the protocol
// lines (docs/PROTOCOL.md) a TCP client would have exchanged, sent (›) and
// received (‹), with each TAB drawn as a visible arrow.

import { h } from './dom.js';

const TAB = '\t';
const MAX_ENTRIES = 300;

/** Builders of the client's lines, field for field as PROTOCOL.md spells them. */
export const line = {
  connect: (collection) => ['Connect', collection].join(TAB),
  publish: (tags, timestamp, data) => ['Publish', tags, String(timestamp), data].join(TAB),
  publishIf: (tag, expectedId, tags, timestamp, data) =>
    ['PublishIf', tag, String(expectedId), tags, String(timestamp), data].join(TAB),
  subscribe: (live, offset, limit, tag) => {
    const fields = ['Subscribe', live ? 'true' : 'false', String(offset), String(limit)];
    if (tag) fields.push(tag);
    return fields.join(TAB);
  },
  unsubscribe: () => 'Unsubscribe',
  locate: (timestamp) => ['Locate', String(timestamp)].join(TAB),
  located: (offset) => ['Located', String(offset)].join(TAB),
  drop: (collection) => ['Drop', collection].join(TAB),
  published: (id) => ['Published', String(id)].join(TAB),
  event: (event) => ['Event', String(event.id), String(event.timestamp), event.tags.join(' '), event.data].join(TAB),
  subscribed: () => 'Subscribed',
  end: () => 'EndOfEventStream',
  connected: () => 'Connected',
  dropped: () => 'Dropped',
  /** The protocol's answer for an API error: its kind, then the message where the protocol has one. */
  error: (apiError) => {
    // A conflict's protocol answer names the tag's last id, where the HTTP body spells it out.
    if (apiError.kind === 'ConflictError' && apiError.details?.actualId !== undefined) {
      return ['Error', 'ConflictError', String(apiError.details.actualId)].join(TAB);
    }
    return (apiError.message ? ['Error', apiError.kind, apiError.message] : ['Error', apiError.kind]).join(TAB);
  },
};

/** Renders a protocol line with TABs as arrows and newlines (which the wire cannot carry) as ↵. */
function renderLine(text) {
  const parts = [];
  const pieces = text.split(/(\t|\n)/);
  for (const piece of pieces) {
    if (piece === TAB) parts.push(h('span', { class: 'tab', title: 'TAB', 'aria-label': 'TAB' }, '→'));
    else if (piece === '\n') parts.push(h('span', { class: 'tab', title: 'newline' }, '↵'));
    else if (piece) parts.push(piece);
  }
  return parts;
}

function time() {
  const now = new Date();
  return now.toTimeString().slice(0, 8);
}

export class MessageLog {
  constructor(list) {
    this.list = list;
  }

  add(kind, text) {
    const marker = { sent: '›', received: '‹', note: '#', http: '⇄' }[kind];
    const entry = h('li', { class: `log-${kind}`, dataset: { kind } },
      h('time', { text: time() }),
      h('span', { class: 'marker', 'aria-label': kind, text: marker }),
      h('code', {}, renderLine(text)));
    const atBottom = this.list.scrollHeight - this.list.scrollTop - this.list.clientHeight < 24;
    this.list.append(entry);
    while (this.list.children.length > MAX_ENTRIES) this.list.firstElementChild.remove();
    // Follow the newest line unless the reader scrolled up to read an older one.
    if (atBottom) this.list.scrollTop = this.list.scrollHeight;
  }

  /** The HTTP request that carried the action. */
  http(method, path) { this.add('http', `${method} ${path}`); }
  sent(...lines) { for (const text of lines) this.add('sent', text); }
  received(...lines) { for (const text of lines) this.add('received', text); }
  note(text) { this.add('note', text); }

  /**
   * A failed request as the protocol would have answered it: a bad name fails the Connect,
   * anything else the request after it; a network failure had no answer at all.
   */
  failed(collection, request, error) {
    this.sent(line.connect(collection));
    if (error.status === 0) {
      this.note(`no answer: ${error.message}`);
      return;
    }
    if (error.kind === 'ConnectionError' || error.kind === 'AuthenticationError') {
      this.received(line.error(error));
      return;
    }
    this.received(line.connected());
    if (request) this.sent(request);
    this.received(line.error(error));
  }
  clear() { this.list.replaceChildren(); }
}
