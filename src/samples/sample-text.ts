/**
 * Text encodings of samples, shared by the live socket and every export format, written as
 * bytes into a caller's buffer (numbers by number-text.ts) rather than built as strings: no
 * string per number or per sample is what keeps export near the serialization limit
 * (docs/performance.md). Channel names are restricted to `A-Z a-z 0-9 _ . -` (contract), so
 * keys never need escaping and every byte is ASCII.
 */
import { maxNumberBytes, writeNumber } from './number-text.ts';
import type { SampleBatch } from './sample-batch.ts';

const comma = 0x2c;
const nullText = Buffer.from('null', 'latin1');
const newline = 0x0a;
const closeBrace = 0x7d;

/**
 * What precedes each column's value in a JSON sample: `{"seq":`, `,"t":`, then `,"name":` per
 * channel. Computed once per session or export rather than per sample.
 */
export function jsonColumnKeys(channels: readonly string[]): Buffer[] {
  return ['{"seq":', ',"t":', ...channels.map((name) => `,"${name}":`)].map((key) => Buffer.from(key, 'latin1'));
}

/** Room that writeJsonSamples needs for `batch`, however its numbers are written. */
export function maxJsonSamplesBytes(batch: SampleBatch, columnKeys: readonly Uint8Array[]): number {
  let perSample = 2 + columnKeys.length * maxNumberBytes;
  for (const key of columnKeys) perSample += key.length;
  return batch.count * perSample;
}

/** Room that writeCsvSamples needs for `batch`. */
export function maxCsvSamplesBytes(batch: SampleBatch): number {
  return batch.count * (batch.channelCount + 2) * (maxNumberBytes + 1);
}

/** The decoders accept a seq of -0 (it is not below 0); seqs have always been written as 0 then, so + 0 drops the sign. */
function seqOf(value: number): number {
  return value + 0;
}

function writeBytes(out: Uint8Array, at: number, bytes: Uint8Array): number {
  // A loop, not out.set(): keys are a few bytes, where set()'s call costs more than the copy.
  for (let i = 0; i < bytes.length; i++) out[at++] = bytes[i];
  return at;
}

/**
 * Samples as JSON objects `{"seq":1,"t":2,"ax":3}` separated by the byte `separator` (none
 * before the first or after the last), written at `at`; returns where they end.
 */
export function writeJsonSamples(
  out: Uint8Array,
  at: number,
  batch: SampleBatch,
  columnKeys: readonly Uint8Array[],
  separator: number,
): number {
  const n = batch.count;
  const columns = batch.columns;
  const hints = new Uint8Array(columnKeys.length);
  for (let i = 0; i < n; i++) {
    if (i > 0) out[at++] = separator;
    at = writeBytes(out, at, columnKeys[0]);
    at = writeNumber(out, at, seqOf(columns[i]), hints, 0);
    for (let c = 1; c < columnKeys.length; c++) {
      at = writeBytes(out, at, columnKeys[c]);
      const value = columns[c * n + i];
      // NaN is a nullable session's null (ingest/frame-decoder.ts): no other value is NaN.
      at = Number.isNaN(value) ? writeBytes(out, at, nullText) : writeNumber(out, at, value, hints, c);
    }
    out[at++] = closeBrace;
  }
  return at;
}

/** Samples as CSV lines `seq,t,<channels>`, each ending with `\n`, written at `at`; returns where they end. */
export function writeCsvSamples(out: Uint8Array, at: number, batch: SampleBatch): number {
  const n = batch.count;
  const width = batch.channelCount + 2;
  const columns = batch.columns;
  const hints = new Uint8Array(width);
  for (let i = 0; i < n; i++) {
    at = writeNumber(out, at, seqOf(columns[i]), hints, 0);
    for (let c = 1; c < width; c++) {
      out[at++] = comma;
      const value = columns[c * n + i];
      // A null is an empty field.
      if (!Number.isNaN(value)) at = writeNumber(out, at, value, hints, c);
    }
    out[at++] = newline;
  }
  return at;
}

/** Samples as comma-separated JSON objects (no brackets), `{"seq":1,"t":2,"ax":3}`, as bytes. */
export function samplesJson(batch: SampleBatch, columnKeys: readonly Uint8Array[]): Buffer {
  const out = Buffer.allocUnsafe(maxJsonSamplesBytes(batch, columnKeys));
  return out.subarray(0, writeJsonSamples(out, 0, batch, columnKeys, comma));
}
