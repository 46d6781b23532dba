/**
 * The WebSocket routes: ingest, live and the legacy `/ws/{id}` (DESIGN). Refusals are a close
 * right after the upgrade, so browsers can read them, in the order 4404, 4401, 4409.
 */
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';
import { closeCodes, type CloseName } from '../../contract/errors.ts';
import { AckFrame, ErrorFrame, SamplesBatchFrame, SessionEndedFrame } from '../../contract/schemas.ts';
import type { Config } from '../../config.ts';
import type { FanoutHub } from '../../fanout/hub.ts';
import { ProducerConnection } from '../../ingest/producer-connection.ts';
import { Viewer } from '../../live/viewer.ts';
import { ingestCounters, viewerCounters, type Metrics } from '../../observability/metrics.ts';
import { isSessionId, tokenMatches } from '../../sessions/ingest-token.ts';
import type { SessionCoordinator } from '../../sessions/session-coordinator.ts';
import { jsonKeyPrefixes } from '../../sessions/sample-text.ts';
import type { SampleStore } from '../../storage/sample-store.ts';
import type { SessionRecord, SessionRepository } from '../../storage/session-repository.ts';
import type { WriteQueue } from '../../storage/write-queue.ts';
import type { SocketRegistry } from '../socket-registry.ts';
import { bearerToken } from './sessions.ts';

export interface SocketRoutesOptions {
  config: Config;
  metrics: Metrics;
  repository: SessionRepository;
  store: SampleStore;
  coordinator: SessionCoordinator;
  hub: FanoutHub;
  queue: WriteQueue;
  sockets: SocketRegistry;
}

interface SocketQuery {
  token?: string;
  fromSeq?: string;
}
interface SocketRequest {
  Params: { id: string };
  Querystring: SocketQuery;
}

/** How long a viewer waits for missed samples to be committed before giving up (1011, reconnect). */
const historyWaitMs = 10_000;
const historyPollMs = 20;

function refuse(socket: WebSocket, name: CloseName, reason: string = closeCodes[name].reason): void {
  socket.close(closeCodes[name].code, reason.slice(0, 120));
}

function tokenOf(request: FastifyRequest<SocketRequest>): string | null {
  return bearerToken(request) ?? (request.query.token || null);
}

/** Frame shapes, added as named schemas so docs/API_CONTRACT.yml lists them beside the REST ones. */
const frameSchemas = { AckFrame, ErrorFrame, SamplesBatchFrame, SessionEndedFrame };

