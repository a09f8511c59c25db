// The event browser: one page of a collection by offset and limit, oldest or
// newest first, optionally one tag; paging follows the server's `next`, and
// Previous asks the server for the page before (so it works after a reload).
// Jump to time turns a date and time into the offset a `Locate` answers (the
// first event at or after it, over the running maximum of timestamps) and reads
// oldest first from there; the URL keeps the offset, so the link still works.

import { byId, h, clear } from './dom.js';
import { api, exportUrl, queryString } from './api.js';
import { line } from './protocol.js';
import { eventRow } from './events.js';
import { dateTimeLocalValue, formatNumber, formatTimestamp, parseDateTimeLocal, zoneLabel } from './format.js';

const QUERY_KEYS = ['collection', 'offset', 'limit', 'tag', 'order'];

export class BrowseView {
  constructor(ctx) {
    this.ctx = ctx;
    this.form = byId('browse-form');
    this.offset = byId('browse-offset');
    this.limit = byId('browse-limit');
    this.tag = byId('browse-tag');
    this.order = byId('browse-order');
    this.prev = byId('browse-prev');
    this.next = byId('browse-next');
    this.raw = byId('browse-raw');
    this.rows = byId('browse-rows');
    this.status = byId('browse-status');
    this.jumpForm = byId('browse-jump-form');
    this.jumpTime = byId('browse-jump-time');
    this.jumpZone = byId('browse-jump-zone');
    /** The instant in the jump field (kept so that the UTC/local toggle re-expresses the same time). */
    this.jumpInstant = null;
    /** The last jump: {collection, offset, since}, named in the status while its page is shown. */
    this.jumped = null;
    this.page = null;
    this.loaded = null;
    this.generation = 0;
    this.form.addEventListener('submit', (event) => { event.preventDefault(); this.submit(); });
    this.order.addEventListener('change', () => this.ctx.store.update({ order: this.order.value, offset: 0 }));
    this.next.addEventListener('click', () => this.goNext());
    this.prev.addEventListener('click', () => this.goPrevious());
    this.raw.addEventListener('change', () => this.renderRows());
    for (const id of ['export-ndjson', 'export-csv']) byId(id).addEventListener('click', () => this.logExport());
    this.jumpForm.addEventListener('submit', (event) => { event.preventDefault(); this.jump(); });
    this.jumpTime.addEventListener('input', () => { this.jumpInstant = parseDateTimeLocal(this.jumpTime.value, this.ctx.utc()); });
    this.jumpZone.textContent = zoneLabel(this.ctx.utc());
  }

  /**
   * Jump to time: the offset of the first event at or after the field's time, as `Locate` answers
   * it (one event read by `since=`; past the last event, the last id), then that page oldest first.
   * The collection's last id is read first, so an empty answer cannot skip events published meanwhile.
   */
  async jump() {
    const state = this.ctx.store.state;
    const utc = this.ctx.utc();
    const since = parseDateTimeLocal(this.jumpTime.value, utc);
    if (since === null) {
      this.setStatus('Choose a date and time (at or after 1970) to jump to.', true);
      return;
    }
    this.jumpInstant = since;
    if (!(await this.ctx.ensureKnown(state.collection))) {
      this.setStatus(`${state.collection} has no events yet: publish one to create it.`);
      return;
    }
    const { log } = this.ctx;
    log.http('GET', `…/${state.collection}/events${queryString({ since, limit: 1 })}`);
    log.sent(line.connect(state.collection));
    log.received(line.connected());
    log.sent(line.locate(since));
    try {
      const collection = await api.collection(state.collection);
      const first = await api.events(state.collection, { since, limit: 1 });
      const offset = first.events.length > 0 ? first.events[0].id - 1 : collection.lastId;
      log.received(line.located(offset));
      this.jumped = { collection: state.collection, offset, since };
      const change = { offset, order: 'asc' };
      if (state.offset === offset && state.order === 'asc') this.load(state, { force: true });
      else this.ctx.store.update(change);
    } catch (error) {
      if (error.status === 0) log.note(`no answer: ${error.message}`);
      else log.received(line.error(error));
      this.setStatus(`Could not jump to ${formatTimestamp(since, utc)}: ${error.describe()}`, true);
    }
  }

