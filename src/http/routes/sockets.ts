/**
 * The WebSocket routes: ingest, live and the legacy `/ws/{id}` (docs/protocol.md). Refusals are
 * a close right after the upgrade, so browsers can read them, in the order 4404, 4401, 4409.
 *
 * The upgrades bypass Fastify's routing (socket-upgrades.ts says why); this is still a Fastify
 * plugin because it adds the frame schemas to the contract. What is the same for every socket
 * is here: the socket caps (per key or subject, else per client IP: socket-access.ts), the
 * session's lookup (4404), reading the credential and fromSeq from the request, and closing a
 * socket whose opening failed. What the socket then becomes is its route's:
 * ingest/ingest-route.ts (4401, 4409) or live/live-route.ts; the legacy path is either, as
 * its credential says.
 */
import type { Duplex } from 'node:stream';
import type { FastifyPluginAsync } from 'fastify';
import type { Logger } from 'pino';
import type { WebSocket } from 'ws';
import type { Access } from '../../access/access-service.ts';
import { IdentityProviderUnavailableError } from '../../access/oidc-verifier.ts';
import { Principal } from '../../access/principal.ts';
import type { Config } from '../../config.ts';
import { type CloseName, closeCodes } from '../../contract/errors.ts';
import { AckFrame, ErrorFrame, SamplesBatchFrame, SessionEndedFrame } from '../../contract/schemas.ts';
import type { IngestRoute } from '../../ingest/ingest-route.ts';
import type { LiveRoute } from '../../live/live-route.ts';
import type { Metrics } from '../../observability/metrics.ts';
import type { Tracing } from '../../observability/tracing.ts';
import { isDecimalInteger } from '../../samples/decimal-text.ts';
import type { SessionRecord, SessionRepository } from '../../storage/session-repository.ts';
import { proxyTrust } from '../client-address.ts';
import { FailureTriage, type ServedOperation } from '../failures.ts';
import {
  beforeLookup,
  holderOf,
  legacyKind,
  onSession,
  presentedOf,
  type Refusal,
  refusalOf,
  type SocketHolder,
  type Verdict,
} from '../socket-access.ts';
import type { SocketRegistry } from '../socket-registry.ts';
import { type SocketKind, type SocketRoute, SocketUpgrades, type Upgrade } from '../socket-upgrades.ts';
import { sessionRef } from './session-admission.ts';

export interface SocketRoutesOptions {
  config: Config;
  metrics: Metrics;
  repository: SessionRepository;
  sockets: SocketRegistry;
  ingestRoute: IngestRoute;
  liveRoute: LiveRoute;
  access: Pick<Access, 'authenticator'>;
  log: Logger;
  isDraining: () => boolean;
  tracing?: Tracing;
}

/**
 * The largest frame a viewer may send. Viewers send the server nothing it reads, but ws
 * holds a frame whole until it has all of it: with the producers' limit (16 MiB by default),
 * 8 live sockets each sending an unfinished 15 MiB frame took the process from 136 to 250 MiB
 * resident. A close frame's reason and a pong fit in 125 bytes; 4 KiB leaves room to spare.
 */
const viewerMaxFrameBytes = 4 * 1024;

/** Each kind of socket's start, as wavehouse_database_errors_total labels it. */
const startOperation: Record<SocketKind, ServedOperation> = { ingest: 'producer_attach', live: 'viewer_start' };

/**
 * What a route does with its socket once the session is found. It returns the socket's start,
 * if it has one: what is left of opening it (a database round trip), whose failure is
 * answered here.
 */
type OpenOnSession = (
  socket: WebSocket,
  tcp: Duplex,
  upgrade: Upgrade,
  session: SessionRecord,
  log: Logger,
  verdict: Verdict & { ok: true },
) => Promise<void> | undefined;

function refuse(socket: WebSocket, name: CloseName, reason: string = closeCodes[name].reason): void {
  socket.close(closeCodes[name].code, reason.slice(0, 120));
}

function refuseAccess(socket: WebSocket, refusal: Refusal): void {
  refuse(socket, refusal.close, refusal.reason);
}

/** A live socket's `?fromSeq=`: null when absent or empty (from now on). */
function fromSeqOf(upgrade: Upgrade): number | null | 'invalid' {
  const raw = upgrade.query.get('fromSeq') || null;
  if (raw === null) return null;
  const fromSeq = Number(raw);
  return isDecimalInteger(raw) && Number.isSafeInteger(fromSeq) ? fromSeq : 'invalid';
}

/** Frame shapes, added as named schemas so docs/API_CONTRACT.yml lists them beside the REST ones. */
const frameSchemas = { AckFrame, ErrorFrame, SamplesBatchFrame, SessionEndedFrame };

