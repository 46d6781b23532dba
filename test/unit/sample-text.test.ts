import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SampleBatch } from '../../src/sessions/sample-batch.ts';
import { formatNumber, jsonKeyPrefixes, samplesToCsv, samplesToJson } from '../../src/sessions/sample-text.ts';

const awkward = [0.1, 0.1 + 0.2, 5e-324, -5e-324, 1.7976931348623157e308, -0, 123456789.12345679, 1e21, 1e-7];

test('numbers are written in the shortest form that parses back to the same float64, -0 included', () => {
  for (const value of awkward) {
    const text = formatNumber(value);
    assert.ok(Object.is(Number(text), value), text);
    assert.ok(Object.is(JSON.parse(text), value), text);
  }
  assert.equal(formatNumber(0.1), '0.1');
  assert.equal(formatNumber(-0), '-0');
});

function batchOf(rows: number[][]): SampleBatch {
  const batch = SampleBatch.allocate(rows.length, rows[0].length - 2);
  rows.forEach((row, i) => row.forEach((value, column) => (batch.columns[column * rows.length + i] = value)));
  return batch;
}

test('JSON and CSV encodings carry every value exactly', () => {
  const rows = awkward.map((value, i) => [i + 1, 1732345678901.25 + i, value, -value]);
  const batch = batchOf(rows);
  const parsed = JSON.parse(`[${samplesToJson(batch, jsonKeyPrefixes(['x', 'y']))}]`) as Array<Record<string, number>>;
  parsed.forEach((sample, i) => {
    assert.deepEqual(Object.keys(sample), ['seq', 't', 'x', 'y']);
    for (const [k, key] of ['seq', 't', 'x', 'y'].entries()) assert.ok(Object.is(sample[key], rows[i][k]));
  });
  const lines = samplesToCsv(batch).split('\n');
  assert.equal(lines.pop(), '');
  lines.forEach((line, i) => line.split(',').forEach((field, k) => assert.ok(Object.is(Number(field), rows[i][k]))));
});

test('batches slice, select seq ranges and concatenate column-wise', () => {
  const a = batchOf([[1, 10, 100], [2, 20, 200], [5, 50, 500]]);
  const b = batchOf([[7, 70, 700]]);
  assert.deepEqual([...a.range(2, 5).columns], [2, 5, 20, 50, 200, 500]);
  assert.equal(a.range(0, 100), a);
  assert.equal(a.range(3, 4).count, 0);
  assert.equal(a.indexAfterSeq(2), 2);
  assert.deepEqual([...SampleBatch.concat([a, b]).columns], [1, 2, 5, 7, 10, 20, 50, 70, 100, 200, 500, 700]);
});
