import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { decodeTextFrame } from '../../src/ingest/frame-decoder.ts';
import { scanJsonFrame } from '../../src/ingest/json-frame-scanner.ts';
import type { SampleBatch } from '../../src/samples/sample-batch.ts';

const channels = ['ax', 'ay', 'az'];
const limits = { maxFrameBytes: 1024 * 1024, maxFrameSamples: 10_000 };
const receivedAtMs = 1234.5;

/** The general decoder's reading of the same text (a string frame never takes the scanner). */
function general(text: string) {
  const result = decodeTextFrame(text, channels, limits, receivedAtMs);
  assert.ok(result.ok, `the general decoder refuses ${text.slice(0, 80)}`);
  return result;
}

function bytesOf(batch: SampleBatch): Buffer {
  return Buffer.from(batch.columns.buffer, batch.columns.byteOffset, batch.columns.byteLength);
}

function assertScansLikeJsonParse(text: string): void {
  const scanned = scanJsonFrame(Buffer.from(text), channels, limits.maxFrameSamples, receivedAtMs);
  assert.ok(scanned, `the scanner declines ${text.slice(0, 120)}`);
  const expected = general(text);
  assert.equal(scanned.hasSeq, expected.hasSeq);
  assert.equal(scanned.batch.count, expected.batch.count);
  // Bit for bit, so -0 and 0 differ.
  assert.deepEqual(bytesOf(scanned.batch), bytesOf(expected.batch), text.slice(0, 120));
  assert.deepEqual(JSON.parse(scanned.samplesText.toString()), JSON.parse(text).samples);
}

