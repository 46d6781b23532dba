/**
 * The ThingSpeak feed parser on untrusted bodies: any text, and valid bodies mutated or cut
 * short, gives an answer (a feed or an error), never an exception; a valid body gives exactly
 * what a plain reference reading of it gives; channel names are always valid, unique names.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { channelMapping, fieldNames, parseFeed } from '../../src/connectors/thingspeak-feed.ts';
import { fuzzParameters } from '../support/fuzz.ts';

/** A value as ThingSpeak's clients may have written it, or as a broken upstream may send it. */
const fieldValue = fc.oneof(
  { weight: 5, arbitrary: fc.double({ noNaN: true, noDefaultInfinity: true }).map(String) },
  { weight: 3, arbitrary: fc.integer().map(String) },
  { weight: 2, arbitrary: fc.constant(null) },
  { weight: 2, arbitrary: fc.string() },
  { weight: 1, arbitrary: fc.constantFrom('', ' 12.5 ', 'nan', 'Infinity', '0x10', '1e400', '-', '.5', '5.', '1_0') },
  { weight: 1, arbitrary: fc.oneof(fc.boolean(), fc.double(), fc.constant({}), fc.constant([1])) },
);

const timestamp = fc
  .integer({ min: Date.UTC(2000, 0, 1), max: Date.UTC(2100, 0, 1) })
  .map((ms) => new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000', ''));

const entry = fc.record(
  {
    entry_id: fc.oneof(
      { weight: 10, arbitrary: fc.nat({ max: 1_000_000 }) },
      { weight: 1, arbitrary: fc.constantFrom(-1, 1.5, '7', null) },
    ),
    created_at: fc.oneof(
      { weight: 10, arbitrary: timestamp },
      { weight: 1, arbitrary: fc.constantFrom('yesterday', '2024-13-45T99:99:99Z', 3) },
    ),
    field1: fieldValue,
    field2: fieldValue,
    field5: fieldValue,
    field8: fieldValue,
  },
  { requiredKeys: ['entry_id', 'created_at'] },
);

const body = fc.record({
  channel: fc.record({
    id: fc.nat(),
    created_at: timestamp,
    field1: fc.option(fc.string({ maxLength: 80 })),
    field2: fc.option(fc.string({ maxLength: 80 })),
    field5: fc.option(fc.constantFrom('seq', 't', 'field1', 'Water Level (cm)', 'Water Level [cm]', 'µS/cm', '')),
    field8: fc.option(fc.string({ maxLength: 80 })),
  }),
  feeds: fc.array(entry, { maxLength: 20 }),
});

/** The reference: a value is a number when Number() of its trimmed decimal text is finite. */
function referenceValue(value: unknown): number | null | 'invalid' {
  if (value === undefined || value === null) return null;
  if (typeof value === 'number') return value;
  if (typeof value !== 'string') return 'invalid';
  const text = value.trim();
  if (text === '') return null;
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text)) return 'invalid';
  return Number.isFinite(Number(text)) ? Number(text) : 'invalid';
}

function referenceEntries(feeds: Array<Record<string, unknown>>) {
  let invalidValues = 0;
  let invalidRecords = 0;
  const entries = [];
  for (const item of feeds) {
    const id = item.entry_id;
    const t = typeof item.created_at === 'string' ? Date.parse(item.created_at) : Number.NaN;
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || !Number.isFinite(t) || typeof item.created_at !== 'string') {
      invalidRecords++;
      continue;
    }
    const values = fieldNames.map((name) => {
      const value = referenceValue(item[name]);
      if (value === 'invalid') invalidValues++;
      return value === 'invalid' ? null : value;
    });
    entries.push({ entryId: id, t, values });
  }
  return { entries, discards: { invalidValues, invalidRecords } };
}

