// The publish form: tags (space-separated, validated by the server exactly as
// the protocol does), data and an optional timestamp; shows the new id or the
// server's error. Re-publish in the browser or live tail fills it.

import { byId, h, clear } from './dom.js';
import { api } from './api.js';
import { line } from './protocol.js';
import { parseTimestampInput } from './format.js';
import { prettyText } from './jsonview.js';
import { formatHash } from './state.js';

export class PublishView {
  constructor(ctx) {
    this.ctx = ctx;
    this.form = byId('publish-form');
    this.tags = byId('publish-tags');
    this.data = byId('publish-data');
    this.timestamp = byId('publish-timestamp');
    this.submitButton = byId('publish-submit');
    this.result = byId('publish-result');
    this.form.addEventListener('submit', (event) => { event.preventDefault(); this.submit(); });
    byId('publish-format').addEventListener('click', () => { this.data.value = prettyText(this.data.value); });
  }

  show() {}
  refreshTimes() {}

  /** Fills the form from an event (the Re-publish action); the timestamp is left for the server. */
  fill(event) {
    this.tags.value = event.tags.join(' ');
    this.data.value = event.data;
    this.timestamp.value = '';
    this.showResult(`Filled from event ${event.id}; press Publish to store it again as a new event.`, 'info');
  }

  focus() {
    this.tags.focus();
  }

  async submit() {
    const name = this.ctx.store.state.collection;
    if (!name) {
      this.showResult('Choose a collection first.', 'error');
      return;
    }
    const timestamp = parseTimestampInput(this.timestamp.value);
    if (timestamp.error) {
      this.showResult(timestamp.error, 'error');
      this.timestamp.focus();
      return;
    }
    const event = { tags: this.tags.value, data: this.data.value };
    if (timestamp.value !== 0) event.timestamp = timestamp.value;
    const { log } = this.ctx;
    const request = line.publish(event.tags, timestamp.value, event.data);
    log.http('POST', `…/${name}/events`);
    if (event.data.includes('\n')) log.note('the data has newlines, which a protocol line cannot carry; the HTTP API stores them');
    this.submitButton.disabled = true;
    try {
      const answer = await api.publish(name, event);
      log.sent(line.connect(name));
      log.received(line.connected());
      log.sent(request);
      log.received(line.published(answer.id));
      this.showPublished(name, answer.id);
      this.ctx.published(name);
    } catch (error) {
      log.failed(name, request, error);
      this.showResult(`Refused: ${error.describe()}`, 'error');
    } finally {
      this.submitButton.disabled = false;
    }
  }

  showPublished(name, id) {
    clear(this.result);
    this.result.className = 'result ok';
    const link = h('a', { href: formatHash({ ...this.ctx.store.state, view: 'browse', collection: name, offset: id - 1, order: 'asc', tag: '' }), text: 'show it' });
    this.result.append('Published with id ', h('strong', { dataset: { testid: 'publish-id' }, text: id }), ' (', link, ')');
    this.result.dataset.id = String(id);
  }

  showResult(text, kind) {
    clear(this.result);
    this.result.className = `result ${kind}`;
    delete this.result.dataset.id;
    this.result.textContent = text;
  }
}
