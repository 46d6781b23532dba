/**
 * The export limit: serializing the same samples to JSON text in one Node thread, from
 * in-memory typed arrays, with no database and no HTTP (about 0.88 M samples/s in the machine's
 * limits, docs/performance.md).
 * Two plain ways are timed, per-sample objects + JSON.stringify and string concatenation,
 * on the same 2,000-sample chunks the server reads; the faster one is the limit, since a
 * limit is the best a plain approach does, not the one that flatters the ratio.
 */
import type { SampleBatch } from '../../src/samples/sample-batch.ts';
import { makeBatch } from '../lib/frames.ts';
import { serve } from '../lib/helper-side.ts';
import { median } from '../lib/stats.ts';

function viaStringify(batches: readonly SampleBatch[]): number {
  let chars = 0;
  for (const batch of batches) {
    const n = batch.count;
    const c = batch.columns;
    const samples = new Array(n);
    for (let i = 0; i < n; i++) samples[i] = { seq: c[i], t: c[n + i], ax: c[2 * n + i], ay: c[3 * n + i], az: c[4 * n + i] };
    chars += JSON.stringify(samples).length;
  }
  return chars;
}

function viaConcat(batches: readonly SampleBatch[]): number {
  let chars = 0;
  for (const batch of batches) {
    const n = batch.count;
    const c = batch.columns;
    const parts = new Array<string>(n);
    for (let i = 0; i < n; i++) {
      // biome-ignore lint/style/useTemplate: the plain concatenation this limit times, as written
      parts[i] = '{"seq":' + c[i] + ',"t":' + c[n + i] + ',"ax":' + c[2 * n + i] + ',"ay":' + c[3 * n + i] + ',"az":' + c[4 * n + i] + '}';
    }
    // biome-ignore lint/style/useTemplate: the plain concatenation this limit times, as written
    chars += ('[' + parts.join(',') + ']').length;
  }
  return chars;
}

function run(args: { samples: number; chunkSamples: number; repeats: number }) {
  const batches: SampleBatch[] = [];
  for (let first = 1; first <= args.samples; first += args.chunkSamples) {
    batches.push(makeBatch(first, Math.min(args.chunkSamples, args.samples - first + 1)));
  }
  const methods = { stringify: viaStringify, concat: viaConcat };
  const rates: Record<string, number[]> = { stringify: [], concat: [] };
  let chars = 0;
  // Interleaved repeats, median of each, as the machine's limits were measured (docs/performance.md).
  for (let r = 0; r < args.repeats; r++) {
    for (const [name, method] of Object.entries(methods)) {
      const started = performance.now();
      chars = method(batches);
      rates[name].push(args.samples / ((performance.now() - started) / 1000));
    }
  }
  const medians = Object.fromEntries(Object.entries(rates).map(([name, values]) => [name, median(values)]));
  return { samplesPerS: Math.max(...Object.values(medians)), medians, bytesPerSample: chars / args.samples };
}

serve({ run: (args) => run(args as unknown as { samples: number; chunkSamples: number; repeats: number }) });
