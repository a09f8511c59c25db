// The publish form: tags (space-separated, validated by the server exactly as
// the protocol does), data, an optional timestamp and an optional expectation
// (a tag and the id of its last event: the HTTP side of PublishIf); shows the
// new id, a conflict with the tag's actual last id, or the server's error.
// Re-publish in the browser or live tail fills it.

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
    this.expectTag = byId('publish-expect-tag');
    this.expectId = byId('publish-expect-id');
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
    this.expectTag.value = '';
    this.expectId.value = '';
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
    const expectTag = this.expectTag.value;
    if (expectTag !== '') {
      const text = this.expectId.value.trim() || '0';
      if (!/^[0-9]+$/.test(text)) {
        this.showResult('The expected id must be a whole number: the id of the tag\'s last event, 0 when no event carries it yet.', 'error');
        this.expectId.focus();
        return;
      }
      event.expect = { tag: expectTag, id: Number(text) };
    }
    const { log } = this.ctx;
    const request = event.expect
      ? line.publishIf(expectTag, event.expect.id, event.tags, timestamp.value, event.data)
      : line.publish(event.tags, timestamp.value, event.data);
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
      if (error.kind === 'ConflictError' && error.details?.actualId !== undefined) {
        this.showConflict(expectTag, event.expect.id, error.details.actualId);
      } else {
        this.showResult(`Refused: ${error.describe()}`, 'error');
      }
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

  /** Nothing was stored: the tag moved on. Offers to expect the id it has now. */
  showConflict(tag, expected, actual) {
    clear(this.result);
    this.result.className = 'result error';
    delete this.result.dataset.id;
    this.result.dataset.actualId = String(actual);
    const retry = h('button', { type: 'button', dataset: { testid: 'publish-expect-actual' }, text: `Expect ${actual}` });
    retry.addEventListener('click', () => { this.expectId.value = String(actual); this.expectId.focus(); });
    const last = actual === 0 ? 'no event carries it' : `its last event is ${actual}`;
    this.result.append(`Conflict, nothing stored: you expected ${tag} at ${expected}, but ${last}. `, retry);
  }

  showResult(text, kind) {
    delete this.result.dataset.actualId;
    clear(this.result);
    this.result.className = `result ${kind}`;
    delete this.result.dataset.id;
    this.result.textContent = text;
  }
}
