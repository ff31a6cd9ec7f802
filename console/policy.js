// policy.js - the client-version policy: the current document, the
// history with the diff of each version against the one before, the
// overrides with a countdown and one-click end or extend (with a reason),
// a form to open one, and an editor that checks a new document (lint
// and impact, as a dry run) before it is activated.  The actions are
// offered only with policy:admin.

import { api, get } from './api.js';
import { h, fill, fields, table, countdown } from './dom.js';

export const TITLE = 'Client policy';

const DURATIONS = [['15 min', 900], ['1 h', 3600], ['2 h', 7200], ['8 h', 28800], ['1 day', 86400]];

function durationSelect(id) {
  return h('select', { id, name: 'duration' },
    DURATIONS.map(([t, s]) => h('option', { value: s, selected: s === 3600 }, t)));
}

function msgText(m) {
  if (!m) return null;
  return typeof m === 'object' ? m.default : String(m);
}

function overrideCard(ctx, o, reload) {
  const left = h('span', { class: 'countdown', 'data-expires': o.expires_at, role: 'timer' },
    countdown(Date.parse(o.expires_at)));
  const card = h('article', { class: 'override', 'aria-labelledby': 'ov-' + o.id },
    h('h3', { id: 'ov-' + o.id }, 'Override ' + o.id + ': ' + o.platform + ' ' + o.range + ' → ' + o.mode),
    fields([
      ['Reason', o.reason],
      ['Message to users', msgText(o.message)],
      ['Opened', o.opened_at + ' by ' + o.author],
      ['Ends', o.expires_at],
      ['Time left', left],
      ['Extensions', String((o.extensions || []).length)],
    ]));
  if (ctx.can('policy:admin')) {
    const rid = 'ov-reason-' + o.id;
    const did = 'ov-dur-' + o.id;
    const reason = h('input', { id: rid, name: 'reason', maxlength: 207, required: true });
    const form = h('form', { 'aria-label': 'End or extend override ' + o.id },
      h('label', { for: rid }, 'Reason', reason),
      h('label', { for: did }, 'Extend by', durationSelect(did)),
      h('button', { type: 'submit', name: 'extend', class: 'secondary' }, 'Extend'),
      h('button', { type: 'submit', name: 'end', class: 'danger' }, 'End now'));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const which = ev.submitter ? ev.submitter.name : 'end';
      if (!reason.value.trim()) {
        ctx.say('Give a reason first.');
        reason.focus();
        return;
      }
      try {
        if (which === 'extend') {
          const r = await api('POST', '/v1/client-policy/overrides/' + o.id + '/extend',
            { duration_s: Number(form.elements.duration.value), reason: reason.value });
          ctx.say('Override ' + o.id + ' extended until ' + r.expires_at + '.');
        } else {
          await api('DELETE', '/v1/client-policy/overrides/' + o.id + '?reason=' +
            encodeURIComponent(reason.value));
          ctx.say('Override ' + o.id + ' ended.');
        }
        await reload();
        // The card is gone or new: the keyboard goes on from the list.
        ctx.root.querySelector('#overrides-title').focus();
      } catch (e) {
        ctx.say('Refused: ' + e.message);
      }
    });
    card.append(form);
  }
  return card;
}

