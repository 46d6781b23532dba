/**
 * The JSON frame scanner checked differentially against the general decoder. The server
 * hands decodeTextFrame the socket's Buffer, which tries the scanner first; the reference is
 * the same frame as the text `buffer.toString('utf8')`, which never takes the scanner and is
 * JSON.parse of exactly what the server would parse. For any bytes both must accept with
 * bit-identical batches, or both refuse with the same code. Bytes that are not UTF-8 are part
 * of "any bytes": the text holds U+FFFD for them, as the server's would, and the scanner,
 * which reads only ASCII structure, must decline such a frame or read it the same way.
 */
import assert from 'node:assert/strict';
import { isUtf8 } from 'node:buffer';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { type DecodedFrame, decodeTextFrame, type FrameLimits } from '../../src/ingest/frame-decoder.ts';
import { scanJsonFrame } from '../../src/ingest/json-frame-scanner.ts';
import { SampleBatch } from '../../src/samples/sample-batch.ts';
import { fuzzParameters } from '../support/fuzz.ts';

const receivedAtMs = 1234.5;
/** Channel sets with names a scanner could confuse: prefixes of other keys, Object.prototype's own names. */
const channelSets: readonly (readonly string[])[] = [
  ['ax', 'ay', 'az'],
  ['a'],
  ['constructor', '__proto__', 'toString'],
  ['s', 'samples', 'seq2', 't.1', 'T-2'],
];

function bytesOf(batch: SampleBatch): Buffer {
  return Buffer.from(batch.columns.buffer, batch.columns.byteOffset, batch.columns.byteLength);
}

/**
 * Batch memory full of NaNs left by an earlier frame, at an odd place in a larger buffer, as
 * a producer's slab hands it out: a value the decoder leaves unwritten shows as a difference.
 */
function dirtyAllocate(count: number, channelCount: number): SampleBatch {
  const values = count * (channelCount + 2);
  const memory = new Float64Array(values + 3).fill(Number.NaN);
  return new SampleBatch(count, channelCount, memory.subarray(2, 2 + values));
}

function outcomeOf(decoded: DecodedFrame): string {
  return decoded.ok ? 'accepted' : decoded.code;
}

function assertSameBatch(
  actual: { batch: SampleBatch; hasSeq: boolean },
  expected: { batch: SampleBatch; hasSeq: boolean },
  frame: Buffer,
): void {
  assert.equal(actual.hasSeq, expected.hasSeq, `hasSeq of ${frame.toString('latin1')}`);
  assert.equal(actual.batch.count, expected.batch.count, `count of ${frame.toString('latin1')}`);
  assert.equal(actual.batch.channelCount, expected.batch.channelCount);
  // Bit for bit, so that -0 and 0 differ.
  assert.deepEqual(bytesOf(actual.batch), bytesOf(expected.batch), `values of ${frame.toString('latin1')}`);
}

/**
 * The samples text forwarded to viewers must be UTF-8 (a WebSocket text frame is) and hold
 * exactly the accepted samples, as any JSON parser reads it inside the live frame.
 */
function assertForwardable(samplesText: Buffer, batch: SampleBatch, channels: readonly string[], limits: FrameLimits, frame: Buffer): void {
  assert.ok(isUtf8(samplesText), `samples text of ${frame.toString('latin1')} is not UTF-8`);
  const echoed = decodeTextFrame(`{"samples":${samplesText.toString('utf8')}}`, channels, limits, receivedAtMs);
  assert.ok(echoed.ok, `samples text ${samplesText.toString('latin1')} of ${frame.toString('latin1')} does not decode`);
  assert.deepEqual(bytesOf(echoed.batch), bytesOf(batch), `samples text of ${frame.toString('latin1')}`);
}

