// audit.js - the audit trail for people: the newest entries decoded
// (GET /v1/audit/entries/{i}?view=decoded), a page at a time, and a
// "verify this receipt" form that checks a transfer's or an account's
// receipt in the browser against the log's key (verify.js).

import { get } from './api.js';
import { h, fill, table, fields } from './dom.js';
import { verifyReceipt } from './verify.js';

export const TITLE = 'Audit trail';
const PAGE = 10;

function entriesView(ctx) {
  const box = h('div', { 'aria-live': 'polite' });
  let top = null; // the newest index of the page shown
  let size = 0n;
  async function show(from) {
    const idx = [];
    for (let i = from; i >= 0n && idx.length < PAGE; i--) idx.push(i);
    const rows = await Promise.all(idx.map((i) => get('/v1/audit/entries/' + i + '?view=decoded')
      .then((e) => {
        const d = e.decoded || {};
        const who = d.author ? d.author.name || d.author.thumbprint : '';
        return [String(e.index), d.time || '', d.command || d.type || e.type, who || '',
          d.error ? h('span', { class: 'bad' }, d.error) : d.summary || ''];
      }).catch((err) => [String(i), '', '', '', h('span', { class: 'bad' }, err.message)])));
    top = from;
    const older = h('button', { type: 'button', class: 'secondary', disabled: from < BigInt(PAGE),
      onclick: () => show(from - BigInt(PAGE)) }, 'Older');
    const newer = h('button', { type: 'button', class: 'secondary', disabled: from + 1n >= size,
      onclick: () => show(from + BigInt(PAGE) < size ? from + BigInt(PAGE) : size - 1n) }, 'Newer');
    fill(box, table('Entries ' + from + ' and below, newest first', ['Index', 'Time', 'What', 'Author', 'Summary'], rows),
      h('div', { class: 'pager' }, newer, older));
  }
  async function load() {
    const head = await get('/v1/audit/head');
    size = BigInt(head.size);
    if (size === 0n) return fill(box, h('p', { class: 'muted' }, 'The log is empty.'));
    return show(size - 1n);
  }
  return { box, load, get top() { return top; } };
}

function receiptForm(ctx) {
  const out = h('div', { 'aria-live': 'polite', id: 'receipt-result' });
  const kinds = [];
  if (ctx.can('transfers:read')) kinds.push(['transfers', 'Transfer']);
  if (ctx.can('accounts:read')) kinds.push(['accounts', 'Account']);
  const f = h('form', { 'aria-labelledby': 'verify-title' },
    h('label', null, 'Record', h('select', { name: 'kind' }, kinds.map(([v, t]) => h('option', { value: v }, t)))),
    h('label', null, 'Id', h('input', { name: 'id', required: true, inputmode: 'numeric', pattern: '[0-9]+' })),
    h('button', { type: 'submit' }, 'Verify receipt'));
  f.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const kind = f.elements.kind.value;
    const id = f.elements.id.value.trim();
    fill(out, h('p', null, 'Checking…'));
    try {
      const [r, keys] = await Promise.all([get('/v1/' + kind + '/' + id + '/receipt'), get('/v1/audit/key')]);
      const v = await verifyReceipt(r, keys);
      if (v.id !== null) v.checks.push({ what: 'the proven record is ' + id, ok: v.id === id });
      const ok = v.checks.every((c) => c.ok);
      fill(out, h('p', { class: ok ? 'ok' : 'bad', id: 'receipt-verdict' },
        ok ? 'Verified: entry ' + r.index + ' is in the signed log of ' + r.size + ' entries.'
          : 'NOT verified: a check failed.'),
      h('ul', { class: 'checks' }, v.checks.map((c) =>
        h('li', null, h('span', { class: c.ok ? 'ok' : 'bad' }, c.ok ? 'passed' : 'FAILED'), ' ', c.what))),
      fields([['Entry', r.index], ['Log size', r.size], ['Root', h('code', null, r.root)]]));
    } catch (e) {
      fill(out, h('p', { class: 'bad' }, e.message));
    }
  });
  return [h('h2', { id: 'verify-title' }, 'Verify a receipt'),
    h('p', { class: 'muted' }, 'The receipt is checked here, in the browser, against the log\'s public key: the signed checkpoint, the entry\'s leaf and its inclusion proof.'),
    f, out];
}

export async function start(ctx) {
  const parts = [h('h1', null, 'Audit trail')];
  let view = null;
  if (ctx.can('transfers:read') || ctx.can('accounts:read')) parts.push(receiptForm(ctx));
  if (ctx.can('audit:read')) {
    view = entriesView(ctx);
    parts.push(h('h2', null, 'Entries'), view.box);
  }
  fill(ctx.root, parts);
  if (view) await view.load().catch((e) => fill(view.box, h('p', { class: 'bad' }, e.message)));
  return {};
}
