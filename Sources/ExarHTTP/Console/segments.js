// The segments tab: the collection's segment files as exar-inspect lists them,
// and a read-only Verify of checksums, id continuity, index and tag files.

import { byId, h, clear } from './dom.js';
import { api } from './api.js';
import { formatBytes, formatNumber, formatTimestamp, plural } from './format.js';

function timeRange(segment, utc) {
  if (!segment.firstTimestamp) return '–';
  return [formatTimestamp(segment.firstTimestamp, utc), h('br'), formatTimestamp(segment.lastTimestamp, utc)];
}

export class SegmentsView {
  constructor(ctx) {
    this.ctx = ctx;
    this.rows = byId('segments-rows');
    this.verifyButton = byId('verify-button');
    this.result = byId('verify-result');
    this.segments = [];
    this.collection = null;
    byId('segments-refresh').addEventListener('click', () => this.load());
    this.verifyButton.addEventListener('click', () => this.verify());
  }

  show(state) {
    if (state.collection !== this.collection) {
      this.result.textContent = '';
      this.result.className = 'result';
    }
    this.collection = state.collection;
    this.load();
  }

  refreshTimes() { this.render(); }

  async load() {
    const name = this.ctx.store.state.collection;
    if (!name) return;
    if (!(await this.ctx.ensureKnown(name))) {
      this.segments = [];
      this.render(`${name} does not exist yet.`);
      return;
    }
    this.ctx.log.http('GET', `…/${name}/segments`);
    try {
      this.segments = await api.segments(name);
      this.render();
    } catch (error) {
      this.segments = [];
      this.render(`Could not list the segments: ${error.describe()}`);
    }
  }

  render(message) {
    clear(this.rows);
    if (message || this.segments.length === 0) {
      this.rows.append(h('tr', { class: 'empty-row' }, h('td', { colspan: 9, text: message ?? 'No segments.' })));
      return;
    }
    const utc = this.ctx.utc();
    for (const segment of this.segments) {
      this.rows.append(h('tr', { dataset: { testid: 'segment-row', file: segment.file }, class: segment.problem ? 'problem' : '' },
        h('td', { class: 'mono', text: segment.file }),
        h('td', { text: segment.state }),
        h('td', { class: 'num', text: formatNumber(segment.events) }),
        h('td', { class: 'num', text: segment.events ? `${formatNumber(segment.firstId)}–${formatNumber(segment.lastId)}` : '–' }),
        h('td', { class: 'time' }, timeRange(segment, utc)),
        h('td', { class: 'num', text: `${formatBytes(segment.bytesUsed)} of ${formatBytes(segment.fileSize)}` }),
        h('td', { class: 'num', text: formatNumber(segment.batches) }),
        h('td', { class: 'num', text: typeof segment.lz4Ratio === 'number' ? segment.lz4Ratio.toFixed(2) : '–' }),
        h('td', { text: segment.problem ?? '' })));
    }
  }

  async verify() {
    const name = this.ctx.store.state.collection;
    if (!name) return;
    this.verifyButton.disabled = true;
    this.result.className = 'result';
    this.result.textContent = 'Verifying…';
    this.ctx.log.http('POST', `…/${name}/verify`);
    this.ctx.log.note('Verify has no protocol equivalent: it is what exar-inspect verify checks');
    try {
      const answer = await api.verify(name);
      this.showVerdict(answer);
    } catch (error) {
      this.result.className = 'result error';
      this.result.textContent = `Could not verify: ${error.describe()}`;
    } finally {
      this.verifyButton.disabled = false;
    }
  }

  showVerdict(answer) {
    this.result.className = `result ${answer.ok ? 'ok' : 'error'}`;
    this.result.dataset.ok = String(answer.ok);
    if (answer.ok) {
      this.result.textContent = answer.message ? `OK: ${answer.message}` : `OK: ${plural(answer.segments, 'segment')}, ${plural(answer.events, 'event')}`;
    } else {
      const where = answer.file ? ` in ${answer.file}${answer.position !== undefined ? ` at byte ${answer.position}` : ''}` : '';
      this.result.textContent = `Problem${where}: ${answer.message ?? 'unknown'}`;
    }
  }
}