function openForm(ctx, reload) {
  const f = h('form', { class: 'stack', 'aria-labelledby': 'open-title' },
    h('label', null, 'Platform', h('input', { name: 'platform', required: true })),
    h('label', null, 'Version range', h('input', { name: 'range', required: true, placeholder: '3.x' })),
    h('label', null, 'Mode', h('select', { name: 'mode' },
      h('option', { value: 'compat' }, 'compat: serve in compatibility mode'),
      h('option', { value: 'allow' }, 'allow: serve as supported'))),
    h('label', null, 'For', durationSelect('open-duration')),
    h('label', null, 'Reason (for operators)', h('input', { name: 'reason', required: true, maxlength: 256 })),
    h('label', null, 'Message to users (optional)', h('input', { name: 'message', maxlength: 2048 })),
    h('button', { type: 'submit' }, 'Open override'));
  f.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const e = f.elements;
    const body = { platform: e.platform.value, range: e.range.value, mode: e.mode.value,
      duration_s: Number(e.duration.value), reason: e.reason.value };
    if (e.message.value.trim()) body.message = { default: e.message.value };
    try {
      const o = await api('POST', '/v1/client-policy/overrides', body);
      ctx.say('Override ' + o.id + ' opened until ' + o.expires_at + '.');
      f.reset();
      await reload();
    } catch (err) {
      ctx.say('Refused: ' + err.message);
    }
  });
  return [h('h3', { id: 'open-title' }, 'Open an override'), f];
}

function changesTable(caption, changes) {
  const show = (v) => (v === null || v === undefined ? '—' : JSON.stringify(v));
  if (!changes || !changes.length) return h('p', { class: 'muted' }, 'No change.');
  return table(caption, ['Path', 'Before', 'After'],
    changes.map((c) => [h('code', null, c.path), show(c.old), show(c.new)]));
}

function history(ctx, v) {
  const out = h('div', { 'aria-live': 'polite' });
  const rows = v.versions.map((x) => [
    String(x.version), x.set_at, x.author, x.reason || '',
    x.version > 1 ? h('button', { type: 'button', class: 'secondary', onclick: async () => {
      try {
        const d = await get('/v1/client-policy/diff?from=' + (x.version - 1) + '&to=' + x.version);
        fill(out, h('h3', null, 'Version ' + (x.version - 1) + ' → ' + x.version),
          changesTable('Changes of version ' + x.version, d.changes));
      } catch (e) { ctx.say(e.message); }
    } }, 'Diff with ' + (x.version - 1)) : '',
  ]);
  return [table('Versions, newest first', ['Version', 'Set at', 'By', 'Reason', 'Diff'], rows), out];
}

function editor(ctx, doc, reload) {
  const text = h('textarea', { id: 'policy-doc', name: 'document', spellcheck: 'false' },
    JSON.stringify(doc || {}, null, 2));
  const reason = h('input', { id: 'policy-reason', name: 'reason', required: true, maxlength: 256 });
  const out = h('div', { 'aria-live': 'polite', id: 'policy-check' });
  let checked = null; // the text the impact shown is of
  const activate = h('button', { type: 'button', disabled: true }, 'Activate');
  const check = h('button', { type: 'button', class: 'secondary' }, 'Check impact');
  check.addEventListener('click', async () => {
    fill(out, h('p', { class: 'muted' }, 'Checking…'));
    activate.disabled = true;
    try {
      const r = await api('PUT', '/v1/client-policy?dry_run=true&reason=' +
        encodeURIComponent(reason.value || 'dry run'), text.value);
      const im = r.impact || {};
      const rows = (im.platforms || []).map((p) => [p.platform, String(p.newly_blocked ?? p.blocked ?? ''),
        String(p.actives ?? ''), p.share === undefined ? '' : (100 * p.share).toFixed(2) + ' %']);
      fill(out, h('h3', null, 'Impact'),
        h('p', { class: im.over_threshold ? 'bad' : 'ok' }, im.over_threshold
          ? 'Warning: this blocks more active users than the threshold (' + (100 * im.threshold).toFixed(1) + ' %).'
          : 'Within the threshold.'),
        im.note ? h('p', { class: 'muted' }, im.note) : null,
        rows.length ? table('Users newly blocked per platform', ['Platform', 'Blocked', 'Active', 'Share'], rows) : null,
        changesTable('Changes against the current document', r.changes));
      checked = text.value;
      activate.disabled = false;
    } catch (e) {
      fill(out, h('p', { class: 'bad' }, 'Not valid: ' + e.message +
        (e.problem.field ? ' (field ' + e.problem.field + ')' : '')));
      activate.disabled = true;
    }
  });
  text.addEventListener('input', () => { activate.disabled = text.value !== checked; });
  activate.addEventListener('click', async () => {
    if (!reason.value.trim()) { ctx.say('Give a reason first.'); reason.focus(); return; }
    try {
      const r = await api('PUT', '/v1/client-policy?accept_impact=true&reason=' +
        encodeURIComponent(reason.value), text.value);
      ctx.say('Version ' + r.version + ': ' + r.status + '.');
      await reload();
    } catch (e) { ctx.say('Refused: ' + e.message); }
  });
  return [h('h2', null, 'Edit'),
    h('label', { for: 'policy-doc' }, 'Document (JSON)'), text,
    h('label', { for: 'policy-reason' }, 'Reason', reason),
    h('div', { class: 'pager' }, check, activate), out];
}

