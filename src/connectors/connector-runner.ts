/**
 * The runner: one poller per connector across every instance. An instance polls a connector
 * only while it holds the connector's lock, a PostgreSQL advisory lock on the producer-lock
 * connection (storage/producer-locks.ts), which PostgreSQL frees at once when the instance's
 * connection goes (a crash, kill -9 included). Every instance looks every
 * CONNECTOR_CLAIM_INTERVAL_MS for runnable connectors whose lock is free and takes them up, so
 * a connector whose instance died is polled again within that interval.
 *
 * A poller reads its connector's record before each poll (a pause or a delete on any instance
 * is seen there, and by the status write that follows each poll, which touches only a
 * connector still running), polls, writes the status, and sleeps until the next poll.
 * Polls of one connector never overlap; polls of different connectors run side by side.
 *
 * Shutdown: pollers stop taking new polls, the polls under way finish (bounded by the deadline;
 * their records are committed or read again by the next owner), and the locks are let go.
 */
import type { Logger } from 'pino';
import { within } from '../deadlines.ts';
import type { ConnectorCounters, ConnectorGauges } from '../observability/metrics.ts';
import type { LockPort } from '../sessions/session-coordinator.ts';
import type { ConnectorRepository } from '../storage/connector-repository.ts';
import type { ConnectorKind } from './connector-kind.ts';
import { type ConnectorPollParts, type PolledConnector, pollConnector } from './connector-poll.ts';
import { meteredGet } from './credit-budget.ts';
import { isDatabaseFailure, type StreamIntake } from './stream-intake.ts';
import type { UpstreamPolicies } from './upstream-policies.ts';

export interface ConnectorRunnerOptions {
  repository: ConnectorRepository;
  kinds: ReadonlyMap<string, ConnectorKind<unknown>>;
  intake: StreamIntake;
  locks: LockPort;
  policies: UpstreamPolicies;
  get: (url: URL, signal: AbortSignal) => Promise<string>;
  secretKey: Buffer | null;
  counters: ConnectorCounters;
  log: Logger;
  claimIntervalMs: number;
}

interface Poller {
  readonly id: string;
  kind: string;
  timer: NodeJS.Timeout | null;
  running: Promise<void> | null;
  stopped: boolean;
  /** When it last succeeded, or was taken up here: the base of seconds-since-success. */
  lastSuccessMs: number;
  /** The stream its last poll stopped at for want of credits. */
  resumeAt: string | null;
}

export class ConnectorRunner {
  readonly name = 'connector runner';
  private readonly pollers = new Map<string, Poller>();
  private claimTimer: NodeJS.Timeout | null = null;
  private claiming: Promise<void> | null = null;
  private closed = false;
  private readonly pollParts: ConnectorPollParts;

  constructor(private readonly options: ConnectorRunnerOptions) {
    this.pollParts = {
      intake: options.intake,
      secretKey: options.secretKey,
      counters: options.counters,
      log: options.log,
      addStream: (id, stream) => options.repository.addStream(id, stream),
    };
  }

  async start(): Promise<void> {
    this.claimTimer = setInterval(() => this.wake(), this.options.claimIntervalMs).unref();
    this.wake();
  }

  /** Looks for connectors to take up now: after a create or a resume here, rather than at the next interval. */
  wake(): void {
    if (this.closed || this.claiming !== null) return;
    this.claiming = this.claim()
      .catch((error: unknown) => this.options.log.warn({ err: error }, 'looking for connectors to poll failed; retried next interval'))
      .finally(() => {
        this.claiming = null;
      });
  }

  /** The lock of `id` went to another instance while the lock connection was down: it polls now. */
  lockLost(id: string): void {
    const poller = this.pollers.get(id);
    if (poller !== undefined) this.stop(poller, false);
  }

  gauges(): ConnectorGauges {
    return {
      breakerStates: () => this.options.policies.states(),
      secondsSinceSuccess: () =>
        [...this.pollers.values()].map((p) => ({ connector: p.id, kind: p.kind, seconds: (Date.now() - p.lastSuccessMs) / 1_000 })),
    };
  }

  async close(deadline: number): Promise<void> {
    this.closed = true;
    if (this.claimTimer !== null) clearInterval(this.claimTimer);
    await within(this.claiming ?? Promise.resolve(), deadline - Date.now(), () => undefined);
    const running = [...this.pollers.values()].map((poller) => this.stop(poller, true));
    await within(Promise.all(running), deadline - Date.now(), () => undefined);
  }

  private async claim(): Promise<void> {
    const { repository, locks } = this.options;
    for (const id of await repository.runnableIds()) {
      if (this.closed) return;
      if (this.pollers.has(id) || !(await locks.tryAcquire(id))) continue;
      const poller: Poller = { id, kind: '', timer: null, running: null, stopped: false, lastSuccessMs: Date.now(), resumeAt: null };
      this.pollers.set(id, poller);
      this.schedule(poller, 0);
    }
  }

  private schedule(poller: Poller, delayMs: number): void {
    if (poller.stopped) return;
    poller.timer = setTimeout(
      () => {
        poller.timer = null;
        poller.running = this.tick(poller).finally(() => {
          poller.running = null;
        });
      },
      Math.max(0, delayMs),
    );
  }

  private async tick(poller: Poller): Promise<void> {
    const { repository, kinds, policies, log } = this.options;
    let polled: PolledConnector | null = null;
    try {
      const record = await repository.find(poller.id);
      const kind = record === null ? undefined : kinds.get(record.kind);
      if (record === null || record.paused || kind === undefined) {
        void this.stop(poller, true);
        return;
      }
      poller.kind = kind.kind;
      const origin = new URL(kind.baseUrl(record.config)).origin;
      const terms = kind.credits?.(record.config);
      const get = terms === undefined ? this.options.get : meteredGet(this.options.get, repository, poller.id, terms);
      const fetch = policies.fetchFor(origin, get, (ms) => this.options.counters.upstreamAttempt(kind.kind, ms));
      polled = await pollConnector(record, kind, fetch, () => policies.status(origin), this.pollParts, poller.resumeAt);
      poller.resumeAt = polled.resumeAt;
      if (polled.status.lastError === null) poller.lastSuccessMs = Date.now();
      if (!(await repository.writeStatus(poller.id, polled.status))) {
        void this.stop(poller, true);
        return;
      }
      this.schedule(poller, (polled.status.nextPollAt?.getTime() ?? Date.now()) - Date.now());
    } catch (error) {
      // The database, most likely: the poll is tried again after the claim interval. One that did not get as far as polling
      // is counted here (a poll counts itself), so that an outage shows in the metrics while no status can be written.
      if (polled === null && poller.kind !== '' && isDatabaseFailure(error)) this.options.counters.polled(poller.kind, 'database');
      log.warn({ err: error, connectorId: poller.id }, 'a connector poll could not read or write its record');
      this.schedule(poller, this.options.claimIntervalMs);
    }
  }

  /** Stops polling `poller` here; once its poll under way is done, lets go of its lock (unless lost already). */
  private async stop(poller: Poller, release: boolean): Promise<void> {
    if (poller.stopped) return;
    poller.stopped = true;
    if (poller.timer !== null) clearTimeout(poller.timer);
    await poller.running?.catch(() => undefined);
    this.pollers.delete(poller.id);
    if (release) await this.options.locks.release(poller.id).catch(() => undefined);
  }
}
