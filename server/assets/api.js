// The JSON API client: same-origin fetch with the session cookie, the CSRF token on
// every state-changing request, errors as ApiError with the server's message.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** The signed-in user: {user, role, scope, csrf}, or null. */
export let session = null;
let onSignedOut = () => {};

export function whenSignedOut(f) { onSignedOut = f; }

export async function api(method, path, body) {
  const headers = { accept: 'application/json' };
  const init = { method, headers, credentials: 'same-origin', cache: 'no-store' };
  if (body !== undefined) {
    headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  if (method !== 'GET' && session) headers['x-csrf-token'] = session.csrf;
  let r;
  try {
    r = await fetch(`/api/v1${path}`, init);
  } catch (e) {
    throw new ApiError(0, 'network', `The server did not answer (${e.message}).`);
  }
  const text = await r.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!r.ok) {
    const err = new ApiError(r.status, data?.error ?? 'http', data?.message ?? `${r.status} ${r.statusText}`);
    if (r.status === 401 && session && !path.startsWith('/login')) {
      session = null;
      onSignedOut(err);
    }
    throw err;
  }
  return data;
}

export const get = (path) => api('GET', path);
export const post = (path, body) => api('POST', path, body);

/** Load the current session; null when not signed in. */
export async function loadSession() {
  try {
    session = await get('/session');
  } catch (e) {
    if (e.status !== 401) throw e;
    session = null;
  }
  return session;
}

export async function signIn(user, password) {
  session = await post('/login', { user, password });
  return session;
}

export async function signOut() {
  try { await post('/logout', {}); } finally { session = null; }
}

/** Analysts and admins triage and export; viewers only look. */
export const canTriage = () => session !== null && (session.role === 'analyst' || session.role === 'admin');

/** `?a=1&b=2` from an object or URLSearchParams, empty values left out. */
export function qs(params) {
  const p = new URLSearchParams();
  const entries = params instanceof URLSearchParams ? params.entries() : Object.entries(params);
  for (const [k, v] of entries) if (v !== undefined && v !== null && v !== '') p.append(k, v);
  const s = p.toString();
  return s ? `?${s}` : '';
}
