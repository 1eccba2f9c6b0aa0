// One event: every field, the protocol context (DNS question and answers, HTTP request,
// TLS SNI/JA4/JA3, heuristic evidence), the feeds that list the trail, its triage
// (status, notes, false positive, hide trail) and related events of the same offender.

import { get, qs, canTriage } from './api.js';
import { h, notice, num, severityBadge, statusBadge, timeEl, endpoint, fmtTime, ago } from './dom.js';
import { navigate } from './app.js';
import { falsePositive, hideTrail, statusSelect, update } from './triage.js';

const RELATED = 20;

function dl(rows) {
  return h('dl', { class: 'fields' }, rows.filter(([, v]) => v !== undefined && v !== null && v !== '')
    .map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
}

function protocol(ev) {
  const c = ev.context || {};
  const parts = [];
  if (c.dns || ev.answers?.length) {
    const d = c.dns || {};
    parts.push(h('section', { class: 'card', id: 'ctx-dns' }, h('h2', {}, 'DNS'),
      dl([['Question', d.qname ? `${d.qname} ${d.qtype || ''}`.trim() : null], ['Response code', d.rcode]]),
      h('h3', {}, 'Answers'),
      ev.answers?.length ? h('ul', { class: 'answers', id: 'dns-answers' }, ev.answers.map((a) => h('li', {}, h('a', { href: `#/events?ip=${encodeURIComponent(a)}` }, a))))
        : h('p', { class: 'muted' }, 'No answers recorded (a query, or an answer without addresses).')));
  }
  if (c.http) {
    parts.push(h('section', { class: 'card', id: 'ctx-http' }, h('h2', {}, 'HTTP'),
      dl([['Request', h('code', {}, `${c.http.method} ${c.http.uri}`)], ['Host', c.http.host],
        ['User agent', c.http.user_agent ? h('code', {}, c.http.user_agent) : null], ['X-Forwarded-For', c.http.xff]])));
  }
  if (c.tls) {
    parts.push(h('section', { class: 'card', id: 'ctx-tls' }, h('h2', {}, 'TLS'),
      dl([['SNI', c.tls.sni], ['JA4', c.tls.ja4 ? h('code', {}, c.tls.ja4) : null], ['JA3', c.tls.ja3 ? h('code', {}, c.tls.ja3) : null],
        ['Certificate SHA-1', c.tls.cert_sha1 ? h('code', {}, c.tls.cert_sha1) : null]])));
  }
  if (c.heuristic) {
    parts.push(h('section', { class: 'card', id: 'ctx-heuristic' }, h('h2', {}, 'Heuristic'),
      dl([['Name', c.heuristic.name], ['Reason', c.heuristic.reason]])));
  }
  return parts;
}

/** The feeds named in `reference`, with what the server knows of them. */
async function feeds(ev) {
  const names = ev.reference.split(/[,;]\s*|\s+/).map((x) => x.trim()).filter(Boolean);
  // Without a feeds configuration (or its state) the server cannot say more than the name.
  let known = null;
  try { known = (await get('/feeds')).feeds; } catch { known = null; }
  return h('section', { class: 'card', id: 'feeds' }, h('h2', {}, 'Reference'),
    h('ul', { class: 'plain' }, names.map((n) => {
      const f = known?.find((k) => k.name === n);
      if (!f && !known) return h('li', {}, h('strong', {}, n));
      if (!f) {
        const what = n === '(static)' ? 'built-in static trails' : n === '(heuristic)' ? 'a heuristic, not a feed' : 'not a configured feed';
        return h('li', {}, h('strong', {}, n), h('span', { class: 'muted' }, ` — ${what}`));
      }
      return h('li', {}, h('a', { href: '#/feeds' }, h('strong', {}, f.name)), ` — ${f.description || f.format}`,
        h('span', { class: 'muted' }, ` (${f.trails !== null && f.trails !== undefined ? `${num(f.trails)} trails, ` : ''}updated ${ago(f.updated)})`));
    })));
}

function triagePanel(ev, triage, refresh) {
  const notes = h('ol', { class: 'notes', id: 'notes' }, triage.notes.map((n) =>
    h('li', {}, h('p', {}, n.text), h('p', { class: 'muted' }, `${n.author}, ${fmtTime(n.time)}`))));
  const who = triage.updated_by ? h('p', { class: 'muted' }, `Set by ${triage.updated_by}, ${fmtTime(triage.updated_at)}`) : null;
  if (!canTriage()) {
    return h('section', { class: 'card', id: 'triage' }, h('h2', {}, 'Triage'),
      h('p', {}, 'Status: ', statusBadge(triage.status)), who,
      triage.notes.length ? notes : h('p', { class: 'muted' }, 'No notes.'),
      h('p', { class: 'muted' }, 'Your role (viewer) can read triage but not change it.'));
  }
  const text = h('textarea', { id: 'note-text', name: 'note', rows: 3, maxlength: 8192 });
  const err = h('p', { class: 'field-error', role: 'alert' });
  const form = h('form', {
    onsubmit: async (e) => {
      e.preventDefault();
      if (!text.value.trim()) { err.textContent = 'Write a note first.'; return; }
      try { await update(ev.id, { note: text.value }); refresh(); } catch (x) { err.textContent = x.message; }
    },
  }, h('label', { for: 'note-text' }, 'Add a note'), text, err, h('button', { type: 'submit', id: 'add-note' }, 'Add note'));
  return h('section', { class: 'card', id: 'triage' }, h('h2', {}, 'Triage'),
    h('div', { class: 'field inline' }, h('label', { for: 'detail-status' }, 'Status'),
      (() => { const sel = statusSelect(ev.id, triage.status, 'Status', refresh); sel.id = 'detail-status'; sel.removeAttribute('aria-label'); return sel; })()), who,
    h('div', { class: 'actions' },
      h('button', { type: 'button', id: 'detail-fp', onclick: () => falsePositive(ev, refresh) }, 'Mark false positive…'),
      h('button', { type: 'button', id: 'detail-hide', onclick: async () => {
        try { await hideTrail(ev.trail); refresh(); } catch (x) { alert(x.message); }
      } }, `Hide trail ${ev.trail}`)),
    h('h3', {}, 'Notes'), triage.notes.length ? notes : h('p', { class: 'muted' }, 'No notes yet.'), form);
}

async function related(ev) {
  const who = ev.offender || ev.src;
  const box = h('section', { class: 'card wide', id: 'related' }, h('h2', {}, `Other events of ${who}`));
  try {
    const page = await get(`/events${qs({ ip: who, limit: RELATED + 1, include_suppressed: 'true', include_hidden: 'true' })}`);
    const others = page.events.filter((x) => x.event.id !== ev.id).slice(0, RELATED);
    if (!others.length) { box.append(h('p', { class: 'muted' }, 'No other events.')); return box; }
    box.append(h('div', { class: 'scroll' }, h('table', { class: 'events compact' },
      h('thead', {}, h('tr', {}, ['Time', 'Severity', 'Source', 'Destination', 'Trail', 'Status'].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, others.map(({ event: e, status }) => h('tr', {},
        h('td', {}, h('a', { href: `#/event/${e.id}` }, timeEl(e.time))), h('td', {}, severityBadge(e.severity)),
        h('td', { class: 'addr' }, endpoint(e.src, e.src_port)), h('td', { class: 'addr' }, endpoint(e.dst, e.dst_port)),
        h('td', { class: 'trail' }, e.trail), h('td', {}, statusBadge(status))))))),
    h('p', {}, h('a', { href: `#/events?ip=${encodeURIComponent(who)}&range=30d` }, `All events of ${who} in the events table`)));
  } catch (e) {
    box.append(notice(`Related events could not be loaded: ${e.message}`, 'error'));
  }
  return box;
}

export async function render(main, params, match) {
  const id = match[1];
  let data;
  try {
    data = await get(`/events/${id}`);
  } catch (e) {
    main.append(h('h1', {}, 'Event'), notice(e.status === 404 ? 'No such event, or it is outside your networks.' : e.message, 'error'));
    return null;
  }
  const ev = data.event;
  document.title = `${ev.trail} · Spoor`;
  const refresh = () => navigate(`/event/${id}`, params);
  const fields = dl([
    ['Id', h('code', {}, ev.id)],
    ['Time', timeEl(ev.time)],
    ['First seen', timeEl(ev.first_seen)],
    ['Last seen', timeEl(ev.last_seen)],
    ['Occurrences', num(ev.count)],
    ['Sensor', h('a', { href: `#/events?sensor=${encodeURIComponent(ev.sensor)}` }, ev.sensor)],
    ['Source', h('a', { href: `#/events?ip=${encodeURIComponent(ev.src)}` }, endpoint(ev.src, ev.src_port))],
    ['Destination', h('a', { href: `#/events?ip=${encodeURIComponent(ev.dst)}` }, endpoint(ev.dst, ev.dst_port))],
    ['Protocol', ev.proto],
    ['Kind', ev.kind],
    ['Trail', h('code', {}, ev.trail)],
    ['Info', ev.info],
    ['Reference', ev.reference],
    ['Severity', severityBadge(ev.severity)],
    ['Offender', ev.offender],
    ['DNS answers', ev.answers?.length ? ev.answers.join(', ') : null],
  ]);
  const [feedBox, relatedBox] = await Promise.all([feeds(ev), related(ev)]);
  main.append(
    h('p', { class: 'crumbs' }, h('a', { href: '#/events' }, '← Events')),
    h('div', { class: 'page-head' }, h('h1', {}, severityBadge(ev.severity), ' ', ev.trail), h('p', { class: 'muted' }, ev.info)),
    h('div', { class: 'detail' },
      h('section', { class: 'card', id: 'fields' }, h('h2', {}, 'Event'), fields,
        h('details', {}, h('summary', {}, 'Raw JSON'), h('pre', {}, JSON.stringify(ev, null, 2)))),
      triagePanel(ev, data.triage, refresh),
      ...protocol(ev),
      feedBox,
      relatedBox));
  return null;
}
