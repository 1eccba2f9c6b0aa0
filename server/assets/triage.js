// Triage actions shared by the events table and the event detail: mark a false positive
// (a suppression rule with a chosen scope), hide a trail, set an event's status. All of
// it is stored by the server and applies to every user at once. Only shown to analysts
// and admins (the server refuses viewers anyway).

import { post, api } from './api.js';
import { h } from './dom.js';
import { reconnectLive } from './app.js';

export const STATUSES = ['new', 'investigating', 'resolved'];

/** The scopes a false positive may have, for event `ev`. */
function scopes(ev) {
  return [
    { id: 'trail', label: `This trail (${ev.trail}) from any source`, body: { trail: ev.trail } },
    { id: 'trail-src', label: `This trail from this source (${ev.src})`, body: { trail: ev.trail, src: ev.src } },
    { id: 'src', label: `Everything from this source (${ev.src})`, body: { src: ev.src } },
  ];
}

/** A modal dialog asking for the scope and a comment; `done()` after the rule is stored. */
export function falsePositive(ev, done) {
  const options = scopes(ev);
  const err = h('p', { class: 'field-error', role: 'alert' });
  const comment = h('input', { id: 'fp-comment', name: 'comment', maxlength: 500, placeholder: 'Why is this a false positive?' });
  const dialog = h('dialog', { class: 'dialog', 'aria-labelledby': 'fp-title' });
  const form = h('form', {
    method: 'dialog',
    onsubmit: async (e) => {
      e.preventDefault();
      const chosen = options.find((o) => form.elements.scope.value === o.id);
      try {
        await post('/suppressions', { ...chosen.body, comment: comment.value });
        dialog.close();
        dialog.remove();
        reconnectLive();
        done();
      } catch (x) {
        err.textContent = x.message;
      }
    },
  },
  h('h2', { id: 'fp-title' }, 'Mark as false positive'),
  h('p', {}, 'Matching events are hidden from every user’s overview, table and live view (not deleted; the rule can be removed).'),
  h('fieldset', {}, h('legend', {}, 'Suppress'),
    options.map((o, i) => h('div', { class: 'radio' },
      h('input', { type: 'radio', name: 'scope', id: `fp-${o.id}`, value: o.id, checked: i === 0 }),
      h('label', { for: `fp-${o.id}` }, o.label)))),
  h('label', { for: 'fp-comment' }, 'Comment'), comment, err,
  h('div', { class: 'actions' },
    h('button', { type: 'submit', class: 'primary', id: 'fp-confirm' }, 'Suppress'),
    h('button', { type: 'button', onclick: () => { dialog.close(); dialog.remove(); } }, 'Cancel')));
  dialog.append(form);
  dialog.addEventListener('cancel', () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
}

export async function hideTrail(trail) {
  await post('/hidden-trails', { trail });
  reconnectLive();
}

export async function unhideTrail(trail) {
  await api('DELETE', `/hidden-trails?trail=${encodeURIComponent(trail)}`);
  reconnectLive();
}

export async function deleteSuppression(id) {
  await api('DELETE', `/suppressions/${id}`);
  reconnectLive();
}

/** Set the status and/or add a note; returns the event's triage. */
export function update(id, body) {
  return post(`/events/${id}/triage`, body);
}

/** A status <select> that saves on change. */
export function statusSelect(id, current, label, onSaved) {
  const sel = h('select', { 'aria-label': label, class: 'status-select', 'data-event': id },
    STATUSES.map((st) => h('option', { value: st, selected: st === current }, st)));
  sel.addEventListener('change', async () => {
    sel.disabled = true;
    try {
      const t = await update(id, { status: sel.value });
      onSaved?.(t);
    } catch (x) {
      sel.value = current;
      alert(`The status was not saved: ${x.message}`);
    } finally {
      sel.disabled = false;
    }
  });
  return sel;
}
