/**
 * WebSocket upgrades, handled with `ws` directly instead of through Fastify's request
 * pipeline, so that nothing of the HTTP request outlives the handshake: an idle viewer holds
 * its socket and little else (RSS per idle viewer: docs/performance.md).
 *
 * What Fastify's hooks give a REST request, an upgrade gets here, from the same code: a
 * request id (a safe X-Request-Id, else a new UUID: request-id.ts) on its log lines and its
 * "incoming request" line (the token cut from the URL by the logger); 503 while draining
 * (intake.ts), and when the session's lookup finds the database unreachable (with
 * Retry-After, counted as failures.ts says); with tracing, a SERVER span (intake.ts) named by
 * route template and ending at the upgrade (101); the client IP, read as REST reads it
 * (client-address.ts). An upgrade refused before the handshake (no socket route at that path,
 * draining, a lookup that failed) is answered with problem+json, like a REST request.
 * Upgrades do not count against the REST rate limit; they have their own, on attempts per
 * client IP (upgrade-rate-limiter.ts), checked first of all, and the sockets a client holds
 * are capped by count (routes/sockets.ts). Over the rate limit, the answer is a 429 before the
 * handshake rather than a close code after it: a browser cannot read it, but a client that
 * loops on upgrades is what it is for, and it then costs no socket, no session lookup and
 * no handshake. The SDK's backoff already slows a client whose connection fails.
 */
