// Blocks: the responders' decisions. Approvals (proposed decisions, approve or reject in
// bulk with a reason), active blocks (time left counting down, extend, revoke, a manual
// block), history (final decisions) with each decision's audit trail, the allowlist (admin
// only) and the backends' status. Every change is an admin's; other roles see the same
// pages without the controls (the server refuses them anyway).

import { get, post, session, qs } from './api.js';
import { h, clear, notice, fmtTime, timeEl, num, ago } from './dom.js';
import { navigate } from './app.js';

/** Decisions a list page asks for at once (the server's own cap is higher). */
const PAGE = 200;
/** How often the approvals and active pages reload while nobody is working in them. */
const REFRESH_MS = 15000;
/** Extension choices: label → seconds. */
const EXTEND = [['1 h', 3600], ['6 h', 6 * 3600], ['24 h', 86400], ['7 d', 7 * 86400]];
/** Manual block lengths. */
const TTLS = EXTEND;

export const isAdmin = () => session !== null && session.role === 'admin';

const TABS = [
  ['/blocks', 'approvals', 'Approvals', () => true],
  ['/blocks/active', 'active', 'Active blocks', () => true],
  ['/blocks/history', 'history', 'History and audit', () => true],
  ['/blocks/allowlist', 'allowlist', 'Allowlist', isAdmin],
  ['/blocks/status', 'status', 'Backends', () => true],
];

function head(main, tab, title) {
  document.title = `${title} · Spoor`;
  main.append(
    h('div', { class: 'page-head' }, h('h1', {}, title)),
    h('nav', { class: 'tabs', 'aria-label': 'Blocks' }, h('ul', {}, TABS.filter((t) => t[3]()).map(([path, id, label]) =>
      h('li', {}, h('a', { href: `#${path}`, 'aria-current': id === tab ? 'page' : false, id: `tab-${id}` }, label))))));
}

/** A failed load: the server's message; "not configured" is information, not an error. */
function failed(main, e) {
  const off = e.code === 'no_responders';
  main.append(notice(off ? `${e.message}` : `This page could not be loaded: ${e.message}`, off ? 'info' : 'error'));
  return null;
}

// ---- time left ------------------------------------------------------------------------

/** Server time minus browser time, from the last answer's `now` (µs). */
let skewMs = 0;
const serverNowMs = () => Date.now() + skewMs;

