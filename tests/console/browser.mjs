// browser.mjs - the console in a real browser (tests/e2e/test_console.py
// runs it): Debian's chromium driven by playwright-core, nothing
// downloaded.  Chromium is launched with --no-sandbox because CI runs as
// root, where Chromium's sandbox refuses to start.
//
//   node browser.mjs BASE_URL TOKEN_FILE OUT_DIR SCENARIO_JSON
//
// SCENARIO_JSON names what the test set up (override ids, the account
// with its transfers...).  Prints one JSON line per step
// ({"step", "ok", ...}); the screenshots go to OUT_DIR.  Every wait is
// bounded; the whole run stops itself after RUN_MS.

import { readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const HERE = dirname(fileURLToPath(import.meta.url));
const [base, tokenFile, outDir, scenarioJson] = process.argv.slice(2);
const token = readFileSync(tokenFile, 'utf8').trim();
const sc = JSON.parse(scenarioJson);
const AXE = readFileSync(join(HERE, 'node_modules', 'axe-core', 'axe.min.js'), 'utf8');
const WAIT = { timeout: 10000 };
const RUN_MS = 90000;
setTimeout(() => { out('run', false, { error: 'took longer than ' + RUN_MS + ' ms' }); process.exit(2); }, RUN_MS).unref();

function out(step, ok, more = {}) {
  console.log(JSON.stringify({ step, ok, ...more }));
}

async function api(path, init = {}) {
  const r = await fetch(base + path, { ...init, headers: { Authorization: 'Bearer ' + token, ...(init.headers || {}) } });
  return { status: r.status, body: await r.json() };
}

// Press Tab until the focused element matches sel (at most max times):
// keyboard-only navigation.
async function tabTo(page, sel, max = 80) {
  for (let i = 0; i < max; i++) {
    if (await page.evaluate((s) => document.activeElement && document.activeElement.matches(s), sel)) return i;
    await page.keyboard.press('Tab');
  }
  throw new Error('Tab never reached ' + sel);
}

async function axe(page, name) {
  await page.evaluate(AXE + '\n;0');
  const r = await page.evaluate(() => globalThis.axe.run(document, {
    runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] },
  }));
  const bad = r.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  out('axe ' + name, bad.length === 0, {
    violations: r.violations.map((v) => v.id + ':' + v.impact),
    serious: bad.map((v) => ({ id: v.id, nodes: v.nodes.slice(0, 3).map((n) => n.target.join(' ')) })),
    passes: r.passes.length,
  });
}