/** A deterministic generator (mulberry32), so a failure names a case that can be rerun. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

describe('JSON frame scanner', () => {
  test('reads what JSON.parse reads, in any key order and spacing, with or without seq and t', () => {
    const frames = [
      '{"samples":[{"seq":1,"t":1732345678901.25,"ax":0.1,"ay":-0.2,"az":9.81}]}',
      '{"samples":[{"seq":7,"t":1.5,"ax":0.1,"ay":-2,"az":3e-300},{"seq":9,"t":2.5,"ax":-0,"ay":1E+3,"az":-1.5e-7}]}',
      ' \n{ "samples" :\t[ { "az" : 3 , "ax" : 1 , "t" : 0 , "ay" : 2 , "seq" : 0 } , {"t":1,"seq":5,"ay":0,"az":0,"ax":0} ] } \r\n',
      '{"samples":[{"ax":1,"ay":2,"az":3},{"ax":4,"ay":5,"az":6}]}',
      '{"samples":[{"seq":1,"ax":1,"ay":2,"az":3}]}',
      '{"samples":[{"seq":9007199254740991,"t":0.1,"ax":123456789012345678901234567890,"ay":0.30000000000000004,"az":5e-324}]}',
      '{"samples":[{"seq":1e3,"t":1.7976931348623157e308,"ax":2.2250738585072014e-308,"ay":1e22,"az":1e23}]}',
      '{"samples":[{"seq":10.0,"t":-0.0,"ax":0.000001,"ay":123456789012345,"az":1234567890123456}]}',
    ];
    for (const text of frames) assertScansLikeJsonParse(text);
  });

  test('reads every double exactly as JSON.parse does (seeded random values and their shortest text)', () => {
    const next = random(20261123);
    const values: number[] = [];
    for (let i = 0; i < 20_000; i++) {
      const kind = i % 4;
      if (kind === 0) values.push((next() - 0.5) * 10 ** Math.floor(next() * 40 - 20));
      else if (kind === 1) values.push(Math.round((next() - 0.5) * 1e8) / 10 ** Math.floor(next() * 9));
      else if (kind === 2) values.push(new Float64Array(new Uint32Array([next() * 2 ** 32, next() * 0x7fefffff]).buffer)[0]);
      else values.push(1_732_345_678_901 + Math.round(next() * 1e6) / 100);
    }
    for (let start = 0; start + 300 <= values.length; start += 300) {
      const samples = [];
      for (let i = start; i < start + 300; i += 3) {
        samples.push({ seq: i, t: values[i], ax: values[i + 1], ay: values[i + 2], az: -values[i] });
      }
      assertScansLikeJsonParse(JSON.stringify({ samples }));
    }
  });

  test('reads numbers whose digits are just below, at and above 2^53 as JSON.parse does, wherever the point is', () => {
    // 2^53 = 9007199254740992: the digits below it are exact in a double and take the fast
    // path, the rest go to Number(); 2^53 + 1 gathers to 2^53 in a double, so only a strict
    // bound on the gathered value keeps it off the fast path.
    const digitRuns = ['9007199254740991', '9007199254740992', '9007199254740993', '9007199254740995', '9999999999999999'];
    const numbers: string[] = [];
    for (const run of [...digitRuns, ...digitRuns.map((digits) => `${digits}7`)]) {
      for (let point = 1; point < run.length; point++) numbers.push(`${run.slice(0, point)}.${run.slice(point)}`);
      numbers.push(run, `0.${run}`, `-0.000${run}`, `${run}e-22`, `${run}e-23`, `${run}e22`, `${run}e-7`);
    }
    for (let start = 0; start < numbers.length; start += 3) {
      const [ax, ay = '0', az = '0'] = numbers.slice(start, start + 3);
      assertScansLikeJsonParse(`{"samples":[{"ax":${ax},"ay":${ay},"az":${az}}]}`);
    }
  });

  test('reads digit runs of every length and position as JSON.parse does (runs of four are read as one word)', () => {
    const next = random(4);
    const digitsOf = (count: number) =>
      Array.from({ length: count }, (_, i) => String(i === 0 ? 1 + Math.floor(next() * 9) : Math.floor(next() * 10))).join('');
    const numbers: string[] = [];
    for (let whole = 1; whole <= 24; whole++) {
      numbers.push(digitsOf(whole), `-${digitsOf(whole)}`, `${digitsOf(whole)}e-${whole}`);
      for (let fraction = 1; fraction <= 20; fraction += 3) {
        numbers.push(`${digitsOf(whole)}.${digitsOf(fraction)}`, `-0.${'0'.repeat(whole % 5)}${digitsOf(fraction)}`);
      }
    }
    for (let start = 0; start < numbers.length; start += 3) {
      const [ax, ay = '0', az = '0'] = numbers.slice(start, start + 3);
      // Unspaced, so the last digits sit right against `}]}` at the frame's end, and spaced.
      assertScansLikeJsonParse(`{"samples":[{"ax":${ax},"ay":${ay},"az":${az}}]}`);
      assertScansLikeJsonParse(`{"samples":[{"az":${az},"ay":${ay},"ax":${ax} }]}`);
    }
  });

  test('declines every frame it does not fully understand, valid or not, for the general decoder to answer', () => {
    const good = '"ax":1,"ay":2,"az":3';
    const declined = [
      `{"seq":1,${good}}`,
      `{"type":"samples_batch","payload":{"samples":[{${good}}]}}`,
      '{"samples":[]}',
      `{"samples":[{${good}}],"extra":1}`,
      `{"samples":[{${good}}]} x`,
      `{"samples":[{${good}},]}`,
      `{"samples":[{${good},}]}`,
      `{"samp\\u006ces":[{${good}}]}`,
      `{"samples":[{"a\\u0078":1,"ay":2,"az":3}]}`,
      `{"samples":[{${good},"ax":4}]}`,
      `{"samples":[{${good},"bx":4}]}`,
      '{"samples":[{"ax":1,"ay":2}]}',
      '{"samples":[{"ax":"1","ay":2,"az":3}]}',
      '{"samples":[{"ax":null,"ay":2,"az":3}]}',
      '{"samples":[{"ax":01,"ay":2,"az":3}]}',
      '{"samples":[{"ax":1.,"ay":2,"az":3}]}',
      '{"samples":[{"ax":.5,"ay":2,"az":3}]}',
      '{"samples":[{"ax":+1,"ay":2,"az":3}]}',
      '{"samples":[{"ax":1e,"ay":2,"az":3}]}',
      '{"samples":[{"ax":-,"ay":2,"az":3}]}',
      '{"samples":[{"ax":1e400,"ay":2,"az":3}]}',
      `{"samples":[{"seq":1,${good}},{${good}}]}`,
      `{"samples":[{${good}},{"seq":1,${good}}]}`,
      `{"samples":[{"seq":2,${good}},{"seq":2,${good}}]}`,
      `{"samples":[{"seq":-1,${good}}]}`,
      `{"samples":[{"seq":1.5,${good}}]}`,
      `{"samples":[{"seq":9007199254740992,${good}}]}`,
      `{"samples":[{${good}}`,
      `{"samples":[{${good}}]`,
      `{"samples":[{${good}`,
      // Bytes 0x3a-0x3f (: ; < = > ?) sit just above '9': a word-at-a-time digit test must not
      // take them for digits, wherever they fall in a run of four.
      '{"samples":[{"ax":1,"ay":2,"az":123:}]}',
      '{"samples":[{"ax":12?4,"ay":2,"az":3}]}',
      '{"samples":[{"ax":1;23,"ay":2,"az":3}]}',
      '{"samples":[{"ax":1234<567,"ay":2,"az":3}]}',
      '{"samples":[{"ax":12345678:,"ay":2,"az":3}]}',
      '{"samples":[{"ax":0.12=4,"ay":2,"az":3}]}',
      '{"samples":[{"ax":0.1234>5678,"ay":2,"az":3}]}',
      '{"samples":[{"ax":1e12>4,"ay":2,"az":3}]}',
      // Cut inside a number, where the last word read would run past the frame's end.
      '{"samples":[{"ax":1,"ay":2,"az":1234',
      '{"samples":[{"ax":1,"ay":2,"az":12345678',
      '{"samples":[{"ax":1,"ay":2,"az":0.123456789',
    ];
    for (const text of declined) {
      assert.equal(scanJsonFrame(Buffer.from(text), channels, limits.maxFrameSamples, receivedAtMs), null, text);
    }
    const many = JSON.stringify({ samples: Array.from({ length: 11 }, () => ({ ax: 1, ay: 2, az: 3 })) });
    assert.equal(scanJsonFrame(Buffer.from(many), channels, 10, receivedAtMs), null);
    assert.ok(scanJsonFrame(Buffer.from(many), channels, 11, receivedAtMs));
  });

  test('the decoder answers the same for a frame as bytes (the socket) and as text (the general path)', () => {
    const cases = [
      '{"samples":[{"seq":1,"t":5,"ax":1,"ay":2,"az":3}]}',
      '{"samples":[{"ax":1,"ay":2}]}',
      '{"samples":[{"seq":2,"ax":1,"ay":2,"az":3},{"seq":2,"ax":1,"ay":2,"az":3}]}',
      '{"samples":[{"ax":"1","ay":2,"az":3}]}',
      '{"samples":[{"ax":1,"ay":2,"az":3,"bx":4}]}',
    ];
    for (const text of cases) {
      const fromBytes = decodeTextFrame(Buffer.from(text), channels, limits, receivedAtMs);
      const fromText = decodeTextFrame(text, channels, limits, receivedAtMs);
      assert.equal(fromBytes.ok ? 'ok' : fromBytes.code, fromText.ok ? 'ok' : fromText.code, text);
      if (fromBytes.ok && fromText.ok) assert.deepEqual([...fromBytes.batch.columns], [...fromText.batch.columns]);
    }
  });

  test('the live path gets the samples text only when every sample has its seq and t', () => {
    const withBoth = '{"samples":[{"seq":1,"t":5,"ax":1,"ay":2,"az":3}]}';
    const withoutT = '{"samples":[{"seq":1,"ax":1,"ay":2,"az":3}]}';
    const decoded = decodeTextFrame(Buffer.from(withBoth), channels, limits, receivedAtMs);
    assert.ok(decoded.ok);
    assert.equal(decoded.samplesText?.toString(), '[{"seq":1,"t":5,"ax":1,"ay":2,"az":3}]');
    const partial = decodeTextFrame(Buffer.from(withoutT), channels, limits, receivedAtMs);
    assert.ok(partial.ok);
    assert.equal(partial.samplesText, null);
  });
});

describe('frames shorter than the samples key', () => {
  test('are declined by the scanner and answered by the general decoder, never thrown', () => {
    for (const text of ['{', '{}', '{ }', '{"bad": 1', '{"samp', '{"samples"', '  {"x":1}']) {
      assert.equal(scanJsonFrame(Buffer.from(text), channels, limits.maxFrameSamples, receivedAtMs), null, text);
      const decoded = decodeTextFrame(Buffer.from(text), channels, limits, receivedAtMs);
      assert.equal(decoded.ok, false, text);
    }
  });
});
