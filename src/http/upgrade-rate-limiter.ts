/**
 * Socket upgrade attempts per client IP, in fixed one-minute windows. Upgrades never reach
 * Fastify's request pipeline (socket-upgrades.ts), so @fastify/rate-limit does not see them;
 * this is the few lines that do. Each instance counts its own attempts (no Redis): a client
 * looping on upgrades meets the limit on every instance it reaches.
 *
 * Memory: one entry per client seen in the current window, all dropped when the window rolls
 * over, and at most `maxClients` of them (about 100 bytes each). Past that, more clients are
 * let through uncounted rather than refused: so many addresses in a minute is beyond what a
 * per-address limit can stop, and refusing every new one would shut out real clients too.
 */
const windowMs = 60_000;
const maxClients = 100_000;

export class UpgradeRateLimiter {
  private counts = new Map<string, number>();
  private windowStartMs: number;

  /** `perMinute` 0: no limit. */
  constructor(
    private readonly perMinute: number,
    private readonly nowMs: () => number = Date.now,
  ) {
    this.windowStartMs = nowMs();
  }

  /** Counts one attempt by `ip`; null if it may go on, else the seconds until this client's next window. */
  take(ip: string): number | null {
    if (this.perMinute === 0) return null;
    const now = this.nowMs();
    if (now - this.windowStartMs >= windowMs) {
      this.counts = new Map();
      this.windowStartMs = now;
    }
    const count = this.counts.get(ip);
    if (count === undefined) {
      if (this.counts.size < maxClients) this.counts.set(ip, 1);
      return null;
    }
    if (count >= this.perMinute) return Math.max(1, Math.ceil((this.windowStartMs + windowMs - now) / 1000));
    this.counts.set(ip, count + 1);
    return null;
  }
}
