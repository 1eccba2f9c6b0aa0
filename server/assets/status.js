// Sensors (as they last reported with a batch), feeds (as the updater last left them in
// the feeds dir) and the team's triage rules.

import { get, canTriage } from './api.js';
import { h, notice, num, ago, duration, fmtTime } from './dom.js';
import { deleteSuppression, unhideTrail } from './triage.js';
import { navigate } from './app.js';

/** A sensor silent for longer than this is shown as stale. */
const STALE_SECS = 300;
/** Trails older than this are flagged (feeds update daily by default). */
const OLD_TRAILS_SECS = 2 * 86400;
/** Drops above this share of packets are flagged. */
const DROP_WARN = 0.01;

function health(s) {
  const silent = Date.now() / 1000 - s.last_seen / 1e6;
  const problems = [];
  if (silent > STALE_SECS) problems.push(`silent for ${duration(Math.round(silent))}`);
  if (s.packets > 0 && s.drops / (s.packets + s.drops) > DROP_WARN) problems.push(`${((100 * s.drops) / (s.packets + s.drops)).toFixed(1)} % dropped`);
  if (s.trails_age_secs > OLD_TRAILS_SECS) problems.push(`trails ${duration(s.trails_age_secs)} old`);
  if (s.spool_dropped > 0) problems.push(`${num(s.spool_dropped)} events lost from its spool`);
  return problems.length
    ? h('span', { class: 'health bad' }, h('span', { class: 'dot', 'aria-hidden': 'true' }), problems.join('; '))
    : h('span', { class: 'health ok' }, h('span', { class: 'dot', 'aria-hidden': 'true' }), 'OK');
}

export async function renderSensors(main) {
  document.title = 'Sensors · Spoor';
  main.append(h('div', { class: 'page-head' }, h('h1', {}, 'Sensors')));
  let list;
  try { list = await get('/sensors'); } catch (e) { main.append(notice(e.message, 'error')); return null; }
  if (!list.length) {
    main.append(notice('No sensor has reported yet. A sensor appears here with its first batch of events.'));
    return null;
  }
  main.append(h('div', { class: 'scroll card' }, h('table', { class: 'grid-table', id: 'sensors-table' },
    h('thead', {}, h('tr', {}, ['Sensor', 'Health', 'Last seen', 'Version', 'Uptime', 'Packets', 'Drops', 'Trail age', 'Events stored']
      .map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', {}, list.map((s) => h('tr', {},
      h('th', { scope: 'row' }, h('a', { href: `#/events?sensor=${encodeURIComponent(s.name)}` }, s.name)),
      h('td', {}, health(s)),
      h('td', {}, h('time', { datetime: new Date(s.last_seen / 1000).toISOString(), title: fmtTime(s.last_seen) }, ago(s.last_seen / 1e6))),
      h('td', {}, s.version),
      h('td', {}, duration(s.uptime_secs)),
      h('td', { class: 'num' }, num(s.packets)),
      h('td', { class: 'num' }, num(s.drops)),
      h('td', {}, duration(s.trails_age_secs)),
      h('td', { class: 'num' }, num(s.events))))))));
  return null;
}

export async function renderFeeds(main) {
  document.title = 'Feeds · Spoor';
  main.append(h('div', { class: 'page-head' }, h('h1', {}, 'Feeds')));
  let data;
  try { data = await get('/feeds'); } catch (e) { main.append(notice(e.message, e.code === 'no_feeds' ? 'info' : 'error')); return null; }
  const enabled = data.feeds.filter((f) => f.enabled);
  const failing = enabled.filter((f) => f.last_error);
  const trails = enabled.reduce((n, f) => n + (f.trails || 0), 0);
  main.append(
    h('p', {}, `${enabled.length} of ${data.feeds.length} feeds enabled, ${num(trails)} trails in their last good copies, `,
      failing.length ? h('strong', { class: 'bad' }, `${failing.length} failing`) : 'none failing', '. ',
      h('span', { class: 'muted' }, `State read from ${data.dir}.`)),
    h('div', { class: 'scroll card' }, h('table', { class: 'grid-table', id: 'feeds-table' },
      h('thead', {}, h('tr', {}, ['Feed', 'Enabled', 'Trails', 'Updated', 'Last attempt', 'Problem', 'Description'].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, data.feeds.map((f) => h('tr', { class: f.enabled ? '' : 'disabled' },
        h('th', { scope: 'row' }, f.name, h('div', { class: 'muted small' }, f.format)),
        h('td', {}, f.enabled ? 'yes' : 'no'),
        h('td', { class: 'num' }, f.trails === null || f.trails === undefined ? '–' : num(f.trails)),
        h('td', {}, f.updated ? h('time', { title: fmtTime(f.updated * 1e6) }, ago(f.updated)) : (f.enabled ? h('span', { class: 'bad' }, 'never') : 'never')),
        h('td', {}, f.checked ? ago(f.checked) : '–'),
        h('td', { class: 'problem' }, f.last_error ? h('span', { class: 'bad' }, `${f.last_error} (${f.failures} failed attempt${f.failures === 1 ? '' : 's'})`) : ''),
        h('td', { class: 'desc' }, f.description)))))));
  return null;
}

/** The team's triage rules: suppressions (false positives) and hidden trails. */
export async function renderRules(main) {
  document.title = 'Triage rules · Spoor';
  main.append(h('div', { class: 'page-head' }, h('h1', {}, 'Triage rules')));
  let sup;
  let hidden;
  try {
    [sup, hidden] = await Promise.all([get('/suppressions'), get('/hidden-trails')]);
  } catch (e) { main.append(notice(e.message, 'error')); return null; }
  const reload = () => navigate('/rules');
  const act = (label, f) => h('button', { type: 'button', class: 'small', onclick: async () => {
    try { await f(); reload(); } catch (x) { alert(x.message); }
  } }, label);
  main.append(
    h('section', { class: 'card' }, h('h2', {}, 'False positives (suppressed events)'),
      sup.length ? h('div', { class: 'scroll' }, h('table', { class: 'grid-table', id: 'suppressions-table' },
        h('thead', {}, h('tr', {}, ['Trail', 'Source', 'Comment', 'By', 'When', canTriage() ? h('span', { class: 'sr-only' }, 'Actions') : null].filter(Boolean).map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', {}, sup.map((r) => h('tr', {},
          h('td', {}, r.trail ? h('code', {}, r.trail) : h('span', { class: 'muted' }, 'any')),
          h('td', {}, r.src ? h('code', {}, r.src) : h('span', { class: 'muted' }, 'any')),
          h('td', {}, r.comment),
          h('td', {}, r.created_by),
          h('td', {}, fmtTime(r.created_at)),
          canTriage() ? h('td', {}, act('Remove', () => deleteSuppression(r.id))) : null)))))
        : h('p', { class: 'muted' }, 'None. Mark an event as a false positive from the events table or its detail.')),
    h('section', { class: 'card' }, h('h2', {}, 'Hidden trails'),
      hidden.length ? h('ul', { class: 'plain', id: 'hidden-list' }, hidden.map((t) => h('li', {},
        h('code', {}, t.trail), h('span', { class: 'muted' }, ` — ${t.created_by}, ${fmtTime(t.created_at)} `),
        canTriage() ? act('Show again', () => unhideTrail(t.trail)) : null)))
        : h('p', { class: 'muted' }, 'None.')));
  return null;
}
