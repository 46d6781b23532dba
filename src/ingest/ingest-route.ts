/**
 * The ingest socket's route (docs/protocol.md, ingest socket): what a producer's socket
 * becomes once its upgrade has found its session (http/routes/sockets.ts refuses an unknown
 * one with 4404 before this). The producer must hold the session's ingest token (4401), and
 * the session must not have ended (4409); then the socket is a ProducerConnection, attached to
 * the session through the coordinator.
 */
import type { WebSocket } from 'ws';
import type { Config } from '../config.ts';
import { closeCodes } from '../contract/errors.ts';
import { ingestCounters, type Metrics } from '../observability/metrics.ts';
import { tokenMatches } from '../sessions/ingest-token.ts';
import type { SessionCoordinator } from '../sessions/session-coordinator.ts';
import type { SessionRecord } from '../storage/session-repository.ts';
import type { WriteQueue } from '../storage/write-queue.ts';
import { type FrameDecoders, type IngestCounters, ProducerConnection, type ProducerLog } from './producer-connection.ts';

/** Where producers' sockets are marked, so that shutdown stops reading them before the final commit (http/socket-registry.ts). */
export interface ProducerSockets {
  addProducer(socket: WebSocket): void;
}

/**
 * What admits a producer: the session's ingest token, checked here, or a key or access token
 * with sessions:write that reaches the session, checked by the socket's authorization step.
 */
export type IngestCredential = { readonly ingestToken: string | null } | { readonly authorized: true };

export interface IngestRouteOptions {
  config: Config;
  coordinator: SessionCoordinator;
  /** Watched for backpressure by every producer's connection. */
  queue: WriteQueue;
  producers: ProducerSockets;
  metrics: Metrics;
  /** Absent: the real ones (producer-connection.ts). */
  frameDecoders?: FrameDecoders;
}

export class IngestRoute {
  private readonly counters: IngestCounters;
  private readonly countOpened: () => void;
  /** One listener for every producer's socket, so that a socket costs no closure of its own for it. */
  private readonly countClosed: () => void;

  constructor(private readonly options: IngestRouteOptions) {
    this.counters = ingestCounters(options.metrics);
    const open = options.metrics.socketsOpen.labels('ingest');
    this.countOpened = () => open.inc();
    this.countClosed = () => open.dec();
  }

  /**
   * Makes `socket` the producer of `session` if it brings the session's ingest token (null:
   * none, or a malformed one), or an API key or access token the caller authorized. Returns
   * the attach to the session, whose failure the caller answers; undefined when the socket
   * was refused.
   */
  open(socket: WebSocket, session: SessionRecord, credential: IngestCredential, log: ProducerLog): Promise<void> | undefined {
    if ('ingestToken' in credential && (credential.ingestToken === null || !tokenMatches(credential.ingestToken, session.tokenHash))) {
      socket.close(closeCodes.invalid_token.code, closeCodes.invalid_token.reason);
      return;
    }
    if (session.status === 'ended') {
      socket.close(closeCodes.producer_conflict.code, 'session has ended');
      return;
    }
    this.options.producers.addProducer(socket);
    this.countOpened();
    socket.on('close', this.countClosed);
    const connection = new ProducerConnection({
      socket,
      sessionId: session.id,
      channels: session.channels,
      nullable: session.nullable,
      coordinator: this.options.coordinator,
      queue: this.options.queue,
      limits: this.options.config.ingest,
      log,
      counters: this.counters,
      decoders: this.options.frameDecoders,
    });
    return connection.start();
  }
}
