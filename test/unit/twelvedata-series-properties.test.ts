/**
 * The Twelve Data time_series parser on untrusted bodies: any text, and valid bodies mutated
 * or cut short, gives an answer (a series or an error), never an exception; a valid body gives
 * exactly what a plain reference reading of it gives; errors in 200 bodies are errors, without
 * the API key; exchange wall times become instants across DST changes.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { exchangeInstant } from '../../src/connectors/exchange-time.ts';
import { barFields, parseSeries } from '../../src/connectors/twelvedata-series.ts';
import { fuzzParameters } from '../support/fuzz.ts';

const value = fc.oneof(
  { weight: 5, arbitrary: fc.double({ noNaN: true, noDefaultInfinity: true, min: -1e9, max: 1e9 }).map((v) => v.toFixed(5)) },
  { weight: 2, arbitrary: fc.nat().map(String) },
  { weight: 1, arbitrary: fc.constant(null) },
  { weight: 1, arbitrary: fc.string() },
  { weight: 1, arbitrary: fc.constantFrom('', 'n/a', 'NaN', 'Infinity', '0x1f', '1e400', ' 2.5 ') },
  { weight: 1, arbitrary: fc.oneof(fc.boolean(), fc.constant({}), fc.constant([1])) },
);

/** A whole second from 1990 to 2090 as the wall time of a fixed-offset zone. */
const datetime = fc
  .integer({ min: 631_152_000, max: 3_786_912_000 })
  .map((s) => new Date(s * 1_000).toISOString().slice(0, 19).replace('T', ' '));

const bar = fc.record(
  {
    datetime: fc.oneof(
      { weight: 10, arbitrary: datetime },
      { weight: 1, arbitrary: datetime.map((d) => d.slice(0, 10)) },
      { weight: 1, arbitrary: fc.constantFrom('yesterday', '2024-02-30 10:00:00', '2024-05-01T10:00:00Z', '2024-05-01 24:00:00', 7) },
    ),
    open: value,
    high: value,
    low: value,
    close: value,
    volume: value,
  },
  { requiredKeys: ['datetime'] },
);

/** Zones with fixed offsets, so the reference needs no table: Etc/GMT+5 is five hours behind UTC. */
const zones: Record<string, number> = { UTC: 0, 'Etc/GMT+5': 5 * 3_600_000, 'Etc/GMT-9': -9 * 3_600_000 };

const body = fc.record({
  meta: fc.record({
    symbol: fc.constantFrom('AAPL', 'EUR/USD'),
    interval: fc.constant('1min'),
    exchange_timezone: fc.constantFrom(...Object.keys(zones)),
  }),
  values: fc.array(bar, { maxLength: 20 }),
  status: fc.constant('ok'),
});

function referenceValue(v: unknown): number | null | 'invalid' {
  if (v === undefined || v === null) return null;
  if (typeof v === 'number') return v;
  if (typeof v !== 'string') return 'invalid';
  const text = v.trim();
  if (text === '') return null;
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text)) return 'invalid';
  return Number.isFinite(Number(text)) ? Number(text) : 'invalid';
}

function reference(valid: { meta: { exchange_timezone: string }; values: Array<Record<string, unknown>> }) {
  let invalidValues = 0;
  let invalidRecords = 0;
  const bars = [];
  for (const item of valid.values) {
    const text = item.datetime;
    const iso = typeof text === 'string' && /^\d{4}-\d{2}-\d{2}( \d{2}:\d{2}:\d{2})?$/.test(text) ? `${text.replace(' ', 'T')}Z` : null;
    const wall = iso === null ? Number.NaN : Date.parse(iso);
    // Date.parse takes 2024-02-30; a real datetime reads back as itself.
    if (iso === null || !Number.isFinite(wall) || new Date(wall).toISOString().slice(0, iso.length - 1) !== iso.slice(0, -1)) {
      invalidRecords++;
      continue;
    }
    const values = barFields.map((name) => {
      const parsed = referenceValue(item[name]);
      if (parsed === 'invalid') invalidValues++;
      return parsed === 'invalid' ? null : parsed;
    });
    bars.push({ start: (wall + zones[valid.meta.exchange_timezone]) / 1_000, values });
  }
  return { bars, discards: { invalidValues, invalidRecords } };
}

