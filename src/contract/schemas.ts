/**
 * The public contract's shapes, declared once (docs/architecture.md, principle 5). These
 * schemas validate requests, serialize responses, type the handlers and generate
 * docs/API_CONTRACT.yml. Socket frames are declared here too so the contract file documents
 * them, though the ingest hot path decodes frames by hand (ingest/frame-decoder.ts) for speed.
 */
import Type, { type Static } from 'typebox';
import { defaultChannels } from './channels.ts';
import { type FrameErrorCode, frameErrors } from './errors.ts';

export const channelNamePattern = '^[A-Za-z0-9_.-]{1,64}$';

export const SessionId = Type.String({ format: 'uuid', description: 'Session id, a UUID v4.' });

/**
 * An id of ours (a session's, a key's, a connector's) as it is checked before a lookup: a UUID
 * of any version, in either case, as PostgreSQL's uuid type reads it. Anything else is no id.
 */
export const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export const sessionKeyPattern = '^[A-Za-z0-9_.:/-]{1,200}$';
const SessionKey = Type.String({
  pattern: sessionKeyPattern,
  description: 'A stream name, 1-200 characters of A-Z a-z 0-9 _ . : / -, unique among sessions.',
});

/**
 * How deep session metadata may nest, the metadata object itself being level 1. Whatever
 * handles it after parsing recurses once a level: JSON.stringify (the size check), the
 * response serializer, PostgreSQL's jsonb input, and clients' JSON parsers, some of which stop
 * at a few hundred levels. 60 KB of nested arrays is 30,000 levels, enough to overflow the
 * stack; descriptive metadata needs a handful.
 */
export const maxMetadataDepth = 32;

export const SessionIdParams = Type.Object({ id: Type.String({ description: 'Session id (UUID).' }) });

export const CreateSessionBody = Type.Object(
  {
    key: Type.Optional(
      Type.String({
        pattern: sessionKeyPattern,
        description:
          'A stream name, 1-200 characters of A-Z a-z 0-9 _ . : / -, unique among sessions. ' +
          'Needs an API key or access token with sessions:write, in either mode.',
      }),
    ),
    nullable: Type.Optional(Type.Boolean({ description: 'Whether any channel value may be null (a missing reading); false by default.' })),
    channels: Type.Optional(
      Type.Array(Type.String({ pattern: channelNamePattern }), {
        minItems: 1,
        maxItems: 1024,
        uniqueItems: true,
        description:
          'Channel names, 1-64 characters of A-Z a-z 0-9 _ . -, unique, neither seq nor t. ' +
          `Default ${JSON.stringify(defaultChannels)}.`,
      }),
    ),
    sampleRateHz: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 1e9, description: 'Nominal rate, informative.' })),
    retentionDays: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 36500,
        description:
          'Days its samples are kept after their commit, then deleted; the server-wide RETENTION_DAYS still applies ' +
          'when shorter. Absent: RETENTION_DAYS alone. Aggregates outlive the samples as roll-ups (ROLLUP_RETENTION_DAYS).',
      }),
    ),
    metadata: Type.Optional(
      Type.Object(
        {},
        {
          additionalProperties: true,
          description:
            `Free-form JSON object, at most 4 KiB encoded as UTF-8 JSON and ${maxMetadataDepth} levels deep ` +
            '(the object itself is level 1); no string or key in it may hold the character U+0000 or an unpaired surrogate, ' +
            'and no number may lie beyond the float64 range (1e400, say).',
        },
      ),
    ),
  },
  { additionalProperties: false },
);
export type CreateSessionBody = Static<typeof CreateSessionBody>;

export const SessionStatus = Type.Union([Type.Literal('created'), Type.Literal('active'), Type.Literal('ended')]);

