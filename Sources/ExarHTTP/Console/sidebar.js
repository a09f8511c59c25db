// The collection chooser (a name field with the known names as suggestions and
// a list of links), the bar naming the current collection, and Drop with its
// confirm dialog.

import { byId, h } from './dom.js';
import { api } from './api.js';
import { line } from './protocol.js';
import { formatBytes, formatNumber, plural } from './format.js';
import { formatHash } from './state.js';

/** The protocol's name rules (PROTOCOL.md), checked before a request is made; null when the name is valid. */
export function nameProblem(name) {
  if (name.length === 0) return 'a name is required';
  if (new TextEncoder().encode(name).length > 200) return 'at most 200 bytes';
  if (name === '.' || name === '..') return 'not . or ..';
  if (name.includes('/')) return 'no / in a name';
  if (/[\u0000-\u001f\u007f]/.test(name)) return 'no control characters';
  if (name.startsWith('.exar-dropped-')) return 'a name must not start with .exar-dropped-';
  return null;
}

export class Sidebar {
  constructor(ctx) {
    this.ctx = ctx;
    this.form = byId('collection-form');
    this.input = byId('collection-name');
    this.datalist = byId('collection-names');
    this.nav = byId('collection-nav');
    this.bar = byId('collection-bar');
    this.title = byId('current-collection');
    this.summary = byId('current-summary');
    this.dialog = byId('drop-dialog');
    this.form.addEventListener('submit', (event) => { event.preventDefault(); this.open(); });
    this.input.addEventListener('input', () => this.input.setCustomValidity(''));
    byId('drop-button').addEventListener('click', () => this.confirmDrop());
    this.dialog.addEventListener('close', () => {
      if (this.dialog.returnValue === 'drop') this.drop(this.dialog.dataset.name);
    });
  }

  open() {
    const name = this.input.value;
    const problem = nameProblem(name);
    if (problem) {
      this.input.setCustomValidity(`Invalid collection name: ${problem}`);
      this.input.reportValidity();
      return;
    }
    const view = this.ctx.store.state.view === 'overview' ? 'browse' : this.ctx.store.state.view;
    this.ctx.store.update({ collection: name, view, offset: 0, tag: '' });
  }

  /** The state changed: name the current collection. */
  show(state) {
    if (document.activeElement !== this.input) this.input.value = state.collection;
    this.bar.hidden = !state.collection;
    this.title.textContent = state.collection;
    this.render(this.ctx.monitor);
  }

  render(monitor) {
    const current = this.ctx.store.state.collection;
    const names = monitor.collections.map((collection) => collection.name);
    const key = JSON.stringify([names, current, this.ctx.store.state.view, this.ctx.store.state.time]);
    if (key !== this.navKey) {
      // Rebuilt only when the names or the current one changed, so focus on a link survives the refresh.
      this.navKey = key;
      this.datalist.replaceChildren(...names.map((name) => h('option', { value: name })));
      this.nav.replaceChildren(...names.map((name) => this.navItem(name, current)));
    }
    for (const collection of monitor.collections) {
      const count = this.nav.querySelector(`a[data-name="${CSS.escape(collection.name)}"] .count`);
      if (count) count.textContent = formatNumber(collection.events);
    }
    const info = monitor.get(current);
    if (!current) this.summary.textContent = '';
    else if (info) this.summary.textContent = `${plural(info.events, 'event')} · ids ${formatNumber(info.firstId)}–${formatNumber(info.lastId)} · ${formatBytes(info.bytes)} · ${plural(info.segments, 'segment')}`;
    else this.summary.textContent = 'not created yet: the first publish creates it';
  }

  navItem(name, current) {
    const state = this.ctx.store.state;
    const view = state.view === 'overview' ? 'browse' : state.view;
    return h('li', {}, h('a', {
      href: formatHash({ view, collection: name, time: state.time }),
      'aria-current': name === current ? 'page' : false,
      dataset: { name, testid: 'collection-link' },
    }, h('span', { class: 'name', text: name }), h('span', { class: 'count' })));
  }

  confirmDrop() {
    const name = this.ctx.store.state.collection;
    if (!name) return;
    byId('drop-name').textContent = name;
    this.dialog.dataset.name = name;
    this.dialog.returnValue = '';
    this.dialog.showModal();
  }

  async drop(name) {
    const { log } = this.ctx;
    log.http('DELETE', `…/collections/${name}`);
    try {
      await api.drop(name);
      log.sent(line.drop(name));
      log.received(line.dropped());
      this.ctx.dropped(name);
    } catch (error) {
      log.sent(line.drop(name));
      log.received(error.status === 0 ? `no answer: ${error.message}` : line.error(error));
      this.ctx.showBanner(`Could not drop ${name}: ${error.describe()}`);
    }
  }
}
