/**
 * Configuration comes only from environment variables, read once here into a nested,
 * typed Config. Nothing below app.ts reads process.env. Every bad variable is reported
 * in one error so an operator fixes them all in one go.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import proxyAddr from '@fastify/proxy-addr';

export interface Config {
  http: {
    host: string;
    port: number;
    /** `*` or an allowlist of origins (browsers on other origins call the API). */
    corsOrigins: '*' | string[];
    maxBodyBytes: number;
    /** Whose X-Forwarded-For entries are believed for the client IP (rate limits, caps): http/client-address.ts. */
    trustProxy: TrustProxy;
    /** REST requests per client IP per minute; session creation has its own, stricter one. 0: off. */
    rateLimitPerMinute: number;
    createRateLimitPerMinute: number;
    /** Socket upgrade attempts per client IP per minute, on each instance. 0: off. */
    upgradeRateLimitPerMinute: number;
    maxSocketsPerIp: number;
    maxViewersPerSession: number;
    /** Live viewers of this instance, all sessions together; producers are never refused for it. */
    maxViewers: number;
    /**
     * From a connection's opening (or its previous request's end) to its request's last header:
     * how long a slow-header client (slowloris) holds one.
     */
    headersTimeoutMs: number;
    /** From a request's first byte to its body's last; the response, an export streamed for minutes, is not bounded by it. */
    requestTimeoutMs: number;
    /** How long an idle keep-alive connection waits for its next request. */
    keepAliveTimeoutMs: number;
    /** Open TCP connections per remote address, WebSockets included, counted before any request is read. 0: off. */
    maxConnectionsPerIp: number;
  };
  metrics: {
    /** null: `/metrics` is public. Else the bearer token it requires. */
    token: string | null;
  };
  database: {
    /** null: run the embedded PostgreSQL under `dataDir`. */
    url: string | null;
    dataDir: string;
    poolSize: number;
  };
  /** null: fan-out stays in this process; a redis:// URL shares it across instances. */
  redisUrl: string | null;
  sessions: {
    /** Lets `end` go without a token, for the openSCG phone clients. */
    legacyTokenlessEnd: boolean;
    maxMetadataBytes: number;
    maxChannels: number;
    /**
     * How long a create's INSERT may run before it is cancelled and answered 503: a blocked or
     * overloaded database must not hold every create behind it.
     */
    createTimeoutMs: number;
    /** How long an end waits for the session's samples to be committed before it is answered 503, not done (a retry finishes it). */
    endTimeoutMs: number;
  };
  ingest: {
    maxFrameBytes: number;
    maxFrameSamples: number;
    hardMaxFrameBytes: number;
    /** 0 turns the per-producer limit off. */
    maxSamplesPerS: number;
    maxRejectedFramesPerMinute: number;
  };
  live: {
    maxBufferedBytes: number;
    recentWindowBytes: number;
  };
  writer: {
    maxQueuedBytes: number;
    maxBatchAgeMs: number;
    maxBatchSamples: number;
    maxChunkSamples: number;
    /** Writer loops, each committing its share of the sessions on a connection of its own. */
    lanes: number;
  };
  tracing: {
    /** null: tracing is off (no exporter, the API's no-op tracer). Else the OTLP/HTTP base URL; spans go to `v1/traces` under it. */
    otlpEndpoint: string | null;
    serviceName: string;
  };
  pingIntervalMs: number;
  shutdownGraceMs: number;
  logLevel: string;
}

/** How many proxies in front to believe (0: none, the peer is the client), or the addresses and CIDRs of the proxies to believe. */
export type TrustProxy = number | readonly string[];

const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

/** Reads one variable at a time and collects what is wrong instead of stopping at the first. */
function reader(env: Env) {
  const problems: string[] = [];
  const raw = (name: string): string | undefined => {
    const value = env[name];
    return value === undefined || value.trim() === '' ? undefined : value.trim();
  };
  return {
    problems,
    string(name: string, fallback: string): string {
      return raw(name) ?? fallback;
    },
    optionalString(name: string): string | null {
      return raw(name) ?? null;
    },
    integer(name: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
      const value = raw(name);
      if (value === undefined) return fallback;
      const parsed = Number(value);
      if (!/^-?\d+$/.test(value) || parsed < min || parsed > max) {
        problems.push(`${name}: expected an integer from ${min} to ${max}, got "${value}"`);
        return fallback;
      }
      return parsed;
    },
    boolean(name: string, fallback: boolean): boolean {
      const value = raw(name)?.toLowerCase();
      if (value === undefined) return fallback;
      if (['true', '1', 'yes'].includes(value)) return true;
      if (['false', '0', 'no'].includes(value)) return false;
      problems.push(`${name}: expected true or false, got "${value}"`);
      return fallback;
    },
    oneOf<T extends string>(name: string, fallback: T, allowed: readonly T[]): T {
      const value = raw(name);
      if (value === undefined) return fallback;
      if (!(allowed as readonly string[]).includes(value)) {
        problems.push(`${name}: expected one of ${allowed.join(', ')}, got "${value}"`);
        return fallback;
      }
      return value as T;
    },
  };
}

