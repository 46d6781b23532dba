/**
 * Every Prometheus instrument of Wavehouse, declared in this one file and documented in
 * docs/metrics.md (a test checks both agree). Named `wavehouse_<area>_<what>_<unit>`.
 * The registry is created by app.ts and handed to whoever records, never a global, so
 * tests and several apps in one process do not share counters.
 *
 * Longer than 300 lines because every instrument is declared here, in one registry a reader
 * and the docs test go through in one place; split by area, each piece would be a list of
 * declarations with the same imports and helpers.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/** Seconds: from sub-millisecond REST answers to multi-second commits during an outage. */
const latencyBucketsS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** What the queue gauges read when scraped (set by app.ts once the queue exists). */
export interface QueueDepth {
  readonly queuedSamples: number;
  readonly queuedBytes: number;
}

/** What the read cache's byte gauge reads when scraped (set by app.ts once the cache exists). */
export interface CacheSize {
  readonly bytes: number;
}

/**
 * Counts bumped per frame or per delivery, kept as plain numbers and added to their counters
 * when /metrics is read: prom-client's inc() hashes and checks a child's labels on every call
 * (about 100 ns), which with the other per-frame updates was 2 % (JSON) to 5 % (binary) of the
 * main thread at full ingest in a profile (docs/performance.md).
 */
export interface HotCounts {
  jsonFrames: number;
  binaryFrames: number;
  samples: number;
  duplicateSamples: number;
  liveFramesSent: number;
}

/** Adds what `key` counted since the last scrape to `counter`. */
function addCounted(counts: HotCounts, key: keyof HotCounts, counter: { inc(value: number): void }): void {
  if (counts[key] === 0) return;
  counter.inc(counts[key]);
  counts[key] = 0;
}

/** What the connector gauges read when scraped (set by app.ts once the runner exists). */
export interface ConnectorGauges {
  breakerStates(): Array<{ origin: string; state: 'closed' | 'open' | 'half-open' }>;
  /** Of each connector this instance polls: seconds since its last successful poll (since it was taken up, before any). */
  secondsSinceSuccess(): Array<{ connector: string; kind: string; seconds: number }>;
}

const breakerLevels = { closed: 0, 'half-open': 1, open: 2 } as const;