  /** The jump this page came from, if it is still the page shown. */
  jumpShown(state) {
    const jump = this.jumped;
    return jump && jump.collection === state.collection && jump.offset === state.offset && state.order === 'asc' ? jump : null;
  }

  /** The form's values into the URL (which then loads the page). */
  submit() {
    const offset = Math.max(0, Number.parseInt(this.offset.value || '0', 10) || 0);
    const limit = Math.min(10000, Math.max(1, Number.parseInt(this.limit.value || '25', 10) || 25));
    const change = { offset, limit, tag: this.tag.value.trim(), order: this.order.value };
    const same = QUERY_KEYS.every((key) => key === 'collection' || String(this.ctx.store.state[key]) === String(change[key]));
    if (same) this.load(this.ctx.store.state, { force: true });
    else this.ctx.store.update(change);
  }

  /** Loads when the query changed, or afresh when the tab was just opened. */
  show(state, previous) {
    this.offset.value = state.offset;
    this.limit.value = state.limit;
    this.tag.value = state.tag;
    this.order.value = state.order;
    this.updateExports(state);
    this.load(state, { force: !previous || previous.view !== state.view });
  }

  refreshTimes() {
    const utc = this.ctx.utc();
    this.jumpZone.textContent = zoneLabel(utc);
    if (this.jumpInstant !== null) this.jumpTime.value = dateTimeLocalValue(this.jumpInstant, utc);
    this.renderRows();
    if (this.page) this.describePage(this.ctx.store.state, this.page);
  }

  queryOf(state) {
    return { offset: state.offset, limit: state.limit, tag: state.tag, order: state.order };
  }

  /** Points the export links at the query; without a collection to export they are disabled. */
  updateExports(state, available = true) {
    for (const format of ['ndjson', 'csv']) {
      const link = byId(`export-${format}`);
      if (!available) {
        link.removeAttribute('href');
        link.setAttribute('aria-disabled', 'true');
        continue;
      }
      link.removeAttribute('aria-disabled');
      link.href = exportUrl(state.collection, format, this.queryOf(state));
      link.setAttribute('download', `${state.collection}.${format === 'ndjson' ? 'ndjson' : 'csv'}`);
    }
  }

  async load(state, { force = false } = {}) {
    const key = JSON.stringify(QUERY_KEYS.map((name) => state[name]));
    if (!force && key === this.loaded) return;
    this.loaded = key;
    const generation = ++this.generation;
    this.setStatus('Loading…');
    if (!(await this.ctx.ensureKnown(state.collection))) {
      if (generation !== this.generation) return;
      this.page = { events: [], next: null };
      this.renderRows();
      this.updateButtons(state);
      this.updateExports(state, false);
      this.setStatus(`${state.collection} has no events yet: publish one to create it.`);
      return;
    }
    const query = this.queryOf(state);
    this.ctx.log.http('GET', `…/${state.collection}/events${queryString(query)}`);
    try {
      const page = await api.events(state.collection, query);
      if (generation !== this.generation) return;
      this.page = page;
      // The sidebar's and the bar's counts should agree with the page just read.
      this.ctx.monitor.refresh();
      this.updateExports(state);
      this.logExchange(state, page);
      this.renderRows();
      this.updateButtons(state);
      this.describePage(state, page);
    } catch (error) {
      if (generation !== this.generation) return;
      this.loaded = null;
      this.page = { events: [], next: null };
      this.renderRows();
      this.updateButtons(state);
      this.ctx.log.failed(state.collection, this.subscribeLine(state), error);
      this.setStatus(`Could not load events: ${error.describe()}`, true);
    }
  }

