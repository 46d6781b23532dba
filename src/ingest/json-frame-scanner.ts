/**
 * The fast path for the usual JSON frame, `{"samples":[{"seq":..,"t":..,"ax":..}, ...]}`: it
 * reads the frame's bytes straight into columns, with no JSON.parse and no object per sample
 * (JSON.parse and the objects it built were about 40 % of the server's CPU at full JSON
 * ingest; docs/performance.md).
 *
 * It only ever accepts. A frame it does not fully understand (another frame shape, an escape in
 * a key, an unknown or repeated key, a value that is not a number, seqs out of order, mixed seq
 * and no seq, too many samples...) makes it return null, and frame-decoder.ts decodes that
 * frame the general way, which owns every error message. So the scanner must be right about
 * what it accepts, never about why it declines; test/unit/json-frame-scanner.test.ts checks it
 * against the general decoder.
 *
 * Numbers follow the JSON grammar exactly. A number whose digits, as an integer, are below
 * 2^53 and whose decimal exponent is within +-22 is computed as an exact integer times or
 * divided by an exact power of ten, which IEEE 754 rounds correctly (Clinger's fast path), so
 * it equals what JSON.parse gives. One with up to 19 digits and a point is rounded exactly by
 * exact-decimal.ts; any other number is handed to Number() as text.
 */
import { type BatchAllocator, SampleBatch } from '../samples/sample-batch.ts';
import { exactPowersOfTen, nearestOfDigits } from './exact-decimal.ts';

const quote = 0x22;
const comma = 0x2c;
const colon = 0x3a;
const minus = 0x2d;
const plus = 0x2b;
const dot = 0x2e;
const zero = 0x30;
const nine = 0x39;
const backslash = 0x5c;
const openBracket = 0x5b;
const closeBracket = 0x5d;
const openBrace = 0x7b;
const closeBrace = 0x7d;
const lowerE = 0x65;
const upperE = 0x45;

const samplesKey = Buffer.from('"samples"');
/**
 * The fast path's bound on the digits as an integer, which every integer below is exact in a
 * double. Not a count of digits: the shortest text of most doubles has 16 or 17, and about
 * half of all values have 16 below 2^53 (1,454 of the HTTP ingest bench's 3,000 values; the
 * same share of float32 sensor readings widened to doubles). The mantissa is gathered with
 * exact steps while below it, and rounding is monotonic, so a true value at or above 2^53
 * never gathers to one below it.
 */
const fastMantissaBound = 2 ** 53;

/** The frame's keys as bytes: index 0 is seq, 1 is t, 2 + c is channel c. */
const keyTables = new WeakMap<readonly string[], Buffer[]>();

function keysOf(channels: readonly string[]): Buffer[] {
  let keys = keyTables.get(channels);
  if (!keys) {
    keys = ['seq', 't', ...channels].map((key) => Buffer.from(key));
    keyTables.set(channels, keys);
  }
  return keys;
}

/**
 * Samples row by row while scanning (the count is known only at the end), then turned into
 * columns. Shared: decoding is synchronous, so one frame at a time uses it. Its size is
 * bounded by the largest frame accepted (INGEST_MAX_FRAME_BYTES), since every value takes
 * at least two bytes of frame text.
 */
let rows = new Float64Array(4_096);
/** Per key, the 1-based index of the last sample that had it: finds a repeated or missing key without a reset per sample. */
let seenIn = new Int32Array(16);

function isSpace(byte: number): boolean {
  return byte <= 0x20 && (byte === 0x20 || byte === 0x0a || byte === 0x0d || byte === 0x09);
}

function skipSpace(data: Buffer, at: number): number {
  while (at < data.length && isSpace(data[at])) at++;
  return at;
}

function isDigit(byte: number): boolean {
  return byte >= zero && byte <= nine;
}

/** Powers of ten that fold a run of up to nine digits into the mantissa. */
const chunkScale = Int32Array.from({ length: 10 }, (_, i) => 10 ** i);

/**
 * Reads a JSON number at `at` into `out[slot]`; returns the index after it, or -1 if there is
 * none, or if it is too large for a float64 (the general decoder then refuses the frame).
 * Digits are gathered as an int32 and folded into the double mantissa per run of up to nine:
 * a float multiply-add per digit is a dependency chain that cost about as much as the rest of
 * the scan. Runs of four digits are read as one little-endian word and checked and combined
 * in three steps (SWAR), the rest one by one. The value goes straight into the caller's
 * Float64Array: kept in a module variable, each number was a heap-allocated double, five a
 * sample (281 -> 223 ns a sample with the changes beside it, see docs/performance.md).
 */
