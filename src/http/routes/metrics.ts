/**
 * `GET /metrics`: Prometheus text exposition of every instrument (docs/metrics.md).
 *
 * Public unless METRICS_TOKEN is set; then only `Authorization: Bearer <METRICS_TOKEN>` reads
 * it, and anything else is a 401 with `WWW-Authenticate: Bearer` (RFC 6750). The metrics tell
 * an outsider the load, the sessions streaming and the database's health.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { onRequestAsyncHookHandler } from 'fastify';
import Type from 'typebox';
import { bearerText } from '../../access/bearer.ts';
import type { Config } from '../../config.ts';
import { Problem } from '../../contract/schemas.ts';
import type { Metrics } from '../../observability/metrics.ts';
import { sendProblem } from '../server.ts';

export interface MetricsRoutesOptions {
  config: Config;
  metrics: Metrics;
}

/**
 * Compares digests, which have one length whatever was sent: timingSafeEqual alone would
 * throw on a length that differs, and an early return on it would tell the token's length.
 */
function tokenCheck(token: string): (presented: string) => boolean {
  const digest = (text: string) => createHash('sha256').update(text).digest();
  const expected = digest(token);
  return (presented) => timingSafeEqual(digest(presented), expected);
}

/**
 * The check of METRICS_TOKEN, as an onRequest hook; undefined when none is set. /ready takes
 * it too in private mode (health.ts).
 */
export function metricsTokenGuard(config: Config): onRequestAsyncHookHandler | undefined {
  if (config.metrics.token === null) return undefined;
  const isMetricsToken = tokenCheck(config.metrics.token);
  return async (request, reply) => {
    const presented = bearerText(request.headers.authorization);
    if (typeof presented === 'object' && isMetricsToken(presented.text)) return;
    // RFC 6750 3.1: no error code when no token was sent, invalid_token for a wrong one.
    reply.header('www-authenticate', presented === 'absent' ? 'Bearer realm="metrics"' : 'Bearer realm="metrics", error="invalid_token"');
    return sendProblem(reply, 'invalid_token', 'this needs Authorization: Bearer <METRICS_TOKEN>');
  };
}

export const metricsRoutes: FastifyPluginAsyncTypebox<MetricsRoutesOptions> = async (server, { config, metrics }) => {
  server.get(
    '/metrics',
    {
      config: { rateLimit: false },
      schema: {
        summary: 'Prometheus metrics',
        description: 'Public unless the server sets METRICS_TOKEN; then it needs `Authorization: Bearer <METRICS_TOKEN>`.',
        tags: ['health'],
        produces: ['text/plain'],
        security: [{}, { metricsToken: [] }],
        response: {
          200: { description: 'Prometheus text format 0.0.4', content: { 'text/plain': { schema: Type.String() } } },
          401: {
            description: 'METRICS_TOKEN is set and the request does not carry it.',
            content: { 'application/problem+json': { schema: Problem } },
          },
        },
      },
      onRequest: metricsTokenGuard(config),
    },
    async (_request, reply) => {
      const body = await metrics.registry.metrics();
      return reply.type(metrics.registry.contentType).send(body as never);
    },
  );
};