  /** The Subscribe a TCP client would send for this page; none for newest first, which the protocol cannot ask. */
  subscribeLine(state) {
    return state.order === 'desc' ? null : line.subscribe(false, state.offset, state.limit, state.tag);
  }

  logExchange(state, page) {
    const { log } = this.ctx;
    log.sent(line.connect(state.collection));
    log.received(line.connected());
    const request = this.subscribeLine(state);
    if (!request) {
      log.note('newest first has no protocol equivalent: a Subscribe reads oldest first');
      return;
    }
    log.sent(request);
    log.received(line.subscribed());
    const shown = page.events.slice(0, 3);
    for (const event of shown) log.received(line.event(event));
    if (page.events.length > shown.length) log.note(`… ${page.events.length - shown.length} more Event lines`);
    log.received(line.end());
  }

  logExport() {
    const state = this.ctx.store.state;
    this.ctx.log.sent(line.connect(state.collection));
    this.ctx.log.sent(line.subscribe(false, state.offset, 0, state.tag));
    this.ctx.log.note('an export has no limit: every event after the offset');
  }

  describePage(state, page) {
    const count = page.events.length;
    const jump = this.jumpShown(state);
    const from = jump ? `from ${formatTimestamp(jump.since, this.ctx.utc())} (offset ${formatNumber(jump.offset)})` : '';
    if (count === 0) {
      if (jump) this.setStatus(`No events at or after ${formatTimestamp(jump.since, this.ctx.utc())}.`);
      else this.setStatus(state.offset === 0 ? 'No events.' : 'No events past this offset.');
      return;
    }
    const ids = page.events.map((event) => event.id);
    const low = Math.min(...ids);
    const high = Math.max(...ids);
    const text = `${formatNumber(count)} events, ids ${formatNumber(low)}–${formatNumber(high)}${page.next === null ? ' (end)' : ''}`;
    this.setStatus(jump ? `${text}, ${from}` : text);
  }

  setStatus(text, isError = false) {
    this.status.textContent = text;
    this.status.classList.toggle('error', isError);
  }

  renderRows() {
    clear(this.rows);
    if (!this.page) return;
    const utc = this.ctx.utc();
    const options = { testid: 'event-row', utc, raw: this.raw.checked, onRepublish: (event) => this.ctx.republish(event) };
    const rows = this.page.events.map((event) => eventRow(event, options));
    if (rows.length === 0) rows.push(h('tr', { class: 'empty-row' }, h('td', { colspan: 5, text: 'No events to show.' })));
    this.rows.append(...rows);
  }

  updateButtons(state) {
    this.next.disabled = !this.page || this.page.next === null || this.page.next === undefined;
    this.prev.disabled = state.offset === 0;
  }

  goNext() {
    if (!this.page || this.page.next === null) return;
    this.ctx.store.update({ offset: this.page.next });
  }

  /**
   * The page before this one, in the same order. Oldest first (offset X): the limit events with ids
   * at most X, found newest first from X + 1; the new offset is one below the smallest.
   * Newest first (offset X): the limit events with ids from X on, found oldest first from X - 1; the
   * new offset is one above the largest, or 0 (the newest) when that page reached the end.
   */
  async goPrevious() {
    const state = this.ctx.store.state;
    if (state.offset === 0) return;
    const ascending = state.order === 'asc';
    const query = ascending
      ? { offset: state.offset + 1, limit: state.limit, tag: state.tag, order: 'desc' }
      : { offset: state.offset - 1, limit: state.limit, tag: state.tag, order: 'asc' };
    try {
      const page = await api.events(state.collection, query);
      const ids = page.events.map((event) => event.id);
      let offset = 0;
      if (ascending && ids.length === state.limit) offset = Math.min(...ids) - 1;
      if (!ascending && ids.length > 0 && page.next !== null) offset = Math.max(...ids) + 1;
      this.ctx.store.update({ offset });
    } catch (error) {
      this.setStatus(`Could not find the previous page: ${error.describe()}`, true);
    }
  }
}
