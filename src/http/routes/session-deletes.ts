/**
 * REST: soft delete and restore of a session (docs/API_CONTRACT.yml, DELETE /api/v1/sessions/{id}
 * and POST /api/v1/sessions/{id}/restore; issue #20). A delete hides the session from every
 * read at once, since every lookup skips deleted rows (storage/session-repository.ts), and
 * closes its sockets on every instance; an admin may restore it within DELETE_GRACE_DAYS,
 * after which maintenance/session-purger.ts deletes it.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Static } from 'typebox';
import type { Access } from '../../access/access-service.ts';
import type { Config } from '../../config.ts';
import { Problem } from '../../contract/errors.ts';
import { DeletedSession, KeyTakenProblem, problemResponses, RestoredSession, SessionIdParams } from '../../contract/schemas.ts';
import type { SessionCoordinator } from '../../sessions/session-coordinator.ts';
import type { SessionDeletes } from '../../storage/session-deletes.ts';
import { KeyTakenError, type SessionRecord, type SessionRepository } from '../../storage/session-repository.ts';
import { auditContext, authorizeSession } from '../access-guard.ts';
import { admitWriter, sessionRef } from './session-admission.ts';
import { findSessionOr404, keyTaken, sessionView } from './sessions.ts';

export interface SessionDeleteRoutesOptions {
  config: Config;
  repository: SessionRepository;
  deletes: SessionDeletes;
  coordinator: SessionCoordinator;
  access: Pick<Access, 'audit'>;
}

const dayMs = 86_400_000;

/** How long a deleted session may be restored: DELETE_GRACE_DAYS. */
export function deleteGraceMs(config: Config): number {
  return config.sessions.deleteGraceDays * dayMs;
}

/** A deleted session as its DELETE answers it and a listing of deleted sessions shows it. */
export function deletedView(record: SessionRecord, deletedAt: Date, graceMs: number): Static<typeof DeletedSession> {
  return {
    ...sessionView(record),
    deletedAt: deletedAt.toISOString(),
    purgeAfter: new Date(deletedAt.getTime() + graceMs).toISOString(),
  };
}

export const sessionDeleteRoutes: FastifyPluginAsyncTypebox<SessionDeleteRoutesOptions> = async (server, options) => {
  const { config, repository, deletes, coordinator } = options;
  const graceMs = deleteGraceMs(config);

  server.delete(
    '/api/v1/sessions/:id',
    {
      config: { access: { scope: 'sessions:write', on: 'session', ingestToken: true } },
      schema: {
        summary: 'Delete a session',
        description:
          'Soft delete: from now on every read of it answers 404 (its record, /data, /latest, aggregates; lists and ' +
          'leaderboards skip it), its producer and viewers are closed with 4404 on every instance, and its key may be ' +
          'taken by a new session. An admin may restore it until purgeAfter (DELETE_GRACE_DAYS); after that it is purged. ' +
          'Its ingest token deletes it too. A session deleted already is 404.',
        tags: ['sessions'],
        params: SessionIdParams,
        security: [{ ingestToken: [] }, { bearer: [] }],
        response: { 200: DeletedSession, ...problemResponses(401, 403, 404, 429, 503) },
      },
    },
    async (request) => {
      const record = await findSessionOr404(repository, request.params.id);
      admitWriter(config, request, record);
      const deleted = await deletes.markDeleted(record.id);
      // Deleted meanwhile by another request, which answered 200 and closed the sockets.
      if (deleted === null || deleted.deletedAt === null) throw new Problem('not_found', `no session ${record.id}`);
      await coordinator.sessionDeleted(record.id);
      options.access.audit.record(auditContext(request), { action: 'session.delete', target: record.id, outcome: 'success' });
      return deletedView(deleted, deleted.deletedAt, graceMs);
    },
  );

  server.post(
    '/api/v1/sessions/:id/restore',
    {
      config: { access: { scope: 'admin', on: 'session' } },
      schema: {
        summary: 'Restore a deleted session',
        description:
          'Within DELETE_GRACE_DAYS of its delete: the session is back as it was, samples and all (a new ingest ' +
          'socket may attach; ended stays ended). A session not deleted is answered as it is. 404 for an unknown ' +
          'session or one past its grace (purged, or about to be); 409 key_taken if a session created since holds its key.',
        tags: ['sessions'],
        params: SessionIdParams,
        security: [{ bearer: [] }],
        response: { 200: RestoredSession, ...problemResponses(401, 403, 404, 429, 503), 409: KeyTakenProblem },
      },
    },
    async (request) => {
      const { id } = request.params;
      const found = await deletes.findAny(id);
      if (found === null) throw new Problem('not_found', `no session ${id}`);
      authorizeSession(config, request, 'admin', sessionRef(found));
      const audit = (outcome: string) =>
        options.access.audit.record(auditContext(request), { action: 'session.restore', target: found.id, outcome });
      const restored = await deletes.restore(found.id, graceMs).catch((error: unknown) => {
        if (!(error instanceof KeyTakenError)) throw error;
        audit('key_taken');
        throw keyTaken(request, error);
      });
      if (restored === null) {
        audit('past_grace');
        throw new Problem('not_found', `session ${id} was deleted more than ${config.sessions.deleteGraceDays} days ago`);
      }
      if (found.deletedAt !== null) audit('success');
      return { ...sessionView(restored), deletedAt: null };
    },
  );
};
