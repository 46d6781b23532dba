/**
 * The NDJSON and CSV bodies of HTTP ingest, checked differentially against a reference: a
 * plain restatement of the body rules (docs/protocol.md, HTTP ingest) that turns the body into
 * the text of a JSON frame, `{"samples":[...]}`, and hands it to the socket's general frame
 * decoder. For any bytes, structured, mutated or random, both must accept with bit-identical
 * batches, or both refuse with the same code; neither may throw.
 */
import assert from 'node:assert/strict';
import { isUtf8 } from 'node:buffer';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { type DecodedFrame, decodeTextFrame, type FrameLimits } from '../../src/ingest/frame-decoder.ts';
import { decodeCsvBody, decodeNdjsonBody } from '../../src/ingest/sample-bodies.ts';
import { fuzzParameters } from '../support/fuzz.ts';

const receivedAtMs = 1234.5;
const channelSets: readonly (readonly string[])[] = [['ax', 'ay', 'az'], ['a'], ['__proto__', 'constructor', 't.1']];
const refused = (code: 'invalid_frame' | 'wrong_channels' | 'frame_too_large'): DecodedFrame => ({ ok: false, code, message: '' });

function linesOf(body: Buffer): string[] {
  return body
    .toString('utf8')
    .split(/\r?\n/)
    .filter((line) => !/^[ \t\r]*$/.test(line));
}

/** The socket's decoder on `{"samples":[...]}` of these sample texts, with no byte limit (the body's was checked). */
function asFrame(sampleTexts: string[], channels: readonly string[], limits: FrameLimits): DecodedFrame {
  return decodeTextFrame(`{"samples":[${sampleTexts.join(',')}]}`, channels, { ...limits, maxFrameBytes: Infinity }, receivedAtMs);
}

function referenceNdjson(body: Buffer, channels: readonly string[], limits: FrameLimits): DecodedFrame {
  if (body.length > limits.maxFrameBytes) return refused('frame_too_large');
  if (!isUtf8(body)) return refused('invalid_frame');
  const lines = linesOf(body);
  if (lines.length > limits.maxFrameSamples) return refused('frame_too_large');
  for (const line of lines) {
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      return refused('invalid_frame');
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return refused('invalid_frame');
  }
  return asFrame(lines, channels, limits);
}

function referenceCsv(body: Buffer, channels: readonly string[], limits: FrameLimits): DecodedFrame {
  if (body.length > limits.maxFrameBytes) return refused('frame_too_large');
  if (!isUtf8(body)) return refused('invalid_frame');
  const [header, ...rows] = linesOf(body);
  if (header === undefined) return refused('invalid_frame');
  if (rows.length > limits.maxFrameSamples) return refused('frame_too_large');
  const columns = header.split(',');
  if (new Set(columns).size !== columns.length || header.includes('"')) return refused('invalid_frame');
  const named = columns.filter((name) => name !== 'seq' && name !== 't').sort();
  if (JSON.stringify(named) !== JSON.stringify([...channels].sort())) return refused('wrong_channels');
  const texts: string[] = [];
  for (const row of rows) {
    const fields = row.split(',');
    if (fields.length !== columns.length) return refused('invalid_frame');
    // An empty value field is a null (refused by the sample rules unless the session is nullable).
    const isNull = (field: string, i: number) => field === '' && columns[i] !== 'seq' && columns[i] !== 't';
    if (fields.some((field, i) => !isNull(field, i) && !/^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?$/.test(field)))
      return refused('invalid_frame');
    const values = fields.map((field, i) => (isNull(field, i) ? 'null' : field));
    texts.push(`{${columns.map((name, i) => `${JSON.stringify(name)}:${values[i]}`).join(',')}}`);
  }
  return asFrame(texts, channels, limits);
}

function assertSameOutcome(actual: DecodedFrame, expected: DecodedFrame, body: Buffer): void {
  const shown = JSON.stringify(body.toString('latin1'));
  assert.equal(actual.ok ? 'accepted' : actual.code, expected.ok ? 'accepted' : expected.code, shown);
  if (!actual.ok || !expected.ok) return;
  assert.equal(actual.hasSeq, expected.hasSeq, shown);
  assert.equal(actual.batch.count, expected.batch.count, shown);
  // Bit for bit, so that -0 and 0 differ.
  const bytes = (decoded: typeof actual) =>
    Buffer.from(decoded.batch.columns.buffer, decoded.batch.columns.byteOffset, decoded.batch.columns.byteLength);
  assert.deepEqual(bytes(actual), bytes(expected), shown);
}

const numberText = fc.oneof(
  { weight: 6, arbitrary: fc.double({ noNaN: true, noDefaultInfinity: true }).map((v) => (Object.is(v, -0) ? '-0' : String(v))) },
  { weight: 3, arbitrary: fc.nat({ max: 40 }).map(String) },
  { weight: 1, arbitrary: fc.constantFrom('1e400', 'NaN', '01', '+1', ' 1', '1.', '.5', '', '"1"', 'null', '1e+21', '-0', '0x10') },
);

/** A body's samples as rows of [column, value text], seqs mostly increasing, with a few faults. */
const rowsOf = (channels: readonly string[]) =>
  fc
    .tuple(
      fc.boolean(),
      fc.boolean(),
      fc.array(fc.tuple(fc.nat({ max: 3 }), fc.array(numberText, { minLength: channels.length + 2, maxLength: channels.length + 2 })), {
        maxLength: 12,
      }),
    )
    .map(([withSeq, withT, rows]) => {
      let seq = 0;
      const columns = [...(withSeq ? ['seq'] : []), ...(withT ? ['t'] : []), ...channels];
      return {
        columns,
        rows: rows.map(([step, values]) => {
          seq += step;
          return columns.map((name, i) => [name, name === 'seq' && values[i] !== '' && step !== 3 ? String(seq) : values[i]] as const);
        }),
      };
    });

