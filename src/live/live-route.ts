/**
 * The live socket's route (docs/protocol.md, live socket): what a viewer's socket becomes once
 * its upgrade has found its session and read its fromSeq (http/routes/sockets.ts refuses the
 * rest before this). A session and this instance each take a bounded number of viewers; past
 * either, the socket is closed with 4429. Otherwise it is a ViewerConnection, subscribed to the
 * hub, whose history comes from the database (committed-history.ts).
 *
 * Listeners and functions that live as long as a viewer are made in small methods of their
 * own (watch, the failures), so that they keep nothing of the upgrade alive.
 */
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { WebSocket } from 'ws';
import type { Config } from '../config.ts';
import { closeCodes } from '../contract/errors.ts';
import type { FanoutHub } from '../fanout/hub.ts';
import { type Metrics, viewerCounters } from '../observability/metrics.ts';
import { jsonColumnKeys } from '../samples/sample-text.ts';
import type { SessionCoordinator } from '../sessions/session-coordinator.ts';
import { committedHistory, type StoredSamples, type StoredSessions } from './committed-history.ts';
import { type HandlerFailure, type HistoryFailure, ViewerConnection, type ViewerCounters } from './viewer-connection.ts';
import { FramedViewerSocket } from './viewer-socket.ts';

/** What a viewer needs of its session, found before the handshake. */
export interface LiveSession {
  readonly id: string;
  readonly channels: readonly string[];
}

/**
 * Logs and counts a failure, and tells a database out of reach ('outage': the viewer is told to
 * retry, 1013) from a bug (1011); http/failures.ts gives the implementation.
 */
export interface ViewerFailures {
  record(error: unknown, log: Logger, operation: 'viewer_history'): 'outage' | 'bug';
}

export interface LiveRouteOptions {
  config: Config;
  hub: FanoutHub;
  /** Gives the recent window of a session a viewer joins with fromSeq. */
  coordinator: SessionCoordinator;
  sessions: StoredSessions;
  samples: StoredSamples;
  failures: ViewerFailures;
  metrics: Metrics;
  /** The process's logger: a viewer's lines carry its session id, not its upgrade's request. */
  log: Logger;
}

export class LiveRoute {
  private readonly counters: ViewerCounters;
  private readonly countOpened: () => void;
  private readonly countClosed: () => void;

  constructor(private readonly options: LiveRouteOptions) {
    this.counters = viewerCounters(options.metrics);
    const open = options.metrics.socketsOpen.labels('live');
    this.countOpened = () => open.inc();
    this.countClosed = () => open.dec();
  }

  /**
   * Makes `socket` a viewer of `session` from `fromSeq` (null: from now on). Returns the read
   * of whether a viewer from now on joins an ended session, whose failure the caller answers;
   * undefined when there is nothing left to fail (the socket refused, or a viewer with fromSeq,
   * which answers its own failures).
   */
  open(socket: WebSocket, tcp: Duplex, session: LiveSession, fromSeq: number | null): Promise<void> | undefined {
    const { config, hub } = this.options;
    const { code } = closeCodes.too_many_connections;
    if (hub.subscriberCount(session.id) >= config.http.maxViewersPerSession) {
      socket.close(code, `at most ${config.http.maxViewersPerSession} viewers per session`);
      return;
    }
    // What one instance can fan out to is bounded by its cores and open files; past it, a
    // clear refusal (the next try may reach another instance) rather than every viewer late or
    // new connections dropped by the kernel. Producers are not counted: a session's own
    // producer must never be locked out by its viewers.
    if (hub.totalSubscribers >= config.http.maxViewers) {
      socket.close(code, `this instance serves its most viewers (${config.http.maxViewers}); retry later`);
      return;
    }
    const viewer = new ViewerConnection({
      socket: new FramedViewerSocket(socket, tcp),
      columnKeys: jsonColumnKeys(session.channels),
      fromSeq,
      history: committedHistory(this.options.sessions, this.options.samples, session.id),
      maxBufferedBytes: config.live.maxBufferedBytes,
      counters: this.counters,
      historyFailed: this.historyFailure(session.id),
      handlerFailed: this.handlerFailure(session.id),
    });
    this.watch(socket, viewer, hub.subscribe(session.id, viewer));
    const window = this.options.coordinator.recentFrames(session.id);
    const ended = this.endedCheck(session.id, viewer);
    if (fromSeq !== null) {
      viewer.start(window, ended);
      return;
    }
    // deliverEnd, as the hub calls it, so that a failure in sending the end stays with this
    // viewer (1011, reported as its handler's) rather than failing this read.
    return ended().then((isEnded) => {
      if (isEnded) viewer.deliverEnd();
    });
  }

  /** The one listener a viewer's socket keeps for its life, holding only these three. */
  private watch(socket: WebSocket, viewer: ViewerConnection, unsubscribe: () => void): void {
    this.countOpened();
    socket.on('close', () => {
      this.countClosed();
      unsubscribe();
      viewer.closed();
    });
  }

  /**
   * Whether the session has ended. One gone since the upgrade looked it up was deleted
   * meanwhile, perhaps before this viewer subscribed to hear of it: it is closed as the delete
   * closed the others (4404).
   */
  private endedCheck(sessionId: string, viewer: ViewerConnection): () => Promise<boolean> {
    return async () => {
      const record = await this.options.sessions.find(sessionId);
      if (record === null) viewer.deliverDeleted();
      return record?.status === 'ended';
    };
  }

  private historyFailure(sessionId: string): HistoryFailure {
    return (error) => this.options.failures.record(error, this.options.log.child({ sessionId, socket: 'live' }), 'viewer_history');
  }

  private handlerFailure(sessionId: string): HandlerFailure {
    return (error) =>
      this.options.log.error({ err: error, sessionId, socket: 'live' }, 'a live socket handler failed; closing it with 1011');
  }
}
