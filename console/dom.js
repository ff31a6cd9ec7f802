// dom.js - building the page from data without ever parsing data as
// HTML: every text goes in through a text node (textContent), never
// innerHTML, so a reason or a name like <img src=x onerror=...> is shown
// as the characters it is.

// h('tag', {attr: value, onclick: fn}, child...): an element; children
// are nodes or text (null, undefined and false are skipped).
export function h(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k === 'class') e.className = v;
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  append(e, kids);
  return e;
}

export function append(e, kids) {
  for (const c of kids.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

// Replace e's children.
export function fill(e, ...kids) {
  e.replaceChildren();
  return append(e, kids);
}

// A <dl> of [term, value] pairs (values: text or nodes).
export function fields(pairs, cls = 'fields') {
  return h('dl', { class: cls },
    pairs.map(([t, v]) => [h('dt', null, t), h('dd', null, v ?? '—')]));
}

// A table: headers, rows of cells, a caption for screen readers.
export function table(caption, headers, rows) {
  return h('div', { class: 'table-wrap' },
    h('table', null, h('caption', { class: 'muted' }, caption),
      h('thead', null, h('tr', null, headers.map((x) => h('th', { scope: 'col' }, x)))),
      h('tbody', null, rows.map((r) => h('tr', null, r.map((c) => h('td', null, c)))))));
}

// "1 h 02 min 05 s" until the date (ms), or "ended".
export function countdown(untilMs, nowMs = Date.now()) {
  let s = Math.floor((untilMs - nowMs) / 1000);
  if (s <= 0) return 'ended';
  const d = Math.floor(s / 86400); s -= d * 86400;
  const hh = Math.floor(s / 3600); s -= hh * 3600;
  const mm = Math.floor(s / 60); s -= mm * 60;
  const p = (n) => String(n).padStart(2, '0');
  return (d ? d + ' d ' : '') + (d || hh ? hh + ' h ' : '') + p(mm) + ' min ' + p(s) + ' s';
}

// Bytes as "12.3 MiB".
export function bytes(n) {
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  for (n = Number(n); n >= 1024 && i < u.length - 1; i++) n /= 1024;
  return (i ? n.toFixed(1) : String(n)) + ' ' + u[i];
}

// A nanosecond timestamp (decimal string) as an ISO time.
export function nsTime(ns) {
  try {
    return new Date(Number(BigInt(ns) / 1000000n)).toISOString();
  } catch {
    return String(ns);
  }
}