function scanNumber(data: Buffer, view: DataView, at: number, out: Float64Array, slot: number): number {
  const start = at;
  const end = data.length;
  const negative = data[at] === minus;
  if (negative) at++;
  let mantissa = 0;
  let exponent = 0;
  let byte = data[at];
  if (byte === zero) {
    byte = data[++at];
    if (isDigit(byte)) return -1; // no leading zeros in JSON
  } else if (!isDigit(byte)) {
    return -1;
  }
  for (let fraction = false; ; ) {
    let chunk = 0;
    let chunkDigits = 0;
    while (chunkDigits < 8 && at + 4 <= end) {
      const word = view.getUint32(at, true);
      if ((word & 0xf0f0f0f0) !== 0x30303030 || ((word + 0x06060606) & 0xf0f0f0f0) !== 0x30303030) break;
      const units = word - 0x30303030;
      const pairs = (Math.imul(units, 10) + (units >>> 8)) & 0x00ff00ff;
      chunk = chunk * 10_000 + ((Math.imul(pairs, 100) + (pairs >>> 16)) & 0xffff);
      chunkDigits += 4;
      at += 4;
    }
    byte = data[at];
    while (isDigit(byte) && chunkDigits < 9) {
      chunk = chunk * 10 + (byte - zero);
      chunkDigits++;
      byte = data[++at];
    }
    mantissa = mantissa * chunkScale[chunkDigits] + chunk;
    if (fraction) exponent -= chunkDigits;
    if (isDigit(byte)) continue;
    if (fraction || byte !== dot) break;
    fraction = true;
    byte = data[++at];
    if (!isDigit(byte)) return -1;
  }
  if (byte === lowerE || byte === upperE) {
    byte = data[++at];
    const exponentNegative = byte === minus;
    if (byte === minus || byte === plus) byte = data[++at];
    if (!isDigit(byte)) return -1;
    let written = 0;
    do {
      // Capped: past a few hundred the value is 0 or Infinity either way (and Number() decides).
      if (written < 100_000) written = written * 10 + (byte - zero);
      byte = data[++at];
    } while (isDigit(byte));
    exponent += exponentNegative ? -written : written;
  }
  if (mantissa < fastMantissaBound && exponent >= -22 && exponent <= 22) {
    const magnitude = exponent < 0 ? mantissa / exactPowersOfTen[-exponent] : mantissa * exactPowersOfTen[exponent];
    out[slot] = negative ? -magnitude : magnitude;
  } else {
    // Up to 19 digits and a point (most 17-digit texts) without a string; the rest as text.
    let value = mantissa < 1e19 && exponent >= -22 && exponent < 0 ? nearestOfDigits(data, start, at, -exponent) : Number.NaN;
    if (Number.isNaN(value)) value = Number(data.toString('latin1', start, at));
    else if (negative) value = -value;
    // Only this path can overflow (1e400); the frame then goes to the general decoder, which refuses it.
    if (!Number.isFinite(value)) return -1;
    out[slot] = value;
  }
  return at;
}

/** Whether the key text at `at` (after its opening quote) is `key` and ends there. */
function startsWithKey(data: Buffer, at: number, key: Buffer): boolean {
  const length = key.length;
  if (data[at + length] !== quote) return false;
  for (let i = 0; i < length; i++) if (data[at + i] !== key[i]) return false;
  return true;
}

/** The index among `keys` of the key text at `at` (after its opening quote); -1 when it is none of them, or escaped. */
function scanKey(data: Buffer, at: number, keys: readonly Buffer[]): number {
  let end = at;
  while (end < data.length && data[end] !== quote) {
    if (data[end] === backslash) return -1;
    end++;
  }
  for (let k = 0; k < keys.length; k++) if (keys[k].length === end - at && startsWithKey(data, at, keys[k])) return k;
  return -1;
}

export interface ScannedFrame {
  batch: SampleBatch;
  hasSeq: boolean;
  /** Whether every sample had its own t (otherwise the receive time stood in). */
  everyT: boolean;
  /** The frame's bytes of its samples array, `[` to `]`. */
  samplesText: Buffer;
}

/**
 * The samples of a `{"samples":[...]}` frame whose every sample is valid for `channels`;
 * null for any other frame (frame-decoder.ts then decodes it the general way).
 */
