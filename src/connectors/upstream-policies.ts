/**
 * How every upstream call is wrapped (cockatiel): a timeout per attempt, covering the body as
 * well as the headers; retries of transient failures after a jittered exponential delay, or
 * after the upstream's Retry-After when that is longer; and a circuit breaker per upstream
 * origin, shared by every connector polling it from this instance, so that a host that is down
 * is asked once per half-open interval rather than by every connector on every poll.
 *
 * A Retry-After longer than the retries' longest delay is not waited for here: the poll fails,
 * and the runner schedules the next one after it.
 */
import {
  BrokenCircuitError,
  type CircuitBreakerPolicy,
  CircuitState,
  ConsecutiveBreaker,
  circuitBreaker,
  DelegateBackoff,
  handleWhen,
  retry,
  TimeoutStrategy,
  timeout,
  wrap,
} from 'cockatiel';
import type { UpstreamFetch } from './upstream-client.ts';
import { UpstreamError } from './upstream-error.ts';

export interface UpstreamPolicyOptions {
  /** One attempt, headers and body. */
  readonly attemptTimeoutMs: number;
  /** Attempts of one request, the first included. */
  readonly maxAttempts: number;
  /** The first retry waits up to this long, each next up to twice as long... */
  readonly retryBaseMs: number;
  /** ...up to this. */
  readonly retryMaxMs: number;
  /** Consecutive failed attempts that open a host's breaker. */
  readonly breakerFailures: number;
  /** How long an open breaker refuses calls before it lets one through (half-open). */
  readonly halfOpenAfterMs: number;
}

export type BreakerState = 'closed' | 'open' | 'half-open';

export interface BreakerStatus {
  readonly state: BreakerState;
  /** When it last opened; null while closed. */
  readonly openSince: Date | null;
  /** The failure that opened it. */
  readonly lastFailure: string | null;
}

interface HostBreaker {
  readonly policy: CircuitBreakerPolicy;
  openSince: Date | null;
  lastFailure: string | null;
}

const closedStatus: BreakerStatus = { state: 'closed', openSince: null, lastFailure: null };

const stateNames: Record<CircuitState, BreakerState> = {
  [CircuitState.Closed]: 'closed',
  [CircuitState.Open]: 'open',
  [CircuitState.HalfOpen]: 'half-open',
  [CircuitState.Isolated]: 'open',
};

/** A breaker that is open refuses the call before any request: the poll fails with this. */
export class BreakerOpenError extends UpstreamError {
  constructor(origin: string, status: BreakerStatus) {
    super(`${origin} is failing: its circuit breaker is open since ${status.openSince?.toISOString()} (${status.lastFailure})`, false);
    this.name = 'BreakerOpenError';
  }
}

export class UpstreamPolicies {
  private readonly breakers = new Map<string, HostBreaker>();

  constructor(private readonly options: UpstreamPolicyOptions) {}

  /** A fetch for a connector whose requests go to `baseUrl`'s origin, wrapped in the origin's policies. */
  fetchFor(baseUrl: string, get: (url: URL, signal: AbortSignal) => Promise<string>, onAttempt?: (ms: number) => void): UpstreamFetch {
    const origin = new URL(baseUrl).origin;
    const host = this.breaker(origin);
    const { attemptTimeoutMs, maxAttempts, retryBaseMs, retryMaxMs } = this.options;
    const retries = retry(
      handleWhen((error) => error instanceof UpstreamError && error.transient && (error.retryAfterMs ?? 0) <= retryMaxMs),
      {
        maxAttempts: maxAttempts - 1,
        backoff: new DelegateBackoff((context) => {
          const error = 'error' in context.result ? context.result.error : null;
          const exponential = Math.min(retryMaxMs, retryBaseMs * 2 ** (context.attempt - 1));
          // Full jitter: instances that failed together do not come back together.
          return Math.max(Math.random() * exponential, error instanceof UpstreamError ? (error.retryAfterMs ?? 0) : 0);
        }),
      },
    );
    const attempt = timeout(attemptTimeoutMs, TimeoutStrategy.Cooperative);
    const policy = wrap(retries, host.policy, attempt);
    return async (url) => {
      try {
        return await policy.execute(async ({ signal }) => {
          const started = performance.now();
          try {
            return await get(url, signal);
          } finally {
            onAttempt?.(performance.now() - started);
          }
        });
      } catch (error) {
        if (error instanceof BrokenCircuitError) throw new BreakerOpenError(origin, this.status(origin));
        throw error;
      }
    };
  }

  status(origin: string): BreakerStatus {
    const host = this.breakers.get(origin);
    if (host === undefined) return closedStatus;
    return { state: stateNames[host.policy.state], openSince: host.openSince, lastFailure: host.lastFailure };
  }

  /** Each host's breaker state, for the metrics. */
  states(): Array<{ origin: string; state: BreakerState }> {
    return [...this.breakers.entries()].map(([origin, host]) => ({ origin, state: stateNames[host.policy.state] }));
  }

  private breaker(origin: string): HostBreaker {
    let host = this.breakers.get(origin);
    if (host !== undefined) return host;
    // Only what says the host is unwell opens it: a refused key is the connector's problem, not the host's.
    const policy = circuitBreaker(
      handleWhen((error) => error instanceof UpstreamError && error.transient),
      { halfOpenAfter: this.options.halfOpenAfterMs, breaker: new ConsecutiveBreaker(this.options.breakerFailures) },
    );
    const created: HostBreaker = { policy, openSince: null, lastFailure: null };
    policy.onBreak((reason) => {
      created.openSince = new Date();
      created.lastFailure = 'error' in reason ? reason.error.message : 'isolated';
    });
    policy.onReset(() => {
      created.openSince = null;
      created.lastFailure = null;
    });
    this.breakers.set(origin, created);
    host = created;
    return host;
  }
}
