/**
 * Reconnect delays: exponential, capped, with "equal jitter" (half fixed, half random), so
 * that a restarted server is not hit by every client in the same millisecond while no
 * client waits longer than `maxDelayMs`.
 * See https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/
 */
export interface BackoffOptions {
  initialDelayMs?: number;
  maxDelayMs?: number;
  factor?: number;
  /** Replaceable for tests; Math.random by default. */
  random?: () => number;
}

export class Backoff {
  private attempt = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private readonly initialDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly factor: number;
  private readonly random: () => number;

  constructor({ initialDelayMs = 100, maxDelayMs = 5_000, factor = 2, random = Math.random }: BackoffOptions = {}) {
    if (!(initialDelayMs >= 0 && maxDelayMs >= initialDelayMs && factor >= 1)) {
      throw new RangeError('backoff needs 0 <= initialDelayMs <= maxDelayMs and factor >= 1');
    }
    this.initialDelayMs = initialDelayMs;
    this.maxDelayMs = maxDelayMs;
    this.factor = factor;
    this.random = random;
  }

  /** Attempts since the last reset. */
  get attempts(): number {
    return this.attempt;
  }

  nextDelayMs(): number {
    const cap = Math.min(this.maxDelayMs, this.initialDelayMs * this.factor ** this.attempt);
    this.attempt++;
    return Math.round(cap / 2 + (this.random() * cap) / 2);
  }

  reset(): void {
    this.attempt = 0;
  }

  /** Runs `retry` after the next delay (replacing any retry still pending); returns the delay. */
  schedule(retry: () => void): number {
    this.cancel();
    const delayMs = this.nextDelayMs();
    this.timer = setTimeout(() => {
      this.timer = null;
      retry();
    }, delayMs);
    return delayMs;
  }

  /** Drops a pending retry, if any. */
  cancel(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
