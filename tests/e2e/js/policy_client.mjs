#!/usr/bin/env node
// policy_client.mjs - verifies tpwallet's signed client-policy manifests
// (docs/client-policy.md, "HTTP API": GET /v1/client-policy) the way an app
// would, with the npm package `jose`: createLocalJWKSet over
// /.well-known/jwks.json and jwtVerify with typ tpwallet-client-policy+jwt
// and algorithms ['EdDSA'].  Driven by tests/e2e/test_client_policy.py: one
// JSON command on stdin, one JSON answer on stdout (exit 0), or
// {"error": "..."} on stdout (exit 1).
//
//   {"op": "manifest", "base", "path", "authorization"?}
//       -> fetches the JWKS and path, verifies the token:
//          {"status", "content_type", "token", "header", "payload",
//           "jwks", "tampered": [{"what", "rejected", "code"}],
//           "wrong_typ_rejected"}
//   {"op": "verify", "base", "token"}
//       -> verifies a token (fetched earlier) against the JWKS the server
//          publishes now: {"ok": true, "header", "payload", "jwks"} or
//          {"ok": false, "code", "error", "jwks"}
//
// Fetches time out (AbortSignal).

import * as jose from 'jose';

const FETCH_TIMEOUT_MS = 20000;
const TYP = 'tpwallet-client-policy+jwt';
const enc = new TextEncoder();
const dec = new TextDecoder();

async function doFetch(url, headers = {}) {
  const r = await fetch(url, { headers,
                               signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) });
  const text = await r.text();
  const hdrs = {};
  r.headers.forEach((v, k) => { hdrs[k.toLowerCase()] = v; });
  return { status: r.status, headers: hdrs, body: text };
}

async function jwks(base) {
  const r = await doFetch(new URL('/.well-known/jwks.json', base).href);
  if (r.status !== 200)
    throw new Error(`GET /.well-known/jwks.json: ${r.status} ${r.body}`);
  const doc = JSON.parse(r.body);
  return { doc, set: jose.createLocalJWKSet(doc) };
}

async function verify(token, set, typ = TYP) {
  return jose.jwtVerify(token, set, { typ, algorithms: ['EdDSA'] });
}

// A character of a base64url segment replaced by another one.
function flipChar(seg, at) {
  const c = seg[at];
  return seg.slice(0, at) + (c !== 'A' ? 'A' : 'B') + seg.slice(at + 1);
}

async function rejected(what, token, set) {
  try {
    await verify(token, set);
    return { what, rejected: false, code: null };
  } catch (e) {
    return { what, rejected: true, code: e.code ?? String(e) };
  }
}

async function manifest(c) {
  const { doc, set } = await jwks(c.base);
  const headers = c.authorization ? { Authorization: c.authorization } : {};
  const r = await doFetch(new URL(c.path, c.base).href, headers);
  if (r.status !== 200)
    throw new Error(`GET ${c.path}: ${r.status} ${r.body}`);
  const token = r.body.trim();
  const { payload, protectedHeader } = await verify(token, set);

  const [h, p, s] = token.split('.');
  const tampered = [];
  // One byte of the signed payload changed (a base64url character).
  tampered.push(await rejected('payload character',
                               `${h}.${flipChar(p, Math.floor(p.length / 2))}.${s}`,
                               set));
  // One byte of the signature changed (a raw byte, re-encoded).
  const sig = jose.base64url.decode(s);
  sig[7] ^= 0x01;
  tampered.push(await rejected('signature byte',
                               `${h}.${p}.${jose.base64url.encode(sig)}`, set));
  // A well-formed payload saying something else under the old signature.
  const claims = JSON.parse(dec.decode(jose.base64url.decode(p)));
  claims.decision = claims.decision === 'supported' ? 'blocked' : 'supported';
  tampered.push(await rejected(
    'decision rewritten',
    `${h}.${jose.base64url.encode(enc.encode(JSON.stringify(claims)))}.${s}`,
    set));
  // The header's kid changed to one the JWKS does not have.
  const hdr = JSON.parse(dec.decode(jose.base64url.decode(h)));
  hdr.kid = 'not-a-key-of-this-server';
  tampered.push(await rejected(
    'unknown kid',
    `${jose.base64url.encode(enc.encode(JSON.stringify(hdr)))}.${p}.${s}`,
    set));

  let wrongTypRejected = false;
  try { await verify(token, set, 'dpop+jwt'); } catch (e) {
    wrongTypRejected = true;
  }
  return {
    status: r.status,
    content_type: r.headers['content-type'] ?? null,
    token,
    header: protectedHeader,
    payload,
    jwks: doc,
    tampered,
    wrong_typ_rejected: wrongTypRejected,
  };
}

async function verifyToken(c) {
  const { doc, set } = await jwks(c.base);
  try {
    const { payload, protectedHeader } = await verify(c.token, set);
    return { ok: true, header: protectedHeader, payload, jwks: doc };
  } catch (e) {
    return { ok: false, code: e.code ?? null, error: String(e), jwks: doc };
  }
}

async function main() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  const c = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  switch (c.op) {
    case 'manifest': return manifest(c);
    case 'verify': return verifyToken(c);
    default: throw new Error(`unknown op ${c.op}`);
  }
}

main().then(
  (out) => { process.stdout.write(JSON.stringify(out) + '\n'); },
  (e) => {
    process.stdout.write(JSON.stringify({ error: String(e && e.stack || e),
                                          code: e && e.code }) + '\n');
    process.exitCode = 1;
  });
