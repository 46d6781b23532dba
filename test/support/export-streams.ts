/**
 * Support for the export tests: a large session written straight through the storage layer,
 * samples whose every value can be recomputed from its seq, streaming readers that check a
 * body piece by piece without ever holding it whole, and a sampler of this process's memory
 * (the app under test runs in the same process, so its memory is ours to watch).
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import pg from 'pg';
import { SampleBatch } from '../../src/samples/sample-batch.ts';
import { SampleStore } from '../../src/storage/sample-store.ts';
import type { Sample } from './clients.ts';

export const exportChannels = ['ax', 'ay', 'az'] as const;

/** Values that are easy to get wrong in text: the sign of zero, subnormals, extremes, exponents. */
const awkwardValues = [-0, 0.1, 5e-324, -1.7976931348623157e308, 1e21, 123456789.12345679, -1e-7, 2 ** 53 - 1];

export function expectedSample(seq: number): Sample {
  return {
    seq,
    t: 1.7e12 + seq * 0.5,
    ax: Math.sin(seq),
    ay: Math.cos(seq) * 9.81,
    az: seq % 100 === 0 ? awkwardValues[(seq / 100) % awkwardValues.length] : Math.sin(seq) / seq,
  };
}

export function expectedSamples(fromSeq: number, count: number): Sample[] {
  return Array.from({ length: count }, (_, i) => expectedSample(fromSeq + i));
}

/** JSON.stringify writes -0 as `0`; a producer that keeps the sign writes `-0`. */
function numberText(value: number): string {
  return Object.is(value, -0) ? '-0' : String(value);
}

/** An ingest frame `{"samples":[...]}` as text that keeps every value exactly, -0 included. */
export function samplesFrameText(samples: readonly Sample[]): string {
  const names = ['seq', 't', ...exportChannels];
  const objects = samples.map((sample) => `{${names.map((name) => `"${name}":${numberText(sample[name])}`).join(',')}}`);
  return `{"samples":[${objects.join(',')}]}`;
}

function batchOf(fromSeq: number, count: number): SampleBatch {
  const batch = SampleBatch.allocate(count, exportChannels.length);
  const { columns } = batch;
  for (let i = 0; i < count; i++) {
    const sample = expectedSample(fromSeq + i);
    columns[i] = sample.seq;
    columns[count + i] = sample.t;
    exportChannels.forEach((name, c) => {
      columns[(c + 2) * count + i] = sample[name];
    });
  }
  return batch;
}

/**
 * Stores seqs [fromSeq, toSeq] of `expectedSample` as the writer would: chunk rows of
 * `chunkSamples`, several chunks per commit, the session's counters moved in the same commit.
 * Commits are kept small so that the filling itself does not inflate the heap.
 */
export async function storeSamplesDirectly(
  databaseUrl: string,
  sessionId: string,
  fromSeq: number,
  toSeq: number,
  { chunkSamples = 2_000, chunksPerCommit = 50 } = {},
): Promise<void> {
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 1 });
  try {
    const store = new SampleStore(pool);
    let next = fromSeq;
    while (next <= toSeq) {
      const rows = [];
      let count = 0;
      for (let c = 0; c < chunksPerCommit && next <= toSeq; c++) {
        const size = Math.min(chunkSamples, toSeq - next + 1);
        rows.push({ sessionId, batches: [batchOf(next, size)] });
        next += size;
        count += size;
      }
      await store.commitChunks(rows, [{ sessionId, sampleCount: count, lastSeq: next - 1 }]);
    }
  } finally {
    await pool.end();
  }
}

/** Throws at the first sample that is not `expectedSample(expectedSeq)`, key for key, with Object.is. */
export class SampleChecker {
  count = 0;
  constructor(private nextSeq: number) {}

  check(sample: Record<string, number | null>): void {
    const expected = expectedSample(this.nextSeq);
    const keys = Object.keys(sample);
    if (keys.length !== 2 + exportChannels.length) {
      throw new Error(`sample ${this.count} has keys ${keys.join(',')}; expected seq,t,${exportChannels.join(',')}`);
    }
    for (const key of ['seq', 't', ...exportChannels]) {
      if (!Object.is(sample[key], expected[key])) {
        throw new Error(`sample ${this.count} (expected seq ${this.nextSeq}): ${key} is ${sample[key]}, expected ${expected[key]}`);
      }
    }
    this.nextSeq++;
    this.count++;
  }
}

/** Counts the bytes of a body as they pass, so the readers can report the body's size. */
export interface BodyMeter {
  bytes: number;
}

async function* texts(body: ReadableStream<Uint8Array>, meter: BodyMeter): AsyncGenerator<string> {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  const reader = body.getReader();
  let finished = false;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      meter.bytes += value.byteLength;
      yield decoder.decode(value, { stream: true });
    }
    finished = true;
    const rest = decoder.decode();
    if (rest !== '') yield rest;
  } finally {
    // A check that failed mid-body leaves the rest unread: cancelling closes the connection,
    // else the server keeps the response open and closing the app waits for it for ever.
    if (!finished) await reader.cancel().catch(() => undefined);
    reader.releaseLock();
  }
}

/**
 * The lines of a body, each without its `\n`, handed over a body chunk's worth at a time
 * (an await per line would cost more than the export itself). A final piece with no `\n`
 * after it is handed over too and recorded in `unterminated`, so a caller can insist that
 * every line is terminated.
 */
export class LineReader {
  readonly meter: BodyMeter = { bytes: 0 };
  unterminated: string | null = null;

  constructor(private readonly body: ReadableStream<Uint8Array>) {}

