/**
 * Text encodings of samples, shared by the live socket and every export format.
 * Built by hand rather than with JSON.stringify of per-sample objects: channel names are
 * restricted to `A-Z a-z 0-9 _ . -` (contract), so they never need escaping, and skipping
 * the intermediate objects is what keeps export near the serialization limit
 * (../shared/perf/LIMITS.md: ~0.9 M samples/s).
 */
import type { SampleBatch } from './sample-batch.ts';

/**
 * The shortest text that parses back to the same float64 (ECMAScript Number::toString
 * already is), except that -0 keeps its sign: String(-0) is "0".
 */
export function formatNumber(value: number): string {
  return value === 0 && 1 / value < 0 ? '-0' : String(value);
}

/** Per-channel `,"name":` prefixes, computed once per session rather than per sample. */
export function jsonKeyPrefixes(channels: readonly string[]): string[] {
  return channels.map((name) => `,"${name}":`);
}

/** Samples as comma-separated JSON objects (no brackets), `{"seq":1,"t":2,"ax":3}`. */
export function samplesToJson(batch: SampleBatch, keyPrefixes: readonly string[], separator = ','): string {
  const parts: string[] = new Array(batch.count);
  const n = batch.count;
  const columns = batch.columns;
  for (let i = 0; i < n; i++) {
    let text = '{"seq":' + columns[i] + ',"t":' + formatNumber(columns[n + i]);
    for (let c = 0; c < keyPrefixes.length; c++) {
      text += keyPrefixes[c] + formatNumber(columns[(c + 2) * n + i]);
    }
    parts[i] = text + '}';
  }
  return parts.join(separator);
}

/** Samples as CSV lines `seq,t,<channels>\n`, each ending with `\n`. */
export function samplesToCsv(batch: SampleBatch): string {
  const n = batch.count;
  const width = batch.channelCount;
  const columns = batch.columns;
  let text = '';
  for (let i = 0; i < n; i++) {
    text += columns[i] + ',' + formatNumber(columns[n + i]);
    for (let c = 0; c < width; c++) text += ',' + formatNumber(columns[(c + 2) * n + i]);
    text += '\n';
  }
  return text;
}
