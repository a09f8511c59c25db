// Polls /api/v1/server and /api/v1/collections every two seconds and keeps
// rolling series for the charts: the server's publish rate, connections,
// subscriptions and latencies, and each collection's publish rate.

import { api } from './api.js';
import { Series } from './charts.js';

const INTERVAL_MS = 2000;
const SAMPLES = 60;

/** Events per second between two samples of a counter; a counter that went down (a restart or a drop) counts as 0. */
function rate(current, previous, seconds) {
  if (previous === undefined || seconds <= 0) return 0;
  const delta = current - previous;
  return delta > 0 ? delta / seconds : 0;
}

export class Monitor {
  constructor() {
    this.server = null;
    this.collections = [];
    this.error = null;
    this.listeners = [];
    this.serverSeries = {
      rate: new Series(SAMPLES), connections: new Series(SAMPLES), subscriptions: new Series(SAMPLES),
      p50: new Series(SAMPLES), p99: new Series(SAMPLES),
    };
    this.collectionSeries = new Map();
    this.collectionRates = new Map();
    this.previous = null;
    this.inFlight = null;
  }

  subscribe(listener) { this.listeners.push(listener); }

  start() {
    this.refresh();
    setInterval(() => { if (!document.hidden) this.refresh(); }, INTERVAL_MS);
  }

  has(name) { return this.collections.some((collection) => collection.name === name); }

  get(name) { return this.collections.find((collection) => collection.name === name) ?? null; }

  lastIdOf(name) { return this.get(name)?.lastId ?? null; }

  /** One poll; concurrent callers share it. */
  refresh() {
    if (!this.inFlight) this.inFlight = this.poll().finally(() => { this.inFlight = null; });
    return this.inFlight;
  }

  async poll() {
    const at = performance.now();
    try {
      const [server, collections] = await Promise.all([api.server(), api.collections()]);
      this.record(at, server, collections);
      this.error = null;
    } catch (error) {
      this.error = error;
    }
    for (const listener of this.listeners) listener(this);
  }

  record(at, server, collections) {
    const previous = this.previous;
    const seconds = previous ? (at - previous.at) / 1000 : 0;
    if (previous) {
      this.serverSeries.rate.push(rate(server.eventsAppended, previous.server.eventsAppended, seconds));
    }
    this.serverSeries.connections.push(server.connections);
    this.serverSeries.subscriptions.push(server.subscriptions);
    this.serverSeries.p50.push((server.publish?.p50Seconds ?? 0) * 1000);
    this.serverSeries.p99.push((server.publish?.p99Seconds ?? 0) * 1000);

    const counters = new Map();
    for (const collection of collections) {
      const counter = collection.eventsAppended ?? collection.lastId;
      counters.set(collection.name, counter);
      let series = this.collectionSeries.get(collection.name);
      if (!series) {
        series = new Series(SAMPLES);
        this.collectionSeries.set(collection.name, series);
      }
      if (previous && previous.counters.has(collection.name)) {
        const value = rate(counter, previous.counters.get(collection.name), seconds);
        series.push(value);
        this.collectionRates.set(collection.name, value);
      }
    }
    for (const name of [...this.collectionSeries.keys()]) {
      if (!counters.has(name)) {
        this.collectionSeries.delete(name);
        this.collectionRates.delete(name);
      }
    }
    this.server = server;
    this.collections = collections;
    this.previous = { at, server, counters };
  }
}
