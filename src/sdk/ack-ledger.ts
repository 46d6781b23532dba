/**
 * A producer's ack accounting: samples pushed and acked, the highest seq acked, and the
 * promises waiting on acks. flush() waits until every sample pushed before it is acked;
 * ready() waits until the unacked count is back within its bound (a 'drain'). Acks are
 * cumulative and the producer counts what each one dropped, so pushed - acked is what it holds.
 */
interface Waiter {
  resolve: () => void;
  reject: (error: Error) => void;
}

interface FlushWaiter extends Waiter {
  /** The acked count that settles it: the pushed count when flush() was called. */
  target: number;
  timer: ReturnType<typeof setTimeout> | null;
}

export class AckLedger {
  private pushedCount = 0;
  private ackedCount = 0;
  private highest: number | null = null;
  private flushes: FlushWaiter[] = [];
  private drains: Waiter[] = [];
  /** Set when a push or a ready() found the bound exceeded: the next fall within it is a 'drain'. */
  private needDrain = false;

  constructor(private readonly maxUnacked: number) {}

  /** Pushed and not yet acked. */
  get unacked(): number {
    return this.pushedCount - this.ackedCount;
  }

  get withinBound(): boolean {
    return this.unacked <= this.maxUnacked;
  }

  /** The highest seq acked, or null before the first ack. */
  get lastAckedSeq(): number | null {
    return this.highest;
  }

  /** Counts a push; false when it leaves more than the bound unacked ('drain' follows). */
  pushed(count: number): boolean {
    this.pushedCount += count;
    if (this.withinBound) return true;
    this.needDrain = true;
    return false;
  }

  /** Counts an ack of `seq` that dropped `count` samples. Waiters settle at `settle()`. */
  acked(seq: number, count: number): void {
    if (this.highest === null || seq > this.highest) this.highest = seq;
    this.ackedCount += count;
  }

  /**
   * Resolves once every sample pushed so far is acked; rejects with `timeoutError()` after
   * `timeoutMs`, if given, or at `rejectAll`.
   */
  allAcked(timeoutMs: number | undefined, timeoutError: () => Error): Promise<void> {
    if (this.unacked === 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const waiter: FlushWaiter = { target: this.pushedCount, resolve, reject, timer: null };
      if (timeoutMs !== undefined) {
        waiter.timer = setTimeout(() => {
          this.flushes = this.flushes.filter((other) => other !== waiter);
          reject(timeoutError());
        }, timeoutMs);
      }
      this.flushes.push(waiter);
    });
  }

  /** Resolves at once when within the bound, else at the next drain; rejects at `rejectAll`. */
  drained(): Promise<void> {
    if (this.withinBound) return Promise.resolve();
    this.needDrain = true;
    return new Promise((resolve, reject) => this.drains.push({ resolve, reject }));
  }

  /** Resolves the waits that acks have met; true when this is a drain. */
  settle(): boolean {
    this.flushes = this.flushes.filter((waiter) => {
      if (this.ackedCount < waiter.target) return true;
      if (waiter.timer) clearTimeout(waiter.timer);
      waiter.resolve();
      return false;
    });
    if (!this.needDrain || !this.withinBound) return false;
    this.needDrain = false;
    const drains = this.drains;
    this.drains = [];
    for (const waiter of drains) waiter.resolve();
    return true;
  }

  rejectAll(error: Error): void {
    for (const waiter of this.flushes) if (waiter.timer) clearTimeout(waiter.timer);
    for (const waiter of [...this.flushes, ...this.drains]) waiter.reject(error);
    this.flushes = [];
    this.drains = [];
  }
}
