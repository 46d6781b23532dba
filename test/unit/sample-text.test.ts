import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SampleBatch } from '../../src/samples/sample-batch.ts';
import {
  jsonColumnKeys,
  maxCsvSamplesBytes,
  maxJsonSamplesBytes,
  samplesJson,
  writeCsvSamples,
  writeJsonSamples,
} from '../../src/samples/sample-text.ts';

const awkward = [0.1, 0.1 + 0.2, 5e-324, -5e-324, 1.7976931348623157e308, -0, 123456789.12345679, 1e21, 1e-7, -1.2345678901234567e-6];

/** Number::toString, -0 kept as "-0": the text every encoding must carry. */
const text = (value: number) => (Object.is(value, -0) ? '-0' : String(value));

function samplesToJson(batch: SampleBatch, channels: string[], separator = ','): string {
  const keys = jsonColumnKeys(channels);
  if (separator === ',') return samplesJson(batch, keys).toString('latin1');
  const out = Buffer.alloc(maxJsonSamplesBytes(batch, keys));
  return out.toString('latin1', 0, writeJsonSamples(out, 0, batch, keys, separator.charCodeAt(0)));
}

function samplesToCsv(batch: SampleBatch): string {
  const out = Buffer.alloc(maxCsvSamplesBytes(batch));
  return out.toString('latin1', 0, writeCsvSamples(out, 0, batch));
}

function batchOf(rows: number[][]): SampleBatch {
  const batch = SampleBatch.allocate(rows.length, rows[0].length - 2);
  rows.forEach((row, i) => {
    row.forEach((value, column) => {
      batch.columns[column * rows.length + i] = value;
    });
  });
  return batch;
}

test('JSON and CSV encodings carry every value exactly', () => {
  const rows = awkward.map((value, i) => [i + 1, 1732345678901.25 + i, value, -value]);
  const batch = batchOf(rows);
  const parsed = JSON.parse(`[${samplesToJson(batch, ['x', 'y'])}]`) as Array<Record<string, number>>;
  parsed.forEach((sample, i) => {
    assert.deepEqual(Object.keys(sample), ['seq', 't', 'x', 'y']);
    for (const [k, key] of ['seq', 't', 'x', 'y'].entries()) assert.ok(Object.is(sample[key], rows[i][k]));
  });
  const lines = samplesToCsv(batch).split('\n');
  assert.equal(lines.pop(), '');
  lines.forEach((line, i) => {
    line.split(',').forEach((field, k) => {
      assert.ok(Object.is(Number(field), rows[i][k]));
    });
  });
});

test('the encodings write each number as Number::toString does, -0 as "-0", in the layout of the contract', () => {
  const rows = awkward.map((value, i) => [i + 1, 1732345678901.25 + i, value, -value]);
  const batch = batchOf(rows);
  const json = rows.map(([seq, t, x, y]) => `{"seq":${text(seq)},"t":${text(t)},"x":${text(x)},"y":${text(y)}}`);
  assert.equal(samplesToJson(batch, ['x', 'y']), json.join(','));
  assert.equal(samplesToJson(batch, ['x', 'y'], '\n'), json.join('\n'));
  assert.equal(samplesToCsv(batch), rows.map((row) => `${row.map(text).join(',')}\n`).join(''));
});

test('a seq of -0, which the decoders accept, is written as 0 while a value of -0 keeps its sign', () => {
  const batch = batchOf([[-0, -0, -0]]);
  assert.equal(samplesToJson(batch, ['x']), '{"seq":0,"t":-0,"x":-0}');
  assert.equal(samplesToCsv(batch), '0,-0,-0\n');
});

test('the byte writers stay within the room they ask for, however long the numbers are', () => {
  // Every number at its longest text (25 bytes): the bound must still hold.
  const longest = -1.2345678901234567e-6;
  const batch = batchOf([[longest, longest, longest, longest]]);
  const keys = jsonColumnKeys(['x', 'y']);
  const jsonRoom = maxJsonSamplesBytes(batch, keys);
  const out = Buffer.alloc(jsonRoom + 10, 0x21);
  const jsonEnd = writeJsonSamples(out, 5, batch, keys, 0x2c);
  assert.ok(jsonEnd <= 5 + jsonRoom && out[jsonEnd] === 0x21);
  assert.equal(out.toString('latin1', 5, jsonEnd), `{"seq":${longest},"t":${longest},"x":${longest},"y":${longest}}`);
  const csvRoom = maxCsvSamplesBytes(batch);
  const csvEnd = writeCsvSamples(out.fill(0x21), 5, batch);
  assert.ok(csvEnd <= 5 + csvRoom && out[csvEnd] === 0x21);
});

test('batches slice and select seq ranges', () => {
  const a = batchOf([
    [1, 10, 100],
    [2, 20, 200],
    [5, 50, 500],
  ]);
  assert.deepEqual([...a.range(2, 5).columns], [2, 5, 20, 50, 200, 500]);
  assert.equal(a.range(0, 100), a);
  assert.equal(a.range(3, 4).count, 0);
  assert.equal(a.indexAfterSeq(2), 2);
});
