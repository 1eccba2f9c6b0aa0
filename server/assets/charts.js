// Charts as SVG, drawn from the server's summary (a few hundred numbers at most, however
// many events the range holds). Each chart is an image with a text alternative; the
// numbers behind every bar are in its <title> (hover, or read by screen readers).

import { h, s, fmtTime, num } from './dom.js';

const SERIES = [
  { key: 'high', label: 'High' },
  { key: 'medium', label: 'Medium' },
  { key: 'low', label: 'Low' },
];

function niceMax(v) {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function tickLabel(us, spanUs) {
  const t = fmtTime(us, false);
  // Within two days the hour says enough; beyond, the date.
  return spanUs <= 2 * 86400e6 ? t.slice(11) : t.slice(5, 10);
}

/**
 * Events per time bucket, stacked by severity (high at the bottom). `width` in pixels:
 * the caller redraws when its box changes size.
 */
export function severityOverTime(summary, width) {
  const H = 220;
  const m = { l: 52, r: 10, t: 10, b: 26 };
  const W = Math.max(260, width);
  const iw = W - m.l - m.r;
  const ih = H - m.t - m.b;
  const span = summary.to - summary.from;
  const bucket = summary.bucket_secs * 1e6;
  const max = niceMax(Math.max(0, ...summary.buckets.map((b) => b.total)));
  const x = (t) => m.l + ((t - summary.from) / span) * iw;
  const y = (v) => m.t + ih - (v / max) * ih;
  const bw = Math.max(1, (bucket / span) * iw - (bucket / span * iw > 4 ? 1 : 0));
  const svg = s('svg', {
    class: 'chart', width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: 'img',
    'aria-label': `Events over time by severity: ${num(summary.total)} events in ${summary.buckets.length} buckets of ${summary.bucket_secs / 60} min`,
    'data-chart': 'severity-over-time',
  });
  for (const f of [0, 0.5, 1]) {
    const v = max * f;
    svg.append(
      s('line', { class: 'grid', x1: m.l, x2: W - m.r, y1: y(v), y2: y(v) }),
      s('text', { class: 'axis', x: m.l - 6, y: y(v) + 4, 'text-anchor': 'end' }, Number.isInteger(v) ? num(v) : v.toFixed(1)));
  }
  const ticks = Math.max(2, Math.min(8, Math.floor(iw / 90)));
  for (let i = 0; i <= ticks; i++) {
    const t = summary.from + (span * i) / ticks;
    const anchor = i === 0 ? 'start' : i === ticks ? 'end' : 'middle';
    svg.append(s('text', { class: 'axis', x: x(t), y: H - 8, 'text-anchor': anchor }, tickLabel(t, span)));
  }
  const bars = s('g', { class: 'bars' });
  for (const b of summary.buckets) {
    const g = s('g', { class: 'bucket' });
    let base = 0;
    for (const ser of SERIES) {
      const v = b.severity[ser.key];
      if (!v) continue;
      g.append(s('rect', { class: `fill-${ser.key}`, x: x(b.time), y: y(base + v), width: bw, height: Math.max(0.5, y(base) - y(base + v)) }));
      base += v;
    }
    g.append(s('title', {}, `${fmtTime(b.time, false)}: ${num(b.total)} events (${SERIES.map((x2) => `${num(b.severity[x2.key])} ${x2.key}`).join(', ')})`));
    bars.append(g);
  }
  svg.append(bars, s('line', { class: 'baseline', x1: m.l, x2: W - m.r, y1: y(0), y2: y(0) }));
  return svg;
}

export function severityLegend() {
  return h('ul', { class: 'legend', 'aria-label': 'Legend' },
    SERIES.map((ser) => h('li', {}, s('svg', { width: 12, height: 12, 'aria-hidden': 'true' },
      s('rect', { class: `fill-${ser.key}`, width: 12, height: 12, rx: 2 })), ser.label)));
}

/**
 * A ranked list with a bar per entry: [{label, count, href?}]. The bars share one scale
 * (the first, largest entry).
 */
export function barList(items, { name, empty = 'Nothing in this range.', cls = '' } = {}) {
  if (!items.length) return h('p', { class: 'muted' }, empty);
  const max = Math.max(...items.map((i) => i.count));
  return h('table', { class: `barlist ${cls}`, 'data-chart': name },
    h('tbody', {}, items.map((i) => h('tr', {},
      h('th', { scope: 'row' }, i.href ? h('a', { href: i.href, title: i.label }, i.label) : h('span', { title: i.label }, i.label)),
      h('td', { class: 'bar-cell' }, s('svg', { class: 'bar', viewBox: '0 0 100 10', preserveAspectRatio: 'none', 'aria-hidden': 'true' },
        s('rect', { class: i.cls ?? 'fill-bar', width: Math.max(0.5, (i.count / max) * 100), height: 10, rx: 0 }))),
      h('td', { class: 'num' }, num(i.count))))));
}
