/**
 * Why an upstream call or a poll failed, whatever went wrong: the runner needs to know only
 * whether to retry. `transient` failures (5xx, 429, timeouts, a dropped connection) are
 * retried and count against the upstream's breaker; the others (a refused key, a body that is
 * not the format) are the connector's own problem and are not retried until its next poll.
 */
export class UpstreamError extends Error {
  constructor(
    message: string,
    readonly transient: boolean,
    /** From a Retry-After header, in ms. */
    readonly retryAfterMs: number | null = null,
  ) {
    super(message);
    this.name = 'UpstreamError';
  }
}
