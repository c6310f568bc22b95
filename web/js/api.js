// api.js - the only way the page talks to allotd: the public /v1 HTTP API
// with the API key the person pasted on the sign-in screen.
//
// The key lives in sessionStorage (gone when the tab closes, never in a
// cookie, never sent anywhere but this origin's /v1 routes).

const KEY_STORAGE = 'allot.apiKey';
const PAGE_LIMIT = 500;   // the API's own list maximum
const PAGES_MAX = 40;     // 20,000 rows: more than any screen here shows

export function getKey() {
  return sessionStorage.getItem(KEY_STORAGE);
}

export function setKey(key) {
  sessionStorage.setItem(KEY_STORAGE, key);
}

export function clearKey() {
  sessionStorage.removeItem(KEY_STORAGE);
}

/** An error the API answered ({error: {code, message, details}}), or a
 *  network failure (status 0). `field` is details.field when given. */
export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details || {};
    this.field = this.details.field || '';
  }
}

let onUnauthorized = null;

/** Called with the error when a request answers 401 (the key was revoked or
 *  is wrong): the app signs out. */
export function setUnauthorizedHandler(fn) {
  onUnauthorized = fn;
}

/** A key for Idempotency-Key: random, printable, one per intended action. */
export function newIdempotencyKey() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return 'web-' + Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

export function buildUrl(path, query) {
  const url = new URL(path, window.location.origin);
  for (const [k, v] of Object.entries(query || {})) {
    if (v !== undefined && v !== null && v !== '') url.searchParams.set(k, String(v));
  }
  return url.pathname + url.search;
}

/**
 * One request. `body` is sent as JSON unless it is a string (then as is,
 * with the Content-Type given in `headers`). Resolves to the parsed JSON (or
 * text); rejects with ApiError.
 */
export async function api(method, path, { body, query, headers, key } = {}) {
  const h = { Accept: 'application/json', ...(headers || {}) };
  const k = key !== undefined ? key : getKey();
  if (k) h.Authorization = `Bearer ${k}`;
  let payload;
  if (body !== undefined) {
    if (typeof body === 'string') {
      payload = body;
    } else {
      h['Content-Type'] = 'application/json';
      payload = JSON.stringify(body);
    }
  }
  let res;
  try {
    res = await fetch(buildUrl(path, query), { method, headers: h, body: payload, cache: 'no-store' });
  } catch (e) {
    throw new ApiError(0, 'network_error',
      'Could not reach the Allot server. Check your connection and try again.', {});
  }
  const type = res.headers.get('Content-Type') || '';
  let data = null;
  if (type.includes('json')) {
    data = await res.json().catch(() => null);
  } else {
    data = await res.text().catch(() => '');
  }
  if (!res.ok) {
    const e = (data && data.error) || {};
    const err = new ApiError(res.status, e.code || `http_${res.status}`,
      e.message || defaultMessage(res.status), e.details);
    if (res.status === 401 && onUnauthorized && key === undefined) onUnauthorized(err);
    throw err;
  }
  return data;
}

function defaultMessage(status) {
  switch (status) {
    case 401: return 'This API key was not accepted.';
    case 403: return 'Your role may not do this.';
    case 404: return 'Not found.';
    case 409: return 'This conflicts with the current state; refresh and try again.';
    case 413: return 'The request is too large.';
    default: return `The server answered with status ${status}.`;
  }
}

export const get = (path, query) => api('GET', path, { query });
export const post = (path, body, idempotencyKey) =>
  api('POST', path, { body, headers: idempotencyKey ? { 'Idempotency-Key': idempotencyKey } : {} });
export const patch = (path, body, idempotencyKey) =>
  api('PATCH', path, { body, headers: idempotencyKey ? { 'Idempotency-Key': idempotencyKey } : {} });

/** Every row of a paginated list ({data, next_cursor}), page by page. */
export async function getAll(path, query) {
  const rows = [];
  let cursor = null;
  for (let page = 0; page < PAGES_MAX; page++) {
    const q = { ...(query || {}), limit: PAGE_LIMIT };
    if (cursor) q.cursor = cursor;
    const out = await get(path, q);
    rows.push(...(out.data || []));
    cursor = out.next_cursor;
    if (!cursor) break;
  }
  return rows;
}

/** Downloads a report as CSV (`?format=csv`) and saves it as `filename`. */
export async function downloadCsv(path, query, filename) {
  const h = { Accept: 'text/csv', Authorization: `Bearer ${getKey()}` };
  let res;
  try {
    res = await fetch(buildUrl(path, { ...(query || {}), format: 'csv' }), { headers: h, cache: 'no-store' });
  } catch (e) {
    throw new ApiError(0, 'network_error', 'Could not reach the Allot server.', {});
  }
  if (!res.ok) {
    const data = await res.json().catch(() => null);
    const e = (data && data.error) || {};
    throw new ApiError(res.status, e.code || `http_${res.status}`, e.message || defaultMessage(res.status), e.details);
  }
  const blob = await res.blob();
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}