describe('the ThingSpeak feed parser', () => {
  test('answers any text with a feed or an error, never an exception', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.json(), fc.stringMatching(/^[-01<>{}[\]":,a-z ]*$/)), (text) => {
        const parsed = parseFeed(text);
        if (!parsed.ok) assert.equal(typeof parsed.message, 'string');
      }),
      fuzzParameters(500),
    );
  });

  test('answers valid bodies cut short or with bytes changed with a feed or an error', () => {
    const mutated = fc.tuple(body, fc.nat(), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 127 })), { maxLength: 5 }));
    fc.assert(
      fc.property(mutated, ([valid, cut, changes]) => {
        const chars = [...JSON.stringify(valid)];
        for (const [at, code] of changes) chars[at % chars.length] = String.fromCharCode(code);
        const parsed = parseFeed(chars.join('').slice(0, cut % (chars.length + 1)));
        assert.ok(parsed.ok || parsed.message.length > 0);
      }),
      fuzzParameters(500),
    );
  });

  test('reads a valid body exactly as the reference does', () => {
    fc.assert(
      fc.property(body, (valid) => {
        const parsed = parseFeed(JSON.stringify(valid));
        assert.ok(parsed.ok);
        // What JSON carries: -0 becomes 0, as it does for the reference reading the same text.
        const expected = referenceEntries(JSON.parse(JSON.stringify(valid.feeds)));
        assert.deepEqual(parsed.feed.entries, expected.entries);
        assert.deepEqual(parsed.feed.discards, expected.discards);
      }),
      fuzzParameters(500),
    );
  });

  test('names channels with valid, unique names, one per named field, the mapping kept', () => {
    const names = fc.array(fc.option(fc.oneof(fc.string({ maxLength: 100 }), fc.constantFrom('seq', 't', 'field2', 'a b', 'a_b'))), {
      minLength: 8,
      maxLength: 8,
    });
    fc.assert(
      fc.property(names, (fields) => {
        const mapping = channelMapping(fields) ?? [];
        const named = fields.filter((name) => name !== null);
        assert.equal(mapping.length, named.length);
        assert.deepEqual(
          mapping.map((m) => m.name),
          named,
        );
        const channels = mapping.map((m) => m.channel);
        assert.equal(new Set(channels).size, channels.length);
        for (const channel of channels) {
          assert.match(channel, /^[A-Za-z0-9_.-]{1,64}$/);
          assert.ok(channel !== 'seq' && channel !== 't');
        }
      }),
      fuzzParameters(500),
    );
  });

  test('refuses -1, 0, HTML pages and bodies of another shape, each with its reason', () => {
    assert.match(refusal('-1'), /refused the read/);
    assert.match(refusal(' 0\n'), /read failed/);
    assert.match(refusal('<html><body>502 Bad Gateway</body></html>'), /HTML/);
    assert.match(refusal('{"channel": {}, "feeds": {}}'), /feeds array/);
    assert.match(refusal('[1, 2]'), /JSON object/);
    assert.match(refusal('{"feeds": []}'), /channel object/);
    assert.match(refusal('{"channel": {"field1": "a"}, "feeds": [{"entry_id": 1'), /not JSON/);
  });

  test('reads values written as decimals and stores anything else as null, counted', () => {
    const text = JSON.stringify({
      channel: { field1: 'level', field2: 'flow' },
      feeds: [{ entry_id: 3, created_at: '2024-05-01T10:00:00Z', field1: ' 12.50 ', field2: 'n/a' }],
    });
    const parsed = parseFeed(text);
    assert.ok(parsed.ok);
    assert.deepEqual(parsed.feed.entries[0].values, [12.5, null, null, null, null, null, null, null]);
    assert.deepEqual(parsed.feed.discards, { invalidValues: 1, invalidRecords: 0 });
    assert.deepEqual(channelMapping(parsed.feed.fields), [
      { channel: 'level', field: 'field1', name: 'level' },
      { channel: 'flow', field: 'field2', name: 'flow' },
    ]);
  });
});

function refusal(text: string): string {
  const parsed = parseFeed(text);
  assert.ok(!parsed.ok, `${text} was read as a feed`);
  return parsed.message;
}
