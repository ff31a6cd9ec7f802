// api.js - the console's only way to the server: fetch() on the public
// API with the signed-in credential as the Authorization header.  The
// credential lives in sessionStorage (this tab, until it closes or signs
// out); no cookie is ever set, so the browser sends nothing by itself
// and another site cannot make requests with it (docs/console.md).

const KEY = 'tpwallet.console.credential';

export function credential() {
  return sessionStorage.getItem(KEY);
}

// What the user pasted, as an Authorization value: a bare token is a
// bearer token; "Bearer ..." is kept as it is.
export function signIn(pasted) {
  const t = pasted.trim();
  sessionStorage.setItem(KEY, /^bearer\s/i.test(t) ? t : 'Bearer ' + t);
}

export function signOut() {
  sessionStorage.removeItem(KEY);
}

export class ApiError extends Error {
  constructor(status, problem) {
    const p = problem && typeof problem === 'object' ? problem : {};
    super((p.title || 'HTTP ' + status) + (p.detail ? ': ' + p.detail : ''));
    this.status = status;
    this.problem = p;
  }
}

// method, path (with its query), body (an object, or text sent as is):
// the JSON answer (or text), or throws ApiError with the problem.
export async function api(method, path, body) {
  const headers = {};
  const c = credential();
  if (c) headers.Authorization = c;
  let payload;
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    payload = typeof body === 'string' ? body : JSON.stringify(body);
  }
  const r = await fetch(path, {
    method, headers, body: payload, credentials: 'omit', cache: 'no-store',
    redirect: 'error',
  });
  const ct = r.headers.get('content-type') || '';
  const data = ct.includes('json') ? await r.json() : await r.text();
  if (!r.ok) throw new ApiError(r.status, data);
  return data;
}

export const get = (path) => api('GET', path);
