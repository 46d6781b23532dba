/**
 * One GET to an upstream API, as untrusted as its answer: the body is read up to a bound in
 * bytes (a larger one is refused, whatever Content-Length says), within the caller's signal (a
 * body that trickles times out as a silent one does), and a redirect is followed only to the
 * connector's own origin, at most a few times: a compromised or misconfigured upstream must
 * not turn the connector into a client of another host, with the read key in the query.
 *
 * URLs carry secrets (ThingSpeak's api_key), so no message here holds a query string: errors
 * name the origin and path only.
 */
import { UpstreamError } from './upstream-error.ts';

/** GETs `url` and answers the 2xx body as text; throws UpstreamError for anything else. */
export type UpstreamFetch = (url: URL) => Promise<string>;

export interface UpstreamClientOptions {
  readonly maxBodyBytes: number;
  /** Same-origin redirects followed before giving up. */
  readonly maxRedirects?: number;
}

const withoutQuery = (url: URL) => `${url.origin}${url.pathname}`;

/** Retry-After (RFC 9110 section 10.2.3) in ms: delta-seconds or an HTTP-date; null when absent or unreadable. */
export function retryAfterMs(header: string | null, nowMs: number): number | null {
  if (header === null) return null;
  const text = header.trim();
  if (/^\d{1,9}$/.test(text)) return Number(text) * 1_000;
  const at = Date.parse(text);
  return Number.isFinite(at) ? Math.max(0, at - nowMs) : null;
}

async function readBounded(response: Response, maxBytes: number, url: URL): Promise<string> {
  const declared = Number(response.headers.get('content-length'));
  const tooLarge = () => new UpstreamError(`the answer of ${withoutQuery(url)} is over ${maxBytes} bytes`, false);
  if (Number.isFinite(declared) && declared > maxBytes) {
    await response.body?.cancel().catch(() => undefined);
    throw tooLarge();
  }
  if (response.body === null) return '';
  const chunks: Uint8Array[] = [];
  let bytes = 0;
  const reader = response.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    bytes += value.byteLength;
    if (bytes > maxBytes) {
      await reader.cancel().catch(() => undefined);
      throw tooLarge();
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function transportError(error: unknown, url: URL, signal: AbortSignal): UpstreamError {
  if (error instanceof UpstreamError) return error;
  if (signal.aborted) return new UpstreamError(`no complete answer from ${withoutQuery(url)} in time`, true);
  // undici's "fetch failed" hides the reason in its cause; its code (ECONNREFUSED, UND_ERR_SOCKET) holds no secret.
  const cause = (error as { cause?: { code?: unknown } } | null)?.cause;
  const code = typeof cause?.code === 'string' ? cause.code : 'a network error';
  return new UpstreamError(`${withoutQuery(url)} could not be read: ${code}`, true);
}

/** A GET that follows redirects only within `origin`. */
export function upstreamGet(options: UpstreamClientOptions) {
  const maxRedirects = options.maxRedirects ?? 3;
  return async (url: URL, signal: AbortSignal): Promise<string> => {
    const origin = url.origin;
    let current = url;
    try {
      for (let redirects = 0; ; redirects++) {
        const response = await fetch(current, { redirect: 'manual', signal, headers: { accept: 'application/json' } });
        if (response.status >= 300 && response.status < 400) {
          await response.body?.cancel().catch(() => undefined);
          const location = response.headers.get('location');
          const next = location === null ? null : URL.parse(location, current);
          if (next === null || next.origin !== origin) {
            throw new UpstreamError(`${withoutQuery(current)} redirects to another host; not followed`, false);
          }
          if (redirects >= maxRedirects) throw new UpstreamError(`${withoutQuery(url)} redirects more than ${maxRedirects} times`, false);
          current = next;
          continue;
        }
        if (response.status < 200 || response.status >= 300) {
          await response.body?.cancel().catch(() => undefined);
          const transient = response.status >= 500 || response.status === 429 || response.status === 408;
          const wait = retryAfterMs(response.headers.get('retry-after'), Date.now());
          throw new UpstreamError(`${withoutQuery(current)} answered ${response.status}`, transient, wait);
        }
        return await readBounded(response, options.maxBodyBytes, current);
      }
    } catch (error) {
      throw transportError(error, current, signal);
    }
  };
}
