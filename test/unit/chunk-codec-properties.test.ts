/**
 * Stored chunks, written by encodeCopyBinary and read back by decodeCopyBinary and
 * batchFromPayload, round-trip bit for bit; a corrupt or cut COPY output or payload is refused
 * with an Error that says so, never read past its end, into garbage, or in a loop.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { SampleBatch } from '../../src/samples/sample-batch.ts';
import { CorruptChunkError } from '../../src/storage/bit-stream.ts';
import {
  batchFromPayload,
  type ChunkRow,
  decodeCopyBinary,
  encodeCopyBinary,
  joinedChunks,
  type PayloadLayout,
  payloadLayouts,
  type StoredChunk,
} from '../../src/storage/chunk-codec.ts';
import { compressBatch } from '../../src/storage/chunk-compression.ts';
import { fuzzParameters } from '../support/fuzz.ts';

const sessionId = '8d3e1f6a-2b4c-4d5e-9f60-718293a4b5c6';
const copySignature = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');

/**
 * What `COPY (SELECT last_seq, sample_count, payload_layout, payload ...) TO STDOUT (FORMAT binary)` sends for `chunks`,
 * or with each chunk's `group` as an int4 before them when it has one (the chunk compressor's COPY).
 */
function copyOutput(chunks: readonly StoredChunk[]): Buffer {
  const parts: Buffer[] = [copySignature, Buffer.alloc(8)];
  for (const { lastSeq, sampleCount, layout, payload, group } of chunks) {
    if (group !== undefined) {
      const field = Buffer.alloc(2 + 8);
      field.writeInt32BE(4, field.writeInt16BE(5, 0));
      field.writeInt32BE(group, 6);
      parts.push(field);
    }
    const row = Buffer.alloc(2 + 12 + 8 + 6 + 4);
    let at = group === undefined ? row.writeInt16BE(4, 0) : 2;
    at = row.writeInt32BE(8, at);
    at = row.writeBigInt64BE(BigInt(lastSeq), at);
    at = row.writeInt32BE(4, at);
    at = row.writeInt32BE(sampleCount, at);
    at = row.writeInt32BE(2, at);
    at = row.writeInt16BE(layout, at);
    row.writeInt32BE(payload.length, at);
    parts.push(group === undefined ? row : row.subarray(2), payload);
  }
  parts.push(Buffer.from([0xff, 0xff]));
  return Buffer.concat(parts);
}

/** The chunks encodeCopyBinary wrote, as PostgreSQL stores them (its row layout: a field count, then each field's length and bytes). */
function storedChunksOf(copyIn: Buffer): Array<StoredChunk & { minT: number; maxT: number }> {
  const chunks: Array<StoredChunk & { minT: number; maxT: number }> = [];
  for (let at = copySignature.length + 8; copyIn.readInt16BE(at) !== -1; ) {
    at += 2 + 4 + 16 + 4 + 8 + 4;
    const lastSeq = Number(copyIn.readBigInt64BE(at));
    const sampleCount = copyIn.readInt32BE(at + 12);
    const layout = copyIn.readInt16BE(at + 20) as PayloadLayout;
    const minT = copyIn.readDoubleBE(at + 26);
    const maxT = copyIn.readDoubleBE(at + 38);
    const length = copyIn.readInt32BE(at + 46);
    at += 50;
    chunks.push({ lastSeq, sampleCount, layout, minT, maxT, payload: copyIn.subarray(at, at + length) });
    at += length;
  }
  return chunks;
}

/** The batches of a chunk row joined column by column: what its stored chunk must read back as. */
function joined(batches: readonly SampleBatch[]): Float64Array {
  const count = batches.reduce((sum, batch) => sum + batch.count, 0);
  const width = batches[0].channelCount + 2;
  const out = new Float64Array(count * width);
  for (let column = 0, at = 0; column < width; column++) {
    for (const batch of batches) {
      out.set(batch.columns.subarray(column * batch.count, (column + 1) * batch.count), at);
      at += batch.count;
    }
  }
  return out;
}

const bytesOf = (columns: Float64Array) => Buffer.from(columns.buffer, columns.byteOffset, columns.byteLength);

/**
 * Seqs compared by value (a gapless chunk stores none, so a seq of -0 reads back as 0), every
 * other value bit for bit, NaN payloads too.
 */
