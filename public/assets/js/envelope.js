/**
 * A long recording on the viewer page: what the lanes draw for a time range, read by REST
 * rather than replayed over the live socket, and never more than about one bucket per pixel.
 *
 * A range holding more than `maxRawSamples` is read as its envelope,
 * `GET /sessions/{id}/aggregate?points=N&fn=first,last,min,max&fill=null` (docs/reading-data.md):
 * per bucket its min and max (the band, so a one-sample spike still shows) and its first and
 * last value (the line, drawn from the bucket's start to its end, so it plots like the
 * samples). Empty buckets come back as nulls (`fill=null`): gaps, like a null reading. A range
 * with fewer samples (the counts of the envelope already shown tell) is read as the samples
 * themselves, `GET /sessions/{id}/data?fromT=&toT=`. Each new range cancels the request of the
 * one before, so only the last range a user asked for is drawn.
 */
import { access } from './access-session.js';

/** Past this many samples a range is read as its envelope: 100,000 samples are ~6 MB of JSON. */
export const maxRawSamples = 100_000;
const envelopeFunctions = 'first,last,min,max';

export class Envelope {
  /**
   * @param {{ sessionId: string, channels: string[], firstT: number, lastT: number,
   *   onData: (data: object) => void, onError: (error: Error) => void }} options
   */
  constructor({ sessionId, channels, firstT, lastT, onData, onError }) {
    this.path = `/api/v1/sessions/${encodeURIComponent(sessionId)}`;
    this.channels = channels;
    this.wholeRange = [firstT, lastT];
    this.onData = onData;
    this.onError = onError;
    /** The envelope of the whole recording, kept: zooming out shows it again without a request. */
    this.whole = null;
    this.request = null;
  }

  /** Reads `range` ([fromT, toT], null for the whole recording) at `points` buckets, and hands it to onData. */
  async show(range, points) {
    this.request?.abort();
    if (range === null && this.whole?.points === points) return this.onData(this.whole);
    const request = new AbortController();
    this.request = request;
    try {
      const raw = range !== null && this.#estimatedCount(range) <= maxRawSamples;
      const data = raw ? await this.#samples(range, request.signal) : await this.#envelope(range, points, request.signal);
      if (request.signal.aborted) return;
      if (range === null) this.whole = data;
      this.onData(data);
    } catch (error) {
      if (!request.signal.aborted) this.onError(error);
    }
  }

  /** The recording's last sample, for the lanes' readouts. */
  async lastSample() {
    return (await this.#get(`${this.path}/latest`)).sample;
  }

  /** Samples in `range` by the counts of the whole recording's buckets it overlaps (an upper bound). */
  #estimatedCount([fromT, toT]) {
    if (this.whole === null) return Number.POSITIVE_INFINITY;
    const { bucketMs, starts, counts } = this.whole;
    let count = 0;
    for (let i = 0; i < starts.length; i += 1) {
      if (starts[i] + bucketMs > fromT && starts[i] <= toT) count += counts[i];
    }
    return count;
  }

  async #envelope(range, points, signal) {
    const [fromT, toT] = range ?? this.wholeRange;
    // toT is exclusive: one past the last instant keeps the last sample of the recording in.
    const query = new URLSearchParams({ points: String(points), fn: envelopeFunctions, fill: 'null', fromT: String(fromT) });
    query.set('toT', String(range === null ? toT + 1 : toT));
    const body = await this.#get(`${this.path}/aggregate?${query}`, signal);
    return { ...envelopeColumns(body, this.channels), source: 'aggregate', points, fromT, toT };
  }

  async #samples([fromT, toT], signal) {
    const query = new URLSearchParams({ format: 'json', fromT: String(Math.floor(fromT)), toT: String(Math.ceil(toT) + 1) });
    const { samples } = await this.#get(`${this.path}/data?${query}`, signal);
    const t = Float64Array.from(samples, (sample) => sample.t);
    const lines = this.channels.map((channel) => samples.map((sample) => sample[channel]));
    return { source: 'raw', bucketMs: null, fromT, toT, t, lines, lows: lines, highs: lines, count: samples.length };
  }

  async #get(url, signal) {
    const response = await access.fetch(url, { signal });
    const body = await response.json().catch(() => ({}));
    if (response.status !== 200) {
      throw Object.assign(new Error(body.detail ?? `the server answered ${response.status}`), { status: response.status });
    }
    return body;
  }
}

/**
 * An aggregate answer as lane columns: two points per bucket, at its start and its end, the
 * line from the bucket's first value to its last, the band from its min to its max.
 */
export function envelopeColumns({ bucketMs, buckets }, channels) {
  const t = new Float64Array(2 * buckets.length);
  const lines = channels.map(() => new Array(t.length).fill(null));
  const lows = channels.map(() => new Array(t.length).fill(null));
  const highs = channels.map(() => new Array(t.length).fill(null));
  buckets.forEach((bucket, i) => {
    t[2 * i] = bucket.t;
    t[2 * i + 1] = bucket.t + bucketMs;
    channels.forEach((channel, c) => {
      const values = bucket[channel];
      if (values === undefined || values.min === null) return;
      lines[c][2 * i] = values.first;
      lines[c][2 * i + 1] = values.last;
      lows[c][2 * i] = lows[c][2 * i + 1] = values.min;
      highs[c][2 * i] = highs[c][2 * i + 1] = values.max;
    });
  });
  const count = buckets.reduce((sum, bucket) => sum + bucket.count, 0);
  return {
    bucketMs,
    t,
    lines,
    lows,
    highs,
    count,
    starts: buckets.map((bucket) => bucket.t),
    counts: buckets.map((bucket) => bucket.count),
  };
}
