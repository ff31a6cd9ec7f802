// verify.js - a receipt checked in the browser, trusting only the log's
// public key (docs/audit.md, "Receipts"): the checkpoint's Ed25519
// signature (C2SP signed note), the entry's leaf from the proven event
// (leaf rule 2) or from the whole entry (rule 1), and the RFC 9162
// inclusion proof up to the checkpoint's root.  WebCrypto does the
// hashing and the signature; nothing here asks the server to vouch.

const subtle = globalThis.crypto.subtle;

export function b64(s) {
  return Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}

async function sha256(...parts) {
  return new Uint8Array(await subtle.digest('SHA-256', concat(...parts)));
}

function same(a, b) {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

const u8 = (x) => Uint8Array.of(x);

// RFC 9162 2.1.3.2: the root an inclusion proof gives for leaf at index
// in a tree of size leaves (index, size: BigInt), or null when the
// proof has the wrong length.
export async function rootFromProof(index, size, leaf, proof) {
  if (index >= size) return null;
  let fn = index;
  let sn = size - 1n;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0n) return null;
    if ((fn & 1n) === 1n || fn === sn) {
      r = await sha256(u8(1), p, r);
      while ((fn & 1n) === 0n && fn !== 0n) { fn >>= 1n; sn >>= 1n; }
    } else {
      r = await sha256(u8(1), r, p);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  return sn === 0n ? r : null;
}

function le(bytes, from, n) {
  let v = 0n;
  for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[from + i]);
  return v;
}

// The note's signed text and signature lines (C2SP signed-note).
function splitNote(note) {
  const cut = note.indexOf('\n\n');
  if (cut < 0) return null;
  const body = note.slice(0, cut + 1);
  const sigs = note.slice(cut + 2).split('\n').filter(Boolean).map((l) => {
    const m = /^\u2014 (\S+) (\S+)$/.exec(l);
    return m && { name: m[1], raw: b64(m[2]) };
  }).filter(Boolean);
  return { body, lines: body.split('\n'), sigs };
}

// Is the note signed by one of the verifier keys (C2SP vkey strings,
// "<name>+<hex key id>+<base64 of 0x01 || key>", one per line)?
async function noteSigned(note, vkeys) {
  const n = splitNote(note);
  if (!n) return false;
  for (const line of vkeys.split('\n').filter(Boolean)) {
    // The name holds no '+'; the base64 after the key id may.
    const m = /^([^+]+)\+([0-9a-f]{8})\+(.+)$/.exec(line.trim());
    if (!m) continue;
    const [, name, hexId] = m;
    const key = b64(m[3]);
    if (key.length !== 33 || key[0] !== 1) continue;
    const id = (await sha256(new TextEncoder().encode(name + '\n'), key)).slice(0, 4);
    if ([...id].map((x) => x.toString(16).padStart(2, '0')).join('') !== hexId) continue;
    const pub = await subtle.importKey('raw', key.slice(1), { name: 'Ed25519' }, false, ['verify']);
    for (const s of n.sigs) {
      if (s.name !== name || s.raw.length !== 68 || !same(s.raw.slice(0, 4), id)) continue;
      if (await subtle.verify({ name: 'Ed25519' }, pub, s.raw.slice(4),
        new TextEncoder().encode(n.body))) return true;
    }
  }
  return false;
}

// The checks of receipt r against the log's keys: [{what, ok}], and the
// id of the record it proves (decimal), or null.
export async function verifyReceipt(r, vkeys) {
  const checks = [];
  const add = (what, ok) => { checks.push({ what, ok: !!ok }); return !!ok; };
  const index = BigInt(r.index);
  const size = BigInt(r.size);
  const n = splitNote(r.checkpoint || '');
  add('the checkpoint is signed by the log\'s key', await noteSigned(r.checkpoint || '', vkeys));
  add('the checkpoint is of this size and root', n && n.lines[1] === r.size && n.lines[2] === r.root);
  let leaf;
  let id = null;
  if (r.entry !== undefined) {
    const e = b64(r.entry);
    add('the entry is a version-1 record of seq index + 1',
      e.length >= 32 && le(e, 14, 2) === 1n && le(e, 16, 8) === index + 1n);
    leaf = await sha256(u8(0), e);
  } else {
    const hd = b64(r.header);
    const cmd = b64(r.command);
    const type = Number(le(hd, 12, 2));
    const recSize = Number(le(hd, 8, 4));
    const events = type === 1 || type === 2 ? (recSize - 32) / 128 : type === 4 ? Number(le(cmd, 8, 4)) : 0;
    const k = Number(r.event_index);
    const ev = b64(r.event);
    const chunk = r.chunk.map(b64);
    const first = 32 * Math.floor(k / 32);
    add('the header is version 2 with a zero CRC and seq index + 1',
      hd.length === 32 && le(hd, 14, 2) === 2n && le(hd, 4, 4) === 0n && le(hd, 16, 8) === index + 1n);
    add('the event is in its chunk', k < events && ev.length === 128 &&
      chunk.length === Math.min(32, events - first) &&
      same(chunk[k % 32], await sha256(u8(0x10), ev)));
    const c = await sha256(u8(0x11), ...chunk);
    const m = BigInt(Math.ceil(events / 32));
    const root = await rootFromProof(BigInt(Math.floor(k / 32)), m, c, r.events_proof.map(b64));
    add('the chunk is in the entry', root !== null);
    leaf = await sha256(u8(0), hd, cmd, b64(r.ext_hash), root || new Uint8Array(32));
    id = le(ev, 0, 16).toString();
  }
  add('the leaf hash is the entry\'s', same(leaf, b64(r.leaf_hash)));
  const top = await rootFromProof(index, size, b64(r.leaf_hash), r.proof.map(b64));
  add('the inclusion proof leads to the checkpoint\'s root', top && same(top, b64(r.root)));
  return { checks, id, ok: checks.every((c) => c.ok) };
}
