/**
 * Samples as JSON text, built by hand for two reasons: JSON.stringify writes -0 as 0 (the
 * contract has every value round-trip as the same float64, sign of zero included), and the
 * channel keys of a session can be prepared once instead of once per sample.
 */
import type { Sample, SampleInput } from './types.ts';

/** The shortest text that parses back to the same float64, keeping the sign of -0. */
export function formatNumber(value: number): string {
  return value === 0 && 1 / value < 0 ? '-0' : String(value);
}

/**
 * Any sample as one JSON line, keys in their own order (for output such as `tail`); a key
 * whose value is undefined is left out, as JSON.stringify does.
 */
export function sampleToJson(sample: Sample | SampleInput): string {
  let text = '{';
  let first = true;
  for (const key of Object.keys(sample)) {
    const value = sample[key];
    if (value === undefined) continue;
    text += `${first ? '' : ','}${JSON.stringify(key)}:${value === null ? 'null' : formatNumber(value)}`;
    first = false;
  }
  return `${text}}`;
}

const maxSeq = 2 ** 53 - 1;

/**
 * Validates samples against a session's channels and encodes them. Bad input is a bug in the
 * caller, so it throws at push time instead of becoming a frame the server rejects later.
 */
export class SampleCodec {
  private readonly prefixes: string[];

  /** `nullable`: whether a channel's value may be null (the session's `nullable`). */
  constructor(
    readonly channels: readonly string[],
    readonly nullable = false,
  ) {
    this.prefixes = channels.map((name) => `,${JSON.stringify(name)}:`);
  }

  /** Throws a TypeError naming what is wrong; `index` locates the sample in a pushed array. */
  validate(sample: SampleInput, index: number): void {
    if (typeof sample !== 'object' || sample === null) throw new TypeError(`sample ${index} is not an object`);
    let keys = 0;
    for (const name of this.channels) {
      const value = sample[name];
      if ((typeof value !== 'number' || !Number.isFinite(value)) && !(value === null && this.nullable)) {
        const allowed = this.nullable ? 'a finite number or null' : 'a finite number';
        throw new TypeError(`sample ${index}: channel "${name}" must be ${allowed}, got ${String(value)}`);
      }
      keys++;
    }
    if (sample.seq !== undefined) {
      if (!Number.isInteger(sample.seq) || sample.seq < 0 || sample.seq > maxSeq) {
        throw new TypeError(`sample ${index}: seq must be an integer from 0 to 2^53-1, got ${String(sample.seq)}`);
      }
      keys++;
    }
    if (sample.t !== undefined) {
      if (typeof sample.t !== 'number' || !Number.isFinite(sample.t)) throw new TypeError(`sample ${index}: t must be a finite number`);
      keys++;
    }
    if (Object.keys(sample).length !== keys) {
      const extra = Object.keys(sample).filter((key) => key !== 'seq' && key !== 't' && !this.channels.includes(key));
      throw new TypeError(`sample ${index}: unknown keys ${extra.join(', ')}; the session's channels are ${this.channels.join(', ')}`);
    }
  }

  encode(seq: number, t: number, sample: SampleInput): string {
    let text = `{"seq":${seq},"t":${formatNumber(t)}`;
    for (let c = 0; c < this.channels.length; c++) {
      const value = sample[this.channels[c]] as number | null;
      text += this.prefixes[c] + (value === null ? 'null' : formatNumber(value));
    }
    return `${text}}`;
  }
}
