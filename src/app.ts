/**
 * The composition root: builds every part from Config, wires them, and starts each part
 * that holds something open on one PartStack (lifecycle.ts); the database is opened by
 * storage/open-database.ts on the same stack.
 *
 * The stack closes the parts in the reverse of the order they are started in below, and it
 * does so both when a step fails (migrations, Redis, the commit thread, listening on the port)
 * and on shutdown, so the order is written once. Left open after a failed start, a pool, a
 * Redis client that keeps reconnecting or the commit thread keeps the process alive, and an
 * embedded PostgreSQL outlives it.
 *
 * Shutdown (SIGTERM/SIGINT, or close() in tests), the stack from its top: new requests get
 * 503 and producers stop being read (intake); the writer commits everything queued (bounded by
 * shutdownGraceMs), which sends the final acks; every socket is closed with 1012; the HTTP
 * server closes; then the database is let go; the tracer provider goes last, so the spans of
 * those final commits are exported too.
 */
import os from 'node:os';
import type { Logger } from 'pino';
import { buildAccess } from './access/access-service.ts';
import type { Config } from './config.ts';
import { buildConnectors } from './connectors/connectors.ts';
import { pollUntil } from './deadlines.ts';
import { FanoutHub } from './fanout/hub.ts';
import { RedisBroker } from './fanout/redis-broker.ts';
import { registerApi } from './http/api.ts';
import { FailureTriage } from './http/failures.ts';
import { rateLimitRedisOf } from './http/rate-limits.ts';
import { readCacheOf } from './http/read-cache.ts';
import { createHttpServer, type HttpServer, listeningUrl } from './http/server.ts';
import { SocketRegistry } from './http/socket-registry.ts';
import { HttpIngest } from './ingest/http-ingest.ts';
import { IngestRoute } from './ingest/ingest-route.ts';
import type { FrameDecoders } from './ingest/producer-connection.ts';
import { PartStack } from './lifecycle.ts';
import { LiveRoute } from './live/live-route.ts';
import { maintenanceJobs } from './maintenance/maintenance-jobs.ts';
import { createLogger } from './observability/logger.ts';
import { createMetrics, ingestCounters, writerCounters } from './observability/metrics.ts';
import { createTracing } from './observability/tracing.ts';
import { SessionCoordinator } from './sessions/session-coordinator.ts';
import { BatchWriter } from './storage/batch-writer.ts';
import { CommitThread } from './storage/commit-thread.ts';
import { ConnectorRepository } from './storage/connector-repository.ts';
import { isDatabaseReachable } from './storage/database.ts';
import { openDatabase } from './storage/open-database.ts';
import { ProducerLocks } from './storage/producer-locks.ts';
import { RollupSummarySource } from './storage/rollup-source.ts';
import { SampleStore } from './storage/sample-store.ts';
import { SessionDeletes } from './storage/session-deletes.ts';
import { type SessionRecord, SessionRepository } from './storage/session-repository.ts';
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
const remoteEndPollMs = 25;

