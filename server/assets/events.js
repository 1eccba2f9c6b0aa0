// The events table: filters (kept in the URL, so a filtered view can be bookmarked or
// shared), keyset pages from the server in the chosen order (the server sorts everything
// that matches, newest first by default),
// export of everything matching, and triage per row. Live: the first page reloads when
// new events arrive, unless the user is working on the page (then a button offers the
// reload).

import { get, qs, canTriage } from './api.js';
import { h, clear, notice, num, rangeOf, rangePicker, severityBadge, statusBadge, timeEl, endpoint, KINDS, SEVERITIES } from './dom.js';
import { navigate, onLive } from './app.js';
import { falsePositive, hideTrail, statusSelect } from './triage.js';

const PAGE_SIZES = [50, 100, 500];
const LIVE_RELOAD_MS = 1000;
/** Filter parameters passed to the API as they are. */
const FILTERS = ['severity', 'kind', 'sensor', 'ip', 'trail', 'q', 'status'];

/** Columns; `sort` marks the ones the server can order by (its `sort` parameter). */
const COLUMNS = [
  { key: 'time', label: 'Time', sort: true, first: 'desc' },
  { key: 'severity', label: 'Severity', sort: true, first: 'desc' },
  { key: 'sensor', label: 'Sensor', sort: true, cls: 'opt' },
  { key: 'src', label: 'Source', sort: true },
  { key: 'dst', label: 'Destination', sort: true },
  { key: 'kind', label: 'Kind', sort: true, cls: 'opt' },
  { key: 'trail', label: 'Trail', sort: true },
  { key: 'info', label: 'Info', cls: 'opt' },
  { key: 'status', label: 'Status' },
];

/** The API query for the filters in `params` (the range resolved to µs). */
export function apiFilter(params) {
  const r = rangeOf(params);
  const q = { from: Math.floor(r.from), to: Math.ceil(r.to) };
  for (const k of FILTERS) if (params.get(k)) q[k] = params.get(k);
  if (params.get('include_suppressed')) { q.include_suppressed = 'true'; q.include_hidden = 'true'; }
  return q;
}

function filterForm(params) {
  const field = (id, label, input) => h('div', { class: 'field' }, h('label', { for: id }, label), input);
  const text = (name, label, attrs = {}) => field(`f-${name}`, label, h('input', { id: `f-${name}`, name, value: params.get(name) || '', ...attrs }));
  const sevs = (params.get('severity') || '').split(',').filter(Boolean);
  const form = h('form', { class: 'filters card', 'aria-label': 'Filters', id: 'filters' },
    h('fieldset', { class: 'field sevs' }, h('legend', {}, 'Severity'),
      SEVERITIES.map((sv) => h('label', { class: 'check' }, h('input', { type: 'checkbox', name: 'severity', value: sv, checked: sevs.includes(sv) }), sv))),
    field('f-kind', 'Kind', h('select', { id: 'f-kind', name: 'kind' }, h('option', { value: '' }, 'any'),
      KINDS.map((k) => h('option', { value: k, selected: params.get('kind') === k }, k)))),
    text('sensor', 'Sensor', { list: 'sensor-names', placeholder: 'name' }),
    text('ip', 'IP or CIDR', { placeholder: '10.0.0.0/8', spellcheck: 'false', inputmode: 'text' }),
    text('trail', 'Trail contains', { spellcheck: 'false' }),
    text('q', 'Text', { type: 'search', placeholder: 'name, URL, user agent, address…', title: 'Any text of the event: addresses, trail, feed, DNS, HTTP, TLS and heuristic details' }),
    field('f-status', 'Status', h('select', { id: 'f-status', name: 'status' }, h('option', { value: '' }, 'any'),
      ['new', 'investigating', 'resolved'].map((st) => h('option', { value: st, selected: params.get('status') === st }, st)))),
    h('label', { class: 'check field include' }, h('input', { type: 'checkbox', name: 'include_suppressed', value: 'true', checked: !!params.get('include_suppressed') }), 'Show suppressed and hidden'),
    h('div', { class: 'actions' },
      h('button', { type: 'submit', class: 'primary', id: 'apply-filters' }, 'Filter'),
      h('button', { type: 'button', id: 'reset-filters', onclick: () => {
        const p = new URLSearchParams();
        for (const k of ['range', 'from', 'to', 'limit']) if (params.get(k)) p.set(k, params.get(k));
        navigate('/events', p);
      } }, 'Reset')),
    h('datalist', { id: 'sensor-names' }));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const p = new URLSearchParams();
    for (const k of ['range', 'from', 'to', 'limit', 'sort', 'dir']) if (params.get(k)) p.set(k, params.get(k));
    const fd = new FormData(form);
    const chosen = fd.getAll('severity');
    if (chosen.length) p.set('severity', chosen.join(','));
    for (const k of ['kind', 'sensor', 'ip', 'trail', 'q', 'status', 'include_suppressed']) {
      const v = String(fd.get(k) || '').trim();
      if (v) p.set(k, v);
    }
    navigate('/events', p);
  });
  get('/sensors').then((list) => {
    const dl = form.querySelector('#sensor-names');
    for (const s of list) dl.append(h('option', { value: s.name }));
  }).catch(() => {});
  return form;
}

