/**
 * Configuration comes only from environment variables, read once here into a nested,
 * typed Config. Nothing below app.ts reads process.env. Every bad variable is reported
 * in one error so an operator fixes them all in one go.
 *
 * Each variable is declared once, below: its default and one line on what it sets. The
 * reader takes its defaults from there, and `npm run env-example` writes .env.example from
 * it; a test fails when the checked-in file differs, or the README's table lists other ones.
 *
 * Longer than 300 lines because the declaration of every setting, the Config it fills and
 * the reader that fills it change together whenever a setting is added; apart, each would
 * be read with the others open beside it.
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
    /**
     * REST requests per minute of a key (its tokens with it) or subject, else of a client IP,
     * unless a key sets its own; session creation has its own, stricter one. 0: off.
     */
    rateLimitPerMinute: number;
    createRateLimitPerMinute: number;
    /** Socket upgrade attempts per client IP per minute, on each instance. 0: off. */
    upgradeRateLimitPerMinute: number;
    /** Open sockets of a client IP that presented no key or token. */
    maxSocketsPerIp: number;
    /** Open sockets of a key (its tokens with it) or subject, unless the key sets its own. */
    maxSocketsPerKey: number;
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
  access: {
    /** open: a session's id reads it and anyone creates one, keys add to that; private: every call needs a key or a token. */
    mode: 'open' | 'private';
    /** A private JWK or PEM; null: generated under the data dir with the embedded database, else no access tokens. */
    signingKey: string | null;
    /** Public JWKs or PEMs still accepted after a rotation. */
    previousKeys: string[];
    accessTokenTtlS: number;
    refreshTokenTtlS: number;
    /** How long a key's record is trusted without asking the database: the revocation bound without Redis. */
    cacheTtlMs: number;
    /** Audit rows older than this are deleted (access-sweeper.ts); 0 keeps them forever. */
    auditRetentionDays: number;
    /** An identity provider's tokens are accepted when set. */
    oidc: { jwksUrl: string; issuer: string; audience: string; rolesClaim: string } | null;
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
    /** How long a deleted session may be restored; it is purged after. */
    deleteGraceDays: number;
  };
  ingest: {
    maxFrameBytes: number;
    maxFrameSamples: number;
    hardMaxFrameBytes: number;
    /** 0 turns the per-producer limit off. */
    maxSamplesPerS: number;
    maxRejectedFramesPerMinute: number;
    /** How long an HTTP ingest request waits for its samples to commit before it answers 503. */
    httpCommitTimeoutMs: number;
    /** How long an instance keeps a session's producer lock after an HTTP ingest request, for the next one; 0: not at all. */
    httpLockGraceMs: number;
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
    /** Whether commits keep the roll-ups (storage/rollup-store.ts); off, aggregates read raw samples. */
    rollups: boolean;
    /** Between two rounds of the roll-up compactor (storage/rollup-compactor.ts); 0: this instance does not compact. */
    rollupCompactIntervalMs: number;
    /** Between two rounds of the chunk compressor (storage/chunk-compressor.ts); 0: this instance does not compress. */
    compressIntervalMs: number;
    /** How far a session's lastT must be past a chunk's maxT for the compressor to take it (an ended session's: at once). */
    compressAfterMs: number;
  };
  /** Time partitions and retention of sample storage (maintenance/retention-job.ts). */
  retention: {
    /** Days a chunk is kept after its commit; 0 keeps every chunk. */
    days: number;
    /** Days a roll-up part is kept after its block's end; 0 keeps every part. */
    rollupDays: number;
    /** Day partitions created ahead of today. */
    aheadDays: number;
    /** Between two rounds of the retention job; 0: this instance runs none (one must). */
    intervalMs: number;
  };
  connectors: {
    /** AES-256-GCM key sealing upstream secrets; null: a key file under the data dir with the embedded database, else none. */
    secretKey: Buffer | null;
    /** The shortest pollIntervalS a connector is created with, in ms. */
    minPollIntervalMs: number;
    /** How often an instance looks for connectors nobody polls (one whose instance died): the takeover bound. */
    claimIntervalMs: number;
    upstream: {
      attemptTimeoutMs: number;
      maxAttempts: number;
      retryBaseMs: number;
      retryMaxMs: number;
      breakerFailures: number;
      halfOpenAfterMs: number;
      maxBodyBytes: number;
    };
  };
  readCache: {
    /** The in-process LRU of read answers, in bytes; 0: nothing is cached (ETags and 304 still work). */
    maxBytes: number;
    /** A larger answer is streamed and not cached, in memory or Redis. */
    maxEntryBytes: number;
    /** How long an answer stays in Redis (with REDIS_URL): entries never go stale, the TTL bounds Redis's memory. */
    redisTtlS: number;
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

/**
 * One environment variable: its default, as .env.example and the README write it (null:
 * unset, or computed where `about` says so), and what it sets in one line, which is its
 * comment in .env.example (`npm run env-example`; the README's table says more).
 */
export interface Setting {
  readonly default: string | number | boolean | null;
  readonly about: string;
  /** Shown in .env.example in place of the default: a value to start from. */
  readonly example?: string;
  /** Set in .env.example rather than shown commented out: a deployment chooses it. */
  readonly set?: true;
}

type Settings = Readonly<Record<string, Setting>>;

const MiB = 1024 * 1024;

const listening = {
  HOST: {
    default: '127.0.0.1',
    set: true,
    about: 'interface to listen on: 127.0.0.1 behind a reverse proxy on the same box, 0.0.0.0 in a container',
  },
  PORT: { default: 8080, set: true, about: 'port to listen on (0: any free port)' },
} as const satisfies Settings;

const storage = {
  DATABASE_URL: {
    default: null,
    example: 'postgres://wavehouse:change-me@127.0.0.1:5432/wavehouse',
    set: true,
    about: 'PostgreSQL server URL; unset runs the embedded PostgreSQL under WAVEHOUSE_DATA_DIR (development)',
  },
  DATABASE_POOL_SIZE: { default: 10, about: 'pooled database connections: at least 3, and WRITE_LANES + 2' },
  WAVEHOUSE_DATA_DIR: {
    default: null,
    example: '/var/lib/wavehouse',
    about: 'where the embedded PostgreSQL keeps its cluster (unset: data/ of the checkout)',
  },
  REDIS_URL: {
    default: null,
    example: 'redis://127.0.0.1:6379',
    about: 'Redis for fan-out across instances: needed as soon as more than one serves the same sessions',
  },
} as const satisfies Settings;

const http = {
  CORS_ORIGINS: { default: '*', about: '* or a comma-separated allowlist of origins (https://app.example)' },
  LEGACY_TOKENLESS_END: { default: false, about: 'true lets end go without a token (openSCG phone clients)' },
  HTTP_MAX_BODY_BYTES: { default: 64 * 1024, about: 'largest REST request body' },
  HTTP_HEADERS_TIMEOUT_MS: { default: 10_000, about: "how long a client may take to send a request's headers (slowloris)" },
  HTTP_REQUEST_TIMEOUT_MS: { default: 30_000, about: 'how long a client may take to send a whole request (a response is not bounded)' },
  HTTP_KEEP_ALIVE_TIMEOUT_MS: { default: 5_000, about: 'how long an idle keep-alive connection waits for its next request' },
  HTTP_MAX_CONNECTIONS_PER_IP: {
    default: 512,
    about: 'open connections per client address, 0: off; off by default when TRUST_PROXY is set (the proxy limits)',
  },
  TRUST_PROXY: { default: 'false', about: 'behind reverse proxies: how many are in front (1), or their addresses/CIDRs (127.0.0.1)' },
  METRICS_TOKEN: { default: null, about: 'unset: /metrics is public; set: Prometheus sends it as a bearer token (openssl rand -hex 32)' },
} as const satisfies Settings;

const access = {
  AUTH_MODE: { default: 'open', about: 'open: a session id reads it, anyone creates; private: every call needs an API key or token' },
  ACCESS_TOKEN_SIGNING_KEY: {
    default: null,
    about: 'private JWK or PEM signing access tokens; unset: generated under WAVEHOUSE_DATA_DIR (embedded database only)',
  },
  ACCESS_TOKEN_PREVIOUS_KEYS: { default: null, about: 'public keys still accepted after a rotation: a JSON array of JWKs, or PEMs' },
  ACCESS_TOKEN_TTL_S: { default: 900, about: 'lifetime of an access token, in seconds' },
  REFRESH_TOKEN_TTL_S: { default: 2_592_000, about: 'lifetime of a refresh token, in seconds (30 days)' },
  AUTH_CACHE_TTL_MS: { default: 30_000, about: "how long a key's record is trusted unasked; bounds a revocation's reach without Redis" },
  AUDIT_RETENTION_DAYS: { default: 365, about: 'audit rows older than this many days are deleted, hourly; 0: kept forever' },
  AUTH_JWKS_URL: {
    default: null,
    example: 'https://idp.example/realms/wavehouse/protocol/openid-connect/certs',
    about: "identity provider's JWKS URL; with AUTH_ISSUER and AUTH_AUDIENCE, its tokens are accepted",
  },
  AUTH_ISSUER: { default: null, example: 'https://idp.example/realms/wavehouse', about: "identity provider's issuer (iss), exactly" },
  AUTH_AUDIENCE: { default: null, example: 'wavehouse', about: 'the audience (aud) its tokens must name' },
  AUTH_ROLES_CLAIM: { default: 'roles', about: 'claim holding reader, writer or admin; dots in the name or a path (docs/security.md)' },
} as const satisfies Settings;

const clientLimits = {
  RATE_LIMIT_PER_MINUTE: {
    default: 1200,
    about: 'REST requests per key, subject or else client IP per minute, unless a key sets its own; 0: off',
  },
  RATE_LIMIT_CREATE_PER_MINUTE: {
    default: 60,
    about: 'session creations per key, subject or else client IP per minute, 0: off (shared through Redis)',
  },
  RATE_LIMIT_UPGRADES_PER_MINUTE: { default: 600, about: 'WebSocket upgrade attempts per client IP per minute on each instance, 0: off' },
  MAX_SOCKETS_PER_IP: { default: 256, about: 'open WebSockets without a key or token per client IP on one instance' },
  MAX_SOCKETS_PER_KEY: {
    default: 256,
    about: 'open WebSockets per key (its tokens with it) or subject on one instance, unless the key sets maxSockets',
  },
  MAX_VIEWERS_PER_SESSION: { default: 10_000, about: 'live viewers of one session on one instance' },
  MAX_VIEWERS: { default: 10_000, about: 'live viewers of one instance, all sessions together (producers are never refused)' },
} as const satisfies Settings;

const sessionsAndIngest = {
  SESSION_MAX_METADATA_BYTES: { default: 4096, about: 'largest session metadata, as UTF-8 JSON' },
  SESSION_MAX_CHANNELS: { default: 64, about: 'most channels per session' },
  SESSION_CREATE_TIMEOUT_MS: { default: 5_000, about: "how long a create's INSERT may run before it is cancelled and answered 503" },
  SESSION_END_TIMEOUT_MS: { default: 10_000, about: "how long an end waits for the session's samples to commit before it answers 503" },
  DELETE_GRACE_DAYS: {
    default: 7,
    about: 'a deleted session may be restored for this many days, then it is purged, hourly; 0: purged at once',
  },
  INGEST_MAX_FRAME_BYTES: { default: 1 * MiB, about: 'soft frame limit in bytes (frame_too_large)' },
  INGEST_MAX_FRAME_SAMPLES: { default: 10_000, about: 'soft frame limit in samples (frame_too_large)' },
  INGEST_HARD_MAX_FRAME_BYTES: { default: 16 * MiB, about: "a larger frame closes the producer's socket with 1009" },
  INGEST_MAX_SAMPLES_PER_S: { default: 50_000, about: 'per-producer rate (rate_limited), 0: off; else at least INGEST_MAX_FRAME_SAMPLES' },
  INGEST_MAX_REJECTED_FRAMES_PER_MINUTE: { default: 100, about: 'beyond this a producer is closed with 1008' },
  INGEST_HTTP_COMMIT_TIMEOUT_MS: {
    default: 10_000,
    about: 'how long an HTTP ingest request waits for its samples to commit before it answers 503 (resend them)',
  },
  INGEST_HTTP_LOCK_GRACE_MS: {
    default: 200,
    about: "how long the session's producer lock stays with an instance after an HTTP ingest request, for the next; 0: none",
  },
} as const satisfies Settings;

const live = {
  LIVE_MAX_BUFFERED_BYTES: { default: 4 * MiB, about: 'unsent bytes after which a viewer is closed with 1013' },
  LIVE_RECENT_WINDOW_BYTES: { default: 1 * MiB, about: 'committed frames kept per streaming session for viewers joining with fromSeq' },
} as const satisfies Settings;

const writePath = {
  WRITE_QUEUE_MAX_BYTES: { default: 64 * MiB, about: 'accepted but uncommitted bytes after which producers are no longer read' },
  WRITE_BATCH_MAX_AGE_MS: { default: 20, about: 'a batch is committed once its oldest sample is this old...' },
  WRITE_BATCH_MAX_SAMPLES: { default: 100_000, about: '...or once it holds this many samples' },
  WRITE_CHUNK_MAX_SAMPLES: { default: 2_000, about: 'samples per stored chunk row' },
  WRITE_LANES: { default: 4, about: 'writer loops committing side by side; at most DATABASE_POOL_SIZE - 2' },
  WRITE_ROLLUPS: { default: true, about: 'commits keep per-bucket summaries for aggregates; false: aggregates read raw samples' },
  ROLLUP_COMPACT_INTERVAL_MS: {
    default: 10_000,
    about: "between rounds folding each roll-up block's parts into one and rolling 600 ms up; 0: not here (one instance must)",
  },
  COMPRESS_INTERVAL_MS: { default: 10_000, about: 'between rounds compressing sealed chunks; 0: not here (one instance should)' },
  COMPRESS_AFTER_MS: {
    default: 600_000,
    about: "a chunk is sealed, and compressed, once its session's lastT is this far past it (an ended session's at once)",
  },
} as const satisfies Settings;

const readCache = {
  READ_CACHE_MAX_BYTES: { default: 64 * MiB, about: 'in-process cache of read answers (session, /data, /latest), 0: off (ETags stay)' },
  READ_CACHE_MAX_ENTRY_BYTES: { default: 1 * MiB, about: 'a larger answer is streamed and not cached, in memory or Redis' },
  READ_CACHE_REDIS_TTL_S: { default: 300, about: 'with REDIS_URL, how long an answer is shared through Redis, in seconds' },
} as const satisfies Settings;

const operation = {
  PING_INTERVAL_MS: { default: 15_000, about: 'WebSocket ping interval; two unanswered pings close the peer' },
  SHUTDOWN_GRACE_MS: {
    default: 10_000,
    about: "how long shutdown waits for the write queue; keep a supervisor's stop timeout 5 s above it (Cloud Run: 8000)",
  },
  LOG_LEVEL: { default: 'info', about: 'pino level: fatal, error, warn, info, debug, trace or silent' },
} as const satisfies Settings;

const connectors = {
  CONNECTOR_SECRET_KEY: {
    default: null,
    example: 'CHANGE+ME+openssl+rand+base64+32+0000000000=',
    about: 'seals connector secrets (AES-256-GCM); unset: generated under WAVEHOUSE_DATA_DIR (embedded database only)',
  },
  CONNECTOR_MIN_POLL_INTERVAL_MS: { default: 1_000, about: 'shortest poll interval a connector may be created with' },
  CONNECTOR_CLAIM_INTERVAL_MS: {
    default: 10_000,
    about: 'how often an instance takes up connectors nobody polls (after a crash: within this and the lock release)',
  },
  CONNECTOR_TIMEOUT_MS: { default: 10_000, about: 'one upstream request, headers and body' },
  CONNECTOR_MAX_ATTEMPTS: { default: 3, about: 'attempts of one upstream request, retries of transient failures included' },
  CONNECTOR_RETRY_BASE_MS: { default: 500, about: 'first retry delay (jittered, doubling), or longer if Retry-After says so' },
  CONNECTOR_RETRY_MAX_MS: { default: 10_000, about: 'longest retry delay; a longer Retry-After ends the poll and delays the next' },
  CONNECTOR_BREAKER_FAILURES: { default: 5, about: 'consecutive failed requests to a host that open its circuit breaker' },
  CONNECTOR_BREAKER_HALF_OPEN_MS: { default: 20_000, about: 'how long an open breaker refuses calls before it tries one (at most 30000)' },
  CONNECTOR_MAX_BODY_BYTES: { default: 4 * MiB, about: 'largest upstream answer; a larger one is refused' },
} as const satisfies Settings;

const tracing = {
  OTEL_EXPORTER_OTLP_ENDPOINT: {
    default: null,
    example: 'http://127.0.0.1:4318',
    about: 'OpenTelemetry collector, its OTLP/HTTP base URL; unset: no tracing',
  },
  OTEL_SERVICE_NAME: { default: 'wavehouse', about: 'service.name of the exported spans' },
} as const satisfies Settings;

const retention = {
  RETENTION_DAYS: { default: 0, about: 'days a sample is kept after its commit, by dropping day partitions; 0 keeps every sample' },
  ROLLUP_RETENTION_DAYS: {
    default: 0,
    about: 'days roll-ups are kept past their t, so aggregates outlive raw samples; 0 keeps all; 0 or >= RETENTION_DAYS',
  },
  PARTITIONS_AHEAD_DAYS: { default: 7, about: 'day partitions of sample storage created ahead of today' },
  RETENTION_INTERVAL_MS: { default: 600_000, about: 'between rounds of the retention job (one instance per round); 0: not here' },
} as const satisfies Settings;

/** Every setting, in the sections .env.example shows them in. */
export const settingSections: readonly { title: string; settings: Settings }[] = [
  { title: 'Listening', settings: listening },
  { title: 'Storage and fan-out', settings: storage },
  { title: 'HTTP', settings: http },
  { title: 'Access: API keys, tokens, identity provider', settings: access },
  { title: 'Per-client limits', settings: clientLimits },
  { title: 'Sessions and ingest', settings: sessionsAndIngest },
  { title: 'Live viewers', settings: live },
  { title: 'Write path', settings: writePath },
  { title: 'Partitions and retention', settings: retention },
  { title: 'Read cache', settings: readCache },
  { title: 'Sockets, shutdown, logs', settings: operation },
  { title: 'Connectors (pull sources)', settings: connectors },
  { title: 'Tracing (off unless an OTLP/HTTP endpoint is set)', settings: tracing },
];

const settings = {
  ...listening,
  ...storage,
  ...http,
  ...access,
  ...clientLimits,
  ...sessionsAndIngest,
  ...live,
  ...writePath,
  ...retention,
  ...readCache,
  ...operation,
  ...connectors,
  ...tracing,
};
type SettingName = keyof typeof settings;
/** The settings whose default is a T: what each reader below accepts. */
type NamesOf<T> = { [N in SettingName]: (typeof settings)[N]['default'] extends T ? N : never }[SettingName];

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
    isSet: (name: SettingName): boolean => raw(name) !== undefined,
    string(name: NamesOf<string>): string {
      return raw(name) ?? settings[name].default;
    },
    optionalString(name: NamesOf<null>): string | null {
      return raw(name) ?? null;
    },
    integer(name: NamesOf<number>, min: number, max = Number.MAX_SAFE_INTEGER): number {
      const fallback = settings[name].default;
      const value = raw(name);
      if (value === undefined) return fallback;
      const parsed = Number(value);
      if (!/^-?\d+$/.test(value) || parsed < min || parsed > max) {
        problems.push(`${name}: expected an integer from ${min} to ${max}, got "${value}"`);
        return fallback;
      }
      return parsed;
    },
    boolean(name: NamesOf<boolean>): boolean {
      const fallback = settings[name].default;
      const value = raw(name)?.toLowerCase();
      if (value === undefined) return fallback;
      if (['true', '1', 'yes'].includes(value)) return true;
      if (['false', '0', 'no'].includes(value)) return false;
      problems.push(`${name}: expected true or false, got "${value}"`);
      return fallback;
    },
    oneOf<T extends string>(name: NamesOf<T>, allowed: readonly T[]): T {
      const fallback = settings[name].default as T;
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

/** CONNECTOR_SECRET_KEY: base64 of exactly 32 bytes, an AES-256 key. */
function readSecretKey(raw: string | null, problems: string[]): Buffer | null {
  if (raw === null) return null;
  const key = Buffer.from(raw, 'base64');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(raw) || key.length !== 32) {
    problems.push('CONNECTOR_SECRET_KEY: expected the base64 of 32 bytes (openssl rand -base64 32)');
    return null;
  }
  return key;
}

/**
 * ACCESS_TOKEN_PREVIOUS_KEYS: a JSON array of JWKs, one JWK, or PEM blocks one after the
 * other. Each key goes on as text; whether it is a key is the app's check at start.
 */
function readPreviousKeys(raw: string | null, problems: string[]): string[] {
  if (raw === null) return [];
  if (raw.startsWith('[') || raw.startsWith('{')) {
    const keys = jwksIn(raw);
    if (keys !== null) return keys;
    problems.push('ACCESS_TOKEN_PREVIOUS_KEYS: expected a JSON array of JWKs, one JWK, or PEM blocks');
    return [];
  }
  const pems = raw.match(/-----BEGIN [A-Z ]+-----[\s\S]*?-----END [A-Z ]+-----/g);
  if (pems === null) problems.push('ACCESS_TOKEN_PREVIOUS_KEYS: expected a JSON array of JWKs, one JWK, or PEM blocks');
  return pems ?? [];
}

function jwksIn(text: string): string[] | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return null;
  }
  const keys: unknown[] = Array.isArray(parsed) ? parsed : [parsed];
  const isObject = (key: unknown) => key !== null && typeof key === 'object' && !Array.isArray(key);
  return keys.every(isObject) ? keys.map((key) => JSON.stringify(key)) : null;
}