const lineEnd = fc.constantFrom('\n', '\n', '\r\n', '\n\n', '\n \t\n');

/** Byte-level mutations: a byte replaced, inserted or removed, or the body cut short. */
function mutated(body: fc.Arbitrary<Buffer>): fc.Arbitrary<Buffer> {
  return fc
    .tuple(
      body,
      fc.array(
        fc.tuple(fc.constantFrom('set', 'insert', 'delete', 'cut'), fc.nat(), fc.constantFrom(...Buffer.from(',\n\r"{}:-.e0 9\u00ff'))),
        { maxLength: 3 },
      ),
    )
    .map(([bytes, edits]) => {
      let out = Buffer.from(bytes);
      for (const [edit, at, byte] of edits) {
        const i = out.length === 0 ? 0 : at % out.length;
        if (edit === 'set' && out.length > 0) out[i] = byte;
        else if (edit === 'insert') out = Buffer.concat([out.subarray(0, i), Buffer.from([byte]), out.subarray(i)]);
        else if (edit === 'delete') out = Buffer.concat([out.subarray(0, i), out.subarray(i + 1)]);
        else if (edit === 'cut') out = out.subarray(0, i);
      }
      return out;
    });
}

const limitsArb = fc.record({ maxFrameBytes: fc.constantFrom(64, 4096, 1 << 20), maxFrameSamples: fc.constantFrom(1, 5, 10_000) });
const channelsArb = fc.constantFrom(...channelSets);
const randomBytes = fc.oneof(
  fc.uint8Array({ maxLength: 200 }).map((bytes) => Buffer.from(bytes)),
  fc.string({ unit: fc.constantFrom(...'seqtaxyz_01-9.e,"{}:\n\r '), maxLength: 200 }).map((text) => Buffer.from(text)),
);

describe('HTTP ingest bodies against the reference', () => {
  test('NDJSON: structured, mutated and random bodies', () => {
    const structured = channelsArb.chain((channels) =>
      fc
        .tuple(fc.constant(channels), rowsOf(channels), fc.array(lineEnd, { minLength: 13, maxLength: 13 }))
        .map(([, { rows }, ends]) =>
          Buffer.from(rows.map((row, i) => `{${row.map(([name, value]) => `"${name}":${value}`).join(',')}}${ends[i]}`).join('')),
        )
        .map((body) => ({ channels, body })),
    );
    const bodies = fc.oneof(
      structured,
      fc.tuple(channelsArb, mutated(structured.map(({ body }) => body))).map(([channels, body]) => ({ channels, body })),
      fc.tuple(channelsArb, randomBytes).map(([channels, body]) => ({ channels, body })),
    );
    fc.assert(
      fc.property(bodies, limitsArb, ({ channels, body }, limits) => {
        assertSameOutcome(decodeNdjsonBody(body, channels, limits, receivedAtMs), referenceNdjson(body, channels, limits), body);
      }),
      fuzzParameters(400),
    );
  });

  test('CSV: structured, mutated and random bodies', () => {
    const structured = channelsArb.chain((channels) =>
      fc
        .tuple(rowsOf(channels), fc.array(lineEnd, { minLength: 13, maxLength: 13 }), fc.boolean())
        .map(([{ columns, rows }, ends, shuffle]) => {
          const order = shuffle ? [...columns].reverse() : columns;
          const header = order.join(',');
          const lines = rows.map((row) => order.map((name) => row.find(([column]) => column === name)![1]).join(','));
          return { channels, body: Buffer.from([header, ...lines].map((line, i) => line + ends[i]).join('')) };
        }),
    );
    const bodies = fc.oneof(
      structured,
      structured.chain(({ channels, body }) => mutated(fc.constant(body)).map((mutatedBody) => ({ channels, body: mutatedBody }))),
      fc.tuple(channelsArb, randomBytes).map(([channels, body]) => ({ channels, body })),
    );
    fc.assert(
      fc.property(bodies, limitsArb, ({ channels, body }, limits) => {
        assertSameOutcome(decodeCsvBody(body, channels, limits, receivedAtMs), referenceCsv(body, channels, limits), body);
      }),
      fuzzParameters(400),
    );
  });

  test('a well-formed body of valid samples is accepted by both, as the same batch', () => {
    const valid = channelsArb.chain((channels) =>
      fc
        .array(
          fc.array(fc.double({ noNaN: true, noDefaultInfinity: true }), { minLength: channels.length + 1, maxLength: channels.length + 1 }),
          { maxLength: 20 },
        )
        .map((rows) => ({ channels, rows: rows.map((values, i) => [i * 2, ...values]) })),
    );
    const text = (v: number) => (Object.is(v, -0) ? '-0' : String(v));
    fc.assert(
      fc.property(valid, ({ channels, rows }) => {
        const limits = { maxFrameBytes: 1 << 20, maxFrameSamples: 10_000 };
        const columns = ['seq', 't', ...channels];
        const csv = Buffer.from(`${columns.join(',')}\n${rows.map((row) => row.map(text).join(',')).join('\n')}`);
        const ndjson = Buffer.from(rows.map((row) => `{${columns.map((name, i) => `"${name}":${text(row[i])}`).join(',')}}`).join('\n'));
        const fromCsv = decodeCsvBody(csv, channels, limits, receivedAtMs);
        assert.ok(fromCsv.ok, csv.toString());
        assertSameOutcome(fromCsv, referenceCsv(csv, channels, limits), csv);
        assertSameOutcome(decodeNdjsonBody(ndjson, channels, limits, receivedAtMs), fromCsv, ndjson);
      }),
      fuzzParameters(200),
    );
  });
});
