#!/usr/bin/env node
// authz_client.mjs - a JOSE client of tpwallet's authorization
// (docs/authz.md), written with the npm package `jose` so that the server
// is checked against an independent implementation.  Driven by
// tests/e2e/test_authz.py: one JSON command on stdin, one JSON answer on
// stdout (exit 0), or {"error": "..."} on stdout (exit 1).
//
//   {"op": "keygen", "count": N}
//       -> {"keys": [{"jwk": <public>, "private_jwk": <private>,
//                     "thumbprint": "<RFC 7638>"}]}
//   {"op": "thumbprint", "jwk": {...}} -> {"thumbprint": "..."}
//   {"op": "link", "issuer": <private JWK>, "delegate": <public JWK>,
//    "right": {...}, "jti": "...", "iat": s, "exp": s, "nbf"?: s,
//    "aud"?: "...", "parent"?: "<compact of the link above>",
//    "claims"?: {overrides; a null value removes the claim},
//    "header"?: {overrides of the protected header}, "alg_none"?: bool}
//       -> {"compact", "hash": b64url(SHA-256(compact)), "claims", "header"}
//   {"op": "dpop", "key": <private JWK>, "htm", "htu", "access_token"?,
//    "iat"?, "jti"?, "header_jwk"?: <public JWK put in the header>}
//       -> {"proof"}
//   {"op": "revocation", "key": <private JWK>, "revoke": {"jti"|"all"},
//    "iat"?, "jti"?} -> {"statement"}
//   {"op": "fetch", "url", "method"?, "headers"?, "body"?}
//       -> {"status", "headers", "body", "json"}
//   {"op": "mandate_request", "base", "chain": [compact...], "key",
//    "method", "path", "body"?, "headers"?: more request headers,
//    "proof"?: reuse this DPoP proof,
//    "dpop"?: overrides of the proof (iat, jti, htm, htu, header_jwk,
//    sign_key, access_token)}
//       -> the fetch answer plus {"proof"}
//   {"op": "concurrent", "base", "chain", "key",
//    "requests": [{"method", "path", "body"}]}
//       -> {"results": [fetch answers]} (all sent at once, Promise.all)
//   {"op": "verify_signed", "base", "path", "authorization"?}
//       -> fetches /.well-known/jwks.json and path, verifies the JWS with
//          createLocalJWKSet + compactVerify + jwtVerify:
//          {"content_type", "header", "payload", "tampered_rejected",
//           "unknown_kid_rejected"}
//
// Times are seconds since the epoch; fetches time out (AbortSignal).

import * as jose from 'jose';
import { createHash, randomBytes } from 'node:crypto';

const FETCH_TIMEOUT_MS = 20000;
const enc = new TextEncoder();

function now() {
  return Math.floor(Date.now() / 1000);
}

function b64u(bytes) {
  return jose.base64url.encode(bytes);
}

function sha256b64u(text) {
  return b64u(createHash('sha256').update(text, 'utf8').digest());
}

function randomJti() {
  return b64u(randomBytes(18));
}

function publicJwk(jwk) {
  return { kty: jwk.kty, crv: jwk.crv, x: jwk.x };
}

async function privateKey(jwk) {
  if (!jwk || typeof jwk.d !== 'string') throw new Error('not a private JWK');
  return jose.importJWK({ kty: jwk.kty, crv: jwk.crv, x: jwk.x, d: jwk.d },
                        'EdDSA');
}

async function thumbprint(jwk) {
  return jose.calculateJwkThumbprint(publicJwk(jwk), 'sha256');
}

async function generate() {
  // 'Ed25519' (RFC 9864) in jose 6; 'EdDSA' in jose 5.
  let pair;
  try {
    pair = await jose.generateKeyPair('Ed25519', { extractable: true });
  } catch (e) {
    pair = await jose.generateKeyPair('EdDSA', { crv: 'Ed25519',
                                                 extractable: true });
  }
  const priv = await jose.exportJWK(pair.privateKey);
  const pub = await jose.exportJWK(pair.publicKey);
  return { jwk: pub, private_jwk: priv, thumbprint: await thumbprint(pub) };
}