function assertSameSamples(actual: SampleBatch, expected: { count: number; channelCount: number; columns: Float64Array }): void {
  assert.equal(actual.count, expected.count);
  assert.equal(actual.channelCount, expected.channelCount);
  assert.deepEqual(
    [...actual.columns.subarray(0, actual.count)].map((seq) => seq + 0),
    [...expected.columns.subarray(0, expected.count)].map((seq) => seq + 0),
  );
  assert.deepEqual(bytesOf(actual.columns.subarray(actual.count)), bytesOf(expected.columns.subarray(expected.count)));
}

const isCorruptionError = (error: unknown) =>
  error instanceof Error &&
  !(error instanceof RangeError) &&
  /binary COPY output|unexpected binary COPY row|corrupt chunk/.test(error.message);

/** Reads `body` as the read path does; returns what it read, or null when it refused the body as corrupt. */
function readChunks(body: Buffer): SampleBatch[] | null {
  try {
    return decodeCopyBinary(body).map((chunk) => batchFromPayload(chunk.payload, chunk.sampleCount, chunk.layout, chunk.lastSeq));
  } catch (error) {
    assert.ok(isCorruptionError(error), `${body.toString('hex')}: ${error instanceof Error ? error.stack : String(error)}`);
    return null;
  }
}

/** Any float64 bits: NaN payloads and -0 must survive storage as they are. */
const anyDouble = fc.uint8Array({ minLength: 8, maxLength: 8 }).map((bytes) => new Float64Array(bytes.buffer)[0]);

/** A chunk row: one to three batches of one channel count whose seqs rise, without a gap or with. */
const chunkRowArbitrary = fc
  .record({
    channelCount: fc.integer({ min: 0, max: 4 }),
    counts: fc.array(fc.integer({ min: 1, max: 12 }), { minLength: 1, maxLength: 3 }),
    firstSeq: fc.oneof(fc.nat({ max: 1000 }), fc.constant(2 ** 53 - 100)),
    gapless: fc.boolean(),
  })
  .chain(({ channelCount, counts, firstSeq, gapless }) => {
    const total = counts.reduce((sum, count) => sum + count, 0);
    return fc
      .tuple(
        fc.array(fc.integer({ min: 1, max: 3 }), { minLength: total, maxLength: total }),
        fc.array(anyDouble, { minLength: total * (channelCount + 1), maxLength: total * (channelCount + 1) }),
      )
      .map(([steps, values]): ChunkRow => {
        let seq = firstSeq;
        let taken = 0;
        let sample = 0;
        const batches = counts.map((count) => {
          const columns = new Float64Array(count * (channelCount + 2));
          for (let i = 0; i < count; i++, sample++) {
            columns[i] = seq;
            seq = Math.min(seq + (gapless ? 1 : steps[sample]), 2 ** 53 - 1);
          }
          columns.set(values.slice(taken, taken + count * (channelCount + 1)), count);
          taken += count * (channelCount + 1);
          return new SampleBatch(count, channelCount, columns);
        });
        return { sessionId, batches };
      });
  });

/** A stored COPY output with one byte changed, inserted or deleted, cut short, or a length field set to a telling value. */
const corruptOutputArbitrary = fc
  .tuple(
    fc.array(chunkRowArbitrary, { minLength: 1, maxLength: 3 }),
    fc.constantFrom('cut', 'replace', 'insert', 'delete', 'int32', 'int16'),
    fc.nat(),
    fc.oneof(fc.integer({ min: 0, max: 255 }), fc.constantFrom(-1, -2, -32, -34, 0, 1, 7, 8, 2 ** 31 - 1, -(2 ** 31))),
  )
  .map(([rows, edit, position, value]) => {
    const body = copyOutput(storedChunksOf(encodeCopyBinary(rows)));
    const at = position % (body.length + 1);
    if (edit === 'cut') return body.subarray(0, at);
    if (edit === 'insert') return Buffer.concat([body.subarray(0, at), Buffer.from([value & 0xff]), body.subarray(at)]);
    if (edit === 'delete') return Buffer.concat([body.subarray(0, at), body.subarray(at + 1)]);
    const out = Buffer.from(body);
    if (edit === 'int32' && at + 4 <= out.length) out.writeInt32BE(value | 0, at);
    else if (edit === 'int16' && at + 2 <= out.length) out.writeInt16BE((value << 16) >> 16, at);
    else if (at < out.length) out[at] = value & 0xff;
    return out;
  });

