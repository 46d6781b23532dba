/**
 * Per-producer limits kept in the connection: samples per second (a token bucket holding
 * one second of samples, so a producer may burst up to its rate) and the count of rejected
 * frames in the last minute (docs/protocol.md: over 100 closes the socket with 1008).
 * Hand-written: per-socket counters on the hot path, no shared state, a few lines each.
 */
export class SampleRateLimiter {
  private tokens: number;
  private refilledAtMs: number;

  constructor(
    private readonly samplesPerS: number,
    nowMs: number,
  ) {
    this.tokens = samplesPerS;
    this.refilledAtMs = nowMs;
  }

  /** Takes `count` samples from the budget, or takes nothing and returns false. */
  tryTake(count: number, nowMs: number): boolean {
    if (this.samplesPerS === 0) return true;
    this.tokens = Math.min(this.samplesPerS, this.tokens + ((nowMs - this.refilledAtMs) * this.samplesPerS) / 1000);
    this.refilledAtMs = nowMs;
    if (count > this.tokens) return false;
    this.tokens -= count;
    return true;
  }
}

export class RejectionCounter {
  private timestamps: number[] = [];

  constructor(private readonly maxPerMinute: number) {}

  /** Records a rejected frame; true when the producer is now over its allowance. */
  recordAndCheck(nowMs: number): boolean {
    const windowStart = nowMs - 60_000;
    this.timestamps = this.timestamps.filter((at) => at > windowStart);
    this.timestamps.push(nowMs);
    return this.timestamps.length > this.maxPerMinute;
  }
}
