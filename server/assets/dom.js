// Small DOM helpers: element builders (text is always set as text, never parsed as
// HTML), formatting of times and numbers, and the shared time-range state.

const SVG_NS = 'http://www.w3.org/2000/svg';

function fill(node, attrs, children) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') node.addEventListener(k.slice(2), v);
    else if (k === 'text') node.textContent = v;
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

/** An HTML element: h('a', {href: '#/'}, 'text', child). */
export function h(tag, attrs, ...children) {
  return fill(document.createElement(tag), attrs, children);
}

/** An SVG element. */
export function s(tag, attrs, ...children) {
  return fill(document.createElementNS(SVG_NS, tag), attrs, children);
}

export function clear(node) {
  while (node.firstChild) node.firstChild.remove();
  return node;
}

const pad = (n) => String(n).padStart(2, '0');

/** µs since the epoch → `2026-01-01 12:34:56` in the browser's time zone. */
export function fmtTime(us, withSeconds = true) {
  if (us === undefined || us === null) return '';
  const d = new Date(us / 1000);
  const t = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
  return withSeconds ? `${t}:${pad(d.getSeconds())}` : t;
}

/** µs → a `<time>` element with the UTC instant as its machine value. */
export function timeEl(us) {
  return h('time', { datetime: new Date(us / 1000).toISOString() }, fmtTime(us));
}

/** Unix seconds → how long ago, in words. */
export function ago(secs) {
  if (secs === undefined || secs === null) return 'never';
  const d = Math.max(0, Date.now() / 1000 - secs);
  if (d < 90) return `${Math.round(d)} s ago`;
  if (d < 5400) return `${Math.round(d / 60)} min ago`;
  if (d < 172800) return `${Math.round(d / 3600)} h ago`;
  return `${Math.round(d / 86400)} d ago`;
}

export function duration(secs) {
  if (secs === undefined || secs === null) return '–';
  if (secs < 120) return `${secs} s`;
  if (secs < 7200) return `${Math.round(secs / 60)} min`;
  if (secs < 172800) return `${Math.round(secs / 3600)} h`;
  return `${Math.round(secs / 86400)} d`;
}

const nf = new Intl.NumberFormat();
export const num = (n) => nf.format(n ?? 0);

/** `host:port` with brackets for IPv6. */
export function endpoint(ip, port) {
  if (port === undefined || port === null) return ip;
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
}

export function severityBadge(sev) {
  return h('span', { class: `sev sev-${sev}` }, sev);
}

export function statusBadge(st) {
  return h('span', { class: `status status-${st}` }, st);
}

/** A message in place of content (errors included), as a live region. */
export function notice(text, kind = 'info') {
  return h('p', { class: `notice notice-${kind}`, role: kind === 'error' ? 'alert' : 'status' }, text);
}

export const KINDS = ['ip', 'ip_port', 'cidr', 'dns', 'url', 'host', 'path', 'ua', 'sni', 'ja4', 'cert', 'heuristic'];
export const SEVERITIES = ['high', 'medium', 'low'];

// ---- the time range shared by the overview and the events table ----------------------

export const PRESETS = { '1h': 3600, '24h': 86400, '7d': 7 * 86400, '30d': 30 * 86400 };

/** The range in the hash params: `range=24h`, or `from`/`to` in µs. Default 24h. */
export function rangeOf(params) {
  const from = Number(params.get('from'));
  const to = Number(params.get('to'));
  if (from > 0 && to > from) return { from, to, preset: null };
  const p = params.get('range');
  const preset = p in PRESETS ? p : '24h';
  const now = Date.now() * 1000;
  return { from: now - PRESETS[preset] * 1e6, to: now, preset };
}

/** µs → the value of a `datetime-local` input (local time). */
function localInput(us) {
  const d = new Date(us / 1000);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/**
 * The range picker: preset buttons and a custom from/to form. `apply(params)` gets the
 * hash params to navigate to (the caller's other params kept).
 */
export function rangePicker(params, apply) {
  const r = rangeOf(params);
  const go = (changes) => {
    const p = new URLSearchParams(params);
    for (const k of ['range', 'from', 'to', 'cursor']) p.delete(k);
    for (const [k, v] of Object.entries(changes)) p.set(k, v);
    apply(p);
  };
  const presets = Object.keys(PRESETS).map((k) =>
    h('button', {
      type: 'button', class: 'preset', 'aria-pressed': r.preset === k ? 'true' : 'false',
      onclick: () => go({ range: k }),
    }, `Last ${k}`));
  const from = h('input', { type: 'datetime-local', id: 'range-from', name: 'from', value: localInput(r.from), required: true });
  const to = h('input', { type: 'datetime-local', id: 'range-to', name: 'to', value: localInput(r.to), required: true });
  const err = h('span', { class: 'field-error', role: 'alert' });
  const form = h('form', {
    class: 'custom-range',
    onsubmit: (e) => {
      e.preventDefault();
      const f = new Date(from.value).getTime() * 1000;
      const t = new Date(to.value).getTime() * 1000;
      if (!(t > f)) { err.textContent = '“To” must be after “from”.'; return; }
      go({ from: String(f), to: String(t) });
    },
  },
  h('label', { for: 'range-from' }, 'From'), from,
  h('label', { for: 'range-to' }, 'To'), to,
  h('button', { type: 'submit' }, 'Apply'), err);
  return h('div', { class: 'range', role: 'group', 'aria-label': 'Time range' },
    h('div', { class: 'presets' }, presets), form);
}
