// The Exar Console: entry point. Wires the views to the URL state, the poller
// and the message log; owns the tabs (role=tablist, arrow keys, Home, End).
//
// Stable hooks for browser tests (id and data-testid are the same unless noted):
//   tab-overview, tab-browse, tab-live, tab-publish, tab-segments, tab-groups   the tabs (role=tab)
//   collection-name, collection-open      the collection name field and its Open button
//   collection-row (data-name)            a row of the overview's collections table (data-testid only)
//   collection-link (data-name)           a collection in the sidebar (data-testid only)
//   current-collection, drop-button, drop-dialog, drop-confirm, drop-cancel
//   server-line, banner, server-figures   server summary, error banner, overview figures
//   browse-offset, browse-limit, browse-tag, browse-order, browse-load, browse-next, browse-prev,
//   browse-status, browse-raw, browse-rows
//   browse-jump-form, browse-jump-time, browse-jump-zone, browse-jump   jump to time (a datetime-local
//                                         field read in the UTC/local mode; the zone label beside it)
//   event-row (data-id)                   a row of the browser (data-testid only); inside it
//                                         event-copy, event-republish, event-raw-toggle (data-testid only)
//   export-ndjson, export-csv             links to the current query as an export
//   live-offset, live-tag, live-start, live-pause, live-stop, live-clear, live-rows,
//   live-pending, live-rate, live-count, live-state
//   live-row (data-id)                    a row of the live tail (data-testid only)
//   publish-tags, publish-data, publish-timestamp, publish-submit, publish-format,
//   publish-result (data-id once published), publish-id (data-testid only: the new id)
//   segments-table, segment-row (data-testid only), segments-refresh, verify-button,
//   verify-result (data-ok once verified)
//   groups-table, groups-refresh, groups-result, group-row (data-name), inside it group-lag,
//   group-members, group-parked, group-redeliver, group-discard, group-delete (data-testid only;
//   Delete asks again on the same button: "Confirm delete")
//   protocol-log, log-clear               the message log (an <ol>, one <li> per line)
//   time-utc                              the UTC/local toggle

import { byId } from './dom.js';
import { Store, VIEWS } from './state.js';
import { MessageLog } from './protocol.js';
import { Monitor } from './monitor.js';
import { formatBytes, formatUptime, plural } from './format.js';
import { refreshTimes } from './events.js';
import { OverviewView } from './overview.js';
import { BrowseView } from './browse.js';
import { LiveView } from './live.js';
import { PublishView } from './publish.js';
import { SegmentsView } from './segments.js';
import { GroupsView } from './groups.js';
import { Sidebar } from './sidebar.js';

const COLLECTION_VIEWS = new Set(['browse', 'live', 'publish', 'segments', 'groups']);

function createContext() {
  const store = new Store();
  const monitor = new Monitor();
  const banner = byId('banner');
  const ctx = {
    store,
    monitor,
    log: new MessageLog(byId('protocol-log')),
    utc: () => store.state.time === 'utc',
    showBanner(text) {
      banner.textContent = text;
      banner.hidden = false;
    },
    hideBanner() {
      banner.hidden = true;
    },
    /** Whether the collection exists, asking the server when the last poll did not list it (reads never create one). */
    async ensureKnown(name, { refresh = false } = {}) {
      if (!refresh && monitor.has(name)) return true;
      await monitor.refresh();
      return monitor.has(name);
    },
  };
  return ctx;
}

function setUpTabs(store) {
  const tabs = [...document.querySelectorAll('[role="tab"]')];
  const select = (tab) => store.update({ view: tab.dataset.view });
  for (const tab of tabs) {
    tab.addEventListener('click', () => select(tab));
    tab.addEventListener('keydown', (event) => {
      const index = tabs.indexOf(tab);
      const target = {
        ArrowRight: tabs[(index + 1) % tabs.length],
        ArrowLeft: tabs[(index - 1 + tabs.length) % tabs.length],
        Home: tabs[0],
        End: tabs[tabs.length - 1],
      }[event.key];
      if (!target) return;
      event.preventDefault();
      target.focus();
      select(target);
    });
  }
  return tabs;
}

function showTabs(tabs, view, hasCollection) {
  for (const tab of tabs) {
    const selected = tab.dataset.view === view;
    tab.setAttribute('aria-selected', String(selected));
    tab.tabIndex = selected ? 0 : -1;
    const panel = byId(tab.getAttribute('aria-controls'));
    panel.hidden = !selected || (COLLECTION_VIEWS.has(view) && !hasCollection);
  }
  byId('no-collection').hidden = !(COLLECTION_VIEWS.has(view) && !hasCollection);
}

function renderServerLine(ctx, monitor) {
  const lineElement = byId('server-line');
  if (monitor.error) {
    lineElement.textContent = 'Server unreachable';
    lineElement.classList.add('error');
    ctx.showBanner(`The server cannot be read (${monitor.error.describe()}); retrying every 2 s.`);
    return;
  }
  ctx.hideBanner();
  lineElement.classList.remove('error');
  const server = monitor.server;
  lineElement.textContent = `exar-db ${server.version} · up ${formatUptime(server.uptimeSeconds)} · ` +
    `${plural(server.collections, 'collection')} · ${formatBytes(server.dataBytes)} of data${server.authentication ? ' · authentication on' : ''}`;
}

function main() {
  const ctx = createContext();
  const { store, monitor } = ctx;
  const views = {
    overview: new OverviewView(ctx),
    browse: new BrowseView(ctx),
    live: new LiveView(ctx),
    publish: new PublishView(ctx),
    segments: new SegmentsView(ctx),
    groups: new GroupsView(ctx),
  };
  const sidebar = new Sidebar(ctx);
  const tabs = setUpTabs(store);

  ctx.republish = (event) => {
    views.publish.fill(event);
    store.update({ view: 'publish' });
    views.publish.focus();
  };
  ctx.published = () => monitor.refresh();
  ctx.dropped = (name) => {
    views.live.collectionChanged('');
    monitor.refresh();
    if (store.state.collection === name) store.update({ collection: '', view: 'overview', offset: 0, tag: '' });
  };

  const timeToggle = byId('time-utc');
  timeToggle.addEventListener('change', () => store.update({ time: timeToggle.checked ? 'utc' : 'local' }, { push: false }));
  byId('log-clear').addEventListener('click', () => ctx.log.clear());

  const render = (state, previous) => {
    timeToggle.checked = state.time === 'utc';
    const hasCollection = state.collection !== '';
    showTabs(tabs, state.view, hasCollection);
    sidebar.show(state);
    if (previous && previous.collection !== state.collection) views.live.collectionChanged(state.collection);
    if (previous && previous.time !== state.time) {
      refreshTimes(document, state.time === 'utc');
      for (const view of Object.values(views)) view.refreshTimes();
    }
    if (!COLLECTION_VIEWS.has(state.view) || hasCollection) views[state.view].show(state, previous);
    document.title = hasCollection ? `${state.collection} · ${state.view} · Exar Console` : 'Exar Console';
  };
  store.subscribe(render);

  monitor.subscribe(() => {
    renderServerLine(ctx, monitor);
    byId('server-figures').classList.toggle('stale', monitor.error !== null);
    sidebar.render(monitor);
    if (store.state.view === 'overview') views.overview.render(monitor);
  });
  if (!VIEWS.includes(store.state.view)) store.update({ view: 'overview' }, { push: false });
  render(store.state, null);
  monitor.start();
}

main();
