/** REST: create, get and end sessions (docs/API_CONTRACT.yml, /api/v1/sessions). */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import type { Access } from '../../access/access-service.ts';
import type { Config } from '../../config.ts';
import { defaultChannels } from '../../contract/channels.ts';
import { Problem } from '../../contract/errors.ts';
import {
  CachedReadRequestHeaders,
  CreatedSession,
  CreateSessionBody,
  cachedReadResponses,
  KeyTakenProblem,
  maxMetadataDepth,
  problemResponses,
  Session,
  SessionIdParams,
} from '../../contract/schemas.ts';
import { newIngestToken } from '../../sessions/ingest-token.ts';
import type { SessionCoordinator } from '../../sessions/session-coordinator.ts';
import { CreateCancelledError, KeyTakenError, type SessionRecord, type SessionRepository } from '../../storage/session-repository.ts';
import { sessionVersion } from '../../storage/session-version.ts';
import { auditContext } from '../access-guard.ts';
import type { ReadCache } from '../read-cache.ts';
import { admitRead, admitWriter } from './session-admission.ts';

export function sessionView(record: SessionRecord): Session {
  return {
    sessionId: record.id,
    key: record.key,
    nullable: record.nullable,
    status: record.status,
    createdAt: record.createdAt.toISOString(),
    endedAt: record.endedAt?.toISOString() ?? null,
    channels: record.channels,
    sampleRateHz: record.sampleRateHz,
    retentionDays: record.retentionDays,
    metadata: record.metadata,
    sampleCount: record.sampleCount,
    lastSeq: record.lastSeq,
    firstT: record.firstT,
    lastT: record.lastT,
    viewerUrl: `/view/${record.id}`,
    websocketUrl: `/ws/${record.id}`,
  };
}

/**
 * The 409 of a create whose key is held. The holder's id goes only to a credential that may
 * read the holder (a writer's key may lack sessions:read, or reach only another prefix).
 */
export function keyTaken(request: FastifyRequest, error: KeyTakenError): Problem {
  const { principal } = request.access;
  const holder = error.sessionId === null ? null : { id: error.sessionId, key: error.key };
  const mayRead = holder !== null && principal.can('sessions:read') && principal.reaches(holder);
  return new Problem('key_taken', `a session with the key ${error.key} exists already`, undefined, mayRead ? { sessionId: holder.id } : {});
}

/**
 * A key names a stream that outlives its producer: who may take a name decides whose data a
 * prefixed key later reads as its tenant's. So a key needs a credential in either mode; an
 * anonymous caller in open mode would otherwise squat `tenant/...` names and write to them.
 */
function admitKey(request: FastifyRequest, key: string | null): void {
  const { principal } = request.access;
  if (key !== null && principal.kind === 'anonymous') {
    throw new Problem('missing_credential', 'a session with a key needs an API key or access token with sessions:write');
  }
  if (principal.keyPrefix !== null && !key?.startsWith(principal.keyPrefix))
    throw new Problem('outside_key_prefix', `this credential creates only sessions whose key starts with ${principal.keyPrefix}`);
}

/** Finds a session by an id from the path; an id that is not a UUID is unknown too. */
export async function findSessionOr404(repository: SessionRepository, id: string): Promise<SessionRecord> {
  const record = await repository.find(id);
  if (!record) throw new Problem('not_found', `no session ${id}`);
  return record;
}

/**
 * Whether a parsed JSON value nests objects and arrays deeper than `limit` levels (the value
 * itself being level 1). Iterative, with an explicit stack bounded by the body size, so that
 * any depth is safe to ask about: this check runs first to keep the recursive steps safe.
 */
function nestsDeeperThan(value: unknown, limit: number): boolean {
  const pending = [{ item: value, depth: 1 }];
  while (pending.length > 0) {
    const { item, depth } = pending.pop()!;
    if (item === null || typeof item !== 'object') continue;
    if (depth > limit) return true;
    for (const child of Object.values(item)) pending.push({ item: child, depth: depth + 1 });
  }
  return false;
}

