/**
 * The WebSocket routes: ingest, live and the legacy `/ws/{id}` (docs/protocol.md). Refusals are
 * a close right after the upgrade, so browsers can read them, in the order 4404, 4401, 4409.
 *
 * The upgrades bypass Fastify's routing (socket-upgrades.ts says why); this is still a Fastify
 * plugin because it adds the frame schemas to the contract. Listeners that live as long as a
 * socket are made in small functions of their own (watch, socket-registry.ts), so that they
 * keep nothing of the upgrade alive.
 */
import type { Duplex } from 'node:stream';
import type { FastifyPluginAsync } from 'fastify';
import type { Logger } from 'pino';
import type { WebSocket } from 'ws';
import { closeCodes, type CloseName } from '../../contract/errors.ts';
import { AckFrame, ErrorFrame, SamplesBatchFrame, SessionEndedFrame } from '../../contract/schemas.ts';
import type { Config } from '../../config.ts';
import type { FanoutHub } from '../../fanout/hub.ts';
import { ProducerConnection, type FrameDecoders } from '../../ingest/producer-connection.ts';
import { FramedViewerSocket } from '../../live/viewer-socket.ts';
import { ViewerConnection } from '../../live/viewer-connection.ts';
import { ingestCounters, viewerCounters, type Metrics } from '../../observability/metrics.ts';
import type { Tracing } from '../../observability/tracing.ts';
import { jsonColumnKeys } from '../../samples/sample-text.ts';
import { tokenMatches } from '../../sessions/ingest-token.ts';
import type { SessionCoordinator } from '../../sessions/session-coordinator.ts';
import type { SampleStore } from '../../storage/sample-store.ts';
import type { SessionRecord, SessionRepository } from '../../storage/session-repository.ts';
import type { WriteQueue } from '../../storage/write-queue.ts';
import { proxyTrust } from '../client-address.ts';
import { isDecimalInteger } from '../decimal-integer.ts';
import type { SocketRegistry } from '../socket-registry.ts';
import { FailureTriage, type ServedOperation } from '../failures.ts';
import { SocketUpgrades, type SocketKind, type SocketRoute, type Upgrade } from '../socket-upgrades.ts';
import { bearerToken, type BearerCredential } from './sessions.ts';

export interface SocketRoutesOptions {
  config: Config;
  metrics: Metrics;
  repository: SessionRepository;
  store: SampleStore;
  coordinator: SessionCoordinator;
  hub: FanoutHub;
  queue: WriteQueue;
  sockets: SocketRegistry;
  log: Logger;
  isDraining: () => boolean;
  tracing?: Tracing;
  /** Absent: the real ones (producer-connection.ts). */
  frameDecoders?: FrameDecoders;
}

/**
 * The largest frame a viewer may send. Viewers send the server nothing it reads, but ws
 * holds a frame whole until it has all of it: with the producers' limit (16 MiB by default),
 * 8 live sockets each sending an unfinished 15 MiB frame took the process from 136 to 250 MiB
 * resident. A close frame's reason and a pong fit in 125 bytes; 4 KiB leaves room to spare.
 */
const viewerMaxFrameBytes = 4 * 1024;

/** How long a viewer waits for missed samples to be committed before giving up (1011, reconnect). */
const historyWaitMs = 10_000;
const historyPollMs = 20;

function refuse(socket: WebSocket, name: CloseName, reason: string = closeCodes[name].reason): void {
  socket.close(closeCodes[name].code, reason.slice(0, 120));
}

/**
 * The ingest token: `Authorization: Bearer` as on REST (routes/sessions.ts), or `?token=` for
 * browsers, which cannot set headers. A credential presented but malformed (an Authorization
 * header that is not a bearer token, an empty `?token=`) is refused like a wrong one.
 */
function credentialOf(upgrade: Upgrade): BearerCredential {
  const header = bearerToken(upgrade.authorization);
  if (header !== 'absent') return header;
  const query = upgrade.query.get('token');
  if (query === null) return 'absent';
  return query === '' ? 'malformed' : { token: query };
}

/** On the legacy path, a credential makes a producer's socket, and its absence a viewer's. */
function legacyKind(upgrade: Upgrade): SocketKind {
  return credentialOf(upgrade) === 'absent' ? 'live' : 'ingest';
}

/** Frame shapes, added as named schemas so docs/API_CONTRACT.yml lists them beside the REST ones. */
const frameSchemas = { AckFrame, ErrorFrame, SamplesBatchFrame, SessionEndedFrame };

