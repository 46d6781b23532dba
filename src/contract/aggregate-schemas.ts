/**
 * The aggregate reads of the contract (GET /sessions/{id}/aggregate and GET /aggregate):
 * their query strings and answers. The query values are declared as text: what a value may be
 * is decided in one place, src/aggregates/aggregate-query.ts, which says exactly what was
 * wrong; the schema bounds the text and documents the forms.
 */
import Type, { type Static } from 'typebox';
import { SessionId } from './schemas.ts';

/** The functions of a bucket, in the order the contract lists them. */
export const aggregateFns = ['count', 'min', 'max', 'avg', 'sum', 'first', 'last'] as const;
export type AggregateFn = (typeof aggregateFns)[number];
export const defaultFns: readonly AggregateFn[] = ['count', 'min', 'max', 'avg'];

export const fills = ['none', 'null', 'previous', 'linear'] as const;
export type Fill = (typeof fills)[number];

/** How many buckets `points` may ask for. */
export const maxPoints = 10_000;
/**
 * The most buckets one answer may span, and the most bucket-channel cells (buckets x
 * channels): each is a summary held in memory while the samples are read, and a line of the
 * answer. Past them a query is refused before anything is read.
 */
export const maxBuckets = 100_000;
export const maxCells = 400_000;
/** The most sessions a leaderboard reads: each is a read of its samples over the range. */
export const maxLeaderboardSessions = 1_000;

const tText = (edge: string) =>
  Type.String({
    maxLength: 64,
    description: `${edge}; a finite number in decimal (1732345678901.25, -5, 1.7e12), in the unit of t.`,
  });
const fnText = Type.String({
  maxLength: 200,
  description: `Comma-separated, each at most once, from ${aggregateFns.join(',')}; default ${defaultFns.join(',')}.`,
});

export const AggregateQuery = Type.Object(
  {
    bucketMs: Type.Optional(
      Type.String({
        maxLength: 32,
        description: 'Bucket width in the unit of t: an integer from 1 to 2^53-1 in decimal digits. Exactly one of bucketMs and points.',
      }),
    ),
    points: Type.Optional(
      Type.String({
        maxLength: 32,
        description:
          `At most this many buckets (1-${maxPoints}, decimal digits): the server picks the smallest whole bucketMs ` +
          'giving at most that many aligned buckets over the range. Exactly one of bucketMs and points.',
      }),
    ),
    fn: Type.Optional(fnText),
    fill: Type.Optional(Type.String({ maxLength: 16, description: `One of ${fills.join(', ')}; default none (empty buckets omitted).` })),
    channels: Type.Optional(
      Type.String({
        maxLength: 70_000,
        description: "Comma-separated channel names, each at most once; default all, in the session's order.",
      }),
    ),
    fromT: Type.Optional(tText('Inclusive (t >= fromT); default the session firstT')),
    toT: Type.Optional(tText('Exclusive (t < toT); default just past the session lastT; not below fromT')),
    format: Type.Optional(Type.Union([Type.Literal('json'), Type.Literal('csv')], { description: 'Wins over Accept; default json.' })),
  },
  { additionalProperties: false },
);
export type AggregateQuery = Static<typeof AggregateQuery>;

const FnValues = Type.Record(Type.String(), Type.Union([Type.Number(), Type.Null()]), {
  description: 'One value per fn asked; null where the bucket has no non-null value, or the result is beyond the float64 range.',
});

export const AggregateBucket = Type.Object(
  {
    t: Type.Number({ description: 'The aligned start of the bucket: floor(t / bucketMs) * bucketMs.' }),
    count: Type.Integer({ minimum: 0, description: 'Samples in the bucket, nulls included; 0 for a bucket made by fill.' }),
  },
  { additionalProperties: FnValues, description: 'Besides t and count, one member per channel asked, keyed by its name.' },
);

export const AggregateAnswer = Type.Object({
  sessionId: SessionId,
  bucketMs: Type.Integer({ minimum: 1, description: 'The bucket width: as asked, or the one points picked.' }),
  buckets: Type.Array(AggregateBucket, { description: 'In ascending t.' }),
});

export const LeaderboardQuery = Type.Object(
  {
    keyPrefix: Type.String({
      pattern: '^[A-Za-z0-9_.:/-]{1,200}$',
      description: 'The sessions whose key starts with this (and with the credential prefix, if it has one); at most 1,000 of them.',
    }),
    channel: Type.String({ pattern: '^[A-Za-z0-9_.-]{1,64}$', description: 'The channel summarized; sessions without it are left out.' }),
    fn: Type.Optional(fnText),
    fromT: Type.Optional(tText('Inclusive (t >= fromT); default unbounded')),
    toT: Type.Optional(tText('Exclusive (t < toT); default unbounded; not below fromT')),
    orderBy: Type.Optional(
      Type.String({
        maxLength: 16,
        description: 'A fn asked, with :asc or :desc (default desc), e.g. max:desc; nulls last, ties by key. Default the first fn, desc.',
      }),
    ),
    limit: Type.Optional(Type.String({ maxLength: 8, description: 'Rows answered, 1-1000 in decimal digits; default 100.' })),
  },
  { additionalProperties: false },
);
export type LeaderboardQuery = Static<typeof LeaderboardQuery>;

export const LeaderboardRow = Type.Object({
  sessionId: SessionId,
  key: Type.String(),
  count: Type.Integer({ minimum: 0, description: "The session's samples in the range, nulls included." }),
  values: FnValues,
});

export const Leaderboard = Type.Object({
  channel: Type.String(),
  fn: Type.Array(Type.String()),
  orderBy: Type.String({ description: 'As applied, e.g. max:desc.' }),
  rows: Type.Array(LeaderboardRow),
});
export type Leaderboard = Static<typeof Leaderboard>;