/** U+0000 and lone surrogates: valid in JSON text, refused by PostgreSQL's jsonb. */
const unstorable = /[\0\p{Cs}]/u;

/**
 * What in metadata cannot be stored as it was sent, or null: a character PostgreSQL's jsonb
 * refuses, in any string or key, or a number JSON.parse made infinite (1e400), which JSON
 * would store as null. Iterative, like nestsDeeperThan.
 */
function unstorableIn(metadata: object): string | null {
  const pending: unknown[] = [metadata];
  while (pending.length > 0) {
    const item = pending.pop();
    if (typeof item === 'string' && unstorable.test(item))
      return 'metadata cannot hold the character U+0000 or an unpaired surrogate (\\uD800-\\uDFFF alone)';
    if (typeof item === 'number' && !Number.isFinite(item))
      return 'metadata cannot hold a number beyond the float64 range (about 1.8e308): it would be stored as null';
    if (item !== null && typeof item === 'object') {
      for (const [key, child] of Object.entries(item)) pending.push(key, child);
    }
  }
  return null;
}

export interface SessionRoutesOptions {
  config: Config;
  repository: SessionRepository;
  coordinator: SessionCoordinator;
  access: Pick<Access, 'audit'>;
  readCache: ReadCache;
}

/**
 * Retry-After of a create the database cancelled (most often its statement_timeout): a lock
 * or a load spike usually passes within seconds.
 */
const cancelledRetryAfterS = 1;
/**
 * Retry-After of an end whose samples were not committed in time: as for a database out of
 * reach, whose outage or restart takes seconds at least.
 */
const endRetryAfterS = 5;

