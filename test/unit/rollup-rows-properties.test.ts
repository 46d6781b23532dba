/**
 * The decoder of roll-up reads' binary COPY output: rows written the way PostgreSQL writes them
 * decode to what they hold (differential against this file's simple encoder), and arbitrary or
 * mutated bytes decode or are refused with a RollupRowsError, never anything else.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { decodeRollupRows, type RollupRow, RollupRowsError } from '../../src/storage/rollup-rows.ts';
import { decodesOrRefuses as fuzzDecodesOrRefuses, fuzzParameters } from '../support/fuzz.ts';

/** A binary COPY of (bool, bool or null, bytea or null) rows, with a header extension of `extension` bytes. */
function encode(rows: ReadonlyArray<{ complete: boolean; rollUp: boolean | null; summary: Uint8Array | null }>, extension = 0): Buffer {
  const int32 = (n: number) => Buffer.from(new Int32Array([n]).buffer).reverse();
  const pieces: Buffer[] = [Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1'), int32(0), int32(extension), Buffer.alloc(extension)];
  for (const { complete, rollUp, summary } of rows) {
    pieces.push(Buffer.from([0, 3]), int32(1), Buffer.from([complete ? 1 : 0]));
    pieces.push(...(rollUp === null ? [int32(-1)] : [int32(1), Buffer.from([rollUp ? 1 : 0])]));
    pieces.push(...(summary === null ? [int32(-1)] : [int32(summary.length), Buffer.from(summary)]));
  }
  pieces.push(Buffer.from([0xff, 0xff]));
  return Buffer.concat(pieces);
}

const rows = fc.array(
  fc.record({
    complete: fc.boolean(),
    rollUp: fc.option(fc.boolean()),
    summary: fc.option(fc.uint8Array({ maxLength: 40 })),
  }),
  { maxLength: 8 },
);

const decodesOrRefuses = (bytes: Buffer) => fuzzDecodesOrRefuses(() => decodeRollupRows(bytes), RollupRowsError);

test('rows decode to what they hold, whatever the header extension', () => {
  fc.assert(
    fc.property(rows, fc.nat({ max: 16 }), (written, extension) => {
      const expected: RollupRow[] = written.map(({ complete, rollUp, summary }) => ({
        complete,
        rollUp: rollUp === true,
        summary: summary === null ? null : Buffer.from(summary),
      }));
      assert.deepStrictEqual(decodeRollupRows(encode(written, extension)), expected);
    }),
    fuzzParameters(300),
  );
});

test('arbitrary bytes, with or without the signature, decode or are refused with a RollupRowsError', () => {
  const signed = fc.uint8Array({ maxLength: 80 }).map((tail) => Buffer.concat([Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1'), tail]));
  fc.assert(
    fc.property(
      fc.oneof(
        fc.uint8Array({ maxLength: 120 }).map((b) => Buffer.from(b)),
        signed,
      ),
      decodesOrRefuses,
    ),
    fuzzParameters(500),
  );
});

test('rows with bytes changed, cut or added decode or are refused with a RollupRowsError', () => {
  const mutation = fc.tuple(fc.constantFrom('set', 'cut', 'add'), fc.nat(), fc.integer({ min: 0, max: 255 }));
  fc.assert(
    fc.property(rows, fc.array(mutation, { minLength: 1, maxLength: 4 }), (written, mutations) => {
      let bytes = encode(written);
      for (const [kind, at, byte] of mutations) {
        const i = at % (bytes.length + 1);
        if (kind === 'set' && i < bytes.length) bytes[i] = byte;
        else if (kind === 'cut') bytes = bytes.subarray(0, i);
        else bytes = Buffer.concat([bytes.subarray(0, i), Buffer.from([byte]), bytes.subarray(i)]);
      }
      decodesOrRefuses(bytes);
    }),
    fuzzParameters(500),
  );
});