describe('the Twelve Data time_series parser', () => {
  test('answers any text with a series or an error, never an exception', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.json(), fc.stringMatching(/^[-01<>{}[\]":,a-z ]*$/)), (text) => {
        const parsed = parseSeries(text, 'KEY');
        if (!parsed.ok) assert.equal(typeof parsed.message, 'string');
      }),
      fuzzParameters(500),
    );
  });

  test('answers valid bodies cut short or with bytes changed with a series or an error', () => {
    const mutated = fc.tuple(body, fc.nat(), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 127 })), { maxLength: 5 }));
    fc.assert(
      fc.property(mutated, ([valid, cut, changes]) => {
        const chars = [...JSON.stringify(valid)];
        for (const [at, code] of changes) chars[at % chars.length] = String.fromCharCode(code);
        const parsed = parseSeries(chars.join('').slice(0, cut % (chars.length + 1)), 'KEY');
        assert.ok(parsed.ok || parsed.message.length > 0);
      }),
      fuzzParameters(500),
    );
  });

  test('reads a valid body exactly as the reference does', () => {
    fc.assert(
      fc.property(body, (valid) => {
        const parsed = parseSeries(JSON.stringify(valid), 'KEY');
        assert.ok(parsed.ok, parsed.ok ? '' : parsed.message);
        const expected = reference(JSON.parse(JSON.stringify(valid)));
        assert.deepEqual(parsed.series.bars, expected.bars);
        assert.deepEqual(parsed.series.discards, expected.discards);
      }),
      fuzzParameters(500),
    );
  });

  test('takes an error in a 200 body as an error, its message bounded and without the key', () => {
    const echoed = parseSeries('{"code":401,"message":"apikey SECRET42 is not valid\\u0000","status":"error"}', 'SECRET42');
    assert.deepEqual(echoed, { ok: false, code: 401, message: 'Twelve Data answered 401: apikey [redacted] is not valid ' });
    const limited = parseSeries(JSON.stringify({ code: 429, message: 'x'.repeat(10_000), status: 'error' }), 'K');
    assert.ok(!limited.ok && limited.code === 429 && limited.message.length < 300);
    for (const [text, reason] of [
      ['<html>502</html>', /HTML/],
      ['{"status":"ok","values":[]}', /exchange_timezone/],
      ['{"status":"ok","meta":{"exchange_timezone":"Mars/Olympus"},"values":[]}', /exchange_timezone/],
      ['{"status":"ok","meta":{"exchange_timezone":"UTC"},"values":{}}', /values array/],
      ['{"meta":{"exchange_timezone":"UTC"},"values":[]}', /status/],
      ['{"status":"error"}', /answered an error/],
      ['[]', /JSON object/],
    ] as const) {
      const parsed = parseSeries(text, 'K');
      assert.ok(!parsed.ok && reason.test(parsed.message), text);
    }
  });
});

describe('exchange wall times', () => {
  test('cross DST changes at the offset of each side', () => {
    const at = (text: string, zone: string) => new Date(exchangeInstant(text, zone) ?? Number.NaN).toISOString();
    // New York springs forward at 02:00 local on 2024-03-10: 01:59 EST is 06:59Z, 03:00 EDT is 07:00Z.
    assert.equal(at('2024-03-10 01:59:00', 'America/New_York'), '2024-03-10T06:59:00.000Z');
    assert.equal(at('2024-03-10 03:00:00', 'America/New_York'), '2024-03-10T07:00:00.000Z');
    // ...and falls back on 2024-11-03: 01:30 happens twice, read as the first (EDT).
    assert.equal(at('2024-11-03 01:30:00', 'America/New_York'), '2024-11-03T05:30:00.000Z');
    assert.equal(at('2024-11-03 02:00:00', 'America/New_York'), '2024-11-03T07:00:00.000Z');
    assert.equal(at('2024-10-27 02:30:00', 'Europe/Berlin'), '2024-10-27T00:30:00.000Z');
    assert.equal(at('2024-05-01', 'Asia/Kolkata'), '2024-04-30T18:30:00.000Z');
    assert.equal(exchangeInstant('2024-05-01 10:00:00', 'Nowhere/Zone'), null);
    assert.equal(exchangeInstant('2023-02-29', 'UTC'), null);
  });

  test('are read back by Intl as the wall time they came from, wherever no change makes them ambiguous', () => {
    const zone = fc.constantFrom('America/New_York', 'Europe/London', 'Australia/Sydney', 'Asia/Kolkata', 'America/Sao_Paulo');
    const format = (z: string) =>
      new Intl.DateTimeFormat('sv-SE', {
        timeZone: z,
        year: 'numeric',
        month: '2-digit',
        day: '2-digit',
        hour: '2-digit',
        minute: '2-digit',
        second: '2-digit',
      });
    fc.assert(
      fc.property(zone, fc.integer({ min: 946_684_800, max: 4_102_444_800 }), (z, seconds) => {
        const wall = format(z).format(new Date(seconds * 1_000));
        const ms = exchangeInstant(wall, z);
        assert.ok(ms !== null);
        // The same wall time: the instant itself, or its twin an hour apart in a fall-back hour.
        assert.equal(format(z).format(new Date(ms)), wall);
        assert.ok(ms === seconds * 1_000 || Math.abs(ms - seconds * 1_000) === 3_600_000);
      }),
      fuzzParameters(300),
    );
  });
});
