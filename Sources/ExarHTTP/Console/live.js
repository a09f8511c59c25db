// The live tail: an EventSource on the collection's /stream, newest on top,
// at most MAX_ROWS rows kept; Pause buffers what arrives (and counts it) until
// Resume. When the stream breaks it is reopened after the last id received, as
// long as the collection still exists (so a dropped collection ends the tail).

import { byId } from './dom.js';
import { sameOrigin, streamUrl } from './api.js';
import { line } from './protocol.js';
import { eventRow } from './events.js';
import { formatRate } from './format.js';

const MAX_ROWS = 1000;
const RATE_WINDOW_SECONDS = 5;
const LOGGED_EVENTS = 5;
const RETRY_MS = 1000;

export class LiveView {
  constructor(ctx) {
    this.ctx = ctx;
    this.form = byId('live-form');
    this.offsetInput = byId('live-offset');
    this.tagInput = byId('live-tag');
    this.startButton = byId('live-start');
    this.pauseButton = byId('live-pause');
    this.stopButton = byId('live-stop');
    this.rows = byId('live-rows');
    this.stateText = byId('live-state');
    this.rateText = byId('live-rate');
    this.pendingText = byId('live-pending');
    this.countText = byId('live-count');
    this.source = null;
    this.collection = '';
    this.tag = '';
    this.lastId = null;
    this.paused = false;
    this.pending = [];
    this.pendingCount = 0;
    this.queue = [];
    this.arrivals = 0;
    this.rateWindow = [];
    this.logged = 0;
    this.flushScheduled = false;
    this.form.addEventListener('submit', (event) => { event.preventDefault(); this.start(); });
    this.pauseButton.addEventListener('click', () => (this.paused ? this.resume() : this.pause()));
    this.stopButton.addEventListener('click', () => this.stop());
    byId('live-clear').addEventListener('click', () => this.clearRows());
    setInterval(() => this.updateRate(), 1000);
  }

  get running() { return this.source !== null || this.retryTimer !== undefined; }

  show(state) {
    if (this.running && state.collection !== this.collection) this.stop();
  }

  /** Called when the collection changes while another view is shown. */
  collectionChanged(name) {
    if (this.running && name !== this.collection) this.stop();
  }

  refreshTimes() {}

  async start() {
    const name = this.ctx.store.state.collection;
    if (!name) return;
    if (this.running) this.stop();
    if (!(await this.ctx.ensureKnown(name))) {
      this.setState(`${name} does not exist yet: publish an event to create it, then start.`, true);
      return;
    }
    const offsetText = this.offsetInput.value.trim();
    this.collection = name;
    this.tag = this.tagInput.value.trim();
    this.lastId = offsetText === '' ? null : Math.max(0, Number.parseInt(offsetText, 10) || 0);
    this.logged = 0;
    this.arrivals = 0;
    this.rateWindow = [];
    const shownOffset = this.lastId ?? this.ctx.monitor.lastIdOf(name);
    this.subscribeRequest = line.subscribe(true, shownOffset ?? 0, 0, this.tag);
    this.open();
    this.startButton.disabled = true;
    this.pauseButton.disabled = false;
    this.stopButton.disabled = false;
    this.setPaused(false);
  }

  open() {
    const url = streamUrl(this.collection, { offset: this.lastId ?? undefined, tag: this.tag });
    this.ctx.log.http('GET', url);
    const source = new EventSource(sameOrigin(url));
    this.source = source;
    source.addEventListener('open', () => {
      if (this.source !== source) return;
      this.setState(`Tailing ${this.collection}${this.tag ? ` (tag ${this.tag})` : ''}`);
      if (this.subscribeRequest) {
        this.ctx.log.sent(line.connect(this.collection));
        this.ctx.log.received(line.connected());
        this.ctx.log.sent(this.subscribeRequest);
        this.ctx.log.received(line.subscribed());
        this.subscribeRequest = null;
      } else {
        this.ctx.log.note(`the live tail reconnected${this.lastId === null ? '' : ` after id ${this.lastId}`}`);
      }
    });
    source.addEventListener('message', (message) => this.receive(source, message));
    source.addEventListener('error', () => this.broken(source));
  }