async function endElsewhere(broker: RedisBroker, repository: SessionRepository, sessionId: string): Promise<SessionRecord | null> {
  broker.requestEnd(sessionId);
  let ended: SessionRecord | null = null;
  const hasEnded = async () => {
    const session = await repository.find(sessionId);
    if (session?.status === 'ended') ended = session;
    return ended !== null;
  };
  await pollUntil(hasEnded, remoteEndTimeoutMs, remoteEndPollMs);
  return ended;
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

/**
 * When closing must be done by, from when it begins: the grace covers the drain, the extra
 * seconds closing the database (serve.ts exits at the same time).
 */
export function closeDeadline(config: Config): number {
  return Date.now() + config.shutdownGraceMs + 5_000;
}

export async function buildApp(config: Config, options: AppOptions = {}): Promise<App> {
  const log = options.log ?? createLogger(config.logLevel);
  const parts = new PartStack(log);
  try {
    return await assembleApp(config, options, log, parts);
  } catch (error) {
    log.error({ err: error }, 'the app could not start; closing what it opened');
    await parts.close(closeDeadline(config));
    throw error;
  }
}

async function assembleApp(config: Config, options: AppOptions, log: Logger, parts: PartStack): Promise<App> {
  const tracing = createTracing(config.tracing, log.child({ part: 'tracing' }));
  await parts.start({ name: 'tracing', close: () => tracing.shutdown() });
  // Chunk payloads are the in-memory float64 columns, written as they are (chunk-codec.ts).
  if (os.endianness() !== 'LE') throw new Error('Wavehouse stores samples as little-endian float64 and needs a little-endian host');

  const { url: databaseUrl, embedded, pool, creates: createsPool } = await openDatabase(config, log, parts);

  const metrics = createMetrics();
  const repository = new SessionRepository({ pool, creates: createsPool });
  const store = new SampleStore(pool);
  const queue = new WriteQueue({ maxQueuedBytes: config.writer.maxQueuedBytes, lanes: config.writer.lanes });
  const broker = config.redisUrl === null ? null : new RedisBroker(config.redisUrl, log.child({ part: 'broker' }));
  if (broker) await parts.start(broker);
  const hub = new FanoutHub(broker);
  const access = await buildAccess({ config, pool, log, broadcast: broker?.revocations() ?? null });
  // Closed after the HTTP server, so what its last requests recorded is written too.
  for (const part of [access.audit, access.lastUsed, access.sweeper]) await parts.start(part);
  const deletes = new SessionDeletes(pool);
  for (const job of maintenanceJobs({ config, pool, deletes, audit: access.audit, metrics, log })) await parts.start(job);
  const sockets = new SocketRegistry(config.pingIntervalMs);
  const commits = new CommitThread({
    databaseUrl,
    connections: config.writer.lanes,
    logLevel: config.logLevel,
    rollups: config.writer.rollups,
    log: log.child({ part: 'writer' }),
    onStop: (error) => options.onFatal?.(error),
  });
  // Its close takes a grace, not a deadline: 2 s for its connections to end, then it is cut.
  await parts.start({ name: 'commit thread', start: () => commits.start(), close: () => commits.close(2_000) });
  const writer = new BatchWriter({
    queue,
    store: commits,
    limits: config.writer,
    log: log.child({ part: 'writer' }),
    counters: writerCounters(metrics),
    tracer: tracing.tracer,
  });
  const locks = new ProducerLocks({
    url: databaseUrl,
    log: log.child({ part: 'locks' }),
    // Sessions' locks and connectors' share the connection; each side ignores ids not its own.
    onLost: (id) => {
      coordinator.lockLost(id);
      connectors.runner.lockLost(id);
    },
  });
  await parts.start(locks);
  const remoteEnd = broker && ((sessionId: string) => endElsewhere(broker, repository, sessionId));
  const coordinator = new SessionCoordinator({
    sessions: repository,
    locks,
    hub,
    queue,
    windowMaxBytes: config.live.recentWindowBytes,
    idleGraceMs: config.ingest.httpLockGraceMs,
    remoteEnd,
    announceDelete: broker && ((sessionId: string) => broker.announceDelete(sessionId)),
  });
  const connectors = await buildConnectors({
    config,
    embedded,
    repository: new ConnectorRepository(pool),
    sessions: repository,
    coordinator,
    locks,
    metrics,
    audit: access.audit,
    log,
  });
  broker?.onControl((request) => {
    const sessionId = 'endSession' in request ? request.endSession : request.deletedSession;
    const work =
      'endSession' in request ? coordinator.endIfLocal(sessionId, config.sessions.endTimeoutMs) : coordinator.closeDeletedHere(sessionId);
    work.catch((error: unknown) => log.error({ err: error, sessionId }, 'a request from another instance failed'));
  });

  metrics.observeWriteQueue(queue);

  const rateLimitRedis = rateLimitRedisOf(config, log);
  if (rateLimitRedis) await parts.start({ name: 'rate-limit redis', close: async () => rateLimitRedis.disconnect() });
  let draining = false;
  const server = await createHttpServer({ config, log, metrics, rateLimitRedis, tracing, isDraining: () => draining });
  // Requests still running after the grace (an export to a client that stopped reading, say)
  // are cut, so that a deploy never waits on a stuck peer: the clock starts with the intake's close.
  let cutoff: NodeJS.Timeout | undefined;
  await parts.start({
    name: 'http server',
    async close() {
      await server.close();
      clearTimeout(cutoff);
    },
  });
  const readiness = async () => {
    const database = await isDatabaseReachable(pool);
    const ready = database && writer.healthy && commits.running && !queue.isFull && !draining;
    return { ready, database, writeQueueBytes: queue.queuedBytes, draining };
  };
  const ingestRoute = new IngestRoute({ config, coordinator, queue, producers: sockets, metrics, frameDecoders: options.frameDecoders });
  const httpIngest = new HttpIngest({ coordinator, limits: config.ingest, counters: ingestCounters(metrics), log });
  const { readCache, shared: sharedReads } = readCacheOf(config, metrics, log);
  if (sharedReads) await parts.start(sharedReads);
  const liveRoute = new LiveRoute({
    config,
    hub,
    coordinator,
    sessions: repository,
    samples: store,
    failures: new FailureTriage(metrics),
    metrics,
    log,
  });
  await registerApi(server, {
    config,
    metrics,
    readiness,
    repository,
    deletes,
    store,
    summaries: new RollupSummarySource(pool, store),
    coordinator,
    sockets,
    ingestRoute,
    httpIngest,
    liveRoute,
    access,
    connectors: connectors.service,
    readCache,
    log,
    isDraining: () => draining,
    tracing,
  });
  await parts.start(sockets);
  await parts.start({
    name: 'writer',
    start: async () => writer.start(),
    async close(deadline) {
      const flushed = await writer.drain(Math.min(config.shutdownGraceMs, deadline - Date.now()));
      if (!flushed) log.error({ queuedSamples: queue.queuedSamples }, 'shutdown grace ran out before the write queue was committed');
    },
  });
  // Closed before the writer drains, so that the records of its last polls are committed.
  await parts.start(connectors.runner);
  // Closed first: from here new requests and upgrades get 503, and producers are no longer read,
  // so that what the writer commits next is all there is to ack.
  await parts.start({
    name: 'intake',
    async close() {
      draining = true;
      cutoff = setTimeout(() => server.server.closeAllConnections(), config.shutdownGraceMs).unref();
      sockets.pauseProducers();
    },
  });

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
      return listeningUrl(server);
    },
    close() {
      return parts.close(closeDeadline(config));
    },
  };
  return app;
}