// Signs a JSON payload with exactly this protected header.
async function signCompact(header, payload, keyJwk) {
  return new jose.CompactSign(enc.encode(JSON.stringify(payload)))
    .setProtectedHeader(header)
    .sign(await privateKey(keyJwk));
}

function applyOverrides(obj, over) {
  for (const [k, v] of Object.entries(over || {})) {
    if (v === null) delete obj[k];
    else obj[k] = v;
  }
  return obj;
}

// docs/authz.md "Links".
async function link(c) {
  const claims = {
    iss: await thumbprint(c.issuer),
    sub: await thumbprint(c.delegate),
    cnf: { jwk: publicJwk(c.delegate) },
    iat: c.iat ?? now(),
    exp: c.exp ?? now() + 3600,
    jti: c.jti ?? randomJti(),
    right: c.right,
  };
  if (c.nbf !== undefined) claims.nbf = c.nbf;
  if (c.aud !== undefined) claims.aud = c.aud;
  if (c.parent) claims.prn = sha256b64u(c.parent);
  applyOverrides(claims, c.claims);
  const header = applyOverrides({ alg: 'EdDSA', typ: 'tpwallet-mandate+jwt' },
                                c.header);
  let compact;
  if (c.alg_none) {
    // An unsecured JWS (RFC 7515 A.5): jose refuses to make one, so by
    // hand; signature_text lets a test put bytes in the third segment.
    const h = applyOverrides({ alg: 'none', typ: 'tpwallet-mandate+jwt' },
                             c.header);
    compact = b64u(enc.encode(JSON.stringify(h))) + '.' +
      b64u(enc.encode(JSON.stringify(claims))) + '.' +
      (c.signature_text ?? '');
  } else {
    compact = await signCompact(header, claims, c.issuer);
  }
  return { compact, hash: sha256b64u(compact), claims,
           header: jose.decodeProtectedHeader(compact) };
}

// docs/authz.md "DPoP proofs" (RFC 9449).
async function dpop(c) {
  const claims = {
    jti: c.jti ?? randomJti(),
    htm: c.htm,
    htu: c.htu,
    iat: c.iat ?? now(),
  };
  if (c.access_token !== undefined && c.access_token !== null)
    claims.ath = sha256b64u(c.access_token);
  applyOverrides(claims, c.claims);
  const header = applyOverrides(
    { alg: 'EdDSA', typ: 'dpop+jwt', jwk: publicJwk(c.header_jwk ?? c.key) },
    c.header);
  return { proof: await signCompact(header, claims, c.sign_key ?? c.key) };
}

// docs/authz.md "Revocation".
async function revocation(c) {
  const claims = {
    iss: await thumbprint(c.key),
    iat: c.iat ?? now(),
    jti: c.jti ?? randomJti(),
    revoke: c.revoke,
  };
  applyOverrides(claims, c.claims);
  const header = { alg: 'EdDSA', typ: 'tpwallet-revocation+jwt',
                   jwk: publicJwk(c.key) };
  return { statement: await signCompact(header, claims, c.key) };
}

async function doFetch(url, method = 'GET', headers = {}, body = undefined) {
  const h = { ...headers };
  let data;
  if (body !== undefined && body !== null) {
    data = typeof body === 'string' ? body : JSON.stringify(body);
    if (!Object.keys(h).some((k) => k.toLowerCase() === 'content-type'))
      h['Content-Type'] = 'application/json';
  }
  const r = await fetch(url, { method, headers: h, body: data,
                               signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) });
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch (e) { /* not JSON */ }
  const hdrs = {};
  r.headers.forEach((v, k) => { hdrs[k.toLowerCase()] = v; });
  return { status: r.status, headers: hdrs, body: text, json };
}

function chainText(chain) {
  return Array.isArray(chain) ? chain.join('~') : chain;
}

