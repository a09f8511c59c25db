// An event's data: a string that is shown as a collapsible JSON tree when it
// parses as a JSON object or array, and as it is otherwise (or when raw is asked).

import { h } from './dom.js';

/** Levels deeper than this start collapsed. */
const OPEN_DEPTH = 2;
/** Longer collections of keys start collapsed too. */
const OPEN_ENTRIES = 20;
/** An object or array this short as compact JSON is shown on one line, with nothing to collapse. */
const INLINE_CHARACTERS = 60;

/** The parsed data if it is a JSON object or array, otherwise undefined. */
export function parseStructured(data) {
  const text = data.trim();
  if (!text.startsWith('{') && !text.startsWith('[')) return undefined;
  try {
    const value = JSON.parse(text);
    return value !== null && typeof value === 'object' ? value : undefined;
  } catch {
    return undefined;
  }
}

function scalar(value) {
  if (value === null) return h('span', { class: 'j-null', text: 'null' });
  switch (typeof value) {
    case 'string': return h('span', { class: 'j-string', text: JSON.stringify(value) });
    case 'number': return h('span', { class: 'j-number', text: String(value) });
    case 'boolean': return h('span', { class: 'j-bool', text: String(value) });
    default: return h('span', { text: String(value) });
  }
}

function summaryText(value) {
  const count = Array.isArray(value) ? value.length : Object.keys(value).length;
  const noun = Array.isArray(value) ? (count === 1 ? 'item' : 'items') : (count === 1 ? 'key' : 'keys');
  return `${Array.isArray(value) ? '[' : '{'} ${count} ${noun} ${Array.isArray(value) ? ']' : '}'}`;
}

/** A short object or array on one line: { "id": 7, "tags": [1, 2] }. */
function inline(value) {
  const isArray = Array.isArray(value);
  const parts = [h('span', { class: 'j-punct', text: isArray ? '[' : '{ ' })];
  const entries = isArray ? value.map((item) => [null, item]) : Object.entries(value);
  entries.forEach(([key, item], index) => {
    if (index > 0) parts.push(h('span', { class: 'j-punct', text: ', ' }));
    if (key !== null) parts.push(h('span', { class: 'j-key', text: `${JSON.stringify(key)}: ` }));
    parts.push(item !== null && typeof item === 'object' ? inline(item) : scalar(item));
  });
  parts.push(h('span', { class: 'j-punct', text: isArray ? ']' : ' }' }));
  return h('span', { class: 'j-inline' }, parts);
}

function node(value, depth) {
  if (value === null || typeof value !== 'object') return scalar(value);
  if (JSON.stringify(value).length <= INLINE_CHARACTERS) return inline(value);
  const entries = Array.isArray(value) ? value.map((item, index) => [index, item]) : Object.entries(value);
  if (entries.length === 0) return h('span', { class: 'j-punct', text: Array.isArray(value) ? '[]' : '{}' });
  const list = h('ul', { class: 'j-entries' });
  for (const [key, item] of entries) {
    list.append(h('li', {},
      Array.isArray(value) ? null : h('span', { class: 'j-key', text: `${JSON.stringify(key)}: ` }),
      node(item, depth + 1)));
  }
  const details = h('details', { class: 'j-node' }, h('summary', { text: summaryText(value) }), list);
  details.open = depth < OPEN_DEPTH && entries.length <= OPEN_ENTRIES;
  return details;
}

/** The data cell's content: a tree, or the text in a <pre>. */
export function renderData(data, raw) {
  const structured = raw ? undefined : parseStructured(data);
  if (structured === undefined) {
    return h('pre', { class: 'raw-data', text: data === '' ? '(empty)' : data });
  }
  return h('div', { class: 'json-tree' }, node(structured, 0));
}

/** Pretty-prints the text if it is JSON (for the publish form's Format button); returns it unchanged if not. */
export function prettyText(data) {
  try {
    return JSON.stringify(JSON.parse(data), null, 2);
  } catch {
    return data;
  }
}
