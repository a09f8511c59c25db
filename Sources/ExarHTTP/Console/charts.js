// Small SVG charts drawn by hand: a rolling series of samples and a sparkline
// (line with a filled area and its latest value) for it.

import { s } from './dom.js';

/** A fixed number of the latest samples of one figure. */
export class Series {
  constructor(capacity = 60) {
    this.capacity = capacity;
    this.values = [];
  }

  push(value) {
    this.values.push(Number.isFinite(value) ? value : 0);
    if (this.values.length > this.capacity) this.values.shift();
  }

  get latest() {
    return this.values.length ? this.values[this.values.length - 1] : null;
  }

  get max() {
    return this.values.reduce((a, b) => Math.max(a, b), 0);
  }
}

/** The x axis spans the samples so far, but at least this many, up to the series' capacity. */
const MIN_SLOTS = 20;

/** Points of a polyline for the values in a width × height box, the newest at the right edge. */
function points(values, capacity, width, height, top) {
  const slots = Math.min(capacity, Math.max(values.length, MIN_SLOTS));
  const step = width / Math.max(slots - 1, 1);
  const start = width - step * (values.length - 1);
  const inner = height - 2;
  return values.map((value, index) => {
    const x = start + index * step;
    const y = 1 + inner - (top > 0 ? (value / top) * inner : 0);
    return [Math.round(x * 10) / 10, Math.round(y * 10) / 10];
  });
}

/**
 * A sparkline of a series: an SVG with role=img whose label says what it shows
 * (label plus the latest and the highest value, formatted by format).
 */
export function sparkline(series, { width = 120, height = 28, label = '', format = String, className = '' } = {}) {
  const top = series.max;
  const svg = s('svg', {
    class: `sparkline ${className}`.trim(), width, height, viewBox: `0 0 ${width} ${height}`,
    role: 'img', preserveAspectRatio: 'none',
    'aria-label': `${label}: now ${format(series.latest ?? 0)}, highest ${format(top)}`,
  });
  svg.append(s('title', { text: `${label}: highest ${format(top)} in the last ${series.values.length} samples` }));
  svg.append(s('line', { class: 'baseline', x1: 0, y1: height - 1, x2: width, y2: height - 1 }));
  if (series.values.length < 2) return svg;
  const line = points(series.values, series.capacity, width, height, top);
  const path = line.map(([x, y], index) => `${index === 0 ? 'M' : 'L'}${x} ${y}`).join(' ');
  const first = line[0][0];
  const last = line[line.length - 1][0];
  svg.append(s('path', { class: 'area', d: `${path} L${last} ${height - 1} L${first} ${height - 1} Z` }));
  svg.append(s('path', { class: 'line', d: path }));
  const [x, y] = line[line.length - 1];
  svg.append(s('circle', { class: 'dot', cx: x, cy: y, r: 2 }));
  return svg;
}
