/**
 * One poll of a connector: each of its streams in turn, then its status as the poll leaves it.
 * Never throws: what failed becomes `lastError`, and `failingSince` stays the time of the first
 * failure until a poll succeeds. A secret that does not open, an upstream that fails after its
 * retries, a breaker that refuses the call: each is a failed poll, with a message that names
 * no secret (the URL's query never reaches a message, upstream-client.ts). A database out of
 * reach or too slow to commit the records fails the poll too, with a `lastError` that names the
 * database and an outcome of its own, so that it is not taken for the upstream failing.
 *
 * A spent credit budget (credit-budget.ts) is no failure: the poll stops at the stream it could
 * not pay for, which the next poll starts with so that every stream has its turn, and the next
 * poll waits for the credits. A kind with a budget is polled no faster than the budget allows.
 */
import type { Logger } from 'pino';
import type { ConnectorCounters } from '../observability/metrics.ts';
import type { ConnectorRecord, ConnectorStatus, ConnectorStreamRecord } from '../storage/connector-repository.ts';
import type { ConnectorKind } from './connector-kind.ts';
import { openSecrets } from './connector-secrets.ts';
import { CreditsSpentError, paceMs } from './credit-budget.ts';
import { isDatabaseFailure, type StreamIntake } from './stream-intake.ts';
import type { UpstreamFetch } from './upstream-client.ts';
import { UpstreamError } from './upstream-error.ts';
import { BreakerOpenError, type BreakerStatus } from './upstream-policies.ts';

export interface ConnectorPollParts {
  readonly intake: StreamIntake;
  readonly secretKey: Buffer | null;
  readonly counters: ConnectorCounters;
  readonly log: Logger;
  /** Records the stream a poll created on the connector. */
  addStream(connectorId: string, stream: ConnectorStreamRecord): Promise<void>;
}

export interface PolledConnector {
  readonly status: ConnectorStatus;
  /** Poll again at once: a page was not the last. */
  readonly more: boolean;
  /** The stream a spent budget stopped the poll at: the next poll starts with it. */
  readonly resumeAt: string | null;
}

/** The config the kind polls with: as stored, with its secrets opened. */
function configOf(record: ConnectorRecord, secretKey: Buffer | null): Record<string, unknown> {
  if (record.secrets === null) return record.config;
  const secrets = secretKey === null ? null : openSecrets(secretKey, record.id, record.secrets);
  if (secrets === null) throw new UpstreamError("the connector's secrets do not open with this instance's CONNECTOR_SECRET_KEY", false);
  return { ...record.config, ...secrets };
}

export async function pollConnector(
  record: ConnectorRecord,
  kind: ConnectorKind<unknown>,
  fetch: UpstreamFetch,
  breaker: () => BreakerStatus,
  parts: ConnectorPollParts,
  resumeAt: string | null = null,
): Promise<PolledConnector> {
  const { intake, counters, log } = parts;
  const started = new Date();
  let lastRecordMs = record.lastRecordAt?.getTime() ?? null;
  let more = false;
  let failure: string | null = null;
  let retryAfterMs = 0;
  let stoppedAt: string | null = null;
  let key: string | null = null;
  try {
    const config = configOf(record, parts.secretKey);
    const streams = new Map(record.streams.map((stream) => [stream.key, stream]));
    const keys = kind.streamKeys(config);
    const first = Math.max(0, resumeAt === null ? 0 : keys.indexOf(resumeAt));
    for (key of [...keys.slice(first), ...keys.slice(0, first)]) {
      const streamKey = key;
      const intook = await intake.run(
        record.id,
        streams.get(key) ?? null,
        (cursor) => kind.poll(config, streamKey, cursor, { fetch, nowMs: started.getTime() }),
        (stream) => parts.addStream(record.id, stream),
      );
      const { records, discards } = intook.outcome;
      counters.stored(kind.kind, intook.stored);
      counters.discarded(kind.kind, discards.invalidValues, discards.invalidRecords);
      if (discards.invalidValues + discards.invalidRecords > 0) {
        log.warn(
          { connectorId: record.id, stream: key, ...discards },
          'upstream values that are not numbers stored as null, records skipped',
        );
      }
      if (records.length > 0) lastRecordMs = Math.max(lastRecordMs ?? records[0].t, ...records.map((r) => r.t));
      more ||= intook.outcome.more;
    }
    counters.polled(kind.kind, 'success');
  } catch (error) {
    if (error instanceof CreditsSpentError) {
      stoppedAt = key;
      retryAfterMs = error.retryAfterMs ?? 0;
      counters.polled(kind.kind, 'out_of_credits');
    } else if (isDatabaseFailure(error)) {
      // Not the upstream's doing: its breaker and the `failed` count are left alone, and the status says so.
      failure = `the database failed this poll, not the upstream: ${error instanceof Error ? error.message : String(error)}`;
      counters.polled(kind.kind, 'database');
      log.warn({ connectorId: record.id, kind: kind.kind, reason: failure }, 'connector poll failed');
    } else {
      if (!(error instanceof UpstreamError)) log.error({ err: error, connectorId: record.id }, 'a connector poll failed unexpectedly');
      failure = error instanceof Error ? error.message : String(error);
      if (error instanceof UpstreamError) retryAfterMs = error.retryAfterMs ?? 0;
      counters.polled(kind.kind, error instanceof BreakerOpenError ? 'breaker_open' : 'failed');
      if (error instanceof UpstreamError) log.warn({ connectorId: record.id, kind: kind.kind, reason: failure }, 'connector poll failed');
    }
  }
  const { state, openSince } = breaker();
  const now = Date.now();
  const terms = kind.credits?.(record.config);
  const waitMs = Math.max(record.pollIntervalS * 1_000, retryAfterMs, terms === undefined ? 0 : paceMs(terms));
  // Stopped by the budget: nothing was learnt of the upstream, so its success and failure stand as they were.
  const outOfCredits = stoppedAt !== null;
  const succeeded = failure === null && !outOfCredits;
  // A poll that succeeded is followed an interval after it started, not after it ended, so a slow poll (a slow upstream, a
  // busy database) does not stretch the period: 1,000 connectors every 15 s whose polls take 2 s were polled every 17 s.
  // After a failure the wait (a backoff, a Retry-After) counts from now.
  const nextPollMs = !succeeded ? now + waitMs : more ? now : Math.max(now, started.getTime() + waitMs);
  return {
    more: succeeded && more,
    resumeAt: stoppedAt,
    status: {
      lastPollAt: started,
      lastSuccessAt: succeeded ? new Date(now) : record.lastSuccessAt,
      lastError: outOfCredits ? record.lastError : failure,
      failingSince: outOfCredits ? record.failingSince : failure === null ? null : (record.failingSince ?? started),
      breaker: state,
      breakerOpenSince: openSince,
      lastRecordAt: lastRecordMs === null ? null : new Date(lastRecordMs),
      nextPollAt: new Date(nextPollMs),
    },
  };
}