export const sessionRoutes: FastifyPluginAsyncTypebox<SessionRoutesOptions> = async (server, options) => {
  const { config, repository, coordinator, readCache } = options;
  server.post(
    '/api/v1/sessions',
    {
      // Creation writes to the database and is what an abuser would loop on: a stricter limit.
      config: {
        rateLimit: config.http.createRateLimitPerMinute > 0 ? { max: config.http.createRateLimitPerMinute, timeWindow: 60_000 } : false,
        access: { scope: 'sessions:write', on: 'collection' },
      },
      // The body is optional: the openSCG phone POSTs nothing at all
      // (test/integration/legacy.test.ts).
      preValidation: async (request) => {
        request.body ??= {};
        // Before the schema and the handler, whose steps recurse once a level of metadata.
        const metadata = (request.body as { metadata?: unknown }).metadata;
        if (nestsDeeperThan(metadata, maxMetadataDepth))
          throw new Problem('invalid_request', `metadata nests deeper than ${maxMetadataDepth} levels`);
      },
      schema: {
        summary: 'Create a session',
        tags: ['sessions'],
        body: CreateSessionBody,
        security: [{}, { bearer: [] }],
        response: { 201: CreatedSession, ...problemResponses(400, 401, 403, 413, 415, 429, 503), 409: KeyTakenProblem },
      },
    },
    async (request, reply) => {
      const body = request.body;
      const key = body.key ?? null;
      admitKey(request, key);
      const channels = body.channels ?? defaultChannels;
      if (channels.length > config.sessions.maxChannels) {
        throw new Problem('invalid_request', `at most ${config.sessions.maxChannels} channels`);
      }
      if (channels.some((name) => name === 'seq' || name === 't')) {
        throw new Problem('invalid_request', 'channel names seq and t are reserved');
      }
      const metadata = (body.metadata ?? {}) as Record<string, unknown>;
      const metadataBytes = Buffer.byteLength(JSON.stringify(metadata));
      if (metadataBytes > config.sessions.maxMetadataBytes) {
        throw new Problem('metadata_too_large', `metadata is ${metadataBytes} bytes; the limit is ${config.sessions.maxMetadataBytes}`);
      }
      const unstorableDetail = unstorableIn(metadata);
      if (unstorableDetail !== null) throw new Problem('invalid_request', unstorableDetail);
      const { token, hash } = newIngestToken();
      const record = await repository
        .create({
          id: crypto.randomUUID(),
          tokenHash: hash,
          key,
          nullable: body.nullable === true,
          channels,
          sampleRateHz: body.sampleRateHz ?? null,
          retentionDays: body.retentionDays ?? null,
          metadata,
        })
        .catch((error: unknown) => {
          if (error instanceof KeyTakenError) throw keyTaken(request, error);
          // Nothing was stored, so the client may simply retry (docs/errors.md). A database
          // that cannot be reached is answered 503 by the server's error handler.
          if (error instanceof CreateCancelledError) {
            // 57014 is also what an operator's pg_cancel_backend gives: the message must not claim a timeout.
            request.log.warn({ err: error }, 'session create cancelled by the database');
            throw new Problem(
              'service_unavailable',
              'the session was not stored: its insert was cancelled ' +
                `or did not finish within ${config.sessions.createTimeoutMs} ms; retry in ${cancelledRetryAfterS} s`,
              cancelledRetryAfterS,
            );
          }
          throw error;
        });
      options.access.audit.record(auditContext(request), { action: 'session.create', target: record.id, outcome: 'success' });
      const view = sessionView(record);
      return reply
        .code(201)
        .header('location', `/api/v1/sessions/${record.id}`)
        .send({ ...view, websocketUrl: `${view.websocketUrl}?token=${token}`, ingestToken: token });
    },
  );

  server.get(
    '/api/v1/sessions/:id',
    {
      config: { access: { scope: 'sessions:read', on: 'session', ingestToken: true } },
      schema: {
        summary: 'Get a session',
        description: "The session's own ingest token reads it too, in either mode (not its data).",
        tags: ['sessions'],
        params: SessionIdParams,
        headers: CachedReadRequestHeaders,
        security: [{}, { bearer: [] }, { ingestToken: [] }],
        response: { ...cachedReadResponses(Session), ...problemResponses(401, 403, 404, 429, 503) },
      },
    },
    async (request, reply) => {
      const record = await findSessionOr404(repository, request.params.id);
      admitRead(config, request, record);
      return readCache.answer(request, reply, {
        resource: 'session',
        version: sessionVersion(record),
        variant: null,
        produce: async () => ({ json: sessionView(record) }),
      });
    },
  );

  server.post(
    '/api/v1/sessions/:id/end',
    {
      config: { access: { scope: 'sessions:write', on: 'session', ingestToken: true } },
      schema: {
        summary: 'End a session',
        description:
          'Returns once every sample accepted so far is committed. If that takes longer than SESSION_END_TIMEOUT_MS, ' +
          'answers 503 with Retry-After: the session is not ended yet, and accepts nothing more; a retry finishes it. Idempotent.',
        tags: ['sessions'],
        params: SessionIdParams,
        security: [{ ingestToken: [] }, { bearer: [] }],
        response: { 200: Session, ...problemResponses(401, 403, 404, 409, 429, 503) },
      },
    },
    async (request) => {
      const record = await findSessionOr404(repository, request.params.id);
      admitWriter(config, request, record, config.sessions.legacyTokenlessEnd);
      if (record.status === 'ended') return sessionView(record);
      const outcome = await coordinator.endSession(record.id, config.sessions.endTimeoutMs);
      if (!outcome.ok) {
        if (outcome.refusal === 'not_committed') {
          throw new Problem(
            'service_unavailable',
            `the session's samples were not all committed within ${config.sessions.endTimeoutMs} ms ` +
              `(the database is out of reach or slow); it is not ended yet and accepts nothing more: retry in ${endRetryAfterS} s`,
            endRetryAfterS,
          );
        }
        throw outcome.refusal === 'producer_elsewhere'
          ? new Problem('producer_elsewhere', 'the producer is connected to another instance')
          : new Problem('not_found', `no session ${record.id}`);
      }
      options.access.audit.record(auditContext(request), { action: 'session.end', target: record.id, outcome: 'success' });
      return sessionView(outcome.session);
    },
  );
};
