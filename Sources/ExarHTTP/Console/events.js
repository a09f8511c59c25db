// One event as a table row, shared by the browser and the live tail: id, time
// (UTC or local), tags, data (JSON tree or raw, with a per-row toggle), and
// the Copy and Re-publish actions.

import { h, iconButton, copyText, flashLabel } from './dom.js';
import { formatTimestamp } from './format.js';
import { renderData, parseStructured } from './jsonview.js';

/** The text an event is copied as: its JSON object, as the API and NDJSON export spell it. */
export function eventText(event) {
  return JSON.stringify({ id: event.id, timestamp: event.timestamp, tags: event.tags, data: event.data });
}

function timeCell(event, utc) {
  const time = h('time', {
    class: 'event-time', dataset: { ms: event.timestamp },
    datetime: new Date(event.timestamp).toISOString(),
    title: `${formatTimestamp(event.timestamp, !utc)} (${event.timestamp} ms)`,
    text: formatTimestamp(event.timestamp, utc),
  });
  return h('td', { class: 'time' }, time);
}

/** Re-renders every event time on the page after the UTC/local toggle changed. */
export function refreshTimes(root, utc) {
  for (const time of root.querySelectorAll('time.event-time')) {
    const ms = Number(time.dataset.ms);
    time.textContent = formatTimestamp(ms, utc);
    time.title = `${formatTimestamp(ms, !utc)} (${ms} ms)`;
  }
}

function dataCell(event, raw) {
  const cell = h('td', { class: 'data' });
  const structured = parseStructured(event.data) !== undefined;
  let showingRaw = raw || !structured;
  const render = () => cell.querySelector('.data-view')?.replaceWith(h('div', { class: 'data-view' }, renderData(event.data, showingRaw)));
  cell.append(h('div', { class: 'data-view' }, renderData(event.data, showingRaw)));
  if (structured) {
    const toggle = h('button', { type: 'button', class: 'small link', 'aria-pressed': String(showingRaw), dataset: { testid: 'event-raw-toggle' } },
      showingRaw ? 'Pretty' : 'Raw');
    toggle.addEventListener('click', () => {
      showingRaw = !showingRaw;
      toggle.textContent = showingRaw ? 'Pretty' : 'Raw';
      toggle.setAttribute('aria-pressed', String(showingRaw));
      render();
    });
    cell.prepend(toggle);
  }
  return cell;
}

function actionsCell(event, onRepublish) {
  const copy = iconButton('copy', 'Copy', { dataset: { testid: 'event-copy' }, 'aria-label': `Copy event ${event.id}` });
  copy.addEventListener('click', async () => {
    const copied = await copyText(eventText(event));
    flashLabel(copy, copied ? 'Copied' : 'Copy failed');
  });
  const republish = iconButton('republish', 'Re-publish', { dataset: { testid: 'event-republish' }, 'aria-label': `Re-publish event ${event.id}` });
  republish.addEventListener('click', () => onRepublish(event));
  return h('td', { class: 'actions' }, copy, republish);
}

/** A row: <tr data-testid=event-row|live-row data-id=…>. */
export function eventRow(event, { testid, utc, raw, onRepublish }) {
  return h('tr', { dataset: { testid, id: event.id } },
    h('td', { class: 'num id', 'data-label': 'Id', text: event.id }),
    timeCell(event, utc),
    h('td', { class: 'tags' }, event.tags.map((tag) => h('span', { class: 'tag', text: tag }))),
    dataCell(event, raw),
    actionsCell(event, onRepublish));
}