  async *lines(): AsyncGenerator<string[]> {
    let pending = '';
    for await (const text of texts(this.body, this.meter)) {
      const lines = (pending + text).split('\n');
      pending = lines.pop()!;
      if (lines.length > 0) yield lines;
    }
    if (pending !== '') {
      this.unterminated = pending;
      yield [pending];
    }
  }
}

/**
 * The sample objects of a JSON export body, read incrementally and handed over a body
 * chunk's worth at a time. The body must be exactly `head`, then sample objects separated by
 * `,`, then `tail`. Samples hold only numbers (no strings, no nesting), so a sample object
 * ends at the first `}` after its `{`; each is then parsed on its own with JSON.parse, which
 * also rejects anything that is not JSON.
 */
export class JsonExportReader {
  readonly meter: BodyMeter = { bytes: 0 };

  constructor(
    private readonly body: ReadableStream<Uint8Array>,
    private readonly head: string,
    private readonly tail: string,
  ) {}

  async *samples(): AsyncGenerator<Array<Record<string, number>>> {
    let state: 'head' | 'samples' | 'tail' = 'head';
    let pending = '';
    let seenSample = false;
    let expectSeparator = false;
    for await (const text of texts(this.body, this.meter)) {
      pending += text;
      let at = 0;
      if (state === 'head') {
        if (pending.length < this.head.length) {
          if (!this.head.startsWith(pending))
            throw new Error(`body starts ${JSON.stringify(pending)}; expected ${JSON.stringify(this.head)}`);
          continue;
        }
        if (!pending.startsWith(this.head)) {
          throw new Error(`body starts ${JSON.stringify(pending.slice(0, this.head.length + 20))}; expected ${JSON.stringify(this.head)}`);
        }
        at = this.head.length;
        state = 'samples';
      }
      const parsed: Array<Record<string, number>> = [];
      while (state === 'samples' && at < pending.length) {
        const char = pending[at];
        if (char === ']' && (expectSeparator || !seenSample)) {
          state = 'tail';
        } else if (expectSeparator) {
          if (char !== ',') throw new Error(`expected "," or "]" after a sample, got ${JSON.stringify(pending.slice(at, at + 40))}`);
          at++;
          expectSeparator = false;
        } else {
          if (char !== '{') throw new Error(`expected a sample object, got ${JSON.stringify(pending.slice(at, at + 40))}`);
          const end = pending.indexOf('}', at);
          if (end === -1) break;
          parsed.push(JSON.parse(pending.slice(at, end + 1)) as Record<string, number>);
          at = end + 1;
          seenSample = true;
          expectSeparator = true;
        }
      }
      pending = pending.slice(at);
      if (parsed.length > 0) yield parsed;
      // The tail is short: anything longer than it is already wrong, and need not be kept.
      if (state === 'tail' && pending.length > this.tail.length) {
        throw new Error(`body ends ${JSON.stringify(pending.slice(0, this.tail.length + 20))}…; expected ${JSON.stringify(this.tail)}`);
      }
    }
    if (state !== 'tail') throw new Error(`body ended inside the ${state}: ${JSON.stringify(pending.slice(0, 80))}`);
    if (pending !== this.tail) throw new Error(`body ends ${JSON.stringify(pending)}; expected ${JSON.stringify(this.tail)}`);
  }
}

/**
 * A full garbage collection on demand: `global.gc` when the process runs with --expose-gc
 * (NODE_OPTIONS=--expose-gc works on Node 20), otherwise the same function obtained by
 * turning the flag on now and reading `gc` from a fresh context, which V8 then exposes.
 */
export function fullGc(): () => void {
  const exposed = (globalThis as { gc?: () => void }).gc;
  if (exposed) return exposed;
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

export interface MemoryPeak {
  /** Growth of heapUsed + arrayBuffers over the baseline, right after a full collection, at its highest. */
  retainedBytes: number;
  /** Growth of heapUsed + arrayBuffers over the baseline, garbage included, at its highest. */
  heapBytes: number;
  /** Growth of the resident set over the baseline, at its highest. */
  rssBytes: number;
  samples: number;
  collectedSamples: number;
}

/**
 * Samples memory every `intervalMs`, and every `collectEvery`-th time after a full
 * collection: those samples see only memory that is still reachable (buffered body text,
 * objects per sample) rather than garbage the collector has not reached yet, which is what
 * "memory stays flat" is about. Not every time, because a full collection per 50 ms slows
 * the export it is watching about threefold. The baseline is taken after a collection too.
 */
export function startMemorySampler({ intervalMs = 50, collectEvery = 5 } = {}): { stop(): MemoryPeak } {
  const gc = fullGc();
  const measure = () => {
    const usage = process.memoryUsage();
    return { heap: usage.heapUsed + usage.arrayBuffers, rss: usage.rss };
  };
  gc();
  const baseline = measure();
  const peak: MemoryPeak = { retainedBytes: 0, heapBytes: 0, rssBytes: 0, samples: 0, collectedSamples: 0 };
  const sample = () => {
    const collect = peak.samples % collectEvery === collectEvery - 1;
    if (collect) gc();
    const now = measure();
    if (collect) {
      peak.retainedBytes = Math.max(peak.retainedBytes, now.heap - baseline.heap);
      peak.collectedSamples++;
    }
    peak.heapBytes = Math.max(peak.heapBytes, now.heap - baseline.heap);
    peak.rssBytes = Math.max(peak.rssBytes, now.rss - baseline.rss);
    peak.samples++;
  };
  const timer = setInterval(sample, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      return peak;
    },
  };
}

export const MB = 1024 * 1024;
