/**
 * The listing's cursor, which any client can send back edited, and the narrowing of a filter
 * to a credential's key prefix, checked against a reference that tests each key directly.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { decodeCursor, encodeCursor, type SessionFilter, withinReach } from '../../src/sessions/session-listing.ts';
import { fuzzParameters } from '../support/fuzz.ts';

const position = fc.record({ createdUs: fc.bigInt({ min: 0n, max: 253_402_300_799_999_999n }), id: fc.uuid() });

test('a cursor carries its position back exactly', () => {
  fc.assert(
    fc.property(position, (at) => assert.deepEqual(decodeCursor(encodeCursor(at)), { ...at })),
    fuzzParameters(2_000),
  );
});

test('any text, or a cursor with its payload edited, decodes to a valid position or to null, never throws', () => {
  const edited = fc.tuple(position, fc.nat(), fc.integer({ min: 0, max: 255 })).map(([at, i, byte]) => {
    const payload = Buffer.from(encodeCursor(at), 'base64url');
    payload[i % payload.length] = byte;
    return payload.toString('base64url');
  });
  fc.assert(
    fc.property(fc.oneof(fc.string({ maxLength: 200 }), fc.string({ unit: 'grapheme', maxLength: 60 }), edited), (text) => {
      const decoded = decodeCursor(text);
      if (decoded === null) return;
      assert.ok(decoded.createdUs >= 0n && decoded.createdUs < 253_402_300_800_000_000n);
      assert.match(decoded.id, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    }),
    fuzzParameters(5_000),
  );
  for (const text of ['', 'abc', '%00', 'c2Vzc2lvbnM6LTE6eA', 'x'.repeat(121)]) assert.equal(decodeCursor(text), null);
});

/** Whether a session with this key is listed by the filter (its key and prefix parts only). */
function listed(filter: SessionFilter, key: string | null): boolean {
  if (filter.key !== undefined && key !== filter.key) return false;
  if (filter.keyPrefix !== undefined && filter.keyPrefix !== '' && !key?.startsWith(filter.keyPrefix)) return false;
  return true;
}

test('narrowed to a prefix, a filter lists exactly the sessions it listed that the prefix reaches', () => {
  const text = fc.string({ unit: fc.constantFrom('a', 'b', '/', '_'), maxLength: 5 });
  const nonEmpty = fc.string({ unit: fc.constantFrom('a', 'b', '/', '_'), minLength: 1, maxLength: 5 });
  fc.assert(
    fc.property(
      fc.record({ key: fc.option(nonEmpty, { nil: undefined }), keyPrefix: fc.option(nonEmpty, { nil: undefined }) }),
      fc.option(nonEmpty, { nil: null }),
      fc.array(fc.option(text, { nil: null }), { maxLength: 20 }),
      (asked, reach, keys) => {
        const narrowed = withinReach(asked, reach);
        for (const key of keys) {
          const expected = listed(asked, key) && (reach === null || key?.startsWith(reach) === true);
          assert.equal(narrowed !== null && listed(narrowed, key), expected, `${key}`);
        }
      },
    ),
    fuzzParameters(5_000),
  );
});