/** The order in the URL, as the API's `sort` and `dir` (defaults: newest first). */
function sortOf(params) {
  const col = COLUMNS.find((c) => c.sort && c.key === params.get('sort')) || COLUMNS[0];
  const dir = ['asc', 'desc'].includes(params.get('dir')) ? params.get('dir') : (col.first || 'asc');
  return { col, dir };
}

function headerCell(col, params) {
  if (!col.sort) return h('th', { scope: 'col', class: col.cls }, col.label);
  const cur = sortOf(params);
  const active = cur.col === col;
  const next = active ? (cur.dir === 'asc' ? 'desc' : 'asc') : (col.first || 'asc');
  const button = h('button', {
    type: 'button', class: 'sort',
    title: `Sort all matching events by ${col.label.toLowerCase()}`,
    onclick: () => {
      const p = new URLSearchParams(params);
      p.set('sort', col.key);
      p.set('dir', next);
      // A cursor belongs to one order: start again from the first page.
      p.delete('cursor'); p.delete('prev');
      navigate('/events', p);
    },
  }, col.label, active ? (cur.dir === 'asc' ? ' ▲' : ' ▼') : '');
  return h('th', { scope: 'col', class: col.cls, 'aria-sort': active ? (cur.dir === 'asc' ? 'ascending' : 'descending') : null }, button);
}

function row(hit, reload) {
  const e = hit.event;
  const cells = [
    h('td', {}, h('a', { href: `#/event/${e.id}`, class: 'event-link' }, timeEl(e.time))),
    h('td', {}, severityBadge(e.severity)),
    h('td', { class: 'opt' }, e.sensor),
    h('td', { class: 'addr' }, endpoint(e.src, e.src_port)),
    h('td', { class: 'addr' }, endpoint(e.dst, e.dst_port)),
    h('td', { class: 'opt' }, e.kind),
    h('td', { class: 'trail' }, h('a', { href: `#/event/${e.id}` }, e.trail)),
    h('td', { class: 'opt info' }, e.info),
  ];
  if (canTriage()) {
    cells.push(
      h('td', {}, statusSelect(e.id, hit.status, `Status of the event on ${e.trail}`)),
      h('td', { class: 'row-actions' },
        h('button', { type: 'button', class: 'small fp', onclick: () => falsePositive(e, reload) }, 'False positive…'),
        h('button', { type: 'button', class: 'small hide', onclick: async () => {
          try { await hideTrail(e.trail); reload(); } catch (x) { alert(x.message); }
        } }, 'Hide trail')));
  } else {
    cells.push(h('td', {}, statusBadge(hit.status)));
  }
  return h('tr', { 'data-id': e.id, class: `sev-row-${e.severity}` }, cells);
}