/** The property: what the server decides for `frame` is what JSON.parse of its UTF-8 text gives. */
function assertDecodesLikeJsonParse(frame: Buffer, channels: readonly string[], maxFrameSamples: number): void {
  // Far above any frame generated: the byte limit counts a Buffer's bytes but a string's UTF-16 units.
  const limits = { maxFrameBytes: 1024 * 1024, maxFrameSamples };
  const fromBytes = decodeTextFrame(frame, channels, limits, receivedAtMs, dirtyAllocate);
  const reference = decodeTextFrame(frame.toString('utf8'), channels, limits, receivedAtMs);
  assert.equal(outcomeOf(fromBytes), outcomeOf(reference), frame.toString('latin1'));
  if (fromBytes.ok && reference.ok) {
    assertSameBatch(fromBytes, reference, frame);
    if (fromBytes.samplesText) assertForwardable(fromBytes.samplesText, fromBytes.batch, channels, limits, frame);
  }
  const scanned = scanJsonFrame(frame, channels, maxFrameSamples, receivedAtMs, dirtyAllocate);
  if (scanned) {
    assert.ok(reference.ok, `the scanner accepts what the general decoder refuses: ${frame.toString('latin1')}`);
    assertSameBatch(scanned, reference, frame);
    assertForwardable(scanned.samplesText, scanned.batch, channels, limits, frame);
  }
}

const digitRun = (minLength: number, maxLength: number) => fc.string({ unit: fc.constantFrom(...'0123456789'), minLength, maxLength });
const leadingDigit = fc.constantFrom(...'123456789');

/** Numbers by the JSON grammar: sign, integer part without leading zeros, fraction and exponent of any length. */
const grammarNumber = fc
  .tuple(
    fc.constantFrom('', '', '-'),
    fc.oneof(
      fc.constant('0'),
      fc.tuple(leadingDigit, fc.oneof(digitRun(0, 3), digitRun(0, 25))).map(([first, rest]) => first + rest),
    ),
    fc.oneof(
      fc.constant(''),
      fc.oneof(digitRun(1, 3), digitRun(1, 25)).map((digits) => `.${digits}`),
    ),
    fc.oneof(
      fc.constant(''),
      fc
        .tuple(fc.constantFrom('e', 'E'), fc.constantFrom('', '-', '+'), fc.oneof(digitRun(1, 3), digitRun(20, 40)))
        .map((parts) => parts.join('')),
    ),
  )
  .map((parts) => parts.join(''));

/** Near misses of the grammar: leading zeros, `.5`, `5.`, `+1`, bare exponents, doubled signs. */
const nearGrammarNumber = fc
  .tuple(
    fc.constantFrom('', '-', '+', '--'),
    fc.oneof(
      fc.constant(''),
      digitRun(1, 3),
      fc.constant('0'),
      digitRun(1, 3).map((digits) => `0${digits}`),
    ),
    fc.constantFrom('', '.', '.5', '.05'),
    fc.constantFrom('', 'e', 'E+', 'e-', 'e--1', 'e1'),
  )
  .map((parts) => parts.join(''));

// biome-ignore format: a packed list of cases reads better than one a line
const edgeNumber = fc.constantFrom(
  '-0', '-0.0', '0e0', '-0e-5', '1e-400', '-1e-400', '9007199254740991', '9007199254740992', '9007199254740993',
  '0.1', '0.30000000000000004', '1.7976931348623157e308', '5e-324', '2.4703282292062327e-324', '2.4703282292062328e-324',
  '12345678901234567', '0.12345678901234567', '1e22', '1e23', '1E+22', '1e-22', '1e-23', '123456789012345e-22',
  '123456789012345e22', '1234567890123456e-7', '1e0000000000000000000000000001', '1e-99999999999999999999',
  '1.0000000000000000000000000000001',
);
// biome-ignore format: a packed list of cases reads better than one a line
const badNumber = fc.constantFrom(
  '1e400', '-1e400', '1.7976931348623159e308', '1e99999999999999999999', '01', '-01', '00', '.5', '5.', '+1', '1e', '1e+', '1.e5',
  '0x10', 'Infinity', 'NaN', 'null', 'true', '"1"', '[1]', '{}', '1_000', '\u0661', '',
);

const shortestNumber = fc.double({ noNaN: true, noDefaultInfinity: true }).map((value) => JSON.stringify(value));
const validNumber = fc.oneof(
  { weight: 3, arbitrary: shortestNumber },
  { weight: 2, arbitrary: grammarNumber },
  { weight: 1, arbitrary: edgeNumber },
);
const anyNumber = fc.oneof(
  { weight: 4, arbitrary: validNumber },
  { weight: 1, arbitrary: nearGrammarNumber },
  { weight: 1, arbitrary: badNumber },
);

