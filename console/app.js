// app.js - the console's shell: sign-in, the "what may I do" question
// (GET /v1/session), the page navigation (#overview, #policy, #audit,
// #ledger) and the status line.  A page is offered only when the
// credential's right covers what it reads, and each page offers only the
// actions the right allows (docs/console.md).

import { api, credential, signIn, signOut } from './api.js';
import { fill } from './dom.js';
import * as overview from './overview.js';
import * as policy from './policy.js';
import * as audit from './audit.js';
import * as ledger from './ledger.js';

// Each page: its module and the operations any one of which shows it.
const PAGES = {
  overview: { mod: overview, needs: [] },
  policy: { mod: policy, needs: ['policy:read'] },
  audit: { mod: audit, needs: ['audit:read', 'transfers:read', 'accounts:read'] },
  ledger: { mod: ledger, needs: ['accounts:read', 'transfers:read'] },
};

const $ = (id) => document.getElementById(id);
let session = null;
let current = null; // the page shown: its stop() is called on leaving

// The session's rights: can('policy:admin').
function makeCan(s) {
  const ops = (s && s.right && s.right.ops) || [];
  return (op) => ops.includes('*') || ops.includes(op);
}

export function say(text) {
  $('status').textContent = text;
}

function allowed(name, can) {
  const p = PAGES[name];
  return p && (p.needs.length === 0 || p.needs.some(can));
}

async function show() {
  if (current && current.stop) current.stop();
  current = null;
  const can = makeCan(session);
  let name = location.hash.replace(/^#/, '').split('/')[0] || 'overview';
  if (!allowed(name, can)) name = 'overview';
  for (const a of document.querySelectorAll('#nav a')) {
    const p = a.dataset.page;
    a.parentElement.hidden = !allowed(p, can);
    if (p === name) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  say(''); // a message of the page before is not about this one
  const root = $('page');
  fill(root);
  root.hidden = false;
  const ctx = { root, can, session, say };
  current = await PAGES[name].mod.start(ctx);
  document.title = (PAGES[name].mod.TITLE || name) + ' · tpwallet console';
  const h1 = root.querySelector('h1');
  if (h1) {
    h1.tabIndex = -1;
    h1.focus();
  }
}

async function enter() {
  try {
    session = await api('GET', '/v1/session');
  } catch (e) {
    signOut();
    session = null;
    $('sign-in').hidden = false;
    $('nav').hidden = $('who').hidden = $('page').hidden = true;
    say(e.status === 401 ? 'The server refused this credential (' + e.message + ').'
      : 'Cannot reach the server: ' + e.message);
    $('credential').focus();
    return;
  }
  $('sign-in').hidden = true;
  $('nav').hidden = $('who').hidden = false;
  $('who-text').textContent = 'Signed in: ' + (session.credential === 'bearer'
    ? 'administrator' : session.principal.slice(0, 12) + '…') +
    (session.role ? ' (' + session.role + ')' : '');
  say('');
  await show();
}

function init() {
  $('sign-in-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const v = $('credential').value;
    $('credential').value = '';
    if (!v.trim()) return;
    signIn(v);
    enter();
  });
  $('sign-out').addEventListener('click', () => {
    signOut();
    location.hash = '';
    location.reload();
  });
  window.addEventListener('hashchange', () => { if (session) show(); });
  if (credential()) enter();
  else $('credential').focus();
  // When the console became usable (docs/benchmarks.md reads it).
  performance.mark('console-ready');
}

init();
