/**
 * The REST half of the API (docs/API_CONTRACT.yml, /api/v1), over the global fetch. Failures the
 * server answers are WavehouseHttpError with the problem+json code; network failures are
 * fetch's own errors (a TypeError whose `cause` carries the system code, e.g. ECONNREFUSED).
 */
import { sampleToJson } from './sample-json.ts';
import type {
  AccessCredential,
  CreatedSession,
  CreateSessionBody,
  DeletedSession,
  IngestReceipt,
  RestoredSession,
  Sample,
  SampleInput,
  Session,
} from './types.ts';

export interface RequestOptions {
  signal?: AbortSignal;
  /** Defaults to the global fetch. */
  fetch?: typeof fetch;
  /** Private mode: sent as Authorization: Bearer, renewed once if the server calls its token expired. */
  credential?: AccessCredential;
}

export class WavehouseHttpError extends Error {
  constructor(
    readonly status: number,
    /** The problem's stable code (docs/errors.md), or `http_<status>` when the body has none. */
    readonly code: string,
    readonly detail: string,
    readonly url: string,
  ) {
    super(`${status} ${code}: ${detail}`);
    this.name = 'WavehouseHttpError';
  }
}

/** A body that ended before its last line: the connection dropped mid-stream. */
export class TruncatedDataError extends Error {
  constructor(readonly samplesRead: number) {
    super(`the data stream ended in the middle of a line after ${samplesRead} samples`);
    this.name = 'TruncatedDataError';
  }
}

export function apiUrl(baseUrl: string, path: string): string {
  return `${baseUrl.replace(/\/+$/, '')}/api/v1${path}`;
}

export async function problemFrom(response: Response): Promise<WavehouseHttpError> {
  let code = `http_${response.status}`;
  let detail = response.statusText || 'request failed';
  try {
    const body = (await response.json()) as { code?: unknown; detail?: unknown };
    if (typeof body.code === 'string') code = body.code;
    if (typeof body.detail === 'string') detail = body.detail;
  } catch {
    // Not problem+json (a proxy's error page, say): the status says enough.
  }
  return new WavehouseHttpError(response.status, code, detail, response.url);
}

function withBearer(init: RequestInit, token: string): RequestInit {
  return { ...init, headers: { ...(init.headers as Record<string, string> | undefined), authorization: `Bearer ${token}` } };
}

/**
 * Sends a request, with the credential's token when there is one; once more with a renewed
 * token when the server calls it expired (it acted on nothing, so sending again is safe).
 * Answers the response, unless that refusal is what it is left with: that is thrown.
 */
export async function fetchWithCredential(url: string, init: RequestInit, options: RequestOptions): Promise<Response> {
  const fetcher = options.fetch ?? fetch;
  const { credential } = options;
  if (credential === undefined) return fetcher(url, init);
  const token = await credential.token();
  const response = await fetcher(url, withBearer(init, token));
  if (response.status !== 401) return response;
  const problem = await problemFrom(response);
  const renewed = problem.code === 'credential_expired' ? await credential.renew(token) : null;
  if (renewed === null) throw problem;
  return fetcher(url, withBearer(init, renewed));
}

export async function requestJson<T>(url: string, init: RequestInit, expected: number, options: RequestOptions): Promise<T> {
  const response = await fetchWithCredential(url, { ...init, signal: options.signal }, options);
  if (response.status !== expected) throw await problemFrom(response);
  return (await response.json()) as T;
}

const sessionPath = (sessionId: string) => `/sessions/${encodeURIComponent(sessionId)}`;

/** Creates a session; the answer's `ingestToken` is shown only this once. */
export function createSession(baseUrl: string, body?: CreateSessionBody, options: RequestOptions = {}): Promise<CreatedSession> {
  const init: RequestInit =
    body === undefined
      ? { method: 'POST' }
      : { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) };
  return requestJson(apiUrl(baseUrl, '/sessions'), init, 201, options);
}

export function getSession(baseUrl: string, sessionId: string, options: RequestOptions = {}): Promise<Session> {
  return requestJson(apiUrl(baseUrl, sessionPath(sessionId)), { method: 'GET' }, 200, options);
}

/**
 * Ends a session, with its ingest token or a writer's credential; resolves once every sample
 * the server accepted is committed. Idempotent.
 */
export function endSession(
  baseUrl: string,
  sessionId: string,
  token: string | AccessCredential,
  options: RequestOptions = {},
): Promise<Session> {
  const url = apiUrl(baseUrl, `${sessionPath(sessionId)}/end`);
  if (typeof token !== 'string') return requestJson(url, { method: 'POST' }, 200, { ...options, credential: token });
  return requestJson(url, withBearer({ method: 'POST' }, token), 200, { ...options, credential: undefined });
}

/**
 * Deletes a session, with its ingest token or a writer's credential: its reads answer 404 from
 * now on, its sockets close with 4404, and its key is free. An admin may restore it until the
 * answer's `purgeAfter`. A session deleted already is 404.
 */
