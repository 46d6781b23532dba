/**
 * The double nearest to a decimal M / 10^k, for the digits the scanner's fast path cannot take
 * (json-frame-scanner.ts): M from 2^53 up to 10^19 (the 16-19 digit texts of most doubles) and
 * 1 <= k <= 22. Correctly rounded, ties to even, so it equals what JSON.parse gives.
 *
 * A first guess x = M / 10^k in doubles is within a few units in the last place (ulps). It is
 * then checked against the halfway points to its neighbours with exact arithmetic, and moved
 * one ulp at a time until M / 10^k lies between them. Exact, because no step rounds: x * 10^k
 * is split into two doubles (Dekker's product with Veltkamp's split: JavaScript has no fused
 * multiply-add), and so is M = A * 10^9 + B; M - x * 10^k is then an integer below 2^53 plus
 * the product's low part; half an ulp times 10^k is a power of two times 10^k; and the sign of
 * their sum is read from an exact expansion of it (Shewchuk's Grow-Expansion of Knuth's sums).
 * The string-and-Number() path it replaces cost about 150 ns a value and a string of garbage
 * (docs/performance.md).
 */

/** 10^0 .. 10^22, each exact in a double (parsed from text, so no pow() rounding). */
export const exactPowersOfTen = Float64Array.from({ length: 23 }, (_, i) => Number(`1e${i}`));

/** Veltkamp's constant for doubles, 2^27 + 1: splits a double into two halves of at most 26 bits. */
const splitter = 134_217_729;

/** The low part of a * b: a * b - fl(a * b), exactly (Dekker), for products far from overflow. */
function productError(a: number, b: number, product: number): number {
  let t = splitter * a;
  const aHigh = t - (t - a);
  const aLow = a - aHigh;
  t = splitter * b;
  const bHigh = t - (t - b);
  const bLow = b - bHigh;
  return aLow * bLow - (product - aHigh * bHigh - aLow * bHigh - aHigh * bLow);
}

/**
 * The sign of i - f + h, exactly, for doubles: the sum as a nonoverlapping expansion (each
 * part below the next one's last bit), whose sign is its largest nonzero part's.
 */
function signOfSum(i: number, f: number, h: number): number {
  let sum = i - f;
  let virtual = sum - i;
  const smallest = i - (sum - virtual) + (-f - virtual);
  const middle = h + smallest;
  virtual = middle - h;
  const lowest = h - (middle - virtual) + (smallest - virtual);
  const largest = middle + sum;
  virtual = largest - middle;
  const second = middle - (largest - virtual) + (sum - virtual);
  sum = largest !== 0 ? largest : second !== 0 ? second : lowest;
  return Math.sign(sum);
}

const bits = new Float64Array(1);
const words = new Uint32Array(bits.buffer);
/** Whether little-endian, so words[low] is the low half of the double. */
const low = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1 ? 0 : 1;

/** The next double away from 0 (`step` 1) or towards it (-1), for a positive finite x. */
function neighbour(x: number, step: 1 | -1): number {
  bits[0] = x;
  const next = words[low] + step;
  words[low] = next >>> 0;
  if (next === 0x1_0000_0000) words[1 - low]++;
  else if (next === -1) words[1 - low]--;
  return bits[0];
}

function isEven(x: number): boolean {
  bits[0] = x;
  return (words[low] & 1) === 0;
}

/**
 * The double nearest to M / 10^k, M being the digits of the JSON number text in
 * `data[start..end)` (a minus sign, a point, an exponent part are skipped: the caller has
 * folded them into k); as nearestQuotient, for M in [2^53, 10^19) and 1 <= k <= 22.
 */
export function nearestOfDigits(data: Uint8Array, start: number, end: number, k: number): number {
  let digits = 0;
  let stop = start;
  for (; stop < end; stop++) {
    const byte = data[stop];
    if (byte === 0x65 || byte === 0x45) break;
    if (byte !== 0x2e && byte !== 0x2d) digits++;
  }
  let a = 0;
  let b = 0;
  for (let i = start; i < stop; i++) {
    const digit = data[i] - 0x30;
    if (digit < 0 || digit > 9) continue;
    if (digits-- > 9) a = a * 10 + digit;
    else b = b * 10 + digit;
  }
  return nearestQuotient(a, b, k);
}

/**
 * The double nearest to (a * 10^9 + b) / 10^k, for a * 10^9 + b in [2^53, 10^19), b < 10^9
 * and 1 <= k <= 22 (integers all). NaN if it did not settle, which cannot happen within those
 * bounds; the caller then takes the slow path all the same.
 */
export function nearestQuotient(a: number, b: number, k: number): number {
  const power = exactPowersOfTen[k];
  const high = a * 1e9;
  const highError = productError(a, 1e9, high);
  let x = (high + (highError + b)) / power;
  for (let step = 0; step < 8; step++) {
    const product = x * power;
    // M - x * 10^k = whole - fraction: `whole` sums integers below 2^53, so it is exact.
    const whole = high - product + highError + b;
    const fraction = productError(x, power, product);
    const up = neighbour(x, 1);
    const aboveUp = signOfSum(whole, fraction, -((up - x) / 2) * power);
    if (aboveUp > 0) {
      x = up;
      continue;
    }
    if (aboveUp === 0) return isEven(x) ? x : up;
    const down = neighbour(x, -1);
    const belowDown = signOfSum(whole, fraction, ((x - down) / 2) * power);
    if (belowDown < 0) {
      x = down;
      continue;
    }
    if (belowDown === 0) return isEven(x) ? x : down;
    return x;
  }
  return Number.NaN;
}