/** JSON's four whitespace characters, mostly none; and, when asked for, some that JSON does not take. */
const jsonSpace = fc.constantFrom('', '', '', '', '', ' ', '\n', '\r', '\t', ' \t\r\n ');
const anySpace = fc.oneof(
  { weight: 4, arbitrary: jsonSpace },
  { weight: 1, arbitrary: fc.constantFrom('\f', '\v', '\u00a0', '\u2028', '\ufeff') },
);

/** `arbitrary` one time in `odds`, else null. */
const rarely = <T>(odds: number, arbitrary: fc.Arbitrary<T>) =>
  fc.oneof({ weight: odds - 1, arbitrary: fc.constant(null) }, { weight: 1, arbitrary });

/** A key's JSON text: plain, or, when keys may be odd, sometimes with a character written as a \u escape. */
const keyText = (key: string, faults: Faults) =>
  fc.oneof(
    { weight: 3, arbitrary: fc.constant(`"${key}"`) },
    {
      weight: faults.keys ? 1 : 0,
      arbitrary: fc.tuple(fc.nat(), fc.boolean()).map(([at, upper]) => {
        const i = at % key.length;
        const hex = key.charCodeAt(i).toString(16).padStart(4, '0');
        return `"${key.slice(0, i)}\\u${upper ? hex.toUpperCase() : hex}${key.slice(i + 1)}"`;
      }),
    },
  );

/** Values a repeated key may hold before the key's real value wins: brackets, strings, non-ASCII. */
const junkValue = fc.constantFrom('"["', '"]"', '[1]', '{"a":[2]}', 'null', '"\\u005b"', '"\u00e9"', '1', '"x"');

interface Entry {
  key: string;
  value: string;
}

function joinWith(spaces: readonly string[], tokens: readonly string[]): string {
  let text = spaces[0] ?? '';
  tokens.forEach((token, i) => {
    text += token + (spaces[(i + 1) % Math.max(spaces.length, 1)] ?? '');
  });
  return text;
}

function objectText(entries: readonly Entry[], spaces: readonly string[]): string {
  const tokens = ['{'];
  entries.forEach(({ key, value }, i) => {
    tokens.push(...(i > 0 ? [','] : []), key, ':', value);
  });
  tokens.push('}');
  return joinWith(spaces, tokens);
}

/** Which parts of a frame may break the rules; each off, most of the frames generated are valid. */
interface Faults {
  /** A key before the frame's own, repeated or unknown. */
  top: boolean;
  spaces: boolean;
  numbers: boolean;
  keys: boolean;
  seqs: boolean;
}

/** Each fault in about one frame of four, so that about a quarter of the frames break no rule. */
const sometimes = fc.constantFrom(true, false, false, false);
const faultsArbitrary: fc.Arbitrary<Faults> = fc.record({
  top: sometimes,
  spaces: sometimes,
  numbers: sometimes,
  keys: sometimes,
  seqs: sometimes,
});

/** One sample for `channels`, rendered once the frame gives it its seq text (null: no seq). */
function sampleArbitrary(channels: readonly string[], faults: Faults) {
  const number = faults.numbers ? anyNumber : validNumber;
  const fault = <T>(arbitrary: fc.Arbitrary<T>) => (faults.keys ? rarely(3, arbitrary) : fc.constant(null));
  return fc
    .record({
      t: fc.option(number, { freq: 4 }),
      values: fc.tuple(...channels.map(() => number)),
      keys: fc.tuple(keyText('seq', faults), keyText('t', faults), ...channels.map((channel) => keyText(channel, faults))),
      dropped: fault(fc.nat()),
      extra: fault(
        fc.record({
          key: fc.constantFrom('"bx"', '"AX"', '"ax "', '"seq"', '"t"', `"${channels[0]}"`, '""'),
          value: fc.oneof(number, junkValue),
        }),
      ),
      // Valid JSON (JSON.parse keeps a repeated key's last value), which the scanner declines.
      repeated: fault(fc.record({ at: fc.nat(), value: fc.oneof(junkValue, number) })),
      order: fc.array(fc.integer(), { minLength: channels.length + 3, maxLength: channels.length + 3 }),
      spaces: fc.array(faults.spaces ? anySpace : jsonSpace, { maxLength: 4 }),
    })
    .map(({ t, values, keys, dropped, extra, repeated, order, spaces }) => (seq: string | null) => {
      let entries: Entry[] = channels.map((_, c) => ({ key: keys[c + 2], value: values[c] }));
      if (t !== null) entries.push({ key: keys[1], value: t });
      if (seq !== null) entries.push({ key: keys[0], value: seq });
      if (dropped !== null) entries.splice(dropped % entries.length, 1);
      if (extra !== null) entries.push(extra);
      const rank = new Map(entries.map((entry, i) => [entry, order[i % order.length]]));
      entries = entries.sort((a, b) => rank.get(a)! - rank.get(b)!);
      if (repeated !== null && entries.length > 0) {
        const at = repeated.at % entries.length;
        entries.splice(at, 0, { key: entries[at].key, value: repeated.value });
      }
      return objectText(entries, spaces);
    });
}