export const socketRoutes: FastifyPluginAsync<SocketRoutesOptions> = async (server, options) => {
  const { config, metrics, repository, store, coordinator, hub, queue, sockets } = options;
  const forIngest = ingestCounters(metrics);
  const forViewers = viewerCounters(metrics);
  const openSockets = { ingest: metrics.socketsOpen.labels('ingest'), live: metrics.socketsOpen.labels('live') };
  const countClosedIngest = () => openSockets.ingest.dec();
  const failures = new FailureTriage(metrics);
  for (const [id, schema] of Object.entries(frameSchemas)) server.addSchema({ $id: id, ...schema });

  /** After the handshake: a database out of reach is 1013 (retry later, as REST's 503), anything else a bug (1011). */
  function refuseFailure(socket: WebSocket, kind: SocketKind, error: unknown, log: Logger, operation: ServedOperation) {
    if (failures.record(error, log, operation) === 'outage') return refuse(socket, 'try_again_later', 'database unavailable; retry');
    metrics.socketHandlerErrors.labels(kind).inc();
    refuse(socket, 'internal_error', 'internal error; reconnect');
  }

  /**
   * A bug met while opening a socket: it closes that socket with 1011, and the process and
   * every other socket go on (an exception thrown here would reach ws's upgrade handling).
   */
  function openFailed(socket: WebSocket, kind: SocketKind, error: unknown, log: Logger) {
    log.error({ err: error, socket: kind }, 'opening a socket failed; closing it with 1011');
    metrics.socketHandlerErrors.labels(kind).inc();
    refuse(socket, 'internal_error', 'internal error; reconnect');
  }

  function openIngest(socket: WebSocket, upgrade: Upgrade, session: SessionRecord, credential: BearerCredential) {
    if (typeof credential === 'string' || !tokenMatches(credential.token, session.tokenHash)) return refuse(socket, 'invalid_token');
    if (session.status === 'ended') return refuse(socket, 'producer_conflict', 'session has ended');
    sockets.addProducer(socket);
    const log = upgrade.log.child({ sessionId: session.id, socket: 'ingest' });
    openSockets.ingest.inc();
    socket.on('close', countClosedIngest);
    const connection = new ProducerConnection({
      socket,
      sessionId: session.id,
      channels: session.channels,
      coordinator,
      queue,
      limits: config.ingest,
      log,
      counters: forIngest,
      decoders: options.frameDecoders,
    });
    connection.start().catch((error: unknown) => refuseFailure(socket, 'ingest', error, log, 'producer_attach'));
  }

  function openLive(socket: WebSocket, tcp: Duplex, upgrade: Upgrade, session: SessionRecord) {
    const rawFromSeq = upgrade.query.get('fromSeq') || null;
    const fromSeq = rawFromSeq === null ? null : Number(rawFromSeq);
    if (rawFromSeq !== null && !(isDecimalInteger(rawFromSeq) && Number.isSafeInteger(fromSeq))) {
      return refuse(socket, 'policy_violation', 'fromSeq must be an integer from 0 to 2^53-1, in decimal digits');
    }
    if (hub.subscriberCount(session.id) >= config.http.maxViewersPerSession) {
      return refuse(socket, 'too_many_connections', `at most ${config.http.maxViewersPerSession} viewers per session`);
    }
    // What one instance can fan out to is bounded by its cores and open files; past it, a
    // clear refusal (the next try may reach another instance) rather than every viewer late or
    // new connections dropped by the kernel. Producers are not counted: a session's own
    // producer must never be locked out by its viewers.
    if (hub.totalSubscribers >= config.http.maxViewers) {
      return refuse(socket, 'too_many_connections', `this instance serves its most viewers (${config.http.maxViewers}); retry later`);
    }
    const viewer = new ViewerConnection({
      socket: new FramedViewerSocket(socket, tcp),
      columnKeys: jsonColumnKeys(session.channels),
      fromSeq,
      history: committedHistory(session.id),
      maxBufferedBytes: config.live.maxBufferedBytes,
      counters: forViewers,
      historyFailed: historyFailure(session.id),
      handlerFailed: viewerFailure(session.id),
    });
    watch(socket, viewer, hub.subscribe(session.id, viewer));
    const window = coordinator.recentFrames(session.id);
    const ended = async () => (await repository.find(session.id))?.status === 'ended';
    if (fromSeq !== null) return viewer.start(window, ended);
    // deliverEnd, as the hub calls it: a failure in it stays with this viewer, which would
    // otherwise be an unhandled rejection here.
    ended().then(
      (isEnded) => isEnded && viewer.deliverEnd(),
      (error: unknown) => refuseFailure(socket, 'live', error, upgrade.log.child({ sessionId: session.id, socket: 'live' }), 'viewer_start'),
    );
  }

  /**
   * The one listener a viewer's socket keeps for its life. Made here, not in openLive, so that
   * it holds only these three: a closure keeps every variable its scope shares with others.
   */
  function watch(socket: WebSocket, viewer: ViewerConnection, unsubscribe: () => void) {
    openSockets.live.inc();
    socket.on('close', () => {
      openSockets.live.dec();
      unsubscribe();
      viewer.closed();
    });
  }

  /** How a viewer's failed history read is logged, counted and answered; made apart from openLive, as watch is, so that it keeps only the id. */
  function historyFailure(sessionId: string) {
    return (error: unknown) => failures.record(error, options.log.child({ sessionId, socket: 'live' }), 'viewer_history');
  }

  /** How a bug met while handling a viewer is logged; made apart from openLive, as watch is, so that it keeps only the id. */
  function viewerFailure(sessionId: string) {
    return (error: unknown) => options.log.error({ err: error, sessionId, socket: 'live' }, 'a live socket handler failed; closing it with 1011');
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

  /** A refusal of a client at its socket cap, counted as the socket the refused one is. */
  function refuseOverIpCap(upgrade: Upgrade) {
    return (socket: WebSocket) => {
      sockets.add(socket, upgrade.ip);
      refuse(socket, 'too_many_connections', `at most ${config.http.maxSocketsPerIp} sockets per client`);
    };
  }

  /**
   * The session is looked up before the handshake, so the socket is answered as soon as it
   * opens. A client already at its socket cap is refused before that: a lookup costs a
   * database round trip, the cap a map read. It is checked again once the socket is open, as
   * the client's other sockets may have opened meanwhile.
   */
  const withSession = (
    kind: SocketRoute['kind'],
    open: (socket: WebSocket, tcp: Duplex, upgrade: Upgrade, session: SessionRecord) => void,
  ): SocketRoute => ({
    kind,
    async open(upgrade) {
      if (sockets.countOf(upgrade.ip) >= config.http.maxSocketsPerIp) return refuseOverIpCap(upgrade);
      const session = await repository.find(upgrade.id);
      return (socket, tcp) => {
        if (sockets.countOf(upgrade.ip) >= config.http.maxSocketsPerIp) return refuseOverIpCap(upgrade)(socket);
        // Counted before the other checks so the refused socket's close balances the count.
        sockets.add(socket, upgrade.ip);
        if (!session) return refuse(socket, 'session_not_found');
        try {
          open(socket, tcp, upgrade, session);
        } catch (error) {
          openFailed(socket, kind(upgrade), error, upgrade.log.child({ sessionId: session.id }));
        }
      };
    },
  });

  const upgrades = new SocketUpgrades({
    log: options.log,
    proxyTrust: proxyTrust(config.http.trustProxy),
    maxPayloadBytes: { ingest: config.ingest.hardMaxFrameBytes, live: viewerMaxFrameBytes },
    isDraining: options.isDraining,
    upgradesPerMinute: config.http.upgradeRateLimitPerMinute,
    failures,
    tracing: options.tracing,
  });
  upgrades.route(
    '/api/v1/sessions/:id/ingest',
    withSession(
      () => 'ingest',
      (socket, _tcp, upgrade, session) => openIngest(socket, upgrade, session, credentialOf(upgrade)),
    ),
  );
  upgrades.route(
    '/api/v1/sessions/:id/live',
    withSession(() => 'live', openLive),
  );
  // Legacy openSCG path: with a token it is the ingest socket, without one the live socket;
  // a credential that is present but wrong or malformed is refused, never taken for a viewer.
  upgrades.route(
    '/ws/:id',
    withSession(legacyKind, (socket, tcp, upgrade, session) => {
      const credential = credentialOf(upgrade);
      if (credential === 'absent') openLive(socket, tcp, upgrade, session);
      else openIngest(socket, upgrade, session, credential);
    }),
  );
  upgrades.attach(server.server);
};
