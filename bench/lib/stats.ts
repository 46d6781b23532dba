/**
 * Latency samples and their summaries. Raw values are kept (not a bucketed histogram):
 * a step holds at most a few hundred thousand latencies per process, a few MB, and exact
 * percentiles leave nothing to argue about when a figure sits next to its bar.
 */

/** A growable Float64Array: pushing a million values costs no per-value allocation. */
export class Samples {
  private data = new Float64Array(1024);
  length = 0;

  push(value: number): void {
    if (this.length === this.data.length) {
      const next = new Float64Array(this.data.length * 2);
      next.set(this.data);
      this.data = next;
    }
    this.data[this.length++] = value;
  }

  values(): Float64Array {
    return this.data.slice(0, this.length);
  }

  clear(): void {
    this.length = 0;
  }
}

export interface Summary {
  count: number;
  p50: number;
  p99: number;
  max: number;
  mean: number;
}

/** Nearest-rank percentiles over every value of every part (parts come from several processes). */
export function summarize(parts: readonly Float64Array[]): Summary {
  const total = parts.reduce((sum, part) => sum + part.length, 0);
  if (total === 0) return { count: 0, p50: NaN, p99: NaN, max: NaN, mean: NaN };
  const all = new Float64Array(total);
  let at = 0;
  for (const part of parts) {
    all.set(part, at);
    at += part.length;
  }
  all.sort();
  const rank = (p: number) => all[Math.min(total - 1, Math.max(0, Math.ceil(p * total) - 1))];
  let sum = 0;
  for (let i = 0; i < total; i++) sum += all[i];
  return { count: total, p50: rank(0.5), p99: rank(0.99), max: all[total - 1], mean: sum / total };
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Wall-clock milliseconds with sub-millisecond resolution, comparable across processes on one box. */
export const wallMs = (): number => performance.timeOrigin + performance.now();

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
