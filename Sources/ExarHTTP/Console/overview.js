// The overview: the server's figures with small charts, and the table of
// collections with each one's publish rate. Rows are updated in place so that
// keyboard focus on a row's link survives the two-second refresh.

import { byId, h, s, clear } from './dom.js';
import { sparkline } from './charts.js';
import { formatBytes, formatLatency, formatNumber, formatRate, formatUptime } from './format.js';
import { formatHash } from './state.js';

const ratePerSecond = (value) => `${formatRate(value)}/s`;
const milliseconds = (value) => formatLatency(value / 1000);

export class OverviewView {
  constructor(ctx) {
    this.ctx = ctx;
    this.figures = byId('server-figures');
    this.body = byId('collections-body');
    this.rows = new Map();
  }

  show() { this.render(this.ctx.monitor); }
  refreshTimes() {}

  render(monitor) {
    if (monitor.server) this.renderFigures(monitor);
    this.renderTable(monitor);
  }

  renderFigures(monitor) {
    const { server, serverSeries } = monitor;
    const publish = server.publish ?? {};
    clear(this.figures);
    this.figures.append(
      figure('Publish rate', ratePerSecond(serverSeries.rate.latest ?? 0), sparkline(serverSeries.rate, { label: 'Publish rate', format: ratePerSecond }), 'figure-rate'),
      figure('Publish latency p50', formatLatency(publish.p50Seconds), sparkline(serverSeries.p50, { label: 'p50 latency', format: milliseconds }), 'figure-p50'),
      figure('Publish latency p99', formatLatency(publish.p99Seconds), sparkline(serverSeries.p99, { label: 'p99 latency', format: milliseconds }), 'figure-p99'),
      figure('Connections', formatNumber(server.connections), sparkline(serverSeries.connections, { label: 'Connections', format: formatNumber }), 'figure-connections',
        `${formatNumber(server.connectionsOpened)} opened since the start`),
      figure('Subscriptions', formatNumber(server.subscriptions), sparkline(serverSeries.subscriptions, { label: 'Subscriptions', format: formatNumber }), 'figure-subscriptions'),
      figure('Disk free', formatBytes(server.diskFreeBytes), diskBar(server.dataBytes, server.diskFreeBytes), 'figure-disk',
        `data takes ${formatBytes(server.dataBytes)}`),
      figure('Events', formatNumber(server.eventsAppended), null, 'figure-events',
        `appended since the start; ${formatNumber(server.eventsDelivered)} delivered; up ${formatUptime(server.uptimeSeconds)}`),
    );
  }

  renderTable(monitor) {
    const names = new Set(monitor.collections.map((collection) => collection.name));
    for (const [name, row] of this.rows) {
      if (!names.has(name)) {
        row.remove();
        this.rows.delete(name);
      }
    }
    monitor.collections.forEach((collection, index) => {
      let row = this.rows.get(collection.name);
      if (!row) {
        row = this.createRow(collection.name);
        this.rows.set(collection.name, row);
      }
      if (this.body.children[index] !== row) this.body.insertBefore(row, this.body.children[index] ?? null);
      this.updateRow(row, collection, monitor);
    });
    const empty = this.body.querySelector('.empty-row');
    if (monitor.collections.length === 0 && !empty) {
      this.body.append(h('tr', { class: 'empty-row' }, h('td', { colspan: 8, text: monitor.error ? 'The server cannot be reached.' : 'No collections yet.' })));
    } else if (monitor.collections.length > 0 && empty) {
      empty.remove();
    }
  }

  createRow(name) {
    const link = h('a', { href: formatHash({ view: 'browse', collection: name, time: this.ctx.store.state.time }), text: name });
    const cells = ['events', 'firstId', 'lastId', 'bytes', 'segments', 'subscriptions']
      .map((key) => h('td', { class: 'num', dataset: { key } }));
    const row = h('tr', { class: 'clickable', dataset: { testid: 'collection-row', name } },
      h('th', { scope: 'row', class: 'name' }, link), cells, h('td', { class: 'rate' }));
    // The whole row opens the collection for a mouse; the link is the keyboard's way.
    row.addEventListener('click', (event) => {
      if (event.target.closest('a')) return;
      this.ctx.store.update({ view: 'browse', collection: name, offset: 0, tag: '' });
    });
    return row;
  }

  updateRow(row, collection, monitor) {
    const values = {
      events: formatNumber(collection.events), firstId: formatNumber(collection.firstId), lastId: formatNumber(collection.lastId),
      bytes: formatBytes(collection.bytes), segments: formatNumber(collection.segments), subscriptions: formatNumber(collection.subscriptions),
    };
    for (const cell of row.querySelectorAll('td[data-key]')) cell.textContent = values[cell.dataset.key];
    row.classList.toggle('current', collection.name === this.ctx.store.state.collection);
    const series = monitor.collectionSeries.get(collection.name);
    const rateCell = row.querySelector('td.rate');
    const current = monitor.collectionRates.get(collection.name) ?? 0;
    rateCell.replaceChildren(
      series ? sparkline(series, { label: `${collection.name} publish rate`, format: ratePerSecond, width: 100, height: 20 }) : '',
      h('span', { class: 'rate-value', text: ratePerSecond(current) }));
  }
}

function figure(title, value, chart, testid, detail) {
  return h('div', { class: 'figure', dataset: { testid } },
    h('h3', { text: title }),
    h('p', { class: 'value', text: value }),
    chart,
    detail ? h('p', { class: 'detail', text: detail }) : null);
}

/** A bar of the data folder's size against the disk's free space. */
function diskBar(used, free) {
  const width = 120;
  const total = (used ?? 0) + (free ?? 0);
  const usedWidth = total > 0 ? Math.max(1, Math.round((used / total) * width)) : 0;
  return s('svg', { class: 'disk-bar', width, height: 12, viewBox: `0 0 ${width} 12`, role: 'img',
    'aria-label': `data ${formatBytes(used)}, free ${formatBytes(free)}` },
    s('rect', { class: 'free', x: 0, y: 0, width, height: 12, rx: 3 }),
    s('rect', { class: 'used', x: 0, y: 0, width: usedWidth, height: 12, rx: 3 }));
}
