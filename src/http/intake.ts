/**
 * What every REST request and socket upgrade meets before its route, written once for both:
 * server.ts applies it in Fastify's hooks, socket-upgrades.ts to upgrades, which never reach
 * Fastify. With its request id (request-id.ts), it is all a request is given on arrival.
 *
 * Draining: once the intake closes (app.ts), every request and upgrade is answered 503, its
 * connection closed, so that what the writer commits next is all there is to ack.
 *
 * Tracing (when on): a SERVER span per request, continuing an incoming W3C traceparent, named
 * by method until routed and by route template once it is, and ended with the response (an
 * upgrade's at the 101, since a socket's lifetime is not its request's). Its url.path never
 * holds the query string, where an ingest token may be.
 */
import type { IncomingMessage } from 'node:http';
import { type Span, SpanKind, SpanStatusCode } from '@opentelemetry/api';
import {
  ATTR_ERROR_TYPE,
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_HTTP_ROUTE,
  ATTR_URL_PATH,
} from '@opentelemetry/semantic-conventions';
import type { Tracing } from '../observability/tracing.ts';

/** The answer to every request and upgrade while the server drains (a problem code and its detail). */
export const shuttingDown = { code: 'service_unavailable', detail: 'the server is shutting down' } as const;

export function startRequestSpan(tracing: Tracing, request: IncomingMessage): Span {
  return tracing.tracer.startSpan(
    request.method ?? 'HTTP',
    { kind: SpanKind.SERVER, attributes: { [ATTR_HTTP_REQUEST_METHOD]: request.method, [ATTR_URL_PATH]: request.url?.split('?', 1)[0] } },
    tracing.extract(request.headers),
  );
}

/** Names the span by its route template, e.g. `GET /api/v1/sessions/:id`; null: tracing is off. */
export function routeRequestSpan(span: Span | null, method: string, route: string): void {
  span?.updateName(`${method} ${route}`).setAttribute(ATTR_HTTP_ROUTE, route);
}

/**
 * Ends the span with the response's status, or null for a client gone before the response. A
 * 5xx is an error (semantic conventions: the status code says why), and so is an abort.
 */
export function endRequestSpan(span: Span | null, status: number | null): void {
  if (!span) return;
  if (status === null) span.setStatus({ code: SpanStatusCode.ERROR, message: 'the client went away before the response' });
  else span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, status);
  if (status !== null && status >= 500) span.setAttribute(ATTR_ERROR_TYPE, String(status)).setStatus({ code: SpanStatusCode.ERROR });
  span.end();
}
