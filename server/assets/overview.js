// The overview: what happened in a time range, from one summary request (the server
// aggregates; the browser never loads the range's events). Live: new events appear in
// "Latest events" at once and the charts are refreshed (at most every LIVE_REFRESH_MS)
// while the range ends now.

import { get, qs } from './api.js';
import { h, clear, notice, num, rangeOf, rangePicker, severityBadge, timeEl, endpoint } from './dom.js';
import { severityOverTime, severityLegend, barList } from './charts.js';
import { navigate, onLive } from './app.js';

const TOP = 10;
const LATEST = 10;
const LIVE_REFRESH_MS = 5000;

function eventsLink(params, range) {
  const p = new URLSearchParams(params);
  if (range.preset) p.set('range', range.preset);
  else { p.set('from', range.from); p.set('to', range.to); }
  return `#/events?${p}`;
}

function latestRow(ev) {
  return h('li', { 'data-id': ev.id },
    severityBadge(ev.severity), ' ', timeEl(ev.time), ' ',
    h('a', { href: `#/event/${ev.id}` }, ev.trail), ' ',
    h('span', { class: 'muted' }, `${endpoint(ev.src, ev.src_port)} → ${endpoint(ev.dst, ev.dst_port)} · ${ev.sensor}`));
}

export async function render(main, params) {
  document.title = 'Overview · Spoor';
  const t0 = performance.now();
  const range = rangeOf(params);
  const head = h('div', { class: 'page-head' }, h('h1', {}, 'Overview'), rangePicker(params, (p) => navigate('/', p)));
  const body = h('div', { class: 'overview', 'aria-busy': 'true' });
  const latest = h('ol', { class: 'latest', id: 'latest', 'aria-live': 'polite' });
  main.append(head, body);

  let summary = null;
  let chartBox = null;
  const drawChart = () => {
    if (!chartBox || !summary) return;
    clear(chartBox).append(severityOverTime(summary, chartBox.clientWidth));
  };

  const draw = () => {
    const r = range.preset ? rangeOf(params) : range;
    const kinds = Object.entries(summary.kinds).sort((a, b) => b[1] - a[1])
      .map(([k, n]) => ({ label: k, count: n, href: eventsLink({ kind: k }, r) }));
    const tops = (list, key) => list.map((t) => ({ label: String(t.key), count: t.count, href: eventsLink({ [key]: t.key }, r) }));
    chartBox = h('div', { class: 'chart-box', id: 'chart-time' });
    clear(body).append(
      h('section', { class: 'cards', 'aria-label': 'Totals' },
        h('a', { class: 'card stat', href: eventsLink({}, r) }, h('span', { class: 'stat-label' }, 'Events'), h('span', { class: 'stat-value', id: 'total' }, num(summary.total))),
        ['high', 'medium', 'low'].map((sv) => h('a', { class: `card stat stat-${sv}`, href: eventsLink({ severity: sv }, r) },
          h('span', { class: 'stat-label' }, sv[0].toUpperCase() + sv.slice(1)), h('span', { class: 'stat-value' }, num(summary.severity[sv]))))),
      h('section', { class: 'card wide' }, h('h2', {}, 'Events over time'), chartBox, severityLegend()),
      h('section', { class: 'card' }, h('h2', {}, 'By kind'), barList(kinds, { name: 'kinds' })),
      h('section', { class: 'card' }, h('h2', {}, 'Top sources'), barList(tops(summary.top_sources, 'ip'), { name: 'top-sources' })),
      h('section', { class: 'card' }, h('h2', {}, 'Top destinations'), barList(tops(summary.top_destinations, 'ip'), { name: 'top-destinations' })),
      h('section', { class: 'card' }, h('h2', {}, 'Top trails'), barList(tops(summary.top_trails, 'trail'), { name: 'top-trails' })),
      h('section', { class: 'card' }, h('h2', {}, 'Top sensors'), barList(tops(summary.top_sensors, 'sensor'), { name: 'top-sensors' })),
      h('section', { class: 'card wide' }, h('h2', {}, 'Latest events'), latest));
    drawChart();
    body.setAttribute('aria-busy', 'false');
  };

  const load = async () => {
    const r = range.preset ? rangeOf(params) : range;
    summary = await get(`/summary${qs({ from: Math.floor(r.from), to: Math.ceil(r.to), top: TOP })}`);
    draw();
  };

  try {
    const [, page] = await Promise.all([
      load(),
      get(`/events${qs({ from: Math.floor(range.from), to: Math.ceil(range.to), limit: LATEST })}`),
    ]);
    for (const ev of page.events.map((e) => e.event)) latest.append(latestRow(ev));
    if (!page.events.length) latest.append(h('li', { class: 'muted empty' }, 'No events in this range.'));
  } catch (e) {
    clear(body).append(notice(`The summary could not be loaded: ${e.message}`, 'error'));
    return null;
  }
  // Read by the browser benchmark: time from navigation start to charts drawn.
  document.body.dataset.overviewMs = String(performance.now());
  document.body.dataset.overviewRenderMs = String(performance.now() - t0);

  let timer = null;
  let pending = false;
  const refresh = () => {
    if (timer) { pending = true; return; }
    load().catch(() => {});
    timer = setTimeout(() => { timer = null; if (pending) { pending = false; refresh(); } }, LIVE_REFRESH_MS);
  };
  const off = onLive((ev) => {
    if (!range.preset) return;
    if (ev) {
      latest.querySelector('.empty')?.remove();
      latest.prepend(latestRow(ev));
      while (latest.children.length > LATEST) latest.lastChild.remove();
    }
    refresh();
  });
  // Redraw when the chart's box changes width (window resized, a scrollbar appeared).
  let lastWidth = chartBox?.clientWidth;
  const observer = new ResizeObserver(() => {
    if (chartBox && chartBox.clientWidth !== lastWidth) { lastWidth = chartBox.clientWidth; drawChart(); }
  });
  observer.observe(body);
  return () => {
    off();
    clearTimeout(timer);
    observer.disconnect();
  };
}