import { type IncomingMessage, type Server, STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { type WebSocket, WebSocketServer } from 'ws';
import { databaseUnavailable, type ProblemCode, problemBody } from '../contract/errors.ts';
import { type Tracing, traceFields } from '../observability/tracing.ts';
import { clientAddress, type ProxyTrust } from './client-address.ts';
import type { FailureTriage } from './failures.ts';
import { endRequestSpan, routeRequestSpan, shuttingDown, startRequestSpan } from './intake.ts';
import { requestIdOf } from './request-id.ts';
import { UpgradeRateLimiter } from './upgrade-rate-limiter.ts';

/** What a socket route may read of its upgrade request. */
export interface Upgrade {
  /** The `:id` segment of the path, decoded. */
  readonly id: string;
  readonly ip: string;
  readonly query: URLSearchParams;
  readonly authorization: string | undefined;
  readonly log: Logger;
}

/** A producer's socket or a viewer's: each has its own frame size limit, set at the handshake. */
export type SocketKind = 'ingest' | 'live';

/**
 * A socket route: which kind of socket an upgrade asks for (known before anything is looked
 * up), and `open`, which checks what it needs before the handshake (a session lookup, say)
 * and returns what to do with the socket once it is open.
 */
export interface SocketRoute {
  kind(upgrade: Upgrade): SocketKind;
  open(upgrade: Upgrade): Promise<OpenSocket>;
}

/** What a route does with its open socket; `tcp` is the connection under it, which ws owns. */
export type OpenSocket = (socket: WebSocket, tcp: Duplex) => void;

export interface SocketUpgradeOptions {
  log: Logger;
  /** The same as REST's (server.ts), so that a client has one address for both. */
  proxyTrust: ProxyTrust;
  /** The largest frame each kind of socket may send; a larger one closes it with 1009. */
  maxPayloadBytes: Record<SocketKind, number>;
  isDraining: () => boolean;
  /** Upgrade attempts per client IP per minute; 0: no limit. */
  upgradesPerMinute: number;
  failures: FailureTriage;
  /** Absent or disabled: no spans. */
  tracing?: Tracing;
}

interface Matcher {
  template: string;
  pattern: RegExp;
  route: SocketRoute;
}

/** Routes templates with one `:id` segment, e.g. `/ws/:id`. */
function matcherOf(template: string, route: SocketRoute): Matcher {
  const pattern = new RegExp(`^${template.replace(':id', '([^/]+)')}$`);
  return { template, pattern, route };
}

function decoded(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

/** Answers the upgrade request with a problem+json response and ends the connection; returns the status. */
function answerProblem(socket: Duplex, code: ProblemCode, detail: string, requestId: string, retryAfterS?: number): number {
  const problem = problemBody(code, detail);
  const { status } = problem;
  const body = JSON.stringify(problem);
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n` +
      'Content-Type: application/problem+json; charset=utf-8\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      `X-Request-Id: ${requestId}\r\n` +
      (retryAfterS === undefined ? '' : `Retry-After: ${retryAfterS}\r\n`) +
      'Connection: close\r\n\r\n' +
      body,
  );
  return status;
}

/** Until `ws` takes the socket over, a reset peer must not become an uncaught error. */
function destroyOnError(this: Duplex): void {
  this.destroy();
}

/** An error on an open socket (a bad frame, a reset peer) ends that socket and is logged with its request id. */
function terminateOnError(log: Logger, requestId: string) {
  return function (this: WebSocket, error: Error) {
    log.warn({ err: error, reqId: requestId }, 'socket error');
    this.terminate();
  };
}

export class SocketUpgrades {
  private readonly matchers: Matcher[] = [];
  /** ws takes its frame limit per server, so one server per kind of socket. */
  private readonly servers: Record<SocketKind, WebSocketServer>;
  private readonly tracing: Tracing | null;
  private readonly rateLimiter: UpgradeRateLimiter;

  constructor(private readonly options: SocketUpgradeOptions) {
    this.rateLimiter = new UpgradeRateLimiter(options.upgradesPerMinute);
    // The registry (socket-registry.ts) tracks the sockets; ws need not keep a second set.
    const server = (maxPayload: number) =>
      new WebSocketServer({ noServer: true, clientTracking: false, maxPayload, perMessageDeflate: false });
    this.servers = { ingest: server(options.maxPayloadBytes.ingest), live: server(options.maxPayloadBytes.live) };
    this.tracing = options.tracing?.enabled ? options.tracing : null;
  }

  route(template: string, route: SocketRoute): void {
    this.matchers.push(matcherOf(template, route));
  }

  attach(server: Server): void {
    server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => this.upgrade(request, socket, head));
  }

  private upgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', destroyOnError);
    const url = request.url ?? '/';
    const path = url.split('?', 1)[0];
    const requestId = requestIdOf(request.headers['x-request-id']);
    const ip = clientAddress(request, this.options.proxyTrust);
    const span = this.tracing && startRequestSpan(this.tracing, request);
    const log = this.options.log.child({ reqId: requestId, ...traceFields(span) });
    log.info({ req: { method: request.method, url, id: requestId, ip } }, 'incoming request');

    const refuse = (code: ProblemCode, detail: string, retryAfterS?: number) =>
      endRequestSpan(span, answerProblem(socket, code, detail, requestId, retryAfterS));
    if (this.options.isDraining()) return refuse(shuttingDown.code, shuttingDown.detail);
    const retryAfterS = this.rateLimiter.take(ip);
    if (retryAfterS !== null) {
      return refuse(
        'rate_limited',
        `at most ${this.options.upgradesPerMinute} socket upgrades a minute from one client; retry in ${retryAfterS} s`,
        retryAfterS,
      );
    }
    const matched = request.method === 'GET' ? this.match(path) : null;
    if (matched === null) return refuse('not_found', `no route for ${request.method} ${path}`);
    const { route, template, id } = matched;
    routeRequestSpan(span, 'GET', template);

    const upgrade: Upgrade = {
      id,
      ip,
      query: new URLSearchParams(url.slice(path.length + 1)),
      authorization: request.headers.authorization,
      log,
    };
    const kind = route.kind(upgrade);
    route.open(upgrade).then(
      (open) => {
        endRequestSpan(span, 101);
        this.handshake(request, socket, head, requestId, this.servers[kind], open);
      },
      (error: unknown) => {
        if (this.options.failures.record(error, log, 'upgrade') === 'bug') return refuse('internal_error', 'internal error');
        const problem = databaseUnavailable();
        refuse(problem.code, problem.detail, problem.retryAfterS);
      },
    );
  }

  private match(path: string): { route: SocketRoute; template: string; id: string } | null {
    for (const { pattern, route, template } of this.matchers) {
      const found = pattern.exec(path);
      if (found) return { route, template, id: decoded(found[1]) };
    }
    return null;
  }

  /**
   * Completes the upgrade. Kept apart from upgrade() on purpose: a listener made there would
   * keep that whole scope (request, head buffer, logger) for the socket's life, which was the
   * largest part of an idle viewer's memory.
   */
  private handshake(
    request: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    requestId: string,
    server: WebSocketServer,
    open: OpenSocket,
  ): void {
    socket.removeListener('error', destroyOnError);
    server.handleUpgrade(request, socket, head, (webSocket) => {
      webSocket.on('error', terminateOnError(this.options.log, requestId));
      try {
        open(webSocket, socket);
      } catch (error) {
        // A bug in a route: this socket ends, the process goes on.
        this.options.log.error({ err: error, reqId: requestId }, 'unhandled error');
        webSocket.terminate();
      }
    });
  }
}