export const socketRoutes: FastifyPluginAsync<SocketRoutesOptions> = async (server, options) => {
  const { config, metrics, repository, store, coordinator, hub, queue, sockets } = options;
  const forIngest = ingestCounters(metrics);
  const forViewers = viewerCounters(metrics);
  const countOpen = (socket: WebSocket, kind: 'ingest' | 'live') => {
    metrics.socketsOpen.labels(kind).inc();
    socket.once('close', () => metrics.socketsOpen.labels(kind).dec());
  };
  for (const [id, schema] of Object.entries(frameSchemas)) server.addSchema({ $id: id, ...schema });

  // Looked up before the upgrade so the handler can answer synchronously once it runs.
  const sessionOf = new WeakMap<FastifyRequest, SessionRecord | null>();
  const preValidation = async (request: FastifyRequest<SocketRequest>) => {
    const { id } = request.params;
    sessionOf.set(request, isSessionId(id) ? await repository.find(id) : null);
  };

  function openIngest(socket: WebSocket, request: FastifyRequest<SocketRequest>, session: SessionRecord, token: string | null) {
    if (token === null || !tokenMatches(token, session.tokenHash)) return refuse(socket, 'invalid_token');
    if (session.status === 'ended') return refuse(socket, 'producer_conflict', 'session has ended');
    sockets.addProducer(socket);
    const log = request.log.child({ sessionId: session.id, socket: 'ingest' });
    countOpen(socket, 'ingest');
    const connection = new ProducerConnection(socket, session.id, session.channels, coordinator, queue, config.ingest, log, forIngest);
    connection.start().catch((error: unknown) => {
      log.error({ err: error }, 'could not attach producer');
      refuse(socket, 'internal_error', 'database unavailable; retry');
    });
  }

  function openLive(socket: WebSocket, request: FastifyRequest<SocketRequest>, session: SessionRecord) {
    const rawFromSeq = request.query.fromSeq;
    const fromSeq = rawFromSeq === undefined || rawFromSeq === '' ? null : Number(rawFromSeq);
    if (fromSeq !== null && (!Number.isSafeInteger(fromSeq) || fromSeq < 0)) {
      return refuse(socket, 'policy_violation', 'fromSeq must be an integer from 0 to 2^53-1');
    }
    if (hub.subscriberCount(session.id) >= config.http.maxViewersPerSession) {
      return refuse(socket, 'too_many_connections', `at most ${config.http.maxViewersPerSession} viewers per session`);
    }
    countOpen(socket, 'live');
    const viewer = new Viewer(socket, jsonKeyPrefixes(session.channels), fromSeq, committedHistory(session.id), config.live.maxBufferedBytes, forViewers);
    const unsubscribe = hub.subscribe(session.id, viewer);
    const window = coordinator.recentFrames(session.id);
    socket.once('close', () => {
      unsubscribe();
      viewer.closed();
    });
    const ended = async () => (await repository.find(session.id))?.status === 'ended';
    if (fromSeq !== null) return viewer.start(window, ended);
    ended().then(
      (isEnded) => isEnded && viewer.finish(),
      (error: unknown) => {
        request.log.error({ err: error, sessionId: session.id }, 'live viewer failed');
        refuse(socket, 'internal_error', 'internal error; reconnect');
      },
    );
  }

  /**
   * A viewer's history source: stored samples in a range, after waiting (bounded) until the
   * range is committed, since a gap a viewer detects may still be in another process's queue.
   */
  function committedHistory(sessionId: string) {
    return async function* (fromSeq: number, toSeq: number) {
      if (toSeq !== Number.MAX_SAFE_INTEGER) {
        const deadline = Date.now() + historyWaitMs;
        while (((await repository.find(sessionId))?.lastSeq ?? -1) < toSeq) {
          if (Date.now() > deadline) throw new Error(`samples up to ${toSeq} were not committed within ${historyWaitMs} ms`);
          await new Promise((resolve) => setTimeout(resolve, historyPollMs));
        }
      }
      yield* store.readRange(sessionId, fromSeq, toSeq);
    };
  }

  const withSession =
    (open: (socket: WebSocket, request: FastifyRequest<SocketRequest>, session: SessionRecord) => void) =>
    (socket: WebSocket, request: FastifyRequest<SocketRequest>) => {
      // Counted before the cap check so the refused socket's close balances the count.
      const overIpCap = sockets.countOf(request.ip) >= config.http.maxSocketsPerIp;
      sockets.add(socket, request.ip);
      const session = sessionOf.get(request) ?? null;
      if (!session) return refuse(socket, 'session_not_found');
      if (overIpCap) return refuse(socket, 'too_many_connections', `at most ${config.http.maxSocketsPerIp} sockets per client`);
      open(socket, request, session);
    };

  // Sockets are capped by count, not by the REST rate limit (which would also count upgrades).
  const route = { preValidation, websocket: true as const, config: { rateLimit: false as const }, schema: { hide: true } };
  server.get<SocketRequest>(
    '/api/v1/sessions/:id/ingest',
    route,
    withSession((socket, request, session) => openIngest(socket, request, session, tokenOf(request))),
  );
  server.get<SocketRequest>('/api/v1/sessions/:id/live', route, withSession(openLive));
  // Legacy openSCG path: with a token it is the ingest socket, without one the live socket;
  // a token that is present but wrong is refused, never taken for a viewer.
  server.get<SocketRequest>(
    '/ws/:id',
    route,
    withSession((socket, request, session) => {
      const token = tokenOf(request);
      if (token === null) openLive(socket, request, session);
      else openIngest(socket, request, session, token);
    }),
  );
};
