/**
 * What a connector kind is (docs/connectors.md): the streams a connector of the kind feeds, and
 * a poll of one stream from its cursor. Its config is declared once, by the contract's
 * CreateConnectorBody, whose schema the route validates a create with before a kind sees it.
 *
 * The cursor is never the kind's to keep: it is the stream's committed `lastSeq` (and `lastT`),
 * read by the runner after it has taken the stream's producer lock, so whatever a crash, a
 * retry or an overlapping window makes a kind fetch twice is dropped by the ordinary sequence
 * rules, and the next poll starts where the last commit ended. A kind only has to map an
 * upstream record to a seq that rises with it (ThingSpeak's entry_id, a bar's start).
 */
import type { CreateConnectorBody } from '../contract/connector-schemas.ts';
import type { UpstreamFetch } from './upstream-client.ts';

/** Where a stream stands: its committed last seq and highest t, null before its first record. */
export interface StreamCursor {
  readonly lastSeq: number | null;
  readonly lastT: number | null;
}

/** A channel of a stream and the upstream field it is read from (kept, so that a renamed channel can be traced). */
export interface FieldMapping {
  readonly channel: string;
  readonly field: string;
  /** The upstream's own name of the field. */
  readonly name: string;
}

/** What a stream is created with, when its first poll finds it missing. */
export interface StreamSpec {
  readonly key: string;
  readonly channels: readonly string[];
  readonly mapping: readonly FieldMapping[];
}

/** One upstream record: its seq, its t (epoch ms) and a value per channel, null where there is none. */
export interface UpstreamRecord {
  readonly seq: number;
  readonly t: number;
  readonly values: readonly (number | null)[];
}

/** What an upstream answered that could not be stored as it was: counted and logged, never stored as a number. */
export interface Discards {
  /** Values that were not numbers (a non-numeric string, a boolean, an object): stored as null. */
  readonly invalidValues: number;
  /** Records without a usable seq or time: skipped. */
  readonly invalidRecords: number;
}

export interface PollOutcome {
  readonly spec: StreamSpec;
  /** Ascending seq, each seq once, all above the cursor's lastSeq. */
  readonly records: readonly UpstreamRecord[];
  readonly discards: Discards;
  /** More records wait upstream beyond this page: polled again as soon as these are committed. */
  readonly more: boolean;
}

export interface PollContext {
  readonly fetch: UpstreamFetch;
  readonly nowMs: number;
}

/** An upstream's budget of credits (Twelve Data's): what a request costs, and how many may be spent. */
export interface CreditTerms {
  /** At most this many in any 60 s... */
  readonly perMinute: number;
  /** ...and this many per UTC day. */
  readonly perDay: number;
  /** What one poll of every stream costs when nothing fails: polls are spaced so that this fits the budget. */
  readonly perPoll: number;
  /** What one request costs, answered or not. */
  cost(url: URL): number;
}

/** The kinds the contract names, and the config of each, as a client sends it. */
export type ConnectorKindName = CreateConnectorBody['kind'];
export type ConnectorConfig<K extends ConnectorKindName> = Extract<CreateConnectorBody, { kind: K }>['config'];

export interface ConnectorKind<Config, Name extends string = string> {
  readonly kind: Name;
  /** Config members that are secrets: stored encrypted, never returned or logged. */
  readonly secretKeys: readonly string[];
  /** The stream keys a connector feeds (one per stream, as sessions are keyed). */
  streamKeys(config: Config): string[];
  /** The base URL every request of the connector goes to: its breaker's host, and the only host a redirect may lead to. */
  baseUrl(config: Config): string;
  /** The credit budget of an upstream that meters requests; absent for one that does not. */
  credits?(config: Config): CreditTerms;
  /** One page of `streamKey` after `cursor`; throws UpstreamError when the upstream fails. */
  poll(config: Config, streamKey: string, cursor: StreamCursor, context: PollContext): Promise<PollOutcome>;
}
