/**
 * Accepted batches waiting to be committed, in acceptance order, bounded in bytes.
 *
 * The bound is what turns a slow or unreachable database into backpressure instead of
 * memory growth (DESIGN principle 2): above `maxQueuedBytes` the queue reports itself full,
 * the ingest sockets stop reading (TCP pushes back on producers), and they resume once the
 * queue has drained to half the bound. Items leave the queue only after they are committed,
 * so a failed commit is retried with the same items.
 */
import type { SampleBatch } from '../sessions/sample-batch.ts';
import type { SessionState } from '../sessions/session-state.ts';

export interface QueuedBatch {
  session: SessionState;
  batch: SampleBatch;
  enqueuedAtMs: number;
}

export class WriteQueue {
  private items: QueuedBatch[] = [];
  private head = 0;
  queuedBytes = 0;
  queuedSamples = 0;
  private wake: (() => void) | null = null;
  private drainedListeners: Array<() => void> = [];

  constructor(private readonly maxQueuedBytes: number) {}

  get isFull(): boolean {
    return this.queuedBytes >= this.maxQueuedBytes;
  }

  get length(): number {
    return this.items.length - this.head;
  }

  get oldestEnqueuedAtMs(): number | null {
    return this.length === 0 ? null : this.items[this.head].enqueuedAtMs;
  }

  push(session: SessionState, batch: SampleBatch, nowMs: number): void {
    this.items.push({ session, batch, enqueuedAtMs: nowMs });
    this.queuedBytes += batch.byteLength;
    this.queuedSamples += batch.count;
    this.wake?.();
  }

  /** The oldest items holding up to `maxSamples` samples (always at least one item). */
  peek(maxSamples: number): QueuedBatch[] {
    const out: QueuedBatch[] = [];
    let samples = 0;
    for (let i = this.head; i < this.items.length; i++) {
      const item = this.items[i];
      if (out.length > 0 && samples + item.batch.count > maxSamples) break;
      out.push(item);
      samples += item.batch.count;
    }
    return out;
  }

  /** Removes the `count` oldest items, once they are committed. */
  remove(count: number): void {
    for (let i = this.head; i < this.head + count; i++) {
      this.queuedBytes -= this.items[i].batch.byteLength;
      this.queuedSamples -= this.items[i].batch.count;
    }
    this.head += count;
    // Compact now and then rather than shift() per item, which is O(n) each.
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    if (this.queuedBytes * 2 <= this.maxQueuedBytes && this.drainedListeners.length > 0) {
      const listeners = this.drainedListeners;
      this.drainedListeners = [];
      for (const listener of listeners) listener();
    }
  }

  /** Calls `listener` once the queue is down to half its bound. */
  onceDrained(listener: () => void): void {
    this.drainedListeners.push(listener);
  }

  /** Resolves when an item is pushed (or at once if the queue holds any). */
  waitForItems(): Promise<void> {
    if (this.length > 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.wake = () => {
        this.wake = null;
        resolve();
      };
    });
  }

  /** Wakes a waiting writer with nothing pushed, so it can notice it is being closed. */
  interrupt(): void {
    this.wake?.();
  }
}
