/**
 * The composition root: builds every part from Config, wires them, and closes them in
 * reverse order. The only place that decides embedded or external database.
 *
 * Start: when a step fails (migrations, Redis, the commit thread, listening on the port), what
 * the earlier steps opened is closed in reverse order before the error is rethrown. Left open,
 * a pool, a Redis client that keeps reconnecting or the commit thread keeps the process alive,
 * and an embedded PostgreSQL outlives it.
 *
 * Shutdown (SIGTERM/SIGINT, or close() in tests): new requests get 503; producers stop
 * being read; the writer commits everything queued (bounded by shutdownGraceMs), which sends
 * the final acks; then every socket is closed with 1012 and the database is let go; the
 * tracer provider goes last, so the spans of those final commits are exported too.
 */
import os from 'node:os';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Config } from './config.ts';
import { closeCodes } from './contract/errors.ts';
import { FanoutHub } from './fanout/hub.ts';
import { RedisBroker } from './fanout/redis-broker.ts';
import { registerApi } from './http/api.ts';
import { createHttpServer, type HttpServer } from './http/server.ts';
import { SocketRegistry } from './http/socket-registry.ts';
import type { FrameDecoders } from './ingest/producer-connection.ts';
import { createLogger } from './observability/logger.ts';
import { createMetrics, writerCounters } from './observability/metrics.ts';
import { createTracing } from './observability/tracing.ts';
import { SessionCoordinator } from './sessions/session-coordinator.ts';
import { BatchWriter } from './storage/batch-writer.ts';
import { CommitThread } from './storage/commit-thread.ts';
import { createPool, isDatabaseReachable } from './storage/database.ts';
import { startEmbeddedPostgres, type EmbeddedDatabase } from './storage/embedded-postgres.ts';
import { migrate } from './storage/migrations.ts';
import { ProducerLocks } from './storage/producer-locks.ts';
import { SampleStore } from './storage/sample-store.ts';
import { SessionRepository } from './storage/session-repository.ts';
import { WriteQueue } from './storage/write-queue.ts';

export interface App {
  readonly server: HttpServer;
  readonly log: Logger;
  readonly databaseUrl: string;
  /** Listens on config.http host and port (0: any free port); returns the base URL. If it cannot (the port is taken), the app is closed. */
  listen(): Promise<string>;
  close(): Promise<void>;
}

/** How long an instance waits for the instance holding a session's producer to end it. */
const remoteEndTimeoutMs = 10_000;