const MiB = 1024 * 1024;

const trustProxyForms =
  'a number of proxies in front (1 behind one nginx), or their addresses or CIDRs, comma-separated (127.0.0.1,10.0.0.0/8)';

/**
 * TRUST_PROXY: false (or unset, or 0), a hop count, or trusted proxy addresses. `true` once
 * believed every hop, so the client's own leftmost X-Forwarded-For entry was its address and
 * any limit keyed on it could be escaped with a forged header. It now means one proxy in
 * front, the deployment it was documented for: an install that set it keeps starting, and
 * keys its limits on the address its proxy saw. Behind more than one proxy that is the
 * nearer proxy's peer, which over-limits rather than lets anyone escape.
 */
function readTrustProxy(raw: string | undefined, problems: string[]): TrustProxy {
  const value = raw?.trim() ?? '';
  if (value === '' || /^(false|no)$/i.test(value)) return 0;
  if (/^(true|yes)$/i.test(value)) return 1;
  if (/^\d+$/.test(value)) {
    if (Number(value) <= 100) return Number(value);
    problems.push(`TRUST_PROXY: expected at most 100 proxies in front, got ${value}`);
    return 0;
  }
  const addresses = value.split(',').map((address) => address.trim());
  try {
    proxyAddr.compile(addresses);
    return addresses;
  } catch {
    problems.push(`TRUST_PROXY: expected false, ${trustProxyForms}; got "${value}"`);
    return 0;
  }
}