describe('chunk codec', () => {
  test('stored chunks read back as the batches written, bit for bit, in both layouts', () => {
    fc.assert(
      fc.property(fc.array(chunkRowArbitrary, { minLength: 1, maxLength: 4 }), (rows) => {
        const read = readChunks(copyOutput(storedChunksOf(encodeCopyBinary(rows))));
        assert.ok(read, 'a body encodeCopyBinary wrote is refused');
        assert.equal(read.length, rows.length);
        rows.forEach((row, i) => {
          const expected = joined(row.batches);
          assertSameSamples(read[i], {
            count: expected.length / (row.batches[0].channelCount + 2),
            channelCount: row.batches[0].channelCount,
            columns: expected,
          });
        });
      }),
      fuzzParameters(1000),
    );
  });

  test('each row carries the lowest and highest t of its samples, whatever their order', () => {
    fc.assert(
      fc.property(fc.array(chunkRowArbitrary, { minLength: 1, maxLength: 4 }), (rows) => {
        const stored = storedChunksOf(encodeCopyBinary(rows));
        rows.forEach((row, i) => {
          const ts = row.batches
            .flatMap((batch) => [...batch.columns.subarray(batch.count, 2 * batch.count)])
            .filter((t) => !Number.isNaN(t));
          // === and not Object.is: -0 and 0 bound a range alike.
          assert.ok(stored[i].minT === Math.min(...ts), `min ${stored[i].minT} of ${ts}`);
          assert.ok(stored[i].maxT === Math.max(...ts), `max ${stored[i].maxT} of ${ts}`);
        });
      }),
      fuzzParameters(1000),
    );
  });

  test('a corrupt or cut COPY output is refused with an Error, or what it reads is stored again as it is', () => {
    const bodies = fc.oneof(
      { weight: 4, arbitrary: corruptOutputArbitrary },
      { weight: 1, arbitrary: fc.uint8Array({ maxLength: 80 }).map((bytes) => Buffer.concat([copySignature, bytes])) },
      { weight: 1, arbitrary: fc.uint8Array({ maxLength: 40 }).map((bytes) => Buffer.from(bytes)) },
    );
    fc.assert(
      fc.property(bodies, (body) => {
        for (const batch of readChunks(body) ?? []) {
          const again = readChunks(copyOutput(storedChunksOf(encodeCopyBinary([{ sessionId, batches: [batch] }]))));
          assert.ok(again && again.length === 1, `a chunk read from ${body.toString('hex')} cannot be stored again`);
          assertSameSamples(again[0], batch);
        }
      }),
      fuzzParameters(3000),
    );
  });

  test("the compressor's grouped COPY output reads back each chunk with its group; cut, or read as ungrouped, it is refused", () => {
    const groupedRows = fc.array(fc.tuple(chunkRowArbitrary, fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 })), {
      minLength: 1,
      maxLength: 4,
    });
    fc.assert(
      fc.property(groupedRows, fc.nat(), (rows, cutAt) => {
        const stored = storedChunksOf(encodeCopyBinary(rows.map(([row]) => row))).map(({ minT, maxT, ...chunk }, i) => ({
          ...chunk,
          group: rows[i][1],
        }));
        const body = copyOutput(stored);
        assert.deepEqual(decodeCopyBinary(body, true), stored);
        assert.throws(() => decodeCopyBinary(body), isCorruptionError);
        assert.throws(() => decodeCopyBinary(body.subarray(0, cutAt % body.length), true), isCorruptionError);
      }),
      fuzzParameters(1000),
    );
  });

  test("the compressor's join reads chunks as each read alone, then joined; a chunk refused alone is refused with its lastSeq", () => {
    const damages = fc.constantFrom('none', 'compress', 'replace', 'cut a column', 'count');
    fc.assert(
      fc.property(
        fc.array(chunkRowArbitrary, { minLength: 1, maxLength: 4 }),
        damages,
        fc.nat(),
        fc.nat({ max: 255 }),
        (rows, damage, at, value) => {
          const channelCount = rows[0].batches[0].channelCount;
          const chunks: StoredChunk[] = storedChunksOf(
            encodeCopyBinary(rows.filter((row) => row.batches[0].channelCount === channelCount)),
          );
          const k = at % chunks.length;
          const { payload, sampleCount, layout, lastSeq } = chunks[k];
          if (damage === 'compress') {
            chunks[k] = { ...chunks[k], layout: 2, payload: compressBatch(batchFromPayload(payload, sampleCount, layout, lastSeq)) };
          } else if (damage === 'replace') {
            chunks[k] = { ...chunks[k], payload: Buffer.from(payload) };
            chunks[k].payload[at % payload.length] = value;
          } else if (damage === 'cut a column') {
            chunks[k] = { ...chunks[k], payload: payload.subarray(0, payload.length - sampleCount * 8) };
          } else if (damage === 'count') {
            chunks[k] = { ...chunks[k], sampleCount: value - 128 };
          }
          let alone: SampleBatch[] | null = null;
          try {
            alone = chunks.map((chunk) => batchFromPayload(chunk.payload, chunk.sampleCount, chunk.layout, chunk.lastSeq));
            if (alone.some((batch) => batch.channelCount !== channelCount)) alone = null;
          } catch (error) {
            assert.ok(isCorruptionError(error), String(error));
          }
          if (alone === null) {
            assert.throws(
              () => joinedChunks(chunks, channelCount),
              (error) => error instanceof CorruptChunkError && (error as { lastSeq?: number }).lastSeq === chunks[k].lastSeq,
            );
            return;
          }
          const expected = joined(alone);
          assertSameSamples(joinedChunks(chunks, channelCount), {
            count: expected.length / (channelCount + 2),
            channelCount,
            columns: expected,
          });
        },
      ),
      fuzzParameters(1000),
    );
  });

  test('a COPY output cut anywhere is refused as cut short, never read past its end', () => {
    const body = copyOutput(
      storedChunksOf(encodeCopyBinary([{ sessionId, batches: [new SampleBatch(2, 1, Float64Array.of(4, 6, 1.5, 2.5, -0, 7))] }])),
    );
    for (let length = 0; length < body.length; length++) {
      assert.throws(
        () => decodeCopyBinary(body.subarray(0, length)),
        (error) => isCorruptionError(error),
        `cut at ${length}`,
      );
    }
  });

  test('a payload length that is negative (NULL) or runs past the output is refused', () => {
    const chunk: StoredChunk = { lastSeq: 5, sampleCount: 1, layout: payloadLayouts.seqsImplied, payload: Buffer.alloc(16) };
    const body = copyOutput([chunk]);
    const lengthAt = body.length - 2 - chunk.payload.length - 4;
    for (const length of [-1, -34, 17, 2 ** 31 - 1]) {
      const corrupt = Buffer.from(body);
      corrupt.writeInt32BE(length, lengthAt);
      assert.throws(
        () => decodeCopyBinary(corrupt),
        (error) => isCorruptionError(error),
        `payload length ${length}`,
      );
    }
  });

  test('a payload that cannot be what was written is refused, not read into a batch of garbage', () => {
    const payload = (...values: number[]) => Buffer.from(Float64Array.from(values).buffer);
    const cases: Array<[Buffer, number, number, number]> = [
      [payload(1, 2, 3, 4), 2, 3, 2],
      [payload(1, 2, 3, 4), 2, payloadLayouts.seqsImplied, 0],
      [payload(2, 1, 3, 4, 5, 6), 2, payloadLayouts.withSeqs, 1],
      [payload(1, 2, 3, 4, 5, 6), 2, payloadLayouts.withSeqs, 7],
      [payload(0.5, 2, 3, 4, 5, 6), 2, payloadLayouts.withSeqs, 2],
      [payload(), 0, payloadLayouts.seqsImplied, 3],
      [payload(1, 2, 3), 2, payloadLayouts.seqsImplied, 3],
    ];
    for (const [bytes, count, layout, lastSeq] of cases) {
      assert.throws(
        () => batchFromPayload(bytes, count, layout as PayloadLayout, lastSeq),
        (error) => isCorruptionError(error),
        `${count} samples, layout ${layout}, last seq ${lastSeq}`,
      );
    }
  });
});
