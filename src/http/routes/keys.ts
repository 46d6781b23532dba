/** REST: API keys, created, listed and revoked by an admin (docs/security.md). */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Access } from '../../access/access-service.ts';
import type { ApiKeyView } from '../../access/api-keys.ts';
import { type ApiKey, CreatedKey, CreateKeyBody, KeyIdParams, KeyList, ApiKey as KeySchema } from '../../contract/access-schemas.ts';
import { Problem } from '../../contract/errors.ts';
import { problemResponses, uuidPattern } from '../../contract/schemas.ts';
import { auditContext } from '../access-guard.ts';

export interface KeyRoutesOptions {
  access: Access;
}

function keyView(view: ApiKeyView): ApiKey {
  return {
    ...view,
    limits: { ...view.limits },
    expiresAt: view.expiresAt?.toISOString() ?? null,
    createdAt: view.createdAt.toISOString(),
    revokedAt: view.revokedAt?.toISOString() ?? null,
    lastUsedAt: view.lastUsedAt?.toISOString() ?? null,
  };
}

const admin = { access: { scope: 'admin', on: 'collection' } } as const;

export const keyRoutes: FastifyPluginAsyncTypebox<KeyRoutesOptions> = async (server, { access }) => {
  server.post(
    '/api/v1/keys',
    {
      config: admin,
      schema: {
        summary: 'Create an API key',
        description: 'The key is in this answer only; it is stored as a hash. Needs the admin scope.',
        tags: ['access'],
        security: [{ bearer: [] }],
        body: CreateKeyBody,
        response: { 201: CreatedKey, ...problemResponses(400, 401, 403, 429, 503) },
      },
    },
    async (request, reply) => {
      const { expiresAt, ...rest } = request.body;
      const created = await access.keys.create(
        { ...rest, expiresAt: expiresAt == null ? null : new Date(expiresAt) },
        auditContext(request),
      );
      if (!created.ok) throw new Problem('invalid_request', created.problem);
      return reply.code(201).send({ ...keyView(created.view), key: created.key });
    },
  );

  server.get(
    '/api/v1/keys',
    {
      config: admin,
      schema: {
        summary: 'List the API keys',
        description: 'Never a key or its hash. Needs the admin scope.',
        tags: ['access'],
        security: [{ bearer: [] }],
        response: { 200: KeyList, ...problemResponses(401, 403, 429, 503) },
      },
    },
    async () => ({ keys: (await access.keys.list()).map(keyView) }),
  );

  server.delete(
    '/api/v1/keys/:id',
    {
      config: admin,
      schema: {
        summary: 'Revoke an API key',
        description:
          'At once on this instance and, with REDIS_URL, on every other; without Redis, others stop accepting it ' +
          'within AUTH_CACHE_TTL_MS. Its access tokens and refresh tokens stop with it. Revoking twice answers the key again.',
        tags: ['access'],
        security: [{ bearer: [] }],
        params: KeyIdParams,
        response: { 200: KeySchema, ...problemResponses(401, 403, 404, 429, 503) },
      },
    },
    async (request) => {
      const { id } = request.params;
      const revoked = uuidPattern.test(id) ? await access.keys.revoke(id, auditContext(request)) : null;
      if (revoked === null) throw new Problem('not_found', `no key ${id}`);
      return keyView(revoked);
    },
  );
};
