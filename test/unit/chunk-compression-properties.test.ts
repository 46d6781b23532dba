/**
 * Compressed chunks (layout 2, chunk-compression.ts) read back bit for bit whatever their
 * values: any float64 bits (NaN payloads, the nulls of nullable sessions, -0, infinities),
 * decimal and float32 values with outliers, seqs with gaps, t that jumps back. A payload cut
 * short is refused with a CorruptChunkError; a mutated one is refused so, or read into a batch
 * of the samples asked for, never into a hang or an allocation beyond them.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { SampleBatch } from '../../src/samples/sample-batch.ts';
import { CorruptChunkError } from '../../src/storage/bit-stream.ts';
import { batchFromPayload, payloadLayouts } from '../../src/storage/chunk-codec.ts';
import { compressBatch, decompressPayload } from '../../src/storage/chunk-compression.ts';
import { fuzzParameters } from '../support/fuzz.ts';

const bitsOf = (batch: SampleBatch) => Buffer.from(batch.columns.buffer, batch.columns.byteOffset, batch.columns.byteLength);

/** A double from its two 32-bit words: any bits at all. */
const anyBits = fc.tuple(fc.nat({ max: 0xffffffff }), fc.nat({ max: 0xffffffff })).map(([lo, hi]) => {
  const words = Uint32Array.of(lo, hi);
  return new Float64Array(words.buffer)[0];
});
const nanWithPayload = fc.nat({ max: 0xfffff }).map((payload) => new Float64Array(Uint32Array.of(1, 0x7ff00000 | payload).buffer)[0]);
const special = fc.oneof(
  fc.constantFrom(Number.NaN, -0, 0, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, Number.MIN_VALUE, -Number.MAX_VALUE),
  nanWithPayload,
);

/** A column of n values in one of the shapes the forms are for, with a few values of any bits among them. */
function columnArbitrary(n: number): fc.Arbitrary<number[]> {
  const decimal = fc
    .tuple(
      fc.integer({ min: 0, max: 9 }),
      fc.integer({ min: -1e7, max: 1e7 }),
      fc.array(fc.integer({ min: -500, max: 500 }), { minLength: n, maxLength: n }),
    )
    .map(([k, start, steps]) => {
      let m = start;
      return steps.map((step) => {
        m += step;
        return m / 10 ** k;
      });
    });
  const float32 = fc.array(fc.float({ noDefaultInfinity: true, noNaN: true }), { minLength: n, maxLength: n });
  const clock = fc
    .tuple(fc.double({ min: -1e13, max: 2e12, noNaN: true }), fc.double({ min: 0, max: 1e3, noNaN: true }))
    .map(([start, step]) => Array.from({ length: n }, (_, i) => start + i * step));
  const shaped = fc.oneof(decimal, float32, clock, fc.array(anyBits, { minLength: n, maxLength: n }));
  return fc
    .tuple(shaped, fc.array(fc.tuple(fc.nat({ max: n - 1 }), fc.oneof(special, anyBits)), { maxLength: Math.max(1, n >> 3) }))
    .map(([values, replaced]) => {
      const out = [...values];
      for (const [i, value] of replaced) out[i] = value;
      return out;
    });
}

/** A batch whose seqs rise with gaps, its other columns of any shape. */
const batchArbitrary = fc
  .record({ count: fc.integer({ min: 1, max: 300 }), channelCount: fc.integer({ min: 0, max: 4 }), firstSeq: fc.nat({ max: 2 ** 40 }) })
  .chain(({ count, channelCount, firstSeq }) =>
    fc
      .tuple(
        fc.array(fc.oneof(fc.constant(1), fc.integer({ min: 1, max: 1e6 })), { minLength: count, maxLength: count }),
        fc.array(columnArbitrary(count), { minLength: channelCount + 1, maxLength: channelCount + 1 }),
      )
      .map(([steps, columns]) => {
        const batch = SampleBatch.allocate(count, channelCount);
        let seq = firstSeq;
        steps.forEach((step, i) => {
          batch.columns[i] = seq;
          seq += step;
        });
        columns.forEach((column, c) => {
          batch.columns.set(column, (c + 1) * count);
        });
        return batch;
      }),
  );

const corruptOnly = (error: unknown) => error instanceof CorruptChunkError;

describe('compressed chunks', () => {
  test('read back bit for bit, through the reader every chunk takes', () => {
    fc.assert(
      fc.property(batchArbitrary, (batch) => {
        const payload = compressBatch(batch);
        const read = batchFromPayload(payload, batch.count, payloadLayouts.compressed, batch.lastSeq);
        assert.equal(read.channelCount, batch.channelCount);
        assert.ok(bitsOf(read).equals(bitsOf(batch)));
      }),
      fuzzParameters(1000),
    );
  });

  test('any columns at all, seq included, read back bit for bit', () => {
    const anyBatch = fc
      .record({ count: fc.integer({ min: 1, max: 80 }), channelCount: fc.integer({ min: 0, max: 2 }) })
      .chain(({ count, channelCount }) =>
        fc
          .array(fc.oneof(anyBits, special), { minLength: count * (channelCount + 2), maxLength: count * (channelCount + 2) })
          .map((values) => new SampleBatch(count, channelCount, Float64Array.from(values))),
      );
    fc.assert(
      fc.property(anyBatch, (batch) => {
        assert.ok(bitsOf(decompressPayload(compressBatch(batch), batch.count, 'test')).equals(bitsOf(batch)));
      }),
      fuzzParameters(1000),
    );
  });

  test('a payload cut short is refused with a CorruptChunkError', () => {
    fc.assert(
      fc.property(batchArbitrary, fc.nat(), (batch, at) => {
        const payload = compressBatch(batch);
        const cut = payload.subarray(0, at % payload.length);
        assert.throws(() => batchFromPayload(cut, batch.count, payloadLayouts.compressed, batch.lastSeq), corruptOnly);
      }),
      fuzzParameters(500),
    );
  });

  test('a mutated payload or sample count is refused with a CorruptChunkError, or read into that many samples', () => {
    const edits = fc.tuple(
      fc.nat(),
      fc.integer({ min: 0, max: 255 }),
      fc.constantFrom('replace', 'insert', 'delete', 'count'),
      fc.integer({ min: 1, max: 1 << 20 }),
    );
    fc.assert(
      fc.property(batchArbitrary, edits, (batch, [position, value, edit, count]) => {
        const payload = compressBatch(batch);
        const at = position % payload.length;
        let mutated = Buffer.from(payload);
        if (edit === 'replace') mutated[at] = value;
        if (edit === 'insert') mutated = Buffer.concat([payload.subarray(0, at), Buffer.of(value), payload.subarray(at)]);
        if (edit === 'delete') mutated = Buffer.concat([payload.subarray(0, at), payload.subarray(at + 1)]);
        const samples = edit === 'count' ? count : batch.count;
        try {
          const read = decompressPayload(mutated, samples, 'test');
          assert.equal(read.count, samples);
        } catch (error) {
          assert.ok(corruptOnly(error), String(error));
        }
      }),
      fuzzParameters(3000),
    );
  });
});
