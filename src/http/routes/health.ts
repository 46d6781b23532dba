/**
 * Liveness and readiness (docs/API_CONTRACT.yml: /health is the process, /ready the database
 * and queues). /health is always public; /ready too, except in AUTH_MODE=private with a
 * METRICS_TOKEN, where it needs that token as /metrics does: it tells the database's health.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Config } from '../../config.ts';
import { Health, problemResponses, Readiness } from '../../contract/schemas.ts';
import { metricsTokenGuard } from './metrics.ts';

export interface HealthRoutesOptions {
  config: Config;
  readiness: () => Promise<{ ready: boolean; database: boolean; writeQueueBytes: number; draining: boolean }>;
}

export const healthRoutes: FastifyPluginAsyncTypebox<HealthRoutesOptions> = async (server, { config, readiness }) => {
  const guarded = config.access.mode === 'private' && config.metrics.token !== null;
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
        description: 'Public, except with AUTH_MODE=private and a METRICS_TOKEN: then it needs `Authorization: Bearer <METRICS_TOKEN>`.',
        tags: ['health'],
        security: [{}, { metricsToken: [] }],
        response: { 200: Readiness, 503: Readiness, ...problemResponses(401) },
      },
      onRequest: guarded ? metricsTokenGuard(config) : undefined,
    },
    async (_request, reply) => {
      const state = await readiness();
      return reply.code(state.ready ? 200 : 503).send(state);
    },
  );
};
