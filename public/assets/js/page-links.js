/**
 * The links the pages hand to each other. API calls go through the SDK (wavehouse-sdk.js),
 * addressed to this page's own origin, so the pages work wherever they are served from,
 * HTTPS proxies included.
 */

/** This page's origin: the base URL the SDK calls. */
export const baseUrl = location.origin;

/** An absolute http(s) URL for a path on this origin, for links meant to be shared. */
export function absoluteUrl(path) {
  return new URL(path, location.href).href;
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
