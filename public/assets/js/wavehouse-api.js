/**
 * The bits of the Wavehouse API the pages share. Every URL is relative to the page's own
 * origin, so the pages work wherever they are served from, HTTPS proxies included.
 */

/** The WebSocket URL of an API path on this origin: wss: when the page came over https:. */
export function socketUrl(path) {
  const url = new URL(path, location.href);
  url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return url.href;
}

/** An absolute http(s) URL for a path on this origin, for links meant to be shared. */
export function absoluteUrl(path) {
  return new URL(path, location.href).href;
}

async function problemText(response) {
  try {
    const problem = await response.json();
    return problem.detail || problem.title || `HTTP ${response.status}`;
  } catch {
    return `HTTP ${response.status}`;
  }
}

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** POST /api/v1/sessions; the answer carries the ingest token, shown only this once. */
export async function createSession(body) {
  const response = await fetch('/api/v1/sessions', {
    method: 'POST',
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status !== 201) throw new ApiError(response.status, await problemText(response));
  return response.json();
}

/** GET /api/v1/sessions/{id}; null when there is no such session. */
export async function fetchSession(sessionId) {
  const response = await fetch(`/api/v1/sessions/${encodeURIComponent(sessionId)}`);
  if (response.status === 404) return null;
  if (response.status !== 200) throw new ApiError(response.status, await problemText(response));
  return response.json();
}

/** POST /api/v1/sessions/{id}/end; it answers once everything accepted is committed. */
export async function endSession(sessionId, ingestToken) {
  const response = await fetch(`/api/v1/sessions/${encodeURIComponent(sessionId)}/end`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ingestToken}` },
  });
  if (response.status !== 200) throw new ApiError(response.status, await problemText(response));
  return response.json();
}

/**
 * Reconnect delays: exponential from 250 ms to 5 s, with jitter so that many viewers dropped
 * together (a server restart) do not come back in one burst.
 */
export function backoffDelayMs(attempt) {
  const ceiling = Math.min(5_000, 250 * 2 ** attempt);
  return Math.round(ceiling * (0.5 + Math.random() * 0.5));
}

/**
 * The recorder link handed out by the landing page. The write token rides in the fragment,
 * which browsers never send to a server nor put in a Referer: it stays out of access logs.
 */
export function recorderLink(sessionId, ingestToken) {
  const fragment = new URLSearchParams({ session: sessionId, token: ingestToken });
  return `/record#${fragment}`;
}

/** Reads a recorder link's fragment; null when the page was opened without one. */
export function recorderLinkSession(hash) {
  const fragment = new URLSearchParams(hash.replace(/^#/, ''));
  const sessionId = fragment.get('session');
  const ingestToken = fragment.get('token');
  return sessionId && ingestToken ? { sessionId, ingestToken } : null;
}