export const Session = Type.Object({
  sessionId: SessionId,
  key: Type.Union([SessionKey, Type.Null()], { description: 'The stream name it was created with, or null.' }),
  nullable: Type.Boolean({ description: 'Whether its values may be null.' }),
  status: SessionStatus,
  createdAt: Type.String({ format: 'date-time' }),
  endedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  channels: Type.Array(Type.String()),
  sampleRateHz: Type.Union([Type.Number(), Type.Null()]),
  retentionDays: Type.Union([Type.Integer(), Type.Null()], {
    description: 'Its own retention of samples, in days; null: the server-wide one.',
  }),
  metadata: Type.Object({}, { additionalProperties: true }),
  sampleCount: Type.Integer({ description: 'Committed samples.' }),
  lastSeq: Type.Union([Type.Integer(), Type.Null()], { description: 'Highest committed seq.' }),
  firstT: Type.Union([Type.Number(), Type.Null()], {
    description: 'Lowest t of the committed samples (t may jump back, so not always the t of the lowest seq); null before any.',
  }),
  lastT: Type.Union([Type.Number(), Type.Null()], { description: 'Highest t of the committed samples; null before any.' }),
  viewerUrl: Type.String({ description: 'Relative path of the viewer page, /view/{id}.' }),
  websocketUrl: Type.String({
    description: 'Relative path of the legacy socket, /ws/{id}; carries ?token= only in the creation response.',
  }),
});
export type Session = Static<typeof Session>;

export const CreatedSession = Type.Intersect([
  Session,
  Type.Object({ ingestToken: Type.String({ description: 'Shown once; stored only as a hash.' }) }),
]);

export const DeletedSession = Type.Intersect([
  Session,
  Type.Object({
    deletedAt: Type.String({ format: 'date-time', description: 'When it was deleted.' }),
    purgeAfter: Type.String({
      format: 'date-time',
      description: 'deletedAt plus DELETE_GRACE_DAYS: until then an admin may restore it; after, it is purged.',
    }),
  }),
]);

export const RestoredSession = Type.Intersect([
  Session,
  Type.Object({ deletedAt: Type.Null({ description: 'Restored: no longer deleted.' }) }),
]);

export const SessionListQuery = Type.Object(
  {
    key: Type.Optional(SessionKey),
    keyPrefix: Type.Optional(Type.String({ pattern: sessionKeyPattern, description: 'Sessions whose key starts with this.' })),
    status: Type.Optional(SessionStatus),
    createdAfter: Type.Optional(Type.String({ format: 'date-time', description: 'Exclusive.' })),
    createdBefore: Type.Optional(Type.String({ format: 'date-time', description: 'Exclusive.' })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
    cursor: Type.Optional(Type.String({ maxLength: 120, description: 'nextCursor of the previous page.' })),
  },
  { additionalProperties: false },
);
export type SessionListQuery = Static<typeof SessionListQuery>;

export const SessionList = Type.Object({
  sessions: Type.Array(Session, { description: 'Newest first.' }),
  nextCursor: Type.Union([Type.String(), Type.Null()], { description: 'null on the last page.' }),
});

export const Problem = Type.Object(
  {
    type: Type.String(),
    title: Type.String(),
    status: Type.Integer(),
    detail: Type.String(),
    code: Type.String({ description: 'Stable error code, see docs/errors.md.' }),
  },
  { description: 'RFC 9457 problem details.' },
);

export const KeyTakenProblem = Type.Intersect([
  Problem,
  Type.Object({
    sessionId: Type.Optional(
      Type.String({
        format: 'uuid',
        description:
          'The id of the session holding the key, given only to a credential that may read that session (an id reads it in open mode).',
      }),
    ),
  }),
]);

/**
 * Retry-After, as the OpenAPI document declares it on 429 and 503 answers (@fastify/swagger
 * reads a response schema's `headers`). A 503 carries it when the condition passes on its own
 * (the database out of reach: 5; a create the database cancelled: 1), not while the server
 * shuts down; a 429 always does.
 */
const RetryAfterHeaders = {
  'Retry-After': Type.Integer({ minimum: 0, description: 'Seconds to wait before retrying.' }),
};

/** Problem responses for the given statuses, 429 and 503 declaring Retry-After. */
export function problemResponses(...statuses: number[]) {
  return Object.fromEntries(
    statuses.map((status) => [status, status === 429 || status === 503 ? { ...Problem, headers: RetryAfterHeaders } : Problem]),
  );
}

/** What a cached read's 200 and 304 carry (http/read-cache.ts, docs/reading-data.md). */
const CachedReadHeaders = {
  ETag: Type.String({
    description:
      'Changes exactly when the session record or its committed data does (and with the query); ' +
      'send it back in If-None-Match to get 304 while it holds. Weak (W/"...") on an aggregate: its answers under one tag ' +
      'are equivalent, their sums equal but for rounding in the last digits.',
  }),
  'Cache-Control': Type.Literal('no-cache', { description: 'Keep the answer, but ask again (If-None-Match) before using it.' }),
};

/** The request header of a cached read. */
export const CachedReadRequestHeaders = Type.Object({
  'if-none-match': Type.Optional(
    Type.String({ description: 'ETags of answers the client holds (a list, W/ tags, or *): 304 when one is current.' }),
  ),
});

/**
 * The 200 of a cached read with its ETag, and its 304: If-None-Match named the current ETag
 * (a list, weak tags and `*` as RFC 9110 says; a malformed header is ignored).
 */
export function cachedReadResponses(ok: object) {
  return {
    200: { ...ok, headers: CachedReadHeaders },
    304: { description: 'Not modified: If-None-Match named the current ETag. No body.', headers: CachedReadHeaders, type: 'null' },
  };
}

export const DataQuery = Type.Object(
  {
    fromSeq: Type.Optional(Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER, description: 'Inclusive; decimal digits only.' })),
    toSeq: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: Number.MAX_SAFE_INTEGER,
        description: 'Inclusive; decimal digits only. Below fromSeq, the page is empty.',
      }),
    ),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER, description: 'Decimal digits only.' })),
    fromT: Type.Optional(Type.Number({ description: 'Inclusive (t >= fromT); finite, in decimal (1732345678901.25, -5, 1.7e12).' })),
    toT: Type.Optional(Type.Number({ description: 'Exclusive (t < toT); finite, in decimal; not below fromT.' })),
    format: Type.Optional(Type.Union([Type.Literal('json'), Type.Literal('ndjson'), Type.Literal('csv'), Type.Literal('parquet')])),
  },
  { additionalProperties: false },
);
export type DataQuery = Static<typeof DataQuery>;

