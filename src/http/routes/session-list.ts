/** REST: list sessions, newest first, a page at a time (sessions/session-listing.ts). */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Config } from '../../config.ts';
import { Problem } from '../../contract/errors.ts';
import { problemResponses } from '../../contract/schemas.ts';
import { SessionList, SessionListQuery } from '../../contract/session-list-schemas.ts';
import { decodeCursor, encodeCursor, type SessionFilter, withinReach } from '../../sessions/session-listing.ts';
import type { SessionRepository } from '../../storage/session-repository.ts';
import { judge, refuse } from '../access-guard.ts';
import { deletedView, deleteGraceMs } from './session-deletes.ts';
import { sessionView } from './sessions.ts';

export interface SessionListRoutesOptions {
  config: Config;
  repository: SessionRepository;
}

function dateOf(name: string, text: string | undefined): Date | undefined {
  if (text === undefined) return undefined;
  const date = new Date(text);
  if (Number.isNaN(date.getTime())) throw new Problem('invalid_request', `${name} is not a date-time`);
  return date;
}

export const sessionListRoutes: FastifyPluginAsyncTypebox<SessionListRoutesOptions> = async (server, { config, repository }) => {
  const graceMs = deleteGraceMs(config);
  server.get(
    '/api/v1/sessions',
    {
      // Ids are read capabilities (in open mode an id reads its session), so listing them
      // needs the read scope in either mode.
      config: { access: { scope: 'sessions:read', on: 'collection' } },
      schema: {
        summary: 'List sessions',
        description:
          'Newest first. A credential limited to a key prefix lists only sessions whose key starts with it. ' +
          'Needs the sessions:read scope, in open mode too. With deleted=true, the deleted sessions an admin may still ' +
          'restore (POST /sessions/{id}/restore) or that wait for their purge: that needs the admin scope.',
        tags: ['sessions'],
        security: [{ bearer: [] }],
        querystring: SessionListQuery,
        response: { 200: SessionList, ...problemResponses(400, 401, 403, 429, 503) },
      },
    },
    async (request) => {
      const { cursor, limit = 100, ...query } = request.query;
      // Restoring is the admin's (session-deletes.ts), and so is finding what to restore.
      if (query.deleted === true) refuse(judge(config.access.mode, request.access.principal, { scope: 'admin' }));
      const after = cursor === undefined ? null : decodeCursor(cursor);
      if (after === null && cursor !== undefined)
        throw new Problem('invalid_request', 'cursor is malformed: pass back a nextCursor as it was given');
      const asked: SessionFilter = {
        key: query.key,
        keyPrefix: query.keyPrefix,
        status: query.status,
        createdAfter: dateOf('createdAfter', query.createdAfter),
        createdBefore: dateOf('createdBefore', query.createdBefore),
        deleted: query.deleted,
      };
      const filter = withinReach(asked, request.access.principal.keyPrefix);
      if (filter === null) return { sessions: [], nextCursor: null };
      const page = await repository.list(filter, limit, after);
      const sessions = page.records.map((record) =>
        record.deletedAt === null ? sessionView(record) : deletedView(record, record.deletedAt, graceMs),
      );
      return { sessions, nextCursor: page.next === null ? null : encodeCursor(page.next) };
    },
  );
};
