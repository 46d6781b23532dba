/**
 * The Parquet export body (src/export/parquet-body.ts), read back by DuckDB, an independent
 * reader: the schema DESIGN fixes (CSV header names, seq INT64, t and channels DOUBLE,
 * channels OPTIONAL in a nullable session), every value bit for bit (Object.is: -0 and
 * subnormals included), row groups as they fill, and bytes handed on before the input ends.
 */
import assert from 'node:assert/strict';
import { type TestContext, test } from 'node:test';
import fc from 'fast-check';
import { encodeParquetBody, type ParquetHeader, rowsPerGroup } from '../../src/export/parquet-body.ts';
import { SampleBatch } from '../../src/samples/sample-batch.ts';
import { fuzzParameters } from '../support/fuzz.ts';
import { type ParquetContents, readParquetBytes, scratchFolder } from '../support/parquet-reader.ts';

/** Samples as rows: [seq, t, ...values], a NaN value being a null of a nullable session. */
type Row = number[];

function batchOf(rows: readonly Row[], channelCount: number): SampleBatch {
  const batch = SampleBatch.allocate(rows.length, channelCount);
  rows.forEach((row, i) => {
    for (let column = 0; column < channelCount + 2; column++) batch.columns[column * rows.length + i] = row[column];
  });
  return batch;
}

async function* batchesOf(rows: readonly Row[], sizes: readonly number[], channelCount: number): AsyncGenerator<SampleBatch> {
  let at = 0;
  for (let i = 0; at < rows.length; i++) {
    const size = Math.max(1, sizes[i % sizes.length]);
    yield batchOf(rows.slice(at, at + size), channelCount);
    at += size;
  }
}

async function bodyOf(header: ParquetHeader, batches: AsyncIterable<SampleBatch>, groupRows?: number): Promise<Buffer> {
  const pieces: Buffer[] = [];
  for await (const piece of encodeParquetBody(header, batches, groupRows)) pieces.push(piece);
  return Buffer.concat(pieces);
}

function header(channels: string[], nullable = false): ParquetHeader {
  return { sessionId: '6f1c2c1e-2f0a-4c39-9a43-2b1e1e0f9a10', channels, nullable };
}

/** Every column and value of `contents` is that of `rows`, bit for bit. */
function assertHolds(contents: ParquetContents, { channels, nullable }: ParquetHeader, rows: readonly Row[]): void {
  assert.deepEqual(contents.columns, [
    { name: 'seq', type: 'INT64', repetition: 'REQUIRED' },
    { name: 't', type: 'DOUBLE', repetition: 'REQUIRED' },
    ...channels.map((name) => ({ name, type: 'DOUBLE', repetition: nullable ? 'OPTIONAL' : 'REQUIRED' })),
  ]);
  assert.deepEqual(
    contents.values.map((column) => column.length),
    contents.columns.map(() => rows.length),
  );
  rows.forEach((row, i) => {
    assert.equal(contents.values[0][i], BigInt(row[0]), `seq of row ${i}`);
    for (let c = 1; c < row.length; c++) {
      const expected = Number.isNaN(row[c]) ? null : row[c];
      const actual = contents.values[c][i];
      assert.ok(Object.is(actual, expected), `row ${i}, ${contents.columns[c].name}: ${String(actual)}, expected ${expected}`);
    }
  });
}

async function roundTrip(t: TestContext, head: ParquetHeader, rows: Row[], sizes: number[], groupRows?: number) {
  const body = await bodyOf(head, batchesOf(rows, sizes, head.channels.length), groupRows);
  const contents = await readParquetBytes(await scratchFolder(t), body);
  assertHolds(contents, head, rows);
  return contents;
}

const awkward = [-0, 0, 5e-324, -5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, -1.7976931348623157e308, 1e21, 0.1, -1e-7];

test('awkward values, seqs up to 2^53-1 and many row groups read back exactly', async (t) => {
  const top = Number.MAX_SAFE_INTEGER;
  const rows = Array.from({ length: 100 }, (_, i) => [top - 99 + i, awkward[(i + 3) % awkward.length], awkward[i % awkward.length]]);
  const contents = await roundTrip(t, header(['x']), rows, [1, 3, 10, 2, 40], 7);
  assert.equal(contents.rowGroups, Math.ceil(100 / 7));
});

test('a nullable session has OPTIONAL channels whose NaNs read back as nulls, and -0 as -0', async (t) => {
  const rows = [
    [1, 10, Number.NaN, 1.5],
    [2, 11, -0.25, Number.NaN],
    [3, 12, Number.NaN, Number.NaN],
    [4, 13, -0, 5e-324],
  ];
  await roundTrip(t, header(['a', 'b'], true), rows, [3], 2);
});

test('an empty session is a file with the columns and no rows; one sample is one row group', async (t) => {
  const empty = await roundTrip(t, header(['ax', 'ay', 'az']), [], [1]);
  assert.equal(empty.rowGroups, 0);
  const one = await roundTrip(t, header(['ax']), [[1, 1.7e12, -0]], [1]);
  assert.equal(one.rowGroups, 1);
});

test('each full row group is handed on before the next batch is read', async () => {
  let pulled = 0;
  async function* counted(): AsyncGenerator<SampleBatch> {
    for (let i = 0; i < 10; i++) {
      pulled++;
      yield batchOf([[i, i, i]], 1);
    }
  }
  const pulledAtPiece: number[] = [];
  for await (const _ of encodeParquetBody(header(['x']), counted(), 2)) pulledAtPiece.push(pulled);
  // Pieces after batches 2, 4, 6, 8 and 10 (the first with the leading magic bytes), then the footer.
  assert.deepEqual(pulledAtPiece, [2, 4, 6, 8, 10, 10]);
});

test('row groups hold about 8 MiB of values, between 4,096 and 122,880 rows', () => {
  assert.equal(rowsPerGroup(3), 122_880);
  assert.equal(rowsPerGroup(62), 16_384);
  assert.equal(rowsPerGroup(1024), 4_096);
});

const finite = fc.double({ noNaN: true, noDefaultInfinity: true });

test('any samples, channels and row group size read back exactly (differential against the rows sent)', async (t) => {
  const folder = await scratchFolder(t);
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 1, max: 4 }),
      fc.boolean(),
      fc.integer({ min: 1, max: 9 }),
      fc.array(fc.integer({ min: 1, max: 12 }), { minLength: 1, maxLength: 4 }),
      fc.uniqueArray(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), { maxLength: 40 }),
      fc.infiniteStream(fc.oneof(finite, fc.constantFrom(...awkward), fc.constant(Number.NaN))),
      async (channelCount, nullable, groupRows, sizes, seqs, values) => {
        const head = header(
          Array.from({ length: channelCount }, (_, c) => `c${c}`),
          nullable,
        );
        const rows = seqs
          .sort((a, b) => a - b)
          .map((seq) => {
            const row = [seq, values.next().value as number];
            if (Number.isNaN(row[1])) row[1] = -0;
            for (let c = 0; c < channelCount; c++) {
              const value = values.next().value as number;
              row.push(Number.isNaN(value) && !nullable ? 0 : value);
            }
            return row;
          });
        const contents = await readParquetBytes(folder, await bodyOf(head, batchesOf(rows, sizes, channelCount), groupRows));
        assertHolds(contents, head, rows);
        assert.equal(contents.rowGroups, Math.ceil(rows.length / groupRows));
      },
    ),
    fuzzParameters(60),
  );
});
