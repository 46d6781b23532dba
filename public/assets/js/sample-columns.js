/**
 * Samples as columns of float64 (seq, t, then one column per channel), the shape uPlot
 * draws from, so a frame is drawn from views of these arrays with no per-sample objects and
 * no copying.
 *
 * The live samples sit in [start, end) of each column. Dropping old samples moves `start`;
 * when `end` reaches the capacity the live part moves to freshly allocated columns (twice
 * its length), never in place: views handed to the plot earlier stay valid until the next
 * frame replaces them.
 */
export class SampleColumns {
  /**
   * @param {number} channelCount
   * @param {{ maxSamples?: number, initialCapacity?: number }} limits
   *   maxSamples bounds memory for a live session whatever the producer's rate; Infinity
   *   keeps everything (a finished recording shown whole).
   */
  constructor(channelCount, { maxSamples = Infinity, initialCapacity = 4096 } = {}) {
    this.channelCount = channelCount;
    this.maxSamples = maxSamples;
    this.initialCapacity = initialCapacity;
    this.start = 0;
    this.end = 0;
    this.hasNulls = false;
    this.#allocate(initialCapacity);
  }

  get length() {
    return this.end - this.start;
  }

  get lastSeq() {
    return this.length === 0 ? null : this.seq[this.end - 1];
  }

  get lastT() {
    return this.length === 0 ? null : this.t[this.end - 1];
  }

  get firstT() {
    return this.length === 0 ? null : this.t[this.start];
  }

  /** Appends one sample; `channels` names the sample's keys in column order. */
  append(sample, channels) {
    if (this.end === this.capacity) this.#relocate();
    const i = this.end;
    this.seq[i] = sample.seq;
    this.t[i] = sample.t;
    for (let c = 0; c < channels.length; c += 1) {
      const value = sample[channels[c]];
      // A nullable session's null is held as NaN, which no other value is.
      if (value === null) this.hasNulls = true;
      this.values[c][i] = value ?? Number.NaN;
    }
    this.end = i + 1;
    if (this.length > this.maxSamples) this.start = this.end - this.maxSamples;
  }

  /** Drops samples older than `minT` from the front (t is the producer's clock, ascending). */
  dropBefore(minT) {
    while (this.start < this.end && this.t[this.start] < minT) this.start += 1;
  }

  /** The number of samples with t above `sinceT`, counted from the newest backwards. */
  countSince(sinceT) {
    let i = this.end - 1;
    while (i >= this.start && this.t[i] > sinceT) i -= 1;
    return this.end - 1 - i;
  }

  /** The newest sample's value of each channel, NaN for a null; null before any sample. */
  lastValues() {
    return this.length === 0 ? null : this.values.map((column) => column[this.end - 1]);
  }

  /**
   * The columns from the oldest kept sample on, as views. uPlot draws a gap at null and would
   * join the points around a NaN, so once a null has been seen the value columns are copied
   * into arrays with null for NaN (only for such sessions: the copy costs a pass per frame).
   */
  views() {
    const { start, end } = this;
    const values = this.values.map((column) => column.subarray(start, end));
    return {
      seq: this.seq.subarray(start, end),
      t: this.t.subarray(start, end),
      values: this.hasNulls ? values.map((column) => Array.from(column, (value) => (Number.isNaN(value) ? null : value))) : values,
    };
  }

  #allocate(capacity) {
    this.capacity = capacity;
    this.seq = new Float64Array(capacity);
    this.t = new Float64Array(capacity);
    this.values = Array.from({ length: this.channelCount }, () => new Float64Array(capacity));
  }

  #relocate() {
    const { seq, t, values, start, end } = this;
    this.#allocate(Math.max(this.initialCapacity, 2 * (end - start)));
    this.seq.set(seq.subarray(start, end));
    this.t.set(t.subarray(start, end));
    values.forEach((column, c) => {
      this.values[c].set(column.subarray(start, end));
    });
    this.start = 0;
    this.end = end - start;
  }
}