/** The identity provider: its three settings together, or none of them. */
function readOidc(read: ReturnType<typeof reader>): Config['access']['oidc'] {
  const jwksUrl = read.optionalString('AUTH_JWKS_URL');
  const issuer = read.optionalString('AUTH_ISSUER');
  const audience = read.optionalString('AUTH_AUDIENCE');
  if (jwksUrl === null && issuer === null && audience === null) return null;
  if (jwksUrl === null || issuer === null || audience === null) {
    read.problems.push('AUTH_JWKS_URL, AUTH_ISSUER, AUTH_AUDIENCE: set all three to accept an identity provider, or none');
    return null;
  }
  if (!/^https?:$/.test(URL.parse(jwksUrl)?.protocol ?? '')) read.problems.push('AUTH_JWKS_URL: expected an https:// URL');
  return { jwksUrl, issuer, audience, rolesClaim: read.string('AUTH_ROLES_CLAIM') };
}

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
  const corsSetting = read.string('CORS_ORIGINS');
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
      host: read.string('HOST'),
      port: read.integer('PORT', 0, 65535),
      corsOrigins,
      maxBodyBytes: read.integer('HTTP_MAX_BODY_BYTES', 1024),
      trustProxy: readTrustProxy(env.TRUST_PROXY, read.problems),
      rateLimitPerMinute: read.integer('RATE_LIMIT_PER_MINUTE', 0),
      createRateLimitPerMinute: read.integer('RATE_LIMIT_CREATE_PER_MINUTE', 0),
      upgradeRateLimitPerMinute: read.integer('RATE_LIMIT_UPGRADES_PER_MINUTE', 0),
      maxSocketsPerIp: read.integer('MAX_SOCKETS_PER_IP', 1),
      maxSocketsPerKey: read.integer('MAX_SOCKETS_PER_KEY', 1),
      maxViewersPerSession: read.integer('MAX_VIEWERS_PER_SESSION', 1),
      maxViewers: read.integer('MAX_VIEWERS', 1),
      headersTimeoutMs: read.integer('HTTP_HEADERS_TIMEOUT_MS', 100, 600_000),
      requestTimeoutMs: read.integer('HTTP_REQUEST_TIMEOUT_MS', 100, 3_600_000),
      keepAliveTimeoutMs: read.integer('HTTP_KEEP_ALIVE_TIMEOUT_MS', 100, 600_000),
      maxConnectionsPerIp: read.integer('HTTP_MAX_CONNECTIONS_PER_IP', 0),
    },
    metrics: {
      token: metricsToken,
    },
    access: {
      mode: read.oneOf('AUTH_MODE', ['open', 'private']),
      signingKey: read.optionalString('ACCESS_TOKEN_SIGNING_KEY'),
      previousKeys: readPreviousKeys(read.optionalString('ACCESS_TOKEN_PREVIOUS_KEYS'), read.problems),
      accessTokenTtlS: read.integer('ACCESS_TOKEN_TTL_S', 60, 86_400),
      refreshTokenTtlS: read.integer('REFRESH_TOKEN_TTL_S', 60, 31_536_000),
      cacheTtlMs: read.integer('AUTH_CACHE_TTL_MS', 0, 3_600_000),
      auditRetentionDays: read.integer('AUDIT_RETENTION_DAYS', 0, 36_500),
      oidc: readOidc(read),
    },
    database: {
      url: databaseUrl,
      dataDir: path.resolve(read.optionalString('WAVEHOUSE_DATA_DIR') ?? path.join(projectRoot, 'data')),
      poolSize: read.integer('DATABASE_POOL_SIZE', 3, 1000),
    },
    redisUrl,
    sessions: {
      legacyTokenlessEnd: read.boolean('LEGACY_TOKENLESS_END'),
      maxMetadataBytes: read.integer('SESSION_MAX_METADATA_BYTES', 2),
      maxChannels: read.integer('SESSION_MAX_CHANNELS', 1, 1024),
      createTimeoutMs: read.integer('SESSION_CREATE_TIMEOUT_MS', 1, 600_000),
      endTimeoutMs: read.integer('SESSION_END_TIMEOUT_MS', 1, 600_000),
      deleteGraceDays: read.integer('DELETE_GRACE_DAYS', 0, 3_650),
    },
    ingest: {
      maxFrameBytes: read.integer('INGEST_MAX_FRAME_BYTES', 1024),
      maxFrameSamples: read.integer('INGEST_MAX_FRAME_SAMPLES', 1),
      hardMaxFrameBytes: read.integer('INGEST_HARD_MAX_FRAME_BYTES', 1024),
      maxSamplesPerS: read.integer('INGEST_MAX_SAMPLES_PER_S', 0),
      maxRejectedFramesPerMinute: read.integer('INGEST_MAX_REJECTED_FRAMES_PER_MINUTE', 1),
      httpCommitTimeoutMs: read.integer('INGEST_HTTP_COMMIT_TIMEOUT_MS', 1, 600_000),
      httpLockGraceMs: read.integer('INGEST_HTTP_LOCK_GRACE_MS', 0, 5_000),
    },
    live: {
      maxBufferedBytes: read.integer('LIVE_MAX_BUFFERED_BYTES', 64 * 1024),
      recentWindowBytes: read.integer('LIVE_RECENT_WINDOW_BYTES', 0),
    },
    writer: {
      maxQueuedBytes: read.integer('WRITE_QUEUE_MAX_BYTES', 1 * MiB),
      maxBatchAgeMs: read.integer('WRITE_BATCH_MAX_AGE_MS', 1, 10_000),
      maxBatchSamples: read.integer('WRITE_BATCH_MAX_SAMPLES', 1),
      maxChunkSamples: read.integer('WRITE_CHUNK_MAX_SAMPLES', 1, 100_000),
      lanes: read.integer('WRITE_LANES', 1, 16),
      rollups: read.boolean('WRITE_ROLLUPS'),
      rollupCompactIntervalMs: read.integer('ROLLUP_COMPACT_INTERVAL_MS', 0, 3_600_000),
      compressIntervalMs: read.integer('COMPRESS_INTERVAL_MS', 0, 3_600_000),
      compressAfterMs: read.integer('COMPRESS_AFTER_MS', 0),
    },
    retention: {
      days: read.integer('RETENTION_DAYS', 0, 36_500),
      rollupDays: read.integer('ROLLUP_RETENTION_DAYS', 0, 36_500),
      aheadDays: read.integer('PARTITIONS_AHEAD_DAYS', 1, 365),
      intervalMs: read.integer('RETENTION_INTERVAL_MS', 0, 86_400_000),
    },
    connectors: {
      secretKey: readSecretKey(read.optionalString('CONNECTOR_SECRET_KEY'), read.problems),
      minPollIntervalMs: read.integer('CONNECTOR_MIN_POLL_INTERVAL_MS', 1, 86_400_000),
      claimIntervalMs: read.integer('CONNECTOR_CLAIM_INTERVAL_MS', 10, 25_000),
      upstream: {
        attemptTimeoutMs: read.integer('CONNECTOR_TIMEOUT_MS', 10, 600_000),
        maxAttempts: read.integer('CONNECTOR_MAX_ATTEMPTS', 1, 10),
        retryBaseMs: read.integer('CONNECTOR_RETRY_BASE_MS', 1, 600_000),
        retryMaxMs: read.integer('CONNECTOR_RETRY_MAX_MS', 1, 600_000),
        breakerFailures: read.integer('CONNECTOR_BREAKER_FAILURES', 1, 1_000),
        halfOpenAfterMs: read.integer('CONNECTOR_BREAKER_HALF_OPEN_MS', 10, 30_000),
        maxBodyBytes: read.integer('CONNECTOR_MAX_BODY_BYTES', 1024, 256 * MiB),
      },
    },
    readCache: {
      maxBytes: read.integer('READ_CACHE_MAX_BYTES', 0),
      maxEntryBytes: read.integer('READ_CACHE_MAX_ENTRY_BYTES', 1024, 512 * MiB),
      redisTtlS: read.integer('READ_CACHE_REDIS_TTL_S', 1, 86_400),
    },
    tracing: {
      otlpEndpoint,
      serviceName: read.string('OTEL_SERVICE_NAME'),
    },
    pingIntervalMs: read.integer('PING_INTERVAL_MS', 100),
    shutdownGraceMs: read.integer('SHUTDOWN_GRACE_MS', 0),
    logLevel: read.oneOf('LOG_LEVEL', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
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
  if (config.readCache.maxBytes > 0 && config.readCache.maxEntryBytes > config.readCache.maxBytes) {
    read.problems.push('READ_CACHE_MAX_ENTRY_BYTES: must be at most READ_CACHE_MAX_BYTES');
  }
  if (config.http.headersTimeoutMs > config.http.requestTimeoutMs) {
    // Node refuses to start a server so configured: the headers are part of the request.
    read.problems.push('HTTP_HEADERS_TIMEOUT_MS: must be at most HTTP_REQUEST_TIMEOUT_MS');
  }
  if (config.http.trustProxy && !read.isSet('HTTP_MAX_CONNECTIONS_PER_IP')) {
    // Behind a reverse proxy every connection comes from the proxy's address: a cap per address
    // would cap the whole instance. The proxy limits its clients instead (docs/deployment.md).
    config.http.maxConnectionsPerIp = 0;
  }
  if (config.access.mode === 'private' && databaseUrl !== null && config.access.signingKey === null) {
    // Instances sharing a database would each sign with a key of their own, and refuse each other's tokens.
    read.problems.push('ACCESS_TOKEN_SIGNING_KEY: AUTH_MODE=private with DATABASE_URL needs one signing key, the same on every instance');
  }
  const { days, rollupDays } = config.retention;
  if (rollupDays > 0 && (days === 0 || rollupDays < days)) {
    // Aggregates read roll-ups wherever a session's are complete: a range whose roll-ups went
    // before its samples would read as empty while its samples are still stored.
    read.problems.push('ROLLUP_RETENTION_DAYS: must be 0 (keep all) or at least RETENTION_DAYS, itself not 0');
  }
  if (read.problems.length > 0) throw new ConfigError(read.problems);
  return config;
}
