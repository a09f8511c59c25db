// The HTTP API of exar-db (docs/HTTP.md), same origin, relative URLs. Every
// function returns parsed JSON or throws an ApiError carrying the server's
// {error, message} (or a network failure described the same way).

const BASE = '/api/v1';

/**
 * A path on this origin as an absolute URL. location.origin never carries a username and
 * password, so this also works when the page was opened as http://user:secret@host/ (the
 * browser refuses a fetch of a URL with credentials in it, which a relative one would inherit).
 */
export function sameOrigin(path) {
  return `${location.origin}${path}`;
}

export class ApiError extends Error {
  constructor(status, kind, message, details = {}) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.kind = kind;
    /** The error body's other fields (`actualId` of a 409 ConflictError). */
    this.details = details;
  }

  /** "404 NotFound: no such collection" or "network: Failed to fetch". */
  describe() {
    return this.status ? `${this.status} ${this.kind}: ${this.message}` : `${this.kind}: ${this.message}`;
  }
}

function collectionPath(name, suffix = '') {
  return `${BASE}/collections/${encodeURIComponent(name)}${suffix}`;
}

/** Builds a query string from an object, leaving out empty values. */
export function queryString(parameters) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(parameters)) {
    if (value === undefined || value === null || value === '') continue;
    search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}

async function readError(response) {
  try {
    const body = await response.json();
    if (body && typeof body.error === 'string') return new ApiError(response.status, body.error, body.message ?? '', body);
  } catch {
    // Not JSON (a proxy's page, say): fall through to the status text.
  }
  return new ApiError(response.status, 'HTTPError', response.statusText || 'request failed');
}

async function request(method, path, body) {
  const options = { method, headers: { Accept: 'application/json' }, cache: 'no-store' };
  if (method !== 'GET') {
    // The server refuses a POST or DELETE without this header (415), which keeps forms of other sites out.
    options.headers['Content-Type'] = 'application/json';
    if (body !== undefined) options.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(sameOrigin(path), options);
  } catch (error) {
    throw new ApiError(0, 'network', error.message || 'the server cannot be reached');
  }
  if (!response.ok) throw await readError(response);
  try {
    return await response.json();
  } catch {
    throw new ApiError(response.status, 'ParseError', 'the answer is not JSON');
  }
}

export const api = {
  server: () => request('GET', `${BASE}/server`),
  collections: () => request('GET', `${BASE}/collections`),
  collection: (name) => request('GET', collectionPath(name)),
  /** One page: {events: [{id, timestamp, tags, data}], next}; `since` (ms) instead of `offset` starts at a time. */
  events: (name, { offset, since, limit, tag, order }) =>
    request('GET', collectionPath(name, `/events${queryString({ offset, since, limit, tag, order })}`)),
  /** One event {tags, data, timestamp?}: answers {id}. */
  publish: (name, event) => request('POST', collectionPath(name, '/events'), event),
  drop: (name) => request('DELETE', collectionPath(name)),
  segments: (name) => request('GET', collectionPath(name, '/segments')),
  verify: (name) => request('POST', collectionPath(name, '/verify')),
  groups: (name) => request('GET', collectionPath(name, '/groups')),
  changeParked: (name, group, what) =>
    request('POST', collectionPath(name, `/groups/${encodeURIComponent(group)}/${what}`), {}),
  deleteGroup: (name, group) => request('DELETE', collectionPath(name, `/groups/${encodeURIComponent(group)}`)),
};

/** The export of a query: the whole answer from offset on (no limit), streamed by the server. */
export function exportUrl(name, format, { offset, tag, order }) {
  return collectionPath(name, `/events${queryString({ offset, tag, order, format })}`);
}

/** The Server-Sent Events URL of a live tail; no offset means only events published from now on. */
export function streamUrl(name, { offset, tag }) {
  return collectionPath(name, `/stream${queryString({ offset, tag })}`);
}

/** The request line shown in the message log beside the protocol lines. */
export function describeRequest(method, path) {
  return `${method} ${path}`;
}

export const paths = { collectionPath, BASE };
