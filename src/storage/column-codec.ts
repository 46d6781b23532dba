/**
 * One column of a compressed chunk (chunk-compression.ts): n float64 values, stored losslessly
 * in the smallest of two forms.
 *
 * - Scaled: every value is an integer m over a power of ten or of two (v === m / 10^k, as a
 *   decimal text parses, or v === m / 2^e, as a float32 or a clock's float64 is), with
 *   |m| < 2^53. The m are stored as differences of order 1 or 2 (a clock's t, a run of seqs:
 *   order 2 is 0), zigzagged, and bit-packed in blocks of 64, each at the width of its largest.
 *   A value that is not such an m (NaN, a null of a nullable session, -0, an infinity, an
 *   outlier) is an exception kept as its 64 raw bits; past n/16 of them the form is not used.
 * - XOR: each value's bits XORed with the previous value's, the nonzero run kept with its
 *   position (Gorilla, Pelkonen et al., VLDB 2015). Any bits at all, NaN payloads included.
 *
 * Both are exact: m / 10^k and m / 2^e are correctly rounded divisions of exact integers, and
 * the encoder checks m / s === v for every value it keeps as m. Differences stay below 2^51, so
 * every sum the decoder makes is exact.
 */
import { type BitReader, type BitWriter, bitWidth } from './bit-stream.ts';
import { readXorColumn, writeXorColumn } from './xor-column.ts';

const forms = { scaled: 0, xor: 1 } as const;
const scales = { decimal: 0, binary: 1 } as const;
const blockValues = 64;
const maxResidual = 2 ** 51;
const maxDecimals = 15;
/** Above it, 2^e overflows float64 before any value does. */
const maxBinaryExponent = 1000;
const powersOfTen = Array.from({ length: maxDecimals + 1 }, (_, k) => 10 ** k);

interface Scaled {
  scale: number;
  exponent: number;
  divisor: number;
  m: Float64Array;
  exceptions: number[];
}

/** The fractional bits v needs: the e with v * 2^e an integer, from its bits. */
function fractionalBits(hi: number, lo: number): number {
  const exponent = (hi >>> 20) & 0x7ff;
  const mantissaHi = hi & 0xfffff;
  const trailing = lo !== 0 ? 31 - Math.clz32(lo & -lo) : mantissaHi !== 0 ? 63 - Math.clz32(mantissaHi & -mantissaHi) : 52;
  if (exponent === 0 && trailing === 52) return 0;
  return Math.max(0, 52 - trailing - (exponent === 0 ? -1022 : exponent - 1023));
}

/**
 * Scratch memory for the integers of the two scales a column tries, kept between columns: a
 * fresh array per column and scale was most of the compressor's garbage, and collecting it a
 * third of its main thread. A column is written before the next is planned, so one pair serves.
 */
const scratch = { [scales.decimal]: new Float64Array(0), [scales.binary]: new Float64Array(0) };

function scratchFor(scale: 0 | 1, n: number): Float64Array {
  if (scratch[scale].length < n) scratch[scale] = new Float64Array(Math.max(n, 2 * scratch[scale].length));
  return scratch[scale].subarray(0, n);
}

function scaledWith(values: Float64Array, divisor: number, scale: 0 | 1, exponent: number): Scaled | null {
  const n = values.length;
  const m = scratchFor(scale, n);
  const exceptions: number[] = [];
  const limit = n >>> 4;
  let previous = 0;
  for (let i = 0; i < n; i++) {
    const v = values[i];
    const scaled = Math.round(v * divisor) + 0;
    if (Math.abs(scaled) <= Number.MAX_SAFE_INTEGER && scaled / divisor === v && (v !== 0 || 1 / v > 0)) {
      m[i] = previous = scaled;
    } else {
      if (exceptions.length >= limit) return null;
      exceptions.push(i);
      m[i] = previous;
    }
  }
  return { scale, exponent, divisor, m, exceptions };
}

function decimalScaled(values: Float64Array): Scaled | null {
  const n = values.length;
  let decimals = 0;
  // The decimals of a few values spread over the column; the full pass checks the others.
  for (let probe = 0; probe < 16; probe++) {
    const v = values[Math.floor((probe * n) / 16)];
    if (!Number.isFinite(v)) continue;
    let k = decimals;
    while (k <= maxDecimals && Math.round(v * powersOfTen[k]) / powersOfTen[k] !== v) k++;
    if (k > maxDecimals) return null;
    decimals = k;
  }
  return scaledWith(values, powersOfTen[decimals], scales.decimal, decimals);
}

function binaryScaled(values: Float64Array, bits: Uint32Array): Scaled | null {
  let exponent = 0;
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i])) continue;
    const e = fractionalBits(bits[2 * i + 1], bits[2 * i]);
    if (e > exponent) exponent = e;
  }
  if (exponent > maxBinaryExponent) return null;
  return scaledWith(values, 2 ** exponent, scales.binary, exponent);
}

const zigzag = (r: number) => (r >= 0 ? 2 * r : -2 * r - 1);

