import assert from 'node:assert/strict';
import { test } from 'node:test';
import { maxNumberBytes, writeNumber } from '../../src/samples/number-text.ts';

/** What every export and live frame must carry: Number::toString, with -0 kept as "-0". */
function expectedText(value: number): string {
  return Object.is(value, -0) ? '-0' : String(value);
}

const out = Buffer.alloc(2 * maxNumberBytes);
const bits = new Float64Array(1);
const words = new Uint32Array(bits.buffer);

function written(value: number, hints?: Uint8Array, slot?: number): string {
  out.fill(0x21);
  const end = writeNumber(out, 3, value, hints, slot);
  assert.equal(out[end], 0x21, `writing ${expectedText(value)} went past the end it returned`);
  return out.toString('latin1', 3, end);
}

function assertSameText(values: Iterable<number>): number {
  let count = 0;
  for (const value of values) {
    for (const signed of [value, -value]) {
      const text = written(signed);
      if (text !== expectedText(signed)) assert.fail(`${expectedText(signed)} was written as ${text}`);
      count++;
    }
  }
  return count;
}

/** The float64s one and two units in the last place either side of `value`. */
function* neighbours(value: number): Generator<number> {
  bits[0] = value;
  const [low, high] = words;
  for (const step of [-2, -1, 1, 2]) {
    words[0] = low + step;
    words[1] = high + (low + step > 0xffffffff ? 1 : low + step < 0 ? -1 : 0);
    yield bits[0];
  }
}

/** A small deterministic generator (mulberry32), so a failure reproduces. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

test('every awkward number is written exactly as String(x) writes it, and -0 as "-0"', () => {
  // biome-ignore format: a packed list of cases reads better than one a line
  const awkward = [
    0, 0.1, 0.1 + 0.2, 5e-324, 1.7976931348623157e308, 123456789.12345679, 1e21, 1e-7, 1e-6, 1e-5, 9.999999999999999e-6, 5e-7,
    2 ** 52, 2 ** 52 - 1, 2 ** 52 - 0.5, 2 ** 53, 2 ** 53 + 2, 1e15, 1e16, 0.5, 2.5, 0.05, 0.15, 0.9999999999999999, 1.0000000000000002,
    1732345678901.25, 1732345678901.125, 1732345678901.001, 9.81, 10.0262, 99999.99999, Math.PI, 1 / 3, 2 / 3,
  ];
  assertSameText(awkward);
  assert.equal(written(-0), '-0');
  assert.equal(written(0), '0');
  for (let exponent = -12; exponent <= 22; exponent++) assertSameText([10 ** exponent, ...neighbours(10 ** exponent)]);
});

test('decimals of 1 to 17 digits at every scale, and their float64 neighbours, are written as String(x) writes them', () => {
  const next = random(4);
  let count = 0;
  for (let digits = 1; digits <= 17; digits++) {
    for (let exponent = -9; exponent <= 17; exponent++) {
      for (let i = 0; i < 40; i++) {
        const value = Number(`${Math.floor(next() * 10 ** digits)}e${exponent - digits}`);
        count += assertSameText([value, ...neighbours(value)]);
      }
    }
  }
  assert.ok(count > 150_000);
});

test('random float64s, float32 readings and epoch-millisecond times are written as String(x) writes them', () => {
  const next = random(7);
  const float32 = new Float32Array(1);
  function* values(): Generator<number> {
    for (let i = 0; i < 100_000; i++) {
      words[0] = next() * 2 ** 32;
      words[1] = next() * 2 ** 32;
      if (Number.isFinite(bits[0])) yield bits[0];
      yield next() * 2 ** (Math.floor(next() * 80) - 25);
      float32[0] = (next() - 0.5) * 40;
      yield float32[0];
      const fractionDigits = i % 5;
      yield Math.round((1.7e12 + next() * 1e11) * 10 ** fractionDigits) / 10 ** fractionDigits;
    }
  }
  assert.ok(assertSameText(values()) > 700_000);
});

test('the text does not depend on where the search for fraction digits starts (the per-column hint)', () => {
  const next = random(11);
  const hints = new Uint8Array(23);
  let count = 0;
  for (let digits = 1; digits <= 17; digits++) {
    for (let exponent = -6; exponent <= 17; exponent++) {
      const value = Number(`${Math.floor(next() * 10 ** digits)}e${exponent - digits}`);
      for (const candidate of [value, ...neighbours(value)]) {
        for (let hint = 0; hint < hints.length; hint++) {
          hints[hint] = hint;
          const text = written(candidate, hints, hint);
          if (text !== expectedText(candidate)) {
            assert.fail(`${expectedText(candidate)} was written as ${text} when the search started at ${hint} digits`);
          }
          count++;
        }
      }
    }
  }
  assert.ok(count > 40_000);
  // 11 fraction digits give this one back and 12 do not (m is near 2^52): from a hint of 12 or
  // more the search must still find 11 (and leave it as the hint), not give up on the fast path.
  for (let hint = 0; hint < hints.length; hint++) {
    hints[0] = hint;
    assert.equal(written(4470.33993750118, hints, 0), '4470.33993750118');
    assert.equal(hints[0], 11, `from a hint of ${hint}`);
  }
  // The hint is left at what the last value needed: 2.5 needs one fraction digit.
  hints[0] = 9;
  written(2.5, hints, 0);
  assert.equal(hints[0], 1);
});
