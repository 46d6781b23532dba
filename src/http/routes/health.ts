/**
 * Liveness and readiness (docs/API_CONTRACT.yml: /health is the process, /ready the database
 * and queues).
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Health, Readiness } from '../../contract/schemas.ts';

export interface HealthRoutesOptions {
  readiness: () => Promise<{ ready: boolean; database: boolean; writeQueueBytes: number; draining: boolean }>;
}

export const healthRoutes: FastifyPluginAsyncTypebox<HealthRoutesOptions> = async (server, { readiness }) => {
  server.get(
    '/health',
    // Probes and scrapers are not rate limited: a health check must never see a 429.
    { config: { rateLimit: false }, schema: { summary: 'Liveness: the process answers', tags: ['health'], response: { 200: Health } } },
    async () => ({ status: 'ok' as const }),
  );
  server.get(
    '/ready',
    {
      config: { rateLimit: false },
      schema: {
        summary: 'Readiness: database reachable, write queue below its bound, not draining',
        tags: ['health'],
        response: { 200: Readiness, 503: Readiness },
      },
    },
    async (_request, reply) => {
      const state = await readiness();
      return reply.code(state.ready ? 200 : 503).send(state);
    },
  );
};
