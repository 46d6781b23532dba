/**
 * Telling apart why a client could not be served, alike for REST requests, socket upgrades
 * and sockets already open. A database that cannot be used at all (isDatabaseUnavailable) is
 * an outage, a passing condition: the client is told to retry (503 with Retry-After; close
 * 1013 on an open socket), the line is a warn (an outage gives one per request, and /ready
 * tells it once), and it is counted in wavehouse_database_errors_total under its operation,
 * so that the alert on that metric sees refused requests and sockets as well as failed
 * commits. Anything else is a bug: logged at error, answered 500 or 1011.
 */
import type { Logger } from 'pino';
import type { Metrics } from '../observability/metrics.ts';
import { isDatabaseUnavailable } from '../storage/database.ts';

/** The `operation` label of wavehouse_database_errors_total for each place a client is served. */
export type ServedOperation = 'request' | 'upgrade' | 'producer_attach' | 'viewer_start' | 'viewer_history';

/** `outage`: the database out of reach, the client retries; `bug`: anything else. */
export type FailureKind = 'outage' | 'bug';

const outageLines: Record<ServedOperation, string> = {
  request: 'the database cannot serve this request',
  upgrade: 'the database cannot serve this upgrade',
  producer_attach: 'the database cannot attach this producer',
  viewer_start: 'the database cannot start this live viewer',
  viewer_history: 'the database cannot give this live viewer the samples it missed',
};

export function failureKind(error: unknown): FailureKind {
  return isDatabaseUnavailable(error) ? 'outage' : 'bug';
}

export class FailureTriage {
  constructor(private readonly metrics: Pick<Metrics, 'databaseErrors'>) {}

  /** Logs and counts `error`, so it is called once per failure, and returns its kind. */
  record(error: unknown, log: Pick<Logger, 'warn' | 'error'>, operation: ServedOperation): FailureKind {
    const kind = failureKind(error);
    if (kind === 'outage') {
      // Logged with its cause (an address, say), which the client is not told.
      log.warn({ err: error, operation }, outageLines[operation]);
      this.metrics.databaseErrors.labels(operation).inc();
    } else {
      log.error({ err: error, operation }, 'unhandled error');
    }
    return kind;
  }
}