// Who the gate refuses now, per platform of the document (the users it
// refused in the last days; GET /v1/client-policy/impact).
async function blocked(platforms) {
  const rows = await Promise.all(Object.entries(platforms).map(([p, d]) =>
    get('/v1/client-policy/impact?platform=' + encodeURIComponent(p) + '&min_supported=' +
      encodeURIComponent(d.min_supported || '0.0.0'))
      .then((im) => {
        const b = im.blocked_users || {};
        return [p, String(im.actives ?? '—'), String(b.verified ?? '—'), String(b.unverified ?? '—'),
          String(b.window_days ?? '')];
      })
      .catch((e) => [p, h('span', { class: 'bad' }, e.message), '', '', ''])));
  return [h('h2', null, 'Blocked users'),
    table('Users the gate refused, per platform', ['Platform', 'Active users (7 days)',
      'Blocked, verified', 'Blocked, unverified', 'Window (days)'], rows)];
}

export async function start(ctx) {
  let tick = null;
  async function load() {
    const parts = [h('h1', null, 'Client policy')];
    let cur = null;
    try {
      cur = await get('/v1/client-policy/current');
      parts.push(h('h2', null, 'Current: version ' + cur.version),
        fields([['Set at', cur.set_at], ['By', cur.author], ['Reason', cur.reason]]),
        h('details', null, h('summary', null, 'Document'), h('pre', null, JSON.stringify(cur.document, null, 2))));
    } catch (e) {
      parts.push(h('p', { class: 'muted' }, e.status === 404 ? 'No policy is set.' : e.message));
    }
    if (cur && cur.document && cur.document.platforms) parts.push(await blocked(cur.document.platforms));
    const [ov, vs] = await Promise.all([
      get('/v1/client-policy/overrides').catch((e) => ({ error: e })),
      get('/v1/client-policy/versions').catch((e) => ({ error: e })),
    ]);
    parts.push(h('h2', { id: 'overrides-title', tabindex: -1 }, 'Overrides in force'));
    if (ov.error) parts.push(h('p', { class: 'bad' }, ov.error.message));
    else if (!ov.overrides.length) parts.push(h('p', { class: 'muted' }, 'None.'));
    else parts.push(ov.overrides.map((o) => overrideCard(ctx, o, load)));
    if (ctx.can('policy:admin') && cur) parts.push(openForm(ctx, load));
    parts.push(h('h2', null, 'History'));
    if (vs.error) parts.push(h('p', { class: 'bad' }, vs.error.message));
    else parts.push(history(ctx, vs));
    if (ctx.can('policy:admin')) parts.push(editor(ctx, cur && cur.document, load));
    fill(ctx.root, parts);
  }
  await load();
  tick = setInterval(() => {
    for (const e of ctx.root.querySelectorAll('.countdown[data-expires]'))
      e.textContent = countdown(Date.parse(e.dataset.expires));
  }, 1000);
  return { stop() { clearInterval(tick); } };
}
