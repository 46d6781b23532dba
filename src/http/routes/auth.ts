/**
 * REST: exchanging an API key for an access token and a refresh token, refreshing them, and
 * logging out (access/token-service.ts). A refresh token is used once; used again, its family
 * is revoked (audited), and so it is by a logout.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import Type from 'typebox';
import type { Access } from '../../access/access-service.ts';
import type { TokenService } from '../../access/token-service.ts';
import { RefreshBody, TokenPair } from '../../contract/access-schemas.ts';
import { Problem } from '../../contract/errors.ts';
import { problemResponses } from '../../contract/schemas.ts';

export interface AuthRoutesOptions {
  access: Access;
}

function tokensOf(access: Access): TokenService {
  if (access.tokens === null) throw new Problem('access_tokens_off');
  return access.tokens;
}

function callerOf(request: FastifyRequest) {
  return { ip: request.ip, requestId: request.id };
}

export const authRoutes: FastifyPluginAsyncTypebox<AuthRoutesOptions> = async (server, { access }) => {
  server.post(
    '/api/v1/auth/token',
    {
      // Any valid key may be exchanged: the token carries the key's own scopes and prefix.
      config: { access: { scope: null, on: 'collection' } },
      schema: {
        summary: 'Exchange an API key for tokens',
        description: 'Send the key as Authorization: Bearer. The access token carries its scopes and prefix.',
        tags: ['access'],
        security: [{ bearer: [] }],
        response: { 200: TokenPair, ...problemResponses(401, 429, 501, 503) },
      },
    },
    async (request) => {
      const exchanged = await tokensOf(access).exchange(request.access.principal, callerOf(request));
      if (!exchanged.ok) throw new Problem(exchanged.code, 'only an API key is exchanged for tokens');
      return exchanged.pair;
    },
  );

  server.post(
    '/api/v1/auth/refresh',
    {
      schema: {
        summary: 'Refresh the tokens',
        description: 'Uses the refresh token up and answers a new pair. A refresh token used twice revokes its family.',
        tags: ['access'],
        body: RefreshBody,
        response: { 200: TokenPair, ...problemResponses(400, 401, 429, 501, 503) },
      },
    },
    async (request) => {
      const refreshed = await tokensOf(access).refresh(request.body.refreshToken, callerOf(request));
      if (!refreshed.ok) throw new Problem(refreshed.code);
      return refreshed.pair;
    },
  );

  server.post(
    '/api/v1/auth/logout',
    {
      schema: {
        summary: 'Log out',
        description: 'Revokes the family of the refresh token, used or not. Logging out twice is no error.',
        tags: ['access'],
        body: RefreshBody,
        response: { 204: Type.Null({ description: 'Logged out.' }), ...problemResponses(400, 401, 429, 501, 503) },
      },
    },
    async (request, reply) => {
      const outcome = await tokensOf(access).logout(request.body.refreshToken, callerOf(request));
      if (!outcome.ok) throw new Problem(outcome.code);
      return reply.code(204).send(null);
    },
  );
};
