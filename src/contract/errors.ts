/**
 * The one catalogue of what Wavehouse answers when something is wrong: REST problems
 * (RFC 9457 problem+json), socket error-frame codes and socket close codes. Each entry is a
 * stable code, its status or close code, and one sentence. docs/errors.md lists the same
 * table; test/unit/errors-doc.test.ts checks that every code here is documented there.
 */

export const problems = {
  invalid_request: { status: 400, title: 'The request is malformed or fails its schema.' },
  aggregate_too_large: {
    status: 400,
    title: 'The aggregate would span more buckets, bucket-channel cells or sessions than one answer holds.',
  },
  metadata_too_large: { status: 400, title: 'Session metadata is larger than the configured limit once encoded as JSON.' },
  invalid_token: { status: 401, title: 'The credential is missing or wrong: the ingest token of the session, or the metrics token.' },
  missing_credential: { status: 401, title: 'This call needs an API key or an access token: Authorization: Bearer <it>.' },
  invalid_credential: { status: 401, title: 'The API key, access token or refresh token is not one this server accepts.' },
  credential_expired: {
    status: 401,
    title: 'The API key, access token or refresh token has expired; exchange or refresh it for a new one.',
  },
  credential_revoked: { status: 401, title: 'The API key, or the family of the refresh token, has been revoked.' },
  insufficient_scope: { status: 403, title: 'The credential is valid but lacks the scope this call needs.' },
  outside_key_prefix: {
    status: 403,
    title: "The credential is limited to sessions whose key starts with its prefix, and this session's does not.",
  },
  not_found: { status: 404, title: 'No such resource: an unknown session, an id that is not a UUID, or an unknown path.' },
  method_not_allowed: { status: 405, title: 'The path exists but not with this method.' },
  producer_elsewhere: {
    status: 409,
    title: 'A producer of this session is connected to another instance; end it there or retry once it disconnects.',
  },
  key_taken: {
    status: 409,
    title: 'A session with this key exists already; its id is in sessionId when the credential may read that session.',
  },
  producer_conflict: {
    status: 409,
    title: 'A producer is attached to this session (a socket, or another HTTP ingest request), on this instance or another.',
  },
  session_ended: { status: 409, title: 'The session has ended; nothing more is accepted.' },
  invalid_frame: { status: 400, title: 'The samples are not a valid body: not JSON, NDJSON or CSV as sent, or a bad seq, t or value.' },
  wrong_channels: { status: 400, title: "A sample's keys, other than seq and t, are not exactly the session's channels." },
  seq_not_increasing: { status: 400, title: 'The seqs within the body do not strictly increase.' },
  frame_too_large: {
    status: 413,
    title: 'The body is over the ingest limit in bytes or samples (INGEST_MAX_FRAME_BYTES, INGEST_MAX_FRAME_SAMPLES).',
  },
  rate_limited: { status: 429, title: 'Too many requests from this client; retry after the number of seconds in Retry-After.' },
  payload_too_large: { status: 413, title: 'The request body is larger than the configured limit.' },
  unsupported_media_type: { status: 415, title: 'The request body is not JSON.' },
  service_unavailable: { status: 503, title: 'The server is shutting down or cannot reach its database; retry shortly.' },
  internal_error: { status: 500, title: 'An unexpected error; it has been logged with the request id.' },
  access_tokens_off: { status: 501, title: 'This server issues no access tokens: it has no signing key (ACCESS_TOKEN_SIGNING_KEY).' },
  connector_secrets_off: { status: 501, title: 'This server stores no connector secrets: it has no CONNECTOR_SECRET_KEY.' },
} as const satisfies Record<string, { status: number; title: string }>;

export type ProblemCode = keyof typeof problems;

/**
 * An expected REST failure, turned into problem+json by the error handler; `retryAfterS`, if
 * given, is sent as Retry-After, and `extensions` are members added to the body (RFC 9457
 * section 3.2), which the route's response schema for the status must declare.
 */
export class Problem extends Error {
  readonly status: number;
  constructor(
    readonly code: ProblemCode,
    readonly detail: string = problems[code].title,
    readonly retryAfterS?: number,
    readonly extensions?: Readonly<Record<string, unknown>>,
  ) {
    super(detail);
    this.name = 'Problem';
    this.status = problems[code].status;
  }
}

/** Retry-After when the database cannot be reached: an outage or a restart takes seconds at least. */
const databaseRetryAfterS = 5;

/** The answer to a request that needs the database while it cannot be reached (REST and socket upgrades alike). */
export function databaseUnavailable(): Problem {
  return new Problem(
    'service_unavailable',
    `the server cannot reach its database, or it is too busy to answer; retry in ${databaseRetryAfterS} s`,
    databaseRetryAfterS,
  );
}

export function problemBody(code: ProblemCode, detail: string) {
  return {
    type: `urn:wavehouse:problem:${code}`,
    title: problems[code].title,
    status: problems[code].status,
    detail,
    code,
  };
}

/** Codes of `{"type":"error","code":...}` frames on the ingest socket. */
export const frameErrors = {
  invalid_frame: 'The frame is not JSON (or a well-formed binary frame), not one of the accepted shapes, or holds a bad seq, t or value.',
  wrong_channels: "A sample's keys, other than seq and t, are not exactly the session's channels.",
  seq_not_increasing: 'The seqs within the frame do not strictly increase.',
  frame_too_large: 'The frame is over the soft limit in bytes or samples.',
  session_ended: 'The session has ended; nothing more is accepted.',
  rate_limited: "The frame would exceed the producer's samples per second; it was not stored and does not count as misbehaviour.",
} as const satisfies Record<string, string>;

export type FrameErrorCode = keyof typeof frameErrors;

/** WebSocket close codes Wavehouse uses, with the reason sent alongside. */
export const closeCodes = {
  normal: { code: 1000, reason: 'The session ended, or the viewer read all there was.' },
  policy_violation: {
    code: 1008,
    reason: 'Too many rejected frames in a minute, or a live fromSeq that is not an integer from 0 to 2^53-1.',
  },
  message_too_big: { code: 1009, reason: 'A frame was over the hard size limit.' },
  internal_error: { code: 1011, reason: 'An unexpected server error.' },
  service_restart: { code: 1012, reason: 'The server is shutting down; reconnect (and resend what was not acked).' },
  try_again_later: { code: 1013, reason: 'Too far behind, or the database is out of reach; reconnect later (a viewer with fromSeq).' },
  invalid_token: { code: 4401, reason: 'The ingest token, API key or access token is missing or not accepted.' },
  forbidden: { code: 4403, reason: 'The credential is valid but lacks the scope, or does not reach this session.' },
  session_not_found: { code: 4404, reason: 'No such session, or it was deleted.' },
  producer_conflict: { code: 4409, reason: 'A producer is already connected, or the session has ended.' },
  too_many_connections: {
    code: 4429,
    reason: 'Too many sockets from this client, or too many viewers of this session or of this instance; retry later.',
  },
} as const satisfies Record<string, { code: number; reason: string }>;

export type CloseName = keyof typeof closeCodes;
