/**
 * Per-producer limits kept in the connection (for HTTP ingest, per session): samples per
 * second (a token bucket holding one second of samples, so a producer may burst up to its
 * rate) and the count of rejected frames in the last minute (docs/protocol.md: over 100
 * closes the socket with 1008). Hand-written: per-socket counters on the hot path, no shared
 * state, a few lines each.
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

/**
 * HTTP ingest's samples/s budget, one bucket per session: a request is not a connection, so
 * the buckets live here, in the process. A bucket left alone for a second is full again, the
 * same as a new one, so such buckets are dropped once there are many: memory stays bounded
 * by the sessions ingested into within the last second.
 */
export class SessionSampleRates {
  private readonly buckets = new Map<string, { limiter: SampleRateLimiter; usedAtMs: number }>();
  private sweptAtMs = 0;

  constructor(
    private readonly samplesPerS: number,
    private readonly sweepAbove = 1_024,
  ) {}

  tryTake(sessionId: string, count: number, nowMs: number): boolean {
    if (this.samplesPerS === 0) return true;
    this.sweep(nowMs);
    let bucket = this.buckets.get(sessionId);
    if (!bucket) {
      bucket = { limiter: new SampleRateLimiter(this.samplesPerS, nowMs), usedAtMs: nowMs };
      this.buckets.set(sessionId, bucket);
    }
    bucket.usedAtMs = nowMs;
    return bucket.limiter.tryTake(count, nowMs);
  }

  private sweep(nowMs: number): void {
    if (this.buckets.size < this.sweepAbove || nowMs - this.sweptAtMs < 1_000) return;
    this.sweptAtMs = nowMs;
    for (const [sessionId, bucket] of this.buckets) if (nowMs - bucket.usedAtMs >= 1_000) this.buckets.delete(sessionId);
  }
}
