/**
 * Who may act on one session once the route has loaded it: the session-bound half of the
 * access step (access-guard.ts) for the routes that also take the session's own ingest token,
 * which only its stored hash can check.
 */
import type { FastifyRequest } from 'fastify';
import { Principal, type SessionRef } from '../../access/principal.ts';
import type { Config } from '../../config.ts';
import { Problem } from '../../contract/errors.ts';
import { tokenMatches } from '../../sessions/ingest-token.ts';
import type { SessionRecord } from '../../storage/session-repository.ts';
import { authorizeSession } from '../access-guard.ts';

/** What access checks a session against: its id and its key (stream name), which a key's prefix must match. */
export function sessionRef(record: SessionRecord): SessionRef {
  return { id: record.id, key: record.key };
}

/** Whether the request presents `record`'s own ingest token; it then acts as that session's producer. */
function ownIngestToken(request: FastifyRequest, record: SessionRecord): boolean {
  const { ingestToken } = request.access;
  if (ingestToken === null || !tokenMatches(ingestToken, record.tokenHash)) return false;
  request.access.principal = Principal.ingest(record.id);
  return true;
}

/**
 * Who may read `record`: whoever may read it in this mode, and, in either mode, its own ingest
 * token, so that a producer holding nothing else can read the channels and last seq it
 * resumes from (docs/security.md, threat model). The record only: not /data, not the live
 * socket. Any other opaque bearer is what it always was: ignored in open mode, insufficient in
 * private mode.
 */
export function admitRead(config: Config, request: FastifyRequest, record: SessionRecord): void {
  if (ownIngestToken(request, record)) return;
  if (request.access.ingestToken !== null && config.access.mode === 'private') {
    throw new Problem('insufficient_scope', "an ingest token reads only its own session's record");
  }
  authorizeSession(config, request, 'sessions:read', sessionRef(record));
}

/**
 * Who may write to `record` (end it, or ingest into it): its ingest token (the session's own),
 * or a key or token with sessions:write that reaches it; with neither, no one, unless
 * `tokenless` (LEGACY_TOKENLESS_END for end, open mode: private mode refused the anonymous
 * call already).
 */
export function admitWriter(config: Config, request: FastifyRequest, record: SessionRecord, tokenless = false): void {
  const { principal, ingestToken, malformed } = request.access;
  if (ingestToken !== null) {
    if (!ownIngestToken(request, record)) throw refusedWriter();
  } else if (principal.kind === 'anonymous') {
    if (malformed || !tokenless) throw refusedWriter();
  } else authorizeSession(config, request, 'sessions:write', sessionRef(record));
}

/** Made only when thrown: a Problem is an Error, whose stack trace costs tens of us, and every ingest request comes here. */
function refusedWriter(): Problem {
  return new Problem('invalid_token', 'a valid ingest token is required: Authorization: Bearer <ingestToken>');
}
