/**
 * The connectors API's shapes (docs/connectors.md), declared once as schemas.ts's are. A
 * connector's config is a union by kind: each kind's config schema is here, the route
 * validates a create with it, and each kind (src/connectors/) takes its config type from it.
 * Secrets (`readApiKey`, `apiKey`) go in, never out: a connector is answered with `secrets`,
 * the names of the secret members it holds.
 */
import Type, { type Static, type TSchema } from 'typebox';

const httpUrl = Type.String({
  pattern: '^https?://[^\\s?#]+$',
  maxLength: 2000,
  description: 'The upstream API, http(s), without query or fragment; requests and redirects stay on its origin.',
});

export const ThingSpeakConfig = Type.Object(
  {
    baseUrl: httpUrl,
    channelId: Type.Integer({ minimum: 1, maximum: 2 ** 31 - 1, description: 'The ThingSpeak channel.' }),
    readApiKey: Type.Optional(
      Type.String({
        pattern: '^[A-Za-z0-9]{1,64}$',
        description: "The channel's read API key, for a private channel. Stored encrypted; never answered.",
      }),
    ),
    pageSize: Type.Optional(
      Type.Integer({ minimum: 1, maximum: 8_000, description: 'Entries asked for per request (results=); default and cap 8,000.' }),
    ),
  },
  { additionalProperties: false },
);
export type ThingSpeakConfig = Static<typeof ThingSpeakConfig>;

/** Twelve Data's intervals up to a day, each a bar's length. */
export const twelveDataIntervals = ['1min', '5min', '15min', '30min', '45min', '1h', '2h', '4h', '1day'] as const;

export const TwelveDataConfig = Type.Object(
  {
    baseUrl: httpUrl,
    apiKey: Type.String({
      pattern: '^[A-Za-z0-9_-]{1,128}$',
      description: 'The Twelve Data API key. Stored encrypted; never answered.',
    }),
    symbols: Type.Array(Type.String({ pattern: '^[A-Za-z0-9./:_-]{1,40}$', description: 'A symbol, as `AAPL`, `EUR/USD`, `BTC/USD`.' }), {
      minItems: 1,
      maxItems: 100,
      uniqueItems: true,
      description: 'A stream per symbol, keyed `twelvedata/<symbol>/<interval>`.',
    }),
    interval: Type.Enum(twelveDataIntervals, { description: `The bar length, one of ${twelveDataIntervals.join(', ')}.` }),
    creditsPerMinute: Type.Optional(
      Type.Integer({ minimum: 1, maximum: 100_000, description: 'Credits (one per symbol per request) spent in any 60 s; default 8.' }),
    ),
    creditsPerDay: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000_000, description: 'Credits spent per UTC day; default 800.' })),
  },
  { additionalProperties: false },
);
export type TwelveDataConfig = Static<typeof TwelveDataConfig>;

const name = Type.String({ minLength: 1, maxLength: 200, description: 'A name for people.' });
const pollIntervalS = Type.Optional(
  Type.Number({
    exclusiveMinimum: 0,
    maximum: 86_400,
    description: 'Seconds between polls; default 15; at least CONNECTOR_MIN_POLL_INTERVAL_MS.',
  }),
);

export const CreateConnectorBody = Type.Union([
  Type.Object({ kind: Type.Literal('thingspeak'), name, config: ThingSpeakConfig, pollIntervalS }, { additionalProperties: false }),
  Type.Object({ kind: Type.Literal('twelvedata'), name, config: TwelveDataConfig, pollIntervalS }, { additionalProperties: false }),
]);
export type CreateConnectorBody = Static<typeof CreateConnectorBody>;

const dateTime = Type.String({ format: 'date-time' });
const orNull = <T extends TSchema>(schema: T, description?: string) =>
  Type.Union([schema, Type.Null()], description === undefined ? {} : { description });

const ConnectorStream = Type.Object({
  key: Type.String(),
  sessionId: Type.String({ format: 'uuid' }),
  mapping: Type.Array(Type.Object({ channel: Type.String(), field: Type.String(), name: Type.String() }), {
    description: 'Each channel and the upstream field it is read from, with the field name as the upstream gave it.',
  }),
});

export const Connector = Type.Object({
  id: Type.String({ format: 'uuid' }),
  kind: Type.String(),
  name: Type.String(),
  config: Type.Object({}, { additionalProperties: true, description: 'The config as created, without its secrets.' }),
  secrets: Type.Array(Type.String(), { description: 'Names of the secret config members it holds (their values are never answered).' }),
  pollIntervalS: Type.Number(),
  createdAt: dateTime,
  state: Type.Union([Type.Literal('running'), Type.Literal('paused'), Type.Literal('failing')], {
    description: 'failing: from the first poll that failed after its retries until a poll succeeds.',
  }),
  lastPollAt: orNull(dateTime),
  lastSuccessAt: orNull(dateTime),
  lastError: orNull(Type.String()),
  failingSince: orNull(dateTime),
  breaker: Type.Union([Type.Literal('closed'), Type.Literal('open'), Type.Literal('half-open')], {
    description: "The upstream host's circuit breaker, as the polling instance last saw it.",
  }),
  breakerOpenSince: orNull(dateTime),
  lastRecordAt: orNull(dateTime, 'The time of the newest record stored: a device silent since then sends nothing, though polls succeed.'),
  nextPollAt: orNull(dateTime, 'Later than pollIntervalS after the last poll while the credit budget is short (credits).'),
  credits: orNull(
    Type.Object({
      perMinute: Type.Integer(),
      perDay: Type.Integer(),
      spentLastMinute: Type.Integer({ description: 'Credits spent in the last 60 s.' }),
      spentToday: Type.Integer({ description: 'Credits spent this UTC day.' }),
    }),
    "The upstream's credit budget and what is spent of it, for a kind whose upstream meters requests; null for others.",
  ),
  sessions: Type.Array(ConnectorStream, { description: 'The streams it feeds, once created (by its first successful poll).' }),
});
export type Connector = Static<typeof Connector>;

export const ConnectorList = Type.Object({ connectors: Type.Array(Connector) });
export const ConnectorIdParams = Type.Object({ id: Type.String({ description: 'Connector id (UUID).' }) });