/** Seqs for `count` samples: rising integers, or, when seqs may break the rules, any mix. */
function seqsArbitrary(count: number, faults: Faults): fc.Arbitrary<(string | null)[]> {
  const rising = fc
    .tuple(
      fc.oneof(fc.nat({ max: 1000 }), fc.constant(2 ** 53 - 1 - count)),
      fc.array(fc.integer({ min: 1, max: 3 }), { minLength: count, maxLength: count }),
    )
    .map(([start, steps]) => steps.map((_, i) => String(start + steps.slice(0, i).reduce((sum, step) => sum + step, 0))));
  const seqs = fc.oneof(rising, fc.constant(Array.from({ length: count }, () => null)));
  if (!faults.seqs) return seqs;
  const anySeq = fc.oneof(
    { weight: 1, arbitrary: fc.constant(null) },
    {
      weight: 5,
      arbitrary: fc.oneof(fc.nat({ max: 5 }).map(String), fc.constantFrom('1.0', '1e1', '-0', '-1', '1.5', '9007199254740992'), anyNumber),
    },
  );
  return fc.oneof(seqs, fc.array(anySeq, { minLength: count, maxLength: count }));
}

/** A frame of one of the three shapes (or none) for `channels`. */
function frameArbitrary(channels: readonly string[]) {
  return faultsArbitrary.chain((faults) => {
    const sample = sampleArbitrary(channels, faults);
    const space = faults.spaces ? anySpace : jsonSpace;
    return fc
      .record({
        shape: fc.constantFrom('samples', 'samples', 'samples', 'samples', 'samples_batch', 'sample', 'other'),
        samplesKey: keyText('samples', faults),
        samples: fc
          .integer({ min: 0, max: 5 })
          .chain((count) => fc.tuple(fc.array(sample, { minLength: count, maxLength: count }), seqsArbitrary(count, faults))),
        before: faults.top
          ? rarely(2, fc.record({ key: fc.constantFrom('"samples"', '"type"', '"x"'), value: junkValue }))
          : fc.constant(null),
        spaces: fc.array(space, { maxLength: 4 }),
      })
      .map(({ shape, samplesKey, samples: [samples, seqs], before, spaces }) => {
        const tokens = ['['];
        samples.forEach((render, i) => {
          tokens.push(...(i > 0 ? [','] : []), render(seqs[i]));
        });
        tokens.push(']');
        const list = joinWith(spaces, tokens);
        const extra = before === null ? [] : [before];
        switch (shape) {
          case 'samples':
            return objectText([...extra, { key: samplesKey, value: list }], spaces);
          case 'samples_batch':
            return objectText(
              [
                ...extra,
                { key: '"type"', value: '"samples_batch"' },
                { key: '"payload"', value: objectText([{ key: samplesKey, value: list }], spaces) },
              ],
              spaces,
            );
          case 'sample':
            return samples.length > 0 ? samples[0](seqs[0]) : '{}';
          default:
            return list;
        }
      });
  });
}

/** A frame with one byte cut off, replaced, inserted or deleted: near misses of every kind. */
function mutatedArbitrary(channels: readonly string[]) {
  const byte = fc.oneof(
    fc.integer({ min: 0, max: 255 }),
    fc.constantFrom(...Buffer.from('{}[]:,"\\-+.eE0159 \t\n\r'), 0x80, 0xc3, 0xe2, 0xff),
  );
  return fc
    .tuple(frameArbitrary(channels), fc.constantFrom('cut', 'replace', 'insert', 'delete'), fc.nat(), byte)
    .map(([text, edit, position, value]) => {
      const frame = Buffer.from(text);
      const at = position % (frame.length + 1);
      if (edit === 'cut') return frame.subarray(0, at);
      if (edit === 'insert') return Buffer.concat([frame.subarray(0, at), Buffer.from([value]), frame.subarray(at)]);
      if (at === frame.length) return frame;
      if (edit === 'delete') return Buffer.concat([frame.subarray(0, at), frame.subarray(at + 1)]);
      const out = Buffer.from(frame);
      out[at] = value;
      return out;
    });
}

