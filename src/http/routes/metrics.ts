/** `GET /metrics`: Prometheus text exposition of every instrument (docs/metrics.md). */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import type { Metrics } from '../../observability/metrics.ts';

export interface MetricsRoutesOptions {
  metrics: Metrics;
}

export const metricsRoutes: FastifyPluginAsyncTypebox<MetricsRoutesOptions> = async (server, { metrics }) => {
  server.get(
    '/metrics',
    {
      config: { rateLimit: false },
      schema: {
        summary: 'Prometheus metrics',
        tags: ['health'],
        produces: ['text/plain'],
        response: { 200: { description: 'Prometheus text format 0.0.4', content: { 'text/plain': { schema: Type.String() } } } },
      },
    },
    async (_request, reply) => {
      const body = await metrics.registry.metrics();
      return reply.type(metrics.registry.contentType).send(body as never);
    },
  );
};
