// The app shell: sign-in, navigation (routes live in the URL hash, so every view can be
// bookmarked and the back button works), and the one live stream (server-sent events)
// that views subscribe to.

import { loadSession, signIn, signOut, session, whenSignedOut } from './api.js';
import { h, clear, notice } from './dom.js';
import * as overview from './overview.js';
import * as events from './events.js';
import * as detail from './detail.js';
import * as status from './status.js';
import * as blocks from './blocks.js';

const main = document.getElementById('main');
let cleanup = null;
/** Bumped by each render: a slow view finishing after the next render started is undone. */
let generation = 0;

// ---- live stream ----------------------------------------------------------------------

const listeners = new Set();
let source = null;

function setLiveState(text, cls) {
  const el = document.getElementById('live-state');
  el.textContent = text;
  el.className = `live ${cls}`;
}

/** (Re)open the stream; the server applies the triage rules as they are when it opens. */
export function reconnectLive() {
  if (source) source.close();
  source = null;
  if (!session) return;
  source = new EventSource('/api/v1/live');
  source.addEventListener('open', () => setLiveState('Live', 'on'));
  source.addEventListener('error', () => setLiveState('Reconnecting…', 'off'));
  source.addEventListener('event', (m) => {
    let ev;
    try { ev = JSON.parse(m.data); } catch { return; }
    for (const f of listeners) f(ev);
  });
  source.addEventListener('lagged', () => {
    for (const f of listeners) f(null);
  });
}

/** Call `f(event)` for each new event (`f(null)` when some were missed); returns the unsubscribe. */
export function onLive(f) {
  listeners.add(f);
  return () => listeners.delete(f);
}

// ---- routing --------------------------------------------------------------------------

/** The hash as [path, params]: `#/events?severity=high` → ['/events', params]. */
export function route() {
  const hash = location.hash.replace(/^#/, '') || '/';
  const q = hash.indexOf('?');
  return q < 0 ? [hash, new URLSearchParams()] : [hash.slice(0, q), new URLSearchParams(hash.slice(q + 1))];
}

/** Go to `path` with `params` (a new history entry). */
export function navigate(path, params) {
  const q = params && params.toString();
  const target = `#${path}${q ? `?${q}` : ''}`;
  if (location.hash === target) render();
  else location.hash = target;
}

const VIEWS = [
  [/^\/$/, 'overview', (p, m) => overview.render(main, p, m)],
  [/^\/events$/, 'events', (p, m) => events.render(main, p, m)],
  [/^\/event\/([0-9a-f]{32})$/, 'events', (p, m) => detail.render(main, p, m)],
  [/^\/sensors$/, 'sensors', (p, m) => status.renderSensors(main, p, m)],
  [/^\/feeds$/, 'feeds', (p, m) => status.renderFeeds(main, p, m)],
  [/^\/rules$/, 'rules', (p, m) => status.renderRules(main, p, m)],
  [/^\/blocks$/, 'blocks', (p, m) => blocks.renderApprovals(main, p, m)],
  [/^\/blocks\/active$/, 'blocks', (p, m) => blocks.renderActive(main, p, m)],
  [/^\/blocks\/history$/, 'blocks', (p, m) => blocks.renderHistory(main, p, m)],
  [/^\/blocks\/decision\/([0-9]+)$/, 'blocks', (p, m) => blocks.renderDecision(main, p, m)],
  [/^\/blocks\/allowlist$/, 'blocks', (p, m) => blocks.renderAllowlist(main, p, m)],
  [/^\/blocks\/status$/, 'blocks', (p, m) => blocks.renderBackends(main, p, m)],
];

async function render() {
  const gen = ++generation;
  if (cleanup) { cleanup(); cleanup = null; }
  if (!session) { renderLogin(); return; }
  const [path, params] = route();
  const found = VIEWS.find(([re]) => re.test(path));
  for (const a of document.querySelectorAll('[data-nav]')) {
    if (found && a.dataset.nav === found[1]) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  clear(main);
  if (!found) {
    main.append(h('h1', {}, 'Not found'), notice(`There is no page “${path}”.`, 'error'), h('p', {}, h('a', { href: '#/' }, 'Go to the overview')));
    return;
  }
  const match = path.match(found[0]);
  try {
    const done = (await found[2](params, match)) || null;
    if (gen === generation) cleanup = done;
    else if (done) done();
  } catch (e) {
    if (gen === generation) main.append(notice(`This page could not be loaded: ${e.message}`, 'error'));
  }
}

// ---- sign-in --------------------------------------------------------------------------

function renderLogin(message) {
  document.getElementById('top').hidden = true;
  document.title = 'Sign in · Spoor';
  clear(main);
  const user = h('input', { id: 'login-user', name: 'user', autocomplete: 'username', required: true, autocapitalize: 'none', spellcheck: 'false' });
  const pw = h('input', { id: 'login-password', name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const err = h('p', { class: 'field-error', id: 'login-error', role: 'alert' }, message || '');
  const button = h('button', { type: 'submit', class: 'primary' }, 'Sign in');
  const form = h('form', {
    class: 'login card', id: 'login-form',
    onsubmit: async (e) => {
      e.preventDefault();
      button.disabled = true;
      err.textContent = '';
      try {
        await signIn(user.value, pw.value);
        started();
      } catch (x) {
        err.textContent = x.message;
        pw.select();
      } finally {
        button.disabled = false;
      }
    },
  },
  h('h1', {}, 'Sign in to Spoor'),
  h('label', { for: 'login-user' }, 'User name'), user,
  h('label', { for: 'login-password' }, 'Password'), pw,
  err, button);
  main.append(form);
  user.focus();
}

function started() {
  document.getElementById('top').hidden = false;
  document.getElementById('who').textContent = `${session.user} (${session.role})`;
  document.body.dataset.role = session.role;
  reconnectLive();
  render();
}

whenSignedOut(() => {
  if (source) source.close();
  source = null;
  renderLogin('Your session has ended; sign in again.');
});

document.getElementById('logout').addEventListener('click', async () => {
  if (source) source.close();
  source = null;
  try { await signOut(); } catch { /* signed out locally anyway */ }
  renderLogin('Signed out.');
});

window.addEventListener('hashchange', () => render());

(async () => {
  try {
    if (await loadSession()) started();
    else renderLogin();
  } catch (e) {
    clear(main).append(notice(`The server could not be reached: ${e.message}`, 'error'));
  }
})();