const channelsArbitrary = fc.constantFrom(...channelSets);
const maxSamplesArbitrary = fc.oneof(fc.constant(10_000), fc.integer({ min: 1, max: 4 }));

const caseOf = (frames: (channels: readonly string[]) => fc.Arbitrary<Buffer>) =>
  channelsArbitrary.chain((channels) => fc.tuple(fc.constant(channels), frames(channels), maxSamplesArbitrary));

const check = (frames: (channels: readonly string[]) => fc.Arbitrary<Buffer>, ciRuns: number) =>
  fc.assert(
    fc.property(caseOf(frames), ([channels, frame, maxSamples]) => assertDecodesLikeJsonParse(frame, channels, maxSamples)),
    fuzzParameters(ciRuns),
  );

describe('JSON frame scanner, differentially against JSON.parse', () => {
  test('frames of every shape, valid or nearly, decode as JSON.parse of their text decodes', () => {
    check((channels) => frameArbitrary(channels).map((text) => Buffer.from(text)), 3000);
  });

  test('frames with one byte cut off, replaced, inserted or deleted decode as JSON.parse of their text decodes', () => {
    check(mutatedArbitrary, 3000);
  });

  test('arbitrary bytes, alone or after the start of a frame, decode as JSON.parse of their text decodes', () => {
    const bytes = fc.oneof(
      fc.uint8Array({ maxLength: 64 }).map((array) => Buffer.from(array)),
      fc
        .tuple(
          fc.constantFrom('{', '{"samples":', '{"samples":[', '{"samples":[{"ax":', '{"samples":[{"seq":1,"t":2,"ax":1,"ay":2,"az":'),
          fc.uint8Array({ maxLength: 32 }),
        )
        .map(([start, rest]) => Buffer.concat([Buffer.from(start), rest])),
    );
    check(() => bytes, 2000);
  });

  test('every prefix and every one-byte edit of valid frames decode as JSON.parse of their text decodes', () => {
    const frames = [
      '{"samples":[{"seq":1,"t":1.5,"ax":-0,"ay":1e-7,"az":12345.678},{"seq":3,"t":2,"ax":0.1,"ay":-2,"az":3e300}]}',
      ' {"samples" : [ {"az":3,"ay":2,"ax":1} ] } ',
      '{"type":"samples_batch","payload":{"samples":[{"seq":0,"t":0,"ax":1,"ay":2,"az":3}]}}',
      '{"seq":7,"t":1,"ax":1,"ay":2,"az":3}',
    ].map((text) => Buffer.from(text));
    const bytes = [...Buffer.from('{}[]:,"\\-+.eE05 \t'), 0xc3, 0xff];
    for (const frame of frames) {
      for (let at = 0; at <= frame.length; at++) {
        assertDecodesLikeJsonParse(frame.subarray(0, at), channelSets[0], 10_000);
        if (at === frame.length) continue;
        assertDecodesLikeJsonParse(Buffer.concat([frame.subarray(0, at), frame.subarray(at + 1)]), channelSets[0], 10_000);
        for (const byte of bytes) {
          const edited = Buffer.from(frame);
          edited[at] = byte;
          assertDecodesLikeJsonParse(edited, channelSets[0], 10_000);
          assertDecodesLikeJsonParse(
            Buffer.concat([frame.subarray(0, at), Buffer.from([byte]), frame.subarray(at)]),
            channelSets[0],
            10_000,
          );
        }
      }
    }
  });

  test('deep nesting is refused the same way by both paths, never thrown', () => {
    const nested = fc
      .tuple(fc.integer({ min: 1, max: 5_000 }), fc.constantFrom(['[', ']'], ['{"a":', '}']), fc.boolean())
      .map(([depth, [open, close], closed]) =>
        Buffer.from(`{"samples":[{"ax":${open.repeat(depth)}1${closed ? close.repeat(depth) : ''},"ay":2,"az":3}]}`),
      );
    check(() => nested, 50);
  });
});
