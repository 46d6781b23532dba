/**
 * The aggregate query strings read into what they ask (docs/reading-data.md, "Aggregates"),
 * or the reason they cannot be: untrusted text, so every value is checked for its exact form
 * and bounds here, and a refusal says which value and why. The route turns a refusal into a
 * 400; nothing here throws for a bad query.
 */
import { type AggregateFn, aggregateFns, defaultFns, type Fill, fills, maxPoints } from '../contract/aggregate-schemas.ts';
import type { ProblemCode } from '../contract/errors.ts';
import { decimalNumber, isDecimalInteger } from '../samples/decimal-text.ts';

/** What a query asks, or why it cannot be answered: the problem's code and a detail naming the value at fault. */
export type Parsed<T> = { ok: true; value: T } | { ok: false; code: ProblemCode; detail: string };

/** The t bounds asked for; null where the query gives none. */
export interface TimeBounds {
  fromT: number | null;
  toT: number | null;
}

export interface AggregateRequest extends TimeBounds {
  /** Exactly one of bucketMs and points is set. */
  bucketMs: number | null;
  points: number | null;
  fns: AggregateFn[];
  fill: Fill;
  /** The channels asked for by name, in the order asked; null: all of the session's. */
  channels: string[] | null;
}

export interface LeaderboardRequest extends TimeBounds {
  fns: AggregateFn[];
  orderBy: { fn: AggregateFn; descending: boolean };
  limit: number;
}

/** The most rows a leaderboard answers. */
const maxLeaderboardRows = 1000;

type Query = Readonly<Record<string, string | undefined>>;

/** Thrown only between refuse() and parsed(), so that a check deep in a read can end it in one line. */
class Refusal extends Error {
  constructor(
    readonly code: ProblemCode,
    detail: string,
  ) {
    super(detail);
  }
}

export function refuse(detail: string, code: ProblemCode = 'invalid_request'): never {
  throw new Refusal(code, detail);
}

/** `read`'s value, or the refusal it ended with; any other error is a bug and goes on up. */
export function parsed<T>(read: () => T): Parsed<T> {
  try {
    return { ok: true, value: read() };
  } catch (error) {
    if (error instanceof Refusal) return { ok: false, code: error.code, detail: error.message };
    throw error;
  }
}

function integerIn(name: string, text: string, min: number, max: number): number {
  const value = isDecimalInteger(text) ? Number(text) : Number.NaN;
  if (!(value >= min && value <= max)) refuse(`${name} must be an integer from ${min} to ${max}, in decimal digits`);
  return value;
}

function timeBounds(query: Query): TimeBounds {
  const read = (name: 'fromT' | 'toT') => {
    const text = query[name];
    if (text === undefined) return null;
    return decimalNumber(text) ?? refuse(`${name} must be a finite number written in decimal (1732345678901.25, -5, 1.7e12)`);
  };
  const fromT = read('fromT');
  const toT = read('toT');
  if (fromT !== null && toT !== null && fromT > toT) refuse(`fromT (${fromT}) is above toT (${toT}); fromT is inclusive and toT exclusive`);
  return { fromT, toT };
}

/** A comma-separated list: no empty item, none twice. */
export function listOf(name: string, text: string): string[] {
  const items = text.split(',');
  const seen = new Set<string>();
  for (const item of items) {
    if (item === '') refuse(`${name} has an empty item: names are separated by single commas`);
    if (seen.has(item)) refuse(`${name} names ${JSON.stringify(item)} twice`);
    seen.add(item);
  }
  return items;
}

function isOneOf<T extends string>(known: readonly T[], text: string): text is T {
  return (known as readonly string[]).includes(text);
}

function fnsOf(query: Query): AggregateFn[] {
  if (query.fn === undefined) return [...defaultFns];
  return listOf('fn', query.fn).map((name) =>
    isOneOf(aggregateFns, name) ? name : refuse(`fn ${JSON.stringify(name)} is unknown; the functions are ${aggregateFns.join(',')}`),
  );
}

export function parseAggregateQuery(query: Query): Parsed<AggregateRequest> {
  return parsed(() => {
    const { bucketMs, points } = query;
    if ((bucketMs === undefined) === (points === undefined)) refuse('give exactly one of bucketMs and points');
    const fill = query.fill ?? 'none';
    if (!isOneOf(fills, fill)) refuse(`fill ${JSON.stringify(fill)} is unknown; it is one of ${fills.join(', ')}`);
    return {
      bucketMs: bucketMs === undefined ? null : integerIn('bucketMs', bucketMs, 1, Number.MAX_SAFE_INTEGER),
      points: points === undefined ? null : integerIn('points', points, 1, maxPoints),
      fns: fnsOf(query),
      fill,
      channels: query.channels === undefined ? null : listOf('channels', query.channels),
      ...timeBounds(query),
    };
  });
}

export function parseLeaderboardQuery(query: Query): Parsed<LeaderboardRequest> {
  return parsed(() => {
    const fns = fnsOf(query);
    const [fn, direction = 'desc', ...rest] = (query.orderBy ?? fns[0]).split(':');
    if (!fns.includes(fn as AggregateFn) || rest.length > 0 || (direction !== 'asc' && direction !== 'desc'))
      refuse(`orderBy must be one of the fns asked (${fns.join(',')}), optionally followed by :asc or :desc`);
    return {
      fns,
      orderBy: { fn: fn as AggregateFn, descending: direction === 'desc' },
      limit: query.limit === undefined ? 100 : integerIn('limit', query.limit, 1, maxLeaderboardRows),
      ...timeBounds(query),
    };
  });
}
