/**
 * The HTTP server factory: one error handler, one not-found handler, CORS, body parsing and
 * the OpenAPI document. Routes are registered by app.ts, each plugin handed its collaborators.
 *
 * Error policy: a Problem (contract/errors.ts) becomes problem+json with its status;
 * Fastify's own client errors (schema, body size, media type, bad JSON) are mapped onto the
 * same catalogue; a database that cannot serve now is a 503 with Retry-After, logged with its
 * cause and counted (failures.ts); anything else is a bug, logged once with the request id and
 * answered as a plain 500 that says nothing of the internals.
 *
 * Tracing (when on): a SERVER span per request (intake.ts), started with the request's logger
 * so that every line of the request, "incoming request" included, carries its traceId and
 * spanId. WebSocket upgrades never reach Fastify: socket-upgrades.ts gives them the same
 * (request id, logs, span, 503 while draining), from the same intake.ts and request-id.ts.
 */

import type { IncomingMessage } from 'node:http';
import cors from '@fastify/cors';
import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Span } from '@opentelemetry/api';
import { Ajv } from 'ajv';
import * as ajvFormats from 'ajv-formats';
import Fastify, {
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type RawReplyDefaultExpression,
  type RawRequestDefaultExpression,
  type RawServerDefault,
} from 'fastify';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Config } from '../config.ts';
import { databaseUnavailable, Problem, type ProblemCode, problemBody } from '../contract/errors.ts';
import type { Metrics } from '../observability/metrics.ts';
import { type Tracing, traceFields } from '../observability/tracing.ts';
import { proxyTrust } from './client-address.ts';
import { capConnectionsPerAddress } from './connection-cap.ts';
import { FailureTriage } from './failures.ts';
import { endRequestSpan, routeRequestSpan, shuttingDown, startRequestSpan } from './intake.ts';
import { rateLimitOptions } from './rate-limits.ts';
import { requestIdOf } from './request-id.ts';
import { securityHeaders } from './security-headers.ts';

// ajv-formats is CommonJS; under ESM its function arrives as the default export (once or twice wrapped).
type FormatsPlugin = (ajv: Ajv) => Ajv;
const formatsModule = ajvFormats as unknown as { default: FormatsPlugin | { default: FormatsPlugin } };
const addFormats: FormatsPlugin = typeof formatsModule.default === 'function' ? formatsModule.default : formatsModule.default.default;

export type HttpServer = FastifyInstance<
  RawServerDefault,
  RawRequestDefaultExpression<RawServerDefault>,
  RawReplyDefaultExpression<RawServerDefault>,
  Logger,
  TypeBoxTypeProvider
>;

export interface HttpServerOptions {
  config: Config;
  log: Logger;
  metrics: Metrics;
  /** Shared rate-limit counters across instances (REDIS_URL); null keeps them in memory. */
  rateLimitRedis: Redis | null;
  isDraining: () => boolean;
  /** Absent or disabled: no spans and no tracing hooks. */
  tracing?: Tracing;
}

/**
 * Two validators: query strings and path params arrive as text and must be coerced
 * (`?limit=10` is the integer 10), but a JSON body must be taken as it is (`"100"` is not a
 * number, `[1]` is not a list of names). Unknown fields are a 400, never silently dropped.
 */
function validator(coerceTypes: boolean) {
  const ajv = new Ajv({ coerceTypes, removeAdditional: false, useDefaults: true, allErrors: false, strict: false });
  addFormats(ajv);
  return ajv;
}
const validators = { body: validator(false), text: validator(true) };

// Helmet's defaults, except what would stop pages of other origins from using the API
// (browsers on other origins call it directly: CORS_ORIGINS in README.md). Its CSP covers the
// API and /docs; the web pages replace it with their own (routes/pages.ts), which is the one
// the browser applies to them.
const responseSecurityHeaders = securityHeaders({
  crossOriginResourcePolicy: { policy: 'cross-origin' },
  crossOriginEmbedderPolicy: false,
  contentSecurityPolicy: {
    directives: {
      defaultSrc: ["'self'"],
      imgSrc: ["'self'", 'data:'],
      styleSrc: ["'self'", "'unsafe-inline'"],
      scriptSrc: ["'self'"],
    },
  },
});