async function endElsewhere(broker: RedisBroker, repository: SessionRepository, sessionId: string) {
  broker.requestEnd(sessionId);
  const deadline = Date.now() + remoteEndTimeoutMs;
  while (Date.now() < deadline) {
    const session = await repository.find(sessionId);
    if (session?.status === 'ended') return session;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return null;
}

export interface AppOptions {
  log?: Logger;
  /**
   * Called when the app can no longer do its work (its commit thread stopped): serve.ts exits
   * so that a supervisor starts a fresh process. Absent, the app stays up and /ready says no.
   */
  onFatal?: (error: Error) => void;
  /** The ingest frame decoders; absent, the real ones. Tests hand in a faulty one to see a failure stay within its socket. */
  frameDecoders?: FrameDecoders;
}

/** A part built so far, closed if a later step of the build fails. */
interface OpenedPart {
  name: string;
  close(): unknown;
}

export async function buildApp(config: Config, options: AppOptions = {}): Promise<App> {
  const log = options.log ?? createLogger(config.logLevel);
  const opened: OpenedPart[] = [];
  try {
    return await assembleApp(config, options, log, opened);
  } catch (error) {
    log.error({ err: error }, 'the app could not start; closing what it opened');
    for (const part of opened.reverse()) {
      try {
        await part.close();
      } catch (closeError) {
        log.warn({ err: closeError, part: part.name }, 'closing a part after a failed start failed');
      }
    }
    throw error;
  }
}

async function assembleApp(config: Config, options: AppOptions, log: Logger, opened: OpenedPart[]): Promise<App> {
  const tracing = createTracing(config.tracing, log.child({ part: 'tracing' }));
  opened.push({ name: 'tracing', close: () => tracing.shutdown() });
  // Chunk payloads are the in-memory float64 columns, written as they are (chunk-codec.ts).
  if (os.endianness() !== 'LE') throw new Error('Wavehouse stores samples as little-endian float64 and needs a little-endian host');

  const embedded: EmbeddedDatabase | null =
    config.database.url === null ? await startEmbeddedPostgres({ dataDir: config.database.dataDir, log }) : null;
  if (embedded) opened.push({ name: 'embedded PostgreSQL', close: () => embedded.stop() });
  const databaseUrl = config.database.url ?? embedded!.url;
  if (embedded) log.info({ dataDir: config.database.dataDir }, 'using the embedded PostgreSQL (set DATABASE_URL to use a server)');
  // Of DATABASE_POOL_SIZE, the writer lanes' connections are the commit thread's and one
  // inserts sessions, with a statement timeout (session-repository.ts); the rest serve REST and
  // exports (the producer locks hold a connection of their own).
  const pool = createPool(databaseUrl, config.database.poolSize - config.writer.lanes - 1, log);
  opened.push({ name: 'database pool', close: () => pool.end() });
  const createsPool = createPool(databaseUrl, 1, log, { applicationName: 'wavehouse-creates', statementTimeoutMs: config.sessions.createTimeoutMs });
  opened.push({ name: 'creates pool', close: () => createsPool.end() });
  const applied = await migrate(pool);
  if (applied.length > 0) log.info({ applied }, 'migrations applied');

  const metrics = createMetrics();
  const repository = new SessionRepository(pool, createsPool);
  const store = new SampleStore(pool);
  const queue = new WriteQueue(config.writer.maxQueuedBytes, config.writer.lanes);
  const broker = config.redisUrl === null ? null : new RedisBroker(config.redisUrl, log.child({ part: 'broker' }));
  if (broker) opened.push({ name: 'broker', close: () => broker.close() });
  await broker?.connect();
  const hub = new FanoutHub(broker);
  const sockets = new SocketRegistry(config.pingIntervalMs);
  const commits = new CommitThread({ databaseUrl, connections: config.writer.lanes, logLevel: config.logLevel }, log.child({ part: 'writer' }), (error) =>
    options.onFatal?.(error),
  );
  opened.push({ name: 'commit thread', close: () => commits.close(2_000) });
  const writer = new BatchWriter(queue, commits, config.writer, log.child({ part: 'writer' }), writerCounters(metrics), tracing.tracer);
  const locks = new ProducerLocks(databaseUrl, log.child({ part: 'locks' }), (sessionId) => coordinator.lockLost(sessionId));
  opened.push({ name: 'producer locks', close: () => locks.close() });
  const remoteEnd = broker && ((sessionId: string) => endElsewhere(broker, repository, sessionId));
  const coordinator = new SessionCoordinator(repository, locks, hub, queue, config.live.recentWindowBytes, remoteEnd);
  broker?.onControl(({ endSession }) => {
    coordinator.endIfLocal(endSession, config.sessions.endTimeoutMs).catch((error: unknown) => log.error({ err: error, sessionId: endSession }, 'ending on request failed'));
  });

  let draining = false;
  const drain = async () => {
    if (draining) return;
    draining = true;
    sockets.pauseProducers();
    const flushed = await writer.drain(config.shutdownGraceMs);
    if (!flushed) log.error({ queuedSamples: queue.queuedSamples }, 'shutdown grace ran out before the write queue was committed');
    sockets.closeAll(closeCodes.service_restart.code, 'server restarting; reconnect');
    sockets.stop();
  };

  metrics.observeWriteQueue(queue);

  const rateLimitRedis = config.redisUrl === null ? null : new Redis(config.redisUrl, { maxRetriesPerRequest: 1, enableOfflineQueue: false });
  rateLimitRedis?.on('error', (error: Error) => log.warn({ err: error }, 'rate-limit redis connection error'));
  if (rateLimitRedis) opened.push({ name: 'rate-limit redis', close: () => rateLimitRedis.disconnect() });
  const server = await createHttpServer({ config, log, metrics, rateLimitRedis, tracing, preClose: drain, isDraining: () => draining });
  opened.push({ name: 'http server', close: () => server.close() });
  const readiness = async () => {
    const database = await isDatabaseReachable(pool);
    const ready = database && writer.healthy && commits.running && !queue.isFull && !draining;
    return { ready, database, writeQueueBytes: queue.queuedBytes, draining };
  };
  await registerApi(server, { config, metrics, readiness, repository, store, coordinator, hub, queue, sockets, log, isDraining: () => draining, tracing, frameDecoders: options.frameDecoders });
  await commits.start();
  writer.start();

  let closed: Promise<void> | null = null;
  const app: App = {
    server,
    log,
    databaseUrl,
    async listen() {
      try {
        await server.listen({ host: config.http.host, port: config.http.port });
      } catch (error) {
        // An app that cannot listen is of no use: closed here, it leaves its caller nothing open.
        log.error({ err: error, host: config.http.host, port: config.http.port }, 'cannot listen; closing the app');
        await app.close().catch((closeError: unknown) => log.warn({ err: closeError }, 'closing after a failed listen failed'));
        throw error;
      }
      const address = server.server.address();
      if (address === null || typeof address === 'string') throw new Error('server is not listening on TCP');
      const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
      return `http://${host}:${address.port}`;
    },
    close() {
      closed ??= (async () => {
        // Requests still running after the grace (an export to a client that stopped reading,
        // say) are cut, so that a deploy never waits on a stuck peer.
        const cutoff = setTimeout(() => server.server.closeAllConnections(), config.shutdownGraceMs).unref();
        await server.close();
        clearTimeout(cutoff);
        await drain();
        // Side by side, and each whatever the others do: after the drain, serve.ts leaves them
        // 5 s in all before it exits. The last commits' spans have ended with the drain.
        const closing = await Promise.allSettled([commits.close(2_000), locks.close(), broker?.close(), pool.end(), createsPool.end(), tracing.shutdown()]);
        for (const outcome of closing) if (outcome.status === 'rejected') log.warn({ err: outcome.reason }, 'closing a part failed');
        rateLimitRedis?.disconnect();
        await embedded?.stop();
      })();
      return closed;
    },
  };
  return app;
}
