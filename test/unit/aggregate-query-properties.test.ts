/**
 * The aggregate query parsers against a reference written from docs/reading-data.md
 * ("Aggregates"): for arbitrary and mutated query strings, they never throw, refuse exactly
 * what the reference refuses, and read exactly what it reads.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { parseAggregateQuery, parseLeaderboardQuery } from '../../src/aggregates/aggregate-query.ts';
import { fuzzParameters } from '../support/fuzz.ts';

const fns = ['count', 'min', 'max', 'avg', 'sum', 'first', 'last'];
const fills = ['none', 'null', 'previous', 'linear'];
type Query = Record<string, string | undefined>;

function integer(text: string | undefined, min: number, max: number): number | undefined | 'bad' {
  if (text === undefined) return undefined;
  if (!/^[0-9]+$/.test(text)) return 'bad';
  const value = Number(text);
  return value >= min && value <= max ? value : 'bad';
}

function finite(text: string | undefined): number | null | 'bad' {
  if (text === undefined) return null;
  if (!/^[+-]?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?$/.test(text)) return 'bad';
  return Number.isFinite(Number(text)) ? Number(text) : 'bad';
}

function list(text: string | undefined, known?: readonly string[]): string[] | undefined | 'bad' {
  if (text === undefined) return undefined;
  const items = text.split(',');
  if (items.some((item) => item === '') || new Set(items).size !== items.length) return 'bad';
  return known && items.some((item) => !known.includes(item)) ? 'bad' : items;
}

/** What the docs say the query asks, or 'bad'. */
function reference(query: Query) {
  const bucketMs = integer(query.bucketMs, 1, Number.MAX_SAFE_INTEGER);
  const points = integer(query.points, 1, 10_000);
  const fn = list(query.fn, fns);
  const channels = list(query.channels);
  const fromT = finite(query.fromT);
  const toT = finite(query.toT);
  const fill = query.fill ?? 'none';
  const parts = [bucketMs, points, fn, channels, fromT, toT];
  if (parts.includes('bad') || (bucketMs === undefined) === (points === undefined) || !fills.includes(fill)) return 'bad';
  if (fromT !== null && toT !== null && (fromT as number) > (toT as number)) return 'bad';
  return {
    bucketMs: bucketMs ?? null,
    points: points ?? null,
    fns: fn ?? ['count', 'min', 'max', 'avg'],
    fill,
    channels: channels ?? null,
    fromT,
    toT,
  };
}

const validValue: Record<string, fc.Arbitrary<string>> = {
  bucketMs: fc.oneof(fc.integer({ min: 0, max: 1e6 }).map(String), fc.constantFrom('9007199254740991', '9007199254740992', '1e3', '-1')),
  points: fc.oneof(fc.integer({ min: 0, max: 10_002 }).map(String), fc.constantFrom('10000', '10001', '0')),
  fn: fc.uniqueArray(fc.constantFrom(...fns, 'median'), { minLength: 1, maxLength: 8 }).map((items) => items.join(',')),
  fill: fc.constantFrom(...fills, 'zero', ''),
  channels: fc.array(fc.constantFrom('ax', 'ay', 'az', 'count'), { minLength: 1, maxLength: 4 }).map((items) => items.join(',')),
  fromT: fc.oneof(fc.double({ noNaN: true }).map(String), fc.constantFrom('NaN', 'Infinity', '-0', '1e308', '1e309', '0x10', ' ')),
  toT: fc.oneof(fc.double({ noNaN: true }).map(String), fc.constantFrom('NaN', '-Infinity', '0', '1.5e12', '')),
};

/** A valid value with a character dropped, doubled, changed or added. */
function mutated(value: fc.Arbitrary<string>): fc.Arbitrary<string> {
  return fc
    .tuple(value, fc.nat(), fc.constantFrom('drop', 'double', 'change', 'add'), fc.string({ minLength: 1, maxLength: 1 }))
    .map(([text, at, how, char]) => {
      const i = text.length === 0 ? 0 : at % text.length;
      if (how === 'drop') return text.slice(0, i) + text.slice(i + 1);
      if (how === 'double') return text.slice(0, i + 1) + text.slice(i);
      if (how === 'change') return text.slice(0, i) + char + text.slice(i + 1);
      return text.slice(0, i) + char + text.slice(i);
    });
}