export async function render(main, params) {
  document.title = 'Events · Spoor';
  const filter = apiFilter(params);
  const limit = PAGE_SIZES.includes(Number(params.get('limit'))) ? Number(params.get('limit')) : 100;
  const cursor = params.get('cursor');
  const prev = (params.get('prev') || '').split(',').filter((x) => x !== '');
  const go = (p) => navigate('/events', p);
  const exportHref = (format) => `/api/v1/events/export${qs({ ...filter, format })}`;
  const head = h('div', { class: 'page-head' }, h('h1', {}, 'Events'), rangePicker(params, go));
  const status = h('div', { class: 'table-status', role: 'status' });
  const tableBox = h('div', { class: 'table-box', 'aria-busy': 'true' });
  main.append(head, filterForm(params), status, tableBox);

  const reload = () => navigate('/events', params);
  const order = sortOf(params);
  let page;
  try {
    page = await get(`/events${qs({ ...filter, limit, cursor, sort: order.col.key, dir: order.dir })}`);
  } catch (e) {
    tableBox.append(notice(`The events could not be loaded: ${e.message}`, 'error'));
    tableBox.setAttribute('aria-busy', 'false');
    return null;
  }
  const hits = page.events;
  const cols = [...COLUMNS.slice(0, -1)];
  const table = h('table', { class: 'events', id: 'events-table' },
    h('caption', { class: 'sr-only' }, `Events by ${order.col.label.toLowerCase()}, ${order.dir === 'asc' ? 'ascending' : 'descending'}`),
    h('thead', {}, h('tr', {}, cols.map((c) => headerCell(c, params)), headerCell(COLUMNS.at(-1), params),
      canTriage() ? h('th', { scope: 'col' }, h('span', { class: 'sr-only' }, 'Actions')) : null)),
    h('tbody', {}, hits.map((hit) => row(hit, reload))));
  const nav = h('nav', { class: 'pager', 'aria-label': 'Pages' },
    h('button', { type: 'button', id: 'newer', disabled: !cursor, onclick: () => {
      const p = new URLSearchParams(params);
      const back = [...prev];
      const c = back.pop();
      if (c) p.set('cursor', c); else p.delete('cursor');
      if (back.length) p.set('prev', back.join(',')); else p.delete('prev');
      go(p);
    } }, '← Previous'),
    h('span', {}, `Page ${prev.length + (cursor ? 2 : 1)}`),
    h('button', { type: 'button', id: 'older', disabled: !page.next, onclick: () => {
      const p = new URLSearchParams(params);
      p.set('prev', [...prev, cursor || ''].join(','));
      p.set('cursor', page.next);
      go(p);
    } }, 'Next →'),
    h('label', { for: 'page-size' }, 'Per page'),
    h('select', { id: 'page-size', onchange: (e) => {
      const p = new URLSearchParams(params);
      p.set('limit', e.target.value);
      p.delete('cursor'); p.delete('prev');
      go(p);
    } }, PAGE_SIZES.map((n) => h('option', { value: n, selected: n === limit }, n))));
  const tools = h('div', { class: 'table-tools' },
    h('span', { id: 'shown' }, hits.length ? `${num(hits.length)} events on this page${page.next ? ', more on the next pages' : ''}` : 'No events match.'),
    canTriage() ? h('span', { class: 'export' }, 'Export all matching: ',
      h('a', { href: exportHref('csv'), download: 'spoor-events.csv', id: 'export-csv' }, 'CSV'), ' · ',
      h('a', { href: exportHref('json'), download: 'spoor-events.json', id: 'export-json' }, 'JSON')) : null);
  tableBox.append(tools, hits.length ? h('div', { class: 'scroll' }, table) : notice('No events match these filters in this range.'), nav);
  tableBox.setAttribute('aria-busy', 'false');

  if (cursor || !rangeOf(params).preset) return null;
  let timer = null;
  const off = onLive(() => {
    if (timer) return;
    timer = setTimeout(() => {
      timer = null;
      // Reloading would take the focus or a half-typed filter away: offer it instead.
      const a = document.activeElement;
      const busy = (a && a !== main && main.contains(a) && a.tagName !== 'A') || document.querySelector('dialog[open]');
      if (!busy) { reload(); return; }
      clear(status).append(h('button', { type: 'button', class: 'small', onclick: reload }, 'New events arrived: show them'));
    }, LIVE_RELOAD_MS);
  });
  return () => { off(); clearTimeout(timer); };
}
