/**
 * Requests that arrive while one round trip to the database is in flight wait for it, then
 * go together in the next, at most `maxBatch` at a time; a lone request goes at once, so an
 * idle server adds no wait. Under REST's bursts this turns ten concurrent creates or gets
 * into one statement: one write, one backend woken, one commit (docs/performance.md).
 */
export interface CoalescingQueueOptions<T> {
  /** The most items one batch holds. */
  maxBatch: number;
  /** Settles every item of its batch itself, and never rejects. */
  handle: (batch: T[]) => Promise<void>;
}

export class CoalescingQueue<T> {
  private readonly waiting: T[] = [];
  private running = false;
  private readonly maxBatch: number;
  private readonly handle: (batch: T[]) => Promise<void>;

  constructor({ maxBatch, handle }: CoalescingQueueOptions<T>) {
    this.maxBatch = maxBatch;
    this.handle = handle;
  }

  push(item: T): void {
    this.waiting.push(item);
    if (!this.running) void this.drain();
  }

  /** Takes every item still waiting, to fail them with the error their batch got. */
  takeAll(): T[] {
    return this.waiting.splice(0);
  }

  private async drain(): Promise<void> {
    this.running = true;
    try {
      // Items pushed while a batch is handled, by its own callers resuming too, are seen here.
      while (this.waiting.length > 0) await this.handle(this.waiting.splice(0, this.maxBatch));
    } finally {
      this.running = false;
    }
  }
}
