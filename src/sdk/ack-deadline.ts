/**
 * How a producer finds a connection dead that has not said so: once a connection is opening
 * or samples went out, an ack must come within `timeoutMs`, or `expired` runs (the producer
 * drops the connection and reconnects). The first unanswered send sets the deadline; later
 * sends do not push it back, so a stream of sends into a dead socket still ends.
 */
export class AckDeadline {
  private timer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    readonly timeoutMs: number,
    private readonly expired: () => void,
  ) {}

  /** Starts the wait, unless one is running. */
  arm(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.expired();
    }, this.timeoutMs);
  }

  clear(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
