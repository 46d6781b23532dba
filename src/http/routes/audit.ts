/** REST: the audit log, newest first, a page at a time (access/audit-trail.ts). */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Access } from '../../access/access-service.ts';
import { AuditPage, AuditQueryString } from '../../contract/access-schemas.ts';
import { Problem } from '../../contract/errors.ts';
import { problemResponses } from '../../contract/schemas.ts';

export interface AuditRoutesOptions {
  access: Access;
}

export const auditRoutes: FastifyPluginAsyncTypebox<AuditRoutesOptions> = async (server, { access }) => {
  server.get(
    '/api/v1/audit',
    {
      config: { access: { scope: 'admin', on: 'collection' } },
      schema: {
        summary: 'Read the audit log',
        description:
          'Session creates and ends, key creates and revocations, token family revocations, and refused credentials ' +
          '(counted per client address, reason and key, a row a minute). Needs the admin scope.',
        tags: ['access'],
        security: [{ bearer: [] }],
        querystring: AuditQueryString,
        response: { 200: AuditPage, ...problemResponses(400, 401, 403, 429, 503) },
      },
    },
    async (request) => {
      const page = await access.audit.list(request.query);
      if (!page.ok) throw new Problem('invalid_request', page.problem);
      return { entries: page.entries.map((entry) => ({ ...entry, at: entry.at.toISOString() })), nextCursor: page.nextCursor };
    },
  );
};