  receive(source, message) {
    if (this.source !== source) return;
    let event;
    try {
      event = JSON.parse(message.data);
    } catch {
      this.ctx.log.note(`a stream message that is not JSON was ignored: ${message.data.slice(0, 80)}`);
      return;
    }
    this.lastId = event.id;
    this.arrivals += 1;
    // Keep the collection's counts in the bar and sidebar up with the tail, at most once a second.
    if (!(performance.now() - this.countsRefreshed < 1000)) {
      this.countsRefreshed = performance.now();
      this.ctx.monitor.refresh();
    }
    if (this.logged < LOGGED_EVENTS) {
      this.ctx.log.received(line.event(event));
      this.logged += 1;
      if (this.logged === LOGGED_EVENTS) this.ctx.log.note('further Event lines of the live tail are not logged');
    }
    if (this.paused) {
      this.pending.push(event);
      if (this.pending.length > MAX_ROWS) this.pending.shift();
      this.pendingCount += 1;
      this.pendingText.textContent = String(this.pendingCount);
      return;
    }
    this.queue.push(event);
    // Between two frames only the newest MAX_ROWS can be shown anyway.
    if (this.queue.length > 2 * MAX_ROWS) this.queue.splice(0, this.queue.length - MAX_ROWS);
    this.scheduleFlush();
  }

  /** The stream failed or ended: close it (no automatic retry of a 404) and reopen after the last id if the collection is still there. */
  broken(source) {
    if (this.source !== source) return;
    source.close();
    this.source = null;
    this.setState('Stream interrupted, reconnecting…', true);
    this.retryTimer = setTimeout(async () => {
      this.retryTimer = undefined;
      if (!(await this.ctx.ensureKnown(this.collection, { refresh: true }))) {
        this.ctx.log.received(line.end());
        this.finish(`The stream ended: ${this.collection} no longer exists.`);
        return;
      }
      if (this.stopButton.disabled) return;
      this.open();
    }, RETRY_MS);
  }

  scheduleFlush() {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    requestAnimationFrame(() => {
      this.flushScheduled = false;
      this.prependRows(this.queue);
      this.queue = [];
    });
  }

  /** Adds events (oldest first) on top, newest first, and trims the table to MAX_ROWS. */
  prependRows(events) {
    if (events.length === 0) return;
    const utc = this.ctx.utc();
    const options = { testid: 'live-row', utc, raw: false, onRepublish: (event) => this.ctx.republish(event) };
    const fragment = document.createDocumentFragment();
    for (const event of events.slice(-MAX_ROWS).reverse()) fragment.append(eventRow(event, options));
    this.rows.prepend(fragment);
    while (this.rows.children.length > MAX_ROWS) this.rows.lastElementChild.remove();
    this.countText.textContent = String(this.rows.children.length);
  }

  pause() {
    this.setPaused(true);
  }

  resume() {
    this.setPaused(false);
    this.prependRows(this.pending);
    this.pending = [];
  }

  setPaused(paused) {
    this.paused = paused;
    this.pendingCount = 0;
    this.pendingText.textContent = '0';
    this.pauseButton.textContent = paused ? 'Resume' : 'Pause';
    this.pauseButton.setAttribute('aria-pressed', String(paused));
    if (this.running) this.setState(paused ? `Paused (${this.collection})` : `Tailing ${this.collection}`);
  }

  stop() {
    if (!this.running) return;
    this.ctx.log.sent(line.unsubscribe());
    this.ctx.log.received(line.end());
    this.finish('Stopped');
  }

  finish(text) {
    if (this.source) this.source.close();
    this.source = null;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    if (this.paused) this.resume();
    this.startButton.disabled = false;
    this.pauseButton.disabled = true;
    this.stopButton.disabled = true;
    this.setState(text, text !== 'Stopped');
  }

  clearRows() {
    this.rows.replaceChildren();
    this.pending = [];
    this.countText.textContent = '0';
  }

  /** Once a second: the events of the last RATE_WINDOW_SECONDS seconds, per second. */
  updateRate() {
    this.rateWindow.push(this.arrivals);
    this.arrivals = 0;
    if (this.rateWindow.length > RATE_WINDOW_SECONDS) this.rateWindow.shift();
    const total = this.rateWindow.reduce((sum, count) => sum + count, 0);
    this.rateText.textContent = formatRate(total / RATE_WINDOW_SECONDS);
  }

  setState(text, isError = false) {
    this.stateText.textContent = text;
    this.stateText.classList.toggle('error', isError);
  }
}