export function createMetrics() {
  const registry = new Registry();
  let queue: QueueDepth = { queuedSamples: 0, queuedBytes: 0 };
  let connectors: ConnectorGauges = { breakerStates: () => [], secondsSinceSuccess: () => [] };
  let readCache: CacheSize = { bytes: 0 };
  const hot: HotCounts = { jsonFrames: 0, binaryFrames: 0, samples: 0, duplicateSamples: 0, liveFramesSent: 0 };
  collectDefaultMetrics({ register: registry, prefix: 'wavehouse_process_' });
  const in_ = (config: { name: string; help: string; labelNames?: readonly string[] }) => ({ ...config, registers: [registry] });
  return {
    registry,
    hot,
    httpRequestDuration: new Histogram({
      ...in_({
        name: 'wavehouse_http_request_duration_seconds',
        help: 'REST request duration by route and status.',
        labelNames: ['method', 'route', 'status'],
      }),
      buckets: latencyBucketsS,
    }),
    socketsOpen: new Gauge(in_({ name: 'wavehouse_sockets_open', help: 'Open WebSockets by kind (ingest, live).', labelNames: ['kind'] })),
    ingestFrames: new Counter({
      ...in_({
        name: 'wavehouse_ingest_frames_total',
        help: 'Frames received from producers, by encoding (json, binary).',
        labelNames: ['encoding'],
      }),
      collect() {
        addCounted(hot, 'jsonFrames', this.labels('json'));
        addCounted(hot, 'binaryFrames', this.labels('binary'));
      },
    }),
    ingestSamples: new Counter({
      ...in_({ name: 'wavehouse_ingest_samples_total', help: 'New samples accepted from producers (duplicates excluded).' }),
      collect() {
        addCounted(hot, 'samples', this);
      },
    }),
    ingestDuplicateSamples: new Counter({
      ...in_({
        name: 'wavehouse_ingest_duplicate_samples_total',
        help: 'Samples dropped as duplicates (at or below the highest accepted seq).',
      }),
      collect() {
        addCounted(hot, 'duplicateSamples', this);
      },
    }),
    ingestRejectedFrames: new Counter(
      in_({ name: 'wavehouse_ingest_rejected_frames_total', help: 'Frames rejected, by error code.', labelNames: ['code'] }),
    ),
    ingestRejectedSamples: new Counter(
      in_({
        name: 'wavehouse_ingest_rejected_samples_total',
        help: 'Samples in rejected frames, by error code (0 counted when a frame could not be parsed).',
        labelNames: ['code'],
      }),
    ),
    ingestPaused: new Counter(
      in_({ name: 'wavehouse_ingest_paused_total', help: 'Times a producer socket stopped being read because the write queue was full.' }),
    ),
    liveFramesSent: new Counter({
      ...in_({ name: 'wavehouse_live_frames_sent_total', help: 'Frames sent to viewers.' }),
      collect() {
        addCounted(hot, 'liveFramesSent', this);
      },
    }),
    socketHandlerErrors: new Counter(
      in_({
        name: 'wavehouse_socket_handler_errors_total',
        help: 'Sockets closed with 1011 because handling one of their frames or events threw (a bug), by kind (ingest, live).',
        labelNames: ['kind'],
      }),
    ),
    liveSlowViewersClosed: new Counter(
      in_({ name: 'wavehouse_live_slow_viewers_closed_total', help: 'Viewers closed with 1013 for falling too far behind.' }),
    ),
    observeWriteQueue(depth: QueueDepth) {
      queue = depth;
    },
    writeQueueSamples: new Gauge({
      ...in_({ name: 'wavehouse_write_queue_samples', help: 'Samples accepted and not yet committed.' }),
      collect() {
        this.set(queue.queuedSamples);
      },
    }),
    writeQueueBytes: new Gauge({
      ...in_({ name: 'wavehouse_write_queue_bytes', help: 'Bytes accepted and not yet committed.' }),
      collect() {
        this.set(queue.queuedBytes);
      },
    }),
    writeBatchSamples: new Histogram({
      ...in_({ name: 'wavehouse_write_batch_samples', help: 'Samples per commit.' }),
      buckets: [50, 100, 500, 1_000, 5_000, 10_000, 50_000, 100_000],
    }),
    writeCommitDuration: new Histogram({
      ...in_({ name: 'wavehouse_write_commit_duration_seconds', help: 'Duration of one commit (COPY and counters).' }),
      buckets: latencyBucketsS,
    }),
    ackLatency: new Histogram({
      ...in_({ name: 'wavehouse_ack_latency_seconds', help: 'From a frame accepted to its samples committed (the ack is sent then).' }),
      buckets: latencyBucketsS,
    }),
    compressedSamples: new Counter(
      in_({ name: 'wavehouse_compress_samples_total', help: 'Samples the chunk compressor rewrote into compressed chunks.' }),
    ),
    compressedBytes: new Counter(
      in_({
        name: 'wavehouse_compress_payload_bytes_total',
        help: 'Payload bytes of the chunks the compressor replaced (stage=before) and of what replaced them (stage=after).',
        labelNames: ['stage'],
      }),
    ),
    compressCorruptChunks: new Counter(
      in_({ name: 'wavehouse_compress_corrupt_chunks_total', help: 'Chunks the compressor could not decode and left as they are.' }),
    ),
    connectorPolls: new Counter(
      in_({
        name: 'wavehouse_connector_polls_total',
        help: 'Connector polls, by kind and outcome (success, failed, breaker_open, out_of_credits, database).',
        labelNames: ['kind', 'outcome'],
      }),
    ),
    connectorUpstreamDuration: new Histogram({
      ...in_({
        name: 'wavehouse_connector_upstream_duration_seconds',
        help: 'One upstream request attempt, headers and body, by kind.',
        labelNames: ['kind'],
      }),
      buckets: latencyBucketsS,
    }),
    connectorRecords: new Counter(
      in_({
        name: 'wavehouse_connector_records_total',
        help: 'Upstream records stored (duplicates excluded), by kind.',
        labelNames: ['kind'],
      }),
    ),
    connectorDiscards: new Counter(
      in_({
        name: 'wavehouse_connector_discards_total',
        help: 'Upstream values stored as null for not being numbers (invalid_value), and records skipped (invalid_record), by kind.',
        labelNames: ['kind', 'what'],
      }),
    ),
    observeConnectors(gauges: ConnectorGauges) {
      connectors = gauges;
    },
    connectorBreakerState: new Gauge({
      ...in_({
        name: 'wavehouse_connector_breaker_state',
        help: "An upstream origin's circuit breaker on this instance: 0 closed, 1 half-open, 2 open.",
        labelNames: ['origin'],
      }),
      collect() {
        this.reset();
        for (const { origin, state } of connectors.breakerStates()) this.labels(origin).set(breakerLevels[state]);
      },
    }),
    connectorSecondsSinceSuccess: new Gauge({
      ...in_({
        name: 'wavehouse_connector_seconds_since_success',
        help: 'Of each connector this instance polls, seconds since its last successful poll.',
        labelNames: ['connector', 'kind'],
      }),
      collect() {
        this.reset();
        for (const { connector, kind, seconds } of connectors.secondsSinceSuccess()) this.labels(connector, kind).set(seconds);
      },
    }),
    observeReadCache(size: CacheSize) {
      readCache = size;
    },
    readCacheHits: new Counter(
      in_({
        name: 'wavehouse_read_cache_hits_total',
        help: 'Reads answered from the read cache, by tier (memory, redis).',
        labelNames: ['tier'],
      }),
    ),
    readCacheMisses: new Counter(in_({ name: 'wavehouse_read_cache_misses_total', help: 'Reads whose answer was in no cache tier.' })),
    readCacheNotModified: new Counter(
      in_({ name: 'wavehouse_read_cache_not_modified_total', help: 'Reads answered 304: If-None-Match named the current ETag.' }),
    ),
    readCacheBytes: new Gauge({
      ...in_({ name: 'wavehouse_read_cache_bytes', help: "Bytes held by this process's read cache (READ_CACHE_MAX_BYTES)." }),
      collect() {
        this.set(readCache.bytes);
      },
    }),
    readCacheEvictions: new Counter(
      in_({ name: 'wavehouse_read_cache_evictions_total', help: 'Answers dropped from the read cache to stay within its bytes.' }),
    ),
    readCacheOversized: new Counter(
      in_({ name: 'wavehouse_read_cache_oversized_total', help: 'Answers not cached for being over READ_CACHE_MAX_ENTRY_BYTES.' }),
    ),
    readCacheRedisErrors: new Counter(
      in_({
        name: 'wavehouse_read_cache_redis_errors_total',
        help: 'Read cache commands to Redis that failed or timed out (taken as misses).',
      }),
    ),
    samplePartitions: new Gauge(
      in_({
        name: 'wavehouse_sample_partitions',
        help: 'Partitions of sample_chunks, as the last retention round on this instance saw them.',
      }),
    ),
    retentionLastRound: new Gauge(
      in_({ name: 'wavehouse_retention_last_round_timestamp_seconds', help: 'When this instance last ran a retention round as leader.' }),
    ),
    retentionDeleted: new Counter(
      in_({
        name: 'wavehouse_retention_deleted_total',
        help: 'Rows retention removed: chunks by partition drop (estimated) or by session, and roll-up parts.',
        labelNames: ['what'],
      }),
    ),
    databaseErrors: new Counter(
      in_({ name: 'wavehouse_database_errors_total', help: 'Failed database operations, by operation.', labelNames: ['operation'] }),
    ),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;

/** The ingest socket's counters; the per-frame ones are plain numbers until a scrape (HotCounts). */
export function ingestCounters(metrics: Metrics) {
  const { hot } = metrics;
  return {
    frame: (encoding: 'json' | 'binary') => {
      if (encoding === 'json') hot.jsonFrames++;
      else hot.binaryFrames++;
    },
    accepted: (newSamples: number, duplicateSamples: number) => {
      hot.samples += newSamples;
      hot.duplicateSamples += duplicateSamples;
    },
    rejected: (code: string, samples: number) => {
      metrics.ingestRejectedFrames.labels(code).inc();
      metrics.ingestRejectedSamples.labels(code).inc(samples);
    },
    paused: () => metrics.ingestPaused.inc(),
    handlerFailed: () => metrics.socketHandlerErrors.labels('ingest').inc(),
  };
}

/** The live viewer's counters. */
export function viewerCounters(metrics: Metrics) {
  return {
    frameSent: () => {
      metrics.hot.liveFramesSent++;
    },
    slowClosed: () => metrics.liveSlowViewersClosed.inc(),
    handlerFailed: () => metrics.socketHandlerErrors.labels('live').inc(),
  };
}

/** The batch writer's counters. */
export function writerCounters(metrics: Metrics) {
  return {
    committed: (samples: number, durationS: number) => {
      metrics.writeBatchSamples.observe(samples);
      metrics.writeCommitDuration.observe(durationS);
    },
    acked: (latencyS: number) => metrics.ackLatency.observe(latencyS),
    failed: () => metrics.databaseErrors.labels('commit').inc(),
  };
}

/** The chunk compressor's counters. */
export function compressorCounters(metrics: Metrics) {
  return {
    onGroup: (group: { samples: number; bytesBefore: number; bytesAfter: number }) => {
      metrics.compressedSamples.inc(group.samples);
      metrics.compressedBytes.labels('before').inc(group.bytesBefore);
      metrics.compressedBytes.labels('after').inc(group.bytesAfter);
    },
    onCorrupt: () => metrics.compressCorruptChunks.inc(),
  };
}

/** The connector runner's counters. */
export function connectorCounters(metrics: Metrics) {
  return {
    polled: (kind: string, outcome: 'success' | 'failed' | 'breaker_open' | 'out_of_credits' | 'database') =>
      metrics.connectorPolls.labels(kind, outcome).inc(),
    upstreamAttempt: (kind: string, ms: number) => metrics.connectorUpstreamDuration.labels(kind).observe(ms / 1_000),
    stored: (kind: string, records: number) => metrics.connectorRecords.labels(kind).inc(records),
    discarded: (kind: string, invalidValues: number, invalidRecords: number) => {
      if (invalidValues > 0) metrics.connectorDiscards.labels(kind, 'invalid_value').inc(invalidValues);
      if (invalidRecords > 0) metrics.connectorDiscards.labels(kind, 'invalid_record').inc(invalidRecords);
    },
  };
}

export type ConnectorCounters = ReturnType<typeof connectorCounters>;

/** The read cache's counters. */
export function readCacheCounters(metrics: Metrics) {
  return {
    hit: (tier: 'memory' | 'redis') => metrics.readCacheHits.labels(tier).inc(),
    miss: () => metrics.readCacheMisses.inc(),
    notModified: () => metrics.readCacheNotModified.inc(),
    evicted: () => metrics.readCacheEvictions.inc(),
    oversized: () => metrics.readCacheOversized.inc(),
    redisFailed: () => metrics.readCacheRedisErrors.inc(),
  };
}

/** The retention job's counters. */
export function retentionCounters(metrics: Metrics) {
  return {
    round: (partitions: number, deleted: { partitionChunks: number; sessionChunks: number; rollups: number }) => {
      metrics.samplePartitions.set(partitions);
      metrics.retentionLastRound.set(Date.now() / 1_000);
      metrics.retentionDeleted.labels('partition_chunks').inc(deleted.partitionChunks);
      metrics.retentionDeleted.labels('session_chunks').inc(deleted.sessionChunks);
      metrics.retentionDeleted.labels('rollups').inc(deleted.rollups);
    },
    failed: () => metrics.databaseErrors.labels('retention').inc(),
  };
}