function left(expiresUs) {
  const s = Math.floor((expiresUs / 1000 - serverNowMs()) / 1000);
  if (s <= 0) return 'expiring…';
  const d = Math.floor(s / 86400);
  const hh = Math.floor((s % 86400) / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = s % 60;
  const p = (n) => String(n).padStart(2, '0');
  return d > 0 ? `${d} d ${p(hh)} h ${p(mm)} min` : `${p(hh)}:${p(mm)}:${p(ss)}`;
}

/** A countdown element, updated by `tick()`. */
function timeLeft(expiresUs) {
  if (expiresUs === undefined || expiresUs === null) return h('span', { class: 'muted' }, '–');
  return h('span', { class: 'time-left', 'data-expires': expiresUs, title: `until ${fmtTime(expiresUs)}` }, left(expiresUs));
}

function tick() {
  for (const el of document.querySelectorAll('.time-left[data-expires]')) {
    el.textContent = left(Number(el.dataset.expires));
  }
}

// ---- shared bits ----------------------------------------------------------------------

/** A target as firewalls write it: a single address without its /32 or /128. */
const fmtTarget = (t) => t.replace(/^([0-9.]+)\/32$/, '$1').replace(/^([0-9a-f:.]+)\/128$/i, '$1');

function stateBadge(d) {
  return [h('span', { class: `status state-${d.state}` }, d.state), d.dry_run ? h('span', { class: 'status dry-run' }, 'dry run') : null];
}

function reasonCell(d) {
  const events = d.reason.events.length;
  return h('td', { class: 'desc' },
    d.reason.note ? h('div', {}, d.reason.note) : null,
    events ? h('div', { class: 'muted small' }, events === 1 ? 'event ' : `${events} events: `,
      d.reason.events.slice(0, 3).map((id, i) => [i ? ', ' : '', h('a', { href: `#/event/${id}` }, id.slice(0, 8))])) : null);
}

function targetCell(d) {
  return h('th', { scope: 'row' }, h('a', { href: `#/blocks/decision/${d.id}`, class: 'addr' }, fmtTarget(d.target)));
}

/** The outcome of the last bulk change, shown once by the next render of its page. */
let flash = null;

function showFlash(main) {
  if (!flash) return;
  const out = h('div', { class: 'bulk-result', 'aria-live': 'polite' });
  results(out, flash.answer, flash.verb);
  flash = null;
  main.append(out);
}

/** Per-id results of a bulk change: a summary, failures listed with their reasons. */
function results(out, answer, verb) {
  const bad = answer.results.filter((r) => !r.ok);
  const good = answer.results.length - bad.length;
  clear(out).append(
    notice(`${good} ${verb}${bad.length ? `, ${bad.length} refused` : ''}.`, bad.length ? 'error' : 'info'),
    bad.length ? h('ul', { class: 'plain', id: 'bulk-errors' }, bad.map((r) => h('li', {}, `Decision ${r.id}: ${r.message}`))) : null);
}

/**
 * A table of decisions with a checkbox per row when `selectable`; returns {node, selected}.
 * `cols` are [header, d => cell].
 */
function decisionTable(id, list, cols, selectable) {
  const boxes = [];
  const all = selectable ? h('input', { type: 'checkbox', id: `${id}-all`, 'aria-label': 'Select all' }) : null;
  if (all) all.addEventListener('change', () => { for (const b of boxes) b.checked = all.checked; });
  const rows = list.map((d) => {
    let box = null;
    if (selectable) {
      box = h('input', { type: 'checkbox', class: 'pick', value: d.id, 'aria-label': `Select ${fmtTarget(d.target)}` });
      boxes.push(box);
    }
    return h('tr', { 'data-id': d.id }, selectable ? h('td', {}, box) : null, targetCell(d), cols.map(([, f]) => f(d)));
  });
  const node = h('div', { class: 'scroll card' }, h('table', { class: 'grid-table', id },
    h('thead', {}, h('tr', {}, selectable ? h('th', { scope: 'col' }, all) : null, h('th', { scope: 'col' }, 'Target'),
      cols.map(([c]) => h('th', { scope: 'col' }, c)))),
    h('tbody', {}, rows)));
  return { node, selected: () => boxes.filter((b) => b.checked).map((b) => Number(b.value)), boxes };
}

/** What a list shows: a change of any decision changes its `seq`. */
const signature = (r) => r.decisions.map((d) => `${d.id}:${d.seq}`).join(',');

/**
 * Every REFRESH_MS, ask for `states` again and redraw `path` if the list changed, unless
 * a box is ticked or a field is in use. Also runs the countdown. Returns the stop.
 */
function autoRefresh(main, path, states, shown) {
  let stopped = false;
  const timer = setInterval(async () => {
    const busy = main.querySelector('input.pick:checked, .bulk input[type=text]:not(:placeholder-shown), details[open]')
      || (main.contains(document.activeElement) && document.activeElement.matches('input, select, textarea'));
    if (busy) return;
    try {
      const r = await load(states);
      if (!stopped && signature(r) !== shown) navigate(path);
    } catch { /* the next tick tries again; a lost session shows the sign-in form */ }
  }, REFRESH_MS);
  const countdown = setInterval(tick, 1000);
  return () => { stopped = true; clearInterval(timer); clearInterval(countdown); };
}

async function load(states) {
  const p = new URLSearchParams();
  for (const s of states) p.append('state', s);
  p.set('limit', PAGE);
  const r = await get(`/decisions?${p}`);
  skewMs = r.now / 1000 - Date.now();
  return r;
}

/** The bulk bar: a reason field and one button per action; each posts {ids, reason, ...}. */
function bulkBar(id, table, actions, done) {
  const reason = h('input', { type: 'text', id: `${id}-reason`, name: 'reason', maxlength: 500, placeholder: 'Why (kept in the audit log)' });
  const out = h('div', { class: 'bulk-result', 'aria-live': 'polite' });
  const buttons = actions.map(([label, action, verb, extra, cls]) => h('button', {
    type: 'button', id: `${id}-${action}`, class: cls || '',
    onclick: async (e) => {
      const ids = table.selected();
      if (!ids.length) { clear(out).append(notice('Select at least one decision first.', 'error')); return; }
      e.target.disabled = true;
      try {
        const answer = await post(`/decisions/${action}`, { ids, reason: reason.value || undefined, ...(extra ? extra() : {}) });
        // The list reloads at once; the outcome stays on top of it.
        flash = { answer, verb };
        done();
      } catch (x) {
        clear(out).append(notice(x.message, 'error'));
      } finally {
        e.target.disabled = false;
      }
    },
  }, label));
  return h('div', { class: 'bulk card' },
    h('div', { class: 'field' }, h('label', { for: `${id}-reason` }, 'Reason'), reason),
    h('div', { class: 'actions' }, buttons), out);
}

// ---- approvals ------------------------------------------------------------------------

export async function renderApprovals(main) {
  head(main, 'approvals', 'Approvals');
  showFlash(main);
  let r;
  try { r = await load(['proposed']); } catch (e) { return failed(main, e); }
  if (!r.decisions.length) {
    main.append(notice('Nothing is waiting for approval. Decisions of rules with action “approve” queue here.'));
    return autoRefresh(main, '/blocks', ['proposed'], signature(r));
  }
  const t = decisionTable('approvals-table', r.decisions, [
    ['Rule', (d) => h('td', {}, d.reason.rule)],
    ['Reason', reasonCell],
    ['Block for', (d) => h('td', {}, d.dry_run ? h('span', { class: 'muted' }, 'dry run') : duration(d.ttl_secs))],
    ['Proposed', (d) => h('td', {}, timeEl(d.created))],
    ['By', (d) => h('td', {}, d.actor)],
  ], isAdmin());
  main.append(h('p', { class: 'muted' }, `${r.decisions.length} proposed${r.next ? ' (the newest shown)' : ''}. `,
    isAdmin() ? 'Approving starts the block’s time; rejecting is final.' : 'Only admins approve or reject.'));
  if (isAdmin()) {
    main.append(bulkBar('approvals', t, [
      ['Approve', 'approve', 'approved', null, 'primary'],
      ['Reject', 'reject', 'rejected'],
    ], () => navigate('/blocks')));
  }
  main.append(t.node);
  return autoRefresh(main, '/blocks', ['proposed'], signature(r));
}

function duration(secs) {
  if (secs % 86400 === 0) return `${secs / 86400} d`;
  if (secs % 3600 === 0) return `${secs / 3600} h`;
  if (secs % 60 === 0) return `${secs / 60} min`;
  return `${secs} s`;
}

// ---- active ---------------------------------------------------------------------------

function manualBlock() {
  const target = h('input', { type: 'text', id: 'block-target', name: 'target', required: true, placeholder: '203.0.113.7 or 198.51.100.0/24', autocapitalize: 'none', spellcheck: 'false' });
  const ttl = h('select', { id: 'block-ttl', name: 'ttl' }, TTLS.map(([l, s], i) => h('option', { value: s, selected: i === 0 }, l)));
  const reason = h('input', { type: 'text', id: 'block-reason', name: 'reason', maxlength: 500, placeholder: 'Why' });
  const err = h('p', { class: 'field-error', id: 'block-error', role: 'alert' });
  const form = h('form', {
    class: 'manual', id: 'block-form',
    onsubmit: async (e) => {
      e.preventDefault();
      err.textContent = '';
      try {
        await post('/decisions', { target: target.value.trim(), ttl_secs: Number(ttl.value), reason: reason.value || undefined });
        navigate('/blocks/active');
      } catch (x) { err.textContent = x.message; }
    },
  },
  h('div', { class: 'field' }, h('label', { for: 'block-target' }, 'Address or network'), target),
  h('div', { class: 'field' }, h('label', { for: 'block-ttl' }, 'For'), ttl),
  h('div', { class: 'field grow' }, h('label', { for: 'block-reason' }, 'Reason'), reason),
  h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Block')), err);
  return h('details', { class: 'card', id: 'active-manual' }, h('summary', {}, 'Block an address by hand'), h('p', { class: 'muted small' },
    'Checked against the allowlist and the shortest allowed prefix; active at once (approved by you).'), form);
}

export async function renderActive(main) {
  head(main, 'active', 'Active blocks');
  showFlash(main);
  let r;
  try { r = await load(['approved', 'active']); } catch (e) { return failed(main, e); }
  if (isAdmin()) main.append(manualBlock());
  if (!r.decisions.length) {
    main.append(notice('No blocks are in force.'));
    return autoRefresh(main, '/blocks/active', ['approved', 'active'], signature(r));
  }
  const t = decisionTable('active-table', r.decisions, [
    ['State', (d) => h('td', {}, stateBadge(d))],
    ['Rule', (d) => h('td', {}, d.reason.rule)],
    ['Reason', reasonCell],
    ['Time left', (d) => h('td', { class: 'num' }, timeLeft(d.expires))],
    ['Until', (d) => h('td', {}, d.expires ? timeEl(d.expires) : '–')],
  ], isAdmin());
  main.append(h('p', { class: 'muted' }, `${r.decisions.length} in force: “approved” waits for a backend to apply it, “active” is held by one.`,
    isAdmin() ? '' : ' Only admins extend or revoke.'));
  if (isAdmin()) {
    const by = h('select', { id: 'extend-by', 'aria-label': 'Extend by' }, EXTEND.map(([l, s]) => h('option', { value: s }, `+ ${l}`)));
    const bar = bulkBar('active', t, [
      ['Extend', 'extend', 'extended', () => ({ ttl_secs: Number(by.value) })],
      ['Revoke', 'revoke', 'revoked'],
    ], () => navigate('/blocks/active'));
    bar.querySelector('.actions').prepend(by);
    main.append(bar);
  }
  main.append(t.node);
  tick();
  return autoRefresh(main, '/blocks/active', ['approved', 'active'], signature(r));
}

// ---- history and audit ----------------------------------------------------------------

function auditList(entries, id) {
  return h('ol', { class: 'audit', id }, entries.map((a) => h('li', { 'data-seq': a.seq },
    timeEl(a.at), ' ',
    h('strong', { class: 'actor' }, a.actor), ' ',
    h('span', { class: 'step' }, a.from === undefined || a.from === null ? `proposed` : a.from === a.to ? `extended (${a.to})` : `${a.from} → ${a.to}`),
    a.expires ? h('span', { class: 'muted' }, `, until ${fmtTime(a.expires)}`) : null,
    a.note ? h('span', {}, ': ', h('q', {}, a.note)) : null)));
}

export async function renderHistory(main) {
  head(main, 'history', 'History and audit');
  let r;
  let audit;
  try {
    [r, audit] = await Promise.all([load(['rejected', 'expired', 'revoked']), get(`/decisions/audit${qs({ limit: 100 })}`)]);
  } catch (e) { return failed(main, e); }
  main.append(h('section', { class: 'card' }, h('h2', {}, 'Latest changes'),
    audit.entries.length ? h('div', { class: 'scroll' }, h('table', { class: 'grid-table', id: 'audit-table' },
      h('thead', {}, h('tr', {}, ['When', 'Decision and target', 'Change', 'By', 'Note'].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, audit.entries.map((a) => h('tr', { 'data-decision': a.decision },
        h('td', {}, timeEl(a.at)),
        h('td', {}, h('a', { href: `#/blocks/decision/${a.decision}` }, `#${a.decision}`), audit.targets[a.decision] ? h('span', { class: 'addr' }, ` ${audit.targets[a.decision]}`) : null),
        h('td', { class: 'step' }, a.from === undefined || a.from === null ? 'proposed' : a.from === a.to ? `extended${a.expires ? ` to ${fmtTime(a.expires)}` : ''}` : `${a.from} → ${a.to}`),
        h('td', { class: 'actor' }, a.actor),
        h('td', { class: 'desc' }, a.note || ''))))))
      : h('p', { class: 'muted' }, 'No decision has been made yet.')));
  main.append(h('h2', { class: 'section-head' }, 'Ended decisions'));
  if (!r.decisions.length) {
    main.append(notice('No decision has ended yet (rejected, expired or revoked ones show here).'));
    return null;
  }
  const t = decisionTable('history-table', r.decisions, [
    ['State', (d) => h('td', {}, stateBadge(d))],
    ['Rule', (d) => h('td', {}, d.reason.rule)],
    ['Reason', reasonCell],
    ['Ended', (d) => h('td', {}, timeEl(d.updated))],
    ['By', (d) => h('td', {}, d.actor)],
  ], false);
  main.append(t.node);
  return null;
}

/** The admin's actions on one decision, by its state. */
function decisionActions(d) {
  const path = `/blocks/decision/${d.id}`;
  const one = { selected: () => [d.id] };
  if (d.state === 'proposed') {
    return bulkBar('decision', one, [
      ['Approve', 'approve', 'approved', null, 'primary'],
      ['Reject', 'reject', 'rejected'],
    ], () => navigate(path));
  }
  if (d.state === 'approved' || d.state === 'active') {
    const by = h('select', { id: 'decision-extend-by', 'aria-label': 'Extend by' }, EXTEND.map(([l, secs]) => h('option', { value: secs }, `+ ${l}`)));
    const bar = bulkBar('decision', one, [
      ['Extend', 'extend', 'extended', () => ({ ttl_secs: Number(by.value) })],
      ['Revoke', 'revoke', 'revoked'],
    ], () => navigate(path));
    bar.querySelector('.actions').prepend(by);
    return bar;
  }
  return null;
}

export async function renderDecision(main, params, match) {
  head(main, 'history', `Decision ${match[1]}`);
  showFlash(main);
  let r;
  try { r = await get(`/decisions/${match[1]}`); } catch (e) { return failed(main, e); }
  skewMs = r.now / 1000 - Date.now();
  const d = r.decision;
  document.title = `${fmtTarget(d.target)} · Spoor`;
  main.querySelector('h1').textContent = `Decision ${d.id}: ${fmtTarget(d.target)}`;
  main.append(h('div', { class: 'detail' },
    h('section', { class: 'card' }, h('h2', {}, 'Decision'), h('dl', { class: 'fields', id: 'decision-fields' },
      h('dt', {}, 'Target'), h('dd', {}, h('code', {}, fmtTarget(d.target))),
      h('dt', {}, 'State'), h('dd', {}, stateBadge(d)),
      h('dt', {}, 'Rule'), h('dd', {}, d.reason.rule),
      d.reason.note ? [h('dt', {}, 'Reason'), h('dd', {}, d.reason.note)] : null,
      h('dt', {}, 'Length'), h('dd', {}, duration(d.ttl_secs)),
      d.expires ? [h('dt', {}, d.state === 'approved' || d.state === 'active' ? 'Time left' : 'Was to end'),
        h('dd', {}, d.state === 'approved' || d.state === 'active' ? timeLeft(d.expires) : timeEl(d.expires))] : null,
      h('dt', {}, 'Events'), h('dd', {}, d.reason.events.length ? h('ul', { class: 'plain' }, d.reason.events.map((e) => h('li', {}, h('a', { href: `#/event/${e}` }, h('code', {}, e))))) : 'none (added by hand)'))),
    h('section', { class: 'card' }, h('h2', {}, 'Audit trail'), auditList(r.audit, 'decision-audit'))));
  if (isAdmin()) {
    const actions = decisionActions(d);
    if (actions) main.querySelector('.detail').before(actions);
  }
  const countdown = setInterval(tick, 1000);
  return () => clearInterval(countdown);
}

// ---- allowlist and backends -----------------------------------------------------------

export async function renderAllowlist(main) {
  head(main, 'allowlist', 'Allowlist');
  if (!isAdmin()) { main.append(notice('The allowlist is shown to admins only.', 'error')); return null; }
  let list;
  try { list = await get('/responders/allowlist'); } catch (e) { return failed(main, e); }
  main.append(h('p', { class: 'muted' }, `${list.length} networks are never blocked: a decision on any address overlapping one is refused when it is made and again before any firewall write.`),
    h('div', { class: 'scroll card' }, h('table', { class: 'grid-table', id: 'allowlist-table' },
      h('thead', {}, h('tr', {}, ['Network', 'Why'].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, list.map((e) => h('tr', {}, h('td', {}, h('code', {}, e.net)), h('td', { class: 'desc' }, e.source)))))));
  return null;
}

export async function renderBackends(main) {
  head(main, 'status', 'Backends');
  let list;
  try { list = await get('/responders/status'); } catch (e) { return failed(main, e); }
  if (!list.length) {
    main.append(notice('No backend has reported yet: an agent (or the server’s own backend) appears here after its first sync.'));
    return null;
  }
  main.append(h('div', { class: 'scroll card' }, h('table', { class: 'grid-table', id: 'backends-table' },
    h('thead', {}, h('tr', {}, ['Reporter', 'Backend', 'Table / set / alias', 'Entries', 'Capacity', 'Last sync', 'Problem'].map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', {}, list.map((s) => h('tr', {},
      h('th', { scope: 'row' }, s.reporter),
      h('td', {}, s.backend),
      h('td', {}, h('code', {}, s.object)),
      h('td', { class: 'num' }, num(s.entries)),
      h('td', { class: 'num' }, !s.capacity ? '–' : s.capacity >= Number.MAX_SAFE_INTEGER ? 'no limit' : `${num(s.capacity)} (${Math.round((100 * s.entries) / s.capacity)} %)`),
      h('td', {}, h('time', { datetime: new Date(s.last_sync / 1000).toISOString(), title: fmtTime(s.last_sync) }, ago(s.last_sync / 1e6))),
      h('td', { class: 'problem' }, s.last_error ? h('span', { class: 'bad' }, s.last_error) : h('span', { class: 'health ok' }, 'OK'))))))));
  return null;
}