// One request under a mandate: Authorization: DPoP <chain>, DPoP: <proof>.
async function mandateRequest(c) {
  const at = chainText(c.chain);
  const url = new URL(c.path, c.base);
  const d = c.dpop || {};
  let proof = c.proof;
  if (!proof) {
    proof = (await dpop({
      key: c.key,
      sign_key: d.sign_key,
      header_jwk: d.header_jwk,
      htm: d.htm ?? c.method,
      htu: d.htu ?? `${url.protocol}//${url.host}${url.pathname}`,
      iat: d.iat,
      jti: d.jti,
      access_token: 'access_token' in d ? d.access_token : at,
      claims: d.claims,
      header: d.header,
    })).proof;
  }
  const headers = { ...(c.headers || {}), Authorization: `DPoP ${at}`,
                   DPoP: proof };
  const r = await doFetch(url.href, c.method, headers, c.body);
  return { ...r, proof };
}

async function concurrent(c) {
  // Proofs first, so that the requests themselves leave together.
  const at = chainText(c.chain);
  const prepared = await Promise.all(c.requests.map(async (q) => {
    const url = new URL(q.path, c.base);
    const { proof } = await dpop({
      key: c.key, htm: q.method,
      htu: `${url.protocol}//${url.host}${url.pathname}`,
      access_token: at,
    });
    return { url: url.href, method: q.method, body: q.body,
             headers: { Authorization: `DPoP ${at}`, DPoP: proof } };
  }));
  const results = await Promise.all(prepared.map(
    (p) => doFetch(p.url, p.method, p.headers, p.body)
      .catch((e) => ({ status: 0, error: String(e) }))));
  return { results };
}

async function verifySigned(c) {
  const jwksResp = await doFetch(new URL('/.well-known/jwks.json', c.base).href);
  if (jwksResp.status !== 200 || !jwksResp.json)
    throw new Error(`GET /.well-known/jwks.json: ${jwksResp.status} ${jwksResp.body}`);
  const jwks = jose.createLocalJWKSet(jwksResp.json);
  const headers = c.authorization ? { Authorization: c.authorization } : {};
  const r = await doFetch(new URL(c.path, c.base).href, 'GET', headers);
  if (r.status !== 200)
    throw new Error(`GET ${c.path}: ${r.status} ${r.body}`);
  const token = r.body.trim();
  const { protectedHeader, payload } = await jose.compactVerify(token, jwks);
  const claims = JSON.parse(new TextDecoder().decode(payload));
  // jwtVerify too: the claims set is a JWT (RFC 7519).
  const jwt = await jose.jwtVerify(token, jwks);
  // Negative controls: a changed payload, and an unknown kid, must fail.
  const [h, p, s] = token.split('.');
  const changed = JSON.parse(new TextDecoder().decode(jose.base64url.decode(p)));
  changed.seq = (typeof changed.seq === 'number' ? changed.seq : 0) + 1;
  const tampered = `${h}.${b64u(enc.encode(JSON.stringify(changed)))}.${s}`;
  let tamperedRejected = false;
  try { await jose.compactVerify(tampered, jwks); } catch (e) {
    tamperedRejected = e.code === 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED';
  }
  const other = await generate();
  const otherSet = jose.createLocalJWKSet({ keys: [{ ...other.jwk,
    kid: protectedHeader.kid, alg: 'EdDSA' }] });
  let unknownKidRejected = false;
  try { await jose.compactVerify(token, otherSet); } catch (e) {
    unknownKidRejected = true;
  }
  return {
    content_type: r.headers['content-type'] ?? null,
    header: protectedHeader,
    payload: claims,
    jwt_payload: jwt.payload,
    jwks: jwksResp.json,
    tampered_rejected: tamperedRejected,
    unknown_kid_rejected: unknownKidRejected,
  };
}

async function main() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  const c = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  switch (c.op) {
    case 'keygen': {
      const keys = [];
      for (let i = 0; i < (c.count ?? 1); i++) keys.push(await generate());
      return { keys };
    }
    case 'thumbprint': return { thumbprint: await thumbprint(c.jwk) };
    case 'link': return link(c);
    case 'dpop': return dpop(c);
    case 'revocation': return revocation(c);
    case 'fetch': return doFetch(c.url, c.method, c.headers, c.body);
    case 'mandate_request': return mandateRequest(c);
    case 'concurrent': return concurrent(c);
    case 'verify_signed': return verifySigned(c);
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