export function loadConfig(env: Env): Config {
  const read = reader(env);
  const databaseUrl = read.optionalString('DATABASE_URL');
  if (databaseUrl !== null && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    read.problems.push('DATABASE_URL: expected a postgres:// or postgresql:// URL');
  }
  const redisUrl = read.optionalString('REDIS_URL');
  if (redisUrl !== null && !/^rediss?:\/\//.test(redisUrl)) read.problems.push('REDIS_URL: expected a redis:// or rediss:// URL');
  const otlpEndpoint = read.optionalString('OTEL_EXPORTER_OTLP_ENDPOINT');
  if (otlpEndpoint !== null && !/^https?:$/.test(URL.parse(otlpEndpoint)?.protocol ?? '')) {
    read.problems.push('OTEL_EXPORTER_OTLP_ENDPOINT: expected an http:// or https:// URL');
  }
  const metricsToken = read.optionalString('METRICS_TOKEN');
  if (metricsToken !== null && !/^[A-Za-z0-9\-._~+/]{16,}=*$/.test(metricsToken)) {
    // RFC 6750's token characters, so that it fits an Authorization header as it is; 16 at
    // least, so that it cannot be guessed (openssl rand -hex 32 makes a good one).
    read.problems.push('METRICS_TOKEN: expected at least 16 characters of A-Z a-z 0-9 - . _ ~ + /');
  }
  const corsSetting = read.string('CORS_ORIGINS', '*');
  const corsOrigins: Config['http']['corsOrigins'] =
    corsSetting === '*'
      ? '*'
      : corsSetting
          .split(',')
          .map((origin) => origin.trim())
          .filter(Boolean);
  if (corsOrigins !== '*') {
    for (const origin of corsOrigins) {
      if (!/^https?:\/\/[^/\s]+$/.test(origin)) {
        read.problems.push(`CORS_ORIGINS: "${origin}" is not an origin like https://example.org`);
      }
    }
  }

  const config: Config = {
    http: {
      host: read.string('HOST', '127.0.0.1'),
      port: read.integer('PORT', 8080, 0, 65535),
      corsOrigins,
      maxBodyBytes: read.integer('HTTP_MAX_BODY_BYTES', 64 * 1024, 1024),
      trustProxy: readTrustProxy(env.TRUST_PROXY, read.problems),
      rateLimitPerMinute: read.integer('RATE_LIMIT_PER_MINUTE', 1200, 0),
      createRateLimitPerMinute: read.integer('RATE_LIMIT_CREATE_PER_MINUTE', 60, 0),
      upgradeRateLimitPerMinute: read.integer('RATE_LIMIT_UPGRADES_PER_MINUTE', 600, 0),
      maxSocketsPerIp: read.integer('MAX_SOCKETS_PER_IP', 256, 1),
      maxViewersPerSession: read.integer('MAX_VIEWERS_PER_SESSION', 10_000, 1),
      maxViewers: read.integer('MAX_VIEWERS', 10_000, 1),
      headersTimeoutMs: read.integer('HTTP_HEADERS_TIMEOUT_MS', 10_000, 100, 600_000),
      requestTimeoutMs: read.integer('HTTP_REQUEST_TIMEOUT_MS', 30_000, 100, 3_600_000),
      keepAliveTimeoutMs: read.integer('HTTP_KEEP_ALIVE_TIMEOUT_MS', 5_000, 100, 600_000),
      maxConnectionsPerIp: read.integer('HTTP_MAX_CONNECTIONS_PER_IP', 512, 0),
    },
    metrics: {
      token: metricsToken,
    },
    database: {
      url: databaseUrl,
      dataDir: path.resolve(read.string('WAVEHOUSE_DATA_DIR', path.join(projectRoot, 'data'))),
      poolSize: read.integer('DATABASE_POOL_SIZE', 10, 3, 1000),
    },
    redisUrl,
    sessions: {
      legacyTokenlessEnd: read.boolean('LEGACY_TOKENLESS_END', false),
      maxMetadataBytes: read.integer('SESSION_MAX_METADATA_BYTES', 4096, 2),
      maxChannels: read.integer('SESSION_MAX_CHANNELS', 64, 1, 1024),
      createTimeoutMs: read.integer('SESSION_CREATE_TIMEOUT_MS', 5_000, 1, 600_000),
      endTimeoutMs: read.integer('SESSION_END_TIMEOUT_MS', 10_000, 1, 600_000),
    },
    ingest: {
      maxFrameBytes: read.integer('INGEST_MAX_FRAME_BYTES', 1 * MiB, 1024),
      maxFrameSamples: read.integer('INGEST_MAX_FRAME_SAMPLES', 10_000, 1),
      hardMaxFrameBytes: read.integer('INGEST_HARD_MAX_FRAME_BYTES', 16 * MiB, 1024),
      maxSamplesPerS: read.integer('INGEST_MAX_SAMPLES_PER_S', 50_000, 0),
      maxRejectedFramesPerMinute: read.integer('INGEST_MAX_REJECTED_FRAMES_PER_MINUTE', 100, 1),
    },
    live: {
      maxBufferedBytes: read.integer('LIVE_MAX_BUFFERED_BYTES', 4 * MiB, 64 * 1024),
      recentWindowBytes: read.integer('LIVE_RECENT_WINDOW_BYTES', 1 * MiB, 0),
    },
    writer: {
      maxQueuedBytes: read.integer('WRITE_QUEUE_MAX_BYTES', 64 * MiB, 1 * MiB),
      maxBatchAgeMs: read.integer('WRITE_BATCH_MAX_AGE_MS', 20, 1, 10_000),
      maxBatchSamples: read.integer('WRITE_BATCH_MAX_SAMPLES', 100_000, 1),
      maxChunkSamples: read.integer('WRITE_CHUNK_MAX_SAMPLES', 2_000, 1, 100_000),
      lanes: read.integer('WRITE_LANES', 4, 1, 16),
    },
    tracing: {
      otlpEndpoint,
      serviceName: read.string('OTEL_SERVICE_NAME', 'wavehouse'),
    },
    pingIntervalMs: read.integer('PING_INTERVAL_MS', 15_000, 100),
    shutdownGraceMs: read.integer('SHUTDOWN_GRACE_MS', 10_000, 0),
    logLevel: read.oneOf('LOG_LEVEL', 'info', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
  };
  if (config.ingest.hardMaxFrameBytes < config.ingest.maxFrameBytes) {
    read.problems.push('INGEST_HARD_MAX_FRAME_BYTES: must be at least INGEST_MAX_FRAME_BYTES');
  }
  if (config.ingest.maxSamplesPerS > 0 && config.ingest.maxSamplesPerS < config.ingest.maxFrameSamples) {
    // Otherwise a full-size frame could never pass the rate limit and would be refused forever.
    read.problems.push('INGEST_MAX_SAMPLES_PER_S: must be 0 (off) or at least INGEST_MAX_FRAME_SAMPLES');
  }
  if (config.writer.lanes > config.database.poolSize - 2) {
    // Each lane holds a connection while it commits, and creates have one of their own; REST
    // reads and exports need at least one more.
    read.problems.push('WRITE_LANES: must be at most DATABASE_POOL_SIZE - 2');
  }
  if (config.http.headersTimeoutMs > config.http.requestTimeoutMs) {
    // Node refuses to start a server so configured: the headers are part of the request.
    read.problems.push('HTTP_HEADERS_TIMEOUT_MS: must be at most HTTP_REQUEST_TIMEOUT_MS');
  }
  if (config.http.trustProxy && read.optionalString('HTTP_MAX_CONNECTIONS_PER_IP') === null) {
    // Behind a reverse proxy every connection comes from the proxy's address: a cap per address
    // would cap the whole instance. The proxy limits its clients instead (docs/deployment.md).
    config.http.maxConnectionsPerIp = 0;
  }
  if (read.problems.length > 0) throw new ConfigError(read.problems);
  return config;
}
