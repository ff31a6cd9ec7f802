// ledger.js - accounts and transfers: look one up by id; an account's
// transfers a page at a time (GET /v1/accounts/{id}/transfers, by
// timestamp: the next page starts after the last one shown).

import { get } from './api.js';
import { h, fill, fields, table, nsTime } from './dom.js';

export const TITLE = 'Accounts and transfers';
const PAGE = 10;

function transferRows(list) {
  return list.map((t) => [t.id, t.debit_account_id, t.credit_account_id, t.amount,
    String(t.ledger), String(t.code), (t.flags || []).join(' '), nsTime(t.timestamp)]);
}

function accountView(ctx, a) {
  const box = h('div', { 'aria-live': 'polite' });
  const starts = ['0']; // timestamp_min of each page seen
  async function page(i) {
    const q = '?limit=' + (PAGE + 1) + '&timestamp_min=' + starts[i];
    const list = await get('/v1/accounts/' + a.id + '/transfers' + q);
    const shown = list.slice(0, PAGE);
    if (list.length > PAGE) starts[i + 1] = (BigInt(shown[PAGE - 1].timestamp) + 1n).toString();
    const prev = h('button', { type: 'button', class: 'secondary', disabled: i === 0,
      onclick: () => page(i - 1) }, 'Previous page');
    const next = h('button', { type: 'button', class: 'secondary', disabled: list.length <= PAGE,
      onclick: () => page(i + 1) }, 'Next page');
    fill(box, shown.length
      ? table('Transfers of account ' + a.id + ', page ' + (i + 1),
        ['Id', 'Debit', 'Credit', 'Amount', 'Ledger', 'Code', 'Flags', 'Time'], transferRows(shown))
      : h('p', { class: 'muted' }, 'No transfers.'),
    h('div', { class: 'pager' }, prev, h('span', { id: 'page-number' }, 'Page ' + (i + 1)), next));
  }
  return { box, page };
}

// A "find by id" form: show(id) fills out, or its refusal does.
function lookup(out, what, show) {
  const f = h('form', { 'aria-label': 'Find ' + what },
    h('label', null, (what === 'an account' ? 'Account' : 'Transfer') + ' id',
      h('input', { name: 'id', required: true, inputmode: 'numeric', pattern: '[0-9]+' })),
    h('button', { type: 'submit' }, 'Find ' + what.split(' ')[1]));
  f.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      await show(f.elements.id.value.trim());
    } catch (e) {
      fill(out, h('p', { class: 'bad' }, e.message));
    }
  });
  return f;
}

export async function start(ctx) {
  const out = h('div', { id: 'ledger-result' });
  const parts = [h('h1', null, 'Accounts and transfers')];
  if (ctx.can('accounts:read')) {
    parts.push(lookup(out, 'an account', async (id) => {
      const a = await get('/v1/accounts/' + id);
      const v = accountView(ctx, a);
      fill(out, h('h2', null, 'Account ' + a.id),
        fields([['Ledger', String(a.ledger)], ['Code', String(a.code)],
          ['Debits posted', a.debits_posted], ['Credits posted', a.credits_posted],
          ['Debits pending', a.debits_pending], ['Credits pending', a.credits_pending],
          ['Flags', (a.flags || []).join(' ')], ['Created', nsTime(a.timestamp)]]),
        h('h3', null, 'Transfers'), v.box);
      await v.page(0);
    }));
  }
  if (ctx.can('transfers:read')) {
    parts.push(lookup(out, 'a transfer', async (id) => {
      const t = await get('/v1/transfers/' + id);
      fill(out, h('h2', null, 'Transfer ' + t.id),
        fields([['Debit account', t.debit_account_id], ['Credit account', t.credit_account_id],
          ['Amount', t.amount], ['Ledger', String(t.ledger)], ['Code', String(t.code)],
          ['Flags', (t.flags || []).join(' ')], ['Pending status', t.pending_status],
          ['Audit entry', t.entry_index], ['Time', nsTime(t.timestamp)]]));
    }));
  }
  parts.push(out);
  fill(ctx.root, parts);
  return {};
}
