/**
 * The bit stream under the compressed layout (bit-stream.ts): any fields of 0 to 53 bits, written
 * by BitWriter in any order and number (so across its 32-bit words and its growth), read back by
 * BitReader as written, in the fewest whole bytes, least significant bit first.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { BitReader, BitWriter } from '../../src/storage/bit-stream.ts';
import { fuzzParameters } from '../support/fuzz.ts';

/** A field: its width and a value below 2^width, often all ones or zero (the edges of a word). */
const fieldArbitrary = fc
  .integer({ min: 0, max: 53 })
  .chain((width) =>
    fc
      .oneof(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), fc.constantFrom(0, 1 - 2 ** -53))
      .map((fraction) => ({ width, value: Math.floor(fraction * 2 ** width) })),
  );

/** The fields as the writer must lay them out: a string of bits, least significant first. */
const bitsOf = (fields: ReadonlyArray<{ width: number; value: number }>) =>
  fields.map(({ width, value }) => [...value.toString(2).padStart(width, '0')].reverse().join('').slice(0, width)).join('');

test('fields of any width read back as written, least significant bit first, in the fewest bytes', () => {
  fc.assert(
    fc.property(fc.array(fieldArbitrary, { maxLength: 200 }), fc.integer({ min: 0, max: 64 }), (fields, capacity) => {
      const out = new BitWriter(capacity);
      for (const { width, value } of fields) out.writeWide(value, width);
      const bytes = out.finish();
      const expected = bitsOf(fields);
      assert.equal(bytes.length, Math.ceil(expected.length / 8));
      const written = [...bytes].map((byte) => [...byte.toString(2).padStart(8, '0')].reverse().join('')).join('');
      assert.equal(written, expected.padEnd(bytes.length * 8, '0'));
      const reader = new BitReader(bytes, 'test');
      for (const { width, value } of fields) assert.equal(reader.readWide(width), value);
      reader.end();
    }),
    fuzzParameters(1000),
  );
});
