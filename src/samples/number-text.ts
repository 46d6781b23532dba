/**
 * A float64's text written straight into bytes: exactly what `String(x)` (ECMAScript
 * Number::toString, the shortest text that parses back to the same float64) gives, except
 * that -0 keeps its sign. Writing bytes instead of making a string per number is what makes
 * export fast: `String(x)` cost about 120 ns a number, most of an export's time
 * (docs/performance.md).
 *
 * The fast path covers the decimals sensor data is made of. It looks for the fewest fraction
 * digits d (0, 1, 2, ...) such that m = round(x * 10^d) gives back x as m / 10^d, and writes m
 * with a point before its last d digits. That is Number::toString's text when m < 2^52 and
 * |x| >= 1e-5:
 * - m / 10^d is IEEE division of two exact integers, correctly rounded, as parsing the text
 *   is: the text parses back to x.
 * - Below 2^52 the decimals with d fraction digits are further apart than x's rounding
 *   interval is wide, so m is the only one that parses back to x: no closer one to prefer.
 * - A shorter text would have fewer fraction digits, and the loop would have found it first:
 *   at m < 2^52 the two roundings in round(x * 10^d) are off by less than 0.1, never enough
 *   to miss it. A text with more fraction digits has more significant digits, since every
 *   text that parses back to x is within one ulp of it.
 * - |x| >= 1e-5 and m < 2^52 keep Number::toString in fixed notation (it switches to
 *   exponents below 1e-6 and from 1e21).
 * Anything else (more digits than float64 can carry, tiny or huge values) takes String(x).
 * test/unit/number-text.test.ts compares the two on millions of values.
 */

/** The longest text Number::toString gives for a finite float64: `-0.0000012345678901234567`. */
export const maxNumberBytes = 25;

const powersOfTen = Array.from({ length: 23 }, (_, i) => 10 ** i);
const fastLimit = 2 ** 52;
const minus = 0x2d;
const zero = 0x30;
const point = 0x2e;

/** A shared hint for callers without their own: any hint gives the same text, a good one only takes fewer steps. */
const noHints = new Uint8Array(1);

/**
 * Writes the text of `value` (see above) at `at` in `out`, which has room for maxNumberBytes;
 * returns where it ends. `hints[slot]` is where the search for the fewest fraction digits
 * starts, and is left at what this value needed: a column of sensor data mostly keeps the
 * same number of decimals, so a caller that keeps one slot per column tests two candidates a
 * number instead of every count from 0 up (the search itself is in fractionDigitsOf).
 */
export function writeNumber(out: Uint8Array, at: number, value: number, hints: Uint8Array = noHints, slot = 0): number {
  if (value === 0) {
    if (1 / value < 0) out[at++] = minus;
    out[at] = zero;
    return at + 1;
  }
  let x = value;
  if (x < 0) {
    out[at++] = minus;
    x = -x;
  }
  if (x >= 1e-5) {
    const digits = fractionDigitsOf(x, hints[slot]);
    if (digits >= 0) {
      hints[slot] = digits;
      return writeDecimal(out, at, Math.round(x * powersOfTen[digits]), digits);
    }
  }
  const text = String(x);
  for (let i = 0; i < text.length; i++) out[at++] = text.charCodeAt(i);
  return at;
}

/** Whether `digits` fraction digits give back x (see above): m = round(x * 10^digits) < 2^52 and m / 10^digits === x. */
function roundTrips(x: number, digits: number): boolean {
  const scaled = Math.round(x * powersOfTen[digits]);
  return scaled < fastLimit && scaled / powersOfTen[digits] === x;
}

/**
 * The fewest fraction digits whose decimal gives back x with m < 2^52, or -1 if there are none.
 * The counts that give x back form one unbroken run: a decimal with d digits is also one with
 * d + 1 (a trailing zero) at the same value, which round(x * 10^(d + 1)) finds while the
 * product's rounding error stays far below 1/2; once m nears 2^52 that fails, and for every
 * larger count too. So a yes at the hint is followed down to the run's first count; after a no,
 * the run is either above the hint or below it, and is looked for above first (a value with
 * more decimals than the last), then below.
 */
function fractionDigitsOf(x: number, hint: number): number {
  let digits = hint;
  if (roundTrips(x, digits)) {
    while (digits > 0 && roundTrips(x, digits - 1)) digits--;
    return digits;
  }
  for (digits = hint + 1; digits < powersOfTen.length; digits++) {
    if (Math.round(x * powersOfTen[digits]) >= fastLimit) break;
    if (roundTrips(x, digits)) return digits;
  }
  for (digits = 0; digits < hint; digits++) if (roundTrips(x, digits)) return digits;
  return -1;
}

/**
 * Writes the integer `scaled` (< 2^52) with a point before its last `fractionDigits` digits,
 * and a leading `0.` when it has no integer part.
 */
function writeDecimal(out: Uint8Array, at: number, scaled: number, fractionDigits: number): number {
  let digits = 1;
  while (digits < 16 && scaled >= powersOfTen[digits]) digits++;
  const width = digits > fractionDigits ? digits : fractionDigits + 1;
  const end = at + width + (fractionDigits > 0 ? 1 : 0);
  // Two int32 halves, so that each digit comes from integer division.
  let high = Math.floor(scaled / 1e8) | 0;
  let low = (scaled - high * 1e8) | 0;
  let position = end;
  for (let k = 0; k < width; k++) {
    if (k === fractionDigits && k > 0) out[--position] = point;
    let digit: number;
    if (k < 8) {
      const rest = (low / 10) | 0;
      digit = low - rest * 10;
      low = rest;
    } else {
      const rest = (high / 10) | 0;
      digit = high - rest * 10;
      high = rest;
    }
    out[--position] = zero + digit;
  }
  return end;
}