export function deleteSession(
  baseUrl: string,
  sessionId: string,
  token: string | AccessCredential,
  options: RequestOptions = {},
): Promise<DeletedSession> {
  const url = apiUrl(baseUrl, sessionPath(sessionId));
  if (typeof token !== 'string') return requestJson(url, { method: 'DELETE' }, 200, { ...options, credential: token });
  return requestJson(url, withBearer({ method: 'DELETE' }, token), 200, { ...options, credential: undefined });
}

/**
 * Restores a deleted session within its grace (an admin's credential in `options`); 404 past
 * it, 409 `key_taken` if a session created since holds its key.
 */
export function restoreSession(baseUrl: string, sessionId: string, options: RequestOptions = {}): Promise<RestoredSession> {
  return requestJson(apiUrl(baseUrl, `${sessionPath(sessionId)}/restore`), { method: 'POST' }, 200, options);
}

export interface PostSamplesOptions extends RequestOptions {
  /** The session's ingest token; without it, `credential` (a key or token with sessions:write) is sent. */
  token?: string;
}

/**
 * Sends samples over HTTP (docs/protocol.md, HTTP ingest), for a producer that cannot hold a
 * socket; resolves once every one is committed. Give them seqs: after a failure, resending
 * the same samples stores each once (those already stored come back as `duplicates`). One
 * call at a time per session: a concurrent one, or one while a socket producer is attached,
 * is refused with 409 `producer_conflict`.
 */
export function postSamples(
  baseUrl: string,
  sessionId: string,
  samples: readonly SampleInput[],
  options: PostSamplesOptions = {},
): Promise<IngestReceipt> {
  return postSampleText(baseUrl, sessionId, `{"samples":[${samples.map(sampleToJson).join(',')}]}`, 'application/json', options);
}

/**
 * postSamples with a body already written: NDJSON (a Sample a line), CSV (a header naming
 * seq, t and the channels, then a sample a line) or JSON, sent as it is.
 */
export function postSampleText(
  baseUrl: string,
  sessionId: string,
  body: string,
  contentType: 'application/json' | 'application/x-ndjson' | 'text/csv',
  options: PostSamplesOptions = {},
): Promise<IngestReceipt> {
  const url = apiUrl(baseUrl, `${sessionPath(sessionId)}/samples`);
  const init: RequestInit = { method: 'POST', headers: { 'content-type': contentType }, body };
  if (options.token === undefined) return requestJson(url, init, 200, options);
  return requestJson(url, withBearer(init, options.token), 200, { ...options, credential: undefined });
}

export interface DataRange {
  /** Inclusive. */
  fromSeq?: number;
  /** Inclusive. */
  toSeq?: number;
  limit?: number;
}

export function dataUrl(baseUrl: string, sessionId: string, format: 'json' | 'ndjson' | 'csv' | 'parquet', range: DataRange = {}): string {
  const query = new URLSearchParams({ format });
  for (const key of ['fromSeq', 'toSeq', 'limit'] as const) {
    if (range[key] !== undefined) query.set(key, String(range[key]));
  }
  return `${apiUrl(baseUrl, `${sessionPath(sessionId)}/data`)}?${query}`;
}

/** A signal that aborts with `outer` or with `inner`, whichever comes first. */
function linkedSignal(outer: AbortSignal | undefined, inner: AbortController): AbortSignal {
  if (outer === undefined) return inner.signal;
  // AbortSignal.any is recent in browsers (2024); the listener does the same where it is missing.
  if (typeof AbortSignal.any === 'function') return AbortSignal.any([outer, inner.signal]);
  if (outer.aborted) inner.abort(outer.reason);
  else outer.addEventListener('abort', () => inner.abort(outer.reason), { once: true });
  return inner.signal;
}

/**
 * A session's stored samples, one at a time, read as NDJSON so that memory stays flat for
 * sessions of any size. Stopping the iteration cancels the request. A body cut off mid-line
 * throws TruncatedDataError; one cut off between chunks makes fetch's reader throw.
 */
export async function* readData(baseUrl: string, sessionId: string, options: DataRange & RequestOptions = {}): AsyncGenerator<Sample> {
  // Cancelling a body's reader does not always drop the connection (undici may keep it, and
  // the server keeps a response in flight); aborting the request does.
  const abort = new AbortController();
  const signal = linkedSignal(options.signal, abort);
  const response = await fetchWithCredential(dataUrl(baseUrl, sessionId, 'ndjson', options), { signal }, options);
  if (response.status !== 200) throw await problemFrom(response);
  if (response.body === null) return;
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let finished = false;
  let pending = '';
  let count = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      pending += decoder.decode(value, { stream: true });
      let start = 0;
      for (let end = pending.indexOf('\n'); end !== -1; end = pending.indexOf('\n', start)) {
        const line = pending.slice(start, end);
        start = end + 1;
        if (line === '') continue;
        count++;
        yield JSON.parse(line) as Sample;
      }
      pending = pending.slice(start);
    }
    finished = true;
    pending += decoder.decode();
    if (pending !== '') throw new TruncatedDataError(count);
  } finally {
    if (!finished) {
      abort.abort();
      await reader.cancel().catch(() => undefined);
    }
  }
}