export const socketRoutes: FastifyPluginAsync<SocketRoutesOptions> = async (server, options) => {
  const { config, metrics, repository, sockets, ingestRoute, liveRoute } = options;
  const failures = new FailureTriage(metrics);
  for (const [id, schema] of Object.entries(frameSchemas)) server.addSchema({ $id: id, ...schema });

  /** A start that failed: a database out of reach is 1013 (retry later, as REST's 503), anything else a bug (1011). */
  function startFailed(socket: WebSocket, kind: SocketKind, error: unknown, log: Logger) {
    if (failures.record(error, log, startOperation[kind]) === 'outage')
      return refuse(socket, 'try_again_later', 'database unavailable; retry');
    metrics.socketHandlerErrors.labels(kind).inc();
    refuse(socket, 'internal_error', 'internal error; reconnect');
  }

  /**
   * A bug met while opening a socket: it closes that socket with 1011, and the process and
   * every other socket go on (an exception thrown here would reach ws's upgrade handling).
   */
  function openThrew(socket: WebSocket, kind: SocketKind, error: unknown, log: Logger) {
    log.error({ err: error }, 'opening a socket failed; closing it with 1011');
    metrics.socketHandlerErrors.labels(kind).inc();
    refuse(socket, 'internal_error', 'internal error; reconnect');
  }

  /** A key's or token's socket was authorized already; any other brings the session's ingest token, or none. */
  function openIngest(socket: WebSocket, session: SessionRecord, verdict: Verdict & { ok: true }, log: Logger) {
    const credential = verdict.principal.kind === 'anonymous' ? { ingestToken: verdict.ingestToken } : { authorized: true as const };
    return ingestRoute.open(socket, session, credential, log);
  }

  function openLive(socket: WebSocket, tcp: Duplex, upgrade: Upgrade, session: SessionRecord): Promise<void> | undefined {
    const fromSeq = fromSeqOf(upgrade);
    if (fromSeq === 'invalid') {
      refuse(socket, 'policy_violation', 'fromSeq must be an integer from 0 to 2^53-1, in decimal digits');
      return;
    }
    return liveRoute.open(socket, tcp, session, fromSeq);
  }

  /** A refusal of a holder at its socket cap, counted as the socket the refused one is. */
  function refuseOverCap(holder: SocketHolder) {
    return (socket: WebSocket) => {
      sockets.add(socket, holder.id);
      refuse(socket, 'too_many_connections', `at most ${holder.cap} sockets per ${holder.per}`);
    };
  }

  const atCap = (holder: SocketHolder) => sockets.countOf(holder.id) >= holder.cap;

  /**
   * The session is looked up before the handshake, so the socket is answered as soon as it
   * opens. A holder already at its socket cap is refused before that: a lookup costs a
   * database round trip, the cap a map read. A socket without a key or token counts against
   * its client IP, checked before anything else; one with a key or token, against its holder,
   * known once the credential is checked. The cap is checked again once the socket is open,
   * as the holder's other sockets may have opened meanwhile.
   */
  const withSession = (kind: SocketRoute['kind'], open: OpenOnSession): SocketRoute => ({
    kind,
    async open(upgrade) {
      const presented = presentedOf(upgrade);
      const client = holderOf(Principal.anonymous, upgrade.ip, config.http);
      if (presented.kind !== 'bearer' && atCap(client)) return refuseOverCap(client);
      const socketKind = kind(upgrade);
      let verdict: Verdict;
      try {
        verdict = await beforeLookup(config.access.mode, options.access.authenticator, presented, socketKind, upgrade.ip);
      } catch (error) {
        if (!(error instanceof IdentityProviderUnavailableError)) throw error;
        // No verdict on the token: as REST's 503, the client retries later.
        upgrade.log.warn({ err: error }, 'the identity provider could not be reached');
        return (socket) => {
          sockets.add(socket, client.id);
          refuse(socket, 'try_again_later', 'identity provider unavailable; retry');
        };
      }
      const holder = verdict.ok ? holderOf(verdict.principal, upgrade.ip, config.http) : client;
      if (atCap(holder)) return refuseOverCap(holder);
      const session = verdict.ok ? await repository.find(upgrade.id) : null;
      return (socket, tcp) => {
        if (atCap(holder)) return refuseOverCap(holder)(socket);
        // Counted before the other checks so the refused socket's close balances the count.
        sockets.add(socket, holder.id);
        if (!verdict.ok) return refuseAccess(socket, refusalOf(verdict.code));
        if (!session) return refuse(socket, 'session_not_found');
        const refusal = onSession(config.access.mode, verdict, socketKind, sessionRef(session));
        if (refusal !== null) return refuseAccess(socket, refusal);
        const log = upgrade.log.child({ sessionId: session.id, socket: socketKind });
        try {
          open(socket, tcp, upgrade, session, log, verdict)?.catch((error: unknown) => startFailed(socket, socketKind, error, log));
        } catch (error) {
          openThrew(socket, socketKind, error, log);
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
      (socket, _tcp, _upgrade, session, log, verdict) => openIngest(socket, session, verdict, log),
    ),
  );
  upgrades.route(
    '/api/v1/sessions/:id/live',
    withSession(() => 'live', openLive),
  );
  // Legacy openSCG path: with an ingest token it is the ingest socket, without one (or with a
  // key or access token) the live socket; an ingest token that is present but wrong or
  // malformed is refused, never taken for a viewer.
  const legacyKindOf = (upgrade: Upgrade) => legacyKind(presentedOf(upgrade));
  upgrades.route(
    '/ws/:id',
    withSession(legacyKindOf, (socket, tcp, upgrade, session, log, verdict) => {
      if (legacyKindOf(upgrade) === 'live') return openLive(socket, tcp, upgrade, session);
      return openIngest(socket, session, verdict, log);
    }),
  );
  upgrades.attach(server.server);
};