/** The bits of the packed residuals at order 1 and at order 2, each -1 when a residual is too large for exact sums. */
function packedBits(m: Float64Array): [number, number] {
  let first = 0;
  let second = 0;
  let firstMax = 0;
  let secondMax = 0;
  let secondFits = true;
  let previous = 0;
  for (let i = 1, inBlock = 0; i < m.length; i++) {
    const d = m[i] - m[i - 1];
    const r = i === 1 ? d : d - previous;
    previous = d;
    if (Math.abs(d) > maxResidual) return [-1, -1];
    if (Math.abs(r) > maxResidual) secondFits = false;
    const z1 = zigzag(d);
    const z2 = zigzag(r);
    if (z1 > firstMax) firstMax = z1;
    if (z2 > secondMax) secondMax = z2;
    if (++inBlock === blockValues || i === m.length - 1) {
      first += 6 + inBlock * bitWidth(firstMax);
      second += 6 + inBlock * bitWidth(secondMax);
      inBlock = 0;
      firstMax = 0;
      secondMax = 0;
    }
  }
  return [first, secondFits ? second : -1];
}

interface Plan {
  scaled: Scaled;
  order: 1 | 2;
  bits: number;
}

function planOf(scaled: Scaled | null): Plan | null {
  if (scaled === null) return null;
  const [first, second] = packedBits(scaled.m);
  if (first < 0) return null;
  const order = second >= 0 && second < first ? 2 : 1;
  return { scaled, order, bits: (order === 2 ? second : first) + scaled.exceptions.length * 96 };
}

function writeScaled(out: BitWriter, { scaled, order }: Plan, bits: Uint32Array): void {
  const { m, exceptions } = scaled;
  const n = m.length;
  out.write(scaled.scale, 1);
  out.write(scaled.exponent, 10);
  out.write(order, 2);
  out.write(m[0] < 0 ? 1 : 0, 1);
  out.writeWide(Math.abs(m[0]), 53);
  out.write(exceptions.length, 32);
  for (const i of exceptions) {
    out.write(i, 32);
    out.write(bits[2 * i], 32);
    out.write(bits[2 * i + 1], 32);
  }
  const residuals = new Float64Array(blockValues);
  for (let start = 1; start < n; start += blockValues) {
    const end = Math.min(n, start + blockValues);
    let blockMax = 0;
    for (let i = start; i < end; i++) {
      const d = m[i] - m[i - 1];
      const z = zigzag(order === 1 || i === 1 ? d : d - (m[i - 1] - m[i - 2]));
      residuals[i - start] = z;
      if (z > blockMax) blockMax = z;
    }
    const width = bitWidth(blockMax);
    out.write(width, 6);
    for (let i = 0; i < end - start; i++) out.writeWide(residuals[i], width);
  }
}

/** Writes `values` (whose raw bits `bits` holds, two little-endian words each) in its smaller form. */
export function writeColumn(out: BitWriter, values: Float64Array, bits: Uint32Array): void {
  const decimal = planOf(decimalScaled(values));
  const binary = decimal !== null && decimal.scaled.exceptions.length === 0 ? null : planOf(binaryScaled(values, bits));
  const best = decimal === null || (binary !== null && binary.bits < decimal.bits) ? binary : decimal;
  if (best === null || best.bits >= values.length * 64) {
    out.write(forms.xor, 1);
    writeXorColumn(out, bits, values.length);
  } else {
    out.write(forms.scaled, 1);
    writeScaled(out, best, bits);
  }
}

function readScaled(reader: BitReader, values: Float64Array, bits: Uint32Array): void {
  const n = values.length;
  const scale = reader.read(1);
  const exponent = reader.read(10);
  if (scale === scales.decimal ? exponent > maxDecimals : exponent > maxBinaryExponent) throw reader.corrupt(`a scale of ${exponent}`);
  const divisor = scale === scales.decimal ? powersOfTen[exponent] : 2 ** exponent;
  const order = reader.read(2);
  if (order !== 1 && order !== 2) throw reader.corrupt(`differences of order ${order}`);
  const negative = reader.read(1) === 1;
  let m = reader.readWide(53);
  if (negative) m = -m;
  const exceptionCount = reader.read(32);
  if (exceptionCount > n >>> 4) throw reader.corrupt(`${exceptionCount} exceptions in ${n} values`);
  const exceptions = new Uint32Array(exceptionCount * 3);
  for (let j = 0; j < exceptions.length; j++) exceptions[j] = reader.read(32);
  values[0] = m / divisor;
  let d = 0;
  for (let start = 1; start < n; start += blockValues) {
    const width = reader.read(6);
    if (width > 53) throw reader.corrupt(`a block of ${width}-bit differences`);
    const end = Math.min(n, start + blockValues);
    for (let i = start; i < end; i++) {
      const z = reader.readWide(width);
      const r = z % 2 === 0 ? z / 2 : -(z + 1) / 2;
      d = order === 1 || i === 1 ? r : d + r;
      m += d;
      if (Math.abs(d) > maxResidual || Math.abs(m) > Number.MAX_SAFE_INTEGER) throw reader.corrupt('a value out of range');
      values[i] = m / divisor;
    }
  }
  for (let j = 0, previous = -1; j < exceptions.length; j += 3) {
    const i = exceptions[j];
    if (i >= n || i <= previous) throw reader.corrupt(`an exception at ${i}`);
    previous = i;
    bits[2 * i] = exceptions[j + 1];
    bits[2 * i + 1] = exceptions[j + 2];
  }
}

/** Reads a column writeColumn wrote into `values`, whose raw bits `bits` views. */
export function readColumn(reader: BitReader, values: Float64Array, bits: Uint32Array): void {
  if (reader.read(1) === forms.xor) readXorColumn(reader, bits, values.length);
  else readScaled(reader, values, bits);
}