/** `extensions`: members beside the standard ones (RFC 9457 section 3.2), which never replace them. */
export function sendProblem(
  reply: FastifyReply,
  code: ProblemCode,
  detail: string,
  extensions?: Readonly<Record<string, unknown>>,
): FastifyReply {
  const body = { ...extensions, ...problemBody(code, detail) };
  return reply.code(body.status).type('application/problem+json').send(body);
}

function answer(reply: FastifyReply, problem: Problem): FastifyReply {
  if (problem.retryAfterS !== undefined) reply.header('retry-after', String(problem.retryAfterS));
  return sendProblem(reply, problem.code, problem.detail, problem.extensions);
}

function problemCodeOf(error: FastifyError): ProblemCode | null {
  if (error.validation) return 'invalid_request';
  switch (error.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return 'payload_too_large';
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return 'unsupported_media_type';
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return 'invalid_request';
  }
  if (error.statusCode === 404) return 'not_found';
  if (error.statusCode === 405) return 'method_not_allowed';
  if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) return 'invalid_request';
  return null;
}

export async function createHttpServer(options: HttpServerOptions): Promise<HttpServer> {
  const { config, log } = options;
  const tracing = options.tracing?.enabled ? options.tracing : null;
  // Keyed by the raw request: the span starts before Fastify's request object exists.
  const spans = new WeakMap<IncomingMessage, Span>();
  const server = Fastify({
    loggerInstance: log,
    childLoggerFactory: tracing
      ? (logger, bindings, loggerOptions, raw) => {
          const span = startRequestSpan(tracing, raw);
          spans.set(raw, span);
          return logger.child({ ...bindings, ...traceFields(span) }, loggerOptions);
        }
      : undefined,
    bodyLimit: config.http.maxBodyBytes,
    // Node bounds only the receiving of a request: its timer stops once the body is in, so an
    // export streamed for minutes is not cut, and an upgraded WebSocket leaves Node's list of
    // connections it checks. Node checks that list every connectionsCheckingInterval (30 s by
    // default, which let a slow header hold on 63 s against a 60 s bound); every quarter of the
    // headers timeout, and at least once a second, closes a connection at most that much past
    // its bound, for one walk over the connections still receiving a request each time.
    http: {
      headersTimeout: config.http.headersTimeoutMs,
      requestTimeout: config.http.requestTimeoutMs,
      connectionsCheckingInterval: Math.min(1_000, Math.ceil(config.http.headersTimeoutMs / 4)),
    },
    // Fastify overwrites these two on the Node server with its own defaults (0 and 72 s) unless given.
    requestTimeout: config.http.requestTimeoutMs,
    keepAliveTimeout: config.http.keepAliveTimeoutMs,
    // While draining, the onRequest hook below answers 503 as problem+json (the contract's
    // error shape); Fastify's own 503 would come first, as plain JSON.
    return503OnClosing: false,
    // Fastify would take any X-Request-Id as it is; requestIdOf takes only a safe one.
    requestIdHeader: false,
    trustProxy: proxyTrust(config.http.trustProxy),
    genReqId: (request) => requestIdOf(request.headers['x-request-id']),
    // A path Fastify cannot route (a bad percent-escape, a segment over maxParamLength) is
    // answered before any hook runs, in Fastify's own JSON shape and with none of our headers.
    // Both are paths that name nothing (docs/errors.md: an id that is not a UUID is 404, like
    // an unknown one), so they get the contract's 404 with the headers every answer carries.
    frameworkErrors: (_error, request, reply) => {
      const origin = request.headers.origin;
      const cors = config.http.corsOrigins === '*' ? '*' : origin !== undefined && config.http.corsOrigins.includes(origin) ? origin : null;
      reply.header('x-request-id', request.id).headers(responseSecurityHeaders);
      if (cors !== null) reply.header('access-control-allow-origin', cors).header('vary', 'Origin');
      return sendProblem(reply, 'not_found', `no route for ${request.method} ${request.url.split('?')[0].slice(0, 200)}`);
    },
  }).withTypeProvider<TypeBoxTypeProvider>();

  server.setValidatorCompiler(({ schema, httpPart }) => validators[httpPart === 'body' ? 'body' : 'text'].compile(schema));

  if (tracing) {
    server.addHook('onRequest', async (request) => {
      const route = request.routeOptions.url;
      if (route !== undefined) routeRequestSpan(spans.get(request.raw) ?? null, request.method, route);
    });
    const endSpan = (raw: IncomingMessage, status: number | null) => {
      endRequestSpan(spans.get(raw) ?? null, status);
      spans.delete(raw);
    };
    server.addHook('onResponse', async (request, reply) => endSpan(request.raw, reply.statusCode));
    server.addHook('onRequestAbort', async (request) => endSpan(request.raw, null));
  }

  // Before CORS and the rate limiter, so that every answer carries these, early ones (429, 503) included.
  server.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id).headers(responseSecurityHeaders);
    if (options.isDraining()) {
      reply.header('connection', 'close');
      return sendProblem(reply, shuttingDown.code, shuttingDown.detail);
    }
  });

  server.addHook('onResponse', async (request, reply) => {
    options.metrics.httpRequestDuration.observe(
      { method: request.method, route: request.routeOptions.url ?? 'unmatched', status: String(reply.statusCode) },
      reply.elapsedTime / 1000,
    );
  });

  // An empty body, with or without Content-Type: application/json, is no body (the openSCG
  // phone POSTs a create with nothing at all: test/integration/legacy.test.ts).
  server.removeContentTypeParser('application/json');
  server.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
    const text = (body as string).trim();
    if (text === '') return done(null, undefined);
    try {
      done(null, JSON.parse(text));
    } catch {
      done(new Problem('invalid_request', 'the body is not valid JSON'), undefined);
    }
  });
  // Fastify parses text/plain by default, which turned a non-JSON body into a schema 400;
  // it is a 415 (catalogue). fetch() labels a string body text/plain, so an empty one is still no body.
  server.removeContentTypeParser('text/plain');
  server.addContentTypeParser('text/plain', { parseAs: 'string' }, (_request, body, done) => {
    if ((body as string).trim() === '') return done(null, undefined);
    done(new Problem('unsupported_media_type', 'the body must be JSON, sent as Content-Type: application/json'), undefined);
  });

  const failures = new FailureTriage(options.metrics);
  server.setErrorHandler((error: FastifyError, request, reply) => {
    if (error instanceof Problem) return answer(reply, error);
    const code = problemCodeOf(error);
    if (code) return sendProblem(reply, code, error.message);
    if (failures.record(error, request.log, 'request') === 'outage') return answer(reply, databaseUnavailable());
    return sendProblem(reply, 'internal_error', 'internal error');
  });

  server.setNotFoundHandler((request, reply) =>
    sendProblem(reply, 'not_found', `no route for ${request.method} ${request.url.split('?')[0]}`),
  );

  await server.register(cors, {
    origin: config.http.corsOrigins === '*' ? '*' : config.http.corsOrigins,
    methods: ['GET', 'POST', 'DELETE', 'OPTIONS'],
    allowedHeaders: ['Authorization', 'Content-Type', 'X-Request-Id', 'Accept'],
    exposedHeaders: ['Wavehouse-Next-From-Seq', 'X-Request-Id', 'Retry-After', 'Content-Disposition'],
    maxAge: 600,
  });

  await server.register(rateLimit, rateLimitOptions(config, options.rateLimitRedis));

  await server.register(swagger, {
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`) },
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Wavehouse API',
        version: '1.0.0',
        description: 'Real-time sensor streams: sessions, WebSocket ingest and live fan-out (see docs/protocol.md), stored data export.',
      },
      components: {
        securitySchemes: {
          ingestToken: { type: 'http', scheme: 'bearer', description: 'The ingestToken returned when the session was created.' },
          metricsToken: { type: 'http', scheme: 'bearer', description: "The server's METRICS_TOKEN, when it sets one." },
          bearer: {
            type: 'http',
            scheme: 'bearer',
            description: 'An API key (wh_...) or an access token from POST /api/v1/auth/token (docs/security.md).',
          },
        },
      },
    },
  });
  await server.register(swaggerUi, { routePrefix: '/docs' });
  server.get('/openapi.json', { schema: { hide: true } }, async () => server.swagger());

  capConnectionsPerAddress(server.server, config.http.maxConnectionsPerIp, log);
  return server;
}

/** The http://host:port a listening server answers on. */
export function listeningUrl(server: HttpServer): string {
  const address = server.server.address();
  if (address === null || typeof address === 'string') throw new Error('server is not listening on TCP');
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return `http://${host}:${address.port}`;
}
