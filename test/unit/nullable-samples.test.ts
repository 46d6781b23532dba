/**
 * Null values of a nullable session: taken from JSON `null` and a binary frame's NaN, held as
 * NaN, written back as null (JSON) and an empty field (CSV); refused from any other session.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { binaryFrameVersion, binaryHeaderBytes, decodeBinaryFrame, decodeTextFrame } from '../../src/ingest/frame-decoder.ts';
import type { SampleBatch } from '../../src/samples/sample-batch.ts';
import { jsonColumnKeys, samplesJson, writeCsvSamples } from '../../src/samples/sample-text.ts';
import { fuzzParameters } from '../support/fuzz.ts';

const channels = ['ax', 'ay'];
const nullable = { maxFrameBytes: 1 << 20, maxFrameSamples: 10_000, nullable: true };
const strict = { ...nullable, nullable: false };

function binaryFrame(columns: number[], n: number): Buffer {
  const frame = Buffer.alloc(binaryHeaderBytes + columns.length * 8);
  frame.writeUInt8(binaryFrameVersion, 0);
  frame.writeUInt16LE(channels.length, 2);
  frame.writeUInt32LE(n, 4);
  for (const [i, value] of columns.entries()) frame.writeDoubleLE(value, binaryHeaderBytes + i * 8);
  return frame;
}

function csvOf(batch: SampleBatch): string {
  const out = Buffer.alloc(4096);
  return out.subarray(0, writeCsvSamples(out, 0, batch)).toString();
}

describe('nullable sessions', () => {
  const frame = {
    samples: [
      { seq: 1, t: 5, ax: null, ay: 2.5 },
      { seq: 2, t: 6, ax: -1, ay: null },
    ],
  };

  test('a JSON null is taken, as a string frame or as bytes (the scanner leaves it to the general path)', () => {
    for (const data of [JSON.stringify(frame), Buffer.from(JSON.stringify(frame))]) {
      const decoded = decodeTextFrame(data, channels, nullable, 0);
      assert.ok(decoded.ok);
      assert.deepEqual([...decoded.batch.columns], [1, 2, 5, 6, Number.NaN, -1, 2.5, Number.NaN]);
      assert.equal(samplesJson(decoded.batch, jsonColumnKeys(channels)).toString(), JSON.stringify(frame.samples).slice(1, -1));
      assert.equal(csvOf(decoded.batch), '1,5,,2.5\n2,6,-1,\n');
    }
  });

  test('a session that is not nullable refuses a null, and no session takes a null seq or t', () => {
    for (const data of [JSON.stringify(frame), Buffer.from(JSON.stringify(frame))]) {
      const decoded = decodeTextFrame(data, channels, strict, 0);
      assert.equal(decoded.ok ? 'ok' : decoded.code, 'invalid_frame');
    }
    for (const sample of [
      { seq: null, t: 1, ax: 1, ay: 1 },
      { seq: 1, t: null, ax: 1, ay: 1 },
    ]) {
      const decoded = decodeTextFrame(JSON.stringify(sample), channels, nullable, 0);
      assert.equal(decoded.ok ? 'ok' : decoded.code, 'invalid_frame');
    }
  });

  test('a binary frame marks a null with NaN, any NaN; infinities and a NaN t stay refused', () => {
    const signalling = new Float64Array(new BigUint64Array([0x7ff0_0000_0000_0001n]).buffer)[0];
    const decoded = decodeBinaryFrame(binaryFrame([1, 2, 5, 6, Number.NaN, -1, 2.5, signalling], 2), 2, nullable);
    assert.ok(decoded.ok);
    assert.equal(csvOf(decoded.batch), '1,5,,2.5\n2,6,-1,\n');
    const codeOf = (columns: number[], rules = nullable) => {
      const result = decodeBinaryFrame(binaryFrame(columns, 1), 2, rules);
      return result.ok ? 'ok' : result.code;
    };
    assert.equal(codeOf([1, 5, Number.NaN, 0], strict), 'invalid_frame');
    assert.equal(codeOf([1, Number.NaN, 0, 0]), 'invalid_frame');
    assert.equal(codeOf([1, 5, Number.POSITIVE_INFINITY, 0]), 'invalid_frame');
    assert.equal(codeOf([1, 5, 0, Number.NEGATIVE_INFINITY]), 'invalid_frame');
  });

  test('any mix of numbers and nulls goes through JSON and back unchanged', () => {
    const value = fc.oneof(fc.constant(null), fc.double({ noNaN: true, noDefaultInfinity: true }));
    const samples = fc.array(fc.tuple(value, value), { minLength: 1, maxLength: 50 });
    fc.assert(
      fc.property(samples, (values) => {
        const sent = values.map(([ax, ay], i) => ({ seq: i, t: i * 10, ax, ay }));
        const decoded = decodeTextFrame(Buffer.from(JSON.stringify({ samples: sent })), channels, nullable, 0);
        assert.ok(decoded.ok);
        const back = JSON.parse(`[${samplesJson(decoded.batch, jsonColumnKeys(channels))}]`);
        // JSON has no -0: it reads back as 0, as JSON.stringify wrote it.
        assert.deepEqual(back, JSON.parse(JSON.stringify(sent)));
      }),
      fuzzParameters(2_000),
    );
  });
});