export function scanJsonFrame(
  data: Buffer,
  channels: readonly string[],
  maxSamples: number,
  receivedAtMs: number,
  allocate: BatchAllocator = SampleBatch.allocate,
): ScannedFrame | null {
  const keys = keysOf(channels);
  const view = new DataView(data.buffer, data.byteOffset, data.length);
  const width = keys.length;
  if (seenIn.length < width) seenIn = new Int32Array(width);
  seenIn.fill(0, 0, width);
  let at = skipSpace(data, 0);
  if (data[at] !== openBrace) return null;
  at = skipSpace(data, at + 1);
  // Bounded first: Buffer.compare throws when the range runs past the frame (`{}` did, and took the process down).
  if (at + samplesKey.length > data.length || data.compare(samplesKey, 0, samplesKey.length, at, at + samplesKey.length) !== 0) return null;
  at = skipSpace(data, at + samplesKey.length);
  if (data[at] !== colon) return null;
  at = skipSpace(data, at + 1);
  if (data[at] !== openBracket) return null;
  const arrayStart = at;
  at = skipSpace(data, at + 1);
  if (data[at] !== openBrace) return null; // an empty array too: rare, left to the general path
  // Every value is at least two bytes of text (a digit and a separator), so this bounds the rows.
  const rowsNeeded = Math.min(maxSamples, Math.ceil(data.length / (2 * width))) * width;
  if (rows.length < rowsNeeded) rows = new Float64Array(rowsNeeded);

  let count = 0;
  let hasSeq = false;
  let everyT = true;
  let previousSeq = -1;
  for (;;) {
    // One sample: `{` then "key": number pairs, in any order.
    if (data[at] !== openBrace || count === maxSamples) return null;
    const sampleNumber = count + 1;
    const row = count * width;
    if (row + width > rows.length) return null;
    let fields = 0;
    let guess = 0;
    at = skipSpace(data, at + 1);
    for (;;) {
      if (data[at] !== quote) return null;
      const k = guess < width && startsWithKey(data, at + 1, keys[guess]) ? guess : scanKey(data, at + 1, keys);
      if (k < 0 || seenIn[k] === sampleNumber) return null;
      at += keys[k].length + 1;
      seenIn[k] = sampleNumber;
      guess = k + 1;
      fields++;
      at = skipSpace(data, at + 1);
      if (data[at] !== colon) return null;
      at = scanNumber(data, view, skipSpace(data, at + 1), rows, row + k);
      if (at < 0) return null;
      at = skipSpace(data, at);
      if (data[at] === comma) {
        at = skipSpace(data, at + 1);
        continue;
      }
      if (data[at] !== closeBrace) return null;
      break;
    }
    const sampleHasSeq = seenIn[0] === sampleNumber;
    if (count === 0) hasSeq = sampleHasSeq;
    else if (sampleHasSeq !== hasSeq) return null;
    if (hasSeq) {
      const seq = rows[row];
      if (!Number.isSafeInteger(seq) || seq < 0 || seq <= previousSeq) return null;
      previousSeq = seq;
    }
    if (seenIn[1] !== sampleNumber) {
      rows[row + 1] = receivedAtMs;
      everyT = false;
    }
    const present = fields - (sampleHasSeq ? 1 : 0) - (seenIn[1] === sampleNumber ? 1 : 0);
    if (present !== width - 2) return null;
    count++;
    at = skipSpace(data, at + 1);
    if (data[at] === comma) {
      at = skipSpace(data, at + 1);
      continue;
    }
    if (data[at] !== closeBracket) return null;
    break;
  }
  const arrayEnd = at + 1;
  at = skipSpace(data, arrayEnd);
  if (data[at] !== closeBrace || skipSpace(data, at + 1) !== data.length) return null;
  return { batch: columnsOf(count, width - 2, hasSeq, allocate), hasSeq, everyT, samplesText: data.subarray(arrayStart, arrayEnd) };
}

/** The scanned rows as a batch's columns; a frame without seqs leaves its seq column 0 (session-state.ts numbers it). */
function columnsOf(count: number, channelCount: number, hasSeq: boolean, allocate: BatchAllocator): SampleBatch {
  const batch = allocate(count, channelCount);
  const columns = batch.columns;
  const width = channelCount + 2;
  if (!hasSeq) columns.fill(0, 0, count);
  for (let k = hasSeq ? 0 : 1; k < width; k++) {
    const column = k * count;
    for (let i = 0; i < count; i++) columns[column + i] = rows[i * width + k];
  }
  return batch;
}