const queries = fc.record(
  Object.fromEntries(
    Object.entries(validValue).map(([name, value]) => [name, fc.option(fc.oneof(value, mutated(value), fc.string()), { nil: undefined })]),
  ),
  { requiredKeys: [] },
) as fc.Arbitrary<Query>;

test('the aggregate query parser reads exactly what the reference reads, and refuses the rest', () => {
  fc.assert(
    fc.property(queries, (query) => {
      const expected = reference(query);
      const outcome = parseAggregateQuery(query);
      if (expected === 'bad') {
        assert.equal(outcome.ok, false, JSON.stringify(query));
        if (!outcome.ok) assert.equal(outcome.code, 'invalid_request');
      } else {
        assert.ok(outcome.ok, `${JSON.stringify(query)}: ${outcome.ok ? '' : outcome.detail}`);
        assert.deepStrictEqual(outcome.value, expected);
      }
    }),
    fuzzParameters(3000),
  );
});

test('hostile values are refused with a detail naming them', () => {
  const cases: Array<[Query, RegExp]> = [
    [{}, /exactly one of bucketMs and points/],
    [{ bucketMs: '10', points: '10' }, /exactly one of bucketMs and points/],
    [{ points: '0' }, /points must be an integer from 1 to 10000/],
    [{ points: '10001' }, /points must be/],
    [{ bucketMs: '0' }, /bucketMs must be/],
    [{ bucketMs: '1e3' }, /bucketMs must be/],
    [{ bucketMs: '9007199254740992' }, /bucketMs must be/],
    [{ bucketMs: '1', fromT: 'NaN' }, /fromT must be a finite number/],
    [{ bucketMs: '1', toT: 'Infinity' }, /toT must be a finite number/],
    [{ bucketMs: '1', fromT: '1e309' }, /fromT must be a finite number/],
    [{ bucketMs: '1', fromT: '5', toT: '4' }, /fromT \(5\) is above toT \(4\)/],
    [{ bucketMs: '1', fn: 'median' }, /fn "median" is unknown/],
    [{ bucketMs: '1', fn: 'min,min' }, /fn names "min" twice/],
    [{ bucketMs: '1', fill: 'zero' }, /fill "zero" is unknown/],
    [{ bucketMs: '1', channels: 'ax,,ay' }, /channels has an empty item/],
    [{ bucketMs: '1', channels: 'ax,ax' }, /channels names "ax" twice/],
  ];
  for (const [query, detail] of cases) {
    const outcome = parseAggregateQuery(query);
    assert.ok(!outcome.ok && detail.test(outcome.detail), `${JSON.stringify(query)}: ${JSON.stringify(outcome)}`);
  }
  const edge = parseAggregateQuery({ bucketMs: '1', fromT: '-0', toT: '1e308' });
  assert.ok(edge.ok && Object.is(edge.value.fromT, -0) && edge.value.toT === 1e308);
});

test('the leaderboard query takes an orderBy among the fns asked, and a limit from 1 to 1000', () => {
  const orderBys = fc.oneof(
    fc.constantFrom('max', 'max:asc', 'max:desc', 'min:asc', 'count:desc', 'max:up', 'max:asc:desc', 'median', ':asc', ''),
    fc.string(),
  );
  fc.assert(
    fc.property(
      fc.option(validValue.fn, { nil: undefined }),
      fc.option(orderBys, { nil: undefined }),
      fc.option(fc.oneof(fc.integer({ min: -1, max: 1002 }).map(String), fc.string()), { nil: undefined }),
      (fn, orderBy, limit) => {
        const asked = list(fn, fns);
        const [by, direction = 'desc', ...rest] = (orderBy ?? (asked === 'bad' ? '' : (asked ?? ['count'])[0])).split(':');
        const limitValue = integer(limit, 1, 1000);
        const bad =
          asked === 'bad' ||
          limitValue === 'bad' ||
          !(asked ?? ['count', 'min', 'max', 'avg']).includes(by) ||
          rest.length > 0 ||
          !['asc', 'desc'].includes(direction);
        const outcome = parseLeaderboardQuery({ fn, orderBy, limit });
        assert.equal(outcome.ok, !bad, JSON.stringify({ fn, orderBy, limit, outcome }));
        if (outcome.ok) {
          assert.deepStrictEqual(outcome.value.orderBy, { fn: by, descending: direction === 'desc' });
          assert.equal(outcome.value.limit, limitValue ?? 100);
        }
      },
    ),
    fuzzParameters(2000),
  );
});
