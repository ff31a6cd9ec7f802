// overview.js - the server at a glance, from the routes any operator
// already scrapes: /readyz (role), /metrics (journal, store, requests),
// the audit head, the next things to expire (overrides in force, signing
// keys).  Refreshed every REFRESH_MS while shown; each refresh is one
// request per section the credential may read.

import { get } from './api.js';
import { h, fill, fields, table, bytes, countdown } from './dom.js';

export const TITLE = 'Overview';
const REFRESH_MS = 10000;

// Prometheus text: {name: sum of its samples} for the names wanted.
export function metricSums(text, names) {
  const out = {};
  for (const line of text.split('\n')) {
    if (!line || line[0] === '#') continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (m && names.includes(m[1])) out[m[1]] = (out[m[1]] || 0) + Number(m[3]);
  }
  return out;
}

const METRICS = [
  ['tpwallet_accounts', 'Accounts', String],
  ['tpwallet_transfers', 'Transfers', String],
  ['tpwallet_journal_bytes', 'Journal', bytes],
  ['tpwallet_journal_segments', 'Journal segments', String],
  ['tpwallet_journal_archived_segments_total', 'Segments archived', String],
  ['tpwallet_ledger_memory_bytes', 'Ledger memory', bytes],
  ['tpwallet_http_requests_total', 'HTTP requests served', String],
  ['tpwallet_client_policy_version', 'Client policy version', String],
  ['tpwallet_client_policy_overrides_active', 'Overrides in force', String],
];

// Throughput and mean latency since the refresh before (two scrapes).
const RATES = ['tpwallet_http_request_duration_seconds_sum',
  'tpwallet_http_request_duration_seconds_count'];
function rates(ctx, m) {
  const now = { t: performance.now(), n: m[RATES[1]], s: m[RATES[0]] };
  const was = ctx.lastScrape;
  ctx.lastScrape = now;
  if (!was || now.n <= was.n) return [['Requests per second', 'after the next refresh']];
  const dn = now.n - was.n;
  return [['Requests per second', (dn / ((now.t - was.t) / 1000)).toFixed(1)],
    ['Mean latency', ((now.s - was.s) / dn * 1000).toFixed(2) + ' ms']];
}

async function section(title, fn) {
  try {
    return h('section', { class: 'card', 'aria-label': title }, h('h2', null, title), await fn());
  } catch (e) {
    return h('section', { class: 'card', 'aria-label': title }, h('h2', null, title),
      h('p', { class: 'bad' }, e.message));
  }
}

async function render(ctx, box) {
  const { can } = ctx;
  const parts = [
    section('Server', async () => {
      const r = await get('/readyz');
      return fields([['Status', r.status], ['Role', r.role || 'single node'],
        r.role && ['Applied seq', r.applied_seq], r.role && ['Writer', r.writer]].filter(Boolean));
    }),
    section('Journal and store', async () => {
      const m = metricSums(await get('/metrics'), METRICS.map((x) => x[0]).concat(RATES));
      return fields(METRICS.filter(([n]) => n in m).map(([n, t, f]) => [t, f(m[n])])
        .concat(rates(ctx, m)));
    }),
  ];
  if (can('audit:read')) {
    parts.push(section('Audit log', async () => {
      const a = await get('/v1/audit/head');
      return fields([['Entries', a.size], ['Root', h('code', null, a.root)]]);
    }));
  }
  if (can('policy:read')) {
    parts.push(section('Probes', async () => {
      const p = await get('/v1/probes');
      if (!p.probes.length) return h('p', { class: 'muted' }, 'No probe is configured (serve --probe).');
      return table('What the gateway answers each probed client', ['Probe', 'Verdict', 'Server says', 'Agree'],
        p.probes.map((x) => [x.name, x.verdict ?? 'not run yet', x.tpwallet_verdict ?? '',
          x.disagreement ? h('span', { class: 'bad' }, 'no') : 'yes']));
    }));
  }
  const soon = [];
  if (can('policy:read')) {
    soon.push(get('/v1/client-policy/overrides').then((o) => o.overrides.map((x) =>
      [Date.parse(x.expires_at), 'Override ' + x.id + ' (' + x.platform + ' ' + x.range + ')',
        x.expires_at])));
  }
  if (can('keys:read')) {
    soon.push(get('/v1/keys').then((k) => k.keys.flatMap((x) => [
      x.retire_at && [Date.parse(x.retire_at), 'Signing key ' + x.kid.slice(0, 8) + '… retires', x.retire_at],
      x.expires_at && [Date.parse(x.expires_at), 'Signing key ' + x.kid.slice(0, 8) + '… expires', x.expires_at],
    ].filter(Boolean))));
  }
  if (soon.length) {
    parts.push(section('Next to expire', async () => {
      const all = (await Promise.all(soon)).flat().filter((x) => x[0] > Date.now())
        .sort((a, b) => a[0] - b[0]).slice(0, 8);
      if (!all.length) return h('p', { class: 'muted' }, 'Nothing expires.');
      return table('What expires next, soonest first', ['What', 'When', 'In'],
        all.map(([t, what, when]) => [what, when, countdown(t)]));
    }));
  }
  const done = await Promise.all(parts);
  fill(box, done);
}

export async function start(ctx) {
  const box = h('div', { class: 'cards' });
  const stamp = h('p', { class: 'muted' });
  fill(ctx.root, h('h1', null, 'Overview'),
    h('div', { class: 'pager' },
      h('button', { type: 'button', class: 'secondary', onclick: () => refresh() }, 'Refresh'),
      stamp),
    box);
  let timer = null;
  let stopped = false;
  async function refresh() {
    clearTimeout(timer);
    await render(ctx, box);
    stamp.textContent = 'Updated ' + new Date().toLocaleTimeString();
    if (!stopped) timer = setTimeout(refresh, REFRESH_MS);
  }
  await refresh();
  return { stop() { stopped = true; clearTimeout(timer); } };
}
