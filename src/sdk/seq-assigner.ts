/**
 * The seqs of a producer's samples. Either the caller gives every sample a seq, strictly
 * increasing across pushes, or none, and seqs are numbered on from `start(first)`: the
 * session's highest committed seq + 1, known only once a connection was accepted. Samples
 * numbered before that wait here, copied, so that the caller may reuse its objects.
 */
import type { SampleInput } from './types.ts';

/** A sample whose `t` is set (the producer's clock at push time, unless the caller gave one). */
type TimedSample = SampleInput & { t: number };

export class SeqAssigner {
  private mode: 'auto' | 'caller' | null = null;
  private lastCallerSeq = -1;
  private nextSeq: number | null = null;
  private waiting: TimedSample[] = [];

  /** Samples numbered by the SDK that wait for `start`. */
  get waitingCount(): number {
    return this.waiting.length;
  }

  /** The seq of the last sample pushed, or null when it is not assigned yet (or nothing was pushed). */
  get lastSeq(): number | null {
    if (this.mode === 'caller') return this.lastCallerSeq;
    return this.mode === 'auto' && this.nextSeq !== null ? this.nextSeq - 1 : null;
  }

  /**
   * Takes a push if it keeps to one mode and its caller seqs increase; otherwise throws a
   * TypeError and takes nothing. `validate` runs first on each sample, so the error named is
   * the first one in push order.
   */
  admit(samples: readonly SampleInput[], validate: (sample: SampleInput, index: number) => void): void {
    let mode = this.mode;
    let lastSeq = this.lastCallerSeq;
    samples.forEach((sample, index) => {
      validate(sample, index);
      const sampleMode = sample.seq === undefined ? 'auto' : 'caller';
      mode ??= sampleMode;
      if (sampleMode !== mode) throw new TypeError('either every pushed sample has a seq or none has');
      if (sample.seq !== undefined) {
        if (sample.seq <= lastSeq) throw new TypeError(`sample ${index}: seq ${sample.seq} is not above the previous seq ${lastSeq}`);
        lastSeq = sample.seq;
      }
    });
    this.mode = mode;
    this.lastCallerSeq = lastSeq;
  }

  /**
   * The seq of an admitted sample taken at time `t`: its own, or the next one; null when it
   * has to wait for `start` (a copy with `t` waits).
   */
  assign(sample: SampleInput, t: number): number | null {
    if (sample.seq !== undefined) return sample.seq;
    if (this.nextSeq !== null) return this.nextSeq++;
    this.waiting.push({ ...sample, t });
    return null;
  }

  /** Sets the first SDK seq, once; returns the samples that waited, with their seqs, in push order. */
  start(first: number): Array<{ seq: number; sample: TimedSample }> {
    if (this.nextSeq !== null) return [];
    this.nextSeq = first;
    const numbered = this.waiting.map((sample) => ({ seq: this.nextSeq!++, sample }));
    this.waiting = [];
    return numbered;
  }
}