export const Sample = Type.Object(
  {
    seq: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }),
    t: Type.Number({ description: "Producer's clock in ms (fractions allowed)." }),
  },
  {
    additionalProperties: Type.Union([Type.Number(), Type.Null()]),
    description: 'One finite number per channel, keyed by channel name; null only in a nullable session.',
  },
);

export const SamplesBody = Type.Object(
  { samples: Type.Array(Sample, { description: 'Seqs strictly increase; either every sample has a seq or none has.' }) },
  { description: 'The same samples and rules as a JSON frame of the ingest socket (docs/protocol.md).' },
);

export const IngestReceipt = Type.Object({
  ack: Type.Integer({ minimum: -1, description: "The session's highest committed seq, after this request's samples (-1: none)." }),
  accepted: Type.Integer({ minimum: 0, description: 'Samples of this request now stored.' }),
  duplicates: Type.Integer({ minimum: 0, description: 'Samples at or below the highest accepted seq: dropped, already stored.' }),
});

export const SessionData = Type.Object({
  sessionId: SessionId,
  channels: Type.Array(Type.String()),
  samples: Type.Array(Sample),
  nextFromSeq: Type.Union([Type.Integer(), Type.Null()]),
});

export const LatestSample = Type.Object({
  sessionId: SessionId,
  sample: Type.Union([Sample, Type.Null()], { description: 'The committed sample with the highest seq; null before any.' }),
});

export const Health = Type.Object({ status: Type.Literal('ok') });
export const Readiness = Type.Object({
  ready: Type.Boolean(),
  database: Type.Boolean(),
  writeQueueBytes: Type.Integer(),
  draining: Type.Boolean(),
});

export const AckFrame = Type.Object({ type: Type.Literal('ack'), seq: Type.Integer({ minimum: -1 }) });
export const ErrorFrame = Type.Object({
  type: Type.Literal('error'),
  code: Type.Enum(Object.keys(frameErrors) as FrameErrorCode[], { description: 'See docs/errors.md.' }),
  message: Type.String(),
});
export const SamplesBatchFrame = Type.Object({
  type: Type.Literal('samples_batch'),
  payload: Type.Object({ samples: Type.Array(Sample) }),
});
export const SessionEndedFrame = Type.Object({ type: Type.Literal('session_ended') });