async function shot(page, name) {
  const p = join(outDir, name + '.png');
  await page.screenshot({ path: p, fullPage: true });
  return p;
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-dev-shm-usage'],
  timeout: 30000,
});
const problems = [];
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.on('pageerror', (e) => problems.push('pageerror: ' + e.message));
  // Errors in the console, but an API refusal the test asked for (the
  // browser logs every 4xx; the page shows it to the user).
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    const url = (m.location() && m.location().url) || '';
    if (/^Failed to load resource/.test(m.text()) && url.startsWith(base + '/v1/')) return;
    problems.push('console: ' + m.text() + ' ' + url);
  });
  page.on('dialog', (d) => { problems.push('dialog: ' + d.message()); d.dismiss(); });

  // First load: bytes on the wire and the time until the sign-in field
  // has the focus (the modules ran).
  let wire = 0;
  const sized = [];
  page.on('requestfinished', (rq) => sized.push(rq.sizes().then((s) => { wire += s.responseHeadersSize + s.responseBodySize; })));
  // The page's own clock: from the start of the navigation to the
  // moment app.js gave the sign-in field the focus (its mark).
  await page.goto(base + '/console', WAIT);
  await page.waitForSelector('#credential:focus', WAIT);
  const tti = await page.evaluate(() => performance.getEntriesByName('console-ready')[0].startTime);
  await Promise.all(sized);
  out('first load', wire > 0 && wire < 300 * 1024 && tti < 1000, { bytes: wire, interactive_ms: Math.round(tti) });
  await axe(page, 'sign-in');

  // Keyboard only: the field has the focus; type, Enter.
  await page.keyboard.type(token);
  await page.keyboard.press('Enter');
  await page.waitForSelector('#nav:not([hidden])', WAIT);
  const who = await page.textContent('#who-text');
  const stored = await page.evaluate(() => Object.keys(sessionStorage));
  const cookies = await context.cookies();
  out('sign in by keyboard', who.includes('administrator') && cookies.length === 0 &&
    stored.length === 1, { who, cookies: cookies.length, storage: stored });

  // Overview.
  await page.waitForSelector('section[aria-label="Journal and store"] dl', WAIT);
  const ov = await page.textContent('#page');
  out('overview', ov.includes('Accounts') && ov.includes('ready') && ov.includes('Override ' + sc.xss_override),
    { text: ov.slice(0, 400) });
  await shot(page, 'overview');
  await axe(page, 'overview');

  // Client policy: the operator's text shows as text.
  await page.click('nav a[data-page="policy"]');
  await page.waitForSelector('#ov-' + sc.xss_override, WAIT);
  const reason = await page.textContent('#ov-' + sc.xss_override + ' + dl dd');
  const imgs = await page.locator('#page img').count();
  out('operator text is text', reason === sc.xss_reason && imgs === 0, { reason, imgs });
  const blockedRow = await page.$$eval('table', (ts) => {
    const t = ts.find((x) => /refused, per platform/.test(x.caption ? x.caption.textContent : ''));
    return t ? [...t.querySelectorAll('tbody tr td')].map((td) => td.textContent) : null;
  });
  out('blocked users', JSON.stringify(blockedRow) === JSON.stringify(sc.blocked_row), { row: blockedRow });
  const cd1 = await page.textContent('#page .countdown');
  await page.waitForTimeout(1100);
  const cd2 = await page.textContent('#page .countdown');
  out('countdown', cd1 !== cd2 && /min/.test(cd2), { before: cd1, after: cd2 });
  await shot(page, 'policy');
  await axe(page, 'policy');

  // Keyboard only: the end reason, then "End now".
  const endId = sc.end_override;
  await tabTo(page, '#ov-reason-' + endId);
  await page.keyboard.type('fixed by the store release');
  await tabTo(page, 'article[aria-labelledby="ov-' + endId + '"] button[name="end"]', 5);
  await page.keyboard.press('Enter');
  await page.waitForFunction((id) => !document.getElementById('ov-' + id), endId, WAIT);
  const ended = await api('/v1/client-policy/overrides/' + endId);
  out('end override by keyboard', ended.status === 200 && ended.body.active === false &&
    ended.body.ended_early === true && ended.body.end_reason === 'fixed by the store release',
  { api: ended.body });

  // Extend the other one by two hours.
  const extId = sc.xss_override;
  const before = (await api('/v1/client-policy/overrides/' + extId)).body.expires_at;
  await page.fill('#ov-reason-' + extId, 'store review is slow');
  await page.selectOption('#ov-dur-' + extId, '7200');
  await page.click('article[aria-labelledby="ov-' + extId + '"] button[name="extend"]');
  await page.waitForFunction(() => /extended/.test(document.getElementById('status').textContent), null, WAIT);
  const ext = (await api('/v1/client-policy/overrides/' + extId)).body;
  out('extend override', Date.parse(ext.expires_at) > Date.parse(before) && ext.extensions.length === 1,
    { before, after: ext.expires_at });

  // The editor lints: a misspelt key is refused, naming it, and
  // Activate stays off.
  await page.fill('#policy-doc', '{"platforms": {"android": {"min_suported": "4.1.0"}}}');
  await page.click('text=Check impact');
  await page.waitForSelector('#policy-check p.bad', WAIT);
  const lint = await page.textContent('#policy-check');
  const off = await page.isDisabled('text=Activate');
  out('editor lints', /min_suported/.test(lint) && off, { text: lint.slice(0, 300), activate_disabled: off });

  // The editor: a document that blocks the active users; its impact.
  await page.fill('#policy-doc', JSON.stringify(sc.blocking_document));
  await page.click('text=Check impact');
  await page.waitForSelector('#policy-check h3', WAIT);
  const warn = await page.textContent('#policy-check');
  const version = (await api('/v1/client-policy/current')).body.version;
  out('impact warning', /Warning/.test(warn) && version === sc.policy_version, { text: warn.slice(0, 300), version });
  await shot(page, 'policy-impact');

  // Audit: verify a transfer's receipt in the browser.
  await page.click('nav a[data-page="audit"]');
  await page.waitForSelector('#page table tbody tr', WAIT);
  await page.selectOption('select[name="kind"]', 'transfers');
  await page.fill('input[name="id"]', sc.receipt_transfer);
  await page.click('text=Verify receipt');
  await page.waitForSelector('#receipt-verdict', WAIT);
  const verdict = await page.textContent('#receipt-verdict');
  const failed = await page.locator('#receipt-result .bad').count();
  out('verify receipt', verdict.startsWith('Verified') && failed === 0, { verdict });
  const entries = await page.$$eval('#page table tbody tr td:first-child', (tds) => tds.map((t) => t.textContent));
  const size = Number((await api('/v1/audit/head')).body.size);
  const want = Array.from({ length: Math.min(10, size) }, (_, i) => String(size - 1 - i));
  out('audit entries', JSON.stringify(entries) === JSON.stringify(want), { rows: entries, size });
  await shot(page, 'audit');
  await axe(page, 'audit');

  // Accounts and transfers: page through the account's transfers.
  await page.click('nav a[data-page="ledger"]');
  await page.fill('form[aria-label="Find an account"] input', sc.account);
  await page.click('text=Find account');
  await page.waitForSelector('#page-number', WAIT);
  const ids = [];
  for (let p = 0; p < 10; p++) {
    const rows = await page.$$eval('#ledger-result table tbody tr td:first-child', (tds) => tds.map((t) => t.textContent));
    ids.push(...rows);
    const next = page.locator('text=Next page');
    if (await next.isDisabled()) break;
    const n = await page.textContent('#page-number');
    await next.click();
    await page.waitForFunction((old) => document.getElementById('page-number').textContent !== old, n, WAIT);
  }
  out('page through transfers', JSON.stringify(ids) === JSON.stringify(sc.transfer_ids), { ids });
  await page.click('text=Previous page');
  await page.waitForFunction(() => /Page 2/.test(document.getElementById('page-number').textContent), null, WAIT);
  await shot(page, 'ledger');
  await axe(page, 'ledger');

  // A phone's width: nothing wider than the screen.
  await page.setViewportSize({ width: 375, height: 800 });
  await page.click('nav a[data-page="overview"]');
  await page.waitForSelector('section[aria-label="Journal and store"] dl', WAIT);
  const wide = await page.evaluate(() => document.documentElement.scrollWidth);
  await shot(page, 'overview-phone');
  out('phone width', wide <= 375, { scroll_width: wide });

  // A credential that reads accounts only: the console offers the
  // overview, the ledger page with the account lookup alone, and the
  // audit page with an account's receipt check alone (no entries, which
  // need audit:read); never the client policy, even asked by its URL.  (Its /v1/session answer is replaced here: the
  // console signs in with bearer credentials, and the administrator's
  // is the one this test has.)
  const narrow = await browser.newContext();
  const np = await narrow.newPage();
  await np.route('**/v1/session', (r) => r.fulfill({ status: 200, contentType: 'application/json',
    body: JSON.stringify({ credential: 'bearer', principal: 'p', root: 'p', root_admin: false, role: null,
      right: { ops: ['accounts:read'], accounts: [sc.account] }, expires: null }) }));
  await np.goto(base + '/console', WAIT);
  await np.fill('#credential', token);
  await np.press('#credential', 'Enter');
  await np.waitForSelector('#nav:not([hidden])', WAIT);
  const offered = await np.$$eval('#nav li', (lis) => lis.filter((l) => !l.hidden).map((l) => l.textContent.trim()));
  await np.goto(base + '/console#policy', WAIT);
  await np.waitForSelector('#page h1', WAIT);
  const shown = await np.textContent('#page h1');
  await np.click('nav a[data-page="ledger"]');
  await np.waitForSelector('form[aria-label="Find an account"]', WAIT);
  const forms = await np.$$eval('#page form', (fs) => fs.map((f) => f.getAttribute('aria-label')));
  await np.click('nav a[data-page="audit"]');
  await np.waitForSelector('select[name="kind"]', WAIT);
  const kinds = await np.$$eval('select[name="kind"] option', (os) => os.map((o) => o.textContent));
  const heads = await np.$$eval('#page h2', (hs) => hs.map((x) => x.textContent));
  out('pages follow the right', JSON.stringify(offered) === '["Overview","Audit trail","Accounts and transfers"]' &&
    shown === 'Overview' && JSON.stringify(forms) === '["Find an account"]' &&
    JSON.stringify(kinds) === '["Account"]' && JSON.stringify(heads) === '["Verify a receipt"]',
  { offered, shown, forms, kinds, heads });
  await narrow.close();

  out('no page errors', problems.length === 0, { problems });
  out('screenshots', true, { dir: outDir });
} catch (e) {
  out('run', false, { error: String(e && e.stack || e), problems });
} finally {
  await browser.close();
}
